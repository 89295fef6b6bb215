// variant.h: the memory-management glue GCBench and binary-trees are built
// against, one variant per binary (chosen by a -D define):
//
//   GCB_TAGHEAP   tagheap's gc::MarkSweep over a GC-tagged heap. Roots are
//                 precise: a small shadow stack of Node* slots (RootScope)
//                 plus the one pointer-free array. A collection runs when
//                 MarkSweep::collection_due() says so: the product's policy
//                 with gc::Options{} defaults (checked every 64 allocations).
//                 For the trade-off curves only, GCB_GROWTH, GCB_MIN_MIB and
//                 GCB_MARKERS override Options' heap_growth, min_budget_bytes
//                 and markers (bench_options below); GCB_GENERATIONAL=1 turns
//                 Options::generational on (minor collections, sticky mark
//                 bits): the programs call write_barrier(obj) after every
//                 store of a node pointer into a node that existed before the
//                 store's allocation (a no-op in the other variants and in
//                 non-generational mode). BENCH_HUGE_OS_PAGES (common.h)
//                 overrides the huge-page options. GCB_PAUSE_LOG=FILE
//                 writes every collection, at exit (print_detail), as
//                 "t_ms,pause_ms,minor|full" (t: from init() to the
//                 collection's start; the collector's own pause_ns), for
//                 bench/generational_pauses.py's timeline. GCB_GC_TRACE=1
//                 prints a line per collect() on stderr: its kind (minor,
//                 full, or a pause of an incremental cycle), pause, sweep
//                 and mark times, pages swept in it and left to the lazy
//                 sweep, live and freed MiB.
//   GCB_BOEHM     Debian's libgc: GC_MALLOC for nodes, GC_MALLOC_ATOMIC for
//                 the array; roots found conservatively. libgc 8.2 starts its
//                 helper marker threads only when a second thread is created
//                 through it (mt_gcbench) or on GC_start_mark_threads():
//                 single-threaded programs mark on one thread unless
//                 GCB_BOEHM_MARKER_THREADS=1 asks for the helpers (GC_MARKERS
//                 sets their number). GCB_BOEHM_INCREMENTAL=1 calls
//                 GC_enable_incremental() (Boehm's incremental and
//                 generational mode: dirty bits from mprotect or the
//                 kernel's soft-dirty bits).
//   GCB_MIMALLOC  mi_malloc / mi_free, every temporary tree freed by hand:
//                 the floor a collector is measured against.
//
// Nodes start with their two child pointers; that is all the tracer reads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/common.h"

#if defined(GCB_TAGHEAP)
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#elif defined(GCB_BOEHM)
#include <gc.h>
#elif defined(GCB_MIMALLOC)
#include <mimalloc.h>
#else
#error "define GCB_TAGHEAP, GCB_BOEHM or GCB_MIMALLOC"
#endif

namespace gcb {

struct Links {
  Links* left;
  Links* right;
};

// VmHWM, as every other benchmark reports (bench/common.h says why not ru_maxrss).
inline long peak_rss_kib() { return bench::peak_rss_kib(); }

inline double env_or(const char* name, double dflt) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : dflt;
}

#if defined(GCB_TAGHEAP)
// gc::Options{} unless a trade-off run overrides a field.
inline tagheap::gc::Options bench_options() {
  tagheap::gc::Options o;
  o.heap_growth = env_or("GCB_GROWTH", o.heap_growth);
  o.min_budget_bytes = static_cast<std::size_t>(env_or("GCB_MIN_MIB", static_cast<double>(o.min_budget_bytes) / (1 << 20)) * (1 << 20));
  o.markers = static_cast<unsigned>(env_or("GCB_MARKERS", o.markers));
  o.generational = env_or("GCB_GENERATIONAL", 0) != 0;
  o.nursery_growth = env_or("GCB_NURSERY", o.nursery_growth);
  o.full_after_minors = static_cast<unsigned>(env_or("GCB_FULL_AFTER_MINORS", o.full_after_minors));
  o.parallel_mark_bytes = static_cast<std::size_t>(
      env_or("GCB_PARALLEL_MIB", static_cast<double>(o.parallel_mark_bytes) / (1 << 20)) * (1 << 20));
  return o;
}
#endif

#if defined(GCB_TAGHEAP)
inline constexpr const char* kVariant = "tagheap";
// The peer name the programs print: tagheap's generational mode is a peer
// of its own in bench/run.py's tables.
inline const char* variant_name() { return env_or("GCB_GENERATIONAL", 0) != 0 ? "tagheap_gen" : kVariant; }

// The runtime's options: GC tag `gc_tag`, everything else the library's
// defaults unless BENCH_HUGE_OS_PAGES says otherwise (bench/common.h), for
// A/B runs.
inline tagheap::RuntimeOptions runtime_options(tagheap::Tag gc_tag) {
  tagheap::RuntimeOptions o;
  o.gc_tags = {gc_tag};
  bench::apply_huge_os_pages_env(o);
  return o;
}

// GCB_GC_TRACE=1: a line per collect() on stderr.
inline void trace_collection(std::size_t n, const tagheap::gc::CollectStats& s) {
  std::fprintf(stderr, "gc %zu %s pause_ms=%.3f sweep_ms=%.3f mark_ms=%.3f pages_swept=%zu pages_to_sweep=%zu "
               "cycle_pause=%zu%s live_mib=%.1f freed_mib=%.1f\n",
               n, s.minor ? "minor" : s.incremental ? "cycle" : "full", s.pause_ns / 1e6, s.sweep_ns / 1e6,
               s.mark_ns / 1e6, s.pages_swept, s.pages_to_sweep, s.cycle_pauses, s.cycle_done ? " done" : "",
               s.live_bytes / 1048576.0, s.freed_bytes / 1048576.0);
}

class Collector {
 public:
  static constexpr tagheap::Tag kGcTag = 1;
  Collector() {
    ts_.attach();
    heap_ = &ts_.heap(kGcTag);
  }
  ~Collector() { ts_.detach(); }

  void* alloc(std::size_t size) {
    if (--until_check_ == 0) [[unlikely]] {
      until_check_ = 64;
      if (ms_.collection_due()) collect();
    }
    return heap_->allocate(size);
  }
  // A block the tracer must not look into (the array of doubles).
  void* alloc_atomic(std::size_t size) {
    void* p = alloc(size);
    atomic_ = p;
    return p;
  }
  // After storing a node pointer into obj (generational mode).
  void write_barrier(void* obj) noexcept { ms_.write_barrier(obj); }
  void collect() {
    const std::uint64_t t0 = log_ ? bench::now_ns() : 0;
    const tagheap::gc::CollectStats s = ms_.collect();
    if (log_) pauses_.push_back({t0 - start_ns_, s.pause_ns, s.minor});
    if (trace_) trace_collection(collections_ + 1, s);
    ++collections_;
    minors_ += s.minor;
    max_pause_ns_ = std::max(max_pause_ns_, s.pause_ns);
    mark_ns_ += s.mark_ns;
    sweep_ns_ += s.sweep_ns;
  }

  // The Model gc::MarkSweep calls back.
  void roots(tagheap::gc::Tracer& t) {
    for (int i = 0; i < depth_; ++i) t.mark(*slots_[i]);
    t.mark(atomic_);
  }
  void trace(void* obj, tagheap::gc::Tracer& t) {
    if (obj == atomic_) [[unlikely]] return;
    auto* n = static_cast<Links*>(obj);
    t.mark(n->left);
    t.mark(n->right);
  }

  void push_root(void** slot) { slots_[depth_++] = slot; }
  void pop_root() { --depth_; }
  std::size_t collections() const { return collections_; }
  std::size_t minors() const { return minors_; }
  double max_pause_ms() const { return max_pause_ns_ / 1e6; }
  double mark_ms() const { return mark_ns_ / 1e6; }
  double sweep_ms() const { return sweep_ns_ / 1e6; }
  void write_pause_log() const {
    if (log_ == nullptr) return;
    std::FILE* f = std::fopen(log_, "w");
    if (f == nullptr) return;
    for (const Pause& p : pauses_)
      std::fprintf(f, "%.3f,%.4f,%s\n", p.at_ns / 1e6, p.pause_ns / 1e6, p.minor ? "minor" : "full");
    std::fclose(f);
  }

 private:
  tagheap::Runtime rt_{runtime_options(kGcTag)};
  tagheap::ThreadState ts_{rt_};
  tagheap::gc::MarkSweep<Collector> ms_{rt_, *this, bench_options()};  // keeps its mark stack
  tagheap::Heap* heap_;
  unsigned until_check_ = 64;
  std::size_t collections_ = 0, minors_ = 0;
  std::uint64_t mark_ns_ = 0, sweep_ns_ = 0, max_pause_ns_ = 0;
  struct Pause {
    std::uint64_t at_ns, pause_ns;
    bool minor;
  };
  const char* log_ = std::getenv("GCB_PAUSE_LOG");
  const bool trace_ = env_or("GCB_GC_TRACE", 0) != 0;  // a line per collect() on stderr
  const std::uint64_t start_ns_ = bench::now_ns();
  std::vector<Pause> pauses_;
  void** slots_[256];
  int depth_ = 0;
  void* atomic_ = nullptr;
};

inline Collector* g_gc;
inline void init() { g_gc = new Collector; }
inline void* alloc_node(std::size_t size) { return g_gc->alloc(size); }
inline void* alloc_atomic(std::size_t size) { return g_gc->alloc_atomic(size); }
inline void release_tree(Links*) {}
inline void write_barrier(void* obj) { g_gc->write_barrier(obj); }
inline std::size_t collections() { return g_gc->collections(); }
inline void print_detail() {
  const tagheap::os::CallCounts os = tagheap::os::call_counts();
  std::printf("# tagheap: mark %.1f ms, sweep %.1f ms in total; %zu minor of %zu collections, max pause %.2f ms; "
              "%zu mmap, %zu munmap, %zu madvise calls\n",
              g_gc->mark_ms(), g_gc->sweep_ms(), g_gc->minors(), g_gc->collections(), g_gc->max_pause_ms(), os.maps,
              os.unmaps, os.decommits);
  g_gc->write_pause_log();
}
// Registers a local Node* as a root for its scope.
template <class T>
struct RootScope {
  explicit RootScope(T*& slot) { g_gc->push_root(reinterpret_cast<void**>(&slot)); }
  ~RootScope() { g_gc->pop_root(); }
  RootScope(const RootScope&) = delete;
};

#elif defined(GCB_BOEHM)
inline constexpr const char* kVariant = "boehm";
inline const char* variant_name() { return kVariant; }
inline void init_boehm() {
  GC_INIT();
  if (env_or("GCB_BOEHM_MARKER_THREADS", 0) != 0) GC_start_mark_threads();
  if (env_or("GCB_BOEHM_INCREMENTAL", 0) != 0) GC_enable_incremental();
}
inline void init() { init_boehm(); }
inline void* alloc_node(std::size_t size) { return GC_MALLOC(size); }
inline void* alloc_atomic(std::size_t size) { return GC_MALLOC_ATOMIC(size); }
inline void release_tree(Links*) {}
inline void write_barrier(void*) {}
inline std::size_t collections() { return static_cast<std::size_t>(GC_get_gc_no()); }
inline void print_detail() { std::printf("# boehm: heap %zu KiB\n", GC_get_heap_size() / 1024); }
template <class T>
struct RootScope {
  explicit RootScope(T*&) {}
};

#else
inline constexpr const char* kVariant = "mimalloc";
inline const char* variant_name() { return kVariant; }
inline void init() {}
inline void* alloc_node(std::size_t size) { return mi_malloc(size); }
inline void* alloc_atomic(std::size_t size) { return mi_malloc(size); }
// Explicit management: a temporary tree is freed when dropped.
inline void release_tree(Links* root) {
  Links* stack[64];
  int n = 0;
  if (root) stack[n++] = root;
  while (n) {
    Links* t = stack[--n];
    if (t->left) stack[n++] = t->left;
    if (t->right) stack[n++] = t->right;
    mi_free(t);
  }
}
inline void write_barrier(void*) {}
inline std::size_t collections() { return 0; }
inline void print_detail() {}
template <class T>
struct RootScope {
  explicit RootScope(T*&) {}
};
#endif

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace gcb
