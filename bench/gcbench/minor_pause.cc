// minor_pause: the pause of a minor (generational) collection against a
// large old heap, and of a full one over the same heap for contrast.
//
//   minor_pause_tagheap <old_mib> [young_mib] [garbage_mib] [collections] [per_store] [fulls]
//   defaults:            100       1           8             20            16          3
//
// Builds a complete binary tree of 24-byte GC nodes (left, right, payload;
// 32-byte blocks) holding <old_mib> MiB of nodes, makes it old with
// collect_full(), then runs <collections> rounds. Each round allocates
// <young_mib> MiB of young nodes that survive, as small trees of
// <per_store> nodes each hung off an old leaf (a store into the old leaf and
// write_barrier(leaf), as a VM would; the leaves are picked at random, so
// the stores spread over the old pages), interleaved with <garbage_mib> MiB
// of young garbage nodes, then times collect(): a minor one (one the policy
// makes full, when the old bytes pass its threshold, is counted apart as
// fulls_due). Last, <fulls> collect_full() on the same heap (0 for a profile
// of the minor ones alone).
// The check, at the end: the tree holds exactly the old nodes and every
// round's survivors, each once, each a live block (find_block) with its own
// payload; a survivor freed (reused by garbage or a later survivor, or not)
// fails the run, exit 1. GCB_OMIT_BARRIER=1 leaves out the write barrier,
// to see the check fail. GCB_VERIFY_MINOR=1 turns on Options::verify_minor
// (a mark from the roots after each minor collection, inside the timed
// pause: for checking, not for timing).
//
// Options: gc::Options{} with generational = true and the GCB_* overrides
// of variant.h (GCB_MARKERS, GCB_GROWTH, GCB_MIN_MIB).
//
// Prints:
//   minor_pause_<old>MiB tagheap <median_ms> <peak_rss_kib> min_ms=.. max_ms=.. n=.. full_ms=.. remembered=..
//     young_kib=.. pages_swept=.. pages_to_sweep=.. markers=..
// and '#' lines with each phase's median, from a GcListener on the
// collector's events (events.h): the previous lazy sweep finished in the
// pause, roots and remembered set, marking, after marking (weak processing,
// finalizers, counting the dead), handing the marks to the lazy sweep.
// With GCB_PAUSE_LOG=FILE, each timed collection as "kind,pause_ms,phases..".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <random>
#include <vector>

#include "bench/gcbench/tree_node.h"
#include "bench/gcbench/variant.h"

#if !defined(GCB_TAGHEAP)
#error "minor_pause: tagheap only (see bench/README.md for Boehm's generational mode)"
#endif

namespace {

using Node = gcb::TreeNode;
using tagheap::gc::CollectStats;
using tagheap::gc::GcEvent;
using tagheap::gc::GcPhase;

constexpr tagheap::Tag kGcTag = 1;
// Payloads: old nodes hold their index (< 2^32); a survivor holds
// (round + 1) << 32 | its index in the round; garbage holds kGarbage.
constexpr std::uintptr_t kGarbage = ~std::uintptr_t{0};
constexpr int kRoundShift = 32;

Node* g_root;

struct Model {
  void roots(tagheap::gc::Tracer& t) { t.mark(g_root); }
  void trace(void* obj, tagheap::gc::Tracer& t) { gcb::trace_tree_node(obj, t); }
};

// The phases of one collection, from the collector's own events (ns).
struct Phases {
  std::uint64_t start = 0, swept = 0, roots = 0, markers_end = 0, marked = 0, end = 0;
  double sweep_ms() const { return (swept - start) / 1e6; }          // previous lazy sweep (a walk of every page)
  double roots_ms() const { return (roots - swept) / 1e6; }          // remembered set's unlogged bits, helpers' start, roots
  double mark_ms() const { return (markers_end - roots) / 1e6; }     // tracing, until the last marker stopped
  double after_ms() const { return (marked - markers_end) / 1e6; }   // weak, finalizers, counting the dead
  double handoff_ms() const { return (end - marked) / 1e6; }         // begin_lazy_sweep, policy
};

class PhaseListener : public tagheap::gc::GcListener {
 public:
  void on_gc_event(const GcEvent& e) noexcept override {
    switch (e.phase) {
      case GcPhase::kCollectionStart: last = Phases{e.time_ns}; break;
      case GcPhase::kSweepCompleted: last.swept = e.time_ns; break;
      case GcPhase::kRootsDone: last.roots = e.time_ns; break;
      case GcPhase::kMarkerDone: last.markers_end = std::max(last.markers_end, e.time_ns); break;
      case GcPhase::kMarkDone: last.marked = e.time_ns; break;
      case GcPhase::kCollectionEnd: last.end = e.time_ns; break;
    }
  }
  Phases last;
};

struct Env {
  tagheap::Runtime rt{gcb::runtime_options(kGcTag)};
  tagheap::ThreadState ts{rt};
  Model model;
  tagheap::gc::MarkSweep<Model> ms{rt, model, options()};
  tagheap::Heap* heap;
  PhaseListener listener;
  Env() {
    ts.attach();
    heap = &ts.heap(kGcTag);
    ms.set_listener(&listener);
  }
  ~Env() { ts.detach(); }
  static tagheap::gc::Options options() {
    tagheap::gc::Options o = gcb::bench_options();
    o.generational = true;
    o.verify_minor = gcb::env_or("GCB_VERIFY_MINOR", 0) != 0;
    return o;
  }
  Node* node(Node* left, Node* right, std::uintptr_t payload) {
    auto* n = static_cast<Node*>(heap->allocate(sizeof(Node)));
    n->left = left;
    n->right = right;
    n->payload = payload;
    return n;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A complete tree of `count` survivors of round `round`, numbered from
// `first`, breadth-first; `garbage_per` garbage nodes follow each.
Node* young_tree(Env& env, std::size_t count, std::uintptr_t round, std::uintptr_t first, double garbage_per,
                 double& garbage_owed) {
  std::vector<Node*> nodes(count);
  for (std::size_t i = 0; i < count; ++i) {
    nodes[i] = env.node(nullptr, nullptr, ((round + 1) << kRoundShift) | (first + i));
    for (garbage_owed += garbage_per; garbage_owed >= 1; garbage_owed -= 1)
      env.node(nodes[i], g_root, kGarbage);  // dead at once; its pointers lead to young and old nodes
  }
  return gcb::link_complete_tree(nodes.data(), count);
}

// Every node of the tree once, each a live block: old ones by index,
// survivors by round and index. Returns false (after saying why) on
// anything else: a survivor freed and not reused is no longer a live block,
// one reused holds another payload.
bool check_tree(const tagheap::Runtime& rt, std::size_t old_nodes, int rounds, std::size_t per_round) {
  std::vector<char> seen_old(old_nodes, 0), seen_young(static_cast<std::size_t>(rounds) * per_round, 0);
  std::vector<const Node*> stack{g_root};
  while (!stack.empty()) {
    const Node* x = stack.back();
    stack.pop_back();
    const std::uintptr_t p = x->payload, round = p >> kRoundShift, i = p & ((std::uintptr_t{1} << kRoundShift) - 1);
    char* seen = p == kGarbage                                    ? nullptr
                 : round == 0 && i < old_nodes                    ? &seen_old[i]
                 : round >= 1 && round <= static_cast<std::uintptr_t>(rounds) && i < per_round
                     ? &seen_young[(round - 1) * per_round + i]
                     : nullptr;
    if (seen == nullptr || (*seen)++ != 0) {
      std::printf("# failed: node %p holds payload %#lx (%s): a survivor was freed and its block reused\n",
                  static_cast<const void*>(x), static_cast<unsigned long>(p), seen ? "seen twice" : "not a survivor's");
      return false;
    }
    if (tagheap::find_block(x, rt) != x) {
      std::printf("# failed: node %p (payload %#lx) is not a live block: it was freed while reachable\n",
                  static_cast<const void*>(x), static_cast<unsigned long>(p));
      return false;
    }
    if (x->left) stack.push_back(x->left);
    if (x->right) stack.push_back(x->right);
  }
  const auto missing_old = std::count(seen_old.begin(), seen_old.end(), 0);
  const auto missing_young = std::count(seen_young.begin(), seen_young.end(), 0);
  if (missing_old != 0 || missing_young != 0) {
    std::printf("# failed: %ld old and %ld young nodes missing from the tree\n", static_cast<long>(missing_old),
                static_cast<long>(missing_young));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OLD_MIB [YOUNG_MIB] [GARBAGE_MIB] [COLLECTIONS] [PER_STORE] [FULLS]\n", argv[0]);
    return 2;
  }
  const double old_mib = std::atof(argv[1]);
  const double young_mib = argc > 2 ? std::atof(argv[2]) : 1;
  const double garbage_mib = argc > 3 ? std::atof(argv[3]) : 8;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 20;
  const auto per_store = static_cast<std::size_t>(argc > 5 ? std::max(1, std::atoi(argv[5])) : 16);
  const auto old_nodes = static_cast<std::size_t>(old_mib * 1024 * 1024 / sizeof(Node));
  const auto per_round = static_cast<std::size_t>(young_mib * 1024 * 1024 / sizeof(Node));
  const int fulls = argc > 6 ? std::atoi(argv[6]) : 3;
  const double garbage_per = garbage_mib / young_mib;  // garbage nodes per survivor

  static Env env;
  // The old tree, breadth-first; its leaves (no children) are where the
  // rounds hang their survivors, in a random order.
  // (The index of the build, 8 bytes a node, is freed before the rounds
  // but counts in the peak RSS.)
  const std::size_t stores_per_round = (per_round + per_store - 1) / per_store;
  const std::size_t first_leaf = old_nodes / 2;  // nodes i with 2i + 1 >= old_nodes
  if (stores_per_round * static_cast<std::size_t>(rounds) > old_nodes - first_leaf) {
    std::fprintf(stderr, "minor_pause: %zu old leaves, too few for %d rounds of %zu stores\n", old_nodes - first_leaf,
                 rounds, stores_per_round);
    return 2;
  }
  std::mt19937_64 rng(42);
  std::vector<Node*> leaves;
  {
    std::vector<Node*> order(old_nodes);
    for (std::size_t i = 0; i < old_nodes; ++i) order[i] = env.node(nullptr, nullptr, i);
    g_root = gcb::link_complete_tree(order.data(), old_nodes);
    std::sample(order.begin() + static_cast<std::ptrdiff_t>(first_leaf), order.end(), std::back_inserter(leaves),
                stores_per_round * static_cast<std::size_t>(rounds), rng);
  }
  std::shuffle(leaves.begin(), leaves.end(), rng);
  const CollectStats first = env.ms.collect_full();  // the tree is old now
  std::printf("# old tree: %zu nodes, %.1f MiB marked; first full collection %.3f ms\n", old_nodes,
              first.live_bytes / 1048576.0, first.pause_ns / 1e6);

  std::FILE* log = nullptr;
  if (const char* path = std::getenv("GCB_PAUSE_LOG")) log = std::fopen(path, "w");
  std::vector<double> mutator, pause, own, sweep, roots, mark, after, handoff;
  CollectStats last, minor;  // the last collection, the last minor one
  std::size_t next_leaf = 0;
  const bool omit_barrier = gcb::env_or("GCB_OMIT_BARRIER", 0) != 0;
  int fulls_due = 0;
  double garbage_owed = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto round_start = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < per_round; done += per_store) {
      const std::size_t count = std::min(per_store, per_round - done);
      Node* leaf = leaves[next_leaf++];
      leaf->left = young_tree(env, count, static_cast<std::uintptr_t>(r), done, garbage_per, garbage_owed);
      if (!omit_barrier) env.ms.write_barrier(leaf);
    }
    mutator.push_back(gcb::ms_since(round_start));
    const auto t0 = std::chrono::steady_clock::now();
    last = env.ms.collect();
    const double ms = gcb::ms_since(t0);
    const Phases& ph = env.listener.last;
    if (!last.minor) {  // the policy's full threshold (old bytes) came first: not a minor pause
      ++fulls_due;
      if (log) std::fprintf(log, "full_due,%.4f\n", ms);
      continue;
    }
    minor = last;
    pause.push_back(ms);
    own.push_back(last.pause_ns / 1e6);
    sweep.push_back(ph.sweep_ms());
    roots.push_back(ph.roots_ms());
    mark.push_back(ph.mark_ms());
    after.push_back(ph.after_ms());
    handoff.push_back(ph.handoff_ms());
    if (log)
      std::fprintf(log, "minor,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", ms, ph.sweep_ms(), ph.roots_ms(), ph.mark_ms(),
                   ph.after_ms(), ph.handoff_ms());
  }
  std::vector<double> full;
  for (int i = 0; i < fulls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    last = env.ms.collect_full();
    full.push_back(gcb::ms_since(t0));
    if (log) std::fprintf(log, "full,%.4f\n", full.back());
  }
  if (log) std::fclose(log);
  if (!check_tree(env.rt, old_nodes, rounds, per_round)) return 1;
  if (pause.empty()) {
    std::printf("# failed: no minor collection (every one was full: the old heap is too small for the rounds)\n");
    return 1;
  }

  std::printf("minor_pause_%gMiB tagheap %.3f %ld min_ms=%.3f max_ms=%.3f n=%d full_ms=%.3f remembered=%zu "
              "young_kib=%zu pages_swept=%zu pages_to_sweep=%zu markers=%u fulls_due=%d\n",
              old_mib, median(pause), gcb::peak_rss_kib(), *std::min_element(pause.begin(), pause.end()),
              *std::max_element(pause.begin(), pause.end()), static_cast<int>(pause.size()), median(full), minor.remembered,
              minor.live_bytes / 1024, minor.pages_swept, minor.pages_to_sweep, minor.markers, fulls_due);
  std::printf("# minor phases, medians (ms): previous lazy sweep %.3f, remembered set + roots %.3f, marking %.3f, "
              "after marking %.3f, hand-off to the lazy sweep %.3f; the collector's own pause_ns %.3f (last: mark_ns %.3f, "
              "sweep_ns %.3f)\n",
              median(sweep), median(roots), median(mark), median(after), median(handoff), median(own),
              minor.mark_ns / 1e6, minor.sweep_ns / 1e6);
  // The lazy sweep's share: the mutator sweeps each page it allocates from.
  std::printf("# mutator: median %.3f ms a round (allocating the survivors and the garbage)\n", median(mutator));
  std::printf("# full: median %.3f ms of %d (last: mark %.3f, sweep %.3f ms, %u markers); old bytes %.1f MiB\n",
              median(full), fulls, last.mark_ns / 1e6, last.sweep_ns / 1e6, last.markers, last.old_bytes / 1048576.0);
  return 0;
}
