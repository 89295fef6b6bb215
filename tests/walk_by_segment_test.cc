// for_each_page_by_segment (alloc/heap_walk.h): a pass over the pages of
// some tags in segment order shows the same pages as for_each_page, sweeps
// what a collection left pending, collects thread frees, and afterwards
// puts back the pages whose blocks it freed (emptied pages released, full
// ones refiled), even when its visitor throws or memory for its list of
// pages to put back runs out.
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::Rng;

// Out of memory on demand: while g_refuse_new is set, operator new on this
// thread throws std::bad_alloc (the pass's list of pages to put back is
// the only thing it allocates).
namespace {
thread_local bool g_refuse_new = false;
thread_local std::size_t g_refused = 0;
}  // namespace

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // this new is malloc
void* operator new(std::size_t size) {
  if (g_refuse_new) {
    ++g_refused;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

// Page -> blocks in use, as a pass shows them.
using PageCounts = std::map<void*, std::uint32_t>;

PageCounts by_list(Runtime& rt, TagSet tags) {
  PageCounts seen;
  for_each_page(rt, tags, [&](PageView page) {
    seen[page.raw()] = page.live_blocks();
    return true;
  });
  return seen;
}

PageCounts by_segment(Runtime& rt, TagSet tags) {
  PageCounts seen;
  std::size_t shown = 0;
  for_each_page_by_segment(rt, tags, [&](PageView page) {
    ++shown;
    CHECK(page.raw()->in_walk == 1);
    seen[page.raw()] = page.live_blocks();
    return true;
  });
  CHECK(shown == seen.size());  // each page once
  return seen;
}

// In-use pages of `tag` not where after_walk would have put them: pool
// pages that are empty (released at once) or in the pool's full list with
// free blocks (refiled to their bins), owned pages in their heap's full
// queue with free blocks (back to their class queues).
std::size_t misplaced_pages(Runtime& rt, Tag tag) {
  std::size_t n = 0;
  for_each_segment(rt, [&](SegmentView seg) {
    for (std::size_t i = 0; i < seg.page_count(); ++i) {
      const internal::Page& p = *seg.page(i).raw();
      if (!p.in_use || p.tag != tag || p.kind == internal::PageKind::kHuge) continue;
      const bool has_free = p.used < p.reserved;
      if (p.in_pool ? p.used == 0 || (p.pool_full && has_free) : p.in_full() && has_free) ++n;
    }
  });
  return n;
}

// A heap of tag 1 spread over every kind of page: owned partly used and
// full, abandoned by a thread that exited, huge blocks, blocks of another
// tag in the same segments, and blocks freed by another thread (announced,
// not collected). Returns the tag-1 blocks still in use.
std::set<void*> spread_heap(Runtime& rt, AttachedState& main, std::vector<void*>* from_exited = nullptr) {
  Rng rng(7);
  std::set<void*> live;
  for (int i = 0; i < 6000; ++i) {
    live.insert(main.heap(1).allocate(16 + rng.below(600)));
    if (i % 7 == 0) main.heap(0).allocate(32);  // another tag, never freed here: the runtime releases it
  }
  for (std::size_t size : {std::size_t{700'000}, std::size_t{5} << 20}) live.insert(main.heap(1).allocate(size));
  std::vector<void*> exited;
  std::thread([&] {
    AttachedState ts(rt);
    for (int i = 0; i < 5000; ++i) exited.push_back(ts.heap(1).allocate(48));
  }).join();  // its pages are abandoned
  live.insert(exited.begin(), exited.end());
  if (from_exited != nullptr) *from_exited = exited;
  // Freed by another thread: announced on the page, collected by a walk.
  std::vector<void*> mine(live.begin(), live.end());
  std::thread([&] {
    for (std::size_t i = 0; i < mine.size(); i += 5) tagheap::free(mine[i]);
  }).join();
  for (std::size_t i = 0; i < mine.size(); i += 5) live.erase(mine[i]);
  return live;
}

// spread_heap, then a collection that kept every third block and none of
// the exited thread's (its abandoned pages empty), its marks left to be
// swept lazily: a pass then empties pages and frees blocks of full ones,
// all of which it must put back. Detaches `main`; returns the kept blocks.
std::set<void*> kept_by_a_collection(Runtime& rt, AttachedState& main) {
  std::vector<void*> exited;
  const std::set<void*> live = spread_heap(rt, main, &exited);
  const std::set<void*> of_exited(exited.begin(), exited.end());
  main.ts.detach();
  CHECK(misplaced_pages(rt, 1) == 0);
  std::set<void*> kept;
  std::size_t k = 0;
  for (void* p : live)
    if (k++ % 3 == 0 && of_exited.count(p) == 0) {
      PageView page = PageView::of(p);
      const std::uint32_t i = page.index_of(p);
      page.mark_word(i >> 6) |= std::uint64_t{1} << (i & 63);
      kept.insert(p);
    }
  begin_lazy_sweep(rt, TagSet{1}, /*keep_marks=*/false);
  return kept;
}

}  // namespace

TEST_SUITE("alloc.walk_by_segment") {
  TEST_CASE("a pass by segment shows the pages a walk shows, with the same blocks in use") {
    Runtime rt({.gc_tags = {1}});
    AttachedState main(rt);
    const std::set<void*> live = spread_heap(rt, main);
    main.ts.detach();
    const PageCounts segment_order = by_segment(rt, TagSet{1});  // collects the thread frees first
    const PageCounts list_order = by_list(rt, TagSet{1});
    CHECK(segment_order == list_order);
    std::size_t blocks = 0;
    for (auto [page, n] : segment_order) blocks += n;
    CHECK(blocks == live.size());
    CHECK(by_segment(rt, TagSet{0}).size() > 0);
    CHECK(by_segment(rt, TagSet{2}).empty());
    rt.verify();
    main.ts.attach();
    for (void* p : live) tagheap::free(p);
  }

  TEST_CASE("a pass by segment sweeps pending pages and then puts back those it freed blocks of") {
    Runtime rt({.gc_tags = {1}});
    AttachedState main(rt);
    const std::set<void*> kept = kept_by_a_collection(rt, main);
    std::size_t blocks = 0;
    for (auto [page, n] : by_segment(rt, TagSet{1})) blocks += n;
    CHECK(blocks == kept.size());
    // The abandoned pages it emptied went back at the end of the pass, and
    // full ones with free blocks again are filed where allocation finds them.
    CHECK(misplaced_pages(rt, 1) == 0);
    CHECK(rt.stats().tags[1].abandoned_pages == 0);
    CHECK(by_list(rt, TagSet{1}) == by_segment(rt, TagSet{1}));
    rt.verify();
    main.ts.attach();
    for (void* p : kept) tagheap::free(p);
    main.ts.detach();
    CHECK(rt.stats().tags[1].blocks == 0);
    main.ts.attach();
  }

  TEST_CASE("a visitor that throws or stops the pass leaves every page as a walk would") {
    Runtime rt({.gc_tags = {1}});
    AttachedState main(rt);
    const std::set<void*> live = spread_heap(rt, main);
    main.ts.detach();
    // A collection that kept every tenth block.
    std::size_t kept = 0, k = 0;
    for (void* p : live)
      if (k++ % 10 == 0) {
        PageView page = PageView::of(p);
        const std::uint32_t i = page.index_of(p);
        page.mark_word(i >> 6) |= std::uint64_t{1} << (i & 63);
        ++kept;
      }
    begin_lazy_sweep(rt, TagSet{1}, false);
    std::size_t shown = 0;
    SUBCASE("throws") {
      CHECK_THROWS_AS(for_each_page_by_segment(rt, TagSet{1},
                                               [&](PageView) -> bool {
                                                 if (++shown == 3) throw std::runtime_error("visitor");
                                                 return true;
                                               }),
                      std::runtime_error);
    }
    SUBCASE("returns false") {
      for_each_page_by_segment(rt, TagSet{1}, [&](PageView) { return ++shown < 3; });
    }
    CHECK(shown == 3);
    // The pages it swept and emptied went back; none was left in_walk; a
    // walk sweeps the rest.
    CHECK(misplaced_pages(rt, 1) == 0);
    for_each_segment(rt, [&](SegmentView seg) {
      for (std::size_t i = 0; i < seg.page_count(); ++i) CHECK(seg.page(i).raw()->in_walk == 0);
    });
    std::size_t blocks = 0;
    for (auto [page, n] : by_list(rt, TagSet{1})) blocks += n;
    CHECK(blocks == kept);
    CHECK(rt.stats().tags[1].blocks == kept);
    rt.verify();
  }

  TEST_CASE("a pass by segment short of memory for its list still puts back every page it freed blocks of") {
    Runtime rt({.gc_tags = {1}});
    AttachedState main(rt);
    const std::size_t kept = kept_by_a_collection(rt, main).size();
    std::size_t blocks = 0;
    g_refused = 0;
    g_refuse_new = true;
    for_each_page_by_segment(rt, TagSet{1}, [&](PageView page) {
      blocks += page.live_blocks();
      return true;
    });
    g_refuse_new = false;
    CHECK(g_refused > 0);  // the list could not be kept: the fallback ran
    CHECK(blocks == kept);
    CHECK(misplaced_pages(rt, 1) == 0);
    CHECK(rt.stats().tags[1].abandoned_pages == 0);
    CHECK(rt.stats().tags[1].blocks == kept);
    for_each_segment(rt, [&](SegmentView seg) {
      for (std::size_t i = 0; i < seg.page_count(); ++i) CHECK(seg.page(i).raw()->in_walk == 0);
    });
    rt.verify();
  }
}
