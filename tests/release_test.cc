// Pages and segments go back: after everything is freed, the memory mapped
// for a runtime is empty segments kept for reuse (no more than its recent
// peak; segment_reuse_test pins how long), and trim() gives them back; huge
// blocks are unmapped on free or trim; a destroyed runtime unmaps everything.
#include <doctest/doctest.h>

#include <memory>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

TEST_SUITE("alloc.release") {
  TEST_CASE("freeing every block leaves only empty segments, and trim() unmaps them") {
    const std::size_t before_runtime = os::mapped_bytes();
    {
      Runtime rt(test::without_populator());  // maps counted
      const std::size_t base = os::mapped_bytes();
      auto ts = std::make_unique<AttachedState>(rt);
      std::vector<void*> blocks;
      // About 100 MiB: small (one class), medium and large blocks.
      for (int i = 0; i < 150'000; ++i) blocks.push_back(ts->heap(0).allocate(256));
      for (int i = 0; i < 1'000; ++i) blocks.push_back(ts->heap(0).allocate(24 * 1024));
      for (int i = 0; i < 100; ++i) blocks.push_back(ts->heap(0).allocate(400 * 1024));
      CHECK(os::mapped_bytes() >= base + (90u << 20));
      for (void* p : blocks) tagheap::free(p);

      // Empty segments stay mapped while the recent peak may want them
      // again (segment_reuse_test); they never outnumber that peak.
      const std::size_t peak = os::mapped_bytes();
      ts.reset();
      // Gone with it: every segment left is empty.
      RuntimeStats s = rt.stats();
      CHECK(s.total.pages == 0);
      CHECK(s.segments == s.empty_segments);
      CHECK(os::mapped_bytes() <= peak);
      rt.verify();

      // Empty segments serve the next allocations without new maps.
      const std::size_t regions = os::mapped_regions();
      {
        AttachedState again(rt);
        std::vector<void*> more;
        for (int i = 0; i < 10'000; ++i) more.push_back(again.heap(0).allocate(256));
        CHECK(os::mapped_regions() <= regions);
        for (void* p : more) tagheap::free(p);
      }
      // trim() gives back every empty segment.
      rt.trim();
      CHECK(rt.stats().segments == 0);
      CHECK(os::mapped_bytes() == base);
    }
    // A destroyed runtime unmaps every segment, cached ones included.
    CHECK(os::mapped_bytes() == before_runtime);
  }

  TEST_CASE("the same work, repeated, does not grow the mapped memory") {
    Runtime rt(test::without_populator());  // maps counted
    std::size_t after_first = 0;
    for (int round = 0; round < 5; ++round) {
      std::thread([&] {
        AttachedState ts(rt);
        std::vector<void*> blocks;
        for (int i = 0; i < 60'000; ++i) blocks.push_back(ts.heap(static_cast<Tag>(i % 3)).allocate(16 + i % 2000));
        for (void* p : blocks) tagheap::free(p);
      }).join();
      if (round == 0) after_first = os::mapped_bytes();
      CHECK(os::mapped_bytes() <= after_first);
      CHECK(rt.stats().total.pages == 0);
    }
    rt.verify();
  }

  TEST_CASE("a freed huge segment is reused by the next huge block of about its size, and trim() unmaps it") {
    Runtime rt(test::without_populator());  // maps counted
    AttachedState ts(rt);
    const std::size_t before = os::mapped_bytes(), regions = os::mapped_regions();
    void* p = ts.heap(0).allocate(12 << 20);
    REQUIRE(p != nullptr);
    CHECK(os::mapped_bytes() >= before + (12u << 20));
    CHECK(os::mapped_regions() == regions + 1);
    std::thread([&] { tagheap::free(p); }).join();  // from any thread
    CHECK(rt.stats().total.pages == 0);
    CHECK(os::mapped_regions() == regions + 1);  // cached
    void* q = ts.heap(1).allocate(10 << 20);    // fits: reused, retagged
    CHECK(q == p);
    CHECK(tag_of(q) == 1);
    CHECK(usable_size(q) >= (10u << 20));
    CHECK(os::mapped_regions() == regions + 1);
    void* small = ts.heap(0).allocate(2 << 20);  // less than a quarter of it: a segment of its own
    CHECK(os::mapped_regions() == regions + 2);
    tagheap::free(q);
    tagheap::free(small);
    rt.trim();
    CHECK(os::mapped_bytes() == before);
    CHECK(os::mapped_regions() == regions);
    ts.ts.detach();
  }

  TEST_CASE("a huge block takes the smallest cached segment that fits it") {
    Runtime rt(test::without_populator());  // maps counted
    AttachedState ts(rt);
    const std::size_t regions = os::mapped_regions();
    void* big = ts.heap(0).allocate(8 << 20);
    void* medium = ts.heap(0).allocate(5 << 20);
    void* other = ts.heap(0).allocate(3 << 20);
    tagheap::free(big);
    tagheap::free(medium);
    tagheap::free(other);
    CHECK(os::mapped_regions() == regions + 3);  // all three cached
    void* q = ts.heap(0).allocate(4 << 20);
    CHECK(q == medium);  // not the 8 MiB one, not the 3 MiB one (too small)
    void* r = ts.heap(0).allocate(2 << 20);
    CHECK(r == other);
    void* t = ts.heap(0).allocate(2 << 20);  // 8 MiB is at most 4 times 2 MiB (plus header)
    CHECK(t == big);
    CHECK(os::mapped_regions() == regions + 3);
    for (void* p : {q, r, t}) tagheap::free(p);
    rt.trim();
    CHECK(os::mapped_regions() == regions);
    ts.ts.detach();
  }

  TEST_CASE("the huge cache grows past kHugeCacheBytes while that much huge memory was in use just before") {
    Runtime rt(test::without_populator());  // maps counted
    AttachedState ts(rt);
    const std::size_t regions = os::mapped_regions();
    constexpr int kBlocks = 7;
    constexpr std::size_t kSize = 14 << 20;  // 98 MiB in all: more than the fixed 64 MiB floor
    static_assert(kBlocks * kSize > internal::kHugeCacheBytes && kSize < internal::kHugeCacheBytes / 4);
    void* blocks[kBlocks];
    for (void*& p : blocks) p = ts.heap(0).allocate(kSize);
    CHECK(os::mapped_regions() == regions + kBlocks);
    for (void* p : blocks) tagheap::free(p);
    CHECK(os::mapped_regions() == regions + kBlocks);  // every one cached
    for (void*& p : blocks) p = ts.heap(0).allocate(kSize);
    CHECK(os::mapped_regions() == regions + kBlocks);  // and reused
    for (void* p : blocks) tagheap::free(p);
    rt.trim();
    CHECK(os::mapped_regions() == regions);
    ts.ts.detach();
  }

  TEST_CASE("a huge block larger than a quarter of the huge cache is unmapped as soon as it is freed") {
    Runtime rt(test::without_populator());  // maps counted
    AttachedState ts(rt);
    const std::size_t before = os::mapped_bytes(), regions = os::mapped_regions();
    void* p = ts.heap(0).allocate(internal::kHugeCacheBytes / 4 + (1 << 20));
    REQUIRE(p != nullptr);
    CHECK(os::mapped_regions() == regions + 1);
    tagheap::free(p);
    CHECK(os::mapped_bytes() == before);
    CHECK(os::mapped_regions() == regions);
    ts.ts.detach();
  }

  TEST_CASE("blocks freed by other threads let their pages go back too") {
    Runtime rt(test::without_populator());  // maps counted
    const std::size_t base = os::mapped_bytes();
    std::vector<void*> blocks;
    AttachedState ts(rt);
    for (int i = 0; i < 100'000; ++i) blocks.push_back(ts.heap(0).allocate(256));  // 25 MB, one class
    CHECK(os::mapped_bytes() >= base + (16u << 20));
    std::thread([&] {
      for (void* p : blocks) tagheap::free(p);
    }).join();
    // Collected by the owner's next slow path or a walk; a walk here.
    ts.ts.detach();
    CHECK(rt.stats().total.blocks == 0);
    // At most the heap's last page of the class stays in use, in one
    // segment; once trimmed, the empty ones go.
    rt.trim();
    CHECK(os::mapped_bytes() <= base + internal::kSegmentSize);
    ts.ts.attach();
  }
}
