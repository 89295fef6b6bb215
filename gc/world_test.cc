// Tests of gc::World, the stop-the-world helper: collections under churn
// (mutators attaching, detaching and exiting while another thread collects
// in a loop, every collection checked against a model), blocking(), fairness
// of back-to-back stops, and sweeping the pages of parked mutators.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
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
using namespace std::chrono_literals;

namespace {

constexpr Tag kGc = 1;

struct Node {
  Node* child[2];
  std::uint64_t owner;  // the mutator that made it (a check, never trusted by the GC)
};

// Precise roots: each attached mutator's root vector plus a shared survivor
// list. Mutators change theirs only while running (never while parked), and
// the collector reads them only while the world is stopped.
struct Roots {
  std::mutex mu;
  std::set<std::vector<Node*>*> mutators;
  std::vector<Node*> survivors;
};

struct Model {
  Roots* r;
  std::size_t finalized = 0;
  void roots(gc::Tracer& t) {
    for (auto* v : r->mutators)
      for (Node* n : *v) t.mark(n);
    for (Node* n : r->survivors) t.mark(n);
  }
  void trace(void* obj, gc::Tracer& t) {
    auto* n = static_cast<Node*>(obj);
    t.mark(n->child[0]);
    t.mark(n->child[1]);
  }
  void finalize(void*) noexcept { ++finalized; }
};

std::unordered_set<void*> reachable(Roots& r) {
  std::unordered_set<void*> seen;
  std::vector<Node*> todo;
  auto push = [&](Node* n) {
    if (n && seen.insert(n).second) todo.push_back(n);
  };
  for (auto* v : r.mutators)
    for (Node* n : *v) push(n);
  for (Node* n : r.survivors) push(n);
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    push(n->child[0]);
    push(n->child[1]);
  }
  return seen;
}

// One collection with the world stopped, checked against the model.
// Returns false (after failing a CHECK) when the verdict is wrong.
bool collect_checked(Runtime& rt, Roots& roots, Model& model) {
  std::lock_guard lock(roots.mu);
  const std::unordered_set<void*> live = reachable(roots);
  std::size_t all = 0;
  bool ok = true;
  visit_gc_blocks(rt, [&](const BlockRef&) { ++all; });
  const std::size_t fin0 = model.finalized;
  const gc::CollectStats s = gc::MarkSweep<Model>(rt, model).collect();
  ok &= s.live_blocks == live.size();
  ok &= s.freed_blocks == all - live.size();
  ok &= model.finalized - fin0 == s.freed_blocks;
  std::size_t after = 0;
  visit_gc_blocks(rt, [&](const BlockRef& b) {
    ++after;
    if (!live.count(b.block)) ok = false;
  });
  ok &= after == live.size();
  rt.verify();
  if (!ok) {
    CHECK(s.live_blocks == live.size());
    CHECK(s.freed_blocks == all - live.size());
    CHECK(after == live.size());
  }
  return ok;
}

// A mutator's life: attach, allocate and link nodes with safepoints between
// steps, drop roots, hand a few survivors on, leave. How it leaves:
enum class Exit {
  kDetachKeep,      // World::detach, the ThreadState lives on (reused later)
  kDestroyInStop,   // World::detach, then ~ThreadState inside a stop of its own
  kAbandonFirst,    // abandon() while still a running mutator, then as above
};

void mutator_life(Runtime& rt, gc::World& world, Roots& roots, ThreadState& ts, std::mt19937& rng,
                  int steps) {
  std::vector<Node*> mine;
  world.attach(ts);
  {
    std::lock_guard lock(roots.mu);
    roots.mutators.insert(&mine);
  }
  Heap& heap = ts.heap(kGc);
  for (int i = 0; i < steps; ++i) {
    auto* n = static_cast<Node*>(heap.allocate(sizeof(Node)));
    REQUIRE(n != nullptr);
    n->child[0] = mine.empty() ? nullptr : mine[rng() % mine.size()];
    n->child[1] = mine.empty() ? nullptr : mine[rng() % mine.size()];
    n->owner = reinterpret_cast<std::uintptr_t>(&ts);
    if (rng() % 4 != 0) mine.push_back(n);  // else: garbage at once
    if (mine.size() > 64) mine.erase(mine.begin() + static_cast<long>(rng() % mine.size()));
    if (rng() % 32 == 0) tagheap::free(heap.allocate(100));  // freed by its owner at once
    if (i % 8 == 0) world.safepoint();
    if (rng() % 64 == 0) world.blocking([] { std::this_thread::yield(); });
  }
  {
    std::lock_guard lock(roots.mu);
    roots.mutators.erase(&mine);
    for (int k = 0; k < 3 && !mine.empty(); ++k) {
      if (roots.survivors.size() < 200) {
        roots.survivors.push_back(mine[rng() % mine.size()]);
      } else {
        roots.survivors[rng() % roots.survivors.size()] = mine[rng() % mine.size()];
      }
    }
  }
}

}  // namespace

TEST_SUITE("gc.world") {
  TEST_CASE("a stop() right after resume() waits for the mutators that resume() let go") {
    // The fairness rule lets a parked mutator through at resume(); it must
    // count as running from then on, so the very next stop() waits for it to
    // park again instead of returning while it runs.
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    ThreadState ts(rt);
    std::atomic<bool> attached{false}, quit{false};
    std::atomic<long> steps{0};
    std::thread m([&] {
      world.attach(ts);
      attached = true;
      while (!quit.load()) {
        world.safepoint();
        ++steps;  // stands for mutating the heap
      }
      world.detach(ts);
    });
    while (!attached.load()) std::this_thread::sleep_for(1ms);
    for (int round = 0; round < 20; ++round) {
      CAPTURE(round);
      world.stop();
      world.resume();
      world.stop();  // back to back
      const long seen = steps.load();
      std::this_thread::sleep_for(20ms);
      CHECK(steps.load() == seen);  // parked: no step while the world is stopped
      world.resume();
    }
    quit = true;
    m.join();
  }

  TEST_CASE("a mutator inside blocking() does not hold a stop up, and leaves it only after resume") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    ThreadState ts(rt);
    std::atomic<bool> in_blocking{false}, release{false}, left{false};
    std::thread m([&] {
      world.attach(ts);
      const int v = world.blocking([&] {
        in_blocking = true;
        while (!release.load()) std::this_thread::sleep_for(1ms);
        return 7;
      });
      left = true;
      CHECK(v == 7);
      world.detach(ts);
    });
    while (!in_blocking.load()) std::this_thread::sleep_for(1ms);
    const auto t0 = std::chrono::steady_clock::now();
    world.stop();  // returns although the mutator is still inside blocking()
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(world.running() == 0);
    release = true;
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(left.load());  // f returned, but the stop is still on
    world.resume();
    m.join();
    CHECK(left.load());
  }

  TEST_CASE("back-to-back stops do not starve a thread that keeps re-attaching") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    std::atomic<bool> stopper_done{false}, attacher_done{false};
    std::atomic<long> stops{0}, attaches{0}, safepoints{0};
    constexpr long kAttaches = 2000;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    // The stopper never pauses between resume() and the next stop().
    std::thread stopper([&] {
      while (!attacher_done.load() && std::chrono::steady_clock::now() < deadline) {
        world.stop();
        world.resume();
        ++stops;
      }
      stopper_done = true;
    });
    std::thread attacher([&] {
      ThreadState ts(rt);
      while (stops.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      while (attaches.load() < kAttaches && std::chrono::steady_clock::now() < deadline) {
        world.attach(ts);
        for (int i = 0; i < 4; ++i) {
          world.safepoint();
          ++safepoints;
        }
        world.detach(ts);
        ++attaches;
      }
      attacher_done = true;
    });
    stopper.join();
    attacher.join();
    MESSAGE("stops: " << stops.load() << ", attaches: " << attaches.load());
    CHECK(attaches.load() == kAttaches);  // made progress, before the deadline
    CHECK(stops.load() > 0);
  }

  TEST_CASE("blocks swept in parked mutators' pages come back to those mutators") {
    // Mutators stay attached and parked at a safepoint while another thread
    // collects; afterwards each gets its own freed blocks back.
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    Roots roots;
    Model model{&roots};
    constexpr int kMutators = 3, kPer = 20000;
    std::vector<std::vector<Node*>> made(kMutators), kept(kMutators);
    std::vector<std::set<void*>> freed(kMutators);
    std::vector<std::vector<void*>> again(kMutators);
    std::atomic<int> ready{0};
    std::atomic<bool> collected{false};
    std::vector<std::unique_ptr<ThreadState>> states;
    for (int m = 0; m < kMutators; ++m) states.push_back(std::make_unique<ThreadState>(rt));
    std::vector<std::thread> threads;
    for (int m = 0; m < kMutators; ++m)
      threads.emplace_back([&, m] {
        world.attach(*states[m]);
        for (int i = 0; i < kPer; ++i) {
          auto* n = static_cast<Node*>(states[m]->heap(kGc).allocate(sizeof(Node)));
          n->child[0] = n->child[1] = nullptr;
          made[m].push_back(n);
          if (i % 2 == 0) kept[m].push_back(n); else freed[m].insert(n);
        }
        {
          std::lock_guard lock(roots.mu);
          roots.mutators.insert(&kept[m]);
        }
        ++ready;
        while (!collected.load()) world.safepoint();  // parks during the stop
        for (std::size_t i = 0; i < freed[m].size(); ++i) again[m].push_back(states[m]->heap(kGc).allocate(sizeof(Node)));
        world.detach(*states[m]);
      });
    while (ready.load() < kMutators) std::this_thread::sleep_for(1ms);
    {
      gc::World::StopScope stop(world);
      CHECK(collect_checked(rt, roots, model));
      collected = true;
    }
    for (auto& t : threads) t.join();
    for (int m = 0; m < kMutators; ++m) {
      CAPTURE(m);
      std::size_t hit = 0;
      for (void* p : again[m]) hit += freed[m].count(p);
      // Each page was half freed: the owner's next allocations take those
      // blocks, after at most the untouched tail of its last page.
      CHECK(hit + 2048 >= freed[m].size());
      CHECK(hit > 0);
      for (int u = 0; u < kMutators; ++u)
        if (u != m)
          for (void* p : again[m]) CHECK_FALSE(freed[u].count(p));
    }
    rt.verify();
    gc::World::StopScope stop(world);
    states.clear();
  }
  TEST_CASE("collections in a loop stay exact while mutators attach, detach and exit") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    Roots roots;
    Model model{&roots};
    std::atomic<bool> done{false};
    std::atomic<int> lives{0};
    std::atomic<bool> all_ok{true};
    std::atomic<int> collections{0};

    std::thread collector([&] {
      while (!done.load()) {
        gc::World::StopScope stop(world);
        if (!collect_checked(rt, roots, model)) all_ok = false;
        ++collections;
      }
    });
    std::vector<std::thread> mutators;
    for (int m = 0; m < 3; ++m)
      mutators.emplace_back([&, m] {
        std::mt19937 rng(m + 1);
        auto kept = std::make_unique<ThreadState>(rt);
        for (int life = 0; life < 60; ++life) {
          const auto how = static_cast<Exit>(life % 3);
          if (how == Exit::kDetachKeep) {
            mutator_life(rt, world, roots, *kept, rng, 400);
            world.detach(*kept);
          } else {
            auto ts = std::make_unique<ThreadState>(rt);
            mutator_life(rt, world, roots, *ts, rng, 400);
            if (how == Exit::kAbandonFirst) ts->abandon();
            world.detach(*ts);
            // ~ThreadState abandons pages: not while a collection walks, so
            // the exiting thread takes a stop of its own for it.
            gc::World::StopScope stop(world);
            ts.reset();
          }
          ++lives;
        }
        gc::World::StopScope stop(world);
        kept.reset();
      });
    for (auto& t : mutators) t.join();
    done = true;
    collector.join();
    CHECK(all_ok.load());
    CHECK(lives.load() == 180);
    CHECK(collections.load() > 10);
    MESSAGE("collections: " << collections.load());
    // Only survivors remain; one more collection with them dropped frees all.
    roots.survivors.clear();
    {
      gc::World::StopScope stop(world);
      CHECK(collect_checked(rt, roots, model));
    }
    CHECK(rt.stats().tags[kGc].blocks == 0);
  }
}
