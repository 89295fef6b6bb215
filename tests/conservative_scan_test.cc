// Conservative root scanning against another runtime's churn: words into
// another runtime's memory, into segments being freed right now, into holes,
// are simply not blocks. find_block used to read the segment header after
// the segment map said "ours", while a thread of another runtime could
// unmap the segment in between (a huge block freed): a segfault, and under
// TSan a race on the other runtime's pages.
#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;

namespace {

constexpr Tag kGc = 1;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kRounds = 400;
#else
constexpr int kRounds = 3000;
#endif

// Addresses the churning runtime hands out, published for the scanner.
constexpr std::size_t kSlots = 64;
struct Published {
  std::atomic<std::uintptr_t> words[kSlots] = {};
  std::atomic<std::size_t> next{0};
  void add(std::uintptr_t w) { words[next.fetch_add(1, std::memory_order_relaxed) % kSlots].store(w, std::memory_order_relaxed); }
};

// Roots: conservative words (into the other runtime, holes, and our own
// objects, which only these words keep alive).
struct ConservativeModel {
  std::vector<std::uintptr_t> words;
  std::vector<std::uintptr_t> singles;  // looked up one by one (a scope per word)
  void roots(gc::Tracer& t) {
    t.mark_range_conservative(words.data(), words.data() + words.size());
    for (std::uintptr_t w : singles) t.mark_conservative(w);
  }
  void trace(void*, gc::Tracer&) {}
};

}  // namespace

TEST_SUITE("gc.conservative") {
  TEST_CASE("a conservative scan is safe while another runtime unmaps the segments it points into") {
    Runtime churning({.gc_tags = {kGc}});
    Runtime scanned({.gc_tags = {kGc}});
    Published published;
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0};

    // Huge blocks allocated and freed in a loop: sizes above the huge
    // cache's limit are unmapped at once, smaller ones after a while.
    std::thread churn([&] {
      test::AttachedState ts(churning);
      test::Rng rng(7);
      while (!stop.load(std::memory_order_relaxed)) {
        const std::size_t size = rng.chance(50) ? (internal::kHugeCacheBytes / 4 + rng.range(1, 4) * (1 << 20))
                                                : rng.range(internal::kLargeBlockMax + 1, 3 << 20);
        void* big = ts.heap(kGc).allocate(size);
        void* small = ts.heap(kGc).allocate(rng.range(16, 2000));
        const auto b = reinterpret_cast<std::uintptr_t>(big);
        published.add(b);
        published.add(b + size / 2);                        // interior, maybe in a later 4 MiB unit
        published.add(b + size - 8);                        // its last word
        published.add(reinterpret_cast<std::uintptr_t>(small));
        tagheap::free(big);
        tagheap::free(small);
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });

    test::AttachedState ts(scanned);
    std::vector<void*> own;
    for (int i = 0; i < 64; ++i) own.push_back(ts.heap(kGc).allocate(64 + i));
    ConservativeModel model;
    gc::MarkSweep<ConservativeModel> collector(scanned, model);
    std::size_t collections = 0;
    while (rounds.load(std::memory_order_relaxed) < kRounds) {
      model.words.clear();
      for (int rep = 0; rep < 16; ++rep)
        for (auto& w : published.words) model.words.push_back(w.load(std::memory_order_relaxed));
      for (std::uintptr_t hole : {std::uintptr_t{0x1000}, std::uintptr_t{1} << 46, ~std::uintptr_t{0} - 7})
        model.words.push_back(hole);
      for (void* p : own) model.words.push_back(reinterpret_cast<std::uintptr_t>(p) + 8);  // interior
      model.singles.assign(model.words.begin(), model.words.begin() + kSlots);
      const gc::CollectStats s = collector.collect();
      ++collections;
      // Only our own objects are hit, and each is kept.
      CHECK(s.live_blocks == own.size());
      CHECK(s.freed_blocks == 0);
      CHECK(s.roots_conservative >= own.size());
    }
    stop.store(true);
    churn.join();
    CHECK(collections > 0);
    // Words into the other runtime are not blocks of ours; into its live
    // blocks they are blocks of any runtime.
    void* theirs = nullptr;
    std::thread([&] {
      test::AttachedState other(churning);
      theirs = other.heap(kGc).allocate(100);
      CHECK(find_block(theirs, scanned) == nullptr);
      CHECK(find_block(static_cast<char*>(theirs) + 10, churning) == theirs);
      CHECK(find_block(static_cast<char*>(theirs) + 10) == theirs);
      tagheap::free(theirs);
    }).join();
    for (void* p : own) CHECK(find_block(p, scanned) == p);
    for (void* p : own) tagheap::free(p);
  }
}
