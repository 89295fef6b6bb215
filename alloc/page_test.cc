// Unit tests of pages and size classes, through the public API, and of the
// page header's layout.
#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/internal/page.h"
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

TEST_SUITE("alloc.page.layout") {
  // A collector's mark of a block reads the page's tag and geometry, then
  // its mark word through mark_bits: all on the struct's first cache line,
  // as are the fields of allocation's and free()'s fast paths.
  TEST_CASE("a mark and the fast paths read only the page header's first cache line") {
    internal::Page page;
    const auto offset = [&](const void* field) {
      return static_cast<std::size_t>(static_cast<const char*>(field) - reinterpret_cast<const char*>(&page));
    };
    for (const void* field : {static_cast<const void*>(&page.alloc_word), static_cast<const void*>(&page.used),
                              static_cast<const void*>(&page.blocks_start), static_cast<const void*>(&page.block_size),
                              static_cast<const void*>(&page.free_bits), static_cast<const void*>(&page.block_inv),
                              static_cast<const void*>(&page.reserved), static_cast<const void*>(&page.tag),
                              static_cast<const void*>(&page.slow_free), static_cast<const void*>(&page.mark_bits)})
      CHECK(offset(field) < 64);
    CHECK(offset(&page.mark_bits) + sizeof page.mark_bits <= 64);
    CHECK(alignof(internal::Page) == 64);
  }
}
