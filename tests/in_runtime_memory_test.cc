// in_runtime_memory(p, runtime): whether p lies in one of the runtime's
// segments, allocated block or not (Boehm's GC_is_heap_ptr, which the
// drop-in libgc answers with it). It reads no page, so it is asked from
// any thread while the owners allocate and free, and while another thread
// unmaps segments: checked under TSan and ASan by the churn case.
#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;

namespace {
constexpr Tag kTag = 1;
}  // namespace

TEST_SUITE("alloc.in_runtime_memory") {
  TEST_CASE("every byte of small, medium, large and huge blocks is in its runtime's memory, freed or not") {
    Runtime rt(test::without_populator());
    Runtime other(test::without_populator());
    auto ts = std::make_unique<test::AttachedState>(rt);
    const std::size_t sizes[] = {16, 100, 2000, internal::kMediumBlockMax, internal::kLargeBlockMax,
                                 internal::kLargeBlockMax + 1, std::size_t{9} << 20};
    std::vector<std::pair<char*, std::size_t>> blocks;
    for (std::size_t n : sizes) blocks.emplace_back(static_cast<char*>(ts->heap(kTag).allocate(n)), n);
    for (auto [p, n] : blocks) {
      CAPTURE(n);
      CHECK(in_runtime_memory(p, rt));
      CHECK(in_runtime_memory(p + n / 2, rt));
      CHECK(in_runtime_memory(p + n - 1, rt));
      CHECK_FALSE(in_runtime_memory(p, other));
    }
    // Freed small blocks stay in the heap's memory, as in Boehm's.
    tagheap::free(blocks[0].first);
    CHECK(in_runtime_memory(blocks[0].first, rt));
    blocks.erase(blocks.begin());
    int on_stack = 0;
    void* from_malloc = std::malloc(64);
    CHECK_FALSE(in_runtime_memory(&on_stack, rt));
    CHECK_FALSE(in_runtime_memory(from_malloc, rt));
    CHECK_FALSE(in_runtime_memory(nullptr, rt));
    CHECK_FALSE(in_runtime_memory(reinterpret_cast<void*>(~std::uintptr_t{0} - 7), rt));
    std::free(from_malloc);
    // Once the segments go back to the OS (the thread state gone, so its
    // empty pages too), their addresses are out.
    for (auto [p, n] : blocks) tagheap::free(p);
    ts.reset();
    rt.trim();
    for (auto [p, n] : blocks) {
      CAPTURE(n);
      CHECK_FALSE(in_runtime_memory(p, rt));
    }
  }

  TEST_CASE("in_runtime_memory is safe while owners allocate and free and another thread unmaps segments") {
    Runtime rt;
    constexpr int kSlots = 64;
    std::atomic<std::uintptr_t> published[kSlots] = {};
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0};
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    constexpr int kRounds = 300;
#else
    constexpr int kRounds = 3000;
#endif
    // Huge blocks (segments mapped and unmapped) and small ones, published
    // while live and after.
    std::thread churn([&] {
      test::AttachedState ts(rt);
      test::Rng rng(11);
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const std::size_t size = rng.chance(50) ? internal::kHugeCacheBytes / 4 + rng.range(1, 4) * (1 << 20)
                                                : rng.range(16, 4000);
        auto* p = static_cast<char*>(ts.heap(kTag).allocate(size));
        published[i % kSlots].store(reinterpret_cast<std::uintptr_t>(p + size / 2), std::memory_order_relaxed);
        tagheap::free(p);
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
    // A live block of another thread: always in.
    test::AttachedState ts(rt);
    auto* mine = static_cast<char*>(ts.heap(kTag).allocate(48));
    std::size_t asked = 0;
    while (rounds.load(std::memory_order_relaxed) < kRounds) {
      for (auto& w : published) (void)in_runtime_memory(reinterpret_cast<void*>(w.load(std::memory_order_relaxed)), rt);
      CHECK(in_runtime_memory(mine + 47, rt));
      asked += kSlots;
    }
    stop.store(true);
    churn.join();
    CHECK(asked > 0);
    tagheap::free(mine);
  }
}
