// Tests of incremental marking (Options::incremental): cycles of short
// pauses, the write barrier between them, allocation during a cycle, the
// verification mode, exceptions and collect_full() in the middle of a
// cycle, weak slots and ephemerons. Verdicts are checked against the test's
// own graph search (gc/test_graph.h).
//
// mark_step_ns = 1 makes every step stop at its first time check (after 64
// traced objects per marker): many pauses per cycle, whatever the machine.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/test_graph.h"
#include "gc/visit.h"
#include "gc/world.h"
#include "tests/test_util.h"

using namespace tagheap;
using test::gc_blocks;
using test::intact_payload;
using test::make_node;
using test::Node;
using test::reachable;

namespace {

constexpr Tag kGc = 1;

using Model = test::NodeModel;

gc::Options incremental(unsigned markers = 1, std::uint64_t step_ns = 1) {
  gc::Options o;
  o.incremental = true;
  o.verify_incremental = true;
  o.mark_step_ns = step_ns;
  o.markers = markers;
  return o;
}

// A runtime with one GC tag, this thread attached, and an incremental
// collector over a NodeModel.
using Fixture = test::CollectorFixture<Model, kGc>;

// Pauses until the cycle under way (or a new one) is done; returns the last.
template <class MS>
gc::CollectStats finish_cycle(MS& ms, std::size_t* pauses = nullptr) {
  gc::CollectStats s;
  std::size_t n = 0;
  do {
    s = ms.collect();
    ++n;
    REQUIRE(s.incremental);
    REQUIRE(n < 1'000'000);
  } while (!s.cycle_done);
  if (pauses != nullptr) *pauses = n;
  return s;
}

// A chain of n nodes hung from `head`'s child slot `slot`.
void hang_chain(Heap& heap, Node* head, std::uint32_t slot, std::uint32_t n, std::uint32_t first_id) {
  Node* prev = head;
  std::uint32_t s = slot;
  for (std::uint32_t i = 0; i < n; ++i) {
    Node* c = make_node(heap, first_id + i, 2);
    prev->child[s] = c;
    prev = c;
    s = 0;
  }
}

}  // namespace

TEST_SUITE("gc.incremental") {
  TEST_CASE("an incremental cycle takes many pauses and frees exactly the unreachable objects") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      Fixture f(incremental(markers));
      auto& [rt, ts, model, ms] = f;
      std::vector<Node*> all;
      for (std::uint32_t i = 0; i < 20000; ++i) all.push_back(make_node(ts.heap(kGc), i, 2));
      std::mt19937 rng(7);
      for (Node* n : all) {
        n->child[0] = all[rng() % all.size()];
        if (rng() % 4 != 0) n->child[1] = all[rng() % all.size()];  // a quarter stays unreachable, about
      }
      model.roots_ = {all[0], all[1], all[2]};
      const auto live = reachable(model.roots_);
      std::size_t pauses = 0;
      const gc::CollectStats s = finish_cycle(ms, &pauses);
      CHECK(pauses > 10);
      CHECK(s.cycle_pauses == pauses);
      CHECK(s.live_blocks == live.size());
      CHECK(s.freed_blocks == all.size() - live.size());
      CHECK(!ms.is_marking());
      CHECK(gc_blocks(rt) == live);
      for (void* p : live) CHECK(intact_payload(static_cast<Node*>(p)));
    }
  }

  TEST_CASE("a pointer stored into a traced object between pauses is found through write_barrier") {
    Fixture f(incremental());
    auto& [rt, ts, model, ms] = f;
    Node* b = make_node(ts.heap(kGc), 1, 2);
    hang_chain(ts.heap(kGc), b, 0, 10000, 100);  // b is traced first, the chain takes many steps
    model.roots_ = {b};
    const gc::CollectStats first = ms.collect();
    REQUIRE(!first.cycle_done);
    REQUIRE(ms.is_marking());
    Node* w = make_node(ts.heap(kGc), 2, 0);  // allocated white, held only by b
    b->child[1] = w;
    ms.write_barrier(b);
    finish_cycle(ms);
    CHECK(gc_blocks(rt).count(w) == 1);
    CHECK(intact_payload(w));
  }

  TEST_CASE("a store into a traced object without write_barrier is caught by the verification") {
    const test::ChildResult r = test::run_in_child([] {
      Fixture f(incremental());
      auto& [rt, ts, model, ms] = f;
      Node* b = make_node(ts.heap(kGc), 1, 2);
      hang_chain(ts.heap(kGc), b, 0, 10000, 100);
      model.roots_ = {b};
      ms.collect();
      b->child[1] = make_node(ts.heap(kGc), 2, 0);  // no barrier: the test-only mistake
      finish_cycle(ms);
    });
    CHECK(!r.exited);
    CHECK(r.err.find("incremental cycle did not trace again") != std::string::npos);
    CHECK(r.err.find("was not followed by write_barrier") != std::string::npos);
  }

  TEST_CASE("an object allocated during a cycle survives when a root holds it at the end, and dies otherwise") {
    Fixture f(incremental());
    auto& [rt, ts, model, ms] = f;
    Node* b = make_node(ts.heap(kGc), 1, 2);
    hang_chain(ts.heap(kGc), b, 0, 5000, 100);
    model.roots_ = {b};
    REQUIRE(!ms.collect().cycle_done);
    Node* kept = make_node(ts.heap(kGc), 2, 1);
    kept->child[0] = make_node(ts.heap(kGc), 3, 0);  // white into white: no barrier needed
    Node* dropped = make_node(ts.heap(kGc), 4, 0);
    model.roots_.push_back(kept);
    model.roots_.push_back(dropped);
    REQUIRE(!ms.collect().cycle_done);  // a pause with both in the roots: marked
    model.roots_.pop_back();            // dropped after being marked: floating garbage this cycle
    Node* late = make_node(ts.heap(kGc), 5, 0);
    Node* gone = make_node(ts.heap(kGc), 6, 0);
    (void)gone;
    model.roots_.push_back(late);
    finish_cycle(ms);
    auto blocks = gc_blocks(rt);
    CHECK(blocks.count(kept) == 1);
    CHECK(blocks.count(kept->child[0]) == 1);
    CHECK(blocks.count(late) == 1);
    CHECK(blocks.count(gone) == 0);  // never reached: allocation is white
    CHECK(blocks.count(dropped) == 1);
    finish_cycle(ms);  // the next cycle frees the floating garbage
    blocks = gc_blocks(rt);
    CHECK(blocks.count(dropped) == 0);
    CHECK(blocks == reachable(model.roots_));
  }

  TEST_CASE("random rewiring with barriers while cycles run never frees a reachable object") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      Fixture f(incremental(markers));
      auto& [rt, ts, model, ms] = f;
      std::mt19937 rng(markers * 31);
      std::vector<Node*> nodes;
      for (std::uint32_t i = 0; i < 4000; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 3));
      test::wire_randomly(nodes, 2, rng);
      model.roots_.assign(nodes.begin(), nodes.begin() + 16);
      std::size_t cycles = 0, pauses = 0;
      for (int round = 0; round < 1000; ++round) {
        for (int k = 0; k < 20; ++k) {
          Node* from = nodes[rng() % nodes.size()];
          const unsigned kind = rng() % 8;
          Node* to = kind == 0 ? make_node(ts.heap(kGc), 100000 + round, 3) : nodes[rng() % nodes.size()];
          if (kind == 0) nodes.push_back(to);
          from->child[rng() % 3] = kind == 1 ? nullptr : to;
          ms.write_barrier(from);
          if (kind == 2) model.roots_[rng() % model.roots_.size()] = to;  // a root changes
        }
        const gc::CollectStats s = ms.collect();  // verification after each cycle
        ++pauses;
        if (!s.cycle_done) continue;
        ++cycles;
        const auto live = reachable(model.roots_);
        const auto after = gc_blocks(rt);
        for (void* p : live) {
          REQUIRE(after.count(p) == 1);
          REQUIRE(intact_payload(static_cast<Node*>(p)));
        }
        std::vector<Node*> still;  // forget what may have been freed
        for (Node* n : nodes)
          if (live.count(n)) still.push_back(n);
        nodes.swap(still);
        if (nodes.size() < 100) break;
      }
      CHECK(cycles >= 3);
      CHECK(pauses > cycles);
      ms.collect_full();
      CHECK(gc_blocks(rt) == reachable(model.roots_));
    }
  }

  TEST_CASE("two mutator threads rewiring their graphs under a World while cycles run lose nothing") {
    Runtime rt({.gc_tags = {kGc}});
    gc::World world;
    struct SharedModel {
      std::vector<Node*> of[2];  // each thread's roots
      void roots(gc::Tracer& t) {
        for (auto& rs : of)
          for (Node* r : rs) t.mark(r);
      }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
      }
    } model;
    gc::Options o = incremental(2, 20'000);
    o.min_budget_bytes = 256 << 10;
    gc::MarkSweep<SharedModel> ms(rt, model, o);
    std::atomic<std::size_t> cycles{0}, pauses{0};
    std::atomic<bool> failed{false};
    auto mutator = [&](int me) {
      ThreadState ts(rt);
      world.attach(ts);
      std::mt19937 rng(me + 1);
      std::vector<Node*> mine;
      for (std::uint32_t i = 0; i < 20000; ++i) mine.push_back(make_node(ts.heap(kGc), i, 3));
      test::wire_randomly(mine, 2, rng);
      model.of[me].assign(mine.begin(), mine.begin() + 8);  // written only by this thread, read when stopped
      std::size_t cycles_seen = 0;
      for (int round = 0; round < 200'000 && cycles < 3 && !failed; ++round) {  // until 3 cycles ran
        for (int k = 0; k < 20; ++k) {
          Node* from = mine[rng() % mine.size()];
          Node* to = rng() % 4 == 0 ? make_node(ts.heap(kGc), 50000 + round, 3) : mine[rng() % mine.size()];
          if (to->id >= 50000) mine.push_back(to);
          from->child[rng() % 3] = rng() % 6 == 0 ? nullptr : to;
          ms.write_barrier(from);
          if (rng() % 16 == 0) model.of[me][rng() % 8] = to;
        }
        world.safepoint();
        if (ms.collection_due()) {
          gc::World::StopScope stop(world);  // the other thread may have collected meanwhile
          const gc::CollectStats s = ms.collection_due() ? ms.collect() : gc::CollectStats{.cycle_done = false};
          pauses += s.incremental;
          if (s.cycle_done) {
            ++cycles;
            const auto live = reachable(std::vector<Node*>(model.of[0].begin(), model.of[0].end()));
            for (void* p : live)
              if (!intact_payload(static_cast<Node*>(p))) failed = true;
          }
        }
        // After a cycle ended (here or in the other thread, which can only
        // have happened at a safepoint or in the stop just above), forget
        // what is not reachable from this thread's roots: it may be freed.
        if (cycles != cycles_seen) {
          cycles_seen = cycles;
          const auto live = reachable(model.of[me]);
          std::vector<Node*> still;
          for (Node* n : mine)
            if (live.count(n)) still.push_back(n);
          mine.swap(still);
          if (mine.size() < 50) break;
        }
      }
      world.detach(ts);
    };
    std::thread a(mutator, 0), b(mutator, 1);
    a.join();
    b.join();
    CHECK(!failed);
    CHECK(cycles >= 2);
    CHECK(pauses > cycles);
  }

  TEST_CASE("an exception from trace in a mark step drops the cycle, and the next cycle is exact") {
    Fixture f(incremental());
    auto& [rt, ts, model, ms] = f;
    Node* b = make_node(ts.heap(kGc), 1, 2);
    hang_chain(ts.heap(kGc), b, 0, 3000, 100);
    Node* deep = b;
    for (int i = 0; i < 2000; ++i) deep = deep->child[0];
    for (int i = 0; i < 1000; ++i) make_node(ts.heap(kGc), 9000 + i, 0);  // garbage
    model.roots_ = {b};
    REQUIRE(!ms.collect().cycle_done);
    model.throw_at = deep;
    bool threw = false;
    try {
      finish_cycle(ms);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    CHECK(threw);
    CHECK(!ms.is_marking());
    model.throw_at = nullptr;
    const gc::CollectStats s = finish_cycle(ms);
    CHECK(s.live_blocks == 3001);
    CHECK(s.freed_blocks == 1000);
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("collect_full during a cycle drops it and frees every unreachable object") {
    Fixture f(incremental());
    auto& [rt, ts, model, ms] = f;
    Node* b = make_node(ts.heap(kGc), 1, 2);
    hang_chain(ts.heap(kGc), b, 0, 3000, 100);
    Node* dropped = make_node(ts.heap(kGc), 2, 0);
    model.roots_ = {b, dropped};
    REQUIRE(!ms.collect().cycle_done);  // dropped is marked by this cycle
    model.roots_.pop_back();
    const gc::CollectStats s = ms.collect_full();
    CHECK(!s.incremental);
    CHECK(!ms.is_marking());
    CHECK(gc_blocks(rt).count(dropped) == 0);
    CHECK(gc_blocks(rt) == reachable(model.roots_));
    ms.write_barrier(b);  // off between cycles: nothing is logged
    CHECK(finish_cycle(ms).live_blocks == 3001);
  }

  TEST_CASE("weak slots and ephemerons met in early steps are settled when the cycle ends") {
    struct WeakModel {
      Node* table = nullptr;  // child[2k] -> key, child[2k+1] -> value (ephemerons)
      Node* holder = nullptr; // child[0]: a weak slot
      std::vector<Node*> strong;
      void roots(gc::Tracer& t) {
        t.mark(table);
        t.mark(holder);
        for (Node* s : strong) t.mark(s);
      }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        if (n == table) {
          for (std::uint32_t i = 0; i + 1 < n->n; i += 2) t.mark_ephemeron(n->child[i], n->child[i + 1]);
        } else if (n == holder) {
          t.mark_weak(reinterpret_cast<void**>(&n->child[0]));
        } else {
          for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
        }
      }
    } model;
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    gc::MarkSweep<WeakModel> ms(rt, model, incremental());
    Heap& h = ts.heap(kGc);
    model.table = make_node(h, 1, 4);
    model.holder = make_node(h, 2, 1);
    Node* long_chain = make_node(h, 3, 1);
    hang_chain(h, long_chain, 0, 5000, 100);
    Node* live_key = make_node(h, 10, 0);
    Node* dead_key = make_node(h, 11, 0);
    model.table->child[0] = live_key;
    model.table->child[1] = make_node(h, 12, 0);
    model.table->child[2] = dead_key;
    model.table->child[3] = make_node(h, 13, 1);
    model.table->child[3]->child[0] = dead_key;  // a value that refers to its own key keeps nothing
    Node* weak_target = make_node(h, 14, 0);
    model.holder->child[0] = weak_target;
    model.strong = {long_chain, live_key};
    REQUIRE(!ms.collect().cycle_done);  // table and holder traced: the ephemerons and the slot are recorded
    finish_cycle(ms);
    const auto blocks = gc_blocks(rt);
    CHECK(model.holder->child[0] == nullptr);
    CHECK(blocks.count(weak_target) == 0);
    CHECK(blocks.count(model.table->child[1]) == 1);  // its key is live
    CHECK(blocks.count(dead_key) == 0);
  }

  TEST_CASE("a cycle starts after half the budget and ends by its window, paced by allocation") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::Options o = incremental(1, 400'000);
    o.min_budget_bytes = 4 << 20;
    o.heap_growth = 1;
    gc::MarkSweep<Model> ms(rt, model, o);
    std::vector<Node*> list;  // a live list that grows, and garbage beside it
    model.roots_.push_back(nullptr);
    std::size_t cycles = 0;
    std::uint64_t allocated_at_end = 0;
    for (std::uint32_t i = 0; i < 400'000; ++i) {
      Node* n = make_node(ts.heap(kGc), i, 1);
      if (i % 4 == 0) {
        n->child[0] = model.roots_[0];
        model.roots_[0] = n;
      }
      if (!ms.collection_due()) continue;
      const std::uint64_t budget = ms.budget_bytes();
      const gc::CollectStats s = ms.collect();
      const std::uint64_t since = rt.allocated_bytes(rt.options().gc_tags) - allocated_at_end;
      // The start comes half-way through the budget; the end by the
      // cycle's budget at the latest: the policy's, or a wider window when
      // the steps need one (counts lag by up to one 64 KiB flush).
      if (s.cycle_pauses == 1) CHECK(since + (64 << 10) >= budget / 2);
      CHECK(s.cycle_budget_bytes >= budget);
      CHECK(since <= s.cycle_budget_bytes + (128 << 10));
      if (s.cycle_done) {
        ++cycles;
        allocated_at_end = rt.allocated_bytes(rt.options().gc_tags);
      }
    }
    CHECK(cycles >= 3);
  }

  TEST_CASE("the first cycle on a runtime that never swept starts without a walk; later ones finish the sweep first") {
    Fixture f(incremental());
    auto& [rt, ts, model, ms] = f;
    std::vector<Node*> all;
    for (std::uint32_t i = 0; i < 5000; ++i) all.push_back(make_node(ts.heap(kGc), i, 2));
    for (std::size_t i = 0; i + 1 < all.size(); ++i) all[i]->child[0] = all[i + 1];
    model.roots_ = {all[0]};
    const gc::CollectStats first = ms.collect();
    CHECK(first.cycle_pauses == 1);
    CHECK(first.pages_swept == 0);  // nothing can be pending yet
    finish_cycle(ms);
    all[2500]->child[0] = nullptr;  // the tail dies
    ms.write_barrier(all[2500]);
    const gc::CollectStats again = ms.collect();
    CHECK(again.cycle_pauses == 1);
    CHECK(again.pages_swept > 0);  // the last cycle's marks are swept before new ones are set
    finish_cycle(ms);
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("a cycle finishes the last lazy sweep in pauses of mark_step_ns, the barrier off, then marks") {
    Fixture f(incremental());  // 1 ns: each sweep pause sweeps one segment
    auto& [rt, ts, model, ms] = f;
    std::vector<Node*> all;  // a chain over several segments
    for (std::uint32_t i = 0; i < 300'000; ++i) all.push_back(make_node(ts.heap(kGc), i, 1));
    for (std::size_t i = 0; i + 1 < all.size(); ++i) all[i]->child[0] = all[i + 1];
    model.roots_ = {all[0]};
    finish_cycle(ms);
    for (std::size_t i = 0; i + 2 < all.size(); i += 2) all[i]->child[0] = all[i + 2];  // odd nodes die
    finish_cycle(ms);  // their blocks are left to the lazy sweep, on every segment
    const auto [pages_before, segments_before] = test::pending_sweep(rt);
    REQUIRE(segments_before >= 3);
    std::size_t sweep_pauses = 0, swept = 0;
    gc::CollectStats s = ms.collect();
    while (!ms.is_marking()) {
      CHECK(!s.cycle_done);
      CHECK(s.mark_ns == 0);
      CHECK(s.cycle_pauses == sweep_pauses + 1);
      swept += s.pages_swept;
      ++sweep_pauses;
      CHECK(test::pending_sweep(rt).pages == pages_before - swept);
      CHECK(test::pending_sweep(rt).pages > 0);  // no sweep pause comes once more for nothing
      REQUIRE(sweep_pauses < 1000);
      s = ms.collect();
    }
    CHECK(s.pages_swept > 0);  // the pause that sweeps the last segment starts marking
    swept += s.pages_swept;
    CHECK(sweep_pauses + 1 >= segments_before);
    CHECK(swept == pages_before);
    CHECK(test::pending_sweep(rt).pages == 0);  // marking began on no pending page: every mark bit is this cycle's
    CHECK(s.cycle_pauses == sweep_pauses + 1);
    const gc::CollectStats last = finish_cycle(ms);
    CHECK(last.cycle_pauses > sweep_pauses + 1);
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("between a cycle's sweep pauses, trim(), a thread's exit and collect_full() lose nothing") {
    Fixture f(incremental());
    auto& [rt, ts, model, ms] = f;
    std::vector<Node*> all;
    for (std::uint32_t i = 0; i < 300'000; ++i) all.push_back(make_node(ts.heap(kGc), i, 2));
    for (std::size_t i = 0; i + 1 < all.size(); ++i) all[i]->child[0] = all[i + 1];
    model.roots_ = {all[0]};
    finish_cycle(ms);
    for (std::size_t i = 0; i + 2 < all.size(); i += 2) all[i]->child[0] = all[i + 2];  // odd nodes die
    finish_cycle(ms);
    gc::CollectStats s = ms.collect();
    REQUIRE(!ms.is_marking());  // a sweep pause
    CHECK(s.pages_swept > 0);
    rt.trim();
    std::thread([&] {  // allocates, links a chain into the graph, exits: its pages are abandoned
      test::AttachedState other(rt);
      hang_chain(other.heap(kGc), all[0], 1, 20'000, 1'000'000);
    }).join();
    s = ms.collect();
    CHECK(!ms.is_marking());
    CHECK(test::pending_sweep(rt).pages > 0);
    const gc::CollectStats full = ms.collect_full();
    CHECK(full.cycle_done);
    const auto live = reachable(model.roots_);
    CHECK(full.live_blocks == live.size());
    CHECK(gc_blocks(rt) == live);
    all[0]->child[1] = nullptr;  // the chain dies; a new cycle sweeps, then marks
    const gc::CollectStats next = finish_cycle(ms);
    CHECK(next.freed_blocks == 20'000);
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("a step over objects slow to trace reads the clock more often, so it stops near its time") {
    // Each trace takes 30 us or more; steps of 1 ms. A step reads the clock
    // first after 16 objects, and each reading that finds more than 20 us
    // gone, with time left, halves the interval: readings after 16, 24, 28,
    // 30, 31, 32, 33 and 34 objects, by when 1.02 ms or more has passed. So
    // no step traces more than 34 objects, where reading the clock every 64
    // would trace 64 (1.9 ms).
    struct SlowModel : Model {
      void trace(void* obj, gc::Tracer& t) {
        std::this_thread::sleep_for(std::chrono::microseconds(30));
        Model::trace(obj, t);
      }
    };
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    SlowModel model;
    gc::MarkSweep<SlowModel> ms(rt, model, incremental(1, 1'000'000));
    Node* head = make_node(ts.heap(kGc), 0, 2);
    hang_chain(ts.heap(kGc), head, 0, 300, 1);
    model.roots_ = {head};
    std::vector<std::size_t> per_pause;
    gc::CollectStats s;
    do {
      const std::size_t before = model.traced.load();
      s = ms.collect();
      per_pause.push_back(model.traced.load() - before);
    } while (!s.cycle_done);
    REQUIRE(per_pause.size() > 3);
    for (std::size_t i = 0; i + 1 < per_pause.size(); ++i) {
      CAPTURE(i);
      CHECK(per_pause[i] >= 1);
      CHECK(per_pause[i] <= 34);
    }
    CHECK(gc_blocks(rt).size() == 301);
  }

  TEST_CASE("collect() from inside a model callback is refused with a clear error, and the collection is undone") {
    struct Reentrant {
      gc::MarkSweep<Reentrant>* ms = nullptr;
      Node* root = nullptr;
      bool nest = true;
      void roots(gc::Tracer& t) { t.mark(root); }
      void trace(void*, gc::Tracer&) {
        if (nest) ms->collect();
      }
    } model;
    for (bool incremental : {false, true}) {
      CAPTURE(incremental);
      Runtime rt({.gc_tags = {kGc}});
      test::AttachedState ts(rt);
      gc::Options o;
      o.incremental = incremental;
      gc::MarkSweep<Reentrant> ms(rt, model, o);
      model.ms = &ms;
      model.nest = true;
      model.root = make_node(ts.heap(kGc), 1, 0);
      for (int i = 0; i < 100; ++i) make_node(ts.heap(kGc), 2 + i, 0);  // garbage
      bool refused = false;
      try {
        ms.collect();
      } catch (const std::logic_error& e) {
        refused = std::string(e.what()).find("while a collection runs") != std::string::npos;
      }
      CHECK(refused);
      CHECK(!ms.is_marking());
      CHECK(gc_blocks(rt).size() == 101);  // nothing freed
      model.nest = false;
      gc::CollectStats s = ms.collect_full();
      CHECK(s.live_blocks == 1);
      CHECK(s.freed_blocks == 100);
    }
  }

  TEST_CASE("collect() from a walk's visitor is refused with a clear error, and the walk goes on") {
    for (bool incremental : {false, true}) {
      CAPTURE(incremental);
      Fixture f(incremental ? gc::Options{.incremental = true} : gc::Options{});
      auto& [rt, ts, model, ms] = f;
      model.roots_ = {make_node(ts.heap(kGc), 1, 0)};
      for (int i = 0; i < 100; ++i) make_node(ts.heap(kGc), 2 + i, 0);  // garbage
      std::size_t visited = 0, refused = 0;
      visit_gc_blocks(rt, [&](const BlockRef&) {
        ++visited;
        try {
          ms.collect();  // the walk holds the runtime's thread list: this used to hang
        } catch (const std::logic_error& e) {
          refused += std::string(e.what()).find("inside a walk of its runtime") != std::string::npos;
        }
        return true;
      });
      CHECK(visited == 101);
      CHECK(refused == 101);
      CHECK(!ms.is_marking());
      const gc::CollectStats s = ms.collect_full();
      CHECK(s.live_blocks == 1);
      CHECK(s.freed_blocks == 100);
    }
  }
}
