// variant.h: the memory-management glue GCBench and binary-trees are built
// against, one variant per binary (chosen by a -D define):
//
//   GCB_TAGHEAP   tagheap's gc::MarkSweep over a GC-tagged heap. Roots are
//                 precise: a small shadow stack of Node* slots (RootScope)
//                 plus the one pointer-free array. A collection runs when the
//                 bytes allocated since the last one exceed
//                 max(floor, live bytes after the last one * factor)
//                 (GCB_FLOOR_MIB, default 4; GCB_FACTOR, default 1.0: the
//                 heap grows to about twice the live data, the classic rule
//                 and the same as mt_gcbench. On GCBench, 0.5 took 116
//                 collections and 135 ms for a 25.4 MiB peak, 1.0 takes 59
//                 and 94 ms for 25.0 MiB: the peak follows where collections
//                 fall in the program, not just the factor).
//   GCB_BOEHM     Debian's libgc: GC_MALLOC for nodes, GC_MALLOC_ATOMIC for
//                 the array; roots found conservatively.
//   GCB_MIMALLOC  mi_malloc / mi_free, every temporary tree freed by hand:
//                 the floor a collector is measured against.
//
// Nodes start with their two child pointers; that is all the tracer reads.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#if defined(GCB_TAGHEAP)
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

inline long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

inline double env_or(const char* name, double dflt) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : dflt;
}

#if defined(GCB_TAGHEAP)
inline constexpr const char* kVariant = "tagheap";

class Collector {
 public:
  static constexpr tagheap::Tag kGcTag = 1;
  Collector()
      : floor_(static_cast<std::size_t>(env_or("GCB_FLOOR_MIB", 4) * 1024 * 1024)),
        factor_(env_or("GCB_FACTOR", 1.0)),
        threshold_(floor_) {
    ts_.attach();
    heap_ = &ts_.heap(kGcTag);
  }
  ~Collector() { ts_.detach(); }

  void* alloc(std::size_t size) {
    if (since_ >= threshold_) [[unlikely]] collect();
    since_ += (size + 15) & ~std::size_t{15};
    return heap_->allocate(size);
  }
  // A block the tracer must not look into (the array of doubles).
  void* alloc_atomic(std::size_t size) {
    void* p = alloc(size);
    atomic_ = p;
    return p;
  }
  void collect() {
    const tagheap::gc::CollectStats s = ms_.collect();
    ++collections_;
    mark_ns_ += s.mark_ns;
    sweep_ns_ += s.sweep_ns;
    threshold_ = std::max(floor_, static_cast<std::size_t>(static_cast<double>(s.live_bytes) * factor_));
    since_ = 0;
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
  double mark_ms() const { return mark_ns_ / 1e6; }
  double sweep_ms() const { return sweep_ns_ / 1e6; }

 private:
  tagheap::Runtime rt_{{.gc_tags = {kGcTag}}};
  tagheap::ThreadState ts_{rt_};
  tagheap::gc::MarkSweep<Collector> ms_{rt_, *this};  // keeps its mark stack
  tagheap::Heap* heap_;
  std::size_t floor_;
  double factor_;
  std::size_t threshold_, since_ = 0, collections_ = 0;
  std::uint64_t mark_ns_ = 0, sweep_ns_ = 0;
  void** slots_[256];
  int depth_ = 0;
  void* atomic_ = nullptr;
};

inline Collector* g_gc;
inline void init() { g_gc = new Collector; }
inline void* alloc_node(std::size_t size) { return g_gc->alloc(size); }
inline void* alloc_atomic(std::size_t size) { return g_gc->alloc_atomic(size); }
inline void release_tree(Links*) {}
inline std::size_t collections() { return g_gc->collections(); }
inline void print_detail() {
  std::printf("# tagheap: mark %.1f ms, sweep %.1f ms in total\n", g_gc->mark_ms(), g_gc->sweep_ms());
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
inline void init() { GC_INIT(); }
inline void* alloc_node(std::size_t size) { return GC_MALLOC(size); }
inline void* alloc_atomic(std::size_t size) { return GC_MALLOC_ATOMIC(size); }
inline void release_tree(Links*) {}
inline std::size_t collections() { return static_cast<std::size_t>(GC_get_gc_no()); }
inline void print_detail() { std::printf("# boehm: heap %zu KiB\n", GC_get_heap_size() / 1024); }
template <class T>
struct RootScope {
  explicit RootScope(T*&) {}
};

#else
inline constexpr const char* kVariant = "mimalloc";
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
