// Tests of gc::Options::leaf_tags: blocks of those GC tags are marked and
// kept like any other, freed when unreachable, and never handed to
// Model::trace; an ephemeron keyed by one still settles.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/test_graph.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using test::gc_blocks;
using test::make_node;
using test::Node;

namespace {

constexpr Tag kNodes = 1, kLeaves = 2;

// Nodes (tag kNodes) point to nodes and to leaves (tag kLeaves, no
// pointers: their first word holds a pointer-looking value that a trace
// would follow). Records every object handed to trace.
struct LeafModel {
  std::vector<Node*> roots_;
  std::vector<std::pair<void*, void*>> ephemerons;  // registered from roots()
  std::mutex mu;
  std::unordered_set<void*> traced;
  void roots(gc::Tracer& t) {
    // Ephemerons first: their keys are not marked yet, so they all wait
    // for settling.
    for (auto [k, v] : ephemerons) t.mark_ephemeron(k, v);
    for (Node* r : roots_) t.mark(r);
  }
  void trace(void* obj, gc::Tracer& t) {
    {
      std::lock_guard lock(mu);
      traced.insert(obj);
    }
    if (tag_of(obj) == kLeaves) {  // followed only if the collector traced a leaf
      t.mark(*static_cast<void**>(obj));
      return;
    }
    auto* n = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
  }
};

gc::Options leaves(unsigned markers) {
  gc::Options o;
  o.markers = markers;
  o.parallel_mark_bytes = 0;  // helpers mark even a small heap
  o.leaf_tags = {kLeaves};
  return o;
}

void* make_leaf(Heap& heap, void* word) {
  void* leaf = heap.allocate(48);
  REQUIRE(leaf != nullptr);
  *static_cast<void**>(leaf) = word;
  return leaf;
}

}  // namespace

TEST_SUITE("gc.leaf_tags") {
  TEST_CASE("leaf blocks are marked and kept through any path, freed when unreachable, and never traced") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      Runtime rt({.gc_tags = {kNodes, kLeaves}});
      test::AttachedState ts(rt);
      LeafModel model;
      gc::MarkSweep<LeafModel> ms(rt, model, leaves(markers));
      // A node that only a leaf's first word points to: a collector that
      // traced leaves would keep it.
      Node* bait = make_node(ts.ts.heap(kNodes), 999'999, 0);
      std::mt19937 rng(11);
      std::vector<Node*> nodes;
      std::vector<void*> all_leaves;
      for (std::uint32_t i = 0; i < 20'000; ++i) nodes.push_back(make_node(ts.ts.heap(kNodes), i, 3));
      for (std::uint32_t i = 0; i < 20'000; ++i) all_leaves.push_back(make_leaf(ts.ts.heap(kLeaves), bait));
      for (Node* n : nodes) {
        n->child[0] = nodes[rng() % nodes.size()];
        if (rng() % 3 == 0) n->child[1] = static_cast<Node*>(all_leaves[rng() % all_leaves.size()]);
        if (rng() % 3 == 0) n->child[2] = static_cast<Node*>(all_leaves[rng() % all_leaves.size()]);
      }
      model.roots_ = {nodes[0], nodes[1], nodes[2], static_cast<Node*>(all_leaves[0])};  // a leaf as a root too
      // Reachable: a search that does not enter leaves.
      std::unordered_set<void*> live;
      std::vector<void*> todo(model.roots_.begin(), model.roots_.end());
      while (!todo.empty()) {
        void* p = todo.back();
        todo.pop_back();
        if (p == nullptr || !live.insert(p).second || tag_of(p) == kLeaves) continue;
        auto* n = static_cast<Node*>(p);
        for (std::uint32_t i = 0; i < n->n; ++i) todo.push_back(n->child[i]);
      }
      REQUIRE(live.count(bait) == 0);
      const gc::CollectStats s = ms.collect();
      CHECK(gc_blocks(rt) == live);
      CHECK(s.live_blocks == live.size());
      std::size_t live_bytes = 0;
      for (void* p : live) live_bytes += usable_size(p);
      CHECK(s.live_bytes == live_bytes);
      for (void* p : model.traced) CHECK(tag_of(p) == kNodes);
      std::size_t live_nodes = 0;
      for (void* p : live) live_nodes += tag_of(p) == kNodes;
      CHECK(model.traced.size() == live_nodes);
      model.roots_.clear();
      ms.collect();
      CHECK(gc_blocks(rt).empty());
    }
  }

  TEST_CASE("an ephemeron keyed by a leaf that marking reaches late releases its value") {
    Runtime rt({.gc_tags = {kNodes, kLeaves}});
    test::AttachedState ts(rt);
    LeafModel model;
    gc::MarkSweep<LeafModel> ms(rt, model, leaves(1));
    Node* r = make_node(ts.ts.heap(kNodes), 1, 0);
    Node* x = make_node(ts.ts.heap(kNodes), 2, 1);  // reached only as r's ephemeron value
    void* leaf = make_leaf(ts.ts.heap(kLeaves), nullptr);
    x->child[0] = static_cast<Node*>(leaf);       // so the leaf is marked while ephemerons settle
    Node* y = make_node(ts.ts.heap(kNodes), 3, 0);  // the leaf's ephemeron value
    Node* z = make_node(ts.ts.heap(kNodes), 4, 0);  // an unreachable key's value
    void* dead_leaf = make_leaf(ts.ts.heap(kLeaves), nullptr);
    model.roots_ = {r};
    // Settled last first: the leaf's waits for its key, then r's marks x,
    // whose trace marks the leaf.
    model.ephemerons = {{r, x}, {leaf, y}, {dead_leaf, z}};
    const gc::CollectStats s = ms.collect();
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{r, x, leaf, y});
    CHECK(s.freed_blocks == 2);
    CHECK(model.traced.count(leaf) == 0);  // popped for its ephemeron, not traced
    model.roots_.clear();
    model.ephemerons.clear();
    ms.collect();
    CHECK(gc_blocks(rt).empty());
  }

  TEST_CASE("no path traces a leaf: a mark-stack rescan, the verifications, a barrier on a leaf") {
    for (const bool generational : {true, false}) {
      CAPTURE(generational);
      Runtime rt({.gc_tags = {kNodes, kLeaves}});
      test::AttachedState ts(rt);
      LeafModel model;
      gc::Options o = leaves(1);
      if (generational) {
        o.generational = true;
        o.verify_minor = true;
      } else {
        o.incremental = true;
        o.verify_incremental = true;
        o.mark_step_ns = 1;
      }
      gc::MarkSweep<LeafModel> ms(rt, model, o);
      ms.limit_mark_stack(4);  // overflows: marked objects are rescanned
      const auto collect = [&] {
        gc::CollectStats s;
        do s = ms.collect();
        while (s.incremental && !s.cycle_done);
        return s;
      };
      Node* bait = make_node(ts.ts.heap(kNodes), 999, 0);  // a traced leaf would keep it
      // A fan: 300 nodes under one, too many for the 4-entry stack.
      Node* fan = make_node(ts.ts.heap(kNodes), 0, 300);
      std::vector<void*> leaf_blocks;
      for (std::uint32_t i = 0; i < 300; ++i) {
        Node* n = make_node(ts.ts.heap(kNodes), i + 1, 1);
        leaf_blocks.push_back(make_leaf(ts.ts.heap(kLeaves), bait));
        n->child[0] = static_cast<Node*>(leaf_blocks.back());
        fan->child[i] = n;
      }
      model.roots_ = {fan};
      gc::CollectStats s = collect();
      CHECK(s.live_blocks == 601);
      CHECK(gc_blocks(rt).count(bait) == 0);
      // A leaf that is old now, its first word rewritten, then a barrier on
      // it (pointless, but a VM may call it on anything).
      bait = make_node(ts.ts.heap(kNodes), 1000, 0);
      for (void* leaf : leaf_blocks) *static_cast<void**>(leaf) = bait;
      ms.write_barrier(leaf_blocks[7]);
      s = collect();  // minor (verified), or a second verified cycle
      CHECK(s.minor == generational);
      CHECK(gc_blocks(rt).count(bait) == 0);
      for (void* p : model.traced) CHECK(tag_of(p) == kNodes);
      model.roots_.clear();
      ms.collect_full();
      CHECK(gc_blocks(rt).empty());
    }
  }

  TEST_CASE("a leaf with an ordered finalizer is finalized without being traced") {
    Runtime rt({.gc_tags = {kNodes, kLeaves}});
    test::AttachedState ts(rt);
    LeafModel model;
    gc::MarkSweep<LeafModel> ms(rt, model, leaves(1));
    Node* bait = make_node(ts.ts.heap(kNodes), 1, 0);  // kept for finalization only if the leaf is traced
    void* leaf = make_leaf(ts.ts.heap(kLeaves), bait);
    int finalized = 0;
    ms.register_finalizer(leaf, [](void*, void* data) { ++*static_cast<int*>(data); }, &finalized);
    const gc::CollectStats s = ms.collect();
    CHECK(s.finalizers_queued == 1);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{leaf});  // kept until its finalizer ran
    CHECK(model.traced.empty());
    CHECK(ms.run_finalizers() == 1);
    CHECK(finalized == 1);
    ms.collect();
    CHECK(gc_blocks(rt).empty());
  }

  TEST_CASE("tags in leaf_tags that are not GC tags change nothing") {
    Runtime rt({.gc_tags = {kNodes}});
    test::AttachedState ts(rt);
    LeafModel model;
    gc::Options o = leaves(1);
    o.leaf_tags = {kLeaves, 7};
    gc::MarkSweep<LeafModel> ms(rt, model, o);
    void* data = make_leaf(ts.ts.heap(kLeaves), nullptr);  // not a GC tag: not the collector's
    Node* a = make_node(ts.ts.heap(kNodes), 1, 1);
    a->child[0] = static_cast<Node*>(data);
    Node* b = make_node(ts.ts.heap(kNodes), 2, 0);
    model.roots_ = {a};
    const gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == 1);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{a});
    CHECK(model.traced == std::unordered_set<void*>{a});
    (void)b;
    tagheap::free(data);
  }
}
