// Sweeping ahead (Heap::sweep_ahead): after a collection left its marks to
// be swept lazily, the pages a heap takes for allocation also sweep the
// pending pages of the classes it no longer allocates from, so the next
// collection finds them swept instead of sweeping them in its pause.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

// In-use pages of `tag` still holding a collection's marks.
std::size_t pending_pages(Runtime& rt, Tag tag) {
  std::size_t n = 0;
  for_each_segment(rt, [&](SegmentView seg) {
    for (std::size_t i = 0; i < seg.page_count(); ++i) {
      PageView page = seg.page(i);
      if (page.in_use() && page.tag() == tag && sweep_pending(rt, page)) ++n;
    }
  });
  return n;
}

void mark(void* block) {
  PageView page = PageView::of(block);
  const std::uint32_t i = page.index_of(block);
  page.mark_word(i >> 6) |= std::uint64_t{1} << (i & 63);
}

}  // namespace

TEST_SUITE("alloc.sweep_ahead") {
  TEST_CASE("pages of a class no longer allocated from are swept by the allocation of another") {
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    // 64 pages of 48-byte blocks; a "collection" keeps every fourth block
    // of the first half and nothing of the second.
    std::vector<void*> old;
    for (int i = 0; i < 64 * 1365; ++i) old.push_back(ts.heap(1).allocate(48));
    std::vector<void*> kept;
    for (std::size_t i = 0; i < old.size() / 2; i += 4) {
      mark(old[i]);
      kept.push_back(old[i]);
    }
    const std::size_t pages_before = rt.stats().tags[1].pages;
    ts.ts.detach();
    begin_lazy_sweep(rt, TagSet{1}, /*keep_marks=*/false);
    ts.ts.attach();
    CHECK(pending_pages(rt, 1) >= 60);
    // The program now allocates only 1 KiB blocks: a page taken every 64.
    std::vector<void*> fresh;
    for (int i = 0; i < 64 * 64; ++i) fresh.push_back(ts.heap(1).allocate(1024));
    // 64 pages taken, two pages swept ahead each: nothing of the 48-byte
    // class is left pending, and its emptied pages went back (a queue
    // keeps its last page).
    CHECK(pending_pages(rt, 1) == 0);
    ts.ts.detach();
    const RuntimeStats s = rt.stats();
    CHECK(s.tags[1].blocks == kept.size() + fresh.size());
    CHECK(s.tags[1].pages < pages_before / 2 + 64 + 2);
    rt.verify();
    ts.ts.attach();
    for (void* p : kept) tagheap::free(p);
    for (void* p : fresh) tagheap::free(p);
  }

  TEST_CASE("without a collection pending, allocation sweeps nothing ahead") {
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 20000; ++i) blocks.push_back(ts.heap(1).allocate(16 + (i % 50) * 16));
    CHECK(pending_pages(rt, 1) == 0);
    ts.ts.detach();
    CHECK(rt.stats().tags[1].blocks == blocks.size());
    rt.verify();
    ts.ts.attach();
    for (void* p : blocks) tagheap::free(p);
  }
}
