// Tests of the tracer's conservative lookups as a model that scans words
// sees them: the last page a marker hit (Tracer's LastPage), which a word
// in the same page skips the segment map through, and the lookup scope the
// collector lends the model's calls (Tracer::lookup_scope). Verdicts are
// checked against the test's own bookkeeping.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <unordered_set>
#include <vector>

#include "alloc/heap_walk.h"
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

constexpr Tag kGc = 1, kData = 2, kLeaves = 3;

// Nodes whose children are scanned as words, under the collector's scope;
// `words` are conservative roots, and what each returned in every pause is
// kept. Counts objects traced that are not of tag kGc (never, if the
// tracer judged every word by the page it is in now).
struct WordModel {
  std::vector<Node*> exact_roots;
  std::vector<std::uintptr_t> words;
  std::vector<std::pair<void*, void*>> ephemerons;  // (key, value), marked with the roots
  std::vector<std::vector<bool>> hits;  // per pause, per word
  std::atomic<std::size_t> foreign_traced{0};
  void roots(gc::Tracer& t) {
    const BlockLookupScope& scope = t.lookup_scope();
    for (Node* r : exact_roots) t.mark(r);
    for (auto [key, value] : ephemerons) t.mark_ephemeron(key, value);
    std::vector<bool> h;
    for (std::uintptr_t w : words) h.push_back(t.mark_conservative(scope, w));
    hits.push_back(h);
  }
  void trace(void* obj, gc::Tracer& t) {
    if (PageView::of(obj).tag() != kGc) foreign_traced.fetch_add(1, std::memory_order_relaxed);
    const BlockLookupScope& scope = t.lookup_scope();
    auto* n = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < n->n; ++i) t.mark_conservative(scope, reinterpret_cast<std::uintptr_t>(n->child[i]));
  }
  void finalize(void*) noexcept {}
};

gc::Options options(unsigned markers) {
  gc::Options o;
  o.markers = markers;
  o.leaf_tags = {kLeaves};
  return o;
}

TEST_SUITE("gc.conservative_lookup") {
  TEST_CASE("a word in the page the last hit was in is judged as any other word") {
    Runtime rt({.gc_tags = {kGc, kLeaves}});
    test::AttachedState ts(rt);
    WordModel model;
    gc::MarkSweep ms(rt, model, options(1));
    // Eight 32-byte nodes side by side on one page; the fifth is freed.
    std::vector<Node*> nodes;
    for (std::uint32_t i = 0; i < 8; ++i) nodes.push_back(make_node(ts.heap(kGc), i, 2));
    const PageView page = PageView::of(nodes[0]);
    for (Node* n : nodes) REQUIRE(PageView::of(n).raw() == page.raw());
    tagheap::free(nodes[4]);
    const auto at = [](void* p, std::uintptr_t offset) { return reinterpret_cast<std::uintptr_t>(p) + offset; };
    // The first word puts the page in the tracer's hand; the others follow
    // it: an interior word, the freed block, the page's last block (never
    // allocated), a word of another tag's page, an interior word again.
    void* data = ts.heap(kData).allocate(32);
    model.words = {at(nodes[0], 0), at(nodes[1], 31), at(nodes[4], 0), at(nodes[4], 17),
                   at(page.block(page.block_count() - 1), 0), at(data, 0), at(nodes[2], 8)};
    const gc::CollectStats s = ms.collect();
    REQUIRE(model.hits.size() == 1);
    CHECK(model.hits[0] == std::vector<bool>{true, true, false, false, false, false, true});
    CHECK(s.roots_conservative == 3);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>{nodes[0], nodes[1], nodes[2]});
    CHECK(model.foreign_traced == 0);
    tagheap::free(data);
  }

  TEST_CASE("the model's roots and trace run under the collector's lookup scope on every path") {
    // Helpers' jobs (2 markers), a mark stack of two entries (overflow: the
    // pages' marked objects traced again), an ephemeron (its value traced
    // as the ephemerons settle, after the markers' jobs), finalizable
    // objects (traced while marking for finalization), incremental pauses
    // and their verification. Without a scope lent on one of these paths,
    // lookup_scope() fails (fatal in the checked build).
    for (const bool incremental : {false, true}) {
      for (const unsigned markers : {1u, 2u}) {
        CAPTURE(incremental);
        CAPTURE(markers);
        Runtime rt({.gc_tags = {kGc, kLeaves}});
        test::AttachedState ts(rt);
        WordModel model;
        gc::Options o = options(markers);
        o.incremental = incremental;
        o.verify_incremental = incremental;
        o.mark_step_ns = 1;
        gc::MarkSweep ms(rt, model, o);
        ms.limit_mark_stack(2);
        // A binary tree of 511 nodes from the roots, and 20 unreachable
        // finalizable pairs.
        std::vector<Node*> tree;
        for (std::uint32_t i = 0; i < 511; ++i) tree.push_back(make_node(ts.heap(kGc), i, 2));
        for (std::size_t i = 0; 2 * i + 2 < tree.size(); ++i) {
          tree[i]->child[0] = tree[2 * i + 1];
          tree[i]->child[1] = tree[2 * i + 2];
        }
        model.exact_roots = {tree[0]};
        Node* value = make_node(ts.heap(kGc), 3000, 1);
        value->child[0] = make_node(ts.heap(kGc), 3001, 0);
        model.ephemerons = {{tree[510], value}};
        std::unordered_set<void*> expected(tree.begin(), tree.end());
        expected.insert(value);
        expected.insert(value->child[0]);
        int finalized = 0;
        for (std::uint32_t i = 0; i < 20; ++i) {
          Node* head = make_node(ts.heap(kGc), 1000 + i, 1);
          head->child[0] = make_node(ts.heap(kGc), 2000 + i, 0);
          ms.register_finalizer(head, [](void*, void* count) { ++*static_cast<int*>(count); }, &finalized);
          expected.insert(head);
          expected.insert(head->child[0]);
        }
        gc::CollectStats s;
        do {
          s = ms.collect();
        } while (!s.cycle_done && incremental);
        CHECK(s.finalizers_queued == 20);
        CHECK(gc_blocks(rt) == expected);  // the finalizable pairs wait for their finalizers
        CHECK(ms.run_finalizers() == 20);
        CHECK(finalized == 20);
        CHECK(model.foreign_traced == 0);
      }
    }
  }

  TEST_CASE("lookup_scope() between an incremental cycle's pauses is a clear error") {
    // The cycle's tracer lives from pause to pause; the scope it was lent
    // does not.
    const test::ChildResult r = test::run_in_child([] {
      struct KeepingModel : WordModel {
        gc::Tracer* kept = nullptr;
        void roots(gc::Tracer& t) {
          kept = &t;
          WordModel::roots(t);
        }
      };
      Runtime rt({.gc_tags = {kGc, kLeaves}});
      test::AttachedState ts(rt);
      KeepingModel model;
      gc::Options o = options(1);
      o.incremental = true;
      o.mark_step_ns = 1;  // 64 objects a pause
      gc::MarkSweep ms(rt, model, o);
      std::vector<Node*> chain;
      for (std::uint32_t i = 0; i < 1000; ++i) chain.push_back(make_node(ts.heap(kGc), i, 1));
      for (std::size_t i = 0; i + 1 < chain.size(); ++i) chain[i]->child[0] = chain[i + 1];
      model.exact_roots = {chain[0]};
      const gc::CollectStats s = ms.collect();  // the cycle's first pause
      if (s.cycle_done || model.kept == nullptr) _exit(3);
      std::fprintf(stderr, "between pauses\n");
      (void)model.kept->lookup_scope();
      _exit(4);  // not reached
    });
    CHECK(!r.exited);
    CHECK(r.err.find("between pauses") != std::string::npos);
    CHECK(r.err.find("lookup_scope() outside the collector's") != std::string::npos);
  }

  TEST_CASE("a page released between an incremental cycle's pauses and taken by another tag is not marked") {
    // Every pause starts with the roots: the word w into a leaf page X,
    // which the last pause ended in (each chain node's last word points
    // there). Between two pauses X's blocks are freed, X goes back to its
    // segment and a non-GC tag takes it: the next pause's first lookup of
    // w must see a page of tag kData, not the page the tracer last hit.
    Runtime rt({.gc_tags = {kGc, kLeaves}});
    test::AttachedState ts(rt);
    WordModel model;
    gc::Options o = options(1);
    o.incremental = true;
    o.verify_incremental = true;
    o.mark_step_ns = 1;  // 64 objects a pause
    gc::MarkSweep ms(rt, model, o);
    // Leaves: page X full of 64-byte blocks, and a second page of the same
    // class, so X is not the last page of its class when it empties.
    std::vector<void*> x_blocks, kept_leaves;
    void* first = ts.heap(kLeaves).allocate(64);
    x_blocks.push_back(first);
    const internal::Page* x_page = PageView::of(first).raw();
    for (;;) {
      void* b = ts.heap(kLeaves).allocate(64);
      REQUIRE(b != nullptr);
      if (PageView::of(b).raw() != x_page) {
        kept_leaves.push_back(b);
        break;
      }
      x_blocks.push_back(b);
    }
    // A chain of 2,000 nodes: child 0 the next node, child 1 a leaf on X.
    std::vector<Node*> chain;
    for (std::uint32_t i = 0; i < 2000; ++i) chain.push_back(make_node(ts.heap(kGc), i, 2));
    for (std::size_t i = 0; i < chain.size(); ++i) {
      chain[i]->child[0] = i + 1 < chain.size() ? chain[i + 1] : nullptr;
      chain[i]->child[1] = static_cast<Node*>(x_blocks[i % x_blocks.size()]);
    }
    const auto w = reinterpret_cast<std::uintptr_t>(first);
    model.exact_roots = {chain[0]};
    model.words = {w};
    gc::CollectStats s = ms.collect();  // the cycle's first pause
    REQUIRE_FALSE(s.cycle_done);
    CHECK(model.hits.back() == std::vector<bool>{true});
    // X empties, leaves its heap, and kData takes it.
    for (Node* n : chain) n->child[1] = nullptr;
    for (void* b : x_blocks) tagheap::free(b);
    std::vector<void*> data;
    while (find_block(first) == nullptr) {
      data.push_back(ts.heap(kData).allocate(64));
      REQUIRE(data.size() < (std::size_t{64} << 20) / 64);
    }
    REQUIRE(PageView::of(find_block(first)).tag() == kData);
    const std::size_t pauses_before = model.hits.size();
    do {
      s = ms.collect();
    } while (!s.cycle_done);
    // The pauses after, and the verification's roots last (its tracer
    // reports every block it looks at, of any tag).
    REQUIRE(model.hits.size() > pauses_before + 1);
    for (std::size_t p = pauses_before; p + 1 < model.hits.size(); ++p) {
      CAPTURE(p);
      CHECK(model.hits[p] == std::vector<bool>{false});
    }
    CHECK(model.foreign_traced == 0);
    CHECK(gc_blocks(rt) == std::unordered_set<void*>(chain.begin(), chain.end()));  // the second leaf page's block was unreachable
    for (void* d : data) tagheap::free(d);
  }
}

}  // namespace
