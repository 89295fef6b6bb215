// test_graph.h: the object graph the collector's tests build, and the test's
// own graph search (never the collector's) that verdicts are checked against.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/tracer.h"
#include "gc/visit.h"
#include "tests/test_util.h"

namespace tagheap::test {

// A GC object: an id, n child pointers, and a payload derived from the id
// (intact_payload says whether the object still holds what it was made with).
struct Node {
  std::uint32_t id;
  std::uint32_t n;
  std::uint64_t payload;
  Node* child[];
};

inline std::uint64_t payload_of(std::uint32_t id) { return 0x5eed0000u + id; }
inline bool intact_payload(const Node* n) { return n->payload == payload_of(n->id); }

inline Node* make_node(Heap& heap, std::uint32_t id, std::uint32_t n) {
  auto* node = static_cast<Node*>(heap.allocate(sizeof(Node) + n * sizeof(Node*)));
  REQUIRE(node != nullptr);
  node->id = id;
  node->n = n;
  node->payload = payload_of(id);
  for (std::uint32_t i = 0; i < n; ++i) node->child[i] = nullptr;
  return node;
}

// Wires `slots` child slots of every node to random nodes of the same set.
inline void wire_randomly(std::vector<Node*>& nodes, std::uint32_t slots, std::mt19937& rng) {
  for (Node* n : nodes)
    for (std::uint32_t c = 0; c < slots && c < n->n; ++c) n->child[c] = nodes[rng() % nodes.size()];
}

// The collector's model of a Node graph: roots_ are the roots; trace marks
// every child (and throws, for tests of unwinding, at throw_at).
struct NodeModel {
  std::vector<Node*> roots_;
  std::atomic<std::size_t> traced{0};
  void* throw_at = nullptr;
  void roots(gc::Tracer& t) {
    for (Node* r : roots_) t.mark(r);
  }
  void trace(void* obj, gc::Tracer& t) {
    if (obj == throw_at) throw std::runtime_error("trace failed");
    traced.fetch_add(1, std::memory_order_relaxed);
    auto* n = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
  }
};

inline std::unordered_set<void*> reachable(const std::vector<Node*>& roots) {
  std::unordered_set<void*> seen;
  std::vector<Node*> todo;
  for (Node* r : roots)
    if (r && seen.insert(r).second) todo.push_back(r);
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    for (std::uint32_t i = 0; i < n->n; ++i)
      if (Node* c = n->child[i]; c && seen.insert(c).second) todo.push_back(c);
  }
  return seen;
}

// Every live GC block, by a walk; each must be seen once.
inline std::unordered_set<void*> gc_blocks(Runtime& rt) {
  std::unordered_set<void*> all;
  visit_gc_blocks(rt, [&](const BlockRef& b) { CHECK(all.insert(b.block).second); });
  return all;
}

// A runtime whose one GC tag is kTag, a thread state attached for the
// fixture's life, a model and its collector: where most collector tests
// start.
template <class Model, Tag kTag>
struct CollectorFixture {
  Runtime rt{{.gc_tags = {kTag}}};
  AttachedState ts{rt};
  Model model;
  gc::MarkSweep<Model> ms;
  explicit CollectorFixture(gc::Options o) : ms(rt, model, o) {}
  Heap& heap() { return ts.heap(kTag); }
};

}  // namespace tagheap::test
