// internal/mark_sweep_impl.h: MarkSweep's member templates (a collection's
// phases). Internal: included at the end of gc/mark_sweep.h; the design is
// in that header's comment.
#pragma once

#include <optional>
#include <unordered_map>

namespace tagheap::gc {

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
  // A full generational collection sets every unlogged bit of the pages
  // (its survivors are known only at its end; before it the old objects
  // remembered and not).
  const bool all_unlogged = options_.generational && !minor;
  for_each_page_by_segment(runtime_, gc_tags_, [&](PageView page) {
    ++stats.pages_swept;
    if (all_unlogged) page.set_all_unlogged();
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
      tracing_.swap(remembered_);  // their unlogged bits are set again as they are traced
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

  std::vector<Tracer>& helpers = helpers_;
  clear_marker_buffers();  // empty already, unless something was left behind
  Tracer first(&runtime_.core(), gc_tags_, options_.leaf_tags, first_state_.buffers, stack_limit_);
  unsigned n = make_helper_tracers(markers_for(minor), helpers);
  if (n > 1) n = threads_.start(n);  // fewer when the OS refuses threads
  stats.markers = n;
  MarkJob job{this, &first, &helpers, nullptr};
  std::vector<void*>& ready = finalization_scratch_.ready;  // objects whose finalizers are due
  ready.clear();
  try {
    first.begin_marking(n > 1);
    first.set_unlogged_marks(minor);
    for (Tracer& t : helpers) {
      t.begin_marking(n > 1);
      t.set_unlogged_marks(minor);
    }
    stats.markers_took_part = run_markers(n, job);
    if (job.failed.load(std::memory_order_relaxed)) std::rethrow_exception(job.error);
    first.end_marking();
    for (unsigned i = 1; i < n; ++i) {
      helpers[i - 1].end_marking();
      hand_to_first(first, helpers[i - 1]);
    }
    settle(first);
    finish_weak(first);  // weak slots do not see objects kept only for their finalizers
    if (!finalizers_.empty()) mark_for_finalization(first, ready, stats);
    forget_ephemerons(first);  // keys still unmarked: their values stay unmarked
    if constexpr (HasProcessWeak<Model>) model_.process_weak(Liveness(gc_tags_));
  } catch (...) {
    clear_marker_buffers();  // the helpers' weak slots and ephemerons too
    forget_ephemerons(first);
    // Every mark goes: nothing was freed, and the runtime is as before (in
    // generational mode every object is young again, and the next
    // collection is full).
    internal::clear_marks(runtime_, gc_tags_, /*logs_too=*/true);
    force_full_ = options_.generational;
    throw;
  }
  if (minor && options_.verify_minor) verify_reachable_marked("minor collection");
  for (unsigned i = 0; i < n; ++i) {
    Tracer& t = job.tracer(i);
    add_marker_counts(stats, i, t);
    if (listener_ != nullptr)
      listener_->on_gc_event(GcEvent{GcPhase::kMarkerDone, collections_, state(i).end_ns, i, state(i).start_ns,
                                     t.marked_bytes_, nullptr});
  }
  after_marking(stats, ready);
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
    minors_since_full_ = minor ? minors_since_full_ + 1 : 0;
    if (!minor) {
      had_full_ = true;
      force_full_ = false;
      full_threshold_ = old_bytes_ + std::max<std::size_t>(options_.min_budget_bytes,
                                                           static_cast<std::size_t>(options_.heap_growth *
                                                                                    static_cast<double>(old_bytes_)));
    }
  }
  last_marked_bytes_[minor ? 1 : 0] = stats.live_bytes;
  policy_.after_collection(runtime_.allocated_bytes(gc_tags_), options_.generational ? old_bytes_ : stats.live_bytes);
  const std::uint64_t t3 = internal::now_ns();
  stats.sweep_ns = (t1 - t0) + (t3 - t2);
  stats.mark_ns = t2 - t1;
  stats.pause_ns = t3 - t0;
  emit(GcPhase::kCollectionEnd, 0, &stats);
  return stats;
}

// Marking is over and nothing can throw now: queue the finalizers (a queue
// that cannot grow leaves its object registered, and marked: ready again
// next time), finalize, poison (ASan) and count the dead.
template <class Model>
void MarkSweep<Model>::after_marking(CollectStats& stats, const std::vector<void*>& ready) noexcept {
  for (void* obj : ready) finalizers_.make_ready(obj);
  if constexpr (HasFinalize<Model>) finalize_dead();
  if constexpr (tagheap::internal::asan::kEnabled) internal::poison_dead(runtime_, gc_tags_);
  count_dead(stats);
}

// After marking: what a helper met and marker 0 settles (weak slots,
// ephemerons) and its mark stack overflow (marked objects never traced:
// settle's rescan traces them) go to marker 0.
template <class Model>
void MarkSweep<Model>::hand_to_first(Tracer& first, Tracer& helper) {
  for (void** slot : helper.weak_slots_) first.mark_weak(slot);
  helper.weak_slots_.clear();
  for (auto& [k, v] : helper.ephemerons_) first.mark_ephemeron(k, v);
  helper.ephemerons_.clear();
  first.overflowed_ = first.overflowed_ || helper.overflowed_;
  helper.overflowed_ = false;
}

// Markers for a stop-the-world collection: with Options::markers = 0, the
// helpers only when the collection is expected to mark at least
// parallel_mark_bytes (what the last collection of its kind marked; before
// the first, everything allocated), the collecting thread alone below.
template <class Model>
unsigned MarkSweep<Model>::markers_for(bool minor) const noexcept {
  if (options_.markers != 0 || markers_ <= 1) return markers_;
  std::size_t expected = last_marked_bytes_[minor ? 1 : 0];
  if (expected == SIZE_MAX) expected = static_cast<std::size_t>(runtime_.allocated_bytes(gc_tags_));
  return expected >= options_.parallel_mark_bytes ? markers_ : 1;
}

// Helpers need memory for their state: short of it, marker 0 marks alone
// (a collection must work when memory has run out). Returns the markers
// that have a tracer: n, or 1.
template <class Model>
unsigned MarkSweep<Model>::make_helper_tracers(unsigned n, std::vector<Tracer>& helpers) noexcept {
  helpers.clear();
  if (n <= 1) return 1;
  try {
    if (helper_states_.size() < n - 1) helper_states_.resize(n - 1);
    helpers.reserve(n - 1);
    for (unsigned i = 1; i < n; ++i)
      helpers.push_back(Tracer(&runtime_.core(), gc_tags_, options_.leaf_tags, helper_states_[i - 1].buffers, stack_limit_));
    return n;
  } catch (const std::bad_alloc&) {
    helpers.clear();
    return 1;
  }
}

// Marks with n markers (the caller first); returns how many took part.
// A helper that came too late, or never, gets an empty slice at the end.
template <class Model>
unsigned MarkSweep<Model>::run_markers(unsigned n, MarkJob& job) {
  for (unsigned i = 0; i < n; ++i) state(i).took_part = false;
  worklist_.reset();
  if constexpr (HasRootPieces<Model>) root_pieces_ = model_.root_pieces();
  next_root_piece_.store(0, std::memory_order_relaxed);
  threads_.run(n, &MarkSweep::mark_job, &job);
  const std::uint64_t now = internal::now_ns();
  unsigned took_part = 0;
  for (unsigned i = 0; i < n; ++i) {
    MarkerState& m = state(i);
    if (m.took_part) ++took_part;
    else m.start_ns = m.end_ns = now;
  }
  return took_part;
}

template <class Model>
void MarkSweep<Model>::mark_job(void* context, unsigned marker) noexcept {
  auto& job = *static_cast<MarkJob*>(context);
  MarkSweep& self = *job.self;
  Tracer& t = job.tracer(marker);
  MarkerState& state = self.state(marker);
  state.start_ns = internal::now_ns();
  // A helper that comes after marking ended takes no part (and must not
  // touch the job again: the collector may be past this round).
  state.took_part = marker == 0 || self.worklist_.join();
  if (!state.took_part) {
    state.end_ns = state.start_ns;
    return;
  }
  // Conservative words (Tracer::mark_conservative) look blocks up: one
  // lookup scope for the job, not one per word (two process-wide atomic
  // updates each; a helper has no scope of the caller's around it), lent to
  // the model's calls (Tracer::lookup_scope).
  Tracer::LentScope lookups(t);
  t.forget_last_page();  // the mutators may have released it since the last pause
  try {
    if (marker == 0) {
      // Remembered objects, traced again: old ones (a minor collection;
      // they stay old, so their unlogged bits are set again), or marked ones
      // the barrier logged (a pause of an incremental cycle; their log bits
      // are cleared).
      const bool logged = self.barrier_.load(std::memory_order_relaxed) == kBarrierLog;
      for (void* obj : self.tracing_) {
        // Freed by hand since it was remembered, its segment perhaps given
        // back to the OS (trim()) or mapped again by another runtime:
        // nothing of a page that is gone is read (the job's lookup scope
        // is open).
        const std::optional<PageView> found = PageView::of_if_mapped(obj, &self.runtime_.core());
        if (!found) continue;
        const PageView page = *found;
        const std::uint32_t i = page.index_of(obj);
        if (logged)
          std::atomic_ref<std::uint64_t>(page.log_word(i >> 6))
              .fetch_and(~(std::uint64_t{1} << (i & 63)), std::memory_order_relaxed);
        // Freed since (and maybe reused: then young, or white in a cycle,
        // found from the roots if live): not traced again.
        if (!page.is_live(i) || page.block(i) != obj || !t.is_marked(obj)) continue;
        if (!logged) t.set_unlogged(obj);
        if (t.leaf_tags_.contains(page.tag())) continue;  // a barrier on a leaf: nothing to trace
        t.push_for_trace(obj);
      }
      self.finalizers_.for_each_queued([&](void* obj) { t.mark(obj); });  // until their finalizers ran
      self.model_.roots(t);
    }
    if constexpr (HasRootPieces<Model>) self.mark_root_pieces(t);
    if (marker == 0) self.emit(GcPhase::kRootsDone);
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

// Claims root pieces until none is left (HasRootPieces), marking each with
// this marker's tracer; what they reach waits on its stack for drain.
template <class Model>
void MarkSweep<Model>::mark_root_pieces(Tracer& t) {
  for (;;) {
    const std::size_t i = next_root_piece_.fetch_add(1, std::memory_order_relaxed);
    if (i >= root_pieces_) return;
    model_.mark_root_piece(i, t);
  }
}

// Traces until the marker's stack is empty. Objects pass through a FIFO
// between the stack and model.trace, prefetched as they enter it, so the
// memory of the next few objects is on its way while one is traced (the
// mark loop is otherwise bound by one cache miss per object). With other
// markers running, every few dozen objects it offers half its stack to the
// idle ones. An incremental step reads the clock as often as it needs to
// stop on time: every 64 objects while they are quick, down to every one
// while they are slow (the first marking of a freshly built heap took 2-8 us
// an object on a VM, measured on rewire: 64 of them overran a 0.4 ms step
// by a millisecond). The tracer keeps the interval from step to step.
template <class Model>
void MarkSweep<Model>::drain(Tracer& t) {
  constexpr std::size_t kAhead = 64;  // a power of two
  constexpr unsigned kShareEvery = 64;
  constexpr std::uint64_t kClockSliceNs = 20'000;  // a step's clock is read about this often
  internal::MarkStack& stack = t.stack_;
  void* ring[kAhead];
  std::size_t head = 0, count = 0;
  const bool timed = deadline_ns_ != 0;
  std::uint64_t last_clock = timed ? internal::now_ns() : 0;
  // A step too short for one slice to matter (the tests' 1 ns) reads the
  // clock every kShareEvery objects, so it marks that many.
  const bool adaptive = timed && deadline_ns_ > last_clock + 4 * kClockSliceNs;
  unsigned every = adaptive ? t.clock_every_ : kShareEvery;
  Tracer::LentScope lookups(t);  // for model_.trace (Tracer::lookup_scope)
  unsigned until_share = every;
  for (;;) {
    while (count < kAhead) {
      if (stack.empty() && !t.flush_batch()) break;  // batched marks count once pushed
      void* obj = stack.back();
      stack.pop_back();
      __builtin_prefetch(obj);
      ring[(head + count++) & (kAhead - 1)] = obj;
    }
    if (count == 0) return;
    void* obj = ring[head];
    head = (head + 1) & (kAhead - 1);
    --count;
    if (t.waiting_ == nullptr) [[likely]] {
      model_.trace(obj, t);
    } else {  // settle(): ephemerons keyed by obj; a leaf is pushed then only for them
      if (!t.leaf_tags_.contains(PageView::of(obj).tag())) model_.trace(obj, t);
      auto [first, last] = t.waiting_->equal_range(obj);
      for (auto it = first; it != last; ++it) t.mark(it->second);
      t.waiting_->erase(first, last);
    }
    if (--until_share == 0) [[unlikely]] {
      if (timed) {
        const std::uint64_t now = internal::now_ns();
        if (now >= deadline_ns_) worklist_.stop();
        if (adaptive) {
          if (now - last_clock > kClockSliceNs) every = std::max(1u, every / 2);
          else if (now - last_clock < kClockSliceNs / 4) every = std::min(kShareEvery, every * 2);
          t.clock_every_ = every;
          last_clock = now;
        }
      }
      until_share = every;
      if (worklist_.aborted()) {
        stack.clear();
        t.drop_batch();
        return;
      }
      if (worklist_.stopped()) {  // an incremental step's time is up: the ring's objects wait on the stack
        for (; count != 0; --count, head = (head + 1) & (kAhead - 1)) t.push_for_trace(ring[head]);
        return;
      }
      if (t.parallel_ && worklist_.wants_work()) worklist_.share(stack);
    }
  }
}

// Serial, after the markers: ephemerons to a fixpoint, and a rescan when a
// mark stack ran out of room, until neither finds more. Ephemerons whose key
// is not marked yet wait in a table by key; tracing an object releases the
// values waiting for it, so each ephemeron is looked at a bounded number of
// times however long the chains (no rescan of every ephemeron per round).
// The table lasts for the whole collection (waiting_by_key_): marking for
// finalization settles again, and a key that only a finalizer keeps alive
// then releases its values too, so no ephemeron entry outlives its value.
template <class Model>
void MarkSweep<Model>::settle(Tracer& t) {
  std::unordered_multimap<void*, void*>& waiting = waiting_by_key_;
  t.waiting_ = &waiting;
  struct Reset {
    Tracer& t;
    ~Reset() { t.waiting_ = nullptr; }
  } reset{t};
  for (;;) {
    std::vector<std::pair<void*, void*>>& eph = t.ephemerons_;
    while (!eph.empty()) {
      const auto [key, value] = eph.back();
      eph.pop_back();
      if (t.is_marked(key)) {
        t.mark(value);
        continue;
      }
      try {
        waiting.emplace(key, value);
      } catch (const std::bad_alloc&) {
        t.mark(value);  // no room to wait: strong for this collection
      }
    }
    drain(t);
    if (!t.ephemerons_.empty()) continue;
    if (!t.overflowed_) return;
    t.overflowed_ = false;
    rescan_marked(t);
    // The rescan traced marked keys without releasing their values.
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (t.is_marked(it->first)) {
        t.mark(it->second);
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
  }
}

// Out of memory for a mark stack, some marked objects were never traced:
// trace every marked object again (each pass marks at least the children
// the last one dropped).
template <class Model>
bool MarkSweep<Model>::rescan_marked(Tracer& t) {
  Tracer::LentScope lookups(t);  // for model_.trace (Tracer::lookup_scope)
  for_each_page(runtime_, gc_tags_, [&](PageView page) {
    if (options_.leaf_tags.contains(page.tag())) return true;  // never pushed, never dropped
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
  Tracer::LentScope lookups(t);  // for model_.trace (Tracer::lookup_scope)
  auto& entries = finalization_scratch_.entries;
  finalizers_.snapshot(entries);
  std::vector<void*>& unreachable = finalization_scratch_.unreachable;
  unreachable.clear();
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
    if (options_.leaf_tags.contains(PageView::of(obj).tag())) continue;  // reaches nothing
    t.set_ignore(obj);  // a direct self-reference does not count
    model_.trace(obj, t);
    t.set_ignore(nullptr);
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
void MarkSweep<Model>::forget_ephemerons(Tracer& t) noexcept {
  t.ephemerons_.clear();
  waiting_by_key_.clear();
}

template <class Model>
void MarkSweep<Model>::finish_weak(Tracer& t) {
  for (void** slot : t.weak_slots_)
    if (*slot != nullptr && t.is_gc_block(*slot) && !t.is_marked(*slot)) *slot = nullptr;
  t.weak_slots_.clear();
}

// After a minor collection's or an incremental cycle's marking: everything
// reachable from the roots (and queued finalizers) must be marked, or the
// sweep would free it.
template <class Model>
void MarkSweep<Model>::verify_reachable_marked(const char* what) {
  Tracer::Verifier verifier{gc_tags_, {}, nullptr, what};
  Tracer::Buffers buffers;
  internal::MarkStack& stack = buffers.stack;
  // No GC tag: every mark() verifies. Leaves are checked, not traced.
  Tracer vt(&runtime_.core(), TagSet{}, options_.leaf_tags, buffers, SIZE_MAX);
  vt.verifier_ = &verifier;
  Tracer::LentScope lookups(vt);  // for the model's calls (Tracer::lookup_scope)
  finalizers_.for_each_queued([&](void* obj) { vt.mark(obj); });
  std::size_t pieces = 0;
  if constexpr (HasRootPieces<Model>) pieces = model_.root_pieces();  // as a marking round: before roots()
  model_.roots(vt);
  if constexpr (HasRootPieces<Model>)
    for (std::size_t i = 0; i < pieces; ++i) model_.mark_root_piece(i, vt);
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
  for_each_page_by_segment(runtime_, gc_tags_, [&](PageView page) {
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
