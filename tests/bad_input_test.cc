// Bad input. Misuse that tagheap detects ends the process: each case runs in
// a forked child, which must die by SIGABRT after writing a message naming
// the pointer. Absurd sizes and bad alignments return nullptr; when the OS
// refuses memory, allocations return nullptr and nothing is lost.
#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::ChildResult;
using tagheap::test::ptr_str;
using tagheap::test::run_in_child;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The child must abort with a message that names `p` and says `what`.
void expect_abort(const ChildResult& r, const void* p, const char* what) {
  INFO(r.describe());
  CHECK(r.aborted_naming(p, what));
}

}  // namespace

TEST_SUITE("alloc.bad_input") {
  TEST_CASE("a double free is reported with the pointer, then the process aborts") {
    Runtime rt;
    AttachedState ts(rt);
    SUBCASE("same thread, the page holds other blocks") {
      void* keep = ts.heap(0).allocate(64);
      void* p = ts.heap(0).allocate(64);
      expect_abort(run_in_child([&] {
                     tagheap::free(p);
                     tagheap::free(p);
                   }),
                   p, "double free");
      tagheap::free(p);
      tagheap::free(keep);
    }
    SUBCASE("same thread, the block was alone in its page") {
      void* p = ts.heap(0).allocate(3000);
      expect_abort(run_in_child([&] {
                     tagheap::free(p);
                     tagheap::free(p);
                   }),
                   p, "double free");
      tagheap::free(p);
    }
    SUBCASE("into an abandoned page") {
      ThreadState other(rt);
      std::vector<void*> blocks;
      std::thread([&] {
        other.attach();
        for (int i = 0; i < 10; ++i) blocks.push_back(other.heap(0).allocate(64));
        other.detach();
      }).join();
      other.abandon();
      void* p = blocks[3];
      expect_abort(run_in_child([&] {
                     tagheap::free(p);
                     tagheap::free(p);
                   }),
                   p, "double free");
      for (void* b : blocks) tagheap::free(b);
    }
    SUBCASE("from another thread, reported when the owner collects") {
      void* keep = ts.heap(0).allocate(64);
      void* p = ts.heap(0).allocate(64);
      expect_abort(run_in_child([&] {
                     std::thread([&] {
                       tagheap::free(p);
                       tagheap::free(p);
                     }).join();
                     ts.ts.detach();
                     rt.stats();  // a walk collects the thread-free list
                     rt.verify();
                   }),
                   p, "double free");
      tagheap::free(p);
      tagheap::free(keep);
    }
    SUBCASE("a huge block") {
      void* p = ts.heap(0).allocate(2 << 20);
      const ChildResult r = run_in_child([&] {
        tagheap::free(p);
        tagheap::free(p);
      });
      INFO(r.describe());
      CHECK(r.aborted());
      CHECK(contains(r.err, ptr_str(p)));
      tagheap::free(p);
    }
  }

  TEST_CASE("freeing an interior pointer is reported with the pointer") {
    Runtime rt;
    AttachedState ts(rt);
    SUBCASE("small block") {
      void* keep = ts.heap(0).allocate(64);
      char* p = static_cast<char*>(ts.heap(0).allocate(64));
      expect_abort(run_in_child([&] { tagheap::free(p + 16); }), p + 16, "interior");
      tagheap::free(p);
      tagheap::free(keep);
    }
    SUBCASE("a block of an abandoned page") {
      ThreadState other(rt);
      ts.ts.detach();
      other.attach();
      char* p = static_cast<char*>(other.heap(0).allocate(256));
      void* keep = other.heap(0).allocate(256);
      other.detach();
      other.abandon();
      ts.ts.attach();
      expect_abort(run_in_child([&] { tagheap::free(p + 100); }), p + 100, "interior");
      tagheap::free(p);
      tagheap::free(keep);
    }
    SUBCASE("large block, near its end: the message names the block it points into") {
      std::vector<char*> blocks;
      for (int i = 0; i < 5; ++i) blocks.push_back(static_cast<char*>(ts.heap(0).allocate(480 * 1024)));
      char* p = blocks[2];
      const std::size_t n = usable_size(p);
      for (std::size_t off : {std::size_t{8}, n / 2, n - 16, n - 1}) {
        CAPTURE(off);
        const ChildResult r = run_in_child([&] { tagheap::free(p + off); });
        expect_abort(r, p + off, "interior");
        CHECK_MESSAGE(contains(r.err, ptr_str(p)), "the containing block " << ptr_str(p) << " is not named");
      }
      for (char* b : blocks) tagheap::free(b);
    }
    SUBCASE("huge block") {
      char* p = static_cast<char*>(ts.heap(0).allocate(1 << 20));
      expect_abort(run_in_child([&] { tagheap::free(p + 4096); }), p + 4096, "interior");
      tagheap::free(p);
    }
  }

  TEST_CASE("freeing a pointer tagheap never gave out is reported with the pointer") {
    Runtime rt;
    AttachedState ts(rt);
    void* keep = ts.heap(0).allocate(64);
    SUBCASE("a std::malloc pointer") {
      void* p = std::malloc(100);
      expect_abort(run_in_child([&] { tagheap::free(p); }), p, "not a pointer tagheap gave out");
      std::free(p);
    }
    SUBCASE("a stack address") {
      int local = 0;
      expect_abort(run_in_child([&] { tagheap::free(&local); }), &local, "not a pointer tagheap gave out");
    }
    SUBCASE("a small integer") {
      void* p = reinterpret_cast<void*>(0x1000);
      expect_abort(run_in_child([&] { tagheap::free(p); }), p, "not a pointer tagheap gave out");
    }
    SUBCASE("the header of one of our segments") {
      void* p = reinterpret_cast<void*>(test::segment_of(keep) + 64);
      const ChildResult r = run_in_child([&] { tagheap::free(p); });
      INFO(r.describe());
      CHECK(r.aborted());
      CHECK(contains(r.err, ptr_str(p)));
    }
    SUBCASE("a block of a page that went back to its segment") {
      // 200 blocks of 1000 bytes take four pages. Freeing every block of the
      // page holding block 70 (a full page, not the heap's last one of the
      // class) releases it; then block 70 is freed again.
      std::vector<void*> blocks;
      for (int i = 0; i < 200; ++i) blocks.push_back(ts.heap(0).allocate(1000));
      void* gone = blocks[70];
      const auto page_of = [](void* q) { return reinterpret_cast<std::uintptr_t>(q) >> 16; };
      const ChildResult r = run_in_child([&] {
        for (void* b : blocks)
          if (page_of(b) == page_of(gone)) tagheap::free(b);
        tagheap::free(gone);
      });
      INFO(r.describe());
      CHECK(r.aborted());
      CHECK(contains(r.err, ptr_str(gone)));
      for (void* b : blocks) tagheap::free(b);
    }
    tagheap::free(keep);
  }

  TEST_CASE("a ThreadState destroyed while attached to another OS thread is fatal") {
    Runtime rt;
    auto* ts = new ThreadState(rt);
    const ChildResult r = run_in_child([&] {
      std::mutex mu;
      std::condition_variable cv;
      bool attached = false;
      std::thread([&] {
        ts->attach();
        std::unique_lock lock(mu);
        attached = true;
        cv.notify_all();
        cv.wait(lock, [] { return false; });  // stays attached until the abort
      }).detach();
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return attached; });
      lock.unlock();
      delete ts;
    });
    expect_abort(r, ts, "attached to another OS thread");
    delete ts;
  }

  TEST_CASE("checked builds: allocating from a thread state not attached to this thread is fatal") {
    if (!internal::kChecked) return;  // the fast path has no room for the check
    Runtime rt;
    ThreadState ts(rt);
    SUBCASE("never attached") {}
    SUBCASE("attached to another thread") {
      ts.attach();  // the child's copy of this thread forks attached; another
    }               // thread there tries to allocate
    const ChildResult r = run_in_child([&] {
      std::thread([&] {
        for (std::size_t size : {std::size_t{64}, std::size_t{5000}, std::size_t{3} << 20})
          (void)ts.heap(0).allocate(size);
      }).join();
    });
    ts.detach();
    expect_abort(r, &ts, "not attached to this OS thread");
    const ChildResult aligned = run_in_child([&] { (void)ts.heap(0).allocate_aligned(64, 256); });
    expect_abort(aligned, &ts, "not attached to this OS thread");
  }

  TEST_CASE("a Runtime destroyed with thread states alive is fatal") {
    const ChildResult r = run_in_child([] {
      auto* rt = new Runtime();
      auto* ts = new ThreadState(*rt);
      (void)ts;
      std::fprintf(stderr, "runtime at %p\n", static_cast<void*>(rt));
      delete rt;
    });
    INFO(r.describe());
    CHECK(r.aborted());
    CHECK(contains(r.err, "thread state"));
    // The message names the runtime (the child printed its address first).
    const auto at = r.err.find("runtime at ");
    REQUIRE(at != std::string::npos);
    const std::string addr = r.err.substr(at + 11, r.err.find('\n', at) - at - 11);
    CHECK(contains(r.err.substr(r.err.find('\n', at)), addr));
  }

  TEST_CASE("absurd sizes give nullptr, never a block or a crash") {
    // In a child: a broken size check could write far past a block.
    const ChildResult r = run_in_child([] {
      test::ChildChecks c;
      Runtime rt;
      ThreadState ts(rt);
      ts.attach();
      Heap& heap = ts.heap(0);
      const std::size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4096, SIZE_MAX / 2,
                                   SIZE_MAX / 2 + 1, std::size_t{1} << 50, std::size_t{1} << 47};
      for (std::size_t size : sizes) {
        char what[128];
        std::snprintf(what, sizeof what, "allocate(%zu) returns nullptr", size);
        c.expect(heap.allocate(size) == nullptr, what);
        std::snprintf(what, sizeof what, "allocate_aligned(%zu, 64) returns nullptr", size);
        c.expect(heap.allocate_aligned(size, 64) == nullptr, what);
        std::snprintf(what, sizeof what, "allocate_aligned(%zu, 8192) returns nullptr", size);
        c.expect(heap.allocate_aligned(size, 8192) == nullptr, what);
        std::snprintf(what, sizeof what, "allocate_aligned(%zu, 8) returns nullptr", size);
        c.expect(heap.allocate_aligned(size, 8) == nullptr, what);
      }
      for (std::size_t size : sizes) {
        char what[128];
        std::snprintf(what, sizeof what, "allocate_zeroed(%zu) returns nullptr", size);
        std::fprintf(stderr, "trying allocate_zeroed(%zu)\n", size);
        c.expect(heap.allocate_zeroed(size) == nullptr, what);
      }
      // Nothing was left behind, and the heap still works.
      void* p = heap.allocate(100);
      c.expect(p != nullptr, "allocate(100) works afterwards");
      tagheap::free(p);
      ts.detach();
      c.expect(rt.stats().total.blocks == 0, "no block was left behind");
      c.expect(rt.stats().total.huge_pages == 0, "no huge page was left behind");
      c.finish();
    });
    INFO(r.describe());
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
  }

  TEST_CASE("an alignment that is not a power of two gives nullptr") {
    Runtime rt;
    AttachedState ts(rt);
    for (std::size_t alignment : {std::size_t{0}, std::size_t{3}, std::size_t{24}, std::size_t{48},
                                  std::size_t{1000}, std::size_t{4097}, std::size_t{3} << 20, SIZE_MAX})
      for (std::size_t size : {std::size_t{0}, std::size_t{8}, std::size_t{100}, std::size_t{1} << 20}) {
        CAPTURE(alignment);
        CAPTURE(size);
        CHECK(ts.heap(0).allocate_aligned(size, alignment) == nullptr);
      }
    // Powers of two do work, up to 2 MiB.
    std::vector<void*> ok;
    for (std::size_t alignment = 1; alignment <= (std::size_t{2} << 20); alignment <<= 1) {
      void* p = ts.heap(0).allocate_aligned(100, alignment);
      REQUIRE(p != nullptr);
      CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
      CHECK(usable_size(p) >= 100);
      ok.push_back(p);
    }
    for (void* p : ok) tagheap::free(p);
  }

  TEST_CASE("a very large power-of-two alignment gives nullptr or a block that works") {
    // Alignments of a segment (4 MiB) and more: tagheap may refuse them, but a
    // block it hands out must be usable like any other (in a child: a block
    // tagheap does not recognise would abort).
    for (std::size_t alignment : {std::size_t{4} << 20, std::size_t{16} << 20, std::size_t{64} << 20}) {
      CAPTURE(alignment);
      const ChildResult r = run_in_child([&] {
        test::ChildChecks c;
        Runtime rt;
        ThreadState ts(rt);
        ts.attach();
        void* p = ts.heap(3).allocate_aligned(100, alignment);
        if (p != nullptr) {
          std::fprintf(stderr, "block %p\n", p);
          c.expect(reinterpret_cast<std::uintptr_t>(p) % alignment == 0, "aligned");
          c.expect(usable_size(p) >= 100, "usable_size >= 100");
          c.expect(tag_of(p) == 3, "tag_of == 3");
          c.expect(find_block(p) == p, "find_block finds it");
          tagheap::free(p);
        }
        ts.detach();
        c.expect(rt.stats().total.blocks == 0, "nothing left");
        rt.verify();
        c.finish();
      });
      INFO(r.describe());
      CHECK(r.exited);
      CHECK(r.exit_code == 0);
    }
  }

  TEST_CASE("when the OS refuses memory, allocations give nullptr and nothing is lost") {
    Runtime rt(test::without_populator({.gc_tags = {1}}));  // maps counted
    AttachedState ts(rt);
    struct Block {
      void* p;
      std::size_t size;
      std::uint8_t pattern;
    };
    std::vector<Block> live;
    std::uint64_t serial = 0;
    auto keep = [&](void* p, std::size_t size) {
      const std::uint8_t pat = test::pattern_of(p, ++serial);
      test::fill(p, size, pat);
      live.push_back({p, size, pat});
    };
    // Some blocks of every kind before the OS starts refusing.
    for (int i = 0; i < 3000; ++i) keep(ts.heap(i % 2).allocate(16 + i % 700), 16 + i % 700);
    keep(ts.heap(1).allocate(20'000), 20'000);
    keep(ts.heap(1).allocate(200'000), 200'000);
    keep(ts.heap(1).allocate(1 << 20), 1 << 20);
    const std::size_t mapped = os::mapped_bytes();
    {
      test::RefuseGuard refuse(0);
      SUBCASE("a huge block") {
        CHECK(ts.heap(1).allocate(2 << 20) == nullptr);
        CHECK(ts.heap(1).allocate_zeroed(2 << 20) == nullptr);
        CHECK(ts.heap(1).allocate_aligned(100, 1 << 16) == nullptr);
      }
      SUBCASE("a large block (a page filling a segment)") {
        CHECK(ts.heap(0).allocate(300'000) == nullptr);
      }
      SUBCASE("small blocks, until the segments at hand are full") {
        // At most the segments the runtime has (its cache of empty ones
        // included) can still serve; then allocation must fail cleanly.
        std::size_t got = 0;
        void* p;
        while ((p = ts.heap(1).allocate(1024)) != nullptr) {
          keep(p, 1024);
          REQUIRE(++got <= (internal::kSegmentCacheMax + 2) * internal::kSegmentSize / 1024);
        }
        CHECK(ts.heap(1).allocate(1024) == nullptr);  // and again
        CHECK(ts.heap(1).allocate_zeroed(1000) == nullptr);
        // A freed block can be handed out again without the OS.
        Block b = live.back();
        live.pop_back();
        tagheap::free(b.p);
        void* again = ts.heap(1).allocate(1024);
        CHECK(again == b.p);
        if (again != nullptr) keep(again, 1024);
      }
      SUBCASE("a fresh thread state") {
        ts.ts.detach();
        {
          ThreadState fresh(rt);  // needs no OS memory itself
          fresh.attach();
          // Small blocks may still come from a segment at hand; a huge one
          // needs the OS.
          void* p = fresh.heap(7).allocate(100);
          CHECK(fresh.heap(7).allocate(3 << 20) == nullptr);
          tagheap::free(p);
          fresh.detach();
        }
        ts.ts.attach();
      }
      CHECK(os::mapped_bytes() <= mapped);
      ts.ts.detach();
      rt.verify();
      ts.ts.attach();
    }
    // Nothing allocated before was lost or changed.
    std::size_t changed = 0;
    for (const Block& b : live) changed += !test::filled(b.p, b.size, b.pattern);
    CHECK(changed == 0);
    ts.ts.detach();
    CHECK(rt.stats().total.blocks == live.size());
    ts.ts.attach();
    // The OS gives memory again: so does tagheap.
    void* huge = ts.heap(1).allocate(2 << 20);
    void* large = ts.heap(0).allocate(300'000);
    std::vector<void*> small;
    for (int i = 0; i < 20'000; ++i) small.push_back(ts.heap(1).allocate(1024));
    CHECK(huge != nullptr);
    CHECK(large != nullptr);
    CHECK(std::count(small.begin(), small.end(), nullptr) == 0);
    tagheap::free(huge);
    tagheap::free(large);
    for (void* p : small) tagheap::free(p);
    for (const Block& b : live) tagheap::free(b.p);
    ts.ts.detach();
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }
}
