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
#include "examples/libgc/pause_allocation.h"
#include "examples/libgc/policy.h"
#include "examples/libgc/roots.h"
#include "gc/mark_sweep.h"

namespace tagheap::libgc {
namespace {


// The Model: roots and tracing for gc::MarkSweep. Everything conservative.
struct Model {
  const std::vector<Range>* statics = nullptr;
  const char* collector_sp = nullptr;
  // For the policy (policy.h); one marker, so plain counts.
  std::size_t scanned_bytes = 0, root_bytes = 0;

  void roots(gc::Tracer& t) {
    set_mark_sink(MarkSink{&t, [](void* c, std::uintptr_t w) { mark_heap_word(*static_cast<gc::Tracer*>(c), w); }});
    for_each_root_range(*statics, collector_sp, [this, &t](const char* lo, const char* hi, bool is_stack) {
      root_bytes += static_cast<std::size_t>(hi - lo);
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
    scanned_bytes += scan_object(obj, [&t](std::uintptr_t w) { mark_heap_word(t, w); });
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

std::atomic<std::uint64_t> g_collections{0};
std::atomic<int> g_disabled{0};
bool g_print_stats = false;
std::uint64_t g_total_pause_ns = 0, g_max_pause_ns = 0;
std::size_t g_freed_bytes_total = 0;

alignas(Model) unsigned char g_model_storage[sizeof(Model)];
alignas(gc::MarkSweep<Model>) unsigned char g_collector_storage[sizeof(gc::MarkSweep<Model>)];
Model* g_model = nullptr;
gc::MarkSweep<Model>* g_collector = nullptr;
std::vector<Range>* g_statics = nullptr;

void print_summary() {
  std::fprintf(stderr,
               "tagheap libgc: %llu collections, %zu bytes allocated, %zu freed, live %zu, pause total %.3f ms max %.3f ms\n",
               static_cast<unsigned long long>(g_collections.load()), total_allocated(), g_freed_bytes_total,
               live_bytes(), g_total_pause_ns / 1e6, g_max_pause_ns / 1e6);
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
  // heap_word_target's find_block calls (Guile's rule, object_scan.h) nest
  // in this scope: a thread-local count each instead of opening and closing
  // a lookup scope per word (a fifth of Guile's run time without it).
  BlockLookupScope lookups;
  gc::CollectStats stats = g_collector->collect();
  set_mark_sink(MarkSink{});
  return stats;
}

}  // namespace

void init_collector() {
  init_policy();
  g_print_stats = std::getenv("GC_PRINT_STATS") != nullptr;
  g_model = new (g_model_storage) Model();
  // One marker (see above). The policy is policy.h's, so MarkSweep's is
  // unused (its Options cannot follow GC_set_free_space_divisor).
  g_collector = new (g_collector_storage) gc::MarkSweep<Model>(runtime(), *g_model, gc::Options{.markers = 1});
  g_statics = new std::vector<Range>();
  if (g_print_stats) std::atexit(print_summary);
}

void note_allocation(ThreadRecord& t, std::size_t bytes) {
  t.unflushed_bytes += bytes;
  if (t.unflushed_bytes < kFlushBytes) return;
  flush_allocation_count(t);
  if (collection_due() && g_disabled.load(std::memory_order_relaxed) == 0) collect("budget");
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
    begin_pause_allocation();  // MarkSweep's operator new: no malloc until resumed
    const std::size_t allocated = take_allocated_since();
    g_model->scanned_bytes = g_model->root_bytes = 0;
    const gc::CollectStats stats = collect_stopped(*g_statics);
    end_pause_allocation();
    resume_world();
    free_deferred_after_pause();
    finalization_after_resume();
    const auto pause = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    const std::uint64_t n = g_collections.fetch_add(1, std::memory_order_relaxed) + 1;
    after_collection(LiveHeap{.scanned = g_model->scanned_bytes,
                              .atomic = stats.live_bytes - std::min(stats.live_bytes, g_model->scanned_bytes),
                              .roots = g_model->root_bytes - std::min(g_model->root_bytes, sanitizer_runtime_bytes())});
    g_total_pause_ns += pause;
    g_max_pause_ns = std::max(g_max_pause_ns, pause);
    g_freed_bytes_total += stats.freed_bytes;
    if (g_print_stats) {
      const FinalizationStats f = last_finalization_stats();
      std::fprintf(stderr,
                   "tagheap libgc: collection %llu (%s): %zu bytes allocated since, live %zu bytes in %zu objects "
                   "(%zu scanned), %zu bytes of roots, freed %zu bytes, next in %zu bytes, %zu threads stopped, "
                   "pause %.3f ms; links %zu (%zu cleared), finalizers %zu (%zu queued)\n",
                   static_cast<unsigned long long>(n), reason, allocated, stats.live_bytes, stats.live_blocks,
                   g_model->scanned_bytes, g_model->root_bytes, stats.freed_bytes, budget(), stopped, pause / 1e6,
                   f.links, f.links_cleared, f.finalizers, f.finalizers_queued);
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
std::uint64_t collections() noexcept { return g_collections.load(std::memory_order_relaxed); }

}  // namespace tagheap::libgc
