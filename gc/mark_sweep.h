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
//   ones through a shared list of chunks (gc/internal/mark_worklist.h); each
//   marker sets mark bits a batch at a time, one OR per bitmap word (atomic
//   when more than one marker runs: Tracer::batch_mark). Between
//   the stack and Model::trace, objects pass a small FIFO, prefetched as
//   they enter it. Blocks of Options::leaf_tags are marked and never
//   pushed: no path hands one to Model::trace. Helper threads are started once and parked between
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
//   last full one) more than that) clears every mark first. A collection
//   is due when the allocation since the last one passes
//   max(min_budget_bytes, nursery_growth * old bytes). write_barrier
//   remembers an old object the first time it is written after a
//   collection; the minor collection traces it again. It tests one bit,
//   the object's unlogged bit (an address-keyed side bitmap per segment,
//   alloc/internal/segment.h), and clears it when it remembers the object.
//   Invariant: every old object not remembered since the last collection
//   has its unlogged bit set. A minor collection sets the bits of what it
//   marks (young survivors, and the remembered objects it traces again);
//   a full one sets the bits of every GC page (its survivors are not
//   known before it ends; a bit over a young or dead block costs one slow
//   barrier, which finds the mark bit clear and clears it). A freed
//   block's mark and log bits are cleared (alloc/'s sticky free path), so
//   a new block is born young.
//   Weak slots and ephemerons in old objects see young referents die when
//   the VM calls write_barrier after storing them (a weak store is a store).
//
//   Incremental mode (Options::incremental): a full collection runs as a
//   cycle of collect() pauses (first what is left of the last lazy sweep,
//   then roots and logged objects, then marking, each for at most
//   mark_step_ns), paced by allocation (gc/internal/incremental_pacer.h);
//   write_barrier logs marked objects while a cycle runs, and allocation
//   is white. The argument is in gc/internal/incremental_impl.h.
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
//   Root pieces (optional: root_pieces() and mark_root_piece(i, t)): roots
//   every marker scans, for a model with much to scan there (a
//   conservative runtime's data segments and stacks). root_pieces() runs
//   on the collecting thread at the start of each marking round, before
//   roots(), and says how many pieces there are; each marker that takes
//   part then claims pieces one at a time (an atomic counter) and calls
//   mark_root_piece(i, its tracer) for each, at once with the others, as it
//   calls trace. The collecting thread claims until none is left, so every
//   piece is marked in every round whichever helpers take part; a helper
//   that comes late finds none.
//   roots, mark_root_piece and trace run inside a lookup scope the
//   collector holds on that marker's thread (Tracer::lookup_scope): a model
//   that scans words conservatively passes it to mark_conservative(scope,
//   word) instead of opening one per object.
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
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/runtime.h"
#include "alloc/tagheap.h"
#include "gc/events.h"
#include "gc/tracer.h"
#include "gc/internal/finalizer_table.h"
#include "gc/internal/heap_policy.h"
#include "gc/internal/incremental_pacer.h"
#include "gc/internal/mark_worklist.h"
#include "gc/internal/marker_threads.h"

namespace tagheap::gc {

// Options{} gives the measured defaults (bench/README.md, "Collector policy").
struct Options {
  // A collection is due when GC-tag bytes allocated since the last one pass
  // max(min_budget_bytes, heap_growth * live bytes after it). 1.25 and 8
  // MiB: binary-trees at depths 18-22 under Boehm's peak RSS at every depth
  // (1.5 peaked 5% over it at depth 21, where a collection comes just before
  // the stretch tree dies), for 5-13% more time on GCBench, mt-GCBench and
  // binary-trees, still 0.4-0.5x Boehm's (bench/README.md, "Collector
  // policy").
  double heap_growth = 1.25;
  std::size_t min_budget_bytes = std::size_t{8} << 20;
  unsigned markers = 0;       // marking threads incl. the caller; 0: one per CPU the process may use
  // With markers = 0, a stop-the-world collection marks on every marker
  // thread only when it is expected to mark at least this many bytes (what
  // the last collection of its kind marked), on the collecting thread alone
  // below, where waking a helper costs about what it adds. 4 MiB: on the
  // tree of pause_tagheap, two markers take 0.67-0.77x one marker's pause
  // at 5.3 MiB marked and 0.75-0.94x at 2.7; mt-GCBench's collections
  // (16 MiB) 1.9 ms against 3.0 (bench/README.md, "Helpers off the
  // collecting thread's CPU"). It was 24 MiB while helpers often shared
  // the collecting thread's CPU. An explicit markers count is used as it
  // is.
  std::size_t parallel_mark_bytes = std::size_t{4} << 20;
  bool generational = false;  // sticky mark bits: collect() is minor unless a full one is due
  // Generational mode: a minor collection is due when GC-tag bytes
  // allocated since the last collection pass max(min_budget_bytes,
  // nursery_growth * old bytes); heap_growth then sets when a full one is
  // due. 0.5: against heap_growth's 1.5, 25-45% less peak RSS on GCBench,
  // mt-GCBench and binary-trees 18-21 for the same or less CPU time, as
  // the nursery's memory is reused sooner (bench/README.md, "Generational
  // mode"). <= 0: heap_growth.
  double nursery_growth = 0.5;
  // Generational mode: at most this many minor collections in a row; the
  // next one is full (0, the default: no bound, fulls only by heap_growth).
  // Old objects that die stay until a full collection, and fulls come when
  // the old bytes grow by heap_growth: a program whose old data dies and is
  // not replaced (binary-trees' stretch tree, promoted just before it dies)
  // keeps it, and sizes the nursery by it. bdwgc's GC_full_freq (19) bounds
  // the same thing. Not on by default: at 32, binary-trees 21 peaked at 298
  // MiB instead of 455 and 22 at 901 instead of 964, but 19 and 20 at 15-20%
  // more (bench/README.md, "Generational mode").
  unsigned full_after_minors = 0;
  // Generational mode, for tests and debugging: after each minor collection,
  // a mark from the roots (freeing nothing) checks that every reachable
  // object survived; a store the VM did not follow with write_barrier is
  // fatal, naming the object that holds the pointer and its target.
  bool verify_minor = false;
  // Incremental marking (gc/internal/incremental_impl.h): collect() runs a
  // full collection as a cycle of short pauses (a first one that marks the
  // roots, mark steps of at most mark_step_ns each, paced by allocation, and
  // a last one that finishes marking and starts the lazy sweep), while the
  // mutators run between them and call write_barrier after every store of
  // a GC pointer into a GC object. Not with generational (yet).
  bool incremental = false;
  // Marking time of one incremental pause: 0.4 ms leaves room for the roots
  // and the lazy sweep's leftovers within a 0.5 ms pause (bench/README.md,
  // "Incremental marking").
  std::uint64_t mark_step_ns = 400'000;
  // With markers = 0 (one per usable CPU), steps of at least this long
  // mark on every marker thread, shorter ones on the collecting thread
  // alone (gc/internal/incremental_impl.h says why); an explicit markers
  // count is used as it is.
  static constexpr std::uint64_t kParallelStepNs = 2'000'000;
  // Incremental mode, for tests and debugging: at the end of each cycle, a
  // mark from the roots checks that every reachable object was marked; a
  // store the VM did not follow with write_barrier is fatal, naming the
  // object that holds the pointer and its target.
  bool verify_incremental = false;
  // GC tags whose blocks hold no pointer the collector must follow (strings,
  // numbers, byte buffers: the Boehm collector's atomic objects): marked as
  // any other, never pushed nor handed to Model::trace, so marking one
  // costs its mark bit alone, not a push, a prefetch of its memory and a
  // call, on every path (rescans, verification, a barrier on one, ordered
  // finalization). Tags that are not GC tags are ignored. An ephemeron
  // keyed by such a block still works.
  TagSet leaf_tags{};
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
  unsigned markers = 0;               // markers it ran with: the caller and the helpers offered work
  unsigned markers_took_part = 0;     // of those, the ones that marked: a helper the OS had not
                                      // scheduled when marking ended takes no part (marks 0 bytes)
  bool minor = false;                 // generational: a minor collection (live_* count young survivors)
  std::size_t remembered = 0;         // minor: old objects a write barrier logged, traced again
  std::size_t old_bytes = 0;          // generational: bytes of old (marked) objects after it
  // Incremental mode: a pause of a cycle (live_* and marked_bytes_by_marker
  // then count the cycle so far; freed_* are set when it is done).
  bool incremental = false;
  bool cycle_done = true;          // marking is over and the lazy sweep began (false: more pauses follow)
  bool finished_at_limit = false;  // the allocation reached the budget first: this pause marked to the end
  std::size_t cycle_pauses = 0;    // pauses of this cycle so far, this one included
  // The allocation since the last collection by which this cycle ends: the
  // policy's budget, or more when the pacer had to widen its window
  // (gc/internal/incremental_pacer.h).
  std::uint64_t cycle_budget_bytes = 0;
  // Bytes marked by each marker (index 0: the collecting thread; markers
  // past the last slot count in it).
  static constexpr unsigned kMarkersReported = 64;
  std::size_t marked_bytes_by_marker[kMarkersReported] = {};
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
template <class M>
concept HasRootPieces = requires(M& m, std::size_t i, Tracer& t) {
  { m.root_pieces() } -> std::convertible_to<std::size_t>;
  m.mark_root_piece(i, t);
};

namespace internal {
// The default marker count: one per CPU the process may use (its affinity
// mask, capped by a cgroup CPU quota; internal/usable_cpus.h).
unsigned default_markers() noexcept;
// World stopped: zeroes every mark bit of the pages of `tags` (an aborted
// collection leaves the runtime as before it).
void clear_marks(Runtime& runtime, TagSet tags, bool logs_too) noexcept;
// World stopped: zeroes every log bit (write_barrier's) of those pages.
void clear_logs(Runtime& runtime, TagSet tags) noexcept;
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
        policy_(options.generational && options.nursery_growth > 0 ? options.nursery_growth : options.heap_growth,
                options.min_budget_bytes),
        markers_(markers_from(options.markers)),
        barrier_(options.generational ? kBarrierUnlogged : kBarrierOff) {
    if (options.incremental && options.generational)
      throw std::invalid_argument("gc::Options: incremental and generational together are not supported yet");
    pacer_.idle(0, policy_.budget());
  }
  // With the world stopped, as for collect(): a generational collector's
  // sticky marks, or a cycle's marks, would otherwise stay on the pages,
  // where the runtime's next collector (and its lazy sweep) would take
  // them for its own.
  ~MarkSweep() {
    if (sticky_ || cycle_) internal::clear_marks(runtime_, gc_tags_, /*logs_too=*/true);
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
  // Starts the helper marker threads now rather than in the first
  // collection that wants them (and again in a fork() child), for a caller
  // that must not create threads while its world is stopped (a stopped
  // thread may hold a lock pthread_create takes). The helpers inherit the
  // calling thread's signal mask. Returns the markers that can run.
  unsigned start_markers() noexcept { return markers_ > 1 ? threads_.start(markers_) : 1; }
  // The markers the next collections run with, as Options::markers gives
  // them at construction (0: one per CPU the process may use, the helpers
  // joining from parallel_mark_bytes). Between collections only, on the
  // thread that collects; an incremental cycle under way keeps the markers
  // it started with. The helpers start as for the constructor's count:
  // from start_markers() or the next collection that wants them. (The
  // Boehm API's library marks alone until its client starts the helpers,
  // as bdwgc does: examples/libgc/collector.cc.) From a model callback
  // (a collection running) it throws std::logic_error and changes nothing.
  void set_markers(unsigned n) {
    if (collecting_.load(std::memory_order_acquire))
      throw std::logic_error("gc::MarkSweep: set_markers() called while a collection runs");
    options_.markers = n;
    markers_ = markers_from(n);
  }

  // Any mutator thread, no lock: GC bytes allocated since the last
  // collection have passed the budget.
  // Incremental mode: a pause of the cycle is due (its start, a step, or
  // its end) by the pacing of gc/internal/incremental_pacer.h.
  bool collection_due() const noexcept {
    const std::uint64_t allocated = runtime_.allocated_bytes(gc_tags_);
    return options_.incremental ? pacer_.due(allocated) : policy_.due(allocated);
  }
  std::uint64_t budget_bytes() const noexcept { return policy_.budget(); }

  // The world is stopped by the caller. Frees (lazily) every unreachable GC
  // block; never a reachable one.
  // Incremental mode: one pause of a cycle (it starts one when none runs);
  // the stats say whether the cycle is done.
  // Throws std::logic_error, changing nothing, when called while a
  // collection runs: from a model's callback (roots, trace, process_weak;
  // from finalize it ends the program, finalize being noexcept), from
  // another thread without the world stopped, or from a visitor of a walk
  // of the runtime (visit_gc_blocks, for_each_page).
  CollectStats collect() {
    const OneCollection guard(collecting_, runtime_);
    if (options_.incremental) return collect_increment();
    return collect_impl(options_.generational && !full_due());
  }
  // Incremental mode: a cycle under way is dropped (its marks may keep
  // objects that died since) and the collection runs whole, in this pause.
  CollectStats collect_full() {
    const OneCollection guard(collecting_, runtime_);
    if (!options_.incremental) return collect_impl(false);
    if (cycle_) abandon_cycle();
    if (sweeping_before_cycle_) {  // this collection is the one those pauses began
      sweeping_before_cycle_ = false;
      --collections_;
    }
    CollectStats stats = collect_impl(false);
    pacer_.idle(policy_.allocated_at_last(), policy_.budget());
    return stats;
  }
  // Incremental mode: a cycle's marking has begun and not ended (the write
  // barrier is on). Then tagheap::free() must not free a GC block that a
  // mark step may have reached (trace would read it); free GC blocks
  // outside cycles. A cycle's first pauses may only finish the previous
  // lazy sweep (CollectStats::cycle_done is false, is_marking() too):
  // marking begins in the pause after them.
  bool is_marking() const noexcept { return cycle_; }
  // A collect() or collect_full() call is under way (from any thread: a
  // model callback on a helper marker may ask).
  bool is_collecting() const noexcept { return collecting_.load(std::memory_order_acquire); }

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
  // obj is old (marked) and not remembered since the last collection,
  // remembers it: the next minor collection traces it again. The test
  // inlined at each store is one bit, obj's unlogged bit, found from obj's
  // address alone (a mask, two shifts, a load); remembering (once per old
  // object per collection) is out of line. Incremental mode, while a cycle
  // marks: the same for a marked (black or grey) object, traced again by
  // the next pause of the cycle (out of line: the mark and log bits are
  // tested). Any mutator thread, any object of this runtime; a no-op
  // otherwise. Measured: barrier_tagheap.
  [[gnu::always_inline]] void write_barrier(void* obj) noexcept {
    const std::uint8_t mode = barrier_.load(std::memory_order_relaxed);
    if (mode == kBarrierOff || obj == nullptr) return;
    if (mode == kBarrierUnlogged) [[likely]] {
      if (std::atomic_ref<std::uint64_t>(PageView::unlogged_word(obj)).load(std::memory_order_relaxed) &
          PageView::unlogged_bit(obj)) [[unlikely]]
        remember_old(obj);
      return;
    }
    log_marked(obj);
  }

 private:
  // The generational barrier's slow path. obj old: takes its unlogged bit
  // and remembers it (the thread that took the bit). obj young (the bit was
  // set over it by a full collection): clears every bit of the word that
  // is not over an old object, so that the young objects near obj do not
  // come here one by one. (Bits go only from set to clear while mutators
  // run, and only over objects that are not old or are remembered.)
  // Another runtime's object is left alone: its bit is its collector's.
  [[gnu::noinline]] void remember_old(void* obj) noexcept {
    std::atomic_ref<std::uint64_t> word(PageView::unlogged_word(obj));
    const std::uint64_t bit = PageView::unlogged_bit(obj);
    const PageView page = PageView::of(obj);
    if (page.runtime() != &runtime_.core()) [[unlikely]]
      return;
    const std::uint32_t i = page.index_of(obj);
    if ((std::atomic_ref<std::uint64_t>(page.mark_word(i >> 6)).load(std::memory_order_relaxed) >> (i & 63)) & 1) {
      if (word.fetch_and(~bit, std::memory_order_relaxed) & bit) remember(obj);  // else another thread took it
      return;
    }
    word.fetch_and(page.unlogged_bits_of_marked(obj), std::memory_order_relaxed);
  }
  // The incremental barrier: logs a marked object (once per pause).
  [[gnu::noinline]] void log_marked(void* obj) noexcept {
    const PageView page = PageView::of(obj);
    const std::uint32_t i = page.index_of(obj);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (!(std::atomic_ref<std::uint64_t>(page.mark_word(i >> 6)).load(std::memory_order_relaxed) & bit)) return;
    std::atomic_ref<std::uint64_t> log(page.log_word(i >> 6));
    if (log.load(std::memory_order_relaxed) & bit) return;
    if (log.fetch_or(bit, std::memory_order_relaxed) & bit) return;  // another thread logged it
    remember(obj);
  }

  struct MarkerState {
    Tracer::Buffers buffers;  // kept across collections
    std::uint64_t start_ns = 0, end_ns = 0;
    bool took_part = false;  // this collection's (or step's): helpers scheduled too late do not
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
  // collect() and collect_full() are not re-entrant (nor thread-safe
  // against each other): a nested or concurrent call is refused.
  class OneCollection {
   public:
    OneCollection(std::atomic<bool>& flag, Runtime& runtime) : flag_(flag) {
      // A walk's visitor: the walk holds the runtime's thread list, which
      // a collection's passes take too (a deadlock, not an error, before).
      if (tagheap::internal::t_walking == &runtime.core())
        throw std::logic_error("gc::MarkSweep: collect() called inside a walk of its runtime (from a visitor of "
                               "visit_gc_blocks or for_each_page): collect after the walk");
      if (flag_.exchange(true, std::memory_order_acquire))
        throw std::logic_error("gc::MarkSweep: collect() called while a collection runs (from a model callback, "
                               "or from another thread without the world stopped)");
    }
    ~OneCollection() { flag_.store(false, std::memory_order_release); }
    OneCollection(const OneCollection&) = delete;
    OneCollection& operator=(const OneCollection&) = delete;

   private:
    std::atomic<bool>& flag_;
  };

  CollectStats collect_impl(bool minor);
  bool full_due() const noexcept {
    return force_full_ || !had_full_ || remembered_overflow_.load(std::memory_order_relaxed) ||
           old_bytes_ >= full_threshold_ ||
           (options_.full_after_minors != 0 && minors_since_full_ >= options_.full_after_minors);
  }
  [[gnu::noinline, gnu::cold]] void remember(void* obj) noexcept {
    std::lock_guard lock(remembered_mu_);
    try {
      remembered_.push_back(obj);
    } catch (...) {
      remembered_overflow_.store(true, std::memory_order_relaxed);  // the next collection is full
    }
  }
  void verify_reachable_marked(const char* what);
  // Incremental mode (gc/internal/incremental_impl.h).
  CollectStats collect_increment();
  CollectStats run_step(CollectStats& stats, std::uint64_t t0, std::uint64_t t1);
  void finish_cycle(CollectStats& stats, std::uint64_t t0, std::uint64_t t1);
  void abandon_cycle() noexcept;
  // Every marker's Tracer::Buffers emptied (capacity kept).
  void clear_marker_buffers() noexcept {
    first_state_.buffers.clear();
    for (MarkerState& m : helper_states_) m.buffers.clear();
  }
  void cycle_totals(CollectStats& stats) const noexcept;
  static void add_marker_counts(CollectStats& stats, unsigned marker, const Tracer& t) noexcept {
    stats.live_blocks += t.marked_blocks_;
    stats.live_bytes += t.marked_bytes_;
    stats.roots_conservative += t.conservative_hits_;
    stats.marked_bytes_by_marker[std::min(marker, CollectStats::kMarkersReported - 1)] += t.marked_bytes_;
  }
  static void hand_to_first(Tracer& first, Tracer& helper);
  unsigned markers_for(bool minor) const noexcept;
  // Options::markers's meaning: 0 is one per CPU the process may use.
  static unsigned markers_from(unsigned option) noexcept {
    return option != 0 ? option : internal::default_markers();
  }
  unsigned make_helper_tracers(unsigned n, std::vector<Tracer>& helpers) noexcept;
  unsigned run_markers(unsigned n, MarkJob& job);
  static void mark_job(void* context, unsigned marker) noexcept;
  void mark_root_pieces(Tracer& t);
  void drain(Tracer& t);
  void settle(Tracer& t);
  bool rescan_marked(Tracer& t);
  void finish_weak(Tracer& t);
  void forget_ephemerons(Tracer& t) noexcept;
  void finalize_dead();
  void mark_for_finalization(Tracer& t, std::vector<void*>& ready, CollectStats& stats);
  void count_dead(CollectStats& stats);
  void after_marking(CollectStats& stats, const std::vector<void*>& ready) noexcept;
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
  // Root pieces (HasRootPieces) of this marking round, and the next one a
  // marker may claim.
  std::size_t root_pieces_ = 0;
  std::atomic<std::size_t> next_root_piece_{0};
  internal::MarkerThreads threads_;
  internal::FinalizerTable finalizers_;
  // Generational state. remembered_: old objects logged since the last
  // collection; tracing[]: those the current minor collection traces.
  std::mutex remembered_mu_;
  std::vector<void*> remembered_, tracing_;
  std::atomic<bool> remembered_overflow_{false};
  bool sticky_ = false, had_full_ = false, force_full_ = false;
  std::size_t old_bytes_ = 0, old_blocks_ = 0, full_threshold_ = 0;
  unsigned minors_since_full_ = 0;  // Options::full_after_minors
  // Bytes the last full [0] and minor [1] stop-the-world collection marked
  // (SIZE_MAX: none yet), for markers_for.
  std::size_t last_marked_bytes_[2] = {SIZE_MAX, SIZE_MAX};
  // What write_barrier tests: unlogged bits (generational mode), mark and
  // log bits (during a cycle in incremental mode), or nothing.
  static constexpr std::uint8_t kBarrierOff = 0, kBarrierUnlogged = 1, kBarrierLog = 2;
  std::atomic<std::uint8_t> barrier_;
  // Incremental state: the cycle's tracers (kept across its pauses, with
  // their stacks, weak slots and ephemerons), and whether some marked
  // object may have missed its trace (a stack or the remembered set ran
  // out of memory): the cycle's end then traces every marked object again.
  internal::IncrementalPacer pacer_;
  bool cycle_ = false, cycle_overflowed_ = false;
  bool sweeping_before_cycle_ = false;  // pauses finishing the last lazy sweep; the cycle starts next
  unsigned cycle_markers_ = 1;
  std::size_t cycle_pauses_ = 0;
  std::optional<Tracer> cycle_first_;
  std::vector<Tracer> cycle_helpers_;
  // A stop-the-world collection's helper tracers: the vector is kept so a
  // pause does not allocate it again (steady_pause_test).
  std::vector<Tracer> helpers_;
  // Finalization's lists, kept for the same reason: the registrations
  // copied, the unreachable ordered ones, the objects whose finalizers are due.
  struct FinalizationScratch {
    std::vector<std::pair<void*, internal::FinalizerTable::Entry>> entries;
    std::vector<void*> unreachable, ready;
  };
  FinalizationScratch finalization_scratch_;
  std::uint64_t deadline_ns_ = 0;  // a mark step stops at this time (0: marks to the end)
  std::atomic<bool> collecting_{false};
  // Ephemerons whose key is not marked yet, by key (settle), for one
  // collection: kept across marking for finalization.
  std::unordered_multimap<void*, void*> waiting_by_key_;
  GcListener* listener_ = nullptr;
  std::size_t stack_limit_ = SIZE_MAX;
  std::uint64_t collections_ = 0;
};

}  // namespace tagheap::gc

#include "gc/internal/mark_sweep_impl.h"  // IWYU pragma: export
#include "gc/internal/incremental_impl.h"  // IWYU pragma: export
