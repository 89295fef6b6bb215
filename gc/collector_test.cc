// Tests of the collector's second part: parallel marking, lazy sweeping, the
// heap-sizing policy, collection events, weak slots and ephemerons, and
// exception safety. Every verdict is checked against the test's own graph
// search, never the collector's.
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/internal/config.h"
#include "alloc/tagheap.h"
#include "gc/chrome_trace.h"
#include "gc/events.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "gc/test_graph.h"
#include "tests/test_util.h"

using namespace tagheap;
using test::gc_blocks;
using test::make_node;
using test::Node;
using test::reachable;

namespace {

constexpr Tag kData = 0, kGc = 1;


// trace() only reads the object and calls the tracer: safe with several markers.
struct Graph {
  std::vector<Node*> roots;
  int throw_after = -1;  // trace calls before one throws (-1: never)
  std::atomic<int> traced{0};
  void roots_fn(gc::Tracer& t) {
    for (Node* r : roots) t.mark(r);
  }
  void trace_fn(void* obj, gc::Tracer& t) {
    if (throw_after >= 0 && traced.fetch_add(1) >= throw_after) throw std::runtime_error("trace failed");
    auto* node = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < node->n; ++i) t.mark(node->child[i]);
  }
};
struct GraphModel {
  Graph* g;
  void roots(gc::Tracer& t) { g->roots_fn(t); }
  void trace(void* obj, gc::Tracer& t) { g->trace_fn(obj, t); }
};



std::size_t marked_bits(Runtime& rt) {
  std::size_t n = 0;
  for_each_page(rt, rt.options().gc_tags, [&](PageView page) {
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w) n += static_cast<std::size_t>(std::popcount(page.mark_word(w)));
    return true;
  });
  return n;
}

// A random graph of deep lists, wide fans, cycles and shared subgraphs.
std::vector<Node*> random_graph(Heap& heap, std::mt19937& rng, std::uint32_t count, std::uint32_t first_id) {
  std::vector<Node*> nodes;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t shape = rng() % 10;
    const std::uint32_t n = shape == 0 ? 40 + rng() % 60 : 1 + rng() % 3;  // a fan now and then
    nodes.push_back(make_node(heap, first_id + i, n));
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    Node* node = nodes[i];
    for (std::uint32_t k = 0; k < node->n; ++k) {
      const std::uint32_t r = rng() % 10;
      if (r < 4 && i + 1 < count) node->child[k] = nodes[i + 1];                     // deep lists
      else if (r < 7) node->child[k] = nodes[rng() % count];                          // shared, cycles
      else if (r < 8 && i > 0) node->child[k] = nodes[i - 1];                         // back edges
    }
  }
  return nodes;
}

// A runtime holding one random graph, its roots the model's.
struct RandomGraphHeap {
  Runtime rt{{.gc_tags = {kGc}}};
  test::AttachedState ts{rt};
  Graph g;
  GraphModel model{&g};
  RandomGraphHeap(unsigned seed, std::uint32_t nodes) {
    std::mt19937 rng(seed);
    g.roots = random_graph(ts.heap(kGc), rng, nodes, 0);
  }
  gc::MarkSweep<GraphModel> collector(gc::Options options) { return gc::MarkSweep<GraphModel>(rt, model, options); }
};

}  // namespace

TEST_SUITE("gc.parallel_marking") {
  TEST_CASE("parallel marking keeps exactly the reachable set, with 1, 2 and 8 markers") {
    for (unsigned markers : {1u, 2u, 8u}) {
      CAPTURE(markers);
      Runtime rt({.gc_tags = {kGc}});
      std::mt19937 rng(markers * 7919);
      Graph g;
      GraphModel model{&g};
      std::vector<Node*> all;
      // Objects of three thread states: one stays, one exits (abandoned
      // pages), one is made later and reclaims some of them.
      test::AttachedState main_ts(rt);
      auto part = random_graph(main_ts.heap(kGc), rng, 20000, 0);
      all.insert(all.end(), part.begin(), part.end());
      std::thread([&] {
        ThreadState t2(rt);
        t2.attach();
        auto p2 = random_graph(t2.heap(kGc), rng, 20000, 20000);
        all.insert(all.end(), p2.begin(), p2.end());
        // Cross-links into the main thread's objects.
        for (int i = 0; i < 200; ++i) p2[rng() % p2.size()]->child[0] = part[rng() % part.size()];
        t2.detach();
      }).join();
      for (int i = 0; i < 50; ++i) g.roots.push_back(all[rng() % all.size()]);
      gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = markers});
      for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        const auto live = reachable(g.roots);
        const auto before = gc_blocks(rt);
        const gc::CollectStats s = ms.collect();
        CHECK(s.markers >= 1);
        CHECK(s.markers <= markers);
        CHECK(s.markers_took_part >= 1);  // the caller always; a helper when scheduled in time
        CHECK(s.markers_took_part <= s.markers);
        CHECK(s.live_blocks == live.size());
        CHECK(s.freed_blocks == before.size() - live.size());
        std::size_t per_marker = 0;
        for (unsigned i = 0; i < s.markers; ++i) per_marker += s.marked_bytes_by_marker[i];
        CHECK(per_marker == s.live_bytes);
        CHECK(gc_blocks(rt) == live);  // the walk right after sees exactly the survivors
        // Rewire: drop some roots, add garbage and new objects; a new thread
        // reclaims abandoned pages.
        g.roots.resize(g.roots.size() / 2);
        std::thread([&] {
          ThreadState t3(rt);
          t3.attach();
          auto p3 = random_graph(t3.heap(kGc), rng, 5000, 100000 + round * 5000);
          g.roots.push_back(p3[0]);
          t3.detach();
        }).join();
        auto p4 = random_graph(main_ts.heap(kGc), rng, 5000, 200000 + round * 5000);
        g.roots.push_back(p4[rng() % p4.size()]);
      }
      g.roots.clear();
      ms.collect();
      CHECK(gc_blocks(rt).empty());
    }
  }

  TEST_CASE("with several markers, a tracer's own marks show in is_marked at once") {
    // Parallel markers batch the bits of a bitmap word before setting them,
    // two words open at a time (Tracer::batch_mark): a model that asks right
    // after mark(), or after marking the other children, must still see its
    // marks, whichever batch holds them or whether one was flushed.
    struct AskingModel {
      std::vector<Node*> roots_;
      std::atomic<std::size_t> unseen{0}, asked{0};
      void check(gc::Tracer& t, void* obj) {
        asked.fetch_add(1, std::memory_order_relaxed);
        if (!t.is_marked(obj)) unseen.fetch_add(1, std::memory_order_relaxed);
      }
      void roots(gc::Tracer& t) {
        for (Node* r : roots_) {
          t.mark(r);
          check(t, r);
        }
      }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        for (std::uint32_t i = 0; i < n->n; ++i) {
          if (n->child[i] == nullptr) continue;
          t.mark(n->child[i]);
          check(t, n->child[i]);
        }
        for (std::uint32_t i = 0; i < n->n; ++i)  // again, all marked by now
          if (n->child[i] != nullptr) check(t, n->child[i]);
      }
    };
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    AskingModel model;
    // Wide nodes whose children were allocated together, in three runs far
    // apart: a root's children take turns between the runs' bitmap words, so
    // marks fall in an open batch, the other open one, and a third word
    // that closes one.
    constexpr std::uint32_t kRoots = 64, kWidth = 30, kRuns = 3;
    std::vector<Node*> runs[kRuns];
    for (std::uint32_t k = 0; k < kRuns; ++k)
      for (std::uint32_t j = 0; j < kRoots * kWidth / kRuns; ++j)
        runs[k].push_back(make_node(ts.heap(kGc), 1000 + k * 10000 + j, 0));
    for (std::uint32_t r = 0; r < kRoots; ++r) {
      Node* root = make_node(ts.heap(kGc), r, kWidth);
      for (std::uint32_t c = 0; c < kWidth; ++c) root->child[c] = runs[c % kRuns][r * (kWidth / kRuns) + c / kRuns];
      model.roots_.push_back(root);
    }
    gc::MarkSweep<AskingModel> ms(rt, model, gc::Options{.markers = 2});
    const gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == kRoots * (kWidth + 1));
    CHECK(model.asked.load() == kRoots * (1 + 2 * kWidth));
    CHECK(model.unseen.load() == 0);
  }

  TEST_CASE("marker threads are made once and parked between collections") {
    auto threads_now = [] {
      std::size_t n = 0;
      if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
        closedir(d);
      }
      return n;
    };
    RandomGraphHeap heap(3, 2000);
    auto ms = heap.collector({.markers = 4});
    ms.collect();
    const std::size_t after_first = threads_now();
    for (int i = 0; i < 20; ++i) ms.collect();
    CHECK(threads_now() == after_first);
  }

  TEST_CASE("with markers = 0, a collection expected to mark less than parallel_mark_bytes marks on the caller alone") {
    if (gc::internal::default_markers() < 2) return;  // one hardware thread: one marker whatever the size
    RandomGraphHeap heap(11, 4000);
    const std::size_t live = heap.collector({.markers = 1}).collect().live_bytes;
    {
      auto ms = heap.collector({.parallel_mark_bytes = std::size_t{1} << 40});
      CHECK(ms.markers() >= 2);               // the helpers exist...
      CHECK(ms.collect().markers == 1);       // ...but a small heap is marked by the caller
      CHECK(ms.collect_full().markers == 1);  // the same after a collection said how much it marks
    }
    {
      auto ms = heap.collector({.parallel_mark_bytes = live / 2});
      // Before its first collection everything allocated counts: above the bar.
      CHECK(ms.collect().markers >= 2);
      CHECK(ms.collect().markers >= 2);  // the last collection marked `live` bytes
    }
    {
      auto ms = heap.collector({.markers = 2, .parallel_mark_bytes = std::size_t{1} << 40});
      CHECK(ms.collect().markers == 2);  // an explicit count is used as it is
    }
  }

  TEST_CASE("set_markers changes the markers of the next collections, the marks staying exact") {
    RandomGraphHeap heap(5, 3000);
    const std::size_t live = heap.collector({.markers = 1}).collect().live_bytes;
    auto ms = heap.collector({.markers = 1, .parallel_mark_bytes = std::size_t{1} << 40});
    CHECK(ms.collect().markers == 1);
    ms.set_markers(3);  // explicit: used as it is, the helpers started by this collection
    CHECK(ms.markers() == 3);
    const gc::CollectStats three = ms.collect();
    CHECK(three.markers == 3);
    CHECK(three.live_bytes == live);
    ms.set_markers(1);  // fewer again: the parked helpers stay out
    const gc::CollectStats one = ms.collect();
    CHECK(one.markers == 1);
    CHECK(one.markers_took_part == 1);
    CHECK(one.live_bytes == live);
    ms.set_markers(0);  // automatic: one per usable CPU, small heaps on the caller alone
    CHECK(ms.markers() == gc::internal::default_markers());
    CHECK(ms.collect().markers == 1);
  }

  TEST_CASE("set_markers from a model callback throws and changes nothing; the next collection is whole") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    struct ResizingModel {
      gc::MarkSweep<ResizingModel>* ms = nullptr;
      Node* root = nullptr;
      bool resize = true;
      void roots(gc::Tracer& t) {
        t.mark(root);
        if (resize) ms->set_markers(4);
      }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
      }
    } model;
    model.root = make_node(ts.heap(kGc), 1, 2);
    model.root->child[0] = make_node(ts.heap(kGc), 2, 0);
    model.root->child[1] = make_node(ts.heap(kGc), 3, 0);
    (void)make_node(ts.heap(kGc), 4, 0);  // garbage
    gc::MarkSweep<ResizingModel> ms(rt, model, gc::Options{.markers = 1});
    model.ms = &ms;
    CHECK_THROWS_AS(ms.collect(), std::logic_error);
    CHECK(ms.markers() == 1);
    model.resize = false;
    const gc::CollectStats s = ms.collect();
    CHECK(s.markers == 1);
    CHECK(s.live_blocks == 3);
  }
}

TEST_SUITE("gc.lazy_sweep") {
  TEST_CASE("the pause leaves dead blocks to the lazy sweep, and walks never report them") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 50000; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 1));
    for (std::uint32_t i = 0; i < 50000; i += 10) g.roots.push_back(nodes[i]);
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = 1});
    const gc::CollectStats s = ms.collect();
    CHECK(s.freed_blocks == 45000);
    CHECK(s.pages_to_sweep > 0);
    // Nothing freed yet: the dead blocks still count in their pages.
    std::size_t pending = 0;
    for_each_segment(rt, [&](SegmentView seg) {
      for (std::size_t i = 0; i < seg.page_count(); ++i)
        if (seg.page(i).in_use() && sweep_pending(rt, seg.page(i))) ++pending;
    });
    CHECK(pending > 0);
    // find_block already says no for a dead block, yes for a live one.
    CHECK(find_block(nodes[1]) == nullptr);
    CHECK(find_block(nodes[10]) == nodes[10]);
    // A walk sweeps what it visits: exactly the survivors.
    CHECK(gc_blocks(rt) == std::unordered_set<void*>(g.roots.begin(), g.roots.end()));
    CHECK(rt.stats().tags[kGc].blocks == 5000);
  }

  TEST_CASE("allocation after a collection reuses dead blocks, swept before the heap takes their page") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 100000; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 1));
    for (std::uint32_t i = 0; i < 100000; i += 2) g.roots.push_back(nodes[i]);
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = 2});
    ms.collect();
    const std::size_t segments = rt.stats().segments;
    std::unordered_set<void*> dead(nodes.begin(), nodes.end());
    for (Node* r : g.roots) dead.erase(r);
    std::size_t reused = 0;
    std::vector<Node*> fresh;
    for (std::uint32_t i = 0; i < 50000; ++i) {
      fresh.push_back(make_node(ts.heap(kGc), 500000 + i, 1));
      reused += dead.count(fresh.back());
    }
    // The new blocks are dead ones, apart from the never-used tail of the
    // page that was current at the collection (less than a page of blocks):
    // no fresh pages.
    const std::size_t blocks_per_page = (std::size_t{1} << internal::kSmallPageShift) / usable_size(nodes[0]);
    CHECK(reused + blocks_per_page > 50000);
    CHECK(rt.stats().segments == segments);
    // Survivors intact, and the new blocks survive the next collection too.
    for (Node* r : g.roots) CHECK(test::intact_payload(r));
    g.roots.insert(g.roots.end(), fresh.begin(), fresh.end());
    const gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == 100000);
    CHECK(s.freed_blocks == 0);
  }

  TEST_CASE("a lazily swept runtime survives thread exit, abandonment, reclaim and trim") {
    Runtime rt({.gc_tags = {kGc}});
    Graph g;
    GraphModel model{&g};
    gc::MarkSweep<GraphModel> ms(rt, model);
    std::vector<Node*> kept;
    for (int round = 0; round < 4; ++round) {
      std::thread([&] {
        ThreadState t(rt);
        t.attach();
        for (std::uint32_t i = 0; i < 30000; ++i) {
          Node* n = make_node(t.heap(kGc), i, 0);
          if (i % 100 == 0) kept.push_back(n);
        }
        t.detach();
      }).join();
      g.roots = std::vector<Node*>(kept.begin(), kept.end());
      ms.collect();  // the exited thread's pages hold their marks in the pool
      std::thread([&] {
        ThreadState t(rt);  // reclaims by tag: each page is swept before use
        t.attach();
        for (std::uint32_t i = 0; i < 20000; ++i) make_node(t.heap(kGc), 900000 + i, 0);
        t.detach();
      }).join();
      for (Node* k : kept) REQUIRE(test::intact_payload(k));
    }
    rt.trim();
    g.roots = kept;
    const gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == kept.size());
    rt.trim();
    CHECK(rt.stats().tags[kGc].blocks == kept.size());
    rt.verify();
  }

  TEST_CASE("dead huge blocks are freed in the pause") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    void* big = ts.heap(kGc).allocate(std::size_t{8} << 20);
    std::memset(big, 0, sizeof(Node));
    const std::size_t committed = rt.stats().total.bytes_committed;
    gc::MarkSweep<GraphModel>(rt, model).collect();
    CHECK(rt.stats().tags[kGc].huge_pages == 0);
    CHECK(rt.stats().total.bytes_committed < committed);
  }
}

TEST_SUITE("gc.finalizers") {
  // Each dead node's finalizer reads the payload of the node it points to,
  // which is dead too: no dead block is filled before all finalizers ran.
  struct PeerReadingModel {
    std::vector<Node*> root_set;
    std::size_t finalized = 0, peers_intact = 0;
    void roots(gc::Tracer& t) {
      for (Node* r : root_set) t.mark(r);
    }
    void trace(void* obj, gc::Tracer& t) {
      auto* n = static_cast<Node*>(obj);
      for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
    }
    void finalize(void* obj) noexcept {
      auto* n = static_cast<Node*>(obj);
      ++finalized;
      if (n->child[0] != nullptr && test::intact_payload(n->child[0])) ++peers_intact;
    }
  };

  TEST_CASE("a finalizer may read a dead peer: nothing is filled with 0xDD before every finalizer ran") {
    Runtime rt({.gc_tags = {kGc}, .debug_fill = true});
    test::AttachedState ts(rt);
    PeerReadingModel model;
    std::vector<Node*> ring;
    for (std::uint32_t i = 0; i < 1000; ++i) ring.push_back(make_node(ts.heap(kGc), i, 1));
    for (std::uint32_t i = 0; i < 1000; ++i) ring[i]->child[0] = ring[(i + 1) % 1000];  // a dead cycle
    const gc::CollectStats s = gc::MarkSweep<PeerReadingModel>(rt, model).collect();
    CHECK(s.freed_blocks == 1000);
    CHECK(model.finalized == 1000);
    CHECK(model.peers_intact == 1000);
    // debug_fill: swept in the pause, so every dead block reads 0xDD now.
    for (Node* n : ring) CHECK(test::all_bytes(n, sizeof(Node), 0xDD));
  }

  TEST_CASE("finalizers run exactly once, though pages are swept lazily and walked in between") {
    struct CountingModel {
      std::vector<Node*> root_set;
      std::vector<int> count = std::vector<int>(30000, 0);
      void roots(gc::Tracer& t) {
        for (Node* r : root_set) t.mark(r);
      }
      void trace(void*, gc::Tracer&) {}
      void finalize(void* obj) noexcept { ++count[static_cast<Node*>(obj)->id]; }
    } model;
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    gc::MarkSweep<CountingModel> ms(rt, model);
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 10000; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 0));
    for (std::uint32_t i = 0; i < 10000; i += 3) model.root_set.push_back(nodes[i]);
    ms.collect();
    gc_blocks(rt);  // a walk sweeps
    for (std::uint32_t i = 10000; i < 20000; ++i) make_node(ts.heap(kGc), i, 0);
    ms.collect();
    ms.collect();
    for (std::uint32_t i = 0; i < 20000; ++i) {
      CAPTURE(i);
      const bool root = i < 10000 && i % 3 == 0;
      CHECK(model.count[i] == (root ? 0 : 1));
    }
  }

  TEST_CASE("finalizers of objects made by threads that exited run once, on another thread, with their referents intact") {
    struct PlainModel {
      std::vector<Node*> root_set;
      void roots(gc::Tracer& t) {
        for (Node* r : root_set) t.mark(r);
      }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
      }
    } model;
    Runtime rt({.gc_tags = {kGc}, .debug_fill = true});  // a freed referent would read 0xDD
    gc::MarkSweep<PlainModel> ms(rt, model);
    struct Seen {
      std::vector<int> runs = std::vector<int>(2000, 0);
      int bad = 0;
    } seen;
    auto finalizer = [](void* obj, void* data) {
      auto* n = static_cast<Node*>(obj);
      auto* s = static_cast<Seen*>(data);
      ++s->runs[n->id];
      if (!test::intact_payload(n) || n->child[0] == nullptr || !test::intact_payload(n->child[0])) ++s->bad;
    };
    // Two threads each make finalizable objects (each holding a child) and
    // exit: their pages are abandoned with the objects unreachable.
    for (int t = 0; t < 2; ++t) {
      std::thread([&, t] {
        ThreadState mine(rt);
        mine.attach();
        for (std::uint32_t i = 0; i < 1000; ++i) {
          Node* n = make_node(mine.heap(kGc), 1000 * t + i, 1);
          n->child[0] = make_node(mine.heap(kGc), 5000, 0);
          ms.register_finalizer(n, finalizer, &seen);
        }
        mine.detach();
      }).join();
    }
    test::AttachedState ts(rt);
    gc::CollectStats s = ms.collect();
    CHECK(s.finalizers_queued == 2000);
    // The queue outlives another thread's exit and a second collection.
    std::thread([&] {
      ThreadState other(rt);
      other.attach();
      for (std::uint32_t i = 0; i < 1000; ++i) make_node(other.heap(kGc), 9000, 0);
      other.detach();
    }).join();
    ms.collect();
    std::size_t ran = 0;
    std::thread([&] { ran = ms.run_finalizers(); }).join();  // a thread of the VM's choice
    CHECK(ran == 2000);
    CHECK(seen.bad == 0);
    for (int r : seen.runs) CHECK(r == 1);
    ms.collect();
    ms.collect();
    CHECK(ms.run_finalizers() == 0);
    CHECK(gc_blocks(rt).empty());
  }

  TEST_CASE("a finalizer that destroys a thread state of the runtime gets a clear error, not a deadlock") {
    const test::ChildResult r = test::run_in_child([] {
      struct DestroyingModel {
        ThreadState* victim;
        void roots(gc::Tracer&) {}
        void trace(void*, gc::Tracer&) {}
        void finalize(void*) noexcept { delete victim; }
      };
      Runtime rt({.gc_tags = {kGc}});
      auto* victim = new ThreadState(rt);
      ThreadState ts(rt);
      ts.attach();
      ts.heap(kGc).allocate(32);
      DestroyingModel model{victim};
      gc::MarkSweep<DestroyingModel>(rt, model).collect();
    });
    CHECK(!r.exited);
    CHECK(r.err.find("inside a walk or collection of its runtime") != std::string::npos);
  }
}

TEST_SUITE("gc.ordered_finalization") {
  struct Log {
    std::vector<std::uint32_t> order;        // ids, in the order finalizers ran
    std::vector<std::uint32_t> intact_refs;  // per finalizer: referents whose payload was intact
    std::unordered_set<std::uint32_t> finalized;
    bool saw_finalized_referent = false;
  };
  struct Ctx {
    Log* log;
  };
  void record(void* obj, void* data) {
    auto* n = static_cast<Node*>(obj);
    Log& log = *static_cast<Ctx*>(data)->log;
    for (std::uint32_t i = 0; i < n->n; ++i)
      if (Node* c = n->child[i]) {
        if (log.finalized.count(c->id)) log.saw_finalized_referent = true;
        if (!test::intact_payload(c)) log.saw_finalized_referent = true;  // freed or filled
      }
    log.order.push_back(n->id);
    log.finalized.insert(n->id);
  }

  TEST_CASE("a finalizer runs after every unreachable finalizable object reaching it, and sees its referents intact") {
    Runtime rt({.gc_tags = {kGc}, .debug_fill = true});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = 2});
    Log log;
    Ctx ctx{&log};
    // A chain a -> b -> c -> plain, every link finalizable but `plain`.
    Node* plain = make_node(ts.heap(kGc), 3, 0);
    Node* c = make_node(ts.heap(kGc), 2, 1);
    Node* b = make_node(ts.heap(kGc), 1, 1);
    Node* a = make_node(ts.heap(kGc), 0, 1);
    a->child[0] = b;
    b->child[0] = c;
    c->child[0] = plain;
    for (Node* n : {c, a, b}) ms.register_finalizer(n, &record, &ctx);
    g.roots = {a};
    gc::CollectStats s = ms.collect();
    CHECK(s.finalizers_queued == 0);
    CHECK(ms.run_finalizers() == 0);
    g.roots.clear();
    // One object a collection: a, then b, then c.
    for (std::uint32_t expect = 0; expect < 3; ++expect) {
      s = ms.collect();
      CHECK(s.finalizers_queued == 1);
      CHECK(ms.run_finalizers() == 1);
      REQUIRE(log.order.size() == expect + 1);
      CHECK(log.order.back() == expect);
    }
    CHECK(!log.saw_finalized_referent);
    s = ms.collect();
    CHECK(s.live_blocks == 0);  // all gone once their finalizers ran
    CHECK(ms.finalizers_registered() == 0);
  }

  TEST_CASE("queued finalizers keep their objects alive across collections until they run") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    gc::MarkSweep<GraphModel> ms(rt, model);
    Log log;
    Ctx ctx{&log};
    Node* obj = make_node(ts.heap(kGc), 7, 1);
    obj->child[0] = make_node(ts.heap(kGc), 8, 0);
    ms.register_finalizer(obj, &record, &ctx, gc::FinalizerOrder::kUnordered);
    ms.collect();
    CHECK(ms.finalizers_queued() == 1);
    for (int i = 0; i < 3; ++i) CHECK(ms.collect().live_blocks == 2);
    // From another thread: the queue is the collector's, not a thread's.
    std::thread([&] { CHECK(ms.run_finalizers() == 1); }).join();
    CHECK(log.order == std::vector<std::uint32_t>{7});
    CHECK(!log.saw_finalized_referent);
    CHECK(ms.collect().live_blocks == 0);
  }

  TEST_CASE("finalizable objects in a cycle wait; a self-reference does not block; unordered ones run at once") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    gc::MarkSweep<GraphModel> ms(rt, model);
    Log log;
    Ctx ctx{&log};
    Node* x = make_node(ts.heap(kGc), 10, 1);
    Node* y = make_node(ts.heap(kGc), 11, 1);
    x->child[0] = y;
    y->child[0] = x;
    Node* self = make_node(ts.heap(kGc), 12, 1);
    self->child[0] = self;
    Node* u1 = make_node(ts.heap(kGc), 13, 1);
    Node* u2 = make_node(ts.heap(kGc), 14, 1);
    u1->child[0] = u2;
    u2->child[0] = u1;
    for (Node* n : {x, y, self}) ms.register_finalizer(n, &record, &ctx);
    for (Node* n : {u1, u2}) ms.register_finalizer(n, &record, &ctx, gc::FinalizerOrder::kUnordered);
    const gc::CollectStats s = ms.collect();
    CHECK(s.finalizers_queued == 3);   // self, u1, u2
    CHECK(s.finalizers_waiting == 2);  // x and y reach each other
    CHECK(ms.run_finalizers() == 3);
    std::sort(log.order.begin(), log.order.end());
    CHECK(log.order == std::vector<std::uint32_t>{12, 13, 14});
    CHECK(ms.collect().live_blocks == 2);  // the cycle stays, registered
    // Unregistering x is not enough (y still reaches itself through x);
    // cutting y's way back is.
    CHECK((ms.register_finalizer(x, nullptr, nullptr).first == &record));
    CHECK(ms.collect().finalizers_waiting == 1);
    y->child[0] = nullptr;
    CHECK(ms.collect().finalizers_queued == 1);
    CHECK(ms.run_finalizers() == 1);
    CHECK(log.order.back() == 11);
  }

  TEST_CASE("a finalizer may allocate, register again and collect") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    gc::MarkSweep<GraphModel> ms(rt, model);
    struct Again {
      gc::MarkSweep<GraphModel>* ms;
      Heap* heap;
      Graph* g;
      int runs = 0;
    } again{&ms, &ts.heap(kGc), &g};
    auto fn = +[](void* obj, void* data) {
      auto* a = static_cast<Again*>(data);
      ++a->runs;
      Node* fresh = make_node(*a->heap, 99, 0);  // allocation inside a finalizer
      a->g->roots.push_back(fresh);
      if (a->runs == 1) a->ms->register_finalizer(obj, a->runs == 1 ? +[](void*, void*) {} : nullptr, nullptr);
      a->ms->collect();  // the world is this thread's: collecting is allowed here
    };
    ms.register_finalizer(make_node(ts.heap(kGc), 1, 0), fn, &again);
    ms.collect();
    // The finalizer registered its object again and collected: the second
    // registration was queued meanwhile and ran in the same call.
    CHECK(ms.run_finalizers() == 2);
    CHECK(again.runs == 1);
    CHECK(ms.finalizers_registered() + ms.finalizers_queued() == 0);
    CHECK(g.roots.size() == 1);
    g.roots.clear();
    CHECK(ms.collect().live_blocks == 0);
  }
}

TEST_SUITE("gc.exceptions") {
  TEST_CASE("an exception from trace leaves the runtime as before the collection, and the next one is exact") {
    for (unsigned markers : {1u, 2u}) {
      for (int throw_after : {0, 10, 5000}) {
        CAPTURE(markers);
        CAPTURE(throw_after);
        Runtime rt({.gc_tags = {kGc}});
        test::AttachedState ts(rt);
        Graph g;
        GraphModel model{&g};
        std::mt19937 rng(throw_after + 1);
        auto nodes = random_graph(ts.heap(kGc), rng, 20000, 0);
        g.roots = {nodes[0], nodes[100], nodes[5000]};
        gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = markers});
        ms.collect();  // leaves a lazy sweep pending, which the failed collection completes
        const auto live = reachable(g.roots);
        const auto before = gc_blocks(rt);
        g.throw_after = throw_after;
        g.traced = 0;
        CHECK_THROWS_AS(ms.collect(), std::runtime_error);
        CHECK(marked_bits(rt) == 0);
        CHECK(gc_blocks(rt) == before);  // nothing freed
        g.throw_after = -1;
        const gc::CollectStats s = ms.collect();
        CHECK(s.live_blocks == live.size());
        CHECK(gc_blocks(rt) == live);
      }
    }
  }

  TEST_CASE("an exception from roots or process_weak undoes every mark") {
    struct ThrowingModel {
      std::vector<Node*> roots_;
      bool throw_in_roots = false, throw_in_weak = false;
      void roots(gc::Tracer& t) {
        for (Node* r : roots_) t.mark(r);
        if (throw_in_roots) throw std::logic_error("roots failed");
      }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
      }
      void process_weak(const gc::Liveness&) {
        if (throw_in_weak) throw std::logic_error("process_weak failed");
      }
    } model;
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    std::mt19937 rng(5);
    auto nodes = random_graph(ts.heap(kGc), rng, 5000, 0);
    model.roots_ = {nodes[0]};
    gc::MarkSweep<ThrowingModel> ms(rt, model);
    const auto before = gc_blocks(rt);
    model.throw_in_roots = true;
    CHECK_THROWS_AS(ms.collect(), std::logic_error);
    CHECK(marked_bits(rt) == 0);
    CHECK(gc_blocks(rt) == before);
    model.throw_in_roots = false;
    model.throw_in_weak = true;
    CHECK_THROWS_AS(ms.collect(), std::logic_error);
    CHECK(marked_bits(rt) == 0);
    CHECK(gc_blocks(rt) == before);
    model.throw_in_weak = false;
    const gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == reachable(model.roots_).size());
  }
}

TEST_SUITE("gc.weak") {
  // Node layout for weak tests: child[0] strong, child[1] weak, child[2..3]
  // an ephemeron (key, value).
  struct WeakModel {
    std::vector<Node*> root_set;
    std::vector<void*> weak_roots;  // a VM's global weak table
    std::size_t processed = 0, dead_seen = 0;
    void roots(gc::Tracer& t) {
      for (Node* r : root_set) t.mark(r);
      for (void*& w : weak_roots) t.mark_weak(&w);
    }
    void trace(void* obj, gc::Tracer& t) {
      auto* n = static_cast<Node*>(obj);
      t.mark(n->child[0]);
      t.mark_weak(reinterpret_cast<void**>(&n->child[1]));
      t.mark_ephemeron(n->child[2], n->child[3]);
    }
    std::vector<Node*> tables;  // objects holding an ephemeron, pruned below
    void process_weak(const gc::Liveness& l) {
      ++processed;
      // The VM's part: an ephemeron whose key died is removed (its table
      // must not keep a pointer to a block about to be freed).
      for (Node* t : tables)
        if (l.is_live(t) && t->child[2] != nullptr && !l.is_live(t->child[2])) t->child[2] = t->child[3] = nullptr;
      for (void* w : weak_roots)
        if (w != nullptr && !l.is_live(w)) ++dead_seen;  // cleared already: never happens
    }
  };

  TEST_CASE("weak slots are cleared exactly when their object is unreachable") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      Runtime rt({.gc_tags = {kGc}});
      test::AttachedState ts(rt);
      WeakModel model;
      Node* holder = make_node(ts.heap(kGc), 0, 4);
      Node* strong = make_node(ts.heap(kGc), 1, 4);
      Node* weak_only = make_node(ts.heap(kGc), 2, 4);
      Node* both = make_node(ts.heap(kGc), 3, 4);
      holder->child[0] = both;
      holder->child[1] = weak_only;
      model.root_set = {holder, strong};
      model.weak_roots = {strong, weak_only, both};
      void* data = ts.heap(kData).allocate(16);  // not a GC block: a weak slot to it is left alone
      model.weak_roots.push_back(data);
      gc::MarkSweep<WeakModel> ms(rt, model, gc::Options{.markers = markers});
      const gc::CollectStats s = ms.collect();
      CHECK(s.live_blocks == 3);
      CHECK(holder->child[1] == nullptr);
      CHECK(model.weak_roots[0] == strong);
      CHECK(model.weak_roots[1] == nullptr);
      CHECK(model.weak_roots[2] == both);
      CHECK(model.weak_roots[3] == data);
      CHECK(model.processed == 1);
      CHECK(model.dead_seen == 0);
      tagheap::free(data);
    }
  }

  TEST_CASE("ephemeron chains converge in any order, and a value referencing its key keeps nothing alive") {
    for (unsigned markers : {1u, 2u}) {
      for (std::uint32_t length : {1u, 10u, 1000u, 100000u}) {
        CAPTURE(markers);
        CAPTURE(length);
        Runtime rt({.gc_tags = {kGc}});
        test::AttachedState ts(rt);
        WeakModel model;
        // Tables hold ephemerons (key_i -> key_{i+1}), shuffled over tables.
        std::vector<Node*> keys, tables;
        for (std::uint32_t i = 0; i <= length; ++i) keys.push_back(make_node(ts.heap(kGc), i, 4));
        for (std::uint32_t i = 0; i < length; ++i) {
          Node* t = make_node(ts.heap(kGc), 10000 + i, 4);
          t->child[2] = keys[i];
          t->child[3] = keys[i + 1];
          tables.push_back(t);
        }
        std::shuffle(tables.begin(), tables.end(), std::mt19937(length));
        // The WeakMap leak: a value that references its own key.
        Node* lone_key = make_node(ts.heap(kGc), 20000, 4);
        Node* lone_value = make_node(ts.heap(kGc), 20001, 4);
        lone_value->child[0] = lone_key;
        Node* lone_table = make_node(ts.heap(kGc), 20002, 4);
        lone_table->child[2] = lone_key;
        lone_table->child[3] = lone_value;
        model.root_set = tables;
        model.root_set.push_back(lone_table);
        model.tables = tables;
        model.tables.push_back(lone_table);
        model.root_set.push_back(keys[0]);  // the chain's first key is alive
        model.weak_roots = {keys[length], lone_key};
        gc::MarkSweep<WeakModel> ms(rt, model, gc::Options{.markers = markers});
        ms.collect();
        const auto live = gc_blocks(rt);
        for (Node* k : keys) CHECK(live.count(k) == 1);
        CHECK(live.count(lone_key) == 0);
        CHECK(live.count(lone_value) == 0);
        CHECK(model.weak_roots[0] == keys[length]);
        CHECK(model.weak_roots[1] == nullptr);
        // Without the first key, the whole chain dies.
        model.root_set.pop_back();
        ms.collect();
        const auto live2 = gc_blocks(rt);
        for (Node* k : keys) CHECK(live2.count(k) == 0);
        CHECK(model.weak_roots[0] == nullptr);
      }
    }
  }

  // A key that only its finalizer keeps alive is live to process_weak, so a
  // model that prunes entries by their key keeps the entry: its value must
  // be kept as well, or the table points into freed memory.
  // The test's own verdict: strong edges child[0]; child[1] weak; child[2]
  // -> child[3] an ephemeron (the value reachable iff holder and key are).
  std::unordered_set<void*> weakly_model_reachable(const std::vector<Node*>& roots) {
    std::unordered_set<void*> seen(roots.begin(), roots.end());
    for (bool grew = true; grew;) {
      grew = false;
      std::vector<Node*> todo(roots.begin(), roots.end());
      for (void* p : seen) todo.push_back(static_cast<Node*>(p));
      while (!todo.empty()) {
        Node* n = todo.back();
        todo.pop_back();
        Node* next[2] = {n->child[0], n->child[2] != nullptr && seen.count(n->child[2]) ? n->child[3] : nullptr};
        for (Node* c : next)
          if (c != nullptr && seen.insert(c).second) {
            todo.push_back(c);
            grew = true;
          }
      }
    }
    return seen;
  }

  TEST_CASE("over random graphs, weak slots are cleared exactly when their object is unreachable, ephemerons included") {
    for (unsigned markers : {1u, 2u}) {
      for (unsigned seed = 1; seed <= 4; ++seed) {
        CAPTURE(markers);
        CAPTURE(seed);
        Runtime rt({.gc_tags = {kGc}});
        test::AttachedState ts(rt);
        WeakModel model;
        std::mt19937 rng(seed);
        std::vector<Node*> nodes;
        for (std::uint32_t i = 0; i < 3000; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 4));
        auto any = [&]() -> Node* { return rng() % 4 == 0 ? nullptr : nodes[rng() % nodes.size()]; };
        for (Node* n : nodes) {
          n->child[0] = rng() % 3 == 0 ? any() : nullptr;  // sparse strong edges: much stays unreachable
          n->child[1] = any();
          n->child[2] = any();
          n->child[3] = any();
        }
        for (int i = 0; i < 20; ++i) model.root_set.push_back(nodes[rng() % nodes.size()]);
        const auto expected = weakly_model_reachable(model.root_set);
        std::vector<std::pair<Node*, Node*>> slots;  // live holder, its weak target before
        for (void* p : expected) slots.emplace_back(static_cast<Node*>(p), static_cast<Node*>(p)->child[1]);
        gc::MarkSweep<WeakModel> ms(rt, model, gc::Options{.markers = markers});
        const gc::CollectStats s = ms.collect();
        CHECK(s.live_blocks == expected.size());
        CHECK(gc_blocks(rt) == expected);
        for (auto [holder, target] : slots) {
          if (target == nullptr) continue;
          CHECK(holder->child[1] == (expected.count(target) ? target : nullptr));
        }
      }
    }
  }

  TEST_CASE("an ephemeron whose key is kept only for its finalizer keeps its value as long as the key") {
    for (bool incremental : {false, true}) {
      CAPTURE(incremental);
      Runtime rt({.gc_tags = {kGc}});
      test::AttachedState ts(rt);
      WeakModel model;
      Node* table = make_node(ts.heap(kGc), 0, 4);
      Node* key = make_node(ts.heap(kGc), 1, 4);
      Node* value = make_node(ts.heap(kGc), 2, 4);
      table->child[2] = key;
      table->child[3] = value;
      model.root_set = {table};
      model.tables = {table};
      gc::Options o;
      o.incremental = incremental;
      gc::MarkSweep<WeakModel> ms(rt, model, o);
      ms.register_finalizer(key, [](void*, void*) {}, nullptr);
      gc::CollectStats s = ms.collect_full();
      CHECK(s.finalizers_queued == 1);
      CHECK(table->child[2] == key);  // pruned by key: the key lives on, for its finalizer
      CHECK(gc_blocks(rt).count(value) == 1);
      CHECK(test::intact_payload(value));
      CHECK(ms.run_finalizers() == 1);
      s = ms.collect_full();  // finalized: the key dies now, and the entry with it
      CHECK(table->child[2] == nullptr);
      CHECK(gc_blocks(rt).count(value) == 0);
    }
  }
}

TEST_SUITE("gc.policy") {
  TEST_CASE("a collection is due once allocation since the last passes the budget") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.heap_growth = 1.0, .min_budget_bytes = 1 << 20});
    CHECK(!ms.collection_due());
    CHECK(ms.budget_bytes() == 1 << 20);
    std::vector<Node*> kept;
    // 64-byte nodes; allocation is counted per bitmap word (64 blocks), and
    // flushed every 64 KiB: due within that much of the budget.
    std::size_t bytes = 0;
    while (!ms.collection_due()) {
      kept.push_back(make_node(ts.heap(kGc), 0, 6));
      bytes += 64;
      REQUIRE(bytes < (std::size_t{1} << 20) + (std::size_t{256} << 10));
    }
    CHECK(bytes + (std::size_t{128} << 10) >= std::size_t{1} << 20);
    // Live data of 4 MiB after the collection: the budget follows it.
    g.roots.assign(kept.begin(), kept.end());
    while (g.roots.size() * 64 < (std::size_t{4} << 20)) g.roots.push_back(make_node(ts.heap(kGc), 0, 6));
    const gc::CollectStats s = ms.collect();
    CHECK(!ms.collection_due());
    CHECK(ms.budget_bytes() == s.live_bytes);
    CHECK(s.live_bytes >= std::size_t{4} << 20);
  }

  TEST_CASE("live data that grows, shrinks and grows keeps the heap within (1 + growth) times it, plus the minimum") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    const gc::Options options{.heap_growth = 0.5, .min_budget_bytes = 1 << 20};
    gc::MarkSweep<GraphModel> ms(rt, model, options);
    std::size_t collections = 0, allocated = 0, worst_excess = 0, previous_live = 0;
    Node* list = nullptr;
    std::size_t list_len = 0;
    // Live size in 64-byte nodes over time: up to 8 MiB, down to 1, up to 12.
    const std::size_t targets[] = {8 << 14, 1 << 14, 12 << 14};
    for (std::size_t target : targets) {
      for (int step = 0; step < 400000; ++step) {
        if (ms.collection_due()) {
          g.roots = {list};
          const gc::CollectStats s = ms.collect();
          ++collections;
          // The GC bytes in use at a collection (the dead ones included)
          // are the previous survivors plus at most one budget, give or take
          // the allocation count's granularity (a bitmap word, a 64 KiB flush).
          const std::size_t in_use = s.live_bytes + s.freed_bytes;
          const std::size_t budget = std::max(options.min_budget_bytes,
                                              static_cast<std::size_t>(options.heap_growth * previous_live));
          const std::size_t bound = previous_live + budget + (std::size_t{128} << 10);
          worst_excess = std::max(worst_excess, in_use > bound ? in_use - bound : 0);
          previous_live = s.live_bytes;
        }
        Node* n = make_node(ts.heap(kGc), 0, 6);
        allocated += 64;
        if (list_len < target) {
          n->child[0] = list;  // grow the live list
          list = n;
          ++list_len;
        } else if (list_len > target && list != nullptr) {
          list = list->child[0];  // shrink it
          --list_len;
        }
      }
    }
    MESSAGE("collections: " << collections << ", allocated MiB: " << (allocated >> 20));
    CHECK(worst_excess == 0);
    // At most one collection per budget's worth of allocation: never fewer
    // bytes between collections than min_budget_bytes.
    CHECK(collections <= allocated / options.min_budget_bytes + 1);
    CHECK(collections > 3);
  }
}

TEST_SUITE("gc.events") {
  struct Recorder : gc::GcListener {
    std::vector<gc::GcEvent> events;
    std::size_t end_live_bytes = 0;
    void on_gc_event(const gc::GcEvent& e) noexcept override {
      events.push_back(e);
      if (e.phase == gc::GcPhase::kCollectionEnd) end_live_bytes = e.stats->live_bytes;
    }
  };

  TEST_CASE("a listener sees each collection's phases in order, one marker event per marker") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    std::mt19937 rng(9);
    g.roots = random_graph(ts.heap(kGc), rng, 10000, 0);
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = 2});
    Recorder rec;
    ms.set_listener(&rec);
    for (int i = 0; i < 3; ++i) {
      rec.events.clear();
      const gc::CollectStats s = ms.collect();
      using P = gc::GcPhase;
      std::vector<P> phases;
      for (auto& e : rec.events) phases.push_back(e.phase);
      std::vector<P> expected = {P::kCollectionStart, P::kSweepCompleted, P::kRootsDone};
      for (unsigned m = 0; m < s.markers; ++m) expected.push_back(P::kMarkerDone);
      expected.push_back(P::kMarkDone);
      expected.push_back(P::kCollectionEnd);
      CHECK(phases == expected);
      for (std::size_t k = 1; k < rec.events.size(); ++k)
        if (rec.events[k].phase != P::kMarkerDone && rec.events[k - 1].phase != P::kMarkerDone)
          CHECK(rec.events[k].time_ns >= rec.events[k - 1].time_ns);
      std::size_t bytes = 0;
      for (auto& e : rec.events)
        if (e.phase == P::kMarkerDone) {
          CHECK(e.start_ns <= e.time_ns);
          bytes += e.bytes;
        }
      CHECK(bytes == s.live_bytes);
      CHECK(rec.end_live_bytes == s.live_bytes);
      CHECK(rec.events.front().collection == static_cast<std::uint64_t>(i + 1));
    }
  }
}

// TSan cannot start threads in the child of a multi-threaded fork.
#if !defined(TAGHEAP_TSAN)
TEST_SUITE("gc.events") {
  TEST_CASE("the Chrome trace has one collection span per collection, and every span nests in it") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    std::mt19937 rng(10);
    g.roots = random_graph(ts.heap(kGc), rng, 20000, 0);
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = 2});
    gc::ChromeTraceRecorder trace;
    ms.set_listener(&trace);
    for (int i = 0; i < 4; ++i) ms.collect();
    CHECK(trace.collections() == 4);
    // One event per line: pick out name, tid, ts, dur and collection.
    struct Ev {
      std::string name;
      unsigned tid;
      double ts, dur;
      unsigned long collection;
    };
    std::vector<Ev> events;
    const std::string text = trace.json();
    CHECK(text.front() == '{');
    std::size_t pos = 0;
    while ((pos = text.find("{\"name\":\"", pos)) != std::string::npos) {
      const std::size_t end = text.find('\n', pos);
      const std::string line = text.substr(pos, end - pos);
      pos = end;
      if (line.find("\"ph\":\"X\"") == std::string::npos) continue;
      char name[64] = {};
      Ev e{};
      REQUIRE(std::sscanf(line.c_str(), "{\"name\":\"%63[^\"]\",\"cat\":\"gc\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%lf,\"dur\":%lf,\"args\":{\"collection\":%lu",
                          name, &e.tid, &e.ts, &e.dur, &e.collection) == 5);
      e.name = name;
      events.push_back(e);
    }
    std::size_t collections = 0;
    for (const Ev& c : events) {
      if (c.name != "collection") continue;
      ++collections;
      std::size_t children = 0;
      for (const Ev& e : events)
        if (&e != &c && e.collection == c.collection) {
          CAPTURE(e.name);
          CHECK(e.ts >= c.ts - 0.001);
          CHECK(e.ts + e.dur <= c.ts + c.dur + 0.001);
          ++children;
        }
      CHECK(children >= 4);  // finish sweep, roots, mark, a marker at least
    }
    CHECK(collections == 4);
  }
}

TEST_SUITE("gc.fork") {
  TEST_CASE("a collector whose marker threads were made before fork() collects in the child") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Graph g;
    GraphModel model{&g};
    std::mt19937 rng(11);
    auto nodes = random_graph(ts.heap(kGc), rng, 5000, 0);
    g.roots = {nodes[0]};
    gc::MarkSweep<GraphModel> ms(rt, model, gc::Options{.markers = 2});
    ms.collect();  // the helper thread exists now
    const std::size_t live = reachable(g.roots).size();
    const test::ChildResult r = test::run_in_child([&] {
      const gc::CollectStats s = ms.collect();
      if (s.live_blocks != live) {
        std::fprintf(stderr, "FAILED: %zu live, expected %zu\n", s.live_blocks, live);
        std::exit(1);
      }
    });
    INFO(r.describe());
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
  }
}
#endif  // !TAGHEAP_TSAN
