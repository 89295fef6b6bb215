// barrier: the cost of gc::MarkSweep::write_barrier's fast path, per store
// (the fastest of [rounds] passes, default 11).
//
//   barrier_tagheap [objects] [rounds]
//
// A generational MarkSweep over <objects> (default 1M) 24-byte nodes, each
// loop storing a node pointer into every node in turn, then calling the
// barrier on it (as a VM's field store would):
//   plain        the store alone, no barrier call: the baseline
//   young        store + barrier on young nodes (allocated after the last
//                collection: unlogged bit clear, the barrier returns at once)
//   old_logged   store + barrier on old nodes that a barrier already logged
//                since the last collection (unlogged bit clear again)
//   old_first    store + barrier on old nodes not logged yet: the slow path
//                (mark bit test, atomic AND of the unlogged bit,
//                remembered-set push), for scale
//   off          store + barrier with Options::generational off (returns on
//                the first test)
// The nodes are visited in allocation order (the bitmap words stay in
// cache, as in a loop over one object's fields) and in a shuffled order
// (a cache miss on the side bitmap per store, as for scattered objects).
// Prints, per mode and order: barrier <mode>_<order> <ns_per_store> <peak_rss_kib>
// and a "# ... minus plain" line: the barrier's own share.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "alloc/tagheap.h"
#include "bench/common.h"
#include "gc/mark_sweep.h"

namespace {

namespace tg = tagheap::gc;
constexpr tagheap::Tag kGcTag = 1;

struct Node {
  Node* left;
  Node* right;
  std::uintptr_t payload;
};

// Roots: every node, from a vector outside the heap.
struct Model {
  std::vector<Node*>* nodes;
  void roots(tg::Tracer& t) {
    for (Node* n : *nodes) t.mark(n);
  }
  void trace(void* obj, tg::Tracer& t) {
    auto* n = static_cast<Node*>(obj);
    t.mark(n->left);
    t.mark(n->right);
  }
};

struct Heap {
  tagheap::Runtime rt{{.gc_tags = {kGcTag}}};
  tagheap::ThreadState ts{rt};
  std::vector<Node*> nodes;
  Model model{&nodes};
  tg::MarkSweep<Model> ms;
  explicit Heap(bool generational, std::size_t count) : ms(rt, model, options(generational)) {
    ts.attach();
    tagheap::Heap& h = ts.heap(kGcTag);
    nodes.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      auto* n = static_cast<Node*>(h.allocate(sizeof(Node)));
      *n = Node{nullptr, nullptr, i};
      nodes.push_back(n);
    }
  }
  ~Heap() { ts.detach(); }
  static tg::Options options(bool generational) {
    tg::Options o;
    o.generational = generational;
    o.markers = 1;
    return o;
  }
};

// One pass: a store into each node in `order`, then the barrier unless `plain`.
template <bool kBarrier>
double pass_ns(Heap& heap, const std::vector<Node*>& order) {
  const auto t0 = std::chrono::steady_clock::now();
  Node* value = order.front();
  for (Node* n : order) {
    n->right = value;
    if constexpr (kBarrier) heap.ms.write_barrier(n);
    value = n;
    asm volatile("" ::: "memory");  // the store and the barrier are not hoisted or merged
  }
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
         static_cast<double>(order.size());
}

// Fastest of `rounds` passes; `setup` runs before each (untimed). The
// minimum, not the median: a pass takes 1-2 ms, so on a shared machine
// one preemption in it moves the average per store by several ns.
template <bool kBarrier, class Setup>
double best_ns(Heap& heap, const std::vector<Node*>& order, int rounds, Setup setup) {
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    setup();
    best = std::min(best, pass_ns<kBarrier>(heap, order));
  }
  return best;
}

void report(const std::string& label, double ns, double plain) {
  std::printf("barrier %s %.3f %ld\n", label.c_str(), ns, bench::peak_rss_kib());
  std::printf("# %s: %.3f ns per store, %.3f ns more than the plain store\n", label.c_str(), ns, ns - plain);
}

// The nodes of `heap` in allocation order, or shuffled.
std::vector<Node*> order_of(const Heap& heap, bool shuffled) {
  std::vector<Node*> order = heap.nodes;
  if (shuffled) std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  return order;
}

}  // namespace

// One Heap at a time: each attaches its thread state to this thread.
int main(int argc, char** argv) {
  const std::size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1u << 20;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 11;
  auto nothing = [] {};
  for (const bool shuffled : {false, true}) {
    const std::string suffix = shuffled ? "_shuffled" : "_sequential";
    double plain = 0;
    {
      Heap young(/*generational=*/true, count);  // never collected: every node young
      const std::vector<Node*> order = order_of(young, shuffled);
      plain = best_ns<false>(young, order, rounds, nothing);
      report("plain" + suffix, plain, plain);
      report("young" + suffix, best_ns<true>(young, order, rounds, nothing), plain);
    }
    {
      Heap old(/*generational=*/true, count);
      old.ms.collect();  // the first collection is full: every node survives and is old
      const std::vector<Node*> order = order_of(old, shuffled);
      // Each round: a minor collection clears the log bits, one untimed pass logs every node.
      auto log_all = [&] {
        old.ms.collect();
        pass_ns<true>(old, order);
      };
      report("old_logged" + suffix, best_ns<true>(old, order, rounds, log_all), plain);
      report("old_first" + suffix, best_ns<true>(old, order, rounds, [&] { old.ms.collect(); }), plain);
    }
    {
      Heap off(/*generational=*/false, count);
      report("off" + suffix, best_ns<true>(off, order_of(off, shuffled), rounds, nothing), plain);
    }
  }
  return 0;
}
