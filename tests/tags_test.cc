// Tagged heaps and isolated runtimes (issue "tagged heaps"): invariants 1, 2,
// 5, 6 and 8; abandonment from another thread and after fork(); invalid tags.
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "alloc/tagheap.h"
#include "alloc/tagheap_c.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::Rng;

TEST_SUITE("alloc.tags") {
  TEST_CASE("an abandoned page is reclaimed only by a heap of its tag") {
    Runtime rt({.gc_tags = {2}});
    std::vector<void*> old_blocks;
    std::thread([&] {
      AttachedState ts(rt);
      for (int i = 0; i < 3000; ++i) old_blocks.push_back(ts.heap(2).allocate(48));
    }).join();
    // Free every other block: the abandoned tag-2 pages have room for more.
    for (std::size_t i = 0; i < old_blocks.size(); i += 2) tagheap::free(old_blocks[i]);
    RuntimeStats s = rt.stats();
    const std::size_t pool_pages = s.tags[2].abandoned_pages;
    REQUIRE(pool_pages >= 2);
    std::set<std::uintptr_t> old_pages;  // 64 KiB pages of the old blocks
    for (void* p : old_blocks) old_pages.insert(reinterpret_cast<std::uintptr_t>(p) >> 16);

    AttachedState ts(rt);
    // Invariant 8: this thread state has no heap of tag 2; allocating the same
    // size class on tag 0 (and on tag 3) must not take the tag-2 pages.
    std::vector<void*> fresh;
    for (Tag t : {Tag{0}, Tag{3}})
      for (int i = 0; i < 3000; ++i) {
        void* p = ts.heap(t).allocate(48);
        REQUIRE(p != nullptr);
        CHECK(tag_of(p) == t);
        CHECK(old_pages.count(reinterpret_cast<std::uintptr_t>(p) >> 16) == 0);
        fresh.push_back(p);
      }
    ts.ts.detach();
    s = rt.stats();
    CHECK(s.tags[2].abandoned_pages == pool_pages);
    CHECK(s.tags[2].reclaimed_total == 0);
    CHECK(s.tags[0].reclaimed_total == 0);
    CHECK(s.tags[0].abandoned_pages == 0);
    rt.verify();
    ts.ts.attach();

    // A heap of tag 2 does reclaim them, and its blocks land in those pages.
    std::size_t in_old = 0;
    for (int i = 0; i < 1500; ++i) {
      void* p = ts.heap(2).allocate(48);
      REQUIRE(p != nullptr);
      CHECK(tag_of(p) == 2);
      in_old += old_pages.count(reinterpret_cast<std::uintptr_t>(p) >> 16);
      fresh.push_back(p);
    }
    CHECK(in_old == 1500);
    ts.ts.detach();
    s = rt.stats();
    CHECK(s.tags[2].reclaimed_total >= 2);
    CHECK(s.tags[2].abandoned_pages < pool_pages);
    rt.verify();
    ts.ts.attach();
    for (std::size_t i = 1; i < old_blocks.size(); i += 2) tagheap::free(old_blocks[i]);
    for (void* p : fresh) tagheap::free(p);
  }

  TEST_CASE("pages keep their tag under random thread churn") {
    // Four OS threads each run 100 thread states one after another (400 in
    // all); each allocates on tags 0, 2 and 7, frees blocks that any thread
    // allocated, and is destroyed with blocks still live, so pages are
    // abandoned and reclaimed all the time. Every block must keep its tag.
    Runtime rt({.gc_tags = {2}});
    struct Shared {
      std::mutex mu;
      std::unordered_map<void*, Tag> live;
      std::vector<void*> order;
    } shared;
    std::atomic<int> wrong_tag{0}, failed{0};
    const Tag kTagsUsed[] = {0, 2, 7};

    auto worker = [&](std::uint64_t seed) {
      Rng rng(seed);
      for (int round = 0; round < 100; ++round) {
        ThreadState ts(rt);
        ts.attach();
        std::vector<std::pair<void*, Tag>> mine;
        const int ops = static_cast<int>(rng.range(200, 1500));
        for (int i = 0; i < ops; ++i) {
          if (rng.chance(60)) {
            const Tag t = kTagsUsed[rng.below(3)];
            void* p = ts.heap(t).allocate(rng.chance(95) ? rng.range(1, 1024) : rng.range(1025, 100'000));
            if (p == nullptr) {
              failed.fetch_add(1);
              continue;
            }
            if (tag_of(p) != t) wrong_tag.fetch_add(1);
            mine.emplace_back(p, t);
          } else {
            void* victim = nullptr;
            Tag t = 0;
            {
              std::lock_guard lock(shared.mu);
              if (!shared.order.empty()) {
                const std::size_t k = rng.below(shared.order.size());
                victim = shared.order[k];
                shared.order[k] = shared.order.back();
                shared.order.pop_back();
                t = shared.live.at(victim);
                shared.live.erase(victim);
              }
            }
            if (victim != nullptr) {
              if (tag_of(victim) != t) wrong_tag.fetch_add(1);
              tagheap::free(victim);
            }
          }
        }
        {
          std::lock_guard lock(shared.mu);
          for (auto [p, t] : mine) {
            shared.live.emplace(p, t);
            shared.order.push_back(p);
          }
        }
        ts.detach();
        // ~ThreadState: its pages, holding the blocks just shared, go to the pool.
      }
    };
    std::vector<std::thread> threads;
    for (std::uint64_t k = 0; k < 4; ++k) threads.emplace_back(worker, 100 + k);
    for (auto& t : threads) t.join();
    CHECK(wrong_tag.load() == 0);
    CHECK(failed.load() == 0);

    const RuntimeStats s = rt.stats();
    std::size_t per_tag[kTagCount] = {};
    for (auto [p, t] : shared.live) {
      CHECK(tag_of(p) == t);
      ++per_tag[t];
    }
    for (Tag t : kTagsUsed) {
      CHECK(s.tags[t].blocks == per_tag[t]);
      CHECK(s.tags[t].reclaimed_total > 0);  // the scenario did reclaim
    }
    CHECK(s.total.blocks == shared.live.size());
    CHECK(s.thread_states == 0);
    CHECK(s.total.abandoned_pages + s.total.huge_pages == s.total.pages);
    // The walk agrees: each block once, with its tag.
    std::size_t visited = 0, mismatched = 0;
    visit_blocks(rt, TagSet::all(), [&](const BlockRef& b) {
      ++visited;
      auto it = shared.live.find(b.block);
      if (it == shared.live.end() || it->second != b.tag) ++mismatched;
    });
    CHECK(visited == shared.live.size());
    CHECK(mismatched == 0);
    rt.verify();
    for (auto [p, t] : shared.live) tagheap::free(p);
    rt.trim();
    CHECK(rt.stats().total.pages == 0);
    rt.verify();
  }

  TEST_CASE("two runtimes in one process never share a page") {
    Runtime a({.gc_tags = {1}}), b({.gc_tags = {1}});
    ThreadState ta(a), tb(b);
    std::vector<void*> blocks_a, blocks_b;
    Rng rng(9);
    // Interleaved on one OS thread, same tags and size classes.
    for (int i = 0; i < 4000; ++i) {
      const std::size_t size = rng.chance(97) ? rng.range(1, 2000) : rng.range(9000, 600'000);
      const Tag t = static_cast<Tag>(rng.below(2));
      ta.attach();
      blocks_a.push_back(ta.heap(t).allocate(size));
      ta.detach();
      tb.attach();
      blocks_b.push_back(tb.heap(t).allocate(size));
      tb.detach();
    }
    std::set<std::uintptr_t> segs_a, segs_b;
    for (void* p : blocks_a) segs_a.insert(test::segment_of(p));
    for (void* p : blocks_b) segs_b.insert(test::segment_of(p));
    for (std::uintptr_t s : segs_a) CHECK(segs_b.count(s) == 0);

    // Each runtime's walk reports its own blocks, and only those.
    std::set<void*> want_a(blocks_a.begin(), blocks_a.end()), got_a;
    visit_blocks(a, TagSet::all(), [&](const BlockRef& r) { got_a.insert(r.block); });
    CHECK(got_a == want_a);
    std::set<void*> want_b(blocks_b.begin(), blocks_b.end()), got_b;
    visit_blocks(b, TagSet::all(), [&](const BlockRef& r) { got_b.insert(r.block); });
    CHECK(got_b == want_b);
    a.verify();
    b.verify();
    for (void* p : blocks_a) tagheap::free(p);
    for (void* p : blocks_b) tagheap::free(p);
  }

  TEST_CASE("a block freed while another runtime's thread state is attached goes back to its runtime") {
    Runtime a, b;
    auto ta = std::make_unique<ThreadState>(a);
    ta->attach();
    std::vector<void*> from_a;
    for (int i = 0; i < 100; ++i) from_a.push_back(ta->heap(0).allocate(64));
    from_a.push_back(ta->heap(0).allocate(200'000));   // large
    from_a.push_back(ta->heap(0).allocate(1 << 20));   // huge
    ta->detach();

    SUBCASE("the owner thread state of A is alive and detached") {}
    SUBCASE("the owner thread state of A is gone (its pages abandoned)") { ta.reset(); }

    AttachedState tb(b);
    std::vector<void*> from_b;
    for (int i = 0; i < 50; ++i) from_b.push_back(tb.heap(0).allocate(64));
    tb.ts.detach();
    const std::size_t a_before = a.stats().total.blocks, b_before = b.stats().total.blocks;
    CHECK(a_before == from_a.size());
    CHECK(b_before == from_b.size());
    tb.ts.attach();
    for (void* p : from_a) tagheap::free(p);  // with B's thread state attached
    void* more_b = tb.heap(0).allocate(64);   // B's heap must not pick up A's blocks
    tb.ts.detach();
    CHECK(a.stats().total.blocks == 0);
    CHECK(b.stats().total.blocks == b_before + 1);
    CHECK(std::find(from_a.begin(), from_a.end(), more_b) == from_a.end());
    a.verify();
    b.verify();
    tb.ts.attach();
    for (void* p : from_b) tagheap::free(p);
    tagheap::free(more_b);
  }

  TEST_CASE("abandon() from a thread other than the one that ran the thread state") {
    Runtime rt({.gc_tags = {3}});
    ThreadState ts(rt);
    std::vector<void*> blocks;
    std::thread([&] {
      ts.attach();
      for (int i = 0; i < 5000; ++i) blocks.push_back(ts.heap(i % 2 == 0 ? 0 : 3).allocate(32 + i % 500));
      blocks.push_back(ts.heap(3).allocate(2 << 20));
      ts.detach();
    }).join();
    RuntimeStats s = rt.stats();
    CHECK(s.total.abandoned_pages == 0);
    const std::size_t pages = s.total.pages;
    ts.abandon();  // from the main thread
    s = rt.stats();
    CHECK(s.total.blocks == blocks.size());
    CHECK(s.total.pages == pages);
    CHECK(s.total.abandoned_pages + s.total.huge_pages == pages);
    CHECK(s.thread_states == 1);
    rt.verify();
    // The thread state stays usable: here, on this thread, it reclaims.
    ts.attach();
    std::vector<void*> more;
    for (int i = 0; i < 5000; ++i) {
      void* p = ts.heap(3).allocate(32 + i % 500);
      CHECK(tag_of(p) == 3);
      more.push_back(p);
    }
    ts.detach();
    s = rt.stats();
    CHECK(s.tags[3].reclaimed_total > 0);
    rt.verify();
    ts.attach();
    for (void* p : blocks) tagheap::free(p);
    for (void* p : more) tagheap::free(p);
    ts.detach();
    CHECK(rt.stats().total.blocks == 0);
  }

  TEST_CASE("after_fork_child lets the child allocate, free and verify") {
    // Two other threads hold attached thread states with live blocks when
    // the main thread forks; in the child they do not exist.
    Runtime rt({.gc_tags = {1}});
    std::mutex mu;
    std::condition_variable cv;
    int ready = 0;
    bool release = false;
    std::vector<void*> theirs[2];
    ThreadState* their_ts[2] = {};
    std::vector<std::thread> threads;
    for (int k = 0; k < 2; ++k)
      threads.emplace_back([&, k] {
        ThreadState ts(rt);
        ts.attach();
        for (int i = 0; i < 3000; ++i) theirs[k].push_back(ts.heap(static_cast<Tag>(i % 2)).allocate(16 + i % 300));
        std::unique_lock lock(mu);
        their_ts[k] = &ts;
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        lock.unlock();
        for (void* p : theirs[k]) tagheap::free(p);
        ts.detach();
      });
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return ready == 2; });
    }
    ThreadState survivor(rt);
    survivor.attach();
    std::vector<void*> mine;
    for (int i = 0; i < 1000; ++i) mine.push_back(survivor.heap(1).allocate(64));

    const test::ChildResult r = test::run_in_child([&] {
      test::ChildChecks c;
      rt.after_fork_child(survivor);
      c.expect(rt.stats().total.blocks == 7000, "every block is still there");
      c.expect(rt.stats().thread_states == 1, "only the survivor remains");
      // Free the vanished threads' blocks and half of ours; allocate again.
      for (auto& v : theirs)
        for (std::size_t i = 0; i < v.size(); i += 2) tagheap::free(v[i]);
      std::vector<void*> more;
      for (int i = 0; i < 5000; ++i) {
        void* p = survivor.heap(static_cast<Tag>(i % 2)).allocate(16 + i % 300);
        c.expect(p != nullptr && tag_of(p) == i % 2, "the child allocates");
        more.push_back(p);
      }
      survivor.detach();
      const RuntimeStats s = rt.stats();
      c.expect(s.total.blocks == 1000 + 3000 + 5000, "the counts add up");
      c.expect(s.total.reclaimed_total > 0, "the survivor reclaimed the orphans' pages");
      rt.verify();
      survivor.attach();
      for (auto& v : theirs)
        for (std::size_t i = 1; i < v.size(); i += 2) tagheap::free(v[i]);
      for (void* p : more) tagheap::free(p);
      for (void* p : mine) tagheap::free(p);
      survivor.detach();
      c.expect(rt.stats().total.blocks == 0, "everything freed");
      rt.verify();
      // Destroying the orphans' thread states in the child is harmless.
      their_ts[0]->~ThreadState();  // a stack object of a vanished thread
      c.finish();
    });
    CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
    for (void* p : mine) tagheap::free(p);
    survivor.detach();
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }

  TEST_CASE("a block-lookup scope held by another thread at fork() does not keep the child's memory mapped") {
    // A thread sits inside a conservative lookup (BlockLookupScope) when the
    // main thread forks. In the child that thread is gone; its scope must
    // not defer the child's unmaps forever.
    Runtime rt;
    std::mutex mu;
    std::condition_variable cv;
    bool holding = false, release = false;
    std::thread holder([&] {
      BlockLookupScope scope;
      std::unique_lock lock(mu);
      holding = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    });
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return holding; });
    }
    ThreadState survivor(rt);
    survivor.attach();
    const test::ChildResult r = test::run_in_child([&] {
      test::ChildChecks c;
      rt.after_fork_child(survivor);
      const std::size_t size = std::size_t{8} << 20;  // a huge block: a segment of its own
      void* p = survivor.heap(0).allocate(size);
      c.expect(p != nullptr, "the child allocates a huge block");
      tagheap::free(p);
      rt.trim();  // the huge-segment cache lets go too
      unsigned char vec = 0;
      const long page = sysconf(_SC_PAGESIZE);
      void* first = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~static_cast<std::uintptr_t>(page - 1));
      c.expect(mincore(first, static_cast<std::size_t>(page), &vec) != 0 && errno == ENOMEM,
               "the freed huge segment is unmapped in the child");
      c.finish();
    });
    CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
    holder.join();
    survivor.detach();
  }

  TEST_CASE("an invalid tag is rejected with std::invalid_argument") {
    Runtime rt;
    ThreadState ts(rt);
    Tag bad = 16;
    CHECK_THROWS_AS(ts.heap(bad), std::invalid_argument);
    CHECK_THROWS_AS(ts.heap(255), std::invalid_argument);
    CHECK_NOTHROW(ts.heap(15));
    // Wider integers are checked before they narrow to a Tag: 256 is not
    // tag 0, -1 is not tag 255.
    // (Values a compiler can't see through: what a VM computes at run time.)
    int wide = 256, negative = -1;
    unsigned sixteen = 16;
    std::size_t huge = std::size_t{1} << 32;
    std::int64_t minus_256 = -256;
    CHECK_THROWS_AS(ts.heap(wide), std::invalid_argument);
    CHECK_THROWS_AS(ts.heap(negative), std::invalid_argument);
    CHECK_THROWS_AS(ts.heap(sixteen), std::invalid_argument);
    CHECK_THROWS_AS(ts.heap(huge), std::invalid_argument);
    CHECK_THROWS_AS(ts.heap(minus_256), std::invalid_argument);
    CHECK(ts.heap(7L).tag() == 7);
    CHECK(ts.heap(std::size_t{15}).tag() == 15);
    CHECK(&ts.heap(3) == &ts.heap(Tag{3}));
    CHECK_THROWS_AS((TagSet{bad}), std::invalid_argument);
    CHECK_THROWS_AS((TagSet{1, 2, bad}), std::invalid_argument);
    CHECK_THROWS_AS(TagSet{}.with(bad), std::invalid_argument);
    CHECK(TagSet{0, 15}.bits() == 0x8001);
    CHECK(TagSet{3}.contains(3));
    CHECK(!TagSet{3}.contains(16));
    // The C API answers NULL instead of throwing.
    tagheap_runtime_options o{0, 0};
    tagheap_runtime* crt = tagheap_runtime_new(&o);
    tagheap_thread_state* cts = tagheap_thread_state_new(crt);
    CHECK(tagheap_thread_state_attach(cts) == 0);
    CHECK(tagheap_heap_allocate(cts, 16, 8) == nullptr);
    void* p = tagheap_heap_allocate(cts, 15, 8);
    CHECK(p != nullptr);
    CHECK(tagheap_tag_of(p) == 15);
    tagheap_free(p);
    tagheap_thread_state_detach(cts);
    tagheap_thread_state_delete(cts);
    tagheap_runtime_delete(crt);
  }

  TEST_CASE("a thread state is attached to one OS thread at a time") {
    Runtime rt;
    ThreadState a(rt), b(rt);
    a.attach();
    CHECK(ThreadState::current() == &a);
    CHECK_THROWS_AS(b.attach(), std::logic_error);  // another one is attached here
    std::thread([&] {
      CHECK_THROWS_AS(a.attach(), std::logic_error);  // attached elsewhere
      b.attach();
      CHECK(ThreadState::current() == &b);
      b.detach();
      CHECK(ThreadState::current() == nullptr);
    }).join();
    a.detach();
    CHECK(ThreadState::current() == nullptr);
  }
}
