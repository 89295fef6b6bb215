// rewire: the pauses a mutator sees while it rewires a large live structure.
//
//   rewire_<variant> LIVE_MIB [OPS] [GARBAGE_BYTES]
//
// Builds a complete binary tree of 24-byte GC nodes (left, right, a word of
// payload) holding LIVE_MIB MiB, with one root, then runs OPS operations
// (default 2,000,000). Each operation walks a random path from the root to
// a node X near the leaves' level, then either replaces one of X's children
// C by a new node that adopts C's children (C becomes garbage), or (every
// eighth operation) swaps a subtree of X with one of another random node Y;
// every store into an existing node is followed by the write barrier. Each
// operation also allocates GARBAGE_BYTES (default 256) of pointer-free
// garbage, so the collector has work to pace. The tree keeps its size, and
// is checked at the end.
//
// Timed: the allocations of each operation plus the collector's work the
// operation triggers (tagheap: collect() when collection_due(); Boehm: what
// GC_MALLOC does inside). An operation whose timed part took 20 us or more
// counts as a pause. Wall time covers the whole operation loop.
//
//   tagheap  gc::Options{} as a VM gets them, with GCB_INCREMENTAL=1 for
//            Options::incremental (GCB_STEP_US sets mark_step_ns) and the
//            other GCB_* overrides of variant.h.
//   boehm    GC_MALLOC / GC_MALLOC_ATOMIC; GCB_BOEHM_INCREMENTAL=1 calls
//            GC_enable_incremental() (Debian's libgc: dirty bits from
//            mprotect or the kernel's soft-dirty bits).
//
// Prints: rewire_<live>MiB <variant> <wall_ms> <peak_rss_kib> ops=.. pauses=..
//         p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. gc_ms=.. mutator_minflt=..
//         (the operations' thread's page faults during them) [tagheap: calls=.. cycles=..
//         .. max_collect_cpu_ms=.. (the most CPU time one collect() took)
//         segments_mapped=.. huge_declined=0|1 (RuntimeStats: whether
//         huge OS pages came dear and later segments got small ones)]
// With GCB_PAUSE_LOG=FILE, every pause as
// "t_ms,pause_ms,collect_ms,collect_cpu_ms,collect_faults" for the timeline
// plot: t from the start of the operations; collect_ms, the part inside
// tagheap's collect(), so a stall in allocation shows as pause_ms -
// collect_ms; collect_cpu_ms, the thread's CPU time in that part, so a
// collect() held up off CPU shows as collect_ms - collect_cpu_ms;
// collect_faults, the page faults the thread took in it (all three 0 for
// Boehm). A first line "# start_ns=N" gives the operations' start on
// CLOCK_MONOTONIC, to line the log up with a profile
// (perf record -k CLOCK_MONOTONIC).
// With GCB_STALL_DIAG=1, every operation of 3 ms or more (GCB_STALL_DIAG=N:
// N microseconds or more) is told on stderr
// with what the thread did meanwhile (getrusage: CPU time, page faults,
// voluntary and involuntary context switches), which says whether a stall
// was work, faults or waiting for a CPU. Costs two system calls per
// operation: not for timed runs.
#define GC_THREADS 1  // before gc.h (through variant.h)

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bench/gcbench/tree_node.h"
#include "bench/gcbench/variant.h"

namespace {

using Node = gcb::TreeNode;

constexpr std::uint64_t kPauseNs = 20'000;

using bench::now_ns;

// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID: exact, where
// getrusage counts in scheduler ticks). Below the wall time of a stretch
// when the thread waited off CPU: descheduled, or its vCPU held by the
// hypervisor (steal: no context switch is counted then).
std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// The page faults this thread took so far (the mutator's alone: not the
// marker threads' nor the segment pool's populator's).
long thread_minor_faults() {
  rusage r{};
  getrusage(RUSAGE_THREAD, &r);
  return r.ru_minflt;
}

#if defined(GCB_TAGHEAP)
constexpr tagheap::Tag kGcTag = 1;
Node* g_root;
void* g_pinned[2];  // the operation's new node and garbage, until linked or dropped

struct Model {
  void roots(tagheap::gc::Tracer& t) {
    t.mark(g_root);
    for (void* p : g_pinned) t.mark(p);
  }
  void trace(void* obj, tagheap::gc::Tracer& t) { gcb::trace_tree_node(obj, t); }
};

struct Env {
  tagheap::Runtime rt{gcb::runtime_options(kGcTag)};
  tagheap::ThreadState ts{rt};
  Model model;
  tagheap::gc::MarkSweep<Model> ms{rt, model, options()};
  tagheap::Heap* heap;
  std::size_t calls = 0, cycles = 0;
  Env() {
    ts.attach();
    heap = &ts.heap(kGcTag);
  }
  ~Env() { ts.detach(); }
  static tagheap::gc::Options options() {
    tagheap::gc::Options o = gcb::bench_options();
    o.incremental = gcb::env_or("GCB_INCREMENTAL", 0) != 0;
    o.mark_step_ns = static_cast<std::uint64_t>(gcb::env_or("GCB_STEP_US", o.mark_step_ns / 1000.0) * 1000);
    return o;
  }
  Node* alloc_node() { return static_cast<Node*>(heap->allocate(sizeof(Node))); }
  // Garbage the tracer must not look into: a leaf node's shape with no
  // children would do, but a pointer-free block on the GC tag is what a VM's
  // strings are. Its first two words are zeroed, so trace finds no child.
  void* alloc_garbage(std::size_t n) {
    void* p = heap->allocate(n);
    std::memset(p, 0, std::min<std::size_t>(n, 16));
    return p;
  }
  void barrier(Node* obj) { ms.write_barrier(obj); }
  // The collector's own share of the last poll(), in ms (0 if it did not
  // collect): wall time (the collector's pause_ns) and this thread's CPU
  // time meanwhile (helper markers' not counted: a parallel pause's wall
  // time passes it while this thread waits for them; an incremental step
  // marks on this thread alone).
  double last_collect_ms = 0, last_collect_cpu_ms = 0;
  long last_collect_faults = 0;  // the thread's page faults in it
  void poll() {
    last_collect_ms = last_collect_cpu_ms = 0;
    last_collect_faults = 0;
    if (!ms.collection_due()) return;
    const std::uint64_t cpu0 = thread_cpu_ns();
    const long faults0 = thread_minor_faults();
    const tagheap::gc::CollectStats s = ms.collect();
    last_collect_cpu_ms = static_cast<double>(thread_cpu_ns() - cpu0) / 1e6;
    last_collect_faults = thread_minor_faults() - faults0;
    max_collect_cpu_ms = std::max(max_collect_cpu_ms, last_collect_cpu_ms);
    ++calls;
    if (trace) gcb::trace_collection(calls, s);
    cycles += s.cycle_done;
    at_limit += s.finished_at_limit;
    const double ms_taken = static_cast<double>(s.pause_ns) / 1e6;
    last_collect_ms = ms_taken;
    double& worst = !s.incremental ? max_whole : s.cycle_done ? max_last : s.cycle_pauses == 1 ? max_first : max_step;
    worst = std::max(worst, ms_taken);
    if (s.cycle_done) max_sweep_in_pause = std::max(max_sweep_in_pause, static_cast<double>(s.sweep_ns) / 1e6);
  }
  const bool trace = gcb::env_or("GCB_GC_TRACE", 0) != 0;  // a line per collect() on stderr (variant.h)
  double max_whole = 0, max_first = 0, max_step = 0, max_last = 0, max_sweep_in_pause = 0;
  double max_collect_cpu_ms = 0;
  std::size_t at_limit = 0;
  void pin(Node* n, void* g) {
    g_pinned[0] = n;
    g_pinned[1] = g;
  }
  void begin_build() {}
  void end_build() {}
  const char* label() const { return ms.options().incremental ? "tagheap_incremental" : "tagheap"; }
  void report() {
    const tagheap::RuntimeStats st = rt.stats();
    std::printf(" calls=%zu cycles=%zu at_limit=%zu max_whole_ms=%.3f max_first_ms=%.3f max_step_ms=%.3f "
                "max_last_ms=%.3f max_sweep_ms=%.3f max_collect_cpu_ms=%.3f segments_mapped=%zu huge_declined=%d",
                calls, cycles, at_limit, max_whole, max_first, max_step, max_last, max_sweep_in_pause,
                max_collect_cpu_ms,
                st.segments_mapped_total, st.huge_os_pages_declined ? 1 : 0);
  }
};

#elif defined(GCB_BOEHM)
Node* volatile g_root;  // in .bss: a Boehm root

struct Env {
  bool incremental = gcb::env_or("GCB_BOEHM_INCREMENTAL", 0) != 0;  // init_boehm enables it
  Env() { gcb::init_boehm(); }
  Node* alloc_node() { return static_cast<Node*>(GC_MALLOC(sizeof(Node))); }
  void* alloc_garbage(std::size_t n) { return GC_MALLOC_ATOMIC(n); }
  void barrier(Node*) {}  // Boehm finds dirty pages itself
  void poll() {}
  static constexpr double last_collect_ms = 0;  // inside GC_MALLOC: not told apart
  static constexpr double last_collect_cpu_ms = 0;
  static constexpr long last_collect_faults = 0;
  void pin(Node*, void*) {}  // locals are on the stack, scanned
  void begin_build() { GC_disable(); }
  void end_build() { GC_enable(); }
  const char* label() const { return incremental ? "boehm_incremental" : "boehm"; }
  void report() const { std::printf(" gc_no=%zu", static_cast<std::size_t>(GC_get_gc_no())); }
};
#else
#error "rewire: GCB_TAGHEAP or GCB_BOEHM"
#endif


// A node `depth` levels down a random path (or the last one that has
// children); *reached: its depth.
Node* walk(Node* root, int depth, std::mt19937_64& rng, int* reached) {
  Node* x = root;
  std::uint64_t bits = rng();
  int d = 0;
  for (; d < depth; ++d, bits >>= 1) {
    Node* next = (bits & 1) ? x->left : x->right;
    if (next == nullptr || (next->left == nullptr && next->right == nullptr)) break;
    x = next;
  }
  *reached = d;
  return x;
}

// GCB_STALL_DIAG: the thread's resource use around one operation.
class StallDiag {
 public:
  // GCB_STALL_DIAG=1 reports operations of 3 ms or more; a larger number
  // is the threshold in microseconds.
  StallDiag() {
    if (const char* v = std::getenv("GCB_STALL_DIAG")) {
      on_ = true;
      const long us = std::atol(v);
      if (us > 1) threshold_ns_ = static_cast<std::uint64_t>(us) * 1000;
    }
  }
  void before() {
    if (!on_) return;
    getrusage(RUSAGE_THREAD, &r0_);
    cpu0_ns_ = thread_cpu_ns();
  }
  void after(std::uint64_t t0, std::uint64_t dt, double collect_ms) {
    if (!on_ || dt < threshold_ns_) return;
    const std::uint64_t cpu_ns = thread_cpu_ns() - cpu0_ns_;
    rusage r1{};
    getrusage(RUSAGE_THREAD, &r1);
    auto us = [](timeval a, timeval b) {
      return static_cast<double>(b.tv_sec - a.tv_sec) * 1e6 + static_cast<double>(b.tv_usec - a.tv_usec);
    };
    std::fprintf(stderr,
                 "stall t0_ns=%llu %.2f ms, collect %.2f ms: on CPU %.2f ms, user %.0f us, sys %.0f us, minflt %ld, "
                 "vcsw %ld, ivcsw %ld\n",
                 static_cast<unsigned long long>(t0), static_cast<double>(dt) / 1e6, collect_ms,
                 static_cast<double>(cpu_ns) / 1e6,
                 us(r0_.ru_utime, r1.ru_utime), us(r0_.ru_stime, r1.ru_stime), r1.ru_minflt - r0_.ru_minflt,
                 r1.ru_nvcsw - r0_.ru_nvcsw, r1.ru_nivcsw - r0_.ru_nivcsw);
  }

 private:
  bool on_ = false;
  std::uint64_t cpu0_ns_ = 0;
  std::uint64_t threshold_ns_ = 3'000'000;
  rusage r0_{};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s LIVE_MIB [OPS] [GARBAGE_BYTES]\n", argv[0]);
    return 2;
  }
  const double live_mib = std::atof(argv[1]);
  const long ops = argc > 2 ? std::atol(argv[2]) : 2'000'000;
  const std::size_t garbage = argc > 3 ? static_cast<std::size_t>(std::atol(argv[3])) : 256;
  const auto nodes = static_cast<std::size_t>(live_mib * 1024 * 1024 / sizeof(Node));

  static Env env;
  env.begin_build();
  {
    std::vector<Node*> order(nodes);  // breadth-first; freed before the operations
    for (std::size_t i = 0; i < nodes; ++i) {
      order[i] = env.alloc_node();
      order[i]->left = order[i]->right = nullptr;
      order[i]->payload = i;
    }
    g_root = gcb::link_complete_tree(order.data(), nodes);
    std::fill(order.begin(), order.end(), nullptr);
  }
  env.end_build();
  int depth = 0;
  while ((std::size_t{2} << depth) <= nodes) ++depth;
  const int walk_depth = std::max(1, depth - 3);

  std::mt19937_64 rng(42);
  std::vector<double> pauses;
  struct Stall {
    double t_ms, stall_ms, collect_ms, collect_cpu_ms;
    long collect_faults;
  };
  std::vector<Stall> timeline;
  double gc_ms = 0;
  StallDiag diag;
  const long faults_before = thread_minor_faults();
  const std::uint64_t start = now_ns();
  for (long op = 0; op < ops; ++op) {
    int x_depth = 0;
    Node* x = walk(g_root, walk_depth, rng, &x_depth);
    diag.before();
    const std::uint64_t t0 = now_ns();
    Node* n = env.alloc_node();
    void* g = env.alloc_garbage(garbage);
    env.pin(n, g);
    env.poll();
    const std::uint64_t dt = now_ns() - t0;
    diag.after(t0, dt, env.last_collect_ms);
    if (dt >= kPauseNs) {
      pauses.push_back(static_cast<double>(dt) / 1e6);
      timeline.push_back({static_cast<double>(t0 - start) / 1e6, static_cast<double>(dt) / 1e6, env.last_collect_ms,
                          env.last_collect_cpu_ms, env.last_collect_faults});
      gc_ms += static_cast<double>(dt) / 1e6;
    }
    Node*& slot = (rng() & 1) ? x->left : x->right;
    if (op % 8 == 7) {  // swap a subtree of x with one of another node
      int y_depth = 0;
      Node* y = walk(g_root, walk_depth, rng, &y_depth);
      if (y != x && y_depth == x_depth) {  // at one depth, neither holds the other
        std::swap(slot, y->left);
        env.barrier(y);
      }
      n->left = n->right = nullptr;
      n->payload = 0;  // garbage at once
    } else {
      Node* c = slot;
      n->left = c ? c->left : nullptr;
      n->right = c ? c->right : nullptr;
      n->payload = c ? c->payload : 0;
      env.barrier(n);
      slot = c ? n : slot;
    }
    env.barrier(x);
    env.pin(nullptr, nullptr);
  }
  const double wall_ms = static_cast<double>(now_ns() - start) / 1e6;
  const long mutator_faults = thread_minor_faults() - faults_before;
  const long found = gcb::count_nodes(g_root);
  if (found != static_cast<long>(nodes)) {
    std::printf("# failed: %ld of %zu nodes in the tree after the operations\n", found, nodes);
    return 1;
  }
  std::vector<double> p = pauses;
  const double max_ms = p.empty() ? 0 : *std::max_element(p.begin(), p.end());
  std::printf(
      "rewire_%gMiB %s %.1f %ld ops=%ld pauses=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f gc_ms=%.1f "
      "mutator_minflt=%ld",
      live_mib, env.label(), wall_ms, gcb::peak_rss_kib(), ops, pauses.size(), bench::quantile(p, 0.5),
      bench::quantile(p, 0.9), bench::quantile(p, 0.99), max_ms, gc_ms, mutator_faults);
  env.report();
  std::printf("\n");
  if (const char* path = std::getenv("GCB_PAUSE_LOG")) {
    if (FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "# start_ns=%llu\n", static_cast<unsigned long long>(start));
      for (const Stall& st : timeline)
        std::fprintf(f, "%.3f,%.4f,%.4f,%.4f,%ld\n", st.t_ms, st.stall_ms, st.collect_ms, st.collect_cpu_ms,
                     st.collect_faults);
      std::fclose(f);
    }
  }
  return 0;
}
