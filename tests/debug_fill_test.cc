// Invariant 7 on every free path: with debug_fill, every block of every size
// class and huge blocks read 0xDD once freed, whether freed by free() on the
// owner thread, by free() from another thread (at once: the free marks the
// block in a bitmap and writes no link into it), into an abandoned page, or
// by a collector's sweep.
//
// Freed memory is read while it is still mapped: a small, medium or large
// block's page is kept in use by a neighbour; a freed huge block's segment
// sits in the runtime's huge cache (sizes up to kHugeCacheBytes / 4).
#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/internal/size_class.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;

namespace {

constexpr Tag kGc = 1;

// One size per class, then huge sizes the huge cache keeps mapped.
std::vector<std::size_t> every_size() {
  std::vector<std::size_t> sizes;
  for (std::size_t c = 1; c < internal::kClassCount; ++c) sizes.push_back(internal::class_block_size(c));
  for (std::size_t huge : {internal::kLargeBlockMax + 16, std::size_t{1} << 20, std::size_t{5} << 20,
                           internal::kHugeCacheBytes / 4 - (std::size_t{1} << 20)})
    sizes.push_back(huge);
  return sizes;
}

bool is_huge(std::size_t size) { return size > internal::kLargeBlockMax; }

// Allocates a block of `size` that is not the only one of its page (a
// neighbour keeps small pages in use after the block is freed), and writes
// over it so a fill can't pass for old contents.
struct Victim {
  void* block = nullptr;
  void* neighbour = nullptr;
  std::size_t size = 0;
};
Victim make_victim(Heap& heap, std::size_t size) {
  Victim v;
  if (!is_huge(size)) v.neighbour = heap.allocate(size);
  v.block = heap.allocate(size);
  v.size = usable_size(v.block);
  std::memset(v.block, 0x5A, v.size);
  return v;
}

bool freed_fill(const Victim& v) { return test::all_bytes(v.block, v.size, internal::kFillFreed); }

struct RootSet {
  std::vector<void*> roots_;
  void roots(gc::Tracer& t) {
    for (void* r : roots_) t.mark(r);
  }
  void trace(void*, gc::Tracer&) {}
};

}  // namespace

TEST_SUITE("alloc.debug_fill") {
  TEST_CASE("every size class and huge blocks read 0xDD once freed, whichever path frees them") {
    Runtime rt({.gc_tags = {kGc}, .debug_fill = true});
    SUBCASE("free() on the owner thread") {
      test::AttachedState ts(rt);
      for (std::size_t size : every_size()) {
        CAPTURE(size);
        Victim v = make_victim(ts.heap(kGc), size);
        tagheap::free(v.block);
        CHECK(freed_fill(v));
        tagheap::free(v.neighbour);
      }
    }
    SUBCASE("free() from another thread, before and after a walk collects it") {
      test::AttachedState ts(rt);
      for (std::size_t size : every_size()) {
        CAPTURE(size);
        Victim v = make_victim(ts.heap(kGc), size);
        std::thread([&] { tagheap::free(v.block); }).join();
        CHECK(freed_fill(v));  // not collected yet
        visit_gc_blocks(rt, [](const BlockRef&) {});  // collects thread-free lists
        CHECK(freed_fill(v));
        tagheap::free(v.neighbour);
      }
    }
    SUBCASE("free() into an abandoned page, from this thread and from another") {
      for (std::size_t size : every_size()) {
        CAPTURE(size);
        Victim a, b;
        {
          test::AttachedState ts(rt);
          a = make_victim(ts.heap(kGc), size);
          b = make_victim(ts.heap(kGc), size);
        }  // the thread state is gone: its pages wait in the pool
        tagheap::free(a.block);
        CHECK(freed_fill(a));
        std::thread([&] { tagheap::free(b.block); }).join();
        CHECK(freed_fill(b));
        tagheap::free(a.neighbour);
        tagheap::free(b.neighbour);
      }
    }
    SUBCASE("a sweep") {
      test::AttachedState ts(rt);
      for (std::size_t size : every_size()) {
        CAPTURE(size);
        Victim v = make_victim(ts.heap(kGc), size);
        RootSet model;
        if (v.neighbour != nullptr) model.roots_.push_back(v.neighbour);
        gc::MarkSweep<RootSet> collector(rt, model);
        CHECK(collector.collect().freed_blocks == 1);
        CHECK(freed_fill(v));
        tagheap::free(v.neighbour);
      }
    }
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }
}
