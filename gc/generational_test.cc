// Tests of generational collection: sticky mark bits, the write barrier and
// its remembered set, minor and full collections, the verification mode.
// Verdicts are checked against the test's own graph search.
#include <doctest/doctest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/tagheap.h"
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

constexpr Tag kGc = 1;


using Model = test::NodeModel;

gc::Options generational(unsigned markers = 0) {
  gc::Options o;
  o.generational = true;
  o.verify_minor = true;
  o.markers = markers;
  return o;
}

// A list of n one-child nodes; returns its head.
Node* make_list(Heap& heap, std::uint32_t n) {
  Node* list = nullptr;
  for (std::uint32_t i = 0; i < n; ++i) {
    Node* node = make_node(heap, i, 1);
    node->child[0] = list;
    list = node;
  }
  return list;
}

// A generational collector without verify_minor (the tests that use it
// check what the collector itself kept), on a runtime of its own.
struct BarrierHeap {
  Runtime rt{{.gc_tags = {kGc}}};
  test::AttachedState ts{rt};
  Model model;
  gc::MarkSweep<Model> ms;
  explicit BarrierHeap(unsigned markers = 1) : ms(rt, model, options(markers)) {}
  static gc::Options options(unsigned markers) {
    gc::Options o = generational(markers);
    o.verify_minor = false;
    return o;
  }
  Node* node(std::uint32_t id, std::uint32_t children) { return make_node(ts.heap(kGc), id, children); }
  // Stores a new young node into old holder's child[field], followed by the
  // barrier: the minor collection that comes next traces holder again and
  // keeps the node.
  void check_young_kept(Node* holder, std::uint32_t field = 0) {
    Node* young = node(1u << 30, 0);
    holder->child[field] = young;
    ms.write_barrier(holder);
    const gc::CollectStats s = ms.collect();
    CHECK(s.minor);
    CHECK(s.remembered == 1);
    CHECK(gc_blocks(rt).count(young) == 1);
    CHECK(test::intact_payload(young));
  }
};

}  // namespace

TEST_SUITE("gc.generational") {
  TEST_CASE("a minor collection frees unreachable young objects and does not trace old ones") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::Options o = generational();
    o.verify_minor = false;  // it traces everything reachable: the count below is the collector's
    gc::MarkSweep<Model> ms(rt, model, o);
    std::vector<Node*> old;
    for (std::uint32_t i = 0; i < 10000; ++i) old.push_back(make_node(ts.heap(kGc), i, 1));
    for (std::uint32_t i = 0; i + 1 < old.size(); ++i) old[i]->child[0] = old[i + 1];
    model.roots_ = {old[0]};
    gc::CollectStats s = ms.collect();  // the first is full: everything reachable becomes old
    CHECK(!s.minor);
    CHECK(s.live_blocks == 10000);
    // Young garbage and one young survivor hung off a root.
    for (std::uint32_t i = 0; i < 5000; ++i) make_node(ts.heap(kGc), 20000 + i, 0);
    Node* young = make_node(ts.heap(kGc), 30000, 0);
    model.roots_.push_back(young);
    model.traced = 0;
    s = ms.collect();
    CHECK(s.minor);
    CHECK(s.live_blocks == 1);        // only the young survivor was marked
    CHECK(s.freed_blocks == 5000);
    CHECK(model.traced.load() == 1);  // the old list was not traced again
    CHECK(s.old_bytes >= 10001 * 24);
    CHECK(gc_blocks(rt).size() == 10001);
  }

  TEST_CASE("the write barrier keeps a young object stored into an old one") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      Runtime rt({.gc_tags = {kGc}});
      test::AttachedState ts(rt);
      Model model;
      gc::MarkSweep<Model> ms(rt, model, generational(markers));
      Node* holder = make_node(ts.heap(kGc), 1, 2);
      model.roots_ = {holder};
      ms.collect();  // holder is old now
      Node* young = make_node(ts.heap(kGc), 2, 0);
      holder->child[0] = young;
      ms.write_barrier(holder);
      ms.write_barrier(holder);  // logged once
      gc::CollectStats s = ms.collect();
      CHECK(s.minor);
      CHECK(s.remembered == 1);
      CHECK(gc_blocks(rt).count(young) == 1);
      CHECK(test::intact_payload(young));
      // Logged bits are cleared by the minor collection: a later store is logged again.
      Node* young2 = make_node(ts.heap(kGc), 3, 0);
      holder->child[1] = young2;
      ms.write_barrier(holder);
      s = ms.collect();
      CHECK(s.remembered == 1);
      CHECK(gc_blocks(rt).count(young2) == 1);
      // Barriers on young objects are free: nothing is remembered.
      Node* y3 = make_node(ts.heap(kGc), 4, 1);
      y3->child[0] = make_node(ts.heap(kGc), 5, 0);
      ms.write_barrier(y3);
      model.roots_.push_back(y3);
      s = ms.collect();
      CHECK(s.remembered == 0);
      CHECK(s.live_blocks == 2);
    }
  }

  // The barrier tests one unlogged bit per object (gc/mark_sweep.h): the
  // cases where a collection must set it, and the slow path's clearing of
  // the bits a full collection left over young objects.
  TEST_CASE("an object promoted by a minor collection is seen by the barrier afterwards") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      BarrierHeap h(markers);
      h.ms.collect();  // the first, full
      Node* y = h.node(1, 1);
      h.ms.write_barrier(y);  // young: its unlogged bit (if a full collection set it) is cleared
      h.model.roots_ = {y};
      CHECK(h.ms.collect().minor);  // y is old now
      h.check_young_kept(y);
    }
  }

  TEST_CASE("an object that turns old in a full collection is seen by the barrier afterwards") {
    BarrierHeap h;
    h.ms.collect();
    Node* y = h.node(1, 1);
    h.ms.write_barrier(y);  // young: bit cleared
    h.model.roots_ = {y};
    CHECK(!h.ms.collect_full().minor);  // y is old now
    h.check_young_kept(y);
  }

  TEST_CASE("a barrier on a young object next to old ones keeps the old ones' bits") {
    BarrierHeap h;
    for (std::uint32_t i = 0; i < 8; ++i) h.model.roots_.push_back(h.node(i, 1));
    h.ms.collect();  // full: all eight old, every bit of their page set
    Node* old = h.model.roots_[3];
    // The case under test: a young object under one word of unlogged bits
    // with old ones (the allocator fills the free blocks of their page).
    Node* young = nullptr;
    for (std::uint32_t i = 0; i < 4000 && young == nullptr; ++i) {
      Node* n = h.node(100 + i, 1);
      if (&PageView::unlogged_word(n) == &PageView::unlogged_word(old)) young = n;
    }
    REQUIRE(young != nullptr);
    h.ms.write_barrier(young);  // slow path: clears the bits over young objects and free space only
    CHECK((PageView::unlogged_word(young) & PageView::unlogged_bit(young)) == 0);
    for (Node* n : h.model.roots_) CHECK((PageView::unlogged_word(n) & PageView::unlogged_bit(n)) != 0);
    h.check_young_kept(old);
  }

  TEST_CASE("the barrier sees old holders of every page kind: small, medium, large, huge") {
    BarrierHeap h;
    // 2 KiB, 16 KiB, 128 KiB, 1 MiB objects.
    for (std::uint32_t n : {250u, 2000u, 16000u, 130000u}) h.model.roots_.push_back(h.node(n, n));
    h.ms.collect();  // full: all old
    const std::vector<Node*> holders = h.model.roots_;
    for (std::uint32_t field = 0; field < 3; ++field)
      for (Node* holder : holders) h.check_young_kept(holder, field);
  }

  TEST_CASE("a barrier on another runtime's old object changes neither collector's state") {
    BarrierHeap theirs;
    Node* their_old = theirs.node(1, 1);
    theirs.model.roots_ = {their_old};
    theirs.ms.collect();  // full: their_old is old, its unlogged bit set
    theirs.ts.ts.detach();  // one attached thread state per OS thread
    {
      BarrierHeap mine;
      mine.ms.collect();
      mine.ms.write_barrier(their_old);  // the wrong collector: ignored
      CHECK((PageView::unlogged_word(their_old) & PageView::unlogged_bit(their_old)) != 0);
      const gc::CollectStats s = mine.ms.collect();
      CHECK(s.minor);
      CHECK(s.remembered == 0);
    }
    theirs.ts.ts.attach();
    theirs.check_young_kept(their_old);  // their own barrier still remembers it
  }

  TEST_CASE("a missing write barrier is caught by the verification, naming the holder") {
    const test::ChildResult r = test::run_in_child([] {
      Runtime rt({.gc_tags = {kGc}});
      test::AttachedState ts(rt);
      Model model;
      gc::MarkSweep<Model> ms(rt, model, generational(1));
      Node* holder = make_node(ts.heap(kGc), 1, 1);
      model.roots_ = {holder};
      ms.collect();
      holder->child[0] = make_node(ts.heap(kGc), 2, 0);  // no write_barrier(holder)
      ms.collect();
    });
    CHECK(!r.exited);
    CHECK(r.err.find("a store into") != std::string::npos);
    CHECK(r.err.find("write_barrier") != std::string::npos);
  }

  TEST_CASE("a full collection frees unreachable old objects, and comes when old space has grown") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::Options o = generational(2);
    o.heap_growth = 1.0;
    o.min_budget_bytes = 256 << 10;
    gc::MarkSweep<Model> ms(rt, model, o);
    Node* list = nullptr;
    std::size_t fulls = 0, minors = 0;
    for (int round = 0; round < 60; ++round) {
      // Each round promotes a chunk and drops the older half of the list.
      for (std::uint32_t i = 0; i < 2000; ++i) {
        Node* n = make_node(ts.heap(kGc), i, 1);
        n->child[0] = list;
        list = n;
      }
      model.roots_ = {list};
      const gc::CollectStats s = ms.collect();
      (s.minor ? minors : fulls) += 1;
      if (round % 10 == 9) {
        // Cut the list: the old tail is garbage, freed only by a full one.
        Node* cut = list;
        for (int k = 0; k < 1000 && cut->child[0]; ++k) cut = cut->child[0];
        cut->child[0] = nullptr;
        ms.write_barrier(cut);
      }
    }
    CHECK(minors > fulls);
    CHECK(fulls >= 2);
    const gc::CollectStats s = ms.collect_full();
    CHECK(!s.minor);
    CHECK(s.live_blocks == reachable(model.roots_).size());
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("minor collections come every nursery_growth x old bytes of allocation, full ones by heap_growth") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::Options o = generational(1);
    o.heap_growth = 1.0;
    o.nursery_growth = 0.25;
    o.min_budget_bytes = 64 << 10;
    gc::MarkSweep<Model> ms(rt, model, o);
    model.roots_ = {make_list(ts.heap(kGc), 50'000)};
    const gc::CollectStats first = ms.collect();
    REQUIRE(!first.minor);  // the first is full
    const std::size_t old = first.old_bytes;
    REQUIRE(old > (1 << 20));
    CHECK(ms.budget_bytes() == old / 4);
    // Garbage until a collection is due: a quarter of the old bytes, within
    // one 64 KiB flush of the allocation count.
    const TagSet gc_tags = rt.options().gc_tags;
    const std::uint64_t start = rt.allocated_bytes(gc_tags);
    while (!ms.collection_due()) make_node(ts.heap(kGc), 0, 1);
    const std::uint64_t nursery = rt.allocated_bytes(gc_tags) - start;
    CHECK(nursery >= old / 4);
    CHECK(nursery <= old / 4 + (64 << 10));
    const gc::CollectStats minor = ms.collect();
    CHECK(minor.minor);
    CHECK(minor.old_bytes == old);  // the garbage died young
    CHECK(ms.budget_bytes() == old / 4);
  }

  TEST_CASE("after full_after_minors minor collections in a row the next is full, and old data that died goes") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::Options o = generational(1);
    o.full_after_minors = 3;
    gc::MarkSweep<Model> ms(rt, model, o);
    model.roots_ = {make_list(ts.heap(kGc), 20'000), make_list(ts.heap(kGc), 20'000)};
    REQUIRE(!ms.collect().minor);  // the first is full: both lists old
    const std::size_t both = ms.collect().old_bytes;
    model.roots_.pop_back();  // half the old data dies, and the old bytes never grow again
    std::vector<bool> minor;
    std::vector<std::size_t> old;
    for (int i = 0; i < 8; ++i) {
      for (int j = 0; j < 1000; ++j) make_node(ts.heap(kGc), 0, 1);  // young garbage
      const gc::CollectStats s = ms.collect();
      minor.push_back(s.minor);
      old.push_back(s.old_bytes);
    }
    // The collection before the loop was the first minor in a row.
    CHECK(minor == std::vector<bool>{true, true, false, true, true, true, false, true});
    CHECK(old[0] == both);      // a minor keeps the dead old list
    CHECK(old[2] < both * 3 / 4);  // the full lets it go
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("with full_after_minors at 0, collections stay minor while the old bytes do not grow") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::Options o = generational(1);
    o.full_after_minors = 0;
    gc::MarkSweep<Model> ms(rt, model, o);
    model.roots_ = {make_list(ts.heap(kGc), 20'000)};
    REQUIRE(!ms.collect().minor);
    for (int i = 0; i < 50; ++i) {
      for (int j = 0; j < 200; ++j) make_node(ts.heap(kGc), 0, 1);
      CHECK(ms.collect().minor);
    }
  }

  TEST_CASE("a nursery_growth that is not positive (0, negative, NaN) sizes the nursery by heap_growth") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    for (double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
      CAPTURE(bad);
      gc::Options o = generational(1);
      o.heap_growth = 2.0;
      o.nursery_growth = bad;
      o.min_budget_bytes = 64 << 10;
      gc::MarkSweep<Model> ms(rt, model, o);
      model.roots_ = {make_list(ts.heap(kGc), 40'000)};
      const gc::CollectStats s = ms.collect();
      CHECK(ms.budget_bytes() == 2 * s.old_bytes);
      model.roots_.clear();
      ms.collect_full();
    }
  }

  TEST_CASE("an old object freed by hand leaves no old bit to the next object in its place") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    gc::MarkSweep<Model> ms(rt, model, generational(1));
    Node* a = make_node(ts.heap(kGc), 1, 1);
    model.roots_ = {a};
    ms.collect();  // a is old
    model.roots_.clear();
    tagheap::free(a);
    Node* b = make_node(ts.heap(kGc), 2, 1);  // most likely a's block again
    b->child[0] = make_node(ts.heap(kGc), 3, 0);
    model.roots_ = {b};
    const gc::CollectStats s = ms.collect();
    CHECK(s.minor);
    CHECK(s.live_blocks == 2);  // b was young, so it was traced
    CHECK(gc_blocks(rt).count(b->child[0]) == 1);
  }

  TEST_CASE("a remembered old object freed by hand, its segment then unmapped, is skipped by the next collection") {
    BarrierHeap h;
    Node* big = h.node(1, 130000);  // about 1 MiB: a huge block, a segment of its own
    h.model.roots_ = {big};
    h.ms.collect();  // big is old
    big->child[0] = h.node(2, 0);
    h.ms.write_barrier(big);  // remembered
    h.model.roots_.clear();
    tagheap::free(big);
    h.rt.trim();  // the emptied huge segment goes back to the OS
    const auto page_of_big = reinterpret_cast<std::uintptr_t>(big) & ~std::uintptr_t{4095};
    REQUIRE(msync(reinterpret_cast<void*>(page_of_big), 4096, MS_ASYNC) != 0);  // unmapped
    const gc::CollectStats s = h.ms.collect();
    CHECK(s.minor);
    CHECK(s.remembered == 1);
    CHECK(s.live_blocks == 0);
  }

  TEST_CASE("a remembered old object freed by hand, its page reused by another size class, is not traced") {
    BarrierHeap h;
    // 48-byte nodes until one starts a second page: that one is a, the
    // next b, at the page's second block.
    Node* first = h.node(1, 4);
    REQUIRE(PageView::of(first).block_size() == 48);
    Node* a = first;
    for (std::uint32_t id = 2; PageView::of(a).address() == PageView::of(first).address(); ++id) a = h.node(id, 4);
    Node* b = h.node(0, 4);
    REQUIRE(PageView::of(b).index_of(b) == 1);
    h.model.roots_ = {a, b};
    h.ms.collect();  // a and b are old, the first page's nodes freed
    b->child[0] = h.node(3, 0);
    h.ms.write_barrier(b);  // remembered
    h.model.roots_.clear();
    const std::uintptr_t page_of_b = PageView::of(b).address();
    tagheap::free(a);
    tagheap::free(b);  // empty, and not its class's last page: it goes back to its segment
    // 64-byte nodes until one lands on b's old page: b's address is then
    // 48 bytes into the first of them, at its child[4].
    std::vector<Node*> xs;
    Node* over_b = nullptr;
    for (int k = 0; k < 5000 && over_b == nullptr; ++k) {
      Node* x = h.node(100 + k, 5);
      xs.push_back(x);
      const auto at = reinterpret_cast<std::uintptr_t>(x);
      if (PageView::of(x).address() == page_of_b && at < reinterpret_cast<std::uintptr_t>(b) &&
          reinterpret_cast<std::uintptr_t>(b) < at + 64)
        over_b = x;
    }
    REQUIRE(over_b != nullptr);
    REQUIRE(PageView::of(over_b).block_size() == 64);
    // Read as a Node, b's old address now has a pointer's upper half as its
    // child count and the next object's header as children: tracing it
    // would read past the page and mark words that are no blocks.
    over_b->child[4] = xs.front();
    h.model.roots_.assign(xs.begin(), xs.end());
    const gc::CollectStats s = h.ms.collect();
    CHECK(s.minor);
    CHECK(s.remembered == 1);
    CHECK(s.live_blocks == xs.size());  // b's young child went with b
    for (Node* x : xs) CHECK(test::intact_payload(x));
  }

  TEST_CASE("random rewiring with barriers: minor collections never free a reachable object") {
    for (unsigned markers : {1u, 2u}) {
      CAPTURE(markers);
      Runtime rt({.gc_tags = {kGc}});
      test::AttachedState ts(rt);
      Model model;
      gc::Options o = generational(markers);
      o.min_budget_bytes = 64 << 10;
      gc::MarkSweep<Model> ms(rt, model, o);
      std::mt19937 rng(markers);
      std::vector<Node*> nodes;  // everything that may still be reachable
      for (std::uint32_t i = 0; i < 3000; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 3));
      model.roots_.assign(nodes.begin(), nodes.begin() + 20);
      std::size_t minors = 0;
      for (int step = 0; step < 40; ++step) {
        // Stores with barriers: old -> young and old -> old.
        for (int k = 0; k < 500; ++k) {
          Node* from = nodes[rng() % nodes.size()];
          Node* to = rng() % 3 == 0 ? make_node(ts.heap(kGc), 100000 + k, 3) : nodes[rng() % nodes.size()];
          if (to->id >= 100000) nodes.push_back(to);
          from->child[rng() % 3] = rng() % 5 == 0 ? nullptr : to;
          ms.write_barrier(from);
        }
        const auto live = reachable(model.roots_);
        const gc::CollectStats s = ms.collect();  // verify_minor checks after each minor
        minors += s.minor;
        const auto after = gc_blocks(rt);
        for (void* p : live) REQUIRE(after.count(p) == 1);
        if (!s.minor) CHECK(after == live);
        // Forget what died (a full collection may have freed it).
        std::vector<Node*> still;
        for (Node* n : nodes)
          if (live.count(n)) still.push_back(n);
        nodes.swap(still);
      }
      CHECK(minors > 10);
    }
  }

  TEST_CASE("a weak slot in an old object sees its young referent die in a minor collection") {
    struct WeakModel {
      Node* holder = nullptr;
      void roots(gc::Tracer& t) { t.mark(holder); }
      void trace(void* obj, gc::Tracer& t) {
        auto* n = static_cast<Node*>(obj);
        t.mark_weak(reinterpret_cast<void**>(&n->child[0]));
      }
    } model;
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    gc::MarkSweep<WeakModel> ms(rt, model, gc::Options{.generational = true, .verify_minor = true});
    model.holder = make_node(ts.heap(kGc), 1, 1);
    ms.collect();  // holder is old
    model.holder->child[0] = make_node(ts.heap(kGc), 2, 0);
    ms.write_barrier(model.holder);  // a weak store is a store: the VM calls the barrier
    const gc::CollectStats s = ms.collect();
    CHECK(s.minor);
    CHECK(model.holder->child[0] == nullptr);
  }

  TEST_CASE("barriers from several threads on shared old objects lose no young object") {
    Runtime rt({.gc_tags = {kGc}});
    Model model;
    gc::MarkSweep<Model> ms(rt, model, generational(2));
    std::vector<Node*> holders;
    {
      test::AttachedState ts(rt);
      for (std::uint32_t i = 0; i < 256; ++i) holders.push_back(make_node(ts.heap(kGc), i, 4));
    }
    model.roots_ = holders;
    ms.collect();
    // Two threads store young objects into the same old holders (different
    // fields), each followed by the barrier; then a minor collection.
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        ThreadState mine(rt);
        mine.attach();
        for (int round = 0; round < 4; ++round)
          for (std::uint32_t i = 0; i < holders.size(); ++i) {
            holders[i]->child[t * 2 + round % 2] = make_node(mine.heap(kGc), 1000 + i, 0);
            ms.write_barrier(holders[i]);
          }
        mine.detach();
      });
    for (auto& th : threads) th.join();
    const gc::CollectStats s = ms.collect();
    CHECK(s.minor);
    CHECK(s.remembered == holders.size());
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }

  TEST_CASE("a collector made after a generational one on the same runtime finds no stale old bits") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    Model model;
    Node* a = make_node(ts.heap(kGc), 1, 1);
    model.roots_ = {a};
    {
      gc::MarkSweep<Model> gen(rt, model, generational(1));
      gen.collect();  // a is old: its mark bit stays
    }
    a->child[0] = make_node(ts.heap(kGc), 2, 0);  // no barrier: no generational collector any more
    gc::MarkSweep<Model> plain(rt, model, gc::Options{.markers = 1});
    const gc::CollectStats s = plain.collect();
    CHECK(s.live_blocks == 2);  // a traced again, so its new child too
    CHECK(gc_blocks(rt) == reachable(model.roots_));
  }
}
