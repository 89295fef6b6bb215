// collector.cc: the policy, the Model handed to gc::MarkSweep, and one
// collection from stop to resume (collector.h).
#include "examples/libgc/collector.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "examples/libgc/boehm_hooks.h"
#include "examples/libgc/finalization.h"
#include "examples/libgc/heap.h"
#include "examples/libgc/object_scan.h"
#include "examples/libgc/roots.h"
#include "gc/mark_sweep.h"

namespace tagheap::libgc {
namespace {


// The Model: roots and tracing for gc::MarkSweep. Everything conservative.
struct Model {
  const std::vector<Range>* statics = nullptr;
  const char* collector_sp = nullptr;

  void roots(gc::Tracer& t) {
    set_mark_sink(MarkSink{&t, [](void* c, std::uintptr_t w) { mark_heap_word(*static_cast<gc::Tracer*>(c), w); }});
    for_each_root_range(*statics, collector_sp, [&t](const char* lo, const char* hi, bool is_stack) {
      if (is_stack) {
        scan_words(lo, hi, [&t](std::uintptr_t w) { t.mark_conservative(w); });
      } else {
        scan_words(lo, hi, [&t](std::uintptr_t w) { mark_heap_word(t, w); });
      }
    });
    finalization_roots(t);
  }
  void process_weak(const gc::Liveness& liveness) { finalization_process_weak(liveness); }
  void trace(void* obj, gc::Tracer& t) {
    scan_object(obj, [&t](std::uintptr_t w) { mark_heap_word(t, w); });
  }

  // A word in the heap or static data (object_scan.h's rule).
  static void mark_heap_word(gc::Tracer& t, std::uintptr_t w) {
    if (detail::g_all_interior_pointers) [[likely]] {
      t.mark_conservative(w);
    } else if (void* b = heap_word_target(w); b != nullptr && gc_tags().contains(PageView::of(b).tag())) {
      t.mark(b);
    }
  }
};

struct Policy {
  double growth = 0.75;
  std::size_t min_budget = 1 << 20;
  std::size_t max_heap = SIZE_MAX;
  bool print_stats = false;
};

Policy g_policy;
std::atomic<std::size_t> g_since{0};       // bytes allocated since the last collection
std::atomic<std::size_t> g_budget{1 << 20};
std::atomic<std::size_t> g_live{0};
std::atomic<std::size_t> g_total{0};
std::atomic<std::uint64_t> g_collections{0};
std::atomic<int> g_disabled{0};
std::size_t g_expanded = 0;
std::uint64_t g_total_pause_ns = 0, g_max_pause_ns = 0;
std::size_t g_freed_bytes_total = 0;

alignas(Model) unsigned char g_model_storage[sizeof(Model)];
alignas(gc::MarkSweep<Model>) unsigned char g_collector_storage[sizeof(gc::MarkSweep<Model>)];
Model* g_model = nullptr;
gc::MarkSweep<Model>* g_collector = nullptr;
std::vector<Range>* g_statics = nullptr;

std::size_t env_size(const char* name, std::size_t dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  std::size_t mult = 1;
  if (end != nullptr && (*end == 'k' || *end == 'K')) mult = 1 << 10;
  if (end != nullptr && (*end == 'm' || *end == 'M')) mult = 1 << 20;
  if (end != nullptr && (*end == 'g' || *end == 'G')) mult = std::size_t{1} << 30;
  return static_cast<std::size_t>(n) * mult;
}

void print_summary() {
  std::fprintf(stderr,
               "tagheap libgc: %llu collections, %zu bytes allocated, %zu freed, live %zu, pause total %.3f ms max %.3f ms\n",
               static_cast<unsigned long long>(g_collections.load()), g_total.load(), g_freed_bytes_total,
               g_live.load(), g_total_pause_ns / 1e6, g_max_pause_ns / 1e6);
}

void update_budget(std::size_t live) {
  const auto grown = static_cast<std::size_t>(g_policy.growth * static_cast<double>(live));
  g_budget.store(std::max(g_policy.min_budget + g_expanded, grown), std::memory_order_relaxed);
}

// The collection proper, world stopped, registry lock held. noinline and
// below collect()'s frame: collect() spilled its callee-saved registers with
// __builtin_unwind_init, and the stack is scanned from this frame up.
[[gnu::noinline]] gc::CollectStats collect_stopped(const std::vector<Range>& statics) {
  // The frame address, not a local's: under ASan's fake stacks a local may
  // live in the heap.
  const char* sp = static_cast<const char*>(__builtin_frame_address(0));
  g_model->statics = &statics;
  g_model->collector_sp = sp;
  gc::CollectStats stats = g_collector->collect();
  set_mark_sink(MarkSink{});
  return stats;
}

}  // namespace

void init_collector() {
  g_policy.min_budget = std::max<std::size_t>(env_size("GC_INITIAL_HEAP_SIZE", 0), g_policy.min_budget);
  g_policy.max_heap = env_size("GC_MAXIMUM_HEAP_SIZE", 0);
  if (g_policy.max_heap == 0) g_policy.max_heap = SIZE_MAX;
  if (const char* g = std::getenv("TAGHEAP_GC_GROWTH"); g != nullptr && std::atof(g) > 0) g_policy.growth = std::atof(g);
  g_policy.print_stats = std::getenv("GC_PRINT_STATS") != nullptr;
  g_budget.store(g_policy.min_budget);
  g_model = new (g_model_storage) Model();
  // One marker (see above); the policy is this file's (GC_expand_hp and
  // GC_MAXIMUM_HEAP_SIZE change it at run time), so MarkSweep's is unused.
  g_collector = new (g_collector_storage)
      gc::MarkSweep<Model>(runtime(), *g_model, gc::Options{.heap_growth = g_policy.growth,
                                                             .min_budget_bytes = g_policy.min_budget,
                                                             .markers = 1});
  g_statics = new std::vector<Range>();
  if (g_policy.print_stats) std::atexit(print_summary);
}

void add_allocated(std::size_t bytes) noexcept {
  g_since.fetch_add(bytes, std::memory_order_relaxed);
  g_total.fetch_add(bytes, std::memory_order_relaxed);
}

void note_allocation(ThreadRecord& t, std::size_t bytes) {
  t.unflushed_bytes += bytes;
  if (t.unflushed_bytes < kFlushBytes) return;
  flush_allocation_count(t);
  if (g_since.load(std::memory_order_relaxed) >= g_budget.load(std::memory_order_relaxed) &&
      g_disabled.load(std::memory_order_relaxed) == 0)
    collect("budget");
}

bool over_heap_limit(std::size_t bytes) noexcept {
  if (g_policy.max_heap == SIZE_MAX) return false;
  return g_live.load(std::memory_order_relaxed) + g_since.load(std::memory_order_relaxed) + bytes > g_policy.max_heap;
}

bool collect(const char* reason) {
  init();
  if (g_disabled.load(std::memory_order_relaxed) != 0) return false;
  ThreadRecord& self = current_thread_or_register();
  flush_allocation_count(self);
  jmp_buf registers;  // callee-saved registers, in this frame
  setjmp(registers);
  __builtin_unwind_init();
  bool run_finalizers = false;
  {
    RegistryLock lock;
    if (g_disabled.load(std::memory_order_relaxed) != 0) return false;
    run_start_callback();
    read_static_roots(*g_statics);
    finalization_before_stop();
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t stopped = stop_world();
    const std::size_t allocated = g_since.exchange(0, std::memory_order_relaxed);
    const gc::CollectStats stats = collect_stopped(*g_statics);
    resume_world();
    finalization_after_resume();
    const auto pause = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    const std::uint64_t n = g_collections.fetch_add(1, std::memory_order_relaxed) + 1;
    g_live.store(stats.live_bytes, std::memory_order_relaxed);
    update_budget(stats.live_bytes);
    g_total_pause_ns += pause;
    g_max_pause_ns = std::max(g_max_pause_ns, pause);
    g_freed_bytes_total += stats.freed_bytes;
    if (g_policy.print_stats) {
      const FinalizationStats f = last_finalization_stats();
      std::fprintf(stderr,
                   "tagheap libgc: collection %llu (%s): %zu bytes allocated since, live %zu bytes in %zu objects, "
                   "freed %zu bytes, %zu threads stopped, pause %.3f ms; links %zu (%zu cleared), finalizers %zu "
                   "(%zu queued)\n",
                   static_cast<unsigned long long>(n), reason, allocated, stats.live_bytes, stats.live_blocks,
                   stats.freed_bytes, stopped, pause / 1e6, f.links, f.links_cleared, f.finalizers,
                   f.finalizers_queued);
    }
    run_finalizers = finalizers_ready();
  }
  if (run_finalizers) notify_or_invoke_finalizers();
  return true;
}

std::pair<void (*)(void*, void*), void*> collector_register_finalizer(void* obj, void (*fn)(void*, void*), void* data,
                                                                     bool ordered) {
  return g_collector->register_finalizer(obj, fn, data,
                                         ordered ? gc::FinalizerOrder::kOrdered : gc::FinalizerOrder::kUnordered);
}
std::size_t collector_run_finalizers() { return g_collector != nullptr ? g_collector->run_finalizers() : 0; }
std::size_t collector_finalizers_queued() noexcept {
  return g_collector != nullptr ? g_collector->finalizers_queued() : 0;
}

void disable() noexcept { g_disabled.fetch_add(1, std::memory_order_relaxed); }
void enable() noexcept { g_disabled.fetch_sub(1, std::memory_order_relaxed); }
bool is_disabled() noexcept { return g_disabled.load(std::memory_order_relaxed) != 0; }
void expand_heap(std::size_t bytes) noexcept {
  RegistryLock lock;
  g_expanded += bytes;
  update_budget(g_live.load(std::memory_order_relaxed));
}

std::uint64_t collections() noexcept { return g_collections.load(std::memory_order_relaxed); }
std::size_t heap_size() noexcept {
  return g_live.load(std::memory_order_relaxed) + std::max(g_budget.load(std::memory_order_relaxed), g_since.load(std::memory_order_relaxed));
}
std::size_t bytes_since_collection() noexcept { return g_since.load(std::memory_order_relaxed); }
std::size_t live_bytes() noexcept { return g_live.load(std::memory_order_relaxed); }
std::size_t total_allocated() noexcept { return g_total.load(std::memory_order_relaxed); }

}  // namespace tagheap::libgc
