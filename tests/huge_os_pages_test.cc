// RuntimeOptions::huge_os_pages: segments of small pages ask the kernel for
// transparent huge pages, keep their free pages committed while in use (so
// no 2 MiB page is split by releasing 64 KiB of it), and trim() still gives
// those free pages back. Residency is read with mincore(). With
// huge_os_pages_above, huge pages are asked for no more once three more
// first touches have cost over huge_os_page_fault_limit_ns than under it.
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/page.h"
#include "alloc/internal/segment.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

bool resident(const void* p) {
  const std::uintptr_t page = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095};
  unsigned char v = 0;
  REQUIRE(mincore(reinterpret_cast<void*>(page), 4096, &v) == 0);
  return (v & 1) != 0;
}

constexpr std::size_t kBlock = 8 * 1024;
constexpr std::size_t kBlocks = internal::kSegmentSize / kBlock - 24;  // most of one segment

RuntimeOptions with_huge_os_pages() {
  RuntimeOptions o;
  o.huge_os_pages = true;
  return o;
}

// A CPU clock for SegmentPool::set_cpu_clock_for_testing: each reading
// advances it by a step, so an interval timed with two readings is one
// step; the step on the thread that set it and on any other (the
// populator's) may differ. Per thread, as a thread's CPU time is: one
// shared counter let the populator's readings land inside this thread's
// intervals.
struct FakeCpuClock {
  static inline thread_local std::int64_t now = 0;
  static inline std::int64_t step_here = 0, step_elsewhere = 0;
  static inline std::thread::id here;
  static void set(std::int64_t here_ns, std::int64_t elsewhere_ns) {
    step_here = here_ns;
    step_elsewhere = elsewhere_ns;
    here = std::this_thread::get_id();
  }
  static std::int64_t read() noexcept {
    const std::int64_t step = std::this_thread::get_id() == here ? step_here : step_elsewhere;
    return now += step;
  }
};

// Huge pages past two segments in use, no populator.
RuntimeOptions above_two_segments() {
  RuntimeOptions o;
  o.huge_os_pages_above = 2 * internal::kSegmentSize;
  o.populate_ahead_above = 0;
  return o;
}

// Huge pages from the second segment on, and the populator with them.
RuntimeOptions huge_from_the_second_segment_populated() {
  RuntimeOptions o;
  o.huge_os_pages_above = internal::kSegmentSize;
  o.populate_ahead_above = 1;
  return o;
}

// Allocates kBlock blocks (kept in `blocks`) until `n` more segments hold
// some; for each, in the order first used, the huge-page advices made
// since the call, counted when its first block came.
std::vector<std::size_t> advices_as_segments_are_used(Heap& heap, std::size_t n, std::vector<void*>& blocks) {
  const std::size_t before = os::call_counts().huge_page_advices;
  std::vector<std::uintptr_t> segments;
  for (void* p : blocks) segments.push_back(reinterpret_cast<std::uintptr_t>(p) >> internal::kSegmentShift);
  std::vector<std::size_t> advices;
  while (advices.size() < n) {
    void* p = heap.allocate(kBlock);
    REQUIRE(p != nullptr);
    blocks.push_back(p);
    const std::uintptr_t seg = reinterpret_cast<std::uintptr_t>(p) >> internal::kSegmentShift;
    if (std::find(segments.begin(), segments.end(), seg) == segments.end()) {
      segments.push_back(seg);
      advices.push_back(os::call_counts().huge_page_advices - before);
    }
  }
  return advices;
}

std::vector<void*> fill_most_of_a_segment(Heap& heap) {
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < kBlocks; ++i) {
    void* p = heap.allocate(kBlock);
    REQUIRE(p != nullptr);
    blocks.push_back(p);
  }
  return blocks;
}

}  // namespace

TEST_SUITE("alloc.huge_os_pages") {
  TEST_CASE("a segment's bitmaps lie in its first 2 MiB, so touching them never faults in its second half") {
    // Marks, log bits and thread-free bits are written for a page in use
    // (a collection, a free from another thread). Were they at the segment's
    // end, on huge OS pages the first such write would fault in the last
    // 2 MiB whole, pages unused or not.
    Runtime rt(with_huge_os_pages());
    AttachedState ts(rt);
    void* p = ts.heap(0).allocate(64);
    void* keep = ts.heap(0).allocate(64);
    internal::Segment* seg = internal::Segment::of(p);
    const std::uintptr_t half = seg->base() + internal::kSegmentSize / 2;
    for (std::size_t i = seg->first_page; i < seg->page_count; ++i) {
      const internal::Page& page = seg->pages[i];
      CHECK(reinterpret_cast<std::uintptr_t>(&page.mark_word(0)) < seg->pages[seg->first_page].area);
      CHECK(reinterpret_cast<std::uintptr_t>(&page.log_word(internal::kBitmapWords - 1)) < half);
      CHECK(reinterpret_cast<std::uintptr_t>(&page.thread_free_word(internal::kBitmapWords - 1)) < half);
    }
    std::thread([&] { tagheap::free(p); }).join();  // sets a thread-free bit
    CHECK(!resident(reinterpret_cast<void*>(half + internal::kSegmentSize / 4)));
    tagheap::free(keep);
    rt.verify();
  }

  TEST_CASE("segments of small pages ask for huge OS pages only with the option") {
    for (const bool on : {false, true}) {
      CAPTURE(on);
      RuntimeOptions o;
      o.huge_os_pages = on;
      o.populate_ahead_above = 0;  // its segments ask too, on its own thread's time (populate_ahead_test)
      Runtime rt(o);
      AttachedState ts(rt);
      const std::size_t before = os::call_counts().huge_page_advices;
      void* small = ts.heap(0).allocate(100);
      void* medium = ts.heap(0).allocate(20'000);  // medium pages: no advice
      REQUIRE(small != nullptr);
      REQUIRE(medium != nullptr);
      CHECK(os::call_counts().huge_page_advices - before == (on ? 1u : 0u));
      tagheap::free(small);
      tagheap::free(medium);
    }
  }

  TEST_CASE("with huge_os_pages_above, only segments mapped once that many bytes are in use ask for huge pages") {
    RuntimeOptions o;
    o.huge_os_pages_above = 2 * internal::kSegmentSize;
    o.populate_ahead_above = 0;  // as above: only the allocating thread's segments counted
    o.huge_os_page_fault_limit_ns = 0;  // however dear this machine's huge pages (the cases below)
    Runtime rt(o);
    AttachedState ts(rt);
    const std::size_t before = os::call_counts().huge_page_advices;
    std::vector<void*> blocks;
    std::vector<std::uintptr_t> segments;  // in the order they were first used
    while (segments.size() < 4) {
      void* p = ts.heap(0).allocate(kBlock);
      REQUIRE(p != nullptr);
      blocks.push_back(p);
      const std::uintptr_t seg = reinterpret_cast<std::uintptr_t>(p) >> internal::kSegmentShift;
      if (std::find(segments.begin(), segments.end(), seg) == segments.end()) {
        segments.push_back(seg);
        // The first two were mapped with fewer than two segments in use.
        CHECK(os::call_counts().huge_page_advices - before == (segments.size() <= 2 ? 0u : segments.size() - 2));
      }
    }
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  // RuntimeOptions::huge_os_page_fault_limit_ns (internal/segment_pool.h,
  // "Huge pages that come dear"): the pool times the huge-page faults it
  // makes itself with a CPU clock, here a fake one that advances a fixed
  // step per reading, so every timed fault costs exactly that step.
  TEST_CASE("once three more faults pass huge_os_page_fault_limit_ns than stay under it, later segments ask for none") {
    FakeCpuClock::set(5'000'000, 5'000'000);  // 5 ms a fault, over the default 2 ms
    RuntimeOptions o = above_two_segments();
    Runtime rt(o);
    rt.core().segments.set_cpu_clock_for_testing(&FakeCpuClock::read);
    AttachedState ts(rt);
    std::vector<void*> blocks;
    // The third, fourth and fifth segments ask (and are timed); none after them.
    CHECK(advices_as_segments_are_used(ts.heap(0), 8, blocks) == std::vector<std::size_t>{0, 0, 1, 2, 3, 3, 3, 3});
    CHECK(rt.core().segments.huge_os_page_declines() == internal::kHugeDearVerdict);
    CHECK(rt.stats().huge_os_pages_declined);
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("a dear fault among cheap ones leaves huge pages on; each cheap one takes a dear one back") {
    FakeCpuClock::set(1'000, 1'000);
    Runtime rt(above_two_segments());
    rt.core().segments.set_cpu_clock_for_testing(&FakeCpuClock::read);
    AttachedState ts(rt);
    std::vector<void*> blocks;
    const auto next_segment_costs = [&](std::int64_t ns) {
      FakeCpuClock::set(ns, ns);
      return advices_as_segments_are_used(ts.heap(0), 1, blocks).front();  // 1: it asked for huge pages
    };
    CHECK(advices_as_segments_are_used(ts.heap(0), 3, blocks) == std::vector<std::size_t>{0, 0, 1});  // cheap
    CHECK(next_segment_costs(5'000'000) == 1);
    CHECK(next_segment_costs(1'000) == 1);
    CHECK(next_segment_costs(1'000) == 1);
    CHECK(rt.core().segments.huge_os_page_declines() == 1);
    CHECK(!rt.stats().huge_os_pages_declined);
    // Dear, dear, cheap, dear, dear: 1, 2, 1, 2, 3, the verdict at the last.
    for (const std::int64_t ns : {5'000'000, 5'000'000, 1'000, 5'000'000}) {
      CHECK(next_segment_costs(ns) == 1);
      CHECK(!rt.core().segments.huge_os_pages_declined());
    }
    CHECK(next_segment_costs(5'000'000) == 1);
    CHECK(rt.core().segments.huge_os_pages_declined());
    CHECK(rt.core().segments.huge_os_page_declines() == 5);
    CHECK(next_segment_costs(1'000) == 0);  // no probe later
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("huge pages whose faults stay under the limit keep being asked for") {
    FakeCpuClock::set(1'000, 1'000);  // 1 us a fault
    Runtime rt(above_two_segments());
    rt.core().segments.set_cpu_clock_for_testing(&FakeCpuClock::read);
    AttachedState ts(rt);
    std::vector<void*> blocks;
    CHECK(advices_as_segments_are_used(ts.heap(0), 6, blocks) == std::vector<std::size_t>{0, 0, 1, 2, 3, 4});
    CHECK(rt.core().segments.huge_os_page_declines() == 0);
    CHECK(!rt.stats().huge_os_pages_declined);
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("a fault limit of 0 asks for huge pages however dear, and so does huge_os_pages") {
    FakeCpuClock::set(5'000'000, 5'000'000);
    for (const bool every_segment : {false, true}) {
      CAPTURE(every_segment);
      RuntimeOptions o = above_two_segments();
      if (every_segment) {
        o.huge_os_pages = true;  // the limit stays at its default
      } else {
        o.huge_os_page_fault_limit_ns = 0;
      }
      Runtime rt(o);
      rt.core().segments.set_cpu_clock_for_testing(&FakeCpuClock::read);
      AttachedState ts(rt);
      std::vector<void*> blocks;
      const std::vector<std::size_t> expected =
          every_segment ? std::vector<std::size_t>{1, 2, 3, 4, 5} : std::vector<std::size_t>{0, 0, 1, 2, 3};
      CHECK(advices_as_segments_are_used(ts.heap(0), 5, blocks) == expected);
      for (void* p : blocks) tagheap::free(p);
      rt.verify();
    }
  }

  TEST_CASE("the populator's faults count too, and the reserve it faulted in is still taken first") {
    // Cheap on this thread, dear on the populator's: its faulting in alone decides.
    FakeCpuClock::set(1'000, 5'000'000);
    Runtime rt(huge_from_the_second_segment_populated());
    rt.core().segments.set_cpu_clock_for_testing(&FakeCpuClock::read);
    AttachedState ts(rt);
    std::vector<void*> blocks;
    internal::SegmentPool& pool = rt.core().segments;
    advices_as_segments_are_used(ts.heap(0), 2, blocks);  // the second asks the populator for a reserve
    // Each reserve, taken as soon as it is ready (so that this thread maps
    // none of its own, whose cheap faults would count down), asks for the
    // next; the third dear one is the verdict. (Correctness waits, bounded,
    // not measurements.)
    for (int round = 0; round < 10 && !pool.huge_os_pages_declined(); ++round) {
      for (int i = 0; i < 20'000 && pool.populated_reserve_for_testing() == nullptr && !pool.huge_os_pages_declined();
           ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const internal::Segment* reserve = pool.populated_reserve_for_testing();
      if (reserve == nullptr) break;  // the verdict came while none was held
      advices_as_segments_are_used(ts.heap(0), 1, blocks);
      CHECK(internal::Segment::of(blocks.back()) == reserve);
    }
    for (int i = 0; i < 20'000 && !pool.huge_os_pages_declined(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(pool.huge_os_pages_declined());
    // Every dear fault is the populator's (this thread's all cost 1 us);
    // one made while the last reserve was taken may count past the verdict.
    CHECK(pool.huge_os_page_declines() >= internal::kHugeDearVerdict);
    const std::size_t after_verdict = os::call_counts().huge_page_advices;
    // The reserve, unless a segment of this thread took it already, is the next segment used.
    if (const internal::Segment* reserve = pool.populated_reserve_for_testing()) {
      advices_as_segments_are_used(ts.heap(0), 1, blocks);
      CHECK(internal::Segment::of(blocks.back()) == reserve);
    }
    // Segments mapped from now on ask for none.
    advices_as_segments_are_used(ts.heap(0), 3, blocks);
    CHECK(os::call_counts().huge_page_advices == after_verdict);
    for (void* q : blocks) tagheap::free(q);
    rt.verify();
  }

  TEST_CASE("once huge pages came dear, the populator goes on faulting segments in ahead, on small OS pages") {
    FakeCpuClock::set(5'000'000, 5'000'000);  // every huge-page fault dear, on any thread
    Runtime rt(huge_from_the_second_segment_populated());
    rt.core().segments.set_cpu_clock_for_testing(&FakeCpuClock::read);
    AttachedState ts(rt);
    internal::SegmentPool& pool = rt.core().segments;
    std::vector<void*> blocks;
    // Take segments (the populator's reserves among them) until the verdict.
    for (int i = 0; i < 64 && !pool.huge_os_pages_declined(); ++i) {
      advices_as_segments_are_used(ts.heap(0), 1, blocks);
      for (int w = 0; w < 200 && pool.populated_reserve_for_testing() == nullptr && !pool.huge_os_pages_declined(); ++w)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(pool.huge_os_pages_declined());
    // A reserve made before the verdict is on huge pages: take it. The next
    // one comes all the same, on small OS pages, resident before any
    // allocation needs it, and is the segment the heap takes next.
    // (Correctness waits, bounded, not measurements.)
    const internal::Segment* reserve = nullptr;
    for (int round = 0; round < 4 && reserve == nullptr; ++round) {
      for (int w = 0; w < 20'000 && pool.populated_reserve_for_testing() == nullptr; ++w)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const internal::Segment* ready = pool.populated_reserve_for_testing();
      REQUIRE(ready != nullptr);
      if (!ready->huge_os_pages) reserve = ready;
      else advices_as_segments_are_used(ts.heap(0), 1, blocks);
    }
    REQUIRE(reserve != nullptr);
    const std::size_t declines = pool.huge_os_page_declines();
    for (std::uintptr_t a = reserve->base(); a < reserve->base() + reserve->size; a += 64 * 1024)
      CHECK(resident(reinterpret_cast<const void*>(a)));
    const std::size_t advices = os::call_counts().huge_page_advices;
    advices_as_segments_are_used(ts.heap(0), 1, blocks);
    CHECK(internal::Segment::of(blocks.back()) == reserve);
    CHECK(os::call_counts().huge_page_advices == advices);
    // Resident already: its pages are not populated again (Page::populated).
    const internal::Page* page = internal::Segment::of(blocks.back())->page_of(blocks.back());
    CHECK(page->populated == page->area_size);
    // Faulting in small pages is not timed: no verdict counts it.
    CHECK(pool.huge_os_page_declines() == declines);
    for (void* q : blocks) tagheap::free(q);
    rt.verify();
  }

  TEST_CASE("with huge OS pages, free pages of a segment in use stay committed until trim()") {
    RuntimeOptions o;
    o.huge_os_pages = true;
    Runtime rt(o);
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < kBlocks; ++i) {
      void* p = ts.heap(0).allocate(kBlock);
      REQUIRE(p != nullptr);
      std::memset(p, 0x5A, kBlock);  // resident now
      blocks.push_back(p);
    }
    // Keep the first block: its segment stays in use. Free the rest.
    for (std::size_t i = 1; i < blocks.size(); ++i) tagheap::free(blocks[i]);
    const auto resident_count = [&] {
      std::size_t n = 0;
      for (std::size_t i = 1; i < blocks.size(); ++i) n += resident(blocks[i]);
      return n;
    };
    // Any amount of aging leaves them committed (nothing splits the huge
    // pages); trim() releases all but the heap's last page of the class.
    CHECK(resident_count() == blocks.size() - 1);
    rt.trim();
    CHECK(resident_count() <= 2 * (std::size_t{1} << internal::kSmallPageShift) / kBlock);
    tagheap::free(blocks[0]);
    rt.verify();
  }

  // khugepaged collapses a 2 MiB range with as few as one page present
  // (max_ptes_none 511 by default): with the advice left on, the pages
  // trim() just decommitted come back as part of a huge page, at any time.
  TEST_CASE("trim() withdraws the huge-page advice from a segment it decommits, and reuse advises again") {
    Runtime rt(with_huge_os_pages());
    AttachedState ts(rt);
    std::vector<void*> blocks = fill_most_of_a_segment(ts.heap(0));
    for (std::size_t i = 1; i < blocks.size(); ++i) tagheap::free(blocks[i]);
    const os::CallCounts before_trim = os::call_counts();
    rt.trim();
    const os::CallCounts after_trim = os::call_counts();
    CHECK(after_trim.no_huge_page_advices - before_trim.no_huge_page_advices == 1);
    CHECK(after_trim.huge_page_advices == before_trim.huge_page_advices);
    rt.trim();  // already withdrawn: no second call
    CHECK(os::call_counts().no_huge_page_advices == after_trim.no_huge_page_advices);
    // The segment's pages are taken again: it is dense again, so advised again.
    for (std::size_t i = 1; i < blocks.size(); ++i) blocks[i] = ts.heap(0).allocate(kBlock);
    CHECK(os::call_counts().huge_page_advices - after_trim.huge_page_advices == 1);
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("an empty segment of small pages laid out again for medium pages loses the huge-page advice") {
    Runtime rt(with_huge_os_pages());
    {
      AttachedState ts(rt);
      for (void* p : fill_most_of_a_segment(ts.heap(0))) tagheap::free(p);
    }  // the thread state's end gives its empty pages back: the segment is empty
    AttachedState ts(rt);
    const os::CallCounts before = os::call_counts();
    void* medium = ts.heap(0).allocate(100'000);
    REQUIRE(medium != nullptr);
    CHECK(os::call_counts().maps == before.maps);  // the empty small segment, laid out again
    CHECK(os::call_counts().no_huge_page_advices - before.no_huge_page_advices == 1);
    tagheap::free(medium);
    rt.verify();
  }
}
