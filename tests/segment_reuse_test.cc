// Segment memory follows the program's recent peak: a heap that empties and
// refills many segments over and over (as a collector's sweeps make it)
// keeps them mapped instead of unmapping and mapping them again; once fewer
// segments have been in use for a while the extra empty ones go back, a
// bounded number per page taken or given back; and
// trim() gives back every empty one at once. Free pages that aged are
// released a bounded step at a time. The pool's clock is a manual one here,
// so no test depends on how fast the machine runs.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

std::atomic<std::int64_t> g_now_ms{1'000'000};
std::int64_t manual_clock() noexcept { return g_now_ms.load(std::memory_order_relaxed); }

// The runtime's segment pool reads the manual clock for the scope.
struct ManualClock {
  Runtime& rt;
  explicit ManualClock(Runtime& r) : rt(r) { rt.core().segments.set_clock_for_testing(&manual_clock); }
  ~ManualClock() { rt.core().segments.set_clock_for_testing(nullptr); }
  void advance_ms(std::int64_t ms) { g_now_ms.fetch_add(ms, std::memory_order_relaxed); }
};

constexpr std::size_t kBlock = 8 * 1024;  // the largest small block: 8 per 64 KiB page
constexpr std::size_t kBlocksPerSegment = internal::kSegmentSize / kBlock;

// About `segments` small segments full of blocks.
std::vector<void*> fill_segments(Heap& heap, std::size_t segments) {
  std::vector<void*> blocks;
  bool all = true;
  for (std::size_t i = 0; i < segments * kBlocksPerSegment; ++i) {
    void* p = heap.allocate(kBlock);
    all &= p != nullptr;
    if (p != nullptr) blocks.push_back(p);
  }
  REQUIRE(all);
  return blocks;
}

void free_all(std::vector<void*>& blocks) {
  for (void* p : blocks) tagheap::free(p);
  blocks.clear();
}

std::size_t os_map_calls() { return os::call_counts().maps + os::call_counts().unmaps; }
std::size_t os_release_calls() { return os::call_counts().decommits; }

RuntimeOptions without_huge_os_pages() {
  RuntimeOptions o;
  o.huge_os_pages_above = 0;
  return o;
}

// A runtime on the manual clock whose heap filled 32 segments and freed
// every block: they are all empty now, and kept. Without huge OS pages: the
// free pages of huge-page segments are not aged and released one by one
// (huge_os_pages_test has those).
struct EmptiedSegments {
  Runtime rt{without_huge_os_pages()};
  ManualClock clock{rt};
  AttachedState ts{rt};
  std::size_t base = os::mapped_bytes();
  std::size_t kept = 0;
  EmptiedSegments() {
    std::vector<void*> blocks = fill_segments(ts.heap(0), 32);
    free_all(blocks);
    kept = rt.stats().empty_segments;
    CHECK(kept >= 24);
  }
};

}  // namespace

TEST_SUITE("alloc.segment_reuse") {
  TEST_CASE_FIXTURE(EmptiedSegments, "a heap emptied and refilled over and over maps and unmaps nothing after the first round") {
    std::vector<void*> blocks;
    const std::size_t calls = os_map_calls();
    const RuntimeStats before = rt.stats();
    // 40 rounds, an eighth of a segment window apart on the pool's clock:
    // five windows in all, so pages age and the segment peak moves through
    // several windows.
    for (int round = 0; round < 40; ++round) {
      clock.advance_ms(internal::kSegmentWindowMs / 8);
      blocks = fill_segments(ts.heap(0), 32);
      free_all(blocks);
    }
    const RuntimeStats after = rt.stats();
    CHECK(os_map_calls() == calls);
    CHECK(after.segments_mapped_total == before.segments_mapped_total);
    CHECK(after.segments_unmapped_total == before.segments_unmapped_total);
    CHECK(after.segments == before.segments);
    rt.verify();
  }

  TEST_CASE_FIXTURE(EmptiedSegments, "empty segments beyond the recent peak go back after a quiet period") {
    // Still within the peak's memory: activity keeps them.
    clock.advance_ms(internal::kSegmentWindowMs * 3 / 5);
    std::vector<void*> blocks = fill_segments(ts.heap(0), 1);
    free_all(blocks);
    CHECK(rt.stats().empty_segments >= kept - 1);
    // Two segment windows with the program using one segment: the pages
    // taken or given back next let the extra empty segments go, a bounded
    // step each (unmapping them all in one call stalled that allocation).
    clock.advance_ms(2 * internal::kSegmentWindowMs + internal::kSegmentWindowMs / 5);
    const std::size_t unmapped_before = rt.stats().segments_unmapped_total;
    void* p = ts.heap(0).allocate(20'000);  // a medium page: the pool runs its aging
    REQUIRE(p != nullptr);
    CHECK(rt.stats().segments_unmapped_total - unmapped_before <= internal::kSegmentUnmapStep);
    CHECK(rt.stats().empty_segments > internal::kSegmentCacheMax);  // the rest wait for later calls
    // Each first block of another medium size class takes a page: one call.
    std::vector<void*> more;
    std::size_t size = 9'000;
    while (rt.stats().empty_segments > internal::kSegmentCacheMax && more.size() < kept) {
      const std::size_t before = rt.stats().segments_unmapped_total;
      more.push_back(ts.heap(0).allocate(size));
      REQUIRE(more.back() != nullptr);
      CHECK(rt.stats().segments_unmapped_total - before <= internal::kSegmentUnmapStep);
      size += size / 4;
    }
    const RuntimeStats s = rt.stats();
    CHECK(s.empty_segments <= internal::kSegmentCacheMax);
    CHECK(more.size() <= kept / internal::kSegmentUnmapStep + 1);
    // Every other emptied segment was unmapped, or serves the medium pages.
    const std::size_t in_use = s.segments - s.empty_segments;
    CHECK(in_use <= 8);
    CHECK(s.segments_unmapped_total + in_use >= kept - internal::kSegmentCacheMax);
    CHECK(os::mapped_bytes() <= base + (internal::kSegmentCacheMax + in_use + 2) * internal::kSegmentSize);
    for (void* q : more) tagheap::free(q);
    tagheap::free(p);
    rt.verify();
  }

  TEST_CASE_FIXTURE(EmptiedSegments, "aged free pages go back to the OS a bounded step per page taken or given back") {
    // About 128 MiB of free pages, committed. Once they have aged, no single
    // allocation releases them all (it once took 290 ms for 305 MiB): each
    // call into the pool releases at most one step, and the steps go on
    // until only the allowance is left.
    constexpr std::size_t kPage = 64 * 1024;  // a small page: one release call each
    constexpr std::size_t kStepPages = internal::kReleaseStepBytes / kPage;
    clock.advance_ms(internal::kPurgeDelayMs * 3 / 2);
    std::size_t released = 0, most_in_one_round = 0;
    for (int round = 0; round < 400; ++round) {
      if (round == 1) clock.advance_ms(internal::kPurgeDelayMs * 3 / 2);  // the pages become due
      const std::size_t before = os_release_calls();
      std::thread([&] {  // a medium page taken, and given back as its thread state goes: two pool calls
        AttachedState other(rt);
        void* p = other.heap(0).allocate(20'000);
        CHECK(p != nullptr);
        tagheap::free(p);
      }).join();
      const std::size_t now = os_release_calls() - before;
      most_in_one_round = std::max(most_in_one_round, now);
      released += now;
    }
    CHECK(most_in_one_round <= 2 * (kStepPages + 1));
    // 128 MiB less the 8 MiB allowance: all of it, over the rounds.
    CHECK(released * kPage >= (kept - 2) * internal::kSegmentSize - (std::size_t{8} << 20));
    rt.verify();
  }

  TEST_CASE_FIXTURE(EmptiedSegments, "trim() unmaps every empty segment at once") {
    rt.trim();
    const RuntimeStats s = rt.stats();
    CHECK(s.empty_segments == 0);
    // Left: the segment of the heap's last page of the class.
    CHECK(s.segments <= 1);
    CHECK(os::mapped_bytes() <= base + internal::kSegmentSize);
    rt.verify();
  }

  TEST_CASE("an empty segment of one kind serves pages of another kind without a new mapping") {
    Runtime rt(test::without_populator());  // maps counted
    ManualClock clock(rt);
    AttachedState ts(rt);
    std::vector<void*> small = fill_segments(ts.heap(0), 16);
    free_all(small);
    const std::size_t calls = os_map_calls();
    // Medium pages (512 KiB, blocks over 8 KiB): about 12 segments' worth.
    std::vector<void*> medium;
    for (int i = 0; i < 12 * 8 * 20; ++i) medium.push_back(ts.heap(0).allocate(24 * 1024));
    for (void* p : medium) CHECK(p != nullptr);
    CHECK(os_map_calls() == calls);
    rt.verify();
    for (void* p : medium) std::memset(p, 0xAB, 24 * 1024);  // their memory is theirs (ASan agrees)
    free_all(medium);
    // And back to small pages in those segments.
    small = fill_segments(ts.heap(0), 12);
    CHECK(os_map_calls() == calls);
    free_all(small);
    rt.verify();
  }

  TEST_CASE("while the populator runs, the empty segments past the recent peak are unmapped on its thread") {
    // A munmap of a resident segment can take tens of milliseconds on a VM:
    // the allocation that evicts a segment hands it to the populator.
    RuntimeOptions o;
    o.huge_os_pages = true;
    o.populate_ahead_above = 1;  // the populator starts with the first segment
    Runtime rt(o);
    ManualClock clock(rt);
    AttachedState ts(rt);
    const std::size_t base = os::mapped_bytes();
    std::vector<void*> blocks = fill_segments(ts.heap(0), 16);
    free_all(blocks);
    REQUIRE(rt.core().segments.populator_started_for_testing());
    const std::size_t kept = rt.stats().empty_segments;
    CHECK(kept >= 12);
    const std::size_t unmapped_before = rt.stats().segments_unmapped_total;
    clock.advance_ms(2 * internal::kSegmentWindowMs + internal::kSegmentWindowMs / 5);
    // Each first block of another medium size class takes a page: one call
    // into the pool, which evicts at most a step of segments.
    std::vector<void*> more;
    std::size_t size = 9'000;
    while (rt.stats().empty_segments > internal::kSegmentCacheMax && more.size() < kept) {
      more.push_back(ts.heap(0).allocate(size));
      REQUIRE(more.back() != nullptr);
      size += size / 4;
    }
    CHECK(rt.stats().empty_segments <= internal::kSegmentCacheMax);
    // The populator unmaps them (a correctness wait, bounded, not a measurement).
    const std::size_t evicted = kept - rt.stats().empty_segments - 2;  // 2: the medium pages' segments, at most
    std::size_t in_background = 0;
    for (int i = 0; i < 20'000; ++i) {
      in_background = rt.core().segments.segments_unmapped_in_background_for_testing();
      if (in_background >= evicted) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(in_background >= evicted);
    CHECK(rt.stats().segments_unmapped_total - unmapped_before >= in_background);
    rt.verify();
    // Evict more, then trim() at once: whatever is queued or being unmapped
    // is gone when it returns.
    for (void* q : more) tagheap::free(q);
    more.clear();
    blocks = fill_segments(ts.heap(0), 8);
    free_all(blocks);
    clock.advance_ms(2 * internal::kSegmentWindowMs + internal::kSegmentWindowMs / 5);
    void* p = ts.heap(0).allocate(20'000);
    REQUIRE(p != nullptr);
    tagheap::free(p);
    rt.trim();
    CHECK(rt.stats().empty_segments == 0);
    CHECK(os::mapped_bytes() <= base + 2 * internal::kSegmentSize);  // the heap's last pages' segments
    rt.verify();
  }
}
