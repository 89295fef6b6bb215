// collector.cc: the policy, the Model handed to gc::MarkSweep, and one
// collection from stop to resume (collector.h).
#include "examples/libgc/collector.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include <pthread.h>

#include "examples/libgc/boehm_hooks.h"
#include "examples/libgc/finalization.h"
#include "examples/libgc/heap.h"
#include "examples/libgc/object_scan.h"
#include "examples/libgc/pause_allocation.h"
#include "examples/libgc/policy.h"
#include "examples/libgc/roots.h"
#include "gc/mark_sweep.h"

// bdwgc's GC_parallel (defined in boehm_api.cc, with gc.h's declaration).
extern "C" int GC_parallel;

namespace tagheap::libgc {

// Bytes of scanned objects a marker traced and has not yet added to
// Model::scanned_bytes. Initial-exec, and outside the anonymous namespace
// on purpose (as t_mark_sink: gold drops the offset of an initial-exec
// relocation against an internal-linkage variable).
extern thread_local std::size_t t_scanned_unflushed __attribute__((tls_model("initial-exec")));
thread_local std::size_t t_scanned_unflushed __attribute__((tls_model("initial-exec"))) = 0;

namespace {


// The Model: roots and tracing for gc::MarkSweep. Everything conservative.
// trace runs on every marker thread at once (gc::Options::markers), roots
// on the collecting thread.
struct Model {
  // A marker adds what it scanned every kScannedFlushBytes (one shared
  // counter per traced object would bounce a cache line between markers);
  // the collecting thread adds its rest after marking, a helper's rest (less
  // than the flush size) counts in a later collection. For the policy, an
  // estimate either way.
  static constexpr std::size_t kScannedFlushBytes = std::size_t{64} << 10;
  const std::vector<Range>* statics = nullptr;
  const char* collector_sp = nullptr;
  std::atomic<std::size_t> scanned_bytes{0};
  std::size_t root_bytes = 0;  // the collecting thread's

  // The root ranges (data segments, added roots, stacks, saved registers,
  // uncollectable blocks) are scanned by every marker, in pieces
  // (gc::MarkSweep's root pieces), rather than by the collecting thread
  // alone while the helpers wait for work: ECL's 540 KB of data segments
  // took a fifth of its collections' marking.
  struct RootPiece {
    const char* lo;
    const char* hi;
    bool is_stack;  // any interior pointer counts (object_scan.h's rule)
  };
  static constexpr std::size_t kRootPieceBytes = std::size_t{16} << 10;
  // This round's pieces. The list never grows in a pause (an allocation
  // there maps memory, and can fail with the world stopped): pieces past
  // its capacity are scanned by roots() on the collecting thread, and
  // reserve_root_pieces() makes room for all of them before the next stop.
  // It starts small, so a program's first collections take that path too.
  std::vector<RootPiece> pieces;
  std::size_t pieces_wanted = 0;  // this round's, listed or not
  Model() { pieces.reserve(16); }

  // Every piece of this round's root ranges, in the same order each call
  // (the world is stopped). Pieces start at word boundaries, so no word
  // straddles two.
  template <class F>
  void for_each_piece(F&& f) {
    for_each_root_range(*statics, collector_sp, [&f](const char* lo, const char* hi, bool is_stack) {
      const auto start = (reinterpret_cast<std::uintptr_t>(lo) + 7) & ~std::uintptr_t{7};
      const auto end = reinterpret_cast<std::uintptr_t>(hi);
      for (std::uintptr_t p = start; p < end; p += std::min(kRootPieceBytes, end - p))
        f(RootPiece{reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(p + std::min(kRootPieceBytes, end - p)),
                    is_stack});
    });
  }
  // One loop per rule, the mark inlined in each (a call per word was 2% of
  // w3m's time, whose data segments are large).
  static void scan_piece(const RootPiece& piece, gc::Tracer& t) {
    const BlockLookupScope scope;  // once for the piece, not per word
    if (piece.is_stack || detail::g_all_interior_pointers) {
      scan_words(piece.lo, piece.hi,
                 [&t, &scope](std::uintptr_t w) __attribute__((always_inline)) { t.mark_conservative(scope, w); });
    } else {
      scan_words(piece.lo, piece.hi, [&t, &scope](std::uintptr_t w) __attribute__((always_inline)) {
        t.mark_conservative_if(scope, w, is_displacement);
      });
    }
  }
  std::size_t root_pieces() {
    pieces.clear();
    pieces_wanted = 0;
    root_bytes = 0;
    for_each_piece([this](const RootPiece& piece) {
      root_bytes += static_cast<std::size_t>(piece.hi - piece.lo);
      if (pieces.size() < pieces.capacity()) pieces.push_back(piece);
      ++pieces_wanted;
    });
    return pieces.size();
  }
  void mark_root_piece(std::size_t i, gc::Tracer& t) { scan_piece(pieces[i], t); }
  // Outside the pause (registry lock held): room for every piece the last
  // round wanted, and a quarter more.
  void reserve_root_pieces() {
    if (pieces.capacity() < pieces_wanted) pieces.reserve(pieces_wanted + pieces_wanted / 4);
  }
  void roots(gc::Tracer& t) {
    set_mark_sink(MarkSink{&t, &sink_mark});
    if (pieces_wanted > pieces.size()) {  // the pieces the list had no room for
      std::size_t k = 0;
      for_each_piece([this, &t, &k](const RootPiece& piece) {
        if (k++ >= pieces.size()) scan_piece(piece, t);
      });
    }
    finalization_roots(t);
    run_push_other_roots();  // the client's (GC_push_other_roots), through the sink
  }
  void process_weak(const gc::Liveness& liveness) { finalization_process_weak(liveness); }
  [[gnu::always_inline]] void trace(void* obj, gc::Tracer& t) {
    const BlockLookupScope& scope = t.lookup_scope();  // the collector's, around all of marking
    const MarkSink sink{&t, &sink_mark};  // for a mark procedure, on this marker
    // One loop per rule, each mark inlined in it (a call per word cost a
    // tenth of the marking's instructions on Guile).
    if (detail::g_all_interior_pointers) [[likely]] {
      t_scanned_unflushed += scan_object(
          obj, [&t, &scope](std::uintptr_t w) __attribute__((always_inline)) { t.mark_conservative(scope, w); },
          sink);
    } else {
      t_scanned_unflushed += scan_object(
          obj,
          [&t, &scope](std::uintptr_t w) __attribute__((always_inline)) {
            t.mark_conservative_if(scope, w, is_displacement);
          },
          sink);
    }
    if (t_scanned_unflushed >= kScannedFlushBytes) [[unlikely]] flush_scanned();
  }
  void flush_scanned() noexcept {
    scanned_bytes.fetch_add(t_scanned_unflushed, std::memory_order_relaxed);
    t_scanned_unflushed = 0;
  }

  // A word in the heap or static data (object_scan.h's rule).
  static void mark_heap_word(gc::Tracer& t, const BlockLookupScope& scope, std::uintptr_t w) {
    if (detail::g_all_interior_pointers) [[likely]] {
      t.mark_conservative(scope, w);
    } else {
      t.mark_conservative_if(scope, w, is_displacement);
    }
  }
  static void sink_mark(void* tracer, std::uintptr_t w) {
    const BlockLookupScope scope;
    mark_heap_word(*static_cast<gc::Tracer*>(tracer), scope, w);
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

// GC_MARKERS as bdwgc reads it: the marker threads, the collecting one
// included, from the first collection on. Unset: 0, bdwgc's default, one
// marker per CPU the process may use (at most kMarkersReported), which
// join once the client starts them (GC_start_mark_threads, its first
// GC_pthread_create or GC_allow_register_threads), as bdwgc 8.2 starts its
// helpers (a program that does none of these marks alone, as on bdwgc).
// Measured on 2 cores, quiet (load 0.5-0.8, bench/libgc_bench.py, 3
// rounds each): with two markers GCBench took 0.23 s against 0.27 with
// one, Guile closures.scm 0.42 against 0.46, weak.scm 0.17 against 0.20,
// ECL data.lsp 0.66 against 0.72 and control.lsp 1.09 against 1.39; w3m
// 0.61 either way. (An earlier round on a loaded machine had kept one
// marker: a helper that is not scheduled holds the pause up, bdwgc's
// helpers too.)
// A value outside 1..64 (or not a number) is reported and ignored.
unsigned markers_from_env() {
  const char* v = std::getenv("GC_MARKERS");
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > static_cast<long>(gc::CollectStats::kMarkersReported)) {
    std::fprintf(stderr, "tagheap libgc: GC_MARKERS=%s ignored (1 to %u markers); using the default\n", v,
                 gc::CollectStats::kMarkersReported);
    return 0;
  }
  return static_cast<unsigned>(n);
}
// The default markers, waiting for the client to start them (written under
// the registry lock): 0 once started, or when GC_MARKERS said how many.
std::atomic<unsigned> g_markers_not_started{0};
// GC_set_markers_count before initialisation (0: the default).
std::atomic<unsigned> g_markers_requested{0};
// g_collector->markers(), for GC_get_parallel without the lock.
std::atomic<unsigned> g_markers_now{1};
void note_markers_now(unsigned n) noexcept {
  g_markers_now.store(n, std::memory_order_relaxed);
  GC_parallel = static_cast<int>(n) - 1;  // bdwgc's deprecated variable, read by clients unlocked
}

// The helpers are made outside any pause (pthread_create may wait for a lock
// a stopped thread holds) with every signal blocked, so that neither this
// library's suspend signal nor the program's signals land on them.
void start_marker_threads() noexcept {
  if (g_collector->markers() == 1) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  (void)g_collector->start_markers();  // fewer when the OS refuses threads: slower, never wrong
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

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
  // The conservative marks' lookups nest in this scope: a thread-local
  // count each instead of opening and closing a lookup scope per word (a
  // fifth of Guile's run time without it).
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
  // The policy is policy.h's, so MarkSweep's is unused (its Options cannot
  // follow GC_set_free_space_divisor).
  // Atomic objects (GC_malloc_atomic) are leaves: marked, never traced.
  // GC_MARKERS first, then GC_set_markers_count, then one per CPU, as bdwgc
  // 8.2 chooses; only GC_MARKERS's count marks from the first collection.
  const unsigned asked = markers_from_env();
  if (asked == 0) {
    const unsigned requested = g_markers_requested.load(std::memory_order_relaxed);
    g_markers_not_started.store(
        std::min(requested != 0 ? requested : gc::internal::default_markers(), gc::CollectStats::kMarkersReported));
  }
  g_collector = new (g_collector_storage)
      gc::MarkSweep<Model>(runtime(), *g_model, gc::Options{.markers = asked != 0 ? asked : 1, .leaf_tags = {kTagAtomic}});
  note_markers_now(g_collector->markers());
  g_statics = new std::vector<Range>();
  if (g_print_stats) std::atexit(print_summary);
}

void note_allocation(ThreadRecord& t, std::size_t bytes) {
  t.unflushed_bytes += bytes;
  if (t.unflushed_bytes < kFlushBytes) return;
  flush_allocation_count(t);
  if (collection_due() && g_disabled.load(std::memory_order_relaxed) == 0) collect("budget");
}

// A collection runs (set and cleared under the registry lock): what a mark
// procedure on a helper marker must not wait for.
static std::atomic<bool> g_collection_running{false};

void start_mark_threads() {
  init();
  // From inside a collection (a mark or push procedure, a start callback):
  // a helper marker would wait for the lock its collection holds, and the
  // markers must not change mid-collection. Ignored, as bdwgc leaves it
  // undefined.
  if (g_collection_running.load(std::memory_order_relaxed)) return;
  RegistryLock lock;  // as a collection starts them: one caller at a time
  if (const unsigned n = g_markers_not_started.exchange(0); n > 1) {
    g_collector->set_markers(n);
    note_markers_now(n);
  }
  start_marker_threads();
}

void set_markers_count(unsigned n) noexcept {
  if (!initialized()) g_markers_requested.store(n, std::memory_order_relaxed);  // bdwgc: no effect after
}

unsigned helper_markers() {
  init();
  // No lock: a mark procedure on a helper marker may ask, while the
  // collecting thread holds the registry lock and waits for that helper.
  return g_markers_now.load(std::memory_order_relaxed) - 1;
}

void start_default_markers() {
  init();
  if (g_markers_not_started.load(std::memory_order_relaxed) != 0) start_mark_threads();
}

// Set on the collecting thread from the start callback to the finalizers'
// queueing: a collection asked for meanwhile (by the start callback, a
// push-other-roots or mark procedure, an allocation there) is refused. In
// bdwgc it recursed until the stack overflowed; here gc::MarkSweep threw
// through the client's C frames.
static thread_local bool t_collecting = false;

bool collecting_on_this_thread() noexcept { return t_collecting; }

void print_heap_by_kind(std::FILE* out) {
  init();
  if (t_collecting) {
    std::fprintf(out, "tagheap libgc: no heap statistics from inside a collection\n");
    return;
  }
  RuntimeStats st;
  bool taken = true;
  {
    RegistryLock lock;
    stop_world();
    begin_pause_allocation();
    try {
      st = runtime().stats();
    } catch (const std::logic_error&) {  // inside a walk of the runtime (a finalizer's call)
      taken = false;
    }
    end_pause_allocation();
    resume_world();
  }
  // Printed with the world running: a stopped thread may hold stdio's lock.
  if (!taken) {
    std::fprintf(out, "tagheap libgc: no heap statistics from inside a walk (a finalizer)\n");
    return;
  }
  for (unsigned tag = 0; tag < kTagCount; ++tag) {
    const TagStats& t = st.tags[tag];
    if (t.pages == 0) continue;
    const Kind& k = kind_of_tag(static_cast<Tag>(tag));
    std::fprintf(out,
                 "tagheap libgc: tag %u (%s%s): %zu pages (%zu huge, %zu abandoned), %zu objects, %zu bytes in "
                 "them, %zu bytes of pages\n",
                 tag, k.scanned ? "scanned" : "atomic", k.collectable ? "" : ", uncollectable", t.pages,
                 t.huge_pages, t.abandoned_pages, t.blocks, t.bytes_in_use, t.bytes_committed);
  }
  std::fprintf(out, "tagheap libgc: %zu segments mapped (%zu empty), %zu mapped and %zu unmapped so far\n",
               st.segments, st.empty_segments, st.segments_mapped_total, st.segments_unmapped_total);
}

bool collect(const char* reason) {
  init();
  if (g_disabled.load(std::memory_order_relaxed) != 0) return false;
  if (t_collecting) [[unlikely]] {
    if (std::strcmp(reason, "budget") != 0)
      warn("tagheap libgc: a collection asked for while one runs on this thread (from a start callback, a "
           "push-other-roots or mark procedure) is ignored%.0lu\n",
           0);
    return false;
  }
  ThreadRecord& self = current_thread_or_register();
  flush_allocation_count(self);
  jmp_buf registers;  // callee-saved registers, in this frame
  setjmp(registers);
  __builtin_unwind_init();
  bool run_finalizers = false;
  {
    RegistryLock lock;
    if (g_disabled.load(std::memory_order_relaxed) != 0) return false;
    struct Collecting {
      Collecting() noexcept {
        t_collecting = true;
        g_collection_running.store(true, std::memory_order_relaxed);
      }
      ~Collecting() {
        g_collection_running.store(false, std::memory_order_relaxed);
        t_collecting = false;
      }
    } collecting;
    run_start_callback();
    read_static_roots(*g_statics);
    finalization_before_stop();
    g_model->reserve_root_pieces();
    start_marker_threads();  // made once (and again in a fork child), never in the pause
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t stopped = stop_world();
    begin_pause_allocation();  // MarkSweep's operator new: no malloc until resumed
    const std::size_t allocated = take_allocated_since();
    g_model->scanned_bytes.store(0, std::memory_order_relaxed);
    g_model->root_bytes = 0;
    const gc::CollectStats stats = collect_stopped(*g_statics);
    g_model->flush_scanned();  // this thread's rest; the helpers finished their round before it returned
    const std::size_t scanned = g_model->scanned_bytes.load(std::memory_order_relaxed);
    end_pause_allocation();
    resume_world();
    free_deferred_after_pause();
    finalization_after_resume();
    const auto pause = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    const std::uint64_t n = g_collections.fetch_add(1, std::memory_order_relaxed) + 1;
    after_collection(LiveHeap{.scanned = scanned,
                              .atomic = stats.live_bytes - std::min(stats.live_bytes, scanned),
                              .roots = g_model->root_bytes - std::min(g_model->root_bytes, sanitizer_runtime_bytes())});
    g_total_pause_ns += pause;
    g_max_pause_ns = std::max(g_max_pause_ns, pause);
    g_freed_bytes_total += stats.freed_bytes;
    if (g_print_stats) {
      const FinalizationStats f = last_finalization_stats();
      std::fprintf(stderr,
                   "tagheap libgc: collection %llu (%s): %zu bytes allocated since, live %zu bytes in %zu objects "
                   "(%zu scanned), %zu bytes of roots, freed %zu bytes, next in %zu bytes, %zu threads stopped, "
                   "pause %.3f ms, %u markers (%u took part); links %zu (%zu cleared), finalizers %zu (%zu queued)\n",
                   static_cast<unsigned long long>(n), reason, allocated, stats.live_bytes, stats.live_blocks,
                   scanned, g_model->root_bytes, stats.freed_bytes, budget(), stopped, pause / 1e6, stats.markers,
                   stats.markers_took_part, f.links, f.links_cleared, f.finalizers, f.finalizers_queued);
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
