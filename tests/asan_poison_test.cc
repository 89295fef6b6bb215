// ASan sees tagheap blocks: a freed block is poisoned, so touching it is an
// AddressSanitizer report ("use-after-poison") naming the address, whichever
// path freed it; a block handed out again is unpoisoned; the slack after a
// page's last block is poisoned.
//
// Runs only in the asan build (--config=asan defines TAGHEAP_ASAN) once
// alloc/ poisons its blocks: announced by TAGHEAP_ASAN_POISON or by the
// header alloc/internal/asan.h. Until then every case is skipped: without the poisoning they
// would fail (the reads below are of memory ASan knows nothing about).
// Each use-after-free runs in a forked child, which must die with the report.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::ChildResult;
using tagheap::test::run_in_child;

namespace {

// Either the announcing define, or alloc/internal/asan.h (the poisoning
// helpers) being there at all.
#if defined(TAGHEAP_ASAN) && (defined(TAGHEAP_ASAN_POISON) || __has_include("alloc/internal/asan.h"))
constexpr bool kPoisoning = true;
#else
constexpr bool kPoisoning = false;
#endif

// The child touched `p` and must have died with ASan's report about it.
void expect_report(const ChildResult& r, const void* p, const char* kind = "use-after-poison") {
  INFO(r.describe());
  CHECK_FALSE((r.exited && r.exit_code == 0));
  CHECK(r.err.find("AddressSanitizer") != std::string::npos);
  CHECK(r.err.find(kind) != std::string::npos);
  // ASan prints the address as 0x..., the same digits as %p.
  CHECK(r.err.find(test::ptr_str(p).substr(2)) != std::string::npos);
}

std::uint8_t read_byte(const void* p, std::size_t off) {
  return static_cast<const volatile std::uint8_t*>(p)[off];
}

struct Graph {
  std::vector<void*> root_set;
  void roots(gc::Tracer& t) {
    for (void* r : root_set) t.mark(r);
  }
  void trace(void*, gc::Tracer&) {}
};

}  // namespace

TEST_SUITE("alloc.asan_poison" * doctest::skip(!kPoisoning)) {
  TEST_CASE("a block freed by its owner is poisoned: reading or writing it is reported") {
    Runtime rt;
    test::AttachedState ts(rt);
    for (std::size_t size : {16u, 48u, 1000u, 20000u, 200000u}) {
      CAPTURE(size);
      auto* p = static_cast<std::uint8_t*>(ts.heap(0).allocate(size));
      void* keep = ts.heap(0).allocate(size);  // the page must not go away
      std::memset(p, 1, size);
      tagheap::free(p);
      expect_report(run_in_child([&] { (void)read_byte(p, 0); }), p);
      expect_report(run_in_child([&] { static_cast<volatile std::uint8_t*>(p)[size - 1] = 7; }), p + size - 1);
      tagheap::free(keep);
    }
  }

  TEST_CASE("a block freed from another thread is poisoned whole at once") {
    Runtime rt;
    test::AttachedState ts(rt);
    auto* p = static_cast<std::uint8_t*>(ts.heap(0).allocate(64));
    void* keep = ts.heap(0).allocate(64);
    std::thread([&] { tagheap::free(p); }).join();  // a bit in the page's thread-free bitmap
    // Nothing of the block links anything: every byte is poisoned.
    expect_report(run_in_child([&] { (void)read_byte(p, 0); }), p);
    expect_report(run_in_child([&] { (void)read_byte(p, 63); }), p + 63);
    // Collected by a walk: still poisoned.
    ts.ts.detach();
    std::size_t n = 0;
    visit_blocks(rt, TagSet{0}, [&](const BlockRef&) { ++n; });
    CHECK(n == 1);
    ts.ts.attach();
    expect_report(run_in_child([&] { (void)read_byte(p, 0); }), p);
    tagheap::free(keep);
  }

  TEST_CASE("a block freed into an abandoned page is poisoned") {
    Runtime rt;
    void* p;
    void* keep;
    {
      test::AttachedState ts(rt);
      p = ts.heap(3).allocate(128);
      keep = ts.heap(3).allocate(128);
    }  // abandoned: the page is in the pool
    tagheap::free(p);
    expect_report(run_in_child([&] { (void)read_byte(p, 64); }), static_cast<char*>(p) + 64);
    tagheap::free(keep);
  }

  TEST_CASE("a block swept by a collection is poisoned") {
    Runtime rt({.gc_tags = {1}});
    test::AttachedState ts(rt);
    void* dead = ts.heap(1).allocate(32);
    void* live = ts.heap(1).allocate(32);
    std::memset(live, 3, 32);
    ts.ts.detach();
    Graph g{{live}};
    const gc::CollectStats s = gc::MarkSweep<Graph>(rt, g).collect();
    CHECK(s.freed_blocks == 1);
    expect_report(run_in_child([&] { (void)read_byte(dead, 0); }), dead);
    CHECK(read_byte(live, 31) == 3);  // the survivor is untouched and readable
    ts.ts.attach();
    tagheap::free(live);
  }

  TEST_CASE("the slack after a page's last block is poisoned") {
    Runtime rt;
    test::AttachedState ts(rt);
    // A size class whose blocks leave bytes over at the end of their page.
    void* p = nullptr;
    std::uintptr_t end_of_blocks = 0;
    for (std::size_t size : {80u, 112u, 176u, 320u, 640u, 1280u, 2560u, 5000u, 7000u, 40000u}) {
      p = ts.heap(0).allocate(size);
      const PageView page = PageView::of(p);
      end_of_blocks = reinterpret_cast<std::uintptr_t>(page.block(page.block_count() - 1)) + page.block_size();
      if (end_of_blocks + 8 <= page.address() + page.committed_bytes()) break;
      tagheap::free(p);
      p = nullptr;
    }
    REQUIRE(p != nullptr);
    expect_report(run_in_child([&] { (void)read_byte(reinterpret_cast<void*>(end_of_blocks), 0); }),
                  reinterpret_cast<void*>(end_of_blocks));
    tagheap::free(p);
  }

  TEST_CASE("a freed huge block is a fault (its segment is unmapped)") {
    Runtime rt;
    test::AttachedState ts(rt);
    void* p = ts.heap(0).allocate(3 << 20);
    tagheap::free(p);
    // run_in_child restores SIGSEGV's default action, so the child dies of
    // the signal rather than with ASan's SEGV report; either will do.
    const ChildResult r = run_in_child([&] { (void)read_byte(p, 100); });
    INFO(r.describe());
    CHECK_FALSE((r.exited && r.exit_code == 0));
    CHECK(((r.signaled && r.signal == SIGSEGV) || r.err.find("AddressSanitizer") != std::string::npos));
  }

  TEST_CASE("blocks handed out again are unpoisoned on every allocation path; walks read no poison") {
    // No false reports: every live block is fully usable, after reuse by the
    // fast path, the slow path, reclaim, remote collection, and a sweep.
    const ChildResult r = run_in_child([] {
      Runtime rt({.gc_tags = {1}});
      test::ChildChecks c;
      std::vector<std::pair<void*, std::size_t>> live;
      {
        test::AttachedState a(rt);
        for (int round = 0; round < 4; ++round) {
          for (int i = 0; i < 3000; ++i) {
            const std::size_t size = 16 + (i * 37) % 3000;
            void* p = i % 7 == 0 ? a.heap(1).allocate_zeroed(size) : a.heap(static_cast<Tag>(i % 2)).allocate(size);
            std::memset(p, 0xAB, size);
            live.emplace_back(p, size);
          }
          // Free two thirds: local, remote, and (after the loop) abandoned.
          std::vector<void*> remote;
          for (std::size_t i = 0; i < live.size(); ++i) {
            if (i % 3 == 0) tagheap::free(live[i].first);
            else if (i % 3 == 1) remote.push_back(live[i].first);
          }
          std::thread([&] { for (void* p : remote) tagheap::free(p); }).join();
          std::vector<std::pair<void*, std::size_t>> kept;
          for (std::size_t i = 2; i < live.size(); i += 3) kept.push_back(live[i]);
          live.swap(kept);
        }
      }  // abandoned; the next thread state reclaims
      test::AttachedState b(rt);
      for (int i = 0; i < 20000; ++i) {
        const std::size_t size = 16 + (i * 53) % 3000;
        void* p = b.heap(static_cast<Tag>(i % 2)).allocate(size);
        std::memset(p, 0xCD, size);
        live.emplace_back(p, size);
      }
      b.ts.detach();
      std::size_t bytes = 0;
      visit_blocks(rt, TagSet{0, 1}, [&](const BlockRef& ref) {
        for (std::size_t i = 0; i < ref.size; ++i) bytes += read_byte(ref.block, i) != 0;
      });
      c.expect(bytes > 0, "the walk read the live blocks");
      Graph g;
      gc::MarkSweep<Graph>(rt, g).collect();  // frees every tag-1 block
      b.ts.attach();
      for (int i = 0; i < 5000; ++i) {
        void* p = b.heap(1).allocate(16 + i % 500);
        std::memset(p, 0xEE, 16 + i % 500);
      }
      c.finish();
    });
    CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
  }
}
