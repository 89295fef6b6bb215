// mark_sweep.h: a precise (optionally partly conservative) mark-sweep
// collector over a runtime's GC-tagged heaps, with a heap-sizing policy,
// parallel marking and lazy sweeping. The one header a VM needs.
//
// Design
//   Mark bits live in each page's side bitmap (PageView::mark_words), so the
//   VM's objects need no header bit.
//   Policy: Options::heap_growth and min_budget_bytes set the budget of GC
//   bytes allocated between collections (gc/internal/heap_policy.h);
//   collection_due() tells a mutator when to collect.
//   Marking: Options::markers threads (the caller included) mark together.
//   Each has a Tracer with its own stack; idle markers get work from busy
//   ones through a shared list of chunks (gc/internal/mark_worklist.h); mark
//   bits are set with an atomic OR when more than one marker runs. Between
//   the stack and Model::trace, objects pass a small FIFO, prefetched as
//   they enter it. Helper threads are started once and parked between
//   collections (gc/internal/marker_threads.h).
//   Then, serially: ephemerons to a fixpoint (mark_ephemeron), a rescan if a
//   mark stack ran out of memory, weak slots cleared (mark_weak), objects
//   with finalizers (register_finalizer) that became unreachable marked for
//   ordered finalization and queued for run_finalizers
//   (gc/internal/finalizer_table.h), Model::process_weak, Model::finalize
//   for each dead block.
//   Sweeping is lazy: the pause ends when marking ends. The pages keep the
//   collection's marks; the allocator sweeps a page (dead = live & ~marked,
//   freed at once per bitmap word) before it allocates from it, reclaims,
//   abandons, trims or walks it (alloc/internal/runtime_core.h), and the next
//   collection first sweeps whatever is left. Dead huge blocks are freed in
//   the pause (ASan builds poison every dead block in the pause too, so a use
//   after the collection is reported at once). So walks stay exact: no walk after a collection reports a
//   block that it found dead. A runtime with debug_fill sweeps in the pause,
//   so dead blocks read 0xDD as soon as collect() returns.
//
//   Generational mode (Options::generational): sticky mark bits. Survivors
//   keep their mark bits (the lazy sweep leaves them): a marked block is
//   old. A minor collection marks from the roots and from the remembered
//   set and stops at marked objects, so it traces only young survivors and
//   frees only unreachable young blocks; a full one (the first, and when
//   old bytes pass max(min_budget_bytes, heap_growth * old bytes after the
//   last full one) more than that) clears every mark first. write_barrier
//   logs an old object in a side bitmap (Page::log_word) the first time it
//   is written after a collection and remembers it; the minor collection
//   traces it again. A freed block's mark and log bits are cleared
//   (alloc/'s sticky free path), so a new block is born young.
//   Weak slots and ephemerons in old objects see young referents die when
//   the VM calls write_barrier after storing them (a weak store is a store).
//
// Rules for the model (checked where the compiler can):
//   The world is stopped by the caller (see world.h) for collect().
//   roots/trace/process_weak/finalize must not allocate in the runtime, nor
//   create or destroy its thread states (a clear fatal error).
//   With more than one marker, trace runs on several threads at once for
//   different objects: it may only read the object and call the Tracer it
//   is handed. Use Options::markers = 1 for a model that cannot allow that.
//   finalize(obj) must be noexcept (a static_assert says so): it runs for
//   each dead block during the pause, on the collecting thread, after every
//   mark; no dead block is filled, poisoned or freed before every finalizer
//   of the collection has run, so a finalizer may read dead peers. It must
//   not make the object reachable again.
//   An exception from roots, trace or process_weak leaves the runtime as
//   before the collection (every mark undone, nothing freed) and reaches the
//   caller; the next collection is exact.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/runtime.h"
#include "alloc/tagheap.h"
#include "gc/events.h"
#include "gc/internal/finalizer_table.h"
#include "gc/internal/heap_policy.h"
#include "gc/internal/mark_worklist.h"
#include "gc/internal/marker_threads.h"

namespace tagheap::gc {

// Options{} gives the measured defaults (bench/README.md, "Collector policy").
struct Options {
  // A collection is due when GC-tag bytes allocated since the last one pass
  // max(min_budget_bytes, heap_growth * live bytes after it).
  double heap_growth = 1.0;
  std::size_t min_budget_bytes = std::size_t{4} << 20;
  unsigned markers = 0;       // marking threads incl. the caller; 0: one per hardware thread
  bool generational = false;  // sticky mark bits: collect() is minor unless a full one is due
  // Generational mode, for tests and debugging: after each minor collection,
  // a mark from the roots (freeing nothing) checks that every reachable
  // object survived; a store the VM did not follow with write_barrier is
  // fatal, naming the object that holds the pointer and its target.
  bool verify_minor = false;
};

struct CollectStats {
  std::size_t live_blocks = 0, live_bytes = 0;    // marked by this collection
  std::size_t freed_blocks = 0, freed_bytes = 0;  // found dead (freed now or by the lazy sweep)
  std::uint64_t pause_ns = 0;  // the whole collect() call
  std::uint64_t mark_ns = 0;   // roots to the end of marking (weak processing and finalizers included)
  std::uint64_t sweep_ns = 0;  // in the pause: finishing the previous lazy sweep, freeing dead huge blocks
  std::size_t pages_swept = 0;        // of the previous collection's, finished in this pause
  std::size_t pages_to_sweep = 0;     // GC pages left to the lazy sweep
  std::size_t roots_conservative = 0; // words that hit a GC block
  std::size_t finalizers_queued = 0;  // unreachable finalizable objects queued for run_finalizers
  std::size_t finalizers_waiting = 0; // unreachable, but reached by another one not finalized yet (or a cycle)
  unsigned markers = 0;               // markers that ran
  bool minor = false;                 // generational: a minor collection (live_* count young survivors)
  std::size_t remembered = 0;         // minor: old objects a write barrier logged, traced again
  std::size_t old_bytes = 0;          // generational: bytes of old (marked) objects after it
  // Bytes marked by each marker (index 0: the collecting thread; markers
  // past the last slot count in it).
  static constexpr unsigned kMarkersReported = 64;
  std::size_t marked_bytes_by_marker[kMarkersReported] = {};
};

template <class M>
class MarkSweep;

class Tracer {
 public:
  // obj: the start of a GC block of this runtime, or nullptr. A block of a
  // non-GC tag is ignored (it is not the collector's to free).
  [[gnu::always_inline]] void mark(void* obj) {
    if (obj == nullptr || obj == ignore_) return;
    PageView page = PageView::of(obj);
    if constexpr (tagheap::internal::kChecked) check_block(obj, page);
    if (!gc_tags_.contains(page.tag())) [[unlikely]] {
      if (verifier_ != nullptr) verify_reach(obj, page);
      return;
    }
    const std::uint32_t i = page.index_of(obj);
    std::atomic_ref<std::uint64_t> word(page.mark_word(i >> 6));
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    const std::uint64_t old = word.load(std::memory_order_relaxed);
    if (old & bit) return;
    if (parallel_) {
      if (word.fetch_or(bit, std::memory_order_relaxed) & bit) return;  // another marker won
    } else {
      word.store(old | bit, std::memory_order_relaxed);
    }
    ++marked_blocks_;
    marked_bytes_ += page.block_size();
    if (stack_.size() < stack_.capacity()) [[likely]] {
      stack_.push_back(obj);  // never allocates
    } else {
      push_growing(obj);
    }
  }
  // Any word (a stack slot, a register): marks the GC block of this runtime
  // that contains it, if any, as the Boehm collector does for its roots.
  // Returns whether it hit one.
  bool mark_conservative(std::uintptr_t word) {
    void* block = find_block(reinterpret_cast<const void*>(word));
    if (block == nullptr) return false;
    PageView page = PageView::of(block);
    if (verifier_ != nullptr) [[unlikely]] {
      verify_reach(block, page);
      return true;
    }
    if (page.runtime() != runtime_ || !gc_tags_.contains(page.tag())) return false;
    ++conservative_hits_;
    mark(block);
    return true;
  }
  // Scans [begin, end) word by word with mark_conservative.
  void mark_range_conservative(const void* begin, const void* end) {
    auto p = reinterpret_cast<std::uintptr_t>(begin) & ~std::uintptr_t{7};
    for (; p + sizeof(std::uintptr_t) <= reinterpret_cast<std::uintptr_t>(end); p += sizeof(std::uintptr_t))
      mark_conservative(*reinterpret_cast<const std::uintptr_t*>(p));
  }
  // A weak reference: *slot does not keep its object alive. After marking,
  // *slot is set to nullptr unless its object was marked. The slot must stay
  // where it is until the collection ends (a field of a live object, or a
  // root). A null slot, or *slot not a GC block of this runtime, is ignored.
  void mark_weak(void** slot);
  // An ephemeron: value is marked (and traced) iff key is marked, by any
  // path, to a fixpoint. A null key or value is ignored.
  void mark_ephemeron(void* key, void* value);
  bool is_marked(const void* obj) const {
    PageView page = PageView::of(obj);
    const std::uint32_t i = page.index_of(obj);
    return (std::atomic_ref<std::uint64_t>(page.mark_word(i >> 6)).load(std::memory_order_relaxed) >> (i & 63)) & 1;
  }

 private:
  template <class M>
  friend class MarkSweep;
  Tracer(tagheap::internal::RuntimeCore* runtime, TagSet gc_tags, std::vector<void*>& stack, std::size_t stack_limit)
      : runtime_(runtime), gc_tags_(gc_tags), stack_(stack), stack_limit_(stack_limit) {}
  void check_block(void* obj, PageView page) const;
  // Grows the mark stack; when memory is short the object stays marked but
  // unpushed and `overflowed_` asks the collector to rescan.
  void push_growing(void* obj) noexcept;
  bool is_gc_block(const void* obj) const noexcept;
  // Traces obj again though it is marked (a remembered old object).
  void push_for_trace(void* obj) {
    if (stack_.size() < stack_.capacity()) stack_.push_back(obj);
    else push_growing(obj);
  }
  // Verification (MarkSweep::verify_minor): every object reached must be marked.
  struct Verifier {
    TagSet gc_tags;
    std::unordered_set<void*> seen;
    void* current = nullptr;  // the object being traced
  };
  void verify_reach(void* obj, PageView page);

  tagheap::internal::RuntimeCore* runtime_;
  TagSet gc_tags_;
  std::vector<void*>& stack_;  // the collector's, kept across collections
  std::size_t stack_limit_;    // entries the stack may grow to
  bool parallel_ = false;      // other markers run: set mark bits atomically
  void* ignore_ = nullptr;     // finalization: the object whose referents are being marked
  Verifier* verifier_ = nullptr;
  bool overflowed_ = false;
  std::size_t marked_blocks_ = 0, marked_bytes_ = 0;
  std::size_t conservative_hits_ = 0;
  std::vector<void**> weak_slots_;
  std::vector<std::pair<void*, void*>> ephemerons_;
  bool weak_overflowed_ = false;  // a weak slot or ephemeron could not be recorded: treated as strong
};

// After marking, before the lazy sweep: whether an object survives.
class Liveness {
 public:
  // Any allocated block: false for a GC block this collection found dead,
  // true for a marked one and for blocks of non-GC tags.
  bool is_live(const void* obj) const;

 private:
  template <class M>
  friend class MarkSweep;
  explicit Liveness(TagSet gc_tags) : gc_tags_(gc_tags) {}
  TagSet gc_tags_;
};

template <class M>
concept CollectorModel = requires(M& m, void* obj, Tracer& t) {
  m.roots(t);
  m.trace(obj, t);
};
template <class M>
concept HasFinalize = requires(M& m, void* obj) { m.finalize(obj); };
template <class M>
concept HasProcessWeak = requires(M& m, const Liveness& l) { m.process_weak(l); };

namespace internal {
// The default marker count: one per hardware thread.
unsigned default_markers() noexcept;
// World stopped: zeroes every mark bit of the pages of `tags` (an aborted
// collection leaves the runtime as before it).
void clear_marks(Runtime& runtime, TagSet tags, bool logs_too) noexcept;
// ASan builds, after the finalizers: every dead block is poisoned now, so a
// use after the collection is reported before the lazy sweep frees it.
void poison_dead(Runtime& runtime, TagSet tags) noexcept;
// steady_clock, in nanoseconds.
std::uint64_t now_ns() noexcept;
}  // namespace internal

template <class Model>
class MarkSweep {
 public:
  MarkSweep(Runtime& runtime, Model& model, Options options = {})
      : runtime_(runtime),
        model_(model),
        options_(options),
        gc_tags_(runtime.options().gc_tags),
        policy_(options.heap_growth, options.min_budget_bytes),
        markers_(options.markers != 0 ? options.markers : internal::default_markers()) {
  }
  MarkSweep(const MarkSweep&) = delete;
  MarkSweep& operator=(const MarkSweep&) = delete;

  // Bounds each marker's mark stack (entries). Past it, and whenever memory
  // for it runs out, marked objects wait for a rescan instead: slower,
  // never wrong.
  void limit_mark_stack(std::size_t entries) { stack_limit_ = std::max<std::size_t>(entries, 1); }
  void set_listener(GcListener* listener) noexcept { listener_ = listener; }
  const Options& options() const noexcept { return options_; }
  unsigned markers() const noexcept { return markers_; }

  // Any mutator thread, no lock: GC bytes allocated since the last
  // collection have passed the budget.
  bool collection_due() const noexcept { return policy_.due(runtime_.allocated_bytes(gc_tags_)); }
  std::uint64_t budget_bytes() const noexcept { return policy_.budget(); }

  // The world is stopped by the caller. Frees (lazily) every unreachable GC
  // block; never a reachable one.
  CollectStats collect() { return collect_impl(options_.generational && !full_due()); }
  CollectStats collect_full() { return collect_impl(false); }

  // Finalizers (gc/internal/finalizer_table.h for the order): once obj (a GC
  // block of this runtime) is unreachable, it and everything it reaches
  // are kept and fn(obj, data) is queued for run_finalizers. fn == nullptr
  // unregisters. Returns the previous registration (fn nullptr if none).
  // Any mutator thread; throws std::bad_alloc when the table cannot grow.
  std::pair<FinalizerFn, void*> register_finalizer(void* obj, FinalizerFn fn, void* data,
                                                   FinalizerOrder order = FinalizerOrder::kOrdered) {
    const auto old = finalizers_.set(obj, fn, data, order);
    return {old.fn, old.data};
  }
  // Runs the queued finalizers on the calling thread, outside any pause (a
  // finalizer may allocate, lock, register again or collect). Returns how
  // many ran. A finalizer that throws has run: the exception reaches the caller.
  std::size_t run_finalizers() {
    std::size_t n = 0;
    internal::FinalizerTable::Ready r;
    while (finalizers_.pop(r)) {
      ++n;
      r.fn(r.obj, r.data);
    }
    return n;
  }
  std::size_t finalizers_queued() const { return finalizers_.queued(); }
  std::size_t finalizers_registered() const { return finalizers_.registered(); }

  // Generational mode: after storing a GC pointer into GC object obj. When
  // obj is old (marked) and not yet logged, logs it (a side bit) and
  // remembers it: the next minor collection traces it again. Any mutator
  // thread, any object of this runtime; a no-op outside generational mode,
  // for young or already logged objects (one bitmap test, no atomic write).
  void write_barrier(void* obj) noexcept {
    if (!options_.generational || obj == nullptr) return;
    const PageView page = PageView::of(obj);
    const std::uint32_t i = page.index_of(obj);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (!(std::atomic_ref<std::uint64_t>(page.mark_word(i >> 6)).load(std::memory_order_relaxed) & bit)) return;
    std::atomic_ref<std::uint64_t> log(page.log_word(i >> 6));
    if (log.load(std::memory_order_relaxed) & bit) return;
    if (log.fetch_or(bit, std::memory_order_relaxed) & bit) return;  // another thread logged it
    remember(obj);
  }

 private:
  struct MarkerState {
    std::vector<void*> stack;
    std::uint64_t start_ns = 0, end_ns = 0;
  };
  struct MarkJob {
    MarkSweep* self;
    Tracer* first;                 // marker 0's
    std::vector<Tracer>* helpers;  // markers 1..n-1
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    Tracer& tracer(unsigned i) { return i == 0 ? *first : (*helpers)[i - 1]; }
  };
  MarkerState& state(unsigned i) { return i == 0 ? first_state_ : helper_states_[i - 1]; }

  CollectStats collect_impl(bool minor);
  bool full_due() const noexcept {
    return force_full_ || !had_full_ || remembered_overflow_.load(std::memory_order_relaxed) ||
           old_bytes_ >= full_threshold_;
  }
  void remember(void* obj) noexcept {
    std::lock_guard lock(remembered_mu_);
    try {
      remembered_.push_back(obj);
    } catch (...) {
      remembered_overflow_.store(true, std::memory_order_relaxed);  // the next collection is full
    }
  }
  void verify_minor();
  static void mark_job(void* context, unsigned marker) noexcept;
  void mark_from_roots(Tracer& t, MarkJob& job);
  void drain(Tracer& t);
  void settle(Tracer& t);
  bool rescan_marked(Tracer& t);
  void finish_weak(Tracer& t);
  void finalize_dead();
  void mark_for_finalization(Tracer& t, std::vector<void*>& ready, CollectStats& stats);
  void count_dead(CollectStats& stats);
  void emit(GcPhase phase, std::size_t bytes = 0, const CollectStats* stats = nullptr) noexcept {
    if (listener_ != nullptr) listener_->on_gc_event(GcEvent{phase, collections_, internal::now_ns(), 0, 0, bytes, stats});
  }

  Runtime& runtime_;
  Model& model_;
  Options options_;
  TagSet gc_tags_;
  internal::HeapPolicy policy_;
  unsigned markers_;
  MarkerState first_state_;                 // marker 0's: no allocation needed to collect
  std::vector<MarkerState> helper_states_;  // markers 1..n-1
  internal::MarkWorklist worklist_;
  internal::MarkerThreads threads_;
  internal::FinalizerTable finalizers_;
  // Generational state. remembered_: old objects logged since the last
  // collection; tracing[]: those the current minor collection traces.
  std::mutex remembered_mu_;
  std::vector<void*> remembered_, tracing_;
  std::atomic<bool> remembered_overflow_{false};
  bool sticky_ = false, had_full_ = false, force_full_ = false;
  std::size_t old_bytes_ = 0, old_blocks_ = 0, full_threshold_ = 0;
  GcListener* listener_ = nullptr;
  std::size_t stack_limit_ = SIZE_MAX;
  std::uint64_t collections_ = 0;
};

// --- implementation ---

template <class Model>
CollectStats MarkSweep<Model>::collect_impl(bool minor) {
  // Checked here, not on the class: a model may own its MarkSweep.
  static_assert(CollectorModel<Model>, "Model needs roots(Tracer&) and trace(void*, Tracer&)");
  if constexpr (HasFinalize<Model>)
    static_assert(noexcept(std::declval<Model&>().finalize(std::declval<void*>())),
                  "Model::finalize must be noexcept: a collection cannot undo the finalizers that already ran");
  CollectStats stats;
  stats.minor = minor;
  ++collections_;
  const std::uint64_t t0 = internal::now_ns();
  emit(GcPhase::kCollectionStart, policy_.allocated_since(runtime_.allocated_bytes(gc_tags_)));

  // The previous collection's marks must be swept before new ones are set.
  for_each_page(runtime_, gc_tags_, [&](PageView) {
    ++stats.pages_swept;
    return true;
  });
  if (options_.generational) {
    if (!sticky_) {
      make_marks_sticky(runtime_, gc_tags_);
      sticky_ = true;
    }
    std::lock_guard lock(remembered_mu_);
    tracing_.clear();
    if (minor) {
      tracing_.swap(remembered_);  // their log bits are cleared as they are traced
    } else {
      // A full collection marks everything afresh: old objects, logs and the
      // remembered set go.
      remembered_.clear();
      remembered_overflow_.store(false, std::memory_order_relaxed);
      internal::clear_marks(runtime_, gc_tags_, /*logs_too=*/true);
    }
    stats.remembered = tracing_.size();
  }
  const std::uint64_t t1 = internal::now_ns();
  emit(GcPhase::kSweepCompleted);

  // Helpers need memory for their state: short of it, marker 0 marks alone
  // (a collection must work when memory has run out).
  unsigned n = markers_;
  std::vector<Tracer> helpers;
  Tracer first(&runtime_.core(), gc_tags_, first_state_.stack, stack_limit_);
  if (n > 1) {
    try {
      if (helper_states_.size() < n - 1) helper_states_.resize(n - 1);
      helpers.reserve(n - 1);
      for (unsigned i = 1; i < n; ++i)
        helpers.push_back(Tracer(&runtime_.core(), gc_tags_, helper_states_[i - 1].stack, stack_limit_));
      n = threads_.start(n);  // fewer when the OS refuses threads
    } catch (const std::bad_alloc&) {
      n = 1;
    }
  }
  stats.markers = n;
  MarkJob job{this, &first, &helpers, nullptr};
  std::vector<void*> ready;  // objects whose finalizers are due
  try {
    worklist_.reset(n);
    first.parallel_ = n > 1;
    for (Tracer& t : helpers) t.parallel_ = n > 1;
    threads_.run(n, &MarkSweep::mark_job, &job);
    if (job.failed.load(std::memory_order_relaxed)) std::rethrow_exception(job.error);
    first.parallel_ = false;
    for (unsigned i = 1; i < n; ++i) {
      // Weak slots and ephemerons the helpers met: settled by marker 0.
      Tracer& t = helpers[i - 1];
      t.parallel_ = false;
      for (void** slot : t.weak_slots_) first.mark_weak(slot);
      t.weak_slots_.clear();
      for (auto& [k, v] : t.ephemerons_) first.mark_ephemeron(k, v);
      t.ephemerons_.clear();
    }
    settle(first);
    finish_weak(first);  // weak slots do not see objects kept only for their finalizers
    if (!finalizers_.empty()) mark_for_finalization(first, ready, stats);
    if constexpr (HasProcessWeak<Model>) model_.process_weak(Liveness(gc_tags_));
  } catch (...) {
    first_state_.stack.clear();
    for (MarkerState& m : helper_states_) m.stack.clear();
    first.weak_slots_.clear();
    first.ephemerons_.clear();
    // Every mark goes: nothing was freed, and the runtime is as before (in
    // generational mode every object is young again, and the next
    // collection is full).
    internal::clear_marks(runtime_, gc_tags_, /*logs_too=*/true);
    force_full_ = options_.generational;
    throw;
  }
  if (minor && options_.verify_minor) verify_minor();
  for (unsigned i = 0; i < n; ++i) {
    Tracer& t = job.tracer(i);
    stats.live_blocks += t.marked_blocks_;
    stats.live_bytes += t.marked_bytes_;
    stats.roots_conservative += t.conservative_hits_;
    stats.marked_bytes_by_marker[std::min(i, CollectStats::kMarkersReported - 1)] += t.marked_bytes_;
    if (listener_ != nullptr)
      listener_->on_gc_event(GcEvent{GcPhase::kMarkerDone, collections_, state(i).end_ns, i, state(i).start_ns,
                                     t.marked_bytes_, nullptr});
  }
  // Nothing can throw now: queue the finalizers (a queue that cannot grow
  // leaves its object registered, and marked: ready again next time).
  for (void* obj : ready) finalizers_.make_ready(obj);
  if constexpr (HasFinalize<Model>) finalize_dead();
  if constexpr (tagheap::internal::asan::kEnabled) internal::poison_dead(runtime_, gc_tags_);
  count_dead(stats);
  const std::uint64_t t2 = internal::now_ns();
  emit(GcPhase::kMarkDone);

  begin_lazy_sweep(runtime_, gc_tags_, /*keep_marks=*/options_.generational);
  // A debugging runtime wants dead blocks to read 0xDD as soon as
  // collect() returns (invariant 7): it sweeps in the pause.
  if (runtime_.options().debug_fill) for_each_page(runtime_, gc_tags_, [](PageView) { return true; });
  if (options_.generational) {
    old_bytes_ = (minor ? old_bytes_ : 0) + stats.live_bytes;
    old_blocks_ = (minor ? old_blocks_ : 0) + stats.live_blocks;
    stats.old_bytes = old_bytes_;
    if (!minor) {
      had_full_ = true;
      force_full_ = false;
      full_threshold_ = old_bytes_ + std::max<std::size_t>(options_.min_budget_bytes,
                                                           static_cast<std::size_t>(options_.heap_growth *
                                                                                    static_cast<double>(old_bytes_)));
    }
  }
  policy_.after_collection(runtime_.allocated_bytes(gc_tags_), options_.generational ? old_bytes_ : stats.live_bytes);
  const std::uint64_t t3 = internal::now_ns();
  stats.sweep_ns = (t1 - t0) + (t3 - t2);
  stats.mark_ns = t2 - t1;
  stats.pause_ns = t3 - t0;
  emit(GcPhase::kCollectionEnd, 0, &stats);
  return stats;
}

template <class Model>
void MarkSweep<Model>::mark_job(void* context, unsigned marker) noexcept {
  auto& job = *static_cast<MarkJob*>(context);
  MarkSweep& self = *job.self;
  Tracer& t = job.tracer(marker);
  MarkerState& state = self.state(marker);
  state.start_ns = internal::now_ns();
  try {
    if (marker == 0) {
      for (void* obj : self.tracing_) {  // remembered old objects: traced again
        const PageView page = PageView::of(obj);
        const std::uint32_t i = page.index_of(obj);
        std::atomic_ref<std::uint64_t>(page.log_word(i >> 6)).fetch_and(~(std::uint64_t{1} << (i & 63)),
                                                                        std::memory_order_relaxed);
        if (t.is_marked(obj)) t.push_for_trace(obj);  // freed and reused since: young, found from the roots if live
      }
      self.finalizers_.for_each_queued([&](void* obj) { t.mark(obj); });  // until their finalizers ran
      self.model_.roots(t);
      self.emit(GcPhase::kRootsDone);
    }
    for (;;) {
      self.drain(t);
      if (job.failed.load(std::memory_order_relaxed) || !self.worklist_.take(t.stack_)) break;
    }
  } catch (...) {
    if (!job.failed.exchange(true)) job.error = std::current_exception();
    self.worklist_.abort();
  }
  state.end_ns = internal::now_ns();
}

// Traces until the marker's stack is empty. Objects pass through a FIFO
// between the stack and model.trace, prefetched as they enter it, so the
// memory of the next few objects is on its way while one is traced (the
// mark loop is otherwise bound by one cache miss per object). With other
// markers running, every few dozen objects it offers half its stack to the
// idle ones.
template <class Model>
void MarkSweep<Model>::drain(Tracer& t) {
  constexpr std::size_t kAhead = 64;  // a power of two
  constexpr unsigned kShareEvery = 64;
  std::vector<void*>& stack = t.stack_;
  void* ring[kAhead];
  std::size_t head = 0, count = 0;
  unsigned until_share = kShareEvery;
  for (;;) {
    while (count < kAhead && !stack.empty()) {
      void* obj = stack.back();
      stack.pop_back();
      __builtin_prefetch(obj);
      ring[(head + count++) & (kAhead - 1)] = obj;
    }
    if (count == 0) return;
    void* obj = ring[head];
    head = (head + 1) & (kAhead - 1);
    --count;
    model_.trace(obj, t);
    if (t.parallel_ && --until_share == 0) [[unlikely]] {
      until_share = kShareEvery;
      if (worklist_.aborted()) {
        stack.clear();
        return;
      }
      if (worklist_.wants_work()) worklist_.share(stack);
    }
  }
}

// Serial, after the markers: ephemerons whose keys got marked, and a rescan
// when a mark stack ran out of room, until neither finds more.
template <class Model>
void MarkSweep<Model>::settle(Tracer& t) {
  for (;;) {
    drain(t);
    bool progress = false;
    std::vector<std::pair<void*, void*>>& eph = t.ephemerons_;
    for (std::size_t i = 0; i < eph.size();) {
      if (t.is_marked(eph[i].first)) {
        t.mark(eph[i].second);
        eph[i] = eph.back();
        eph.pop_back();
        progress = true;
      } else {
        ++i;
      }
    }
    if (progress) continue;
    if (!t.overflowed_) return;
    t.overflowed_ = false;
    rescan_marked(t);
  }
}

// Out of memory for a mark stack, some marked objects were never traced:
// trace every marked object again (each pass marks at least the children
// the last one dropped).
template <class Model>
bool MarkSweep<Model>::rescan_marked(Tracer& t) {
  for_each_page(runtime_, gc_tags_, [&](PageView page) {
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w)
      for (std::uint64_t m = page.mark_word(w) & page.live_word(w); m; m &= m - 1) {
        model_.trace(page.block(w * 64 + static_cast<std::uint32_t>(std::countr_zero(m))), t);
        drain(t);
      }
    return true;
  });
  return true;
}

// After marking from the roots: which unreachable finalizable objects are
// ready (see internal/finalizer_table.h), each marked with what it reaches.
template <class Model>
void MarkSweep<Model>::mark_for_finalization(Tracer& t, std::vector<void*>& ready, CollectStats& stats) {
  const auto entries = finalizers_.snapshot();
  std::vector<void*> unreachable;
  unreachable.reserve(entries.size());
  ready.reserve(entries.size());
  for (const auto& [obj, e] : entries) {
    if (t.is_marked(obj)) continue;
    if (e.order == FinalizerOrder::kUnordered) ready.push_back(obj);
    else unreachable.push_back(obj);
  }
  // What each unreachable ordered object reaches: a longer way back to
  // itself marks it (a cycle: it waits, as in Boehm's ordered mode).
  for (void* obj : unreachable) {
    if (t.is_marked(obj)) continue;  // reached from another one: its children are marked already
    t.ignore_ = obj;  // a direct self-reference does not count
    model_.trace(obj, t);
    t.ignore_ = nullptr;
    settle(t);
  }
  for (void* obj : unreachable) {
    if (t.is_marked(obj)) ++stats.finalizers_waiting;
    else ready.push_back(obj);
  }
  for (void* obj : ready) t.mark(obj);
  settle(t);
  finish_weak(t);  // slots met while marking for finalization
  stats.finalizers_queued = ready.size();
}

template <class Model>
void MarkSweep<Model>::finish_weak(Tracer& t) {
  for (void** slot : t.weak_slots_)
    if (*slot != nullptr && t.is_gc_block(*slot) && !t.is_marked(*slot)) *slot = nullptr;
  t.weak_slots_.clear();
  t.ephemerons_.clear();  // keys still unmarked: their values stay unmarked
}

// After a minor collection's marking: everything reachable from the roots
// (and queued finalizers) must be marked, or the sweep would free it.
template <class Model>
void MarkSweep<Model>::verify_minor() {
  Tracer::Verifier verifier{gc_tags_, {}, nullptr};
  std::vector<void*> stack;
  Tracer vt(&runtime_.core(), TagSet{}, stack, SIZE_MAX);  // no GC tag: every mark() verifies
  vt.verifier_ = &verifier;
  finalizers_.for_each_queued([&](void* obj) { vt.mark(obj); });
  model_.roots(vt);
  while (!stack.empty()) {
    void* obj = stack.back();
    stack.pop_back();
    verifier.current = obj;
    model_.trace(obj, vt);
  }
}

// Finalizers run for every dead block before any dead block is freed.
template <class Model>
void MarkSweep<Model>::finalize_dead() {
  for_each_page(runtime_, gc_tags_, [&](PageView page) {
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w)
      for (std::uint64_t d = page.live_word(w) & ~page.mark_word(w); d; d &= d - 1)
        model_.finalize(page.block(w * 64 + static_cast<std::uint32_t>(std::countr_zero(d))));
    return true;
  });
}

// Found dead = blocks in use minus blocks marked, per page: no bitmap read.
template <class Model>
void MarkSweep<Model>::count_dead(CollectStats& stats) {
  std::size_t used_blocks = 0, used_bytes = 0, pages = 0;
  for_each_page(runtime_, gc_tags_, [&](PageView page) {
    ++pages;
    used_blocks += page.live_blocks();
    used_bytes += page.live_blocks() * page.block_size();
    return true;
  });
  stats.pages_to_sweep = pages;
  // A minor collection keeps the old objects without marking them again.
  const std::size_t kept_blocks = stats.live_blocks + (stats.minor ? old_blocks_ : 0);
  const std::size_t kept_bytes = stats.live_bytes + (stats.minor ? old_bytes_ : 0);
  stats.freed_blocks = used_blocks > kept_blocks ? used_blocks - kept_blocks : 0;
  stats.freed_bytes = used_bytes > kept_bytes ? used_bytes - kept_bytes : 0;
}

}  // namespace tagheap::gc
