// Stress: thread states churning under gc::World while collections run.
//
// Mutator threads go through thousands of short-lived thread states (attach
// through the World, allocate GC nodes and data blocks, free each other's
// data blocks across threads, detach, destroy). A collector thread stops the
// world in a loop and, every round, checks the collection against a model
// kept by the test: the survivors are exactly the GC nodes reachable from the
// mutators' roots (a graph search of the test's own), and a walk of the data
// tags finds exactly the data blocks the model holds. A second test forks
// while other threads, parked by the World, hold live blocks; the child
// adopts their pages through Runtime::after_fork_child.
//
// Sizes shrink under sanitizers (TAGHEAP_TSAN, TAGHEAP_ASAN), which run the
// same code 5-20x slower.
#include <doctest/doctest.h>

#include <algorithm>
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
#include "tests/test_util.h"

using namespace tagheap;

namespace {

constexpr Tag kData = 0, kGc = 1, kData2 = 2;

#if defined(TAGHEAP_TSAN)
constexpr int kLivesPerMutator = 120, kOpsPerLife = 200;
#elif defined(TAGHEAP_ASAN)
constexpr int kLivesPerMutator = 350, kOpsPerLife = 250;
#else
constexpr int kLivesPerMutator = 700, kOpsPerLife = 300;
#endif
constexpr int kMutators = 3;

struct Node {
  Node* child[2];
  std::uint64_t serial;
};

// What one live mutator holds: its GC roots and its data blocks. Written by
// the mutator while it runs, read by the collector while the world is stopped.
struct Holdings {
  std::vector<Node*> roots;
  std::vector<void*> data;
};

struct Shared {
  std::mutex mu;                    // guards `mutators` and `mailbox`
  std::set<Holdings*> mutators;
  std::vector<void*> mailbox;       // data blocks on their way to another thread's free
};

struct RootsModel {
  Shared* shared;
  void roots(gc::Tracer& t) {
    for (Holdings* h : shared->mutators)
      for (Node* n : h->roots) t.mark(n);
  }
  void trace(void* obj, gc::Tracer& t) {
    auto* n = static_cast<Node*>(obj);
    t.mark(n->child[0]);
    t.mark(n->child[1]);
  }
};

std::unordered_set<void*> reachable(Shared& s) {
  std::unordered_set<void*> seen;
  std::vector<Node*> todo;
  for (Holdings* h : s.mutators)
    for (Node* n : h->roots)
      if (seen.insert(n).second) todo.push_back(n);
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    for (Node* c : n->child)
      if (c != nullptr && seen.insert(c).second) todo.push_back(c);
  }
  return seen;
}

void mutator_life(Runtime& rt, gc::World& world, Shared& shared, std::mt19937_64& rng, std::uint64_t& serial,
                  std::atomic<long>& cross_frees) {
  auto ts = std::make_unique<ThreadState>(rt);
  Holdings mine;
  world.attach(*ts);
  {
    std::lock_guard lock(shared.mu);
    shared.mutators.insert(&mine);
  }
  Heap& gc_heap = ts->heap(kGc);
  for (int i = 0; i < kOpsPerLife; ++i) {
    const unsigned r = static_cast<unsigned>(rng() % 100);
    if (r < 40) {
      auto* n = static_cast<Node*>(gc_heap.allocate(sizeof(Node)));
      REQUIRE(n != nullptr);
      n->serial = ++serial;
      n->child[0] = mine.roots.empty() ? nullptr : mine.roots[rng() % mine.roots.size()];
      n->child[1] = nullptr;
      if (!mine.roots.empty() && rng() % 2) mine.roots[rng() % mine.roots.size()]->child[1] = n;
      else mine.roots.push_back(n);
    } else if (r < 50) {
      if (!mine.roots.empty()) {  // drop a root: garbage for the next collection
        std::swap(mine.roots[rng() % mine.roots.size()], mine.roots.back());
        mine.roots.pop_back();
      }
    } else if (r < 70) {
      const std::size_t size = rng() % 4 == 0 ? 1024 + rng() % 20000 : 8 + rng() % 200;
      void* p = ts->heap(rng() % 2 ? kData : kData2).allocate(size);
      REQUIRE(p != nullptr);
      static_cast<unsigned char*>(p)[0] = 0x5A;
      mine.data.push_back(p);
    } else if (r < 80) {
      if (!mine.data.empty()) {
        tagheap::free(mine.data.back());
        mine.data.pop_back();
      }
    } else if (r < 90) {
      if (!mine.data.empty()) {  // post a block for another thread to free
        void* p = mine.data.back();
        mine.data.pop_back();
        std::lock_guard lock(shared.mu);
        shared.mailbox.push_back(p);
      }
    } else {
      void* p = nullptr;
      {
        std::lock_guard lock(shared.mu);
        if (!shared.mailbox.empty()) {
          std::swap(shared.mailbox[rng() % shared.mailbox.size()], shared.mailbox.back());
          p = shared.mailbox.back();
          shared.mailbox.pop_back();
        }
      }
      if (p != nullptr) {
        tagheap::free(p);  // often another thread's block, often an exited one's
        cross_frees.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (i % 8 == 0) world.safepoint();
  }
  {
    // The data it still holds outlives it (freed later by others, into its
    // abandoned pages); its roots die with it.
    std::lock_guard lock(shared.mu);
    shared.mailbox.insert(shared.mailbox.end(), mine.data.begin(), mine.data.end());
    shared.mutators.erase(&mine);
  }
  world.detach(*ts);
  ts.reset();
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("thousands of thread states churn under World while every collection stays exact") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    Shared shared;
    std::atomic<bool> done{false};
    std::atomic<long> rounds{0}, bad_live{0}, bad_freed{0}, bad_set{0}, bad_data{0}, freed_total{0};
    std::atomic<long> cross_frees{0};

    std::thread collector([&] {
      long n = 0;
      while (!done.load(std::memory_order_acquire)) {
        gc::World::StopScope stop(world);
        std::lock_guard lock(shared.mu);
        const std::unordered_set<void*> live = reachable(shared);
        std::size_t before = 0;
        visit_gc_blocks(rt, [&](const BlockRef&) { ++before; });
        RootsModel model{&shared};
        const gc::CollectStats s = gc::MarkSweep<RootsModel>(rt, model).collect();
        if (s.live_blocks != live.size()) ++bad_live;
        if (s.freed_blocks != before - live.size()) ++bad_freed;
        freed_total += static_cast<long>(s.freed_blocks);
        // After the collection the GC heap is exactly the reachable set.
        std::size_t after = 0;
        visit_gc_blocks(rt, [&](const BlockRef& b) {
          ++after;
          if (!live.count(b.block)) ++bad_set;
        });
        if (after != live.size()) ++bad_set;
        // The data tags hold exactly the model's data blocks.
        std::unordered_set<void*> data(shared.mailbox.begin(), shared.mailbox.end());
        for (Holdings* h : shared.mutators) data.insert(h->data.begin(), h->data.end());
        std::size_t seen = 0;
        visit_blocks(rt, TagSet{kData, kData2}, [&](const BlockRef& b) {
          ++seen;
          if (!data.count(b.block)) ++bad_data;
        });
        if (seen != data.size()) ++bad_data;
        if (++n % 16 == 0) rt.verify();
        ++rounds;
      }
    });

    std::vector<std::thread> mutators;
    for (int m = 0; m < kMutators; ++m)
      mutators.emplace_back([&, m] {
        std::mt19937_64 rng(0x5eed + m);
        std::uint64_t serial = 0;
        for (int life = 0; life < kLivesPerMutator; ++life)
          mutator_life(rt, world, shared, rng, serial, cross_frees);
      });
    for (auto& t : mutators) t.join();
    done.store(true, std::memory_order_release);
    collector.join();

    MESSAGE("thread states: " << kMutators * kLivesPerMutator << ", collections: " << rounds.load()
                              << ", freed by collections: " << freed_total.load()
                              << ", cross-thread frees: " << cross_frees.load());
    CHECK(rounds.load() > 0);
    CHECK(bad_live.load() == 0);
    CHECK(bad_freed.load() == 0);
    CHECK(bad_set.load() == 0);
    CHECK(bad_data.load() == 0);

    // Quiet now: one last exact collection, then free the rest of the data.
    RootsModel model{&shared};
    const gc::CollectStats s = gc::MarkSweep<RootsModel>(rt, model).collect();
    CHECK(s.live_blocks == 0);
    std::size_t gc_left = 0;
    visit_gc_blocks(rt, [&](const BlockRef&) { ++gc_left; });
    CHECK(gc_left == 0);
    for (void* p : shared.mailbox) tagheap::free(p);
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }

  TEST_CASE("fork while parked threads hold live blocks: the child adopts them and stays exact") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    constexpr int kThreads = 3;
    struct Held {
      std::vector<void*> blocks;  // tags 0 and 1
      std::vector<Node*> nodes;   // the tag-1 ones, as GC nodes
    };
    Held held[kThreads];
    std::atomic<int> warmed{0};
    std::atomic<bool> quit{false};
    std::vector<std::thread> threads;
    for (int k = 0; k < kThreads; ++k)
      threads.emplace_back([&, k] {
        ThreadState ts(rt);
        world.attach(ts);
        std::mt19937_64 rng(k);
        Held& h = held[k];
        long i = 0;
        // Churn until told to quit: at the stop below they are parked
        // mid-work, with pages owned, some full, some with thread frees.
        while (!quit.load(std::memory_order_relaxed)) {
          if (h.blocks.size() < 4000 || rng() % 2) {
            if (rng() % 2) {
              auto* n = static_cast<Node*>(ts.heap(kGc).allocate(sizeof(Node)));
              n->child[0] = h.nodes.empty() ? nullptr : h.nodes[rng() % h.nodes.size()];
              n->child[1] = nullptr;
              n->serial = static_cast<std::uint64_t>(i);
              h.nodes.push_back(n);
              h.blocks.push_back(n);
            } else {
              h.blocks.push_back(ts.heap(kData).allocate(16 + rng() % 3000));
            }
          } else {
            // Free a data block (GC nodes are left to the collectors).
            const std::size_t j = rng() % h.blocks.size();
            if (tag_of(h.blocks[j]) == kData) {
              tagheap::free(h.blocks[j]);
              h.blocks[j] = h.blocks.back();
              h.blocks.pop_back();
            }
          }
          if (++i == 20000) warmed.fetch_add(1);
          if (i % 4 == 0) world.safepoint();
        }
        for (void* p : h.blocks)
          if (tag_of(p) == kData) tagheap::free(p);
        world.detach(ts);
      });
    while (warmed.load() < kThreads) std::this_thread::yield();

    ThreadState survivor(rt);
    survivor.attach();
    std::vector<void*> mine;
    for (int i = 0; i < 2000; ++i) mine.push_back(survivor.heap(static_cast<Tag>(i % 2)).allocate(32 + i % 500));
    survivor.detach();

    world.stop();  // every mutator parked, holding its pages
    std::unordered_set<void*> expected(mine.begin(), mine.end());
    std::vector<Node*> their_nodes;
    std::size_t held_blocks = 0;
    for (const Held& h : held) {
      expected.insert(h.blocks.begin(), h.blocks.end());
      held_blocks += h.blocks.size();
      their_nodes.insert(their_nodes.end(), h.nodes.begin(), h.nodes.end());
    }
    REQUIRE(expected.size() == held_blocks + mine.size());

    const test::ChildResult r = test::run_in_child([&] {
      test::ChildChecks c;
      rt.after_fork_child(survivor);
      c.expect(rt.stats().thread_states == 1, "only the survivor is left");
      std::size_t seen = 0, unknown = 0;
      visit_blocks(rt, TagSet{kData, kGc}, [&](const BlockRef& b) {
        ++seen;
        unknown += !expected.count(b.block);
      });
      c.expect(seen == expected.size() && unknown == 0, "the walk sees exactly the blocks held at fork");
      // Free half of the vanished threads' data blocks, from the survivor.
      survivor.attach();
      std::size_t freed = 0;
      for (const Held& h : held)
        for (std::size_t j = 0; j < h.blocks.size(); j += 2)
          if (tag_of(h.blocks[j]) == kData) {
            tagheap::free(h.blocks[j]);
            expected.erase(h.blocks[j]);
            ++freed;
          }
      c.expect(freed > 0, "some of their blocks were freed");
      // Allocate again: abandoned pages of the matching tag are reclaimed.
      for (int i = 0; i < 20000; ++i) {
        const Tag t = static_cast<Tag>(i % 2);
        void* p = survivor.heap(t).allocate(16 + i % 700);
        c.expect(p != nullptr && tag_of(p) == t, "allocation in the child");
        expected.insert(p);
      }
      survivor.detach();
      // Collect: roots are every third node of the vanished threads.
      struct ChildModel {
        std::vector<Node*> root_set;
        void roots(gc::Tracer& t) {
          for (Node* n : root_set) t.mark(n);
        }
        void trace(void* obj, gc::Tracer& t) {
          auto* n = static_cast<Node*>(obj);
          t.mark(n->child[0]);
          t.mark(n->child[1]);
        }
      } model;
      for (std::size_t j = 0; j < their_nodes.size(); j += 3) model.root_set.push_back(their_nodes[j]);
      std::unordered_set<void*> reach;
      std::vector<Node*> todo(model.root_set.begin(), model.root_set.end());
      for (Node* n : todo) reach.insert(n);
      while (!todo.empty()) {
        Node* n = todo.back();
        todo.pop_back();
        for (Node* ch : n->child)
          if (ch != nullptr && reach.insert(ch).second) todo.push_back(ch);
      }
      std::size_t gc_before = 0;
      visit_gc_blocks(rt, [&](const BlockRef&) { ++gc_before; });
      // One marker: TSan cannot start threads after a multi-threaded fork
      // (glibc can; the collector's own fork test covers it).
      const gc::CollectStats s = gc::MarkSweep<ChildModel>(rt, model, gc::Options{.markers = 1}).collect();
      c.expect(s.live_blocks == reach.size(), "the child's collection keeps exactly the reachable");
      c.expect(s.freed_blocks == gc_before - reach.size(), "and frees the rest");
      c.expect(rt.stats().total.reclaimed_total > 0, "the child reclaimed abandoned pages");
      rt.verify();
      c.finish();
    });
    CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());

    // The parent is untouched by the child's work.
    std::size_t seen = 0, unknown = 0;
    visit_blocks(rt, TagSet{kData, kGc}, [&](const BlockRef& b) {
      ++seen;
      unknown += !expected.count(b.block);
    });
    CHECK(seen == expected.size());
    CHECK(unknown == 0);
    quit.store(true);
    world.resume();
    for (auto& t : threads) t.join();
    survivor.attach();
    for (void* p : mine) tagheap::free(p);
    survivor.detach();
    // Only the vanished-in-the-child threads' GC nodes are left (abandoned).
    const RuntimeStats st = rt.stats();
    CHECK(st.tags[kData].blocks == 0);
    CHECK(st.tags[kGc].blocks == their_nodes.size());
    rt.verify();
  }
}
