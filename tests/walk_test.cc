// Walks (invariants 3, 4, 7, 9 and DESIGN.md's walking rules): a walk reports
// exactly the live blocks of its tags, once each, wherever they are; visitors
// may stop the walk or free the block they hold; find_block; the C API;
// debug_fill.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "alloc/tagheap_c.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::Rng;

namespace {

// Every block a walk of `tags` reported, with how many times each was seen.
struct Seen {
  std::map<void*, int> times;
  std::size_t wrong_size = 0, wrong_tag = 0;
};

Seen walk(Runtime& rt, TagSet tags) {
  Seen s;
  visit_blocks(rt, tags, [&](const BlockRef& b) {
    ++s.times[b.block];
    if (!tags.contains(b.tag)) ++s.wrong_tag;
    if (b.size != usable_size(b.block) || tag_of(b.block) != b.tag) ++s.wrong_size;
  });
  return s;
}

// The walk saw exactly `want`, each block once.
void check_exact(const Seen& s, const std::set<void*>& want, const char* what) {
  INFO(what);
  std::size_t twice = 0, extra = 0, missing = 0;
  for (auto [p, n] : s.times) {
    twice += n > 1;
    extra += want.count(p) == 0;
  }
  for (void* p : want) missing += s.times.count(p) == 0;
  CHECK(twice == 0);
  CHECK(extra == 0);
  CHECK(missing == 0);
  CHECK(s.wrong_tag == 0);
  CHECK(s.wrong_size == 0);
}

// A model of the live blocks of one runtime, shared by the worker threads.
struct Model {
  std::mutex mu;
  std::unordered_map<void*, Tag> live;
  std::vector<void*> order;

  void add(void* p, Tag t) {
    std::lock_guard lock(mu);
    live.emplace(p, t);
    order.push_back(p);
  }
  // Takes a random live block out of the model (the caller frees it).
  void* take(Rng& rng) {
    std::lock_guard lock(mu);
    if (order.empty()) return nullptr;
    const std::size_t k = rng.below(order.size());
    void* p = order[k];
    order[k] = order.back();
    order.pop_back();
    live.erase(p);
    return p;
  }
  std::set<void*> with_tags(TagSet tags) {
    std::set<void*> s;
    for (auto [p, t] : live)
      if (tags.contains(t)) s.insert(p);
    return s;
  }
};

}  // namespace

TEST_SUITE("gc.visit") {
  TEST_CASE("a walk reports exactly the live blocks of its tags after a random multi-threaded history") {
    const TagSet kGc{1, 3}, kOther{0, 2};
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
      CAPTURE(seed);
      Runtime a({.gc_tags = kGc}), b({.gc_tags = kGc});
      Model ma, mb;
      std::vector<std::unique_ptr<ThreadState>> states_a, states_b;
      for (int i = 0; i < 4; ++i) states_a.push_back(std::make_unique<ThreadState>(a));
      states_b.push_back(std::make_unique<ThreadState>(b));
      Rng main_rng(seed);

      for (int round = 0; round < 6; ++round) {
        // Three OS threads, each running one thread state of A (and thread 0
        // also one of B): allocate on tags 0..3, free blocks any thread
        // allocated (cross-thread frees, frees into abandoned pages).
        std::vector<std::thread> threads;
        for (int k = 0; k < 3; ++k) {
          ThreadState* ts = states_a[static_cast<std::size_t>(k)].get();
          ThreadState* tsb = k == 0 ? states_b[0].get() : nullptr;
          threads.emplace_back([&, ts, tsb, k] {
            Rng rng(seed * 1000 + static_cast<std::uint64_t>(round * 10 + k));
            for (int i = 0; i < 4000; ++i) {
              const bool in_b = tsb != nullptr && rng.chance(20);
              ThreadState* cur = in_b ? tsb : ts;
              Model& m = in_b ? mb : ma;
              cur->attach();
              if (rng.chance(58)) {
                const Tag t = static_cast<Tag>(rng.below(4));
                const std::uint64_t r = rng.below(1000);
                const std::size_t size = r < 900 ? rng.range(0, 512)
                                       : r < 990 ? rng.range(513, 70'000)
                                       : r < 998 ? rng.range(70'001, 400'000)
                                                 : rng.range(600'000, 2'000'000);
                void* p = cur->heap(t).allocate(size);
                CHECK(p != nullptr);
                if (p != nullptr) m.add(p, t);
              } else if (void* p = m.take(rng)) {
                tagheap::free(p);
              }
              cur->detach();
            }
          });
        }
        for (auto& t : threads) t.join();

        // The world is stopped. Check every walk against the model.
        check_exact(walk(a, kGc), ma.with_tags(kGc), "A: GC tags");
        {
          Seen s;
          visit_gc_blocks(a, [&](const BlockRef& r) { ++s.times[r.block]; });
          check_exact(s, ma.with_tags(kGc), "A: visit_gc_blocks");
        }
        check_exact(walk(a, kOther), ma.with_tags(kOther), "A: other tags");
        check_exact(walk(a, TagSet{3}), ma.with_tags(TagSet{3}), "A: tag 3");
        check_exact(walk(a, TagSet{5, 9}), {}, "A: tags never used");
        check_exact(walk(b, TagSet::all()), mb.with_tags(TagSet::all()), "B: all tags");
        a.verify();
        b.verify();

        // Between rounds, from the main thread: destroy a thread state (its
        // pages are abandoned by another thread than the one that ran it),
        // abandon() another, and make a new one that will reclaim.
        const std::size_t victim = main_rng.below(states_a.size());
        states_a.erase(states_a.begin() + static_cast<long>(victim));
        states_a[main_rng.below(states_a.size())]->abandon();
        while (states_a.size() < 4) states_a.push_back(std::make_unique<ThreadState>(a));
        // Blocks of destroyed thread states are still reported.
        check_exact(walk(a, kGc), ma.with_tags(kGc), "A: after abandoning");
      }
      const RuntimeStats s = a.stats();
      CHECK(s.total.reclaimed_total > 0);
      CHECK(s.total.abandoned_total > 0);
      // Free what is left, from this thread.
      while (void* p = ma.take(main_rng)) tagheap::free(p);
      while (void* p = mb.take(main_rng)) tagheap::free(p);
      check_exact(walk(a, TagSet::all()), {}, "A: empty at the end");
      check_exact(walk(b, TagSet::all()), {}, "B: empty at the end");
      a.verify();
      b.verify();
    }
  }

  TEST_CASE("blocks freed by another thread are not visited, collected or not") {
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 3000; ++i) blocks.push_back(ts.heap(1).allocate(40));
    std::set<void*> kept;
    std::thread([&] {
      for (std::size_t i = 0; i < blocks.size(); ++i)
        if (i % 3 != 0) tagheap::free(blocks[i]);  // onto thread-free lists
    }).join();
    for (std::size_t i = 0; i < blocks.size(); i += 3) kept.insert(blocks[i]);
    ts.ts.detach();
    // The owner has not collected anything; find_block already knows.
    CHECK(find_block(blocks[1]) == nullptr);
    CHECK(find_block(blocks[0]) == blocks[0]);
    check_exact(walk(rt, TagSet{1}), kept, "first walk");
    check_exact(walk(rt, TagSet{1}), kept, "second walk");
    CHECK(rt.stats().tags[1].blocks == kept.size());
    rt.verify();
    ts.ts.attach();
    for (void* p : kept) tagheap::free(p);
  }

  TEST_CASE("a walk visits full pages, huge blocks, abandoned and reclaimed pages") {
    Runtime rt({.gc_tags = {1}});
    std::set<void*> want;
    auto ts = std::make_unique<ThreadState>(rt);
    ts->attach();
    // Full pages: 4000 blocks of 64 bytes fill three pages completely.
    for (int i = 0; i < 4000; ++i) want.insert(ts->heap(1).allocate(64));
    // One page filled exactly: blocks of 8 KiB.
    for (int i = 0; i < 7; ++i) want.insert(ts->heap(1).allocate(8192));
    // Huge blocks, one over several 4 MiB units.
    for (std::size_t size : {std::size_t{600'000}, std::size_t{1} << 20, std::size_t{9} << 20})
      want.insert(ts->heap(1).allocate(size));
    void* other_tag = ts->heap(0).allocate(64);
    ts->detach();
    check_exact(walk(rt, TagSet{1}), want, "owned pages, full ones included");

    SUBCASE("abandoned pages") {
      ts.reset();
      CHECK(rt.stats().tags[1].abandoned_pages > 0);
      check_exact(walk(rt, TagSet{1}), want, "abandoned pages");
      for (void* p : want) tagheap::free(p);
    }
    SUBCASE("reclaimed pages") {
      ts.reset();
      for (void* p : std::vector<void*>(want.begin(), want.end()))
        if (reinterpret_cast<std::uintptr_t>(p) % 5 == 0 && usable_size(p) == 64) {
          tagheap::free(p);
          want.erase(p);
        }
      AttachedState ts2(rt);
      for (int i = 0; i < 500; ++i) want.insert(ts2.heap(1).allocate(64));
      ts2.ts.detach();
      CHECK(rt.stats().tags[1].reclaimed_total > 0);
      check_exact(walk(rt, TagSet{1}), want, "reclaimed pages");
      ts2.ts.attach();
      for (void* p : want) tagheap::free(p);
    }
    check_exact(walk(rt, TagSet{0}), {other_tag}, "the other tag");
    tagheap::free(other_tag);
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }

  TEST_CASE("a visitor returning false stops the walk") {
    Runtime rt({.gc_tags = {1, 2}});
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 2000; ++i) blocks.push_back(ts.heap(1 + i % 2).allocate(16 + i % 1000));
    blocks.push_back(ts.heap(2).allocate(1 << 20));
    ts.ts.detach();
    for (std::size_t stop_at : {std::size_t{1}, std::size_t{2}, std::size_t{1000}, std::size_t{2000}}) {
      std::size_t calls = 0;
      visit_gc_blocks(rt, [&](const BlockRef&) { return ++calls < stop_at; });
      CHECK(calls == stop_at);
    }
    std::size_t calls = 0;
    visit_gc_blocks(rt, [&](const BlockRef&) { return ++calls > 0; });
    CHECK(calls == blocks.size());
    rt.verify();
    ts.ts.attach();
    for (void* p : blocks) tagheap::free(p);
  }

  TEST_CASE("a visitor returning false stops the walk in a full page") {
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 4000; ++i) blocks.push_back(ts.heap(1).allocate(64));  // three full pages and a part
    ts.ts.detach();
    // A full page's count is unrolled four times (Page::for_each_live_index):
    // stops at each of the four places in a step, and in later pages.
    for (std::size_t stop_at : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{4}, std::size_t{1000},
                                std::size_t{3000}}) {
      std::size_t calls = 0;
      visit_gc_blocks(rt, [&](const BlockRef&) { return ++calls < stop_at; });
      CHECK(calls == stop_at);
    }
    ts.ts.attach();
    for (void* p : blocks) tagheap::free(p);
  }

  TEST_CASE("walks of empty runtimes and of huge blocks only") {
    Runtime rt({.gc_tags = {1}});
    std::size_t calls = 0;
    visit_gc_blocks(rt, [&](const BlockRef&) { ++calls; });
    visit_blocks(rt, TagSet::all(), [&](const BlockRef&) { ++calls; });
    CHECK(calls == 0);
    {
      AttachedState ts(rt);
      ts.heap(1);  // a heap, no block
      ts.ts.detach();
      visit_blocks(rt, TagSet::all(), [&](const BlockRef&) { ++calls; });
      CHECK(calls == 0);
      ts.ts.attach();
      std::set<void*> huge;
      for (std::size_t mib : {1, 3, 5}) huge.insert(ts.heap(1).allocate(mib << 20));
      ts.ts.detach();
      check_exact(walk(rt, TagSet{1}), huge, "huge blocks only");
      check_exact(walk(rt, TagSet{0}), {}, "no huge block of tag 0");
      rt.verify();
      for (void* p : huge) tagheap::free(p);  // huge blocks: any thread, no owner
    }
    check_exact(walk(rt, TagSet::all()), {}, "empty again");
    CHECK(rt.stats().total.pages == 0);
  }

  TEST_CASE("a visitor may free the block it was handed") {
    Runtime rt({.gc_tags = {1}});
    auto ts = std::make_unique<ThreadState>(rt);
    ts->attach();
    std::vector<void*> gc, data;
    for (int i = 0; i < 5000; ++i) gc.push_back(ts->heap(1).allocate(16 + (i % 64) * 16));
    for (int i = 0; i < 2000; ++i) gc.push_back(ts->heap(1).allocate(64));  // full pages
    for (int i = 0; i < 3; ++i) gc.push_back(ts->heap(1).allocate(std::size_t{1} << (20 + i)));
    for (int i = 0; i < 1000; ++i) data.push_back(ts->heap(0).allocate(48));

    SUBCASE("the walking thread owns the pages") {}
    SUBCASE("the pages belong to a detached thread state") { ts->detach(); }
    SUBCASE("the pages are abandoned") {
      ts->detach();
      ts.reset();
    }
    // Free every other GC block during the walk, then all the rest in a second.
    std::set<void*> freed, kept;
    std::size_t calls = 0;
    visit_gc_blocks(rt, [&](const BlockRef& b) {
      ++calls;
      if (calls % 2 == 0) {
        freed.insert(b.block);
        tagheap::free(b.block);
      } else {
        kept.insert(b.block);
      }
    });
    CHECK(calls == gc.size());
    CHECK(freed.size() + kept.size() == gc.size());
    if (ts) ts->detach();
    for (void* p : freed) CHECK(find_block(p) == nullptr);
    check_exact(walk(rt, TagSet{1}), kept, "after freeing half during a walk");
    rt.verify();
    if (ts) ts->attach();
    visit_gc_blocks(rt, [&](const BlockRef& b) { tagheap::free(b.block); });
    if (ts) ts->detach();
    check_exact(walk(rt, TagSet{1}), {}, "after freeing the rest during a walk");
    std::set<void*> want_data(data.begin(), data.end());
    check_exact(walk(rt, TagSet{0}), want_data, "the other tag is untouched");
    const RuntimeStats s = rt.stats();
    CHECK(s.tags[1].blocks == 0);
    CHECK(s.tags[1].huge_pages == 0);
    rt.verify();
    if (ts) ts->attach();
    for (void* p : data) tagheap::free(p);
    if (ts) ts->detach();
    rt.trim();
    if (!ts) CHECK(rt.stats().total.pages == 0);
    rt.verify();
  }

  TEST_CASE("a visitor that throws leaves the runtime as it was and its memory comes back") {
    Runtime rt(test::without_populator({.gc_tags = {1}}));  // maps counted
    const std::size_t regions_before = os::mapped_regions();
    auto ts = std::make_unique<ThreadState>(rt);
    ts->attach();
    std::vector<void*> small;
    for (int i = 0; i < 300; ++i) small.push_back(ts->heap(1).allocate(256));
    void* huge = ts->heap(1).allocate(std::size_t{3} << 20);
    ts->detach();
    SUBCASE("owned pages") {}
    SUBCASE("abandoned pages") { ts.reset(); }
    // The visitor frees what it is handed and throws on the huge block: the
    // walk must put every page back on the way out.
    struct Stop {};
    bool threw = false;
    try {
      visit_gc_blocks(rt, [&](const BlockRef& b) {
        tagheap::free(b.block);
        if (b.block == huge) throw Stop{};
      });
    } catch (const Stop&) {
      threw = true;
    }
    CHECK(threw);
    CHECK(rt.core().walkers.load() == 0);
    // Before any other walk (which would put the pages right): the huge
    // block's segment goes back to the OS and the small pages are free or
    // kept by their heap, one small segment in all.
    rt.trim();
    CHECK(os::mapped_regions() <= regions_before + 1);
    rt.verify();  // no page left in_walk or half released
    CHECK(rt.stats().tags[1].blocks == 0);
    ts.reset();
    CHECK(rt.stats().total.pages == 0);
  }

  TEST_CASE("a walk, stats(), verify() or trim() from a visitor is refused with a clear error, and the walk goes on") {
    // Each used to wait forever for the thread list the outer walk holds
    // (trim() could release the page the walk visits next).
    Runtime rt({.gc_tags = {1}});
    std::set<void*> want;
    {
      AttachedState ts(rt);
      for (int i = 0; i < 200; ++i) want.insert(ts.heap(1).allocate(48));
      want.insert(ts.heap(1).allocate(std::size_t{3} << 20));
    }
    std::vector<std::function<void()>> nested = {
        [&] { visit_gc_blocks(rt, [](const BlockRef&) {}); },
        [&] { for_each_page(rt, TagSet::all(), [](PageView) { return true; }); },
        [&] { for_each_page_by_segment(rt, TagSet::all(), [](PageView) { return true; }); },
        [&] {
          std::size_t swept = 0;
          sweep_pending_pages(rt, [] { return true; }, swept);
        },
        [&] { rt.stats(); },
        [&] { rt.verify(); },
        [&] { rt.trim(); },
    };
    for (std::size_t k = 0; k < nested.size(); ++k) {
      INFO("nested call " << k);
      Seen s;
      std::size_t refused = 0, visits = 0;
      visit_gc_blocks(rt, [&](const BlockRef& b) {
        ++s.times[b.block];
        if (visits++ % 50 != 0) return;
        try {
          nested[k]();
        } catch (const std::logic_error& e) {
          refused += std::string(e.what()).find("inside a walk of the same runtime") != std::string::npos;
        }
      });
      CHECK(refused == (want.size() + 49) / 50);
      check_exact(s, want, "the outer walk, nested calls refused");
      CHECK(rt.core().walkers.load() == 0);
    }
    // Outside a walk each works, and a walk of another runtime from a
    // visitor is allowed: nothing of it is held.
    rt.verify();
    Runtime other({.gc_tags = {1}});
    void* o;
    {
      AttachedState ots(other);
      o = ots.heap(1).allocate(64);
    }
    std::size_t other_seen = 0;
    visit_gc_blocks(rt, [&](const BlockRef&) {
      visit_gc_blocks(other, [&](const BlockRef& b) { other_seen += b.block == o; });
    });
    CHECK(other_seen == want.size());
    check_exact(walk(rt, TagSet{1}), want, "after the refused calls");
    tagheap::free(o);
    for (void* p : want) tagheap::free(p);
  }

  TEST_CASE("the C API: a walk from a C visitor returns -1, and the outer walk goes on") {
    tagheap_runtime_options o{static_cast<std::uint16_t>(1u << 4), 0};
    tagheap_runtime* rt = tagheap_runtime_new(&o);
    REQUIRE(rt != nullptr);
    tagheap_thread_state* ts = tagheap_thread_state_new(rt);
    REQUIRE(tagheap_thread_state_attach(ts) == 0);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(tagheap_heap_allocate(ts, 4, 32));
    tagheap_thread_state_detach(ts);
    struct Acc {
      tagheap_runtime* rt;
      long seen = 0, inner_failed = 0;
    } acc{rt};
    auto cb = [](const tagheap_block_ref*, void* arg) -> int {
      auto* a = static_cast<Acc*>(arg);
      ++a->seen;
      auto nothing = [](const tagheap_block_ref*, void*) -> int { return 1; };
      a->inner_failed += tagheap_visit_gc_blocks(a->rt, nothing, nullptr) == -1;
      return 1;
    };
    CHECK(tagheap_visit_gc_blocks(rt, cb, &acc) == 100);
    CHECK(acc.seen == 100);
    CHECK(acc.inner_failed == 100);
    REQUIRE(tagheap_thread_state_attach(ts) == 0);
    for (void* p : blocks) tagheap_free(p);
    tagheap_thread_state_detach(ts);
    tagheap_thread_state_delete(ts);
    tagheap_runtime_delete(rt);
  }

  TEST_CASE("find_block maps every interior byte to its block, and nothing else") {
    Runtime rt;
    AttachedState ts(rt);
    std::vector<std::size_t> sizes = {16, 48, 128, 1000, 1024, 3000, 8192, 20'000, 65'536, 300'000, 512 * 1024};
    for (std::size_t size : sizes) {
      CAPTURE(size);
      // Three neighbours: the middle one is probed, the others bound it.
      void* before = ts.heap(0).allocate(size);
      void* p = ts.heap(0).allocate(size);
      void* after = ts.heap(0).allocate(size);
      const std::size_t n = usable_size(p);
      const std::size_t step = n <= 4096 ? 1 : 61;
      std::size_t wrong = 0;
      for (std::size_t off = 0; off < n; off += step) wrong += find_block(static_cast<char*>(p) + off) != p;
      for (std::size_t off = n >= 64 ? n - 64 : 0; off < n; ++off) wrong += find_block(static_cast<char*>(p) + off) != p;
      CHECK(wrong == 0);
      CHECK(find_block(before) == before);
      CHECK(find_block(after) == after);
      tagheap::free(p);  // a free block: no byte of it finds a block
      std::size_t found = 0;
      for (std::size_t off = 0; off < n; off += step) found += find_block(static_cast<char*>(p) + off) != nullptr;
      CHECK(found == 0);
      tagheap::free(before);
      tagheap::free(after);
    }
    // Huge blocks, including bytes beyond the segment's first 4 MiB.
    for (std::size_t size : {std::size_t{700'000}, std::size_t{13} << 20}) {
      CAPTURE(size);
      void* p = ts.heap(0).allocate(size);
      std::size_t wrong = 0;
      for (std::size_t off = 0; off < size; off += 4093) wrong += find_block(static_cast<char*>(p) + off) != p;
      wrong += find_block(static_cast<char*>(p) + size - 1) != p;
      CHECK(wrong == 0);
      CHECK(find_block(static_cast<char*>(p) - 1) == nullptr);  // the page's header
      tagheap::free(p);
      CHECK(find_block(p) == nullptr);  // unmapped: no longer ours
    }
    // Pointers no segment of ours covers, and a segment's own header.
    int on_stack = 0;
    void* from_malloc = std::malloc(64);
    CHECK(find_block(&on_stack) == nullptr);
    CHECK(find_block(from_malloc) == nullptr);
    CHECK(find_block(nullptr) == nullptr);
    CHECK(find_block(reinterpret_cast<void*>(0x1000)) == nullptr);
    CHECK(find_block(reinterpret_cast<void*>(~std::uintptr_t{0} - 4096)) == nullptr);
    std::free(from_malloc);
    void* keep = ts.heap(0).allocate(32);
    CHECK(find_block(reinterpret_cast<void*>(test::segment_of(keep))) == nullptr);
    CHECK(find_block(reinterpret_cast<void*>(test::segment_of(keep) + 100)) == nullptr);
    // Blocks freed by another thread (still on a thread-free list).
    void* remote = ts.heap(0).allocate(32);
    std::thread([&] { tagheap::free(remote); }).join();
    CHECK(find_block(remote) == nullptr);
    CHECK(find_block(static_cast<char*>(remote) + 8) == nullptr);
    CHECK(find_block(keep) == keep);
    tagheap::free(keep);
  }

  TEST_CASE("the C API visits GC blocks through a callback") {
    tagheap_runtime_options o{static_cast<std::uint16_t>(1u << 4), 0};
    tagheap_runtime* rt = tagheap_runtime_new(&o);
    REQUIRE(rt != nullptr);
    tagheap_thread_state* ts = tagheap_thread_state_new(rt);
    REQUIRE(tagheap_thread_state_attach(ts) == 0);
    std::set<void*> gc;
    std::vector<void*> data;
    for (int i = 0; i < 1000; ++i) {
      void* p = tagheap_heap_allocate(ts, 4, 24 + i % 100);
      REQUIRE(p != nullptr);
      gc.insert(p);
      data.push_back(tagheap_heap_allocate_zeroed(ts, 0, 40));
    }
    gc.insert(tagheap_heap_allocate(ts, 4, 2 << 20));
    CHECK(tagheap_tag_of(*gc.begin()) == 4);
    CHECK(tagheap_find_block(static_cast<char*>(*gc.begin()) + 3) == *gc.begin());
    CHECK(tagheap_in_runtime_memory(rt, static_cast<char*>(*gc.begin()) + 3) == 1);
    CHECK(tagheap_in_runtime_memory(rt, &gc) == 0);
    CHECK(tagheap_good_size(tagheap_usable_size(*gc.begin())) == tagheap_usable_size(*gc.begin()));
    CHECK(tagheap_good_size(200) == 208);
    CHECK(tagheap_good_size(SIZE_MAX) == 0);
    tagheap_thread_state_detach(ts);

    struct Acc {
      std::set<void*> seen;
      std::size_t bad = 0, stop_after = 0;
    } acc;
    auto cb = [](const tagheap_block_ref* b, void* arg) -> int {
      auto* a = static_cast<Acc*>(arg);
      if (b->tag != 4 || b->size != tagheap_usable_size(b->block) || !a->seen.insert(b->block).second) ++a->bad;
      return a->stop_after == 0 || a->seen.size() < a->stop_after;
    };
    CHECK(tagheap_visit_gc_blocks(rt, cb, &acc) == static_cast<long>(gc.size()));
    CHECK(acc.seen == gc);
    CHECK(acc.bad == 0);
    Acc some;
    some.stop_after = 10;
    CHECK(tagheap_visit_gc_blocks(rt, cb, &some) == 10);
    CHECK(some.seen.size() == 10);
    Acc none;
    CHECK(tagheap_visit_blocks(rt, 1u << 7, cb, &none) == 0);

    REQUIRE(tagheap_thread_state_attach(ts) == 0);
    for (void* p : gc) tagheap_free(p);
    for (void* p : data) tagheap_free(p);
    tagheap_thread_state_detach(ts);
    Acc after;
    CHECK(tagheap_visit_gc_blocks(rt, cb, &after) == 0);
    tagheap_thread_state_delete(ts);
    tagheap_runtime_delete(rt);
  }

  TEST_CASE("the cost of a walk follows the pages of the walked tags") {
    // Invariant 4: a walk of tag 1 looks at tag 1's pages and no other, even
    // when tag 0 has a hundred times more.
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 200'000; ++i) blocks.push_back(ts.heap(0).allocate(16 + i % 512));
    for (int i = 0; i < 500; ++i) blocks.push_back(ts.heap(1).allocate(64));
    std::thread([&] {
      ThreadState other(rt);  // abandoned pages of tag 0 as well
      other.attach();
      for (int i = 0; i < 50'000; ++i) blocks.push_back(other.heap(0).allocate(100));
      other.detach();
    }).join();
    ts.ts.detach();
    const RuntimeStats s = rt.stats();
    REQUIRE(s.tags[0].pages > 50 * s.tags[1].pages);
    std::size_t pages = 0, wrong = 0;
    for_each_page(rt, TagSet{1}, [&](PageView page) {
      ++pages;
      wrong += page.tag() != 1;
      return true;
    });
    CHECK(pages == s.tags[1].pages);
    CHECK(wrong == 0);
    ts.ts.attach();
    for (void* p : blocks) tagheap::free(p);
  }

  TEST_CASE("a walk while other threads build thread states sees only whole heaps") {
    // Invariant 9. Building a thread state and making its heaps is not
    // allocating: it may happen while a walk runs, and the walk must neither
    // read a half-built heap nor lose the blocks it knows.
    Runtime rt({.gc_tags = {1}});
    std::set<void*> want;
    {
      AttachedState ts(rt);
      for (int i = 0; i < 2000; ++i) want.insert(ts.heap(1).allocate(32));
    }  // abandoned
    std::atomic<bool> stop{false};
    std::vector<std::unique_ptr<ThreadState>> built;
    std::thread builder([&] {
      while (!stop.load()) {
        auto ts = std::make_unique<ThreadState>(rt);
        for (Tag t = 0; t < kTagCount; ++t) ts->heap(t);
        built.push_back(std::move(ts));
        if (built.size() > 400) break;
      }
    });
    for (int i = 0; i < 200; ++i) {
      std::size_t n = 0;
      bool all_known = true;
      visit_gc_blocks(rt, [&](const BlockRef& b) {
        ++n;
        all_known &= want.count(b.block) == 1;
      });
      CHECK(n == want.size());
      CHECK(all_known);
    }
    stop.store(true);
    builder.join();
    CHECK(rt.stats().thread_states == built.size());
    built.clear();
    for (void* p : want) tagheap::free(p);
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }

  TEST_CASE("debug_fill: fresh blocks read 0xCD and freed blocks 0xDD") {
    Runtime rt({.gc_tags = {1}, .debug_fill = true});
    auto ts = std::make_unique<ThreadState>(rt);
    ts->attach();
    const std::size_t sizes[] = {16, 40, 256, 1000, 5000, 20'000, 100'000};
    for (std::size_t size : sizes) {
      CAPTURE(size);
      Heap& heap = ts->heap(1);
      void* keeper = heap.allocate(size);  // keeps the page in use (and mapped)
      CHECK(test::all_bytes(keeper, usable_size(keeper), 0xCD));
      void* local = heap.allocate(size);
      void* remote = heap.allocate(size);
      void* reused_probe = heap.allocate(size);
      const std::size_t n = usable_size(local);
      CHECK(test::all_bytes(local, n, 0xCD));
      std::memset(local, 0x11, n);
      std::memset(remote, 0x22, n);
      tagheap::free(local);  // by the owner
      CHECK(test::all_bytes(local, n, 0xDD));
      std::thread([&] { tagheap::free(remote); }).join();  // by another thread
      CHECK(test::all_bytes(static_cast<char*>(remote) + 8, n - 8, 0xDD));
      // Fresh again when allocated again, even though it was 0xDD.
      void* again = heap.allocate(size);
      CHECK(test::all_bytes(again, usable_size(again), 0xCD));
      // allocate_zeroed: zero over the size asked for.
      void* z = heap.allocate_zeroed(size);
      CHECK(test::all_bytes(z, size, 0));
      tagheap::free(again);
      tagheap::free(z);
      tagheap::free(reused_probe);
      tagheap::free(keeper);
    }
    // Frees into abandoned pages fill too.
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(ts->heap(1).allocate(96));
    ts->detach();
    ts.reset();
    for (std::size_t i = 1; i < blocks.size(); i += 2) {
      std::memset(blocks[i], 0x33, 96);
      tagheap::free(blocks[i]);
      CHECK(test::all_bytes(static_cast<char*>(blocks[i]) + 8, 88, 0xDD));
    }
    // A huge block is fresh too.
    AttachedState ts2(rt);
    void* huge = ts2.heap(1).allocate(3 << 20);
    CHECK(test::all_bytes(huge, 3 << 20, 0xCD));
    tagheap::free(huge);
    for (std::size_t i = 0; i < blocks.size(); i += 2) tagheap::free(blocks[i]);
    ts2.ts.detach();
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }
}
