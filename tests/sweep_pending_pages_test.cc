// sweep_pending_pages (alloc/heap_walk.h): a collector finishes the lazy
// sweep a collection left over several short calls, a segment at a time,
// and a segment once done is not visited again until the next collection.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::pending_sweep;

namespace {

constexpr Tag kGc = 1;

void mark(void* block) {
  PageView page = PageView::of(block);
  const std::uint32_t i = page.index_of(block);
  page.mark_word(i >> 6) |= std::uint64_t{1} << (i & 63);
}

// Blocks of 48 bytes over several segments; a "collection" marks every
// third one and leaves the marks to the lazy sweep.
struct SweptLater {
  Runtime rt{{.gc_tags = {kGc}}};
  AttachedState ts{rt};
  std::vector<void*> kept;
  SweptLater() {
    std::vector<void*> all;
    for (int i = 0; i < 300'000; ++i) all.push_back(ts.heap(kGc).allocate(48));
    for (std::size_t i = 0; i < all.size(); i += 3) {
      mark(all[i]);
      kept.push_back(all[i]);
    }
    collect();
  }
  void collect() {
    ts.ts.detach();
    begin_lazy_sweep(rt, TagSet{kGc}, /*keep_marks=*/false);
    ts.ts.attach();
  }
  ~SweptLater() {
    for (void* p : kept) tagheap::free(p);
  }
};

}  // namespace

TEST_SUITE("alloc.sweep_pending_pages") {
  TEST_CASE("a call told to stop after each segment sweeps one, and the one that sweeps the last says it finished") {
    SweptLater h;
    const auto [pages_before, segments_before] = pending_sweep(h.rt);
    REQUIRE(segments_before >= 3);
    std::size_t calls = 0, swept = 0;
    while (!sweep_pending_pages(h.rt, [] { return false; }, swept)) {
      ++calls;
      REQUIRE(calls < 1000);
      CHECK(pending_sweep(h.rt).segments <= segments_before - calls);  // a segment a call
      // Every segment here holds pending pages: a call that reports work
      // left has left some (a collector's sweep pause would otherwise
      // come once more for nothing).
      CHECK(pending_sweep(h.rt).pages > 0);
    }
    CHECK(calls + 1 >= segments_before);
    CHECK(swept == pages_before);
    CHECK(pending_sweep(h.rt).pages == 0);
    CHECK(h.rt.stats().tags[kGc].blocks == h.kept.size());
    h.rt.verify();
  }

  TEST_CASE("once done, later calls visit nothing until a new collection leaves marks") {
    SweptLater h;
    std::size_t swept = 0;
    CHECK(sweep_pending_pages(h.rt, [] { return true; }, swept));
    CHECK(swept > 0);
    std::size_t again = 0;
    CHECK(sweep_pending_pages(h.rt, [] { return false; }, again));  // stops at a segment it did: no call to go on
    CHECK(again == 0);
    // A new collection keeps half of what the last one kept.
    std::vector<void*> dead;
    std::vector<void*> kept;
    for (std::size_t i = 0; i < h.kept.size(); ++i) (i % 2 == 0 ? kept : dead).push_back(h.kept[i]);
    for (void* p : kept) mark(p);
    h.kept = kept;
    h.collect();
    REQUIRE(pending_sweep(h.rt).pages > 0);
    std::size_t third = 0;
    CHECK(sweep_pending_pages(h.rt, [] { return true; }, third));
    CHECK(third > 0);
    CHECK(pending_sweep(h.rt).pages == 0);
    CHECK(h.rt.stats().tags[kGc].blocks == kept.size());
  }

  TEST_CASE("segments mapped between calls do not keep the sweep from finishing") {
    SweptLater h;
    std::size_t swept = 0;
    std::vector<void*> fresh;
    std::size_t calls = 0;
    while (!sweep_pending_pages(h.rt, [] { return false; }, swept)) {
      for (int i = 0; i < 30'000; ++i) fresh.push_back(h.ts.heap(kGc).allocate(64));  // some pages on new segments
      REQUIRE(++calls < 1000);
    }
    CHECK(pending_sweep(h.rt).pages == 0);
    CHECK(h.rt.stats().tags[kGc].blocks == h.kept.size() + fresh.size());
    for (void* p : fresh) tagheap::free(p);
    h.rt.verify();
  }

  TEST_CASE("before any collection left marks, a call returns at once") {
    Runtime rt({.gc_tags = {kGc}});
    AttachedState ts(rt);
    void* p = ts.heap(kGc).allocate(32);
    std::size_t swept = 0;
    bool asked = false;
    CHECK(sweep_pending_pages(rt, [&] { return asked = true; }, swept));
    CHECK(!asked);
    CHECK(swept == 0);
    tagheap::free(p);
  }
}
