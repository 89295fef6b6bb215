// mt_gcbench: GCBench with several mutator threads (as Whippet's
// mt-gcbench), each building its own trees: a stretch tree of depth 18
// (dropped), a long-lived tree of depth 16 and an array of 500,000 doubles
// kept to the end, then short-lived trees at depths 4, 6, .., 16, top-down
// and bottom-up: gcbench_program.h, run by each thread. Threads = argv[1]
// (default 2).
//
// Variants (one -D define per binary, see BUILD):
//   GCB_TAGHEAP   one Runtime, one gc::World. Each thread attaches its
//                 ThreadState through the World and polls world.safepoint()
//                 on every allocation; roots are each thread's explicit root
//                 stack. The arrays live on a leaf tag (Options::leaf_tags:
//                 marked, never traced), as Boehm's come from
//                 GC_MALLOC_ATOMIC. Every 16 KiB it allocates, a thread asks
//                 MarkSweep::collection_due() (the product's policy,
//                 gc::Options{}); the thread that sees it due stops the
//                 world, collects (unless another thread just did) and
//                 resumes. GCB_GC_TRACE=1 prints a line per collection on
//                 stderr: minor or full, bytes marked, old bytes, the next
//                 budget.
//   GCB_BOEHM     Debian's libgc with GC_THREADS: threads come from
//                 GC_pthread_create (gc.h redirects pthread_create), roots are
//                 found conservatively. GC_set_free_space_divisor(2): Boehm
//                 collects after allocating about 2 * live / divisor bytes,
//                 i.e. about the live data, the same heap multiple as above.
//   GCB_MIMALLOC  mi_malloc / mi_free, every temporary tree freed by hand:
//                 the floor.
//
// Prints: mt_gcbench <variant> <wall_ms> <peak_rss_kib> gcs=<n> [max_pause_ms=<x>]
// Exits 1 if a thread's long-lived data was lost.
#define GC_THREADS 1  // before gc.h (through variant.h): thread support

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "bench/common.h"  // pin_this_thread
#include "bench/gcbench/gcbench_program.h"
#include "bench/gcbench/variant.h"

#if defined(GCB_TAGHEAP)
#include "gc/world.h"
#endif

namespace {

using gcbench::Node;
constexpr int kMaxThreads = 16;

#if defined(GCB_TAGHEAP)
// ---- tagheap: a World, shared allocation volume, per-thread root stacks ----
namespace tg = tagheap::gc;
constexpr tagheap::Tag kGcTag = 1;
constexpr tagheap::Tag kLeafTag = 2;  // the arrays of doubles: marked, not traced

struct Mutator {
  explicit Mutator(tagheap::Runtime& rt) : ts(rt) {}
  tagheap::ThreadState ts;
  tagheap::Heap* heap = nullptr;
  tagheap::Heap* leaf_heap = nullptr;
  void** slots[256];
  int depth = 0;
  void* array = nullptr;      // on the leaf tag
  std::size_t pending = 0;    // bytes allocated since this thread last asked the policy
};

class Shared {
 public:
  static constexpr std::size_t kCheckEvery = 16 * 1024;  // bytes a mutator allocates between looks at the policy
  Shared() = default;

  // Model for gc::MarkSweep. The world is stopped: every mutator is parked
  // in alloc() (or gone), so its root stack is stable.
  void roots(tg::Tracer& t) {
    for (Mutator* m : mutators_) {
      if (m == nullptr) continue;
      for (int i = 0; i < m->depth; ++i) t.mark(*m->slots[i]);
      t.mark(m->array);
    }
  }
  void trace(void* obj, tg::Tracer& t) {
    auto* n = static_cast<Node*>(obj);
    t.mark(n->left);
    t.mark(n->right);
  }

  Mutator* begin_thread(int i) {
    auto* m = new Mutator(rt_);
    world_.attach(m->ts);
    m->heap = &m->ts.heap(kGcTag);
    m->leaf_heap = &m->ts.heap(kLeafTag);
    mutators_[i] = m;  // running: no collection can read mutators_ now
    return m;
  }
  void end_thread(int i, Mutator* m) {
    mutators_[i] = nullptr;  // its roots die with it
    world_.detach(m->ts);    // abandons its pages; they stay collectable
    delete m;
  }

  void* alloc(Mutator& m, std::size_t size) { return alloc_on(m, *m.heap, size); }
  void* alloc_leaf(Mutator& m, std::size_t size) { return alloc_on(m, *m.leaf_heap, size); }
  void* alloc_on(Mutator& m, tagheap::Heap& heap, std::size_t size) {
    world_.safepoint();
    m.pending += (size + 15) & ~std::size_t{15};
    if (m.pending >= kCheckEvery) [[unlikely]] {
      m.pending = 0;
      if (ms_.collection_due()) collect();
    }
    return heap.allocate(size);
  }

  // Called by a mutator: stop the world (parks us meanwhile if another
  // thread is collecting), collect unless that thread already did, resume.
  void collect() {
    const auto t0 = std::chrono::steady_clock::now();
    world_.stop();
    if (ms_.collection_due()) {  // unless another thread collected meanwhile
      const tg::CollectStats s = ms_.collect();
      ++collections_;
      mark_ns_ += s.mark_ns;
      sweep_ns_ += s.sweep_ns;
      max_pause_ms_ = std::max(max_pause_ms_, gcb::ms_since(t0));
      if (trace_)
        std::fprintf(stderr, "gc %zu %s live_kib=%zu old_kib=%zu budget_kib=%llu\n", collections_,
                     s.minor ? "minor" : "full", s.live_bytes >> 10, s.old_bytes >> 10,
                     static_cast<unsigned long long>(ms_.budget_bytes() >> 10));
    }
    world_.resume();
  }

  void write_barrier(void* obj) noexcept { ms_.write_barrier(obj); }
  std::size_t collections() const { return collections_; }
  double max_pause_ms() const { return max_pause_ms_; }
  void print_detail() const {
    std::printf("# tagheap: %zu collections, mark %.1f ms, sweep %.1f ms in total, max pause %.2f ms\n",
                collections_, mark_ns_ / 1e6, sweep_ns_ / 1e6, max_pause_ms_);
  }

 private:
  static tagheap::RuntimeOptions runtime_options() {
    tagheap::RuntimeOptions o = gcb::runtime_options(kGcTag);
    o.gc_tags = {kGcTag, kLeafTag};
    return o;
  }
  static tg::Options options() {
    tg::Options o = gcb::bench_options();
    o.leaf_tags = {kLeafTag};
    return o;
  }
  tagheap::Runtime rt_{runtime_options()};
  tg::World world_;
  tg::MarkSweep<Shared> ms_{rt_, *this, options()};
  Mutator* mutators_[kMaxThreads] = {};
  // Written only with the world stopped.
  std::size_t collections_ = 0;
  std::uint64_t mark_ns_ = 0, sweep_ns_ = 0;
  const bool trace_ = gcb::env_or("GCB_GC_TRACE", 0) != 0;  // a line per collection on stderr
  double max_pause_ms_ = 0;
};

Shared* g_shared;
thread_local Mutator* t_mutator;

void init() { g_shared = new Shared; }
void thread_begin(int i) { t_mutator = g_shared->begin_thread(i); }
void thread_end(int i) { g_shared->end_thread(i, t_mutator); }
void* alloc_node(std::size_t n) { return g_shared->alloc(*t_mutator, n); }
void* alloc_atomic(std::size_t n) {
  void* p = g_shared->alloc_leaf(*t_mutator, n);
  t_mutator->array = p;
  return p;
}
void release_tree(Node*) {}
void write_barrier(Node* n) { g_shared->write_barrier(n); }
std::size_t collections() { return g_shared->collections(); }
void print_extra() { std::printf(" max_pause_ms=%.2f", g_shared->max_pause_ms()); }
void print_detail() { g_shared->print_detail(); }
template <class T>
struct RootScope {
  explicit RootScope(T*& slot) { t_mutator->slots[t_mutator->depth++] = reinterpret_cast<void**>(&slot); }
  ~RootScope() { --t_mutator->depth; }
  RootScope(const RootScope&) = delete;
};

#else
// ---- Boehm and mimalloc: variant.h's glue is thread-safe as it is ----
void init() {
  gcb::init();
#if defined(GCB_BOEHM)
  GC_set_free_space_divisor(static_cast<GC_word>(gcb::env_or("GCB_BOEHM_DIVISOR", 2)));
#endif
}
void thread_begin(int) {}
void thread_end(int) {}
void* alloc_node(std::size_t n) { return gcb::alloc_node(n); }
void* alloc_atomic(std::size_t n) { return gcb::alloc_atomic(n); }
void release_tree(Node* t) { gcb::release_tree(reinterpret_cast<gcb::Links*>(t)); }
void write_barrier(Node* n) { gcb::write_barrier(n); }
std::size_t collections() { return gcb::collections(); }
void print_extra() {}
void print_detail() { gcb::print_detail(); }
template <class T>
using RootScope = gcb::RootScope<T>;
#endif

struct Memory {
  static void* alloc_node(std::size_t n) { return ::alloc_node(n); }
  static void* alloc_atomic(std::size_t n) { return ::alloc_atomic(n); }
  static void release_tree(Node* t) { ::release_tree(t); }
  static void write_barrier(Node* n) { ::write_barrier(n); }
  template <class T>
  using Root = RootScope<T>;
};

std::atomic<int> g_failures{0};

void* mutator(void* arg) {
  const int id = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  bench::pin_this_thread(static_cast<unsigned>(id));
  thread_begin(id);
  if (!gcbench::Program<Memory>::run(/*release_long_lived=*/true)) ++g_failures;
  thread_end(id);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = std::clamp(argc > 1 ? std::atoi(argv[1]) : 2, 1, kMaxThreads);
  init();
  const auto t0 = std::chrono::steady_clock::now();
  pthread_t tids[kMaxThreads];
  for (int i = 0; i < threads; ++i)
    if (pthread_create(&tids[i], nullptr, mutator, reinterpret_cast<void*>(static_cast<std::intptr_t>(i))) != 0) {
      std::perror("pthread_create");
      return 1;
    }
  for (int i = 0; i < threads; ++i) pthread_join(tids[i], nullptr);
  const double ms = gcb::ms_since(t0);
  if (g_failures.load() != 0) {
    std::printf("# failed: long-lived data lost in %d threads\n", g_failures.load());
    return 1;
  }
  print_detail();
  std::printf("mt_gcbench %s %.1f %ld gcs=%zu", gcb::variant_name(), ms, gcb::peak_rss_kib(), collections());
  print_extra();
  std::printf("\n");
  return 0;
}
