// Tests of root pieces (gc::MarkSweep's HasRootPieces): roots that every
// marker scans, claimed one piece at a time. Every piece is marked exactly
// once in every marking round, whichever helpers take part; an exception
// from a piece undoes the collection; an incremental cycle marks the pieces
// again in each pause.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/test_graph.h"
#include "tests/test_util.h"

using namespace tagheap;

namespace {

constexpr Tag kNodes = 1;
using test::gc_blocks, test::make_node, test::Node, test::reachable;

// Roots only in pieces: roots() marks nothing. Counts how often each piece
// was marked and how many rounds asked for pieces.
struct PieceModel {
  std::vector<std::vector<Node*>> pieces;
  std::unique_ptr<std::atomic<int>[]> marked_times;  // per piece, since the last reset()
  std::atomic<int> rounds{0};
  std::size_t throw_at = SIZE_MAX;  // mark_root_piece of this piece throws
  bool count_throws = false;        // root_pieces() throws
  gc::MarkSweep<PieceModel>* collect_from_piece = nullptr;  // mark_root_piece calls its collect()

  void reset() {
    marked_times = std::make_unique<std::atomic<int>[]>(pieces.size());
    rounds = 0;
  }
  std::size_t root_pieces() {
    if (count_throws) throw std::runtime_error("count failed");
    ++rounds;
    return pieces.size();
  }
  void mark_root_piece(std::size_t i, gc::Tracer& t) {
    REQUIRE(i < pieces.size());
    if (i == throw_at) throw std::runtime_error("piece failed");
    if (collect_from_piece != nullptr) collect_from_piece->collect();
    marked_times[i].fetch_add(1, std::memory_order_relaxed);
    for (Node* n : pieces[i]) t.mark(n);
  }
  void roots(gc::Tracer&) {}
  void trace(void* obj, gc::Tracer& t) {
    auto* n = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < n->n; ++i) t.mark(n->child[i]);
  }
  std::vector<Node*> all_roots() const {
    std::vector<Node*> all;
    for (const auto& p : pieces) all.insert(all.end(), p.begin(), p.end());
    return all;
  }
};

gc::Options with_markers(unsigned markers) {
  gc::Options o;
  o.markers = markers;
  o.parallel_mark_bytes = 0;  // helpers mark even a small heap
  return o;
}

// A random graph of `count` nodes, three children each, and `piece_count`
// pieces holding a few of them.
std::vector<Node*> random_graph(Heap& heap, PieceModel& model, std::uint32_t count, std::size_t piece_count,
                                std::mt19937& rng) {
  std::vector<Node*> nodes;
  for (std::uint32_t i = 0; i < count; ++i) nodes.push_back(make_node(heap, i, 3));
  for (Node* n : nodes)
    for (std::uint32_t c = 0; c < 3; ++c)
      if (rng() % 5 != 0) n->child[c] = nodes[rng() % nodes.size()];
  model.pieces.assign(piece_count, {});
  for (auto& piece : model.pieces)
    for (int k = 0; k < 3; ++k)
      if (rng() % 4 != 0) piece.push_back(nodes[rng() % nodes.size()]);
  model.reset();
  return nodes;
}

gc::Options incremental_with_markers(unsigned markers) {
  gc::Options o = with_markers(markers);
  o.incremental = true;
  o.verify_incremental = true;
  o.mark_step_ns = 1;  // every step stops at its first time check
  return o;
}

using Fixture = test::CollectorFixture<PieceModel, kNodes>;

}  // namespace

TEST_SUITE("gc.root_pieces") {
  TEST_CASE("every root piece is marked exactly once in every collection, with 1, 2 and 8 markers") {
    for (unsigned markers : {1u, 2u, 8u}) {
      CAPTURE(markers);
      Fixture f(with_markers(markers));
      auto& [rt, ts, model, ms] = f;
      std::mt19937 rng(markers);
      random_graph(f.heap(), model, 20'000, 300, rng);
      for (int round = 1; round <= 3; ++round) {
        CAPTURE(round);
        const std::unordered_set<void*> live = reachable(model.all_roots());
        REQUIRE(!live.empty());
        ms.collect();
        CHECK(gc_blocks(rt) == live);
        CHECK(model.rounds == round);
        for (std::size_t i = 0; i < model.pieces.size(); ++i) CHECK(model.marked_times[i] == round);
        // Fewer roots next time: what only the dropped pieces held goes.
        model.pieces.resize(model.pieces.size() / 2);
      }
      model.pieces.clear();
      model.reset();
      ms.collect();
      CHECK(gc_blocks(rt).empty());
    }
  }

  TEST_CASE("a piece or a count that throws, or a collection asked for from a piece, keeps every block") {
    Fixture f(with_markers(2));
    auto& [rt, ts, model, ms] = f;
    std::mt19937 rng(7);
    random_graph(f.heap(), model, 5'000, 40, rng);
    const std::unordered_set<void*> everything = gc_blocks(rt);
    model.throw_at = 17;
    CHECK_THROWS_AS(ms.collect(), std::runtime_error);
    CHECK(gc_blocks(rt) == everything);
    model.throw_at = SIZE_MAX;
    model.count_throws = true;
    CHECK_THROWS_AS(ms.collect(), std::runtime_error);
    CHECK(gc_blocks(rt) == everything);
    model.count_throws = false;
    model.collect_from_piece = &ms;  // on whichever marker claims it
    CHECK_THROWS_AS(ms.collect(), std::logic_error);
    CHECK(gc_blocks(rt) == everything);
    model.collect_from_piece = nullptr;
    // The next collection is exact.
    const std::unordered_set<void*> live = reachable(model.all_roots());
    REQUIRE(live.size() < everything.size());
    ms.collect();
    CHECK(gc_blocks(rt) == live);
  }

  TEST_CASE("an incremental cycle marks the root pieces again in its last pause") {
    Fixture f(incremental_with_markers(2));
    auto& [rt, ts, model, ms] = f;
    std::mt19937 rng(3);
    std::vector<Node*> nodes = random_graph(f.heap(), model, 20'000, 50, rng);
    // A node no piece holds at the start, nor any node points to.
    Node* late = make_node(f.heap(), 999'999, 0);
    for (Node* n : nodes)
      for (std::uint32_t c = 0; c < n->n; ++c) REQUIRE(n->child[c] != late);
    gc::CollectStats s = ms.collect();
    REQUIRE(!s.cycle_done);
    // The mutator moves `late` into a piece: only a later pause's pieces can
    // find it (no barrier: pieces are roots).
    model.pieces[0].push_back(late);
    int pauses = 1;
    do {
      s = ms.collect();
      ++pauses;
    } while (!s.cycle_done);
    // The first pause, the last, and the verification's stop-the-world mark.
    CHECK(model.rounds >= 3);
    CHECK(model.rounds <= pauses + 1);
    CHECK(gc_blocks(rt).count(late) == 1);
    CHECK(gc_blocks(rt) == reachable(model.all_roots()));
  }

  TEST_CASE("the verification marks from the root pieces too: a store without write_barrier under one is caught") {
    const test::ChildResult r = test::run_in_child([] {
      Fixture f(incremental_with_markers(1));
      auto& [rt, ts, model, ms] = f;
      // A long chain under b, the one root, held by a piece: b is traced in
      // the first pause, the chain takes many more.
      Node* b = make_node(f.heap(), 1, 2);
      Node* prev = b;
      for (std::uint32_t i = 0; i < 10'000; ++i) {
        Node* c = make_node(f.heap(), 100 + i, 1);
        prev->child[0] = c;
        prev = c;
      }
      model.pieces = {{b}};
      model.reset();
      REQUIRE(!ms.collect().cycle_done);
      b->child[1] = make_node(f.heap(), 2, 0);  // no barrier: the test-only mistake
      while (!ms.collect().cycle_done) {
      }
    });
    CHECK(!r.exited);
    CHECK(r.err.find("incremental cycle did not trace again") != std::string::npos);
  }
}
