// Tests of gc::MarkSweep: every verdict is checked against a model (a graph
// search done by the test, independent of the collector), over objects spread
// across thread states, OS threads, exited threads' abandoned pages and
// reclaimed pages.
#include <doctest/doctest.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <barrier>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/test_graph.h"
#include "gc/visit.h"

using namespace tagheap;

namespace {

constexpr Tag kData = 0, kGcA = 1, kOther = 2, kGcB = 3;

using test::gc_blocks;
using test::make_node;
using test::Node;
using test::reachable;

// The collector's model: precise roots, optional conservative words, and a
// finalizer that counts calls per id.
struct GraphModel {
  std::vector<Node*> root_set;
  std::vector<std::uintptr_t> words;  // scanned conservatively
  std::vector<bool> word_hit;
  std::vector<int> finalized;         // by id
  std::vector<void*> non_gc_refs;     // marked too: must be ignored

  void roots(gc::Tracer& t) {
    for (Node* r : root_set) t.mark(r);
    word_hit.assign(words.size(), false);
    for (std::size_t i = 0; i < words.size(); ++i) word_hit[i] = t.mark_conservative(words[i]);
    for (void* p : non_gc_refs) t.mark(p);
  }
  void trace(void* obj, gc::Tracer& t) {
    auto* node = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < node->n; ++i) t.mark(node->child[i]);
  }
  void finalize(void* obj) noexcept {
    auto* node = static_cast<Node*>(obj);
    if (node->id >= finalized.size()) finalized.resize(node->id + 1);
    ++finalized[node->id];
  }
};

// A model's trace for Nodes: every child.
struct NodeTracing {
  void trace(void* obj, gc::Tracer& t) {
    auto* node = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < node->n; ++i) t.mark(node->child[i]);
  }
};

// The collection's verdict against the model: the survivors are exactly the
// reachable set, every other GC block was freed and finalized exactly once.
struct Checker {
  Runtime& rt;
  GraphModel& model;
  std::vector<Node*> everything;  // every GC object ever made (by id)
  std::size_t mark_stack_limit = SIZE_MAX;
  unsigned markers = 0;

  gc::CollectStats collect_and_check() {
    const std::unordered_set<void*> before = gc_blocks(rt);
    const std::unordered_set<void*> live = reachable(model.root_set);
    for (void* n : live) REQUIRE(before.count(n) == 1);
    std::vector<int> fin_before = model.finalized;
    fin_before.resize(everything.size());

    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = markers});
    ms.limit_mark_stack(mark_stack_limit);
    const gc::CollectStats stats = ms.collect();

    CHECK(stats.live_blocks == live.size());
    CHECK(stats.freed_blocks == before.size() - live.size());
    const std::unordered_set<void*> after = gc_blocks(rt);
    CHECK(after.size() == live.size());
    for (void* n : live) CHECK(after.count(n) == 1);
    model.finalized.resize(everything.size());
    std::size_t newly_finalized = 0;
    for (std::size_t id = 0; id < everything.size(); ++id) {
      const int delta = model.finalized[id] - fin_before[id];
      Node* n = everything[id];
      if (n == nullptr) {
        CHECK(delta == 0);
        continue;
      }
      if (live.count(n)) {
        CHECK(delta == 0);
        CHECK(model.finalized[id] == 0);
      } else if (before.count(n)) {
        CHECK(delta == 1);  // freed now: finalized exactly once
        ++newly_finalized;
      }
    }
    CHECK(newly_finalized == stats.freed_blocks);
    // The dead are gone from the table: they must not be referenced again.
    for (Node*& n : everything)
      if (n != nullptr && !live.count(n)) n = nullptr;
    CHECK(rt.verify() > 0);
    return stats;
  }
};

}  // namespace

TEST_SUITE("gc.mark_sweep") {
  TEST_CASE("random graphs over live, exited and reclaimed thread states: exactly the unreachable are freed") {
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
      CAPTURE(seed);
      std::mt19937 rng(seed);
      Runtime rt({.gc_tags = {kGcA, kGcB}});
      GraphModel model;
      Checker check{rt, model, {}};
      std::vector<std::unique_ptr<ThreadState>> parked;  // detached, alive
      std::mutex mu;

      // Four OS threads allocate; two keep their thread state (detached, its
      // pages still owned), two exit and abandon theirs.
      const std::uint32_t per_thread = 3000 + seed * 200;
      std::vector<std::vector<Node*>> made(4);
      std::vector<std::thread> threads;
      std::barrier done(4);  // no thread reclaims what another abandons here
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
          auto ts = std::make_unique<ThreadState>(rt);
          ts->attach();
          std::mt19937 r(seed * 100 + t);
          for (std::uint32_t i = 0; i < per_thread; ++i) {
            Heap& h = ts->heap((r() & 1) ? kGcA : kGcB);
            made[t].push_back(make_node(h, 0, r() % 6));
            if (r() % 8 == 0) tagheap::free(ts->heap(kData).allocate(24 + r() % 200));
          }
          ts->detach();
          done.arrive_and_wait();
          if (t % 2 == 0) {
            std::lock_guard lock(mu);
            parked.push_back(std::move(ts));
          }  // else: destroyed here, its pages abandoned
        });
      }
      for (auto& th : threads) th.join();
      for (auto& v : made)
        for (Node* n : v) {
          n->id = static_cast<std::uint32_t>(check.everything.size());
          check.everything.push_back(n);
        }
      REQUIRE(rt.stats().total.abandoned_pages > 0);

      // The main thread frees some objects of every thread (into owned and
      // abandoned pages) and allocates more: its heaps reclaim abandoned pages.
      ThreadState main_ts(rt);
      main_ts.attach();
      for (auto& n : check.everything)
        if (rng() % 10 == 0) {
          tagheap::free(n);
          n = nullptr;
        }
      const std::size_t extra = 4000;
      for (std::size_t i = 0; i < extra; ++i) {
        Node* n = make_node(main_ts.heap((rng() & 1) ? kGcA : kGcB), static_cast<std::uint32_t>(check.everything.size()),
                            rng() % 6);
        check.everything.push_back(n);
      }
      main_ts.detach();
      REQUIRE(rt.stats().total.reclaimed_total > 0);

      for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        std::vector<Node*> alive;
        for (Node* n : check.everything)
          if (n) alive.push_back(n);
        REQUIRE(!alive.empty());
        // Rewire: random edges among the objects still alive (the dead are
        // never referenced), a sparse random root set.
        for (Node* n : alive)
          for (std::uint32_t i = 0; i < n->n; ++i)
            n->child[i] = (rng() % 3 == 0) ? nullptr : alive[rng() % alive.size()];
        model.root_set.clear();
        for (std::size_t i = 0; i < alive.size() / 60 + 1; ++i) model.root_set.push_back(alive[rng() % alive.size()]);
        const gc::CollectStats s = check.collect_and_check();
        CHECK(s.freed_blocks > 0);
        // Between rounds, the parked threads' states allocate more, on their
        // (now partly swept) pages.
        for (auto& ts : parked) {
          std::thread([&] {
            ts->attach();
            for (int i = 0; i < 500; ++i) {
              Node* n = make_node(ts->heap(kGcA), 0, rng() % 4);
              std::lock_guard lock(mu);
              n->id = static_cast<std::uint32_t>(check.everything.size());
              check.everything.push_back(n);
            }
            ts->detach();
          }).join();
        }
      }
      model.root_set.clear();
      const gc::CollectStats last = check.collect_and_check();
      CHECK(last.live_blocks == 0);
      CHECK(rt.stats().tags[kGcA].blocks == 0);
      CHECK(rt.stats().tags[kGcB].blocks == 0);
    }
  }

  TEST_CASE("a mark stack that cannot grow still marks exactly the reachable set, by rescanning") {
    // Out of room on the mark stack (here: a limit of one entry), marked
    // objects are traced by rescans of the marked set instead.
    Runtime rt({.gc_tags = {kGcA}});
    GraphModel model;
    Checker check{rt, model, {}};
    ThreadState ts(rt);
    ts.attach();
    std::mt19937_64 rng(7);
    for (std::uint32_t id = 0; id < 20000; ++id) check.everything.push_back(make_node(ts.heap(kGcA), id, 3));
    for (Node* n : check.everything)
      for (std::uint32_t i = 0; i < n->n; ++i)
        n->child[i] = rng() % 4 == 0 ? nullptr : check.everything[rng() % check.everything.size()];
    for (int i = 0; i < 5; ++i) model.root_set.push_back(check.everything[rng() % check.everything.size()]);
    SUBCASE("a limit of one entry") { check.mark_stack_limit = 1; }
    SUBCASE("a limit of 64 entries") { check.mark_stack_limit = 64; }
    SUBCASE("a limit of 64 entries, two markers: a helper's overflow is rescanned too") {
      check.mark_stack_limit = 64;
      check.markers = 2;
    }
    SUBCASE("a limit of 200 entries, four markers") {
      check.mark_stack_limit = 200;
      check.markers = 4;
    }
    const gc::CollectStats s = check.collect_and_check();
    CHECK(s.live_blocks > 1000);  // the graph is big enough to overflow
    for (Node* n : check.everything)
      if (n != nullptr) tagheap::free(n);
    ts.detach();
  }

  TEST_CASE("a linked list of ten million nodes is marked without recursion") {
    struct Cell {
      Cell* next;
      std::uint64_t value;
    };
    struct ListModel {
      Cell* head = nullptr;
      void roots(gc::Tracer& t) { t.mark(head); }
      void trace(void* obj, gc::Tracer& t) { t.mark(static_cast<Cell*>(obj)->next); }
    } model;
    constexpr std::size_t kCells = 10'000'000;
    Runtime rt({.gc_tags = {kGcA}});
    ThreadState ts(rt);
    ts.attach();
    Heap& heap = ts.heap(kGcA);
    Cell* tail = nullptr;
    for (std::size_t i = 0; i < kCells; ++i) {
      auto* c = static_cast<Cell*>(heap.allocate(sizeof(Cell)));
      REQUIRE(c != nullptr);
      c->next = nullptr;
      c->value = i;
      if (tail) tail->next = c; else model.head = c;
      tail = c;
    }
    // Some unreachable cells in between, so the sweep has work to do.
    for (int i = 0; i < 1000; ++i) static_cast<Cell*>(heap.allocate(sizeof(Cell)))->next = nullptr;
    gc::MarkSweep ms(rt, model);
    gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == kCells);
    CHECK(s.freed_blocks == 1000);
    std::size_t n = 0;
    for (Cell* c = model.head; c; c = c->next) REQUIRE(c->value == n++);
    CHECK(n == kCells);
    const std::size_t pages_before = rt.stats().tags[kGcA].pages;
    model.head = nullptr;
    s = ms.collect();
    CHECK(s.live_blocks == 0);
    CHECK(s.freed_blocks == kCells);
    CHECK(rt.stats().tags[kGcA].pages <= 1);  // the heap keeps one page per class
    CHECK(pages_before > 2000);
    ts.detach();
  }

  TEST_CASE("collecting an empty runtime finds nothing and frees nothing") {
    struct NoRoots {
      void roots(gc::Tracer&) {}
      void trace(void*, gc::Tracer&) { FAIL("nothing to trace"); }
      void finalize(void*) noexcept { FAIL("nothing to finalize"); }
    } model;
    SUBCASE("no thread state at all") {
      Runtime rt({.gc_tags = {kGcA}});
      gc::CollectStats s = gc::MarkSweep(rt, model).collect();
      CHECK(s.live_blocks == 0);
      CHECK(s.freed_blocks == 0);
      CHECK(s.pages_swept == 0);
      rt.verify();
    }
    SUBCASE("thread states with empty GC heaps and only non-GC data") {
      Runtime rt({.gc_tags = {kGcA}});
      ThreadState ts(rt);
      ts.attach();
      (void)ts.heap(kGcA);
      void* data = ts.heap(kData).allocate(100);
      gc::CollectStats s = gc::MarkSweep(rt, model).collect();
      CHECK(s.live_blocks == 0);
      CHECK(s.freed_blocks == 0);
      CHECK(rt.stats().tags[kData].blocks == 1);
      tagheap::free(data);
      ts.detach();
      rt.verify();
    }
    SUBCASE("no GC tags") {
      Runtime rt;
      ThreadState ts(rt);
      ts.attach();
      void* data = ts.heap(kGcA).allocate(100);
      gc::CollectStats s = gc::MarkSweep(rt, model).collect();
      CHECK(s.freed_blocks == 0);
      CHECK(rt.stats().tags[kGcA].blocks == 1);
      tagheap::free(data);
      ts.detach();
    }
  }

  TEST_CASE("blocks of non-GC tags are neither freed nor written, even when marked") {
    Runtime rt({.gc_tags = {kGcA}});
    GraphModel model;
    std::mt19937 rng(7);
    auto fill_data = [&](ThreadState& ts, std::vector<void*>& out) {
      for (int i = 0; i < 20000; ++i) {
        const Tag tag = (i & 1) ? kData : kOther;
        const std::size_t size = (i % 97 == 0) ? 70000 + rng() % 100000 : 8 + rng() % 600;
        auto* p = static_cast<unsigned char*>(ts.heap(tag).allocate(size));
        for (std::size_t k = 0; k < size; ++k) p[k] = static_cast<unsigned char>(rng());
        out.push_back(p);
      }
      void* huge = ts.heap(kOther).allocate(3 << 20);
      std::memset(huge, 0x5A, 3 << 20);
      out.push_back(huge);
    };
    std::vector<void*> data;
    std::vector<Node*> nodes;
    std::thread([&] {
      ThreadState ts(rt);  // exits: its data pages are abandoned
      ts.attach();
      fill_data(ts, data);
      for (int i = 0; i < 5000; ++i) nodes.push_back(make_node(ts.heap(kGcA), 0, 2));
      ts.detach();
    }).join();
    ThreadState ts(rt);
    ts.attach();
    fill_data(ts, data);
    for (int i = 0; i < 5000; ++i) nodes.push_back(make_node(ts.heap(kGcA), 0, 2));
    for (std::size_t i = 0; i < nodes.size(); ++i) nodes[i]->id = static_cast<std::uint32_t>(i);
    for (std::size_t i = 0; i < nodes.size(); i += 10) model.root_set.push_back(nodes[i]);
    for (std::size_t i = 0; i < data.size(); i += 3) model.non_gc_refs.push_back(data[i]);

    struct Snap {
      void* block;
      std::size_t size;
      Tag tag;
      std::vector<unsigned char> bytes;
      bool operator==(const Snap&) const = default;
    };
    auto snapshot = [&] {
      std::vector<Snap> v;
      visit_blocks(rt, TagSet{kData, kOther}, [&](const BlockRef& b) {
        auto* p = static_cast<unsigned char*>(b.block);
        v.push_back({b.block, b.size, b.tag, std::vector<unsigned char>(p, p + b.size)});
      });
      return v;
    };
    const std::vector<Snap> before = snapshot();
    const RuntimeStats st_before = rt.stats();
    REQUIRE(before.size() == data.size());
    gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    CHECK(s.live_blocks == model.root_set.size());
    CHECK(s.freed_blocks == nodes.size() - model.root_set.size());
    const std::vector<Snap> after = snapshot();
    CHECK(after.size() == before.size());
    CHECK((after == before));
    const RuntimeStats st_after = rt.stats();
    for (Tag t : {kData, kOther}) {
      CHECK(st_after.tags[t].blocks == st_before.tags[t].blocks);
      CHECK(st_after.tags[t].bytes_in_use == st_before.tags[t].bytes_in_use);
      CHECK(st_after.tags[t].pages == st_before.tags[t].pages);
      CHECK(st_after.tags[t].abandoned_pages == st_before.tags[t].abandoned_pages);
    }
    rt.verify();
    for (void* p : data) tagheap::free(p);
    ts.detach();
  }

  TEST_CASE("freed GC blocks are reused and emptied pages go back") {
    Runtime rt({.gc_tags = {kGcA}});
    GraphModel model;
    ThreadState ts(rt);
    ts.attach();
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 200000; ++i) nodes.push_back(make_node(ts.heap(kGcA), i, 4));  // 48 bytes
    // An exited thread's objects, all garbage: their pages are abandoned.
    std::vector<Node*> exited_nodes;
    std::thread([&] {
      ThreadState t2(rt);
      t2.attach();
      for (std::uint32_t i = 0; i < 100000; ++i) exited_nodes.push_back(make_node(t2.heap(kGcA), 0, 4));
      t2.detach();
    }).join();
    // Keep the first 1000 (a few pages); the rest is garbage.
    for (std::uint32_t i = 0; i < 1000; ++i) model.root_set.push_back(nodes[i]);
    const RuntimeStats st0 = rt.stats();
    CHECK(st0.tags[kGcA].blocks == 300000);
    CHECK(st0.tags[kGcA].abandoned_pages > 0);
    gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    CHECK(s.live_blocks == 1000);
    CHECK(s.freed_blocks == 299000);
    CHECK(s.freed_bytes == 299000 * 48);
    const RuntimeStats st1 = rt.stats();
    CHECK(st1.tags[kGcA].blocks == 1000);
    CHECK(st1.tags[kGcA].bytes_in_use == 1000 * 48);
    CHECK(st1.tags[kGcA].abandoned_pages == 0);   // emptied pool pages released
    CHECK(st1.tags[kGcA].pages <= 3);             // the live ones, plus one kept per class
    CHECK(st1.tags[kGcA].pages * 4 < st0.tags[kGcA].pages);
    CHECK(st1.total.bytes_committed < st0.total.bytes_committed);
    rt.verify();

    // Allocation after collection reuses the freed memory (this thread
    // state's and the exited one's) without new segments.
    std::set<void*> freed(nodes.begin() + 1000, nodes.end());
    freed.insert(exited_nodes.begin(), exited_nodes.end());
    const std::size_t segments = st0.segments;
    std::size_t reused = 0;
    std::vector<void*> again;
    for (int i = 0; i < 199000; ++i) {
      again.push_back(ts.heap(kGcA).allocate(48));
      reused += freed.count(again.back());
    }
    CHECK(reused > 150000);  // emptied pages are taken again, most recent first
    CHECK(rt.stats().segments <= segments);
    for (void* p : again) tagheap::free(p);
    for (Node* n : model.root_set) tagheap::free(n);
    ts.detach();
  }

  TEST_CASE("with debug_fill, blocks freed by a collection read 0xDD") {
    Runtime rt({.gc_tags = {kGcA}, .debug_fill = true});
    GraphModel model;
    ThreadState ts(rt);
    ts.attach();
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 100; ++i) nodes.push_back(make_node(ts.heap(kGcA), i, 2));
    model.root_set.push_back(nodes[0]);  // keeps the page in use
    gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    CHECK(s.freed_blocks == 99);
    const auto* p = reinterpret_cast<const unsigned char*>(nodes[50]);
#if defined(__SANITIZE_ADDRESS__)
    __asan_unpoison_memory_region(p, 32);  // freed, so poisoned: this read is on purpose
#endif
    for (std::size_t k = 0; k < 32; ++k) CHECK(p[k] == 0xDD);
    CHECK(nodes[0]->id == 0);
    tagheap::free(nodes[0]);
    ts.detach();
  }

  TEST_CASE("conservative roots: interior pointers keep objects alive, garbage words do nothing") {
    Runtime rt({.gc_tags = {kGcA}});
    Runtime other({.gc_tags = {kGcA}});
    GraphModel model;
    ThreadState ts(rt);
    ThreadState ots(other);
    ots.attach();
    void* foreign = ots.heap(kGcA).allocate(64);
    ots.detach();
    ts.attach();
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 3000; ++i) nodes.push_back(make_node(ts.heap(kGcA), i, 1));
    auto* large = static_cast<Node*>(ts.heap(kGcA).allocate(100000));  // a large-page block
    large->n = 0;
    auto* huge = static_cast<Node*>(ts.heap(kGcA).allocate(2 << 20));  // a huge block
    huge->n = 0;
    void* data = ts.heap(kData).allocate(64);
    // A chain hangs off node 5: reachable only through a conservative root.
    nodes[5]->child[0] = nodes[6];
    nodes[6]->child[0] = nodes[7];
    void* freed_local = nodes[100];
    tagheap::free(freed_local);
    std::uint64_t stack_word = 42;

    // Interior pointers, hits.
    model.words = {reinterpret_cast<std::uintptr_t>(nodes[5]) + 17,
                   reinterpret_cast<std::uintptr_t>(nodes[10]),
                   reinterpret_cast<std::uintptr_t>(nodes[20]) + 31,
                   reinterpret_cast<std::uintptr_t>(large) + 99999,
                   reinterpret_cast<std::uintptr_t>(huge) + (1 << 20)};
    const std::size_t hits = model.words.size();
    // Garbage: none of these may mark anything.
    std::uintptr_t remote_freed = 0;
    std::thread([&] {  // a block on a thread-free list: free, not yet collected
      remote_freed = reinterpret_cast<std::uintptr_t>(nodes[200]);
      tagheap::free(nodes[200]);
    }).join();
    const PageView page = PageView::of(nodes[0]);
    model.words.insert(model.words.end(), {
        std::uintptr_t{0}, std::uintptr_t{1}, std::uintptr_t{0xDEADBEEF}, ~std::uintptr_t{0},
        reinterpret_cast<std::uintptr_t>(&stack_word),
        reinterpret_cast<std::uintptr_t>(data) + 8,                 // a non-GC block
        reinterpret_cast<std::uintptr_t>(freed_local) + 8,         // freed by its owner
        remote_freed + 8,                                           // on a thread-free list
        reinterpret_cast<std::uintptr_t>(foreign) + 8,             // another runtime
        reinterpret_cast<std::uintptr_t>(page.raw()->free_bits),    // page metadata (bitmaps)
        reinterpret_cast<std::uintptr_t>(huge) + (2 << 20) + 64,  // past the huge block
        reinterpret_cast<std::uintptr_t>(&model),
    });
    nodes[100] = nodes[200] = nullptr;
    gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    for (std::size_t i = 0; i < model.words.size(); ++i) {
      CAPTURE(i);
      CHECK(model.word_hit[i] == (i < hits));
    }
    CHECK(s.roots_conservative == hits);
    const std::unordered_set<void*> after = gc_blocks(rt);
    const std::unordered_set<void*> expect = {nodes[5], nodes[6], nodes[7], nodes[10], nodes[20], large, huge};
    CHECK(after == expect);
    CHECK(s.live_blocks == expect.size());
    CHECK(s.freed_blocks == 3000 - 2 + 2 - expect.size());
    rt.verify();

    // A range scan sees the same as word-by-word.
    struct RangeModel {
      std::uintptr_t frame[4];
      void roots(gc::Tracer& t) { t.mark_range_conservative(frame, frame + 4); }
      void trace(void*, gc::Tracer&) {}
    } rm{{0xDEADBEEF, reinterpret_cast<std::uintptr_t>(nodes[10]) + 3, 0, reinterpret_cast<std::uintptr_t>(huge) + 5}};
    s = gc::MarkSweep(rt, rm).collect();
    CHECK(s.live_blocks == 2);
    CHECK(s.roots_conservative == 2);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{nodes[10], huge});
    rt.verify();
    tagheap::free(nodes[10]);
    tagheap::free(huge);
    tagheap::free(data);
    ts.detach();
    ots.attach();
    tagheap::free(foreign);
    ots.detach();
  }

  TEST_CASE("mark_conservative_if keeps a block only through an offset it accepts, and traces it") {
    Runtime rt({.gc_tags = {kGcA}});
    ThreadState ts(rt);
    ts.attach();
    // Offsets 0 and 1 count (the Boehm collector's displacements for tagged
    // pointers), no other.
    struct OffsetModel : NodeTracing {
      std::vector<std::uintptr_t> words;
      std::vector<bool> hit;
      void roots(gc::Tracer& t) {
        for (std::uintptr_t w : words)
          hit.push_back(t.mark_conservative_if(w, [](std::size_t offset) { return offset <= 1; }));
      }
    } model;
    Node* a = make_node(ts.heap(kGcA), 1, 1);
    Node* b = make_node(ts.heap(kGcA), 2, 0);
    Node* c = make_node(ts.heap(kGcA), 3, 0);
    Node* d = make_node(ts.heap(kGcA), 4, 0);
    a->child[0] = make_node(ts.heap(kGcA), 5, 0);  // kept through a's trace
    const auto at = [](Node* n, std::uintptr_t offset) { return reinterpret_cast<std::uintptr_t>(n) + offset; };
    model.words = {at(a, 0), at(b, 1), at(c, 8), at(d, 15), 0xDEADBEEF};  // 16-byte blocks
    const gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    CHECK(model.hit == std::vector<bool>{true, true, false, false, false});
    CHECK(s.roots_conservative == 2);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{a, b, a->child[0]});
    CHECK(s.freed_blocks == 2);
    model.words.clear();
    gc::MarkSweep(rt, model).collect();
    CHECK(gc_blocks(rt).empty());
    ts.detach();
  }

  TEST_CASE("the scoped conservative marks, under one lookup scope, keep exactly what the unscoped ones keep") {
    Runtime rt({.gc_tags = {kGcA}});
    ThreadState ts(rt);
    ts.attach();
    struct ScopedModel : NodeTracing {
      std::vector<std::uintptr_t> any_offset, displaced;  // mark_conservative's words, mark_conservative_if's
      std::vector<bool> hit;
      void roots(gc::Tracer& t) {
        const BlockLookupScope scope;
        for (std::uintptr_t w : any_offset) hit.push_back(t.mark_conservative(scope, w));
        for (std::uintptr_t w : displaced)
          hit.push_back(t.mark_conservative_if(scope, w, [](std::size_t offset) { return offset <= 1; }));
      }
    } model;
    Node* a = make_node(ts.heap(kGcA), 1, 1);
    Node* b = make_node(ts.heap(kGcA), 2, 0);
    Node* c = make_node(ts.heap(kGcA), 3, 0);
    Node* d = make_node(ts.heap(kGcA), 4, 0);
    Node* e = make_node(ts.heap(kGcA), 5, 0);
    a->child[0] = make_node(ts.heap(kGcA), 6, 0);  // kept through a's trace
    void* other = ts.heap(kData).allocate(32);  // not a GC block: never a hit
    const auto at = [](void* n, std::uintptr_t offset) { return reinterpret_cast<std::uintptr_t>(n) + offset; };
    model.any_offset = {at(a, 9), at(b, 0), at(other, 0), 0xDEADBEEF};
    model.displaced = {at(c, 1), at(d, 8), at(e, 15), at(a, 0)};  // 16-byte blocks
    const gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    CHECK(model.hit == std::vector<bool>{true, true, false, false, true, false, false, true});
    CHECK(s.roots_conservative == 4);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{a, b, c, a->child[0]});
    CHECK(s.freed_blocks == 2);
    tagheap::free(other);
    ts.detach();
  }

  TEST_CASE("blocks a collection frees in other thread states' pages go back to their owners") {
    // Three owner threads stay alive and attached (waiting on a barrier)
    // while the main thread collects: the sweep and main's own free() calls
    // put blocks back into the owners' pages. Each owner then allocates and
    // must get exactly its own freed blocks back, on its own pages.
    constexpr int kOwners = 3;
    constexpr std::uint32_t kPerOwner = 30000;  // 48-byte nodes
    Runtime rt({.gc_tags = {kGcA}});
    GraphModel model;
    ThreadState main_ts(rt);
    main_ts.attach();  // the collecting thread has a thread state of its own
    (void)main_ts.heap(kGcA).allocate(48);
    std::vector<std::unique_ptr<ThreadState>> owners;
    for (int t = 0; t < kOwners; ++t) owners.push_back(std::make_unique<ThreadState>(rt));
    std::vector<std::vector<Node*>> made(kOwners);
    std::vector<std::set<void*>> freed(kOwners);
    std::vector<std::size_t> spare(kOwners);
    std::vector<std::vector<void*>> got(kOwners);
    std::vector<std::size_t> pages_before(kOwners), pages_after(kOwners);
    std::barrier sync(kOwners + 1);
    auto count_pages = [&](int t, std::size_t* free_slots) {
      std::size_t pages = 0, slots = 0;
      for_each_page(rt, TagSet{kGcA}, [&](PageView p) {
        if (p.raw()->owner_token().load() == owners[t]->owner_token()) {
          ++pages;
          slots += p.block_count() - p.live_blocks();
        }
        return true;
      });
      if (free_slots) *free_slots = slots;
      return pages;
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kOwners; ++t)
      threads.emplace_back([&, t] {
        owners[t]->attach();
        for (std::uint32_t i = 0; i < kPerOwner; ++i) made[t].push_back(make_node(owners[t]->heap(kGcA), i, 4));
        sync.arrive_and_wait();  // main collects
        sync.arrive_and_wait();
        for (std::size_t i = 0; i < spare[t] + freed[t].size(); ++i) got[t].push_back(owners[t]->heap(kGcA).allocate(48));
        sync.arrive_and_wait();  // main checks
        sync.arrive_and_wait();
        owners[t]->detach();
      });
    sync.arrive_and_wait();
    // Free slots the owners' pages have before anything is freed.
    for (int t = 0; t < kOwners; ++t) pages_before[t] = count_pages(t, &spare[t]);
    for (int t = 0; t < kOwners; ++t)
      for (std::uint32_t i = 0; i < kPerOwner; ++i) {
        Node* n = made[t][i];
        if (i % 3 == 0) {
          model.root_set.push_back(n);
        } else {
          freed[t].insert(n);
          if (i % 3 == 1) tagheap::free(n);  // a remote free from the collecting thread
        }
      }
    gc::CollectStats s = gc::MarkSweep(rt, model).collect();
    CHECK(s.live_blocks == kOwners * kPerOwner / 3);
    CHECK(s.freed_blocks == 1 + kOwners * kPerOwner / 3);  // main's block and the i % 3 == 2 ones
    for (int t = 0; t < kOwners; ++t) {
      std::size_t slots_now = 0;
      CHECK(count_pages(t, &slots_now) == pages_before[t]);
      CHECK(slots_now == spare[t] + freed[t].size());
    }
    rt.verify();
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // owners allocated
    for (int t = 0; t < kOwners; ++t) {
      CAPTURE(t);
      pages_after[t] = count_pages(t, nullptr);
      CHECK(pages_after[t] == pages_before[t]);  // no new page: all from the old ones
      std::set<void*> mine(got[t].begin(), got[t].end());
      CHECK(mine.size() == got[t].size());
      std::size_t own = 0;
      for (void* p : freed[t]) own += mine.count(p);
      CHECK(own == freed[t].size());  // every freed block came back to its owner
      for (int u = 0; u < kOwners; ++u)
        if (u != t)
          for (void* p : got[t]) CHECK_FALSE(freed[u].count(p));
    }
    rt.verify();
    sync.arrive_and_wait();
    for (auto& th : threads) th.join();
    main_ts.detach();
  }
}
