// internal/incremental_impl.h: MarkSweep's incremental cycle (Options::
// incremental). Internal: included at the end of gc/mark_sweep.h.
//
// Design
//   A cycle is a full collection cut into pauses, each a collect() call with
//   the world stopped:
//     sweep   finishes the previous lazy sweep, what the mutators'
//             allocation left of it: segment by segment, mark_step_ns per
//             pause (alloc/heap_walk.h's sweep_pending_pages; a segment
//             swept is skipped by the next pauses), kMinStepBytes of
//             allocation apart; as many as that takes (none when nothing is
//             pending: at 1 GiB the whole sweep took up to 4 ms in one);
//     first   (the pause that finds nothing left to sweep: every mark bit
//             is then zero) turns the write barrier on, then runs a step;
//     step    marks the roots, traces again the objects the barrier logged
//             since the last pause, and marks (on every marker thread) until
//             mark_step_ns is up; what is left waits on the mark stacks,
//             which the cycle keeps;
//     last    the step that empties the stacks, or the one at the budget's
//             limit (incremental_pacer.h), which marks to the end. Then, as
//             a stop-the-world collection would: ephemerons, weak slots,
//             finalization, process_weak, finalize, the lazy sweep.
//   Barrier: incremental update, object-remembering (as Boehm's incremental
//   mode re-scans dirty pages). A store into a marked object (black, or grey
//   on a stack) logs it (write_barrier); the next pause traces it again, so
//   a pointer hidden in an already-traced object is found. Roots are marked
//   again in every pause, the last included, so what the mutators hold in
//   roots is found too. With the world stopped in the last pause, every
//   object reachable then is reachable from the roots through objects that
//   are either unmarked (traced when reached), or marked and unchanged since
//   their trace, or logged (traced again): all of it ends marked.
//   Allocation is white: a block allocated during the cycle is unmarked and
//   survives only if the marking reaches it (from the roots or a logged
//   object, by the last pause at the latest). So the allocator's fast path
//   and page refills do not change at all; the price is that new objects
//   that survive are traced, by a step or by the last pause, which a black
//   allocation would pay too (its first stores log it).
//   Weak slots and ephemerons met by any step stay in the cycle's tracers
//   and are settled in the last pause, as in a stop-the-world collection.
//
// Invariants
//   cycle_ <=> the barrier is on (incremental mode) <=> the cycle's tracers
//   exist. Between pauses every marked object is traced or on a mark stack
//   of the cycle (or cycle_overflowed_ is set and the last pause traces
//   every marked object again).
//   No lazy sweep is pending while a cycle marks (the sweep pauses and the
//   first finished it, and only the last one begins the next), so mark
//   bits mean only "marked by this cycle". The barrier stays off in the
//   sweep pauses: nothing is marked yet.
//   An exception from roots, trace or process_weak in any pause drops the
//   cycle: every mark and log bit is cleared, nothing was freed, and the
//   next collect() starts a new cycle.
#pragma once

namespace tagheap::gc {

template <class Model>
CollectStats MarkSweep<Model>::collect_increment() {
  CollectStats stats;
  stats.incremental = true;
  const std::uint64_t t0 = internal::now_ns();
  if (cycle_) {
    emit(GcPhase::kCollectionStart, policy_.allocated_since(runtime_.allocated_bytes(gc_tags_)));
    return run_step(stats, t0, t0);
  }
  if (!sweeping_before_cycle_) {
    ++collections_;
    cycle_pauses_ = 0;
    sweeping_before_cycle_ = true;
  }
  emit(GcPhase::kCollectionStart, policy_.allocated_since(runtime_.allocated_bytes(gc_tags_)));
  // The previous cycle's lazy sweep, finished at mark_step_ns per pause:
  // what the mutators' allocation has not swept yet (at 1 GiB, up to 40,000
  // pages of dead blocks, 4 ms in one pause).
  const std::uint64_t sweep_until = t0 + options_.mark_step_ns;
  if (!sweep_pending_pages(runtime_, [&] { return internal::now_ns() < sweep_until; }, stats.pages_swept)) {
    pacer_.sweep_step_done(runtime_.allocated_bytes(gc_tags_));
    stats.cycle_done = false;
    stats.cycle_pauses = ++cycle_pauses_;
    stats.cycle_budget_bytes = pacer_.limit() - policy_.allocated_at_last();
    stats.sweep_ns = stats.pause_ns = internal::now_ns() - t0;
    emit(GcPhase::kCollectionEnd, 0, &stats);
    return stats;
  }
  sweeping_before_cycle_ = false;
  const std::uint64_t t1 = internal::now_ns();
  emit(GcPhase::kSweepCompleted);
  // What this cycle may have to mark: what the last collection found live
  // plus what was allocated since (before the first: everything allocated).
  // The pacer plans for that much; a bound errs on the side of finishing
  // early.
  const std::size_t in_use_bytes =
      policy_.live_at_last() + policy_.allocated_since(runtime_.allocated_bytes(gc_tags_));

  // Short steps mark on the calling thread alone: waking the helpers and
  // joining them costs more than they add to a sub-millisecond step, and a
  // helper the OS schedules late holds the pause up (measured on rewire,
  // 100 MiB, 2 cores: steps of 0.4 ms overran to 3-6 ms with two markers,
  // never past 1.2 ms with one).
  // An explicit Options::markers is honoured.
  const unsigned n = options_.markers != 0 || options_.mark_step_ns >= Options::kParallelStepNs ? markers_ : 1;
  clear_marker_buffers();
  cycle_first_.emplace(Tracer(&runtime_.core(), gc_tags_, options_.leaf_tags, first_state_.buffers, stack_limit_));
  cycle_markers_ = make_helper_tracers(n, cycle_helpers_);
  {
    std::lock_guard lock(remembered_mu_);
    remembered_.clear();
    tracing_.clear();
    remembered_overflow_.store(false, std::memory_order_relaxed);
  }
  cycle_ = true;
  cycle_overflowed_ = false;
  barrier_.store(kBarrierLog, std::memory_order_relaxed);  // the mutators see it once the world resumes
  pacer_.start(runtime_.allocated_bytes(gc_tags_), in_use_bytes, options_.mark_step_ns);
  return run_step(stats, t0, t1);
}

// One pause of the cycle: roots, logged objects, then marking until the
// step's time is up (or to the end at the budget's limit); the last pause
// when the stacks are empty.
template <class Model>
CollectStats MarkSweep<Model>::run_step(CollectStats& stats, std::uint64_t t0, std::uint64_t t1) {
  ++cycle_pauses_;
  const std::uint64_t allocated = runtime_.allocated_bytes(gc_tags_);
  const bool to_the_end = pacer_.at_limit(allocated);
  {
    std::lock_guard lock(remembered_mu_);
    tracing_.clear();
    tracing_.swap(remembered_);  // their log bits are cleared as they are traced
    if (remembered_overflow_.exchange(false, std::memory_order_relaxed)) cycle_overflowed_ = true;
  }
  Tracer& first = *cycle_first_;
  const unsigned n = cycle_markers_ > 1 ? threads_.start(cycle_markers_) : 1;
  MarkJob job{this, &first, &cycle_helpers_, nullptr};
  std::size_t marked_before = 0;
  for (unsigned i = 0; i < cycle_markers_; ++i) marked_before += job.tracer(i).marked_bytes_;
  // The step's time counts from the pause's start: the first pause's walk
  // of the pages is part of it (but a quarter of a step marks anyway).
  deadline_ns_ = to_the_end ? 0 : std::max(t0 + pacer_.step_ns(), internal::now_ns() + pacer_.step_ns() / 4);
  try {
    for (unsigned i = 0; i < cycle_markers_; ++i) job.tracer(i).begin_marking(n > 1);
    stats.markers_took_part = run_markers(n, job);
    deadline_ns_ = 0;
    if (job.failed.load(std::memory_order_relaxed)) std::rethrow_exception(job.error);
    // What is left goes to marker 0's stack: the next step starts there,
    // and the others take shares of it.
    if (!worklist_.take_leftovers(first_state_.buffers.stack)) cycle_overflowed_ = true;
    for (unsigned i = 1; i < cycle_markers_; ++i) {
      Tracer& t = job.tracer(i);
      t.end_marking();
      try {
        first_state_.buffers.stack.append(t.stack_.begin(), t.stack_.end());
      } catch (const std::bad_alloc&) {
        cycle_overflowed_ = true;  // the last pause traces every marked object again
      }
      t.stack_.clear();
    }
    first.end_marking();
  } catch (...) {
    deadline_ns_ = 0;
    abandon_cycle();
    throw;
  }
  std::size_t marked_after = 0;
  for (unsigned i = 0; i < cycle_markers_; ++i) marked_after += job.tracer(i).marked_bytes_;
  const std::uint64_t t2 = internal::now_ns();
  for (unsigned i = 0; i < n; ++i)
    if (listener_ != nullptr)
      listener_->on_gc_event(GcEvent{GcPhase::kMarkerDone, collections_, state(i).end_ns, i, state(i).start_ns,
                                     job.tracer(i).marked_bytes_, nullptr});
  stats.markers = n;
  if (first_state_.buffers.stack.empty()) {
    stats.finished_at_limit = to_the_end;
    finish_cycle(stats, t0, t1);
    return stats;
  }
  pacer_.step_done(runtime_.allocated_bytes(gc_tags_), marked_after - marked_before, t2 - t1);
  cycle_totals(stats);
  stats.cycle_done = false;
  stats.sweep_ns = t1 - t0;
  stats.mark_ns = t2 - t1;
  stats.pause_ns = t2 - t0;
  emit(GcPhase::kCollectionEnd, 0, &stats);
  return stats;
}

// The last pause, after marking emptied every stack with the world stopped.
template <class Model>
void MarkSweep<Model>::finish_cycle(CollectStats& stats, std::uint64_t t0, std::uint64_t t1) {
  Tracer& first = *cycle_first_;
  std::vector<void*>& ready = finalization_scratch_.ready;  // objects whose finalizers are due
  ready.clear();
  try {
    worklist_.reset();  // no step's stop left behind: settle's drains run to the end
    for (Tracer& t : cycle_helpers_) hand_to_first(first, t);
    if (cycle_overflowed_) first.overflowed_ = true;
    settle(first);
    finish_weak(first);
    if (!finalizers_.empty()) mark_for_finalization(first, ready, stats);
    forget_ephemerons(first);
    if constexpr (HasProcessWeak<Model>) model_.process_weak(Liveness(gc_tags_));
  } catch (...) {
    abandon_cycle();
    throw;
  }
  if (options_.verify_incremental) verify_reachable_marked("incremental cycle");
  cycle_totals(stats);
  after_marking(stats, ready);
  const std::uint64_t t2 = internal::now_ns();
  emit(GcPhase::kMarkDone);
  if (cycle_overflowed_) internal::clear_logs(runtime_, gc_tags_);  // some logged object was never remembered
  begin_lazy_sweep(runtime_, gc_tags_, /*keep_marks=*/false);
  if (runtime_.options().debug_fill) for_each_page(runtime_, gc_tags_, [](PageView) { return true; });
  const std::uint64_t allocated = runtime_.allocated_bytes(gc_tags_);
  policy_.after_collection(allocated, stats.live_bytes);
  pacer_.idle(allocated, policy_.budget());
  cycle_ = false;
  barrier_.store(kBarrierOff, std::memory_order_relaxed);
  cycle_first_.reset();
  cycle_helpers_.clear();
  const std::uint64_t t3 = internal::now_ns();
  stats.cycle_done = true;
  stats.sweep_ns = (t1 - t0) + (t3 - t2);
  stats.mark_ns = t2 - t1;
  stats.pause_ns = t3 - t0;
  emit(GcPhase::kCollectionEnd, 0, &stats);
}

// An exception, or collect_full() during a cycle: as if it never began.
template <class Model>
void MarkSweep<Model>::abandon_cycle() noexcept {
  clear_marker_buffers();
  waiting_by_key_.clear();
  cycle_first_.reset();
  cycle_helpers_.clear();
  {
    std::lock_guard lock(remembered_mu_);
    remembered_.clear();
    tracing_.clear();
    remembered_overflow_.store(false, std::memory_order_relaxed);
  }
  internal::clear_marks(runtime_, gc_tags_, /*logs_too=*/true);
  cycle_ = false;
  barrier_.store(kBarrierOff, std::memory_order_relaxed);
  pacer_.idle(policy_.allocated_at_last(), policy_.budget());  // a new cycle is due at once if it was
}

// The cycle so far: what its tracers marked.
template <class Model>
void MarkSweep<Model>::cycle_totals(CollectStats& stats) const noexcept {
  stats.cycle_pauses = cycle_pauses_;
  stats.cycle_budget_bytes = pacer_.limit() - policy_.allocated_at_last();
  for (unsigned i = 0; i < cycle_markers_; ++i) add_marker_counts(stats, i, i == 0 ? *cycle_first_ : cycle_helpers_[i - 1]);
}

}  // namespace tagheap::gc
