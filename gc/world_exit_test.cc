// Pins the natural way for a mutator thread to exit under gc::World:
//
//   world.attach(ts); ... world.detach(ts); }   // ~ThreadState runs here
//
// while another thread collects in a loop. World::detach says the thread
// "never holds a stop up again", so a collection may be walking the heaps
// while ~ThreadState abandons the thread's pages into the pool. The correct
// behaviour: every collection stays exact (and checked builds do not die).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "gc/world.h"

using namespace tagheap;

namespace {

constexpr Tag kGc = 1;

struct Node {
  Node* child;
  std::uint64_t pad;
};

struct Model {
  std::mutex mu;
  std::set<std::vector<Node*>*> mutators;
  void roots(gc::Tracer& t) {
    for (auto* v : mutators)
      for (Node* n : *v) t.mark(n);
  }
  void trace(void* obj, gc::Tracer& t) { t.mark(static_cast<Node*>(obj)->child); }
};

}  // namespace

TEST_SUITE("gc.world") {
  TEST_CASE("a mutator may destroy its ThreadState right after World::detach while collections run") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    Model model;
    std::atomic<bool> done{false};
    std::atomic<long> bad{0}, collections{0};
    std::thread collector([&] {
      while (!done.load()) {
        gc::World::StopScope stop(world);
        std::lock_guard lock(model.mu);
        std::unordered_set<void*> live;
        for (auto* v : model.mutators)
          for (Node* n : *v)
            for (Node* c = n; c && live.insert(c).second; c = c->child) {
            }
        std::size_t all = 0;
        visit_gc_blocks(rt, [&](const BlockRef&) { ++all; });
        const gc::CollectStats s = gc::MarkSweep<Model>(rt, model).collect();
        if (s.live_blocks != live.size() || s.freed_blocks != all - live.size()) ++bad;
        ++collections;
      }
    });
    std::vector<std::thread> mutators;
    for (int m = 0; m < 3; ++m)
      mutators.emplace_back([&, m] {
        std::mt19937 rng(m);
        for (int life = 0; life < 100; ++life) {
          auto ts = std::make_unique<ThreadState>(rt);
          std::vector<Node*> mine;
          world.attach(*ts);
          {
            std::lock_guard lock(model.mu);
            model.mutators.insert(&mine);
          }
          for (int i = 0; i < 3000; ++i) {
            auto* n = static_cast<Node*>(ts->heap(kGc).allocate(sizeof(Node)));
            n->child = mine.empty() ? nullptr : mine.back();
            if (rng() % 3) mine.push_back(n);
            if (i % 16 == 0) world.safepoint();
          }
          {
            std::lock_guard lock(model.mu);
            model.mutators.erase(&mine);
          }
          world.detach(*ts);
          ts.reset();  // the thread exits: its pages are abandoned now
        }
      });
    for (auto& t : mutators) t.join();
    done = true;
    collector.join();
    MESSAGE("collections: " << collections.load());
    CHECK(bad.load() == 0);
    gc::World::StopScope stop(world);
    rt.verify();
  }
}
