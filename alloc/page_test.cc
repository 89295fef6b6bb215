// Unit tests of pages and size classes, through the public API.
#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/internal/size_class.h"
#include "alloc/tagheap.h"

using namespace tagheap;

TEST_SUITE("alloc.page") {
  TEST_CASE("every size class round-trips with its full usable size") {
    Runtime rt;
    ThreadState ts(rt);
    ts.attach();
    for (std::size_t c = 1; c < internal::kClassCount; ++c) {
      const std::size_t bs = internal::class_block_size(c);
      for (std::size_t size : {bs - 15, bs}) {
        auto* p = static_cast<unsigned char*>(ts.heap(0).allocate(size));
        REQUIRE(p != nullptr);
        CHECK(usable_size(p) == bs);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
        std::memset(p, 0xAB, usable_size(p));
        CHECK(tag_of(p) == 0);
        tagheap::free(p);
      }
    }
    ts.detach();
  }

  TEST_CASE("a freed block is reused by the next allocation of its class") {
    Runtime rt;
    ThreadState ts(rt);
    ts.attach();
    void* a = ts.heap(0).allocate(40);
    void* b = ts.heap(0).allocate(40);
    tagheap::free(a);
    std::set<void*> seen;
    // The freed block comes back within one bitmap word's worth.
    for (int i = 0; i < 4096 && !seen.count(a); ++i) seen.insert(ts.heap(0).allocate(40));
    CHECK(seen.count(a) == 1);
    CHECK(seen.count(b) == 0);
    ts.detach();
  }
}
