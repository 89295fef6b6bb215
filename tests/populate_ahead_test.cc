// RuntimeOptions::populate_ahead_above (alloc/internal/segment_pool.h): once
// segments of small pages get huge OS pages, the pool's populator maps and
// faults in the next one before it is needed, and the allocation that needs
// it takes it; trim() and the runtime's end give it back; a fork() child
// has none; nothing of it is seen by walks or leaks.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "alloc/internal/runtime_core.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

// huge_os_pages for every segment of small pages, and populate_ahead_above
// at one byte: the populator starts with the first segment (by default it
// starts past 32 MiB in use).
RuntimeOptions ahead_options(std::size_t populate_ahead_above = 1) {
  RuntimeOptions o;
  o.gc_tags = {1};
  o.huge_os_pages = true;
  o.populate_ahead_above = populate_ahead_above;
  return o;
}

// The populator works on its own thread: wait for it, boundedly (a
// correctness wait, not a measurement).
const internal::Segment* wait_for_reserve(Runtime& rt) {
  for (int i = 0; i < 20'000; ++i) {
    if (const internal::Segment* s = rt.core().segments.populated_reserve_for_testing()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return nullptr;
}

// Every OS page of [p, p + size) is resident.
bool resident(std::uintptr_t p, std::size_t size) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v(size / page);
  if (mincore(reinterpret_cast<void*>(p), size, v.data()) != 0) return false;
  for (unsigned char c : v)
    if (!(c & 1)) return false;
  return true;
}

}  // namespace

TEST_SUITE("alloc.populate_ahead") {
  TEST_CASE("the next segment is faulted in ahead, and the allocation that needs a segment takes it") {
    Runtime rt(ahead_options());
    AttachedState ts(rt);
    std::vector<void*> blocks;
    blocks.push_back(ts.heap(1).allocate(1024));  // the first segment: the populator starts
    const internal::Segment* ready = wait_for_reserve(rt);
    REQUIRE(ready != nullptr);
    CHECK(ready != internal::Segment::of(blocks[0]));
    CHECK(resident(ready->base(), ready->size));  // faulted in before anybody needs it
    // Walks do not see it: no page of it is in use, and it is not among
    // the runtime's segments until taken.
    const std::size_t segments = rt.stats().segments;
    // Fill the first segment: the next page comes from the ready one.
    bool took_it = false;
    for (int i = 0; i < 20'000 && !took_it; ++i) {
      void* p = ts.heap(1).allocate(1024);
      blocks.push_back(p);
      took_it = internal::Segment::of(p) == ready;
      if (!took_it) CHECK(internal::Segment::of(p) == internal::Segment::of(blocks[0]));
    }
    CHECK(took_it);
    CHECK(rt.stats().segments == segments + 1);
    // ...and asked for the next one.
    const internal::Segment* next = wait_for_reserve(rt);
    CHECK(next != nullptr);
    CHECK(next != ready);
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("a heap that outgrows the populator takes the spare, on small OS pages, and waits for nothing") {
    Runtime rt(ahead_options());
    rt.core().segments.hold_populating_for_testing(true);  // no segment gets faulted in ahead
    AttachedState ts(rt);
    std::vector<void*> blocks;
    blocks.push_back(ts.heap(1).allocate(1024));  // the first segment: the populator starts
    const internal::Segment* spare = nullptr;
    for (int i = 0; i < 20'000 && spare == nullptr; ++i) {
      spare = rt.core().segments.spare_for_testing();
      if (spare == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(spare != nullptr);
    CHECK(rt.core().segments.populated_reserve_for_testing() == nullptr);
    CHECK(!spare->huge_os_pages);
    CHECK(!resident(spare->base() + spare->size / 2, spare->size / 2));  // mapped, not faulted in
    bool took_it = false;
    for (int i = 0; i < 20'000 && !took_it; ++i) {
      void* p = ts.heap(1).allocate(1024);
      blocks.push_back(p);
      took_it = internal::Segment::of(p) == spare;
    }
    CHECK(took_it);
    CHECK(!internal::Segment::of(blocks.back())->huge_os_pages);  // what it was mapped as
    // Let go, the populator faults the next one in, and makes another spare.
    rt.core().segments.hold_populating_for_testing(false);
    const internal::Segment* ready = wait_for_reserve(rt);
    CHECK(ready != nullptr);
    CHECK(ready != spare);
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
    rt.trim();
    CHECK(rt.core().segments.populated_reserve_for_testing() == nullptr);
    CHECK(rt.core().segments.spare_for_testing() == nullptr);
  }

  TEST_CASE("trim() unmaps the segment held ready, and the runtime's end stops the populator") {
    const std::size_t before = os::mapped_bytes();
    {
      Runtime rt(ahead_options());
      {
        AttachedState ts(rt);
        void* p = ts.heap(1).allocate(64);
        REQUIRE(wait_for_reserve(rt) != nullptr);
        tagheap::free(p);
      }
      rt.trim();
      CHECK(rt.core().segments.populated_reserve_for_testing() == nullptr);
      CHECK(rt.core().segments.spare_for_testing() == nullptr);
      CHECK(rt.stats().segments == 0);
      CHECK(os::mapped_bytes() == before);  // nothing held, nothing in the making
      AttachedState ts(rt);
      void* p = ts.heap(1).allocate(64);  // asks again
      CHECK(wait_for_reserve(rt) != nullptr);
      tagheap::free(p);
    }
    CHECK(os::mapped_bytes() == before);
  }

  TEST_CASE("runtimes destroyed while their populator works leak nothing") {
    const std::size_t before = os::mapped_bytes();
    for (int round = 0; round < 20; ++round) {
      Runtime rt(ahead_options());
      AttachedState ts(rt);
      std::vector<void*> blocks;
      for (int i = 0; i < 5'000 + round * 500; ++i) blocks.push_back(ts.heap(1).allocate(1024));
      for (void* p : blocks) tagheap::free(p);
    }
    CHECK(os::mapped_bytes() == before);
  }

  TEST_CASE("threads growing their heaps together while the populator works lose nothing") {
    Runtime rt(ahead_options());
    std::vector<std::thread> threads;
    std::vector<std::vector<void*>> kept(2);
    for (int k = 0; k < 2; ++k)
      threads.emplace_back([&, k] {
        AttachedState ts(rt);
        for (int i = 0; i < 40'000; ++i) {
          void* p = ts.heap(static_cast<Tag>(k)).allocate(200 + (i % 7) * 100);
          static_cast<char*>(p)[0] = static_cast<char>(i);
          if (i % 3 == 0) tagheap::free(p);
          else kept[k].push_back(p);
        }
      });
    for (auto& t : threads) t.join();
    const RuntimeStats s = rt.stats();
    CHECK(s.total.blocks == kept[0].size() + kept[1].size());
    rt.verify();
    for (auto& v : kept)
      for (void* p : v) tagheap::free(p);
    CHECK(rt.stats().total.blocks == 0);
  }

  TEST_CASE("trim() from another thread while heaps grow past the populator loses nothing and leaks nothing") {
    const std::size_t before = os::mapped_bytes();
    {
      Runtime rt(ahead_options());
      std::atomic<bool> done{false};
      std::vector<std::thread> threads;
      std::vector<std::vector<void*>> kept(2);
      for (int k = 0; k < 2; ++k)
        threads.emplace_back([&, k] {
          AttachedState ts(rt);
          for (int round = 0; round < 4; ++round) {
            std::vector<void*> mine;
            for (int i = 0; i < 12'000; ++i) {  // about 12 MiB a round: several segments, spares taken
              void* p = ts.heap(1).allocate(1024);
              static_cast<unsigned char*>(p)[1023] = static_cast<unsigned char>(i);
              mine.push_back(p);
            }
            for (std::size_t i = 0; i < mine.size(); ++i) {
              if (static_cast<unsigned char*>(mine[i])[1023] != static_cast<unsigned char>(i)) FAIL("block changed");
              if (i % 16 == 0) kept[k].push_back(mine[i]);
              else tagheap::free(mine[i]);
            }
          }
        });
      std::thread trimmer([&] {
        while (!done.load()) {
          rt.trim();
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
      for (auto& t : threads) t.join();
      done = true;
      trimmer.join();
      CHECK(rt.stats().total.blocks == kept[0].size() + kept[1].size());
      rt.verify();
      for (auto& v : kept)
        for (void* p : v) tagheap::free(p);
      rt.trim();
      CHECK(rt.core().segments.populated_reserve_for_testing() == nullptr);
      CHECK(rt.core().segments.spare_for_testing() == nullptr);
    }
    CHECK(os::mapped_bytes() == before);
  }

  TEST_CASE("with populate_ahead_above at 0, no segment is held ready and no thread starts") {
    Runtime rt(ahead_options(/*populate_ahead_above=*/0));
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 20'000; ++i) blocks.push_back(ts.heap(1).allocate(1024));
    CHECK(!rt.core().segments.populator_started_for_testing());
    CHECK(rt.core().segments.populated_reserve_for_testing() == nullptr);
    for (void* p : blocks) tagheap::free(p);
  }

  TEST_CASE("with the defaults, a heap starts its populator only past 32 MiB of segments") {
    RuntimeOptions o;
    o.gc_tags = {1};  // huge pages past 8 MiB in use, populated ahead past 32
    // However dear this machine's huge pages: a slow first fault (a loaded
    // machine, TSan) would otherwise turn huge pages, and so the populator,
    // off, and the thresholds are what this case pins.
    o.huge_os_page_fault_limit_ns = 0;
    Runtime rt(o);
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 16'000; ++i) blocks.push_back(ts.heap(1).allocate(1024));  // 16 MiB
    CHECK(!rt.core().segments.populator_started_for_testing());
    for (int i = 0; i < 32'000; ++i) blocks.push_back(ts.heap(1).allocate(1024));  // 48 MiB
    CHECK(rt.core().segments.populator_started_for_testing());
    for (void* p : blocks) tagheap::free(p);
  }

  TEST_CASE("a fork() child has no populator: it maps its own segments, and its runtime ends cleanly") {
    Runtime rt(ahead_options());
    ThreadState survivor(rt);
    survivor.attach();
    std::vector<void*> blocks;
    blocks.push_back(survivor.heap(1).allocate(1024));
    const internal::Segment* ready = wait_for_reserve(rt);
    REQUIRE(ready != nullptr);
    const test::ChildResult r = test::run_in_child([&] {
      test::ChildChecks c;
      rt.after_fork_child(survivor);
      c.expect(!rt.core().segments.populator_started_for_testing(), "no populator thread in the child");
      // The segment held ready at fork() is the child's first; the ones
      // after it are mapped by the allocating thread.
      std::vector<void*> more;
      std::vector<const internal::Segment*> segments{internal::Segment::of(blocks[0])};
      for (int i = 0; i < 40'000 && segments.size() < 4; ++i) {
        more.push_back(survivor.heap(1).allocate(1024));
        const internal::Segment* s = internal::Segment::of(more.back());
        if (s != segments.back()) segments.push_back(s);
      }
      c.expect(segments.size() == 4, "the child grows its heap");
      c.expect(segments.size() > 1 && segments[1] == ready, "the segment held ready serves the child");
      c.expect(!rt.core().segments.populator_started_for_testing(), "still none after the heap grew");
      c.expect(rt.core().segments.populated_reserve_for_testing() == nullptr, "nothing held ready");
      for (void* p : more) tagheap::free(p);
      rt.verify();
      survivor.detach();
      survivor.~ThreadState();
      rt.~Runtime();  // no thread to join
      c.finish();
    });
    CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
    for (void* p : blocks) tagheap::free(p);
    survivor.detach();
  }
}
