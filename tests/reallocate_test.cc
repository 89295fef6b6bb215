// Heap::reallocate (DESIGN.md, "Collector, second part"): realloc on a
// heap. The bytes survive a move, the old block is freed, the result has
// the heap's tag, failure leaves the block as it was, and a pointer that is
// not a block of this runtime ends the process with a message naming it
// (each such case in a forked child).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::ChildResult;
using tagheap::test::run_in_child;

namespace {

void fill(void* p, std::size_t n, unsigned char seed) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(seed + i * 7);
}
bool holds(const void* p, std::size_t n, unsigned char seed) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != static_cast<unsigned char>(seed + i * 7)) return false;
  return true;
}
std::size_t live_blocks(Runtime& rt, Tag tag) { return rt.stats().tags[tag].blocks; }

}  // namespace

TEST_SUITE("alloc.reallocate") {
  TEST_CASE("reallocate(nullptr, n) allocates, and a grown block keeps its bytes while the old one is freed") {
    Runtime rt;
    AttachedState ts(rt);
    Heap& heap = ts.heap(0);
    void* p = heap.reallocate(nullptr, 40);
    REQUIRE(p != nullptr);
    CHECK(usable_size(p) >= 40);
    fill(p, 40, 3);
    for (std::size_t n : {std::size_t{100}, std::size_t{5000}, std::size_t{300'000}, std::size_t{3} << 20}) {
      CAPTURE(n);
      const std::size_t before = usable_size(p);
      void* q = heap.reallocate(p, n);
      REQUIRE(q != nullptr);
      CHECK(usable_size(q) >= n);
      CHECK(holds(q, 40, 3));
      if (n > before) CHECK(q != p);
      p = q;
      CHECK(live_blocks(rt, 0) == 1);  // the old block went
    }
    // Shrinking far gives the memory back: a new, small block.
    void* small = heap.reallocate(p, 16);
    REQUIRE(small != nullptr);
    CHECK(small != p);
    CHECK(usable_size(small) < 64);
    CHECK(holds(small, 16, 3));
    CHECK(live_blocks(rt, 0) == 1);
    tagheap::free(small);
  }

  TEST_CASE("a block that still fits, more than half used, stays where it is") {
    Runtime rt;
    AttachedState ts(rt);
    Heap& heap = ts.heap(0);
    void* p = heap.allocate(64);
    fill(p, 64, 9);
    const std::size_t size = usable_size(p);
    CHECK(heap.reallocate(p, size) == p);
    CHECK(heap.reallocate(p, size / 2 + 1) == p);
    CHECK(holds(p, 64, 9));
    void* q = heap.reallocate(p, size / 2);  // half or less: moves to a smaller class
    CHECK(q != p);
    CHECK(holds(q, size / 2, 9));
    tagheap::free(q);
  }

  TEST_CASE("the result has the heap's tag: a block of another tag or thread moves to it") {
    Runtime rt;
    AttachedState ts(rt);
    ThreadState other(rt);
    void* p = ts.heap(2).allocate(100);
    fill(p, 100, 1);
    void* q = ts.heap(5).reallocate(p, 100);
    REQUIRE(q != nullptr);
    CHECK(tag_of(q) == 5);
    CHECK(holds(q, 100, 1));
    CHECK(live_blocks(rt, 2) == 0);
    tagheap::free(q);
  }

  TEST_CASE("an absurd size gives nullptr and leaves the block as it was") {
    Runtime rt;
    AttachedState ts(rt);
    Heap& heap = ts.heap(0);
    void* p = heap.allocate(200);
    fill(p, 200, 4);
    for (std::size_t n : {std::size_t{1} << 62, SIZE_MAX}) {
      CHECK(heap.reallocate(p, n) == nullptr);
      CHECK(holds(p, 200, 4));
      CHECK(live_blocks(rt, 0) == 1);
    }
    tagheap::free(p);
  }

  TEST_CASE("reallocate of a pointer that is not a block of this runtime is reported with the pointer") {
    Runtime rt;
    AttachedState ts(rt);
    void* keep = ts.heap(0).allocate(64);
    auto expect_abort = [](const ChildResult& r, const void* p, const char* what) {
      INFO(r.describe());
      CHECK(r.aborted_naming(p, what));
    };
    SUBCASE("an interior pointer") {
      char* p = static_cast<char*>(ts.heap(0).allocate(64));
      expect_abort(run_in_child([&] { (void)ts.heap(0).reallocate(p + 8, 128); }), p + 8, "not the start of a block");
      tagheap::free(p);
    }
    SUBCASE("a block of another runtime") {
      Runtime other;
      void* p = nullptr;
      std::thread([&] {  // one thread state per OS thread: the other runtime's lives on its own thread
        ThreadState ots(other);
        ots.attach();
        p = ots.heap(0).allocate(64);
        ots.detach();
        ots.abandon();  // its page, and p, stay in the other runtime's pool
      }).join();
      expect_abort(run_in_child([&] { (void)ts.heap(0).reallocate(p, 128); }), p, "another runtime");
      tagheap::free(p);
    }
    SUBCASE("a pointer tagheap never gave out") {
      static char not_ours[64];
      expect_abort(run_in_child([&] { (void)ts.heap(0).reallocate(not_ours, 128); }), not_ours,
                   "not a pointer tagheap gave out");
    }
    tagheap::free(keep);
  }
}
