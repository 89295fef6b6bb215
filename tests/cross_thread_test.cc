// Frees from other OS threads (invariant 5): the owner reuses what others
// freed, blocks travel through queues, threads free into the pages of a
// thread state that has exited, and emptied abandoned pages go back.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "alloc/internal/asan.h"
#include "alloc/internal/config.h"
#include "alloc/internal/page.h"
#include "alloc/internal/segment.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::Rng;

namespace {

std::vector<void*> allocate_n(Heap& heap, std::size_t n, std::size_t size) {
  std::vector<void*> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    void* p = heap.allocate(size);
    CHECK(p != nullptr);  // CHECK, not REQUIRE: also called on other threads
    if (p != nullptr) v.push_back(p);
  }
  return v;
}

void free_all(const std::vector<void*>& v) {
  for (void* p : v) tagheap::free(p);
}

}  // namespace

TEST_SUITE("alloc.cross_thread") {
  TEST_CASE("blocks freed by another thread come back to the owner") {
    Runtime rt({.gc_tags = {1}});
    Runtime other;
    AttachedState owner(rt);
    // 5000 blocks of 64 bytes: several pages, all but the last full.
    const std::vector<void*> first = allocate_n(owner.heap(1), 5000, 64);
    owner.ts.detach();
    const std::size_t pages_before = rt.stats().tags[1].pages;
    owner.ts.attach();
    CHECK(pages_before >= 5);

    SUBCASE("the freeing thread has no thread state") {
      std::thread([&] { free_all(first); }).join();
    }
    SUBCASE("the freeing thread has its own thread state of the same runtime") {
      std::thread([&] {
        AttachedState mine(rt);
        void* own = mine.heap(1).allocate(64);  // a page of its own, same class
        free_all(first);
        tagheap::free(own);
      }).join();
    }
    SUBCASE("the freeing thread has a thread state of another runtime attached") {
      std::thread([&] {
        AttachedState mine(other);
        void* own = mine.heap(1).allocate(64);
        free_all(first);
        tagheap::free(own);
      }).join();
    }

    // The owner allocates again: every freed address comes back (after the
    // never-used rest of its current page), and no page is added.
    const std::set<void*> freed(first.begin(), first.end());
    std::vector<void*> second;
    std::size_t reused = 0;
    while (reused < freed.size() && second.size() < freed.size() + 2048) {
      void* p = owner.heap(1).allocate(64);
      REQUIRE(p != nullptr);
      second.push_back(p);
      reused += freed.count(p);
    }
    CHECK_MESSAGE(reused == freed.size(), "only " << reused << " of " << freed.size() << " freed blocks came back");
    owner.ts.detach();
    const RuntimeStats s = rt.stats();
    CHECK(s.tags[1].blocks == second.size());
    CHECK(s.tags[1].pages <= pages_before);
    rt.verify();
    owner.ts.attach();
    free_all(second);
  }

  TEST_CASE("blocks freed by another thread and collected by a walk are reused by the owner") {
    // A walk collects thread-free lists (so it does not report those blocks).
    // The owner must still reuse that memory afterwards, full pages included,
    // rather than taking more pages.
    Runtime rt({.gc_tags = {1}});
    AttachedState owner(rt);
    const std::vector<void*> first = allocate_n(owner.heap(1), 5000, 64);
    owner.ts.detach();
    const std::size_t pages_before = rt.stats().tags[1].pages;
    std::thread([&] { free_all(first); }).join();

    SUBCASE("collected by stats()") {
      CHECK(rt.stats().tags[1].blocks == 0);
    }
    SUBCASE("collected by visit_gc_blocks") {
      std::size_t n = 0;
      visit_gc_blocks(rt, [&](const BlockRef&) { ++n; });
      CHECK(n == 0);
    }
    rt.verify();
    owner.ts.attach();
    for (int round = 0; round < 3; ++round) {
      const std::vector<void*> again = allocate_n(owner.heap(1), 5000, 64);
      owner.ts.detach();
      CHECK(rt.stats().tags[1].pages <= pages_before);
      std::thread([&] { free_all(again); }).join();
      visit_gc_blocks(rt, [&](const BlockRef&) {});
      CHECK(rt.stats().tags[1].pages <= pages_before);
      rt.verify();
      owner.ts.attach();
    }
  }

  TEST_CASE("producers and consumers pass blocks through queues") {
    // Two producer threads allocate blocks of random sizes and tags, fill
    // them and queue them; two consumer threads check and free them while
    // allocating and freeing some blocks of their own.
    Runtime rt({.gc_tags = {1}});
    struct Item {
      void* p;
      std::size_t size;
      std::uint8_t pattern;
      Tag tag;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Item> queue;
    int producers_left = 2;
    std::atomic<int> bad{0};
    const int kPerProducer = 150'000;

    auto producer = [&](std::uint64_t seed) {
      AttachedState ts(rt);
      Rng rng(seed);
      std::vector<Item> batch;
      for (int i = 0; i < kPerProducer; ++i) {
        const Tag tag = rng.chance(50) ? 1 : 0;
        const std::size_t size = rng.chance(98) ? rng.range(1, 2048) : rng.range(2049, 700 * 1024);
        void* p = ts.heap(tag).allocate(size);
        if (p == nullptr) {
          bad.fetch_add(1);
          continue;
        }
        const std::uint8_t pattern = test::pattern_of(p, seed + i);
        test::fill(p, size, pattern);
        batch.push_back({p, size, pattern, tag});
        if (batch.size() == 64 || i + 1 == kPerProducer) {
          std::lock_guard lock(mu);
          queue.insert(queue.end(), batch.begin(), batch.end());
          batch.clear();
          cv.notify_all();
        }
      }
      std::lock_guard lock(mu);
      --producers_left;
      cv.notify_all();
    };
    auto consumer = [&](std::uint64_t seed) {
      AttachedState ts(rt);
      Rng rng(seed);
      std::vector<void*> own;
      for (;;) {
        std::vector<Item> got;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !queue.empty() || producers_left == 0; });
          if (queue.empty()) break;
          const std::size_t n = std::min<std::size_t>(queue.size(), 32);
          got.assign(queue.begin(), queue.begin() + static_cast<long>(n));
          queue.erase(queue.begin(), queue.begin() + static_cast<long>(n));
        }
        for (const Item& it : got) {
          if (!test::filled(it.p, it.size, it.pattern) || tag_of(it.p) != it.tag) bad.fetch_add(1);
          tagheap::free(it.p);
          if (rng.chance(20)) {
            void* p = ts.heap(0).allocate(rng.range(1, 512));
            if (p == nullptr) bad.fetch_add(1); else own.push_back(p);
          }
          if (own.size() > 100) {
            const std::size_t k = rng.below(own.size());
            tagheap::free(own[k]);
            own[k] = own.back();
            own.pop_back();
          }
        }
      }
      for (void* p : own) tagheap::free(p);
    };
    std::vector<std::thread> threads;
    threads.emplace_back(producer, 1);
    threads.emplace_back(producer, 2);
    threads.emplace_back(consumer, 3);
    threads.emplace_back(consumer, 4);
    for (auto& t : threads) t.join();
    CHECK(bad.load() == 0);
    rt.trim();
    const RuntimeStats s = rt.stats();
    CHECK(s.total.blocks == 0);
    CHECK(s.total.pages == 0);
    CHECK(s.thread_states == 0);
    rt.verify();
  }

  TEST_CASE("several threads free into the pages of a thread state that has exited") {
    Runtime rt(test::without_populator({.gc_tags = {1}}));  // maps counted
    const std::size_t mapped_before = os::mapped_bytes();
    std::vector<void*> blocks;
    std::thread([&] {
      AttachedState ts(rt);
      Rng rng(5);
      for (int i = 0; i < 40'000; ++i) {
        const Tag tag = i % 3 == 0 ? 0 : 1;
        const std::size_t size = rng.chance(99) ? rng.range(1, 4096) : rng.range(8 * 1024, 300 * 1024);
        void* p = ts.heap(tag).allocate(size);
        CHECK(p != nullptr);
        if (p != nullptr) blocks.push_back(p);
      }
      for (int i = 0; i < 3; ++i) blocks.push_back(ts.heap(1).allocate(1 << 20));  // huge
    }).join();  // ~ThreadState: every page goes to the pool

    RuntimeStats s = rt.stats();
    CHECK(s.thread_states == 0);
    CHECK(s.total.blocks == blocks.size());
    CHECK(s.total.abandoned_pages + s.total.huge_pages == s.total.pages);
    CHECK(s.total.abandoned_pages > 10);
    const std::size_t mapped_full = os::mapped_bytes();
    CHECK(mapped_full > mapped_before);
    rt.verify();

    // Four threads free interleaved quarters at once: two with a thread
    // state of the runtime attached, two without any.
    std::vector<std::thread> freers;
    for (int k = 0; k < 4; ++k) {
      freers.emplace_back([&, k] {
        std::unique_ptr<AttachedState> ts;
        if (k % 2 == 0) ts = std::make_unique<AttachedState>(rt);
        for (std::size_t i = static_cast<std::size_t>(k); i < blocks.size(); i += 4) tagheap::free(blocks[i]);
      });
    }
    for (auto& t : freers) t.join();

    s = rt.stats();
    CHECK(s.total.blocks == 0);
    CHECK(s.total.pages == 0);  // each abandoned page went back when it emptied
    CHECK(s.total.abandoned_pages == 0);
    CHECK(s.tags[1].reclaimed_total == 0);  // frees alone never reclaim
    rt.verify();
    // Empty segments and freed huge ones stay for reuse, never more than
    // was in use; trim() gives them all back.
    CHECK(os::mapped_bytes() <= mapped_full);
    rt.trim();
    CHECK(rt.stats().segments == 0);
    CHECK(os::mapped_bytes() <= mapped_before + (1u << 20));
  }

  TEST_CASE("frees racing with the owner abandoning its pages lose nothing") {
    // An owner thread hands blocks to freer threads and ends (abandoning its
    // pages) while they are still freeing; a new thread state then reclaims.
    // Every block must be freed exactly once: at the end, no block is left
    // and every page went back (after trim(), for a free that landed on a
    // thread-free list after the owner's last collection).
    Runtime rt({.gc_tags = {1}});
    for (int round = 0; round < 20; ++round) {
      std::mutex mu;
      std::vector<void*> handed;
      std::atomic<bool> owner_done{false};
      std::thread owner([&] {
        ThreadState ts(rt);
        ts.attach();
        Rng rng(static_cast<std::uint64_t>(round));
        for (int i = 0; i < 20'000; ++i) {
          void* p = ts.heap(rng.chance(50) ? 1 : 0).allocate(rng.range(1, 300));
          CHECK(p != nullptr);
          if (p == nullptr) continue;
          std::lock_guard lock(mu);
          handed.push_back(p);
        }
        ts.detach();
        // ~ThreadState here, while the freers are busy.
      });
      auto freer = [&] {
        for (;;) {
          void* p = nullptr;
          {
            std::lock_guard lock(mu);
            if (!handed.empty()) {
              p = handed.back();
              handed.pop_back();
            }
          }
          if (p != nullptr) {
            tagheap::free(p);
          } else if (owner_done.load()) {
            std::lock_guard lock(mu);
            if (handed.empty()) return;
          } else {
            std::this_thread::yield();
          }
        }
      };
      std::thread f1(freer), f2(freer);
      owner.join();
      owner_done.store(true);
      f1.join();
      f2.join();
      rt.trim();
      const RuntimeStats s = rt.stats();
      REQUIRE(s.total.blocks == 0);
      REQUIRE(s.total.pages == 0);
      rt.verify();
    }
  }

  TEST_CASE("a free racing with abandonment never strands the page in the pool") {
    // The owner abandons its page while another thread frees the page's
    // last block. A free that read the owner before abandonment but pushed
    // after the abandoning thread collected the thread-free list used to
    // leave the page in the pool with its block on that list: kept from the
    // OS until a trim() or a walk, and, when full, out of reclaim's sight.
    // No trim and no walk here: every page must be back at once.
    Runtime rt({.gc_tags = {1}});
    internal::RuntimeCore& core = rt.core();
    std::atomic<int> phase{0};  // round r: 3r+1 go, 3r+2 owner done, 3r+3 freer done
    void* block = nullptr;
    std::atomic<int> stranded{0};
    int waited = 0;  // pages left in a bin past the bounded wait, their free announced
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    constexpr int kRounds = 3000;
#else
    constexpr int kRounds = 30000;
#endif
    auto wait_for = [&](int value) {
      while (phase.load(std::memory_order_acquire) < value) {
      }
    };
    std::thread freer([&] {
      Rng rng(3);
      for (int r = 0; r < kRounds; ++r) {
        wait_for(3 * r + 1);
        for (std::uint64_t spin = rng.below(64); spin > 0; --spin) asm volatile("");
        tagheap::free(block);
        wait_for(3 * r + 2);
        phase.store(3 * r + 3, std::memory_order_release);
      }
    });
    ThreadState ts(rt);
    for (int r = 0; r < kRounds; ++r) {
      ts.attach();
      block = ts.heap(0).allocate(64);
      ts.detach();
      phase.store(3 * r + 1, std::memory_order_release);
      ts.abandon();
      phase.store(3 * r + 2, std::memory_order_release);
      wait_for(3 * r + 3);
      std::lock_guard lock(core.shards[0].mu);
      // Stranded: a page in the full list (out of reclaim's sight), or in a
      // bin without its free. Abandonment waits a bounded while
      // (kAnnouncedFreeWaitSpins) for a free that announced itself to set
      // its bit; past that, by design, the page waits in a bin, where the
      // next reclaim collects the free (a freer descheduled that long:
      // seen once under TSan on a loaded 2-core machine). Such a page now
      // has its bit set: collecting it must empty it.
      std::size_t in_pool = core.shards[0].full.size();
      bool lost = in_pool != 0;
      for (auto& bin : core.shards[0].bins)
        for (internal::Page& page : bin) {
          ++in_pool;
          const bool announced = page.thread_frees_pending() != 0;
          page.collect_thread_free();
          lost |= !announced || page.used != 0;
        }
      if (in_pool != 0) {
        waited += !lost;
        stranded.fetch_add(lost ? 1 : 0);
        // Put it right for the next round (as a trim would).
        core.shards[0].mu.unlock();
        rt.trim();
        core.shards[0].mu.lock();
      }
    }
    freer.join();
    CHECK(stranded.load() == 0);
    CHECK(waited < kRounds / 10);  // the bounded wait is the exception
    CHECK(rt.stats().total.pages == 0);
    rt.verify();
  }

  TEST_CASE("a free from another thread leaves the block's bytes alone until the owner reuses it") {
    // The free sets a bit in the page's thread-free bitmap: it does not
    // link the block through its first word (a cache miss on memory the
    // owner wrote last, and a chain the owner would chase block by block).
    if constexpr (internal::asan::kEnabled) return;  // the block is poisoned: not readable
    Runtime rt;
    AttachedState ts(rt);
    auto* p = static_cast<unsigned char*>(ts.heap(0).allocate(64));
    void* keep = ts.heap(0).allocate(64);
    std::memset(p, 0x5A, 64);
    std::thread([&] { tagheap::free(p); }).join();
    CHECK(std::all_of(p, p + 64, [](unsigned char c) { return c == 0x5A; }));
    CHECK(find_block(p) == nullptr);  // freed, though not collected yet
    tagheap::free(keep);
  }

  TEST_CASE("a free announced before abandonment that lands after it is collected by reclaim") {
    // A free announces itself (the page's count), then sets its bit. If the
    // owner abandons the page in between and the bit comes late, the page
    // must wait in its class bin, where reclaim looks, and not in the full
    // list, where nothing would find the freed block.
    Runtime rt;
    std::vector<void*> blocks;
    internal::Page* page = nullptr;
    {
      ThreadState owner(rt);
      std::thread([&] {
        owner.attach();
        void* first = owner.heap(0).allocate(256);
        page = internal::Segment::of(first)->page_of(first);
        blocks.push_back(first);
        while (page->has_free_in_bits()) blocks.push_back(owner.heap(0).allocate(256));  // the page full
        owner.detach();
      }).join();
      REQUIRE(!page->has_free_in_bits());
      // The late free, first half: announced, no bit yet.
      page->thread_free().fetch_add(internal::Page::kThreadFreeOne);
      owner.abandon();  // waits a bounded while for the bit, then gives up
    }
    internal::TagShard& shard = rt.core().shards[0];
    {
      std::lock_guard lock(shard.mu);
      CHECK(page->in_pool == 1);
      CHECK(page->pool_full == 0);
    }
    // Second half: the bit, as push_thread_free sets it.
    void* late = blocks[7];
    const std::uint32_t i = page->block_index(reinterpret_cast<std::uintptr_t>(late));
    internal::asan::poison(reinterpret_cast<std::uintptr_t>(late), 256);
    std::atomic_ref<std::uint64_t>(page->thread_free_word(i >> 6)).fetch_or(std::uint64_t{1} << (i & 63));
    rt.verify();
    AttachedState ts(rt);
    void* again = ts.heap(0).allocate(256);
    CHECK(again == late);  // reclaimed, and the late free collected
    blocks[7] = again;
    for (void* b : blocks) tagheap::free(b);
    rt.verify();
  }

  TEST_CASE("trim() collects a free that landed on an abandoned page after it was closed") {
    // As above, but the page's only block is the late one: once collected,
    // the page is empty and trim() must give it back.
    Runtime rt;
    void* block = nullptr;
    internal::Page* page = nullptr;
    {
      ThreadState owner(rt);
      std::thread([&] {
        owner.attach();
        block = owner.heap(0).allocate(256);
        page = internal::Segment::of(block)->page_of(block);
        owner.detach();
      }).join();
      page->thread_free().fetch_add(internal::Page::kThreadFreeOne);  // announced in time
      owner.abandon();
    }
    const std::uint32_t i = page->block_index(reinterpret_cast<std::uintptr_t>(block));
    internal::asan::poison(reinterpret_cast<std::uintptr_t>(block), 256);
    std::atomic_ref<std::uint64_t>(page->thread_free_word(i >> 6)).fetch_or(std::uint64_t{1} << (i & 63));
    rt.trim();
    internal::TagShard& shard = rt.core().shards[0];
    std::size_t in_pool = 0;
    {
      std::lock_guard lock(shard.mu);
      in_pool = shard.full.size();
      for (auto& bin : shard.bins) in_pool += bin.size();
    }
    CHECK(in_pool == 0);
    rt.verify();
  }

  TEST_CASE("an abandoned page that empties goes back to its segment and the OS") {
    Runtime rt(test::without_populator({.gc_tags = {1}}));  // maps counted
    const std::size_t mapped_before = os::mapped_bytes();
    std::vector<void*> blocks;
    std::thread([&] {
      AttachedState ts(rt);
      // 2000 blocks of 1 KiB: about 32 pages of one segment.
      blocks = allocate_n(ts.heap(1), 2000, 1024);
    }).join();
    RuntimeStats s = rt.stats();
    const std::size_t pages = s.tags[1].abandoned_pages;
    CHECK(pages >= 20);
    CHECK(s.tags[1].pages == pages);

    // Free all the blocks of the first pages: exactly those pages go.
    std::sort(blocks.begin(), blocks.end());
    std::size_t i = 0;
    for (; i < blocks.size() / 2; ++i) tagheap::free(blocks[i]);
    s = rt.stats();
    CHECK(s.tags[1].blocks == blocks.size() - i);
    CHECK(s.tags[1].pages < pages);
    CHECK(s.tags[1].pages > pages / 3);
    rt.verify();
    for (; i < blocks.size(); ++i) tagheap::free(blocks[i]);
    rt.trim();
    s = rt.stats();
    CHECK(s.tags[1].pages == 0);
    CHECK(s.total.pages == 0);
    CHECK(s.segments <= internal::kSegmentCacheMax);
    CHECK(os::mapped_bytes() <= mapped_before + internal::kSegmentCacheMax * internal::kSegmentSize + (1u << 20));
    rt.verify();
  }

  TEST_CASE("a page search scans a bounded chunk of the full queue, and the chunks still find every cross-thread free") {
    Runtime rt({.gc_tags = {1}});
    AttachedState owner(rt);
    Heap& heap = owner.heap(1);
    // 8 KiB blocks, 8 to a 64 KiB page: about 1,000 full pages.
    constexpr std::size_t kSize = 8 * 1024;
    const std::vector<void*> first = allocate_n(heap, 8000, kSize);
    REQUIRE(heap.full_page_count() > 3 * internal::kFullScanChunk);
    owner.ts.detach();
    const std::size_t pages_before = rt.stats().tags[1].pages;
    owner.ts.attach();
    // Another thread (no thread state: straight to the pages) frees the
    // first block of every page.
    std::vector<void*> freed;
    for (std::size_t i = 0; i < first.size(); i += 8) freed.push_back(first[i]);
    std::thread([&] { free_all(freed); }).join();
    const std::set<void*> wanted(freed.begin(), freed.end());
    std::size_t reused = 0, most_in_one_allocation = 0, allocations = 0;
    std::vector<void*> second;
    while (reused < wanted.size() && allocations < 2 * wanted.size()) {
      const std::size_t before = heap.full_pages_scanned_for_testing();
      void* p = heap.allocate(kSize);
      REQUIRE(p != nullptr);
      ++allocations;
      most_in_one_allocation = std::max(most_in_one_allocation, heap.full_pages_scanned_for_testing() - before);
      second.push_back(p);
      reused += wanted.count(p);
    }
    CHECK(most_in_one_allocation <= internal::kFullScanChunk);
    CHECK(most_in_one_allocation * 3 < pages_before);  // never the whole queue at once
    CHECK_MESSAGE(reused == wanted.size(), "only " << reused << " of " << wanted.size() << " freed blocks came back");
    owner.ts.detach();
    // Found in full pages: fresh pages only until a round begins (one per
    // eighth of the full queue taken since the last round ended).
    CHECK(rt.stats().tags[1].pages <= pages_before + pages_before / 8 + 2);
    rt.verify();
    owner.ts.attach();
    free_all(second);
    std::vector<void*> rest;
    for (std::size_t i = 0; i < first.size(); ++i)
      if (i % 8 != 0) rest.push_back(first[i]);
    free_all(rest);
  }
}
