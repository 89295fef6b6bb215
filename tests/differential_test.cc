// Differential test: random allocations and frees checked against a model of
// the live blocks (address -> size, tag, fill pattern). Every block is filled
// with its own byte pattern and checked before it is freed; no two live blocks
// may overlap; usable_size (as good_size told before) and tag_of must agree
// with the model; statistics (taken by a walk) and verify() are compared with
// the model as it goes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/tagheap.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::Rng;

namespace {

constexpr Tag kTags[] = {0, 1, 5, 15};

struct Info {
  std::size_t size;    // requested
  std::size_t usable;  // usable_size at allocation
  std::uint8_t pattern;
  Tag tag;
  std::uint32_t slot;  // index in its pool (small or big)
  bool big;
};

class Model {
 public:
  std::unordered_map<std::uintptr_t, Info> live;
  std::map<std::uintptr_t, std::uintptr_t> spans;  // start -> end (usable)
  std::vector<std::uintptr_t> small, big;          // big: usable > 64 KiB
  std::size_t per_tag[kTagCount] = {};

  // False when [p, p + usable) meets a live block.
  bool overlaps(std::uintptr_t p, std::size_t usable) const {
    auto it = spans.upper_bound(p);
    if (it != spans.end() && it->first < p + usable) return true;
    if (it != spans.begin() && std::prev(it)->second > p) return true;
    return false;
  }
  void add(std::uintptr_t p, Info info) {
    auto& pool = info.big ? big : small;
    info.slot = static_cast<std::uint32_t>(pool.size());
    pool.push_back(p);
    spans.emplace(p, p + info.usable);
    ++per_tag[info.tag];
    live.emplace(p, info);
  }
  Info remove(std::uintptr_t p) {
    auto it = live.find(p);
    const Info info = it->second;
    auto& pool = info.big ? big : small;
    const std::uintptr_t last = pool.back();
    pool[info.slot] = last;
    live.at(last).slot = info.slot;
    pool.pop_back();
    spans.erase(p);
    --per_tag[info.tag];
    live.erase(it);
    return info;
  }
};

std::size_t random_size(Rng& rng) {
  const std::uint64_t r = rng.below(1000);
  if (r < 5) return 0;
  if (r < 800) return rng.range(1, 256);
  if (r < 930) return rng.range(257, 8192);
  if (r < 985) return rng.range(8193, 64 * 1024);
  if (r < 998) return rng.range(64 * 1024 + 1, 512 * 1024);
  return rng.range(512 * 1024 + 1, 3 * 1024 * 1024);  // huge
}

std::size_t random_alignment(Rng& rng) {
  const std::uint64_t r = rng.below(1000);
  if (r < 995) return std::size_t{1} << rng.range(0, 12);  // 1 .. 4096
  return std::size_t{1} << rng.range(13, 16);              // 8 KiB .. 64 KiB: huge pages
}

// Compares the walk-based statistics with the model, tag by tag.
void check_stats(Runtime& rt, const Model& model) {
  const RuntimeStats s = rt.stats();
  CHECK(s.total.blocks == model.live.size());
  for (Tag t : kTags) CHECK(s.tags[t].blocks == model.per_tag[t]);
}

}  // namespace

TEST_SUITE("alloc.differential") {
  TEST_CASE("random allocations and frees agree with a model of the live blocks") {
    const std::uint64_t kOps = 2'000'000;
    Runtime rt({.gc_tags = {1, 5}});
    Model model;
    Rng rng(20240601);
    std::uint64_t serial = 0;
    std::size_t failures = 0;  // counted, so one broken path does not flood the log
    {
      ThreadState ts(rt);
      ts.attach();

      auto allocate = [&] {
        const Tag tag = kTags[rng.below(std::size(kTags))];
        Heap& heap = ts.heap(tag);
        std::size_t size = random_size(rng);
        // Keep memory bounded: at most 40 live blocks above 64 KiB.
        if (size > 64 * 1024 && model.big.size() >= 40) size = rng.range(1, 512);
        const std::uint64_t how = rng.below(100);
        std::size_t alignment = 16;
        void* p;
        if (how < 70) {
          p = heap.allocate(size);
        } else if (how < 85) {
          p = heap.allocate_zeroed(size);
        } else {
          alignment = random_alignment(rng);
          p = heap.allocate_aligned(size, alignment);
        }
        REQUIRE_MESSAGE(p != nullptr, "allocation of " << size << " bytes failed");
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        const std::size_t usable = usable_size(p);
        bool ok = a % 16 == 0 && a % alignment == 0 && usable >= size && tag_of(p) == tag &&
                  !model.overlaps(a, usable == 0 ? 1 : usable);
        if (how >= 70 && how < 85) ok &= test::filled(p, size, 0);  // allocate_zeroed
        if (how < 85) ok &= usable == good_size(size);                // told before the allocation
        if (!ok && failures++ < 10) {
          FAIL_CHECK("bad block " << p << " for size " << size << " alignment " << alignment << " tag "
                                  << int(tag) << ": usable " << usable << " (good_size " << good_size(size)
                                  << "), tag_of " << int(tag_of(p))
                                  << ", overlaps " << model.overlaps(a, usable == 0 ? 1 : usable));
        }
        const std::uint8_t pattern = test::pattern_of(p, ++serial);
        test::fill(p, size, pattern);
        model.add(a, Info{size, usable, pattern, tag, 0, usable > 64 * 1024});
      };

      auto free_one = [&](std::uintptr_t a) {
        void* p = reinterpret_cast<void*>(a);
        const Info info = model.remove(a);
        const bool ok = test::filled(p, info.size, info.pattern) && usable_size(p) == info.usable &&
                        tag_of(p) == info.tag;
        if (!ok && failures++ < 10)
          FAIL_CHECK("block " << p << " (size " << info.size << ", tag " << int(info.tag)
                              << ") changed while live: usable " << usable_size(p) << ", tag_of "
                              << int(tag_of(p)));
        tagheap::free(p);
      };

      auto free_random = [&] {
        // Big blocks leave sooner, so that they come and go often.
        const bool big = !model.big.empty() && (model.small.empty() || rng.chance(3));
        auto& pool = big ? model.big : model.small;
        free_one(pool[rng.below(pool.size())]);
      };

      // Phases alternate between growing and shrinking the live set; every
      // fourth phase drains it completely, so pages empty and come back.
      const std::uint64_t kPhase = 100'000;
      for (std::uint64_t op = 0; op < kOps; ++op) {
        const std::uint64_t phase = op / kPhase;
        const unsigned alloc_percent = phase % 2 == 0 ? 60 : 42;
        if (phase % 4 == 3 && op % kPhase > kPhase / 2 && !model.live.empty()) {
          free_random();
        } else if (model.live.empty() || rng.chance(alloc_percent)) {
          allocate();
        } else {
          free_random();
        }
        if (op % 250'000 == 0) {
          ts.detach();  // the world is stopped: only this thread exists
          check_stats(rt, model);
          rt.verify();
          ts.attach();
        }
      }
      ts.detach();
      check_stats(rt, model);
      rt.verify();
      ts.attach();
      // Free everything, in a random order.
      while (!model.live.empty()) free_random();
      ts.detach();

      const RuntimeStats s = rt.stats();
      CHECK(s.total.blocks == 0);
      CHECK(s.total.bytes_in_use == 0);
      CHECK(s.total.huge_pages == 0);
      rt.verify();
      std::size_t visited = 0;
      visit_blocks(rt, TagSet::all(), [&](const BlockRef&) { ++visited; });
      CHECK(visited == 0);
    }
    // With the thread state gone, its kept pages (empty) went back too; once
    // trimmed, only the cached empty segments stay (no huge ones).
    RuntimeStats s = rt.stats();
    CHECK(s.total.pages == 0);
    rt.trim();
    s = rt.stats();
    CHECK(s.segments <= internal::kSegmentCacheMax);
    rt.verify();
    CHECK(failures == 0);
  }

  TEST_CASE("good_size tells the usable size of the block an allocation will get") {
    Runtime rt;
    tagheap::test::AttachedState ts(rt);
    Heap& heap = ts.heap(0);
    std::vector<std::size_t> sizes;
    for (std::size_t n = 0; n <= 4096; ++n) sizes.push_back(n);
    for (std::size_t n = 8192; n <= internal::kLargeBlockMax * 4; n = n * 5 / 4)
      for (std::size_t d : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16}}) sizes.push_back(n - d);
    for (std::size_t n : {internal::kLargeBlockMax - 1, internal::kLargeBlockMax, internal::kLargeBlockMax + 1,
                          internal::kLargeBlockMax + 17})
      sizes.push_back(n);
    int failures = 0;
    for (const std::size_t n : sizes) {
      void* p = heap.allocate(n);
      REQUIRE(p != nullptr);
      if (usable_size(p) != good_size(n) && failures++ < 10)
        FAIL_CHECK("size " << n << ": usable " << usable_size(p) << ", good_size " << good_size(n));
      CHECK(good_size(n) >= n);
      tagheap::free(p);
    }
    CHECK(failures == 0);
    CHECK(good_size(0) == 16);
    CHECK(good_size(128) == 128);
    CHECK(good_size(129) == 144);
    // A size no allocation can have: 0, and the allocation fails.
    const std::size_t absurd = internal::kMaxAllocation + 1;
    CHECK(good_size(absurd) == 0);
    CHECK(good_size(SIZE_MAX) == 0);
    CHECK(heap.allocate(absurd) == nullptr);
  }

  TEST_CASE("allocate_cached hands out the cache word's blocks, then nullptr, and allocate goes on") {
    Runtime rt({.gc_tags = {1}});
    tagheap::test::AttachedState ts(rt);
    Heap& heap = ts.heap(1);
    CHECK(heap.allocate_cached(internal::kFastSizeMax + 1) == nullptr);  // past the inline classes
    std::vector<void*> blocks;
    for (int round = 0; round < 3; ++round) {
      void* first = heap.allocate(40);  // takes a page, or the next word
      REQUIRE(first != nullptr);
      blocks.push_back(first);
      std::size_t from_cache = 0;
      while (void* p = heap.allocate_cached(40)) {
        blocks.push_back(p);
        CHECK(find_block(p) == p);
        CHECK(usable_size(p) >= 40);
        std::memset(p, 0xAB, 40);
        ++from_cache;
        REQUIRE(from_cache < 64);  // one bitmap word at most
      }
    }
    std::sort(blocks.begin(), blocks.end());
    CHECK(std::adjacent_find(blocks.begin(), blocks.end()) == blocks.end());  // all distinct
    std::size_t walked = 0;
    visit_blocks(rt, TagSet{1}, [&](const BlockRef&) { ++walked; });
    CHECK(walked == blocks.size());
    for (void* p : blocks) tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("two thread states on one OS thread, taking turns, agree with the model") {
    // The same random history, but allocations alternate between two thread
    // states of the runtime (attach/detach on one OS thread), so half of the
    // frees are frees into pages of a detached thread state.
    Runtime rt({.gc_tags = {1}});
    ThreadState a(rt), b(rt);
    Model model;
    Rng rng(77);
    std::uint64_t serial = 0;
    std::size_t failures = 0;
    ThreadState* current = &a;
    current->attach();
    for (int op = 0; op < 300'000; ++op) {
      if (op % 97 == 0) {
        current->detach();
        current = current == &a ? &b : &a;
        current->attach();
      }
      if (model.live.empty() || rng.chance(op < 150'000 ? 58 : 40)) {
        const Tag tag = kTags[rng.below(2)];
        std::size_t size = random_size(rng);
        if (size > 64 * 1024 && model.big.size() >= 20) size = 64;
        void* p = current->heap(tag).allocate(size);
        REQUIRE(p != nullptr);
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        const std::size_t usable = usable_size(p);
        if ((usable < size || tag_of(p) != tag || model.overlaps(addr, usable == 0 ? 1 : usable)) && failures++ < 10)
          FAIL_CHECK("bad block " << p << " for size " << size);
        const std::uint8_t pattern = test::pattern_of(p, ++serial);
        test::fill(p, size, pattern);
        model.add(addr, Info{size, usable, pattern, tag, 0, usable > 64 * 1024});
      } else {
        auto& pool = !model.big.empty() && rng.chance(5) ? model.big : model.small;
        if (pool.empty()) continue;
        const std::uintptr_t addr = pool[rng.below(pool.size())];
        const Info info = model.remove(addr);
        if (!test::filled(reinterpret_cast<void*>(addr), info.size, info.pattern) && failures++ < 10)
          FAIL_CHECK("block " << reinterpret_cast<void*>(addr) << " changed while live");
        tagheap::free(reinterpret_cast<void*>(addr));
      }
      if (op % 100'000 == 0) {
        current->detach();
        check_stats(rt, model);
        rt.verify();
        current->attach();
      }
    }
    while (!model.live.empty()) {
      const std::uintptr_t addr = model.small.empty() ? model.big.back() : model.small.back();
      const Info info = model.remove(addr);
      if (!test::filled(reinterpret_cast<void*>(addr), info.size, info.pattern) && failures++ < 10)
        FAIL_CHECK("block " << reinterpret_cast<void*>(addr) << " changed while live");
      tagheap::free(reinterpret_cast<void*>(addr));
    }
    current->detach();
    check_stats(rt, model);
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
    CHECK(failures == 0);
  }
}
