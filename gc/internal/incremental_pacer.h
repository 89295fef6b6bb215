// internal/incremental_pacer.h: when the pauses of an incremental cycle are
// due. Internal: users must not rely on anything under gc/internal/.
//
// Design
//   The heap policy (heap_policy.h) gives a budget B of GC bytes to allocate
//   between collections. A stop-the-world collector collects when the
//   allocation since the last one reaches B. An incremental cycle must end
//   by then too, so it starts halfway (kStartShare of B) and spreads its
//   marking over the rest: the classic allocation pacing, where a mutator
//   that allocates X bytes pays a mark step for them.
//   At the start the pacer plans the steps: the bytes in use on the GC
//   pages (a bound on what the cycle may mark), marked at the measured rate
//   (bytes per ns of marking, from a guess until steps measure it), in steps of
//   Options::mark_step_ns, twice over for margin, give the number of steps;
//   the allocation left before the limit divided by it gives the bytes
//   between steps, at least kMinStepBytes (the allocation count moves in
//   64 KiB flushes; and the mutators get long stretches between pauses). A
//   window too short for that many steps is widened, up to half the bytes
//   in use: a large heap under a small budget (the first cycle, before any
//   live size is known), a late start (mutators that allocated past the
//   half-way mark without polling) or a marker slower than the estimate
//   (the first marking of a freshly built heap runs 3x slower on a VM than
//   the next: measured on rewire, 100 MiB) then lets the heap outgrow the
//   stop-the-world budget once, rather than pause for long. Every step
//   re-plans the same way, so the window follows the rate measured. Past
//   that bound the steps get up to kMaxStretch times longer, then the
//   window widens to the whole of the bytes in use, and only past both do
//   the steps get longer still (a slow marker, as under a sanitizer): the
//   heap stays within twice what the live size needs.
//   A cycle still marking when the allocation reaches the limit finishes in
//   the next pause, whatever that costs: the heap never grows past the
//   window because the marker fell behind.
//
// Invariants
//   due() reads one atomic: any mutator thread, no lock. Everything else runs
//   with the world stopped (inside collect()).
//   next_ <= limit_ while a cycle marks: the limit is always a pause.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tagheap::gc::internal {

class IncrementalPacer {
 public:
  static constexpr double kStartShare = 0.5;
  static constexpr std::uint64_t kMinStepBytes = 64 * 1024;
  static constexpr std::uint64_t kMaxSteps = 4096;
  static constexpr double kMaxStretch = 2.0;  // steps up to this much longer before the window widens again

  // No cycle runs: the next one starts once `allocated` (the GC tags' total)
  // passes the last collection's mark plus kStartShare of its budget.
  void idle(std::uint64_t allocated_at_last, std::uint64_t budget) noexcept {
    limit_ = allocated_at_last + budget;
    half_budget_ = budget - static_cast<std::uint64_t>(kStartShare * static_cast<double>(budget));
    next_.store(limit_ - half_budget_, std::memory_order_relaxed);
  }
  // A pause before the cycle finished part of the previous lazy sweep:
  // the next one comes after kMinStepBytes more (the cycle starts a few
  // such pauses late, a few hundred KiB into its window).
  void sweep_step_done(std::uint64_t allocated) noexcept {
    next_.store(allocated + kMinStepBytes, std::memory_order_relaxed);
  }
  // A cycle begins; `live_estimate`: at most this many bytes to mark;
  // `step_ns`: the marking time a step should take (Options::mark_step_ns).
  void start(std::uint64_t allocated, std::size_t live_estimate, std::uint64_t step_ns) noexcept {
    work_left_ = static_cast<double>(live_estimate);
    base_step_ns_ = step_ns;
    // The window holds the steps kMinStepBytes apart (the allocation count
    // moves in 64 KiB flushes anyway): at least what is left of the budget
    // (half of it, if the cycle starts late). It may widen, as the steps
    // need, to half the live estimate past the start (the first cycle,
    // whose budget knows no live size yet, or a marker slower than
    // planned); past that the steps take up to kMaxStretch times
    // mark_step_ns, then the window widens to the whole live estimate, and
    // only then do the steps get longer still (a slow marker, as under a
    // sanitizer): the heap stays within twice what the live size needs.
    const std::uint64_t least = std::max(limit_, allocated + half_budget_);
    wide_limit_ = std::max(least, allocated + std::max(half_budget_, static_cast<std::uint64_t>(live_estimate / 2)));
    widest_limit_ = std::max(wide_limit_, allocated + live_estimate);
    limit_ = least;
    schedule(allocated, 2.0);
  }
  // A step marked `bytes` in `ns` of marking. The schedule follows: the
  // work left (the estimate, plus what was allocated since, less what is
  // marked) at the rate measured,
  // over the allocation left before the limit, so a cycle that falls
  // behind steps more often, then longer, and one ahead leaves the
  // mutators longer stretches.
  void step_done(std::uint64_t allocated, std::size_t bytes, std::uint64_t ns) noexcept {
    if (ns > 0 && bytes > 0) rate_ = 0.5 * rate_ + 0.5 * static_cast<double>(bytes) / static_cast<double>(ns);
    // What the mutators allocated since may survive and need marking too.
    work_left_ = std::max(0.0, work_left_ + static_cast<double>(allocated - last_allocated_) - static_cast<double>(bytes));
    schedule(allocated, 1.5);
  }
  bool due(std::uint64_t allocated) const noexcept { return allocated >= next_.load(std::memory_order_relaxed); }
  bool at_limit(std::uint64_t allocated) const noexcept { return allocated >= limit_; }
  std::uint64_t step_bytes() const noexcept { return step_bytes_; }
  // The marking time of this cycle's steps: mark_step_ns, or more when the
  // window could not be widened enough.
  std::uint64_t step_ns() const noexcept { return step_ns_; }
  std::uint64_t limit() const noexcept { return limit_; }
  double rate_bytes_per_ns() const noexcept { return rate_; }

 private:
  // Steps to mark what is left, `margin` times over, at the rate measured.
  double steps_wanted(double margin) const noexcept {
    return std::clamp(std::ceil(margin * work_left_ / std::max(1.0, rate_ * static_cast<double>(base_step_ns_))), 1.0,
                      static_cast<double>(kMaxSteps));
  }
  void schedule(std::uint64_t allocated, double margin) noexcept {
    const double wanted = steps_wanted(margin);
    widen_to(allocated, wanted, wide_limit_);
    widen_to(allocated, std::ceil(wanted / kMaxStretch), widest_limit_);
    const double window = limit_ > allocated ? static_cast<double>(limit_ - allocated) : 0.0;
    const double steps = std::clamp(std::floor(window / kMinStepBytes), 1.0, wanted);
    step_bytes_ = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(window / steps));
    step_ns_ = static_cast<std::uint64_t>(static_cast<double>(base_step_ns_) * wanted / steps);
    plan_next(allocated);
  }
  // Moves the limit out, up to `bound`, until `steps` fit kMinStepBytes apart.
  void widen_to(std::uint64_t allocated, double steps, std::uint64_t bound) noexcept {
    const double room = static_cast<double>(bound > allocated ? bound - allocated : 0);
    const double want = std::min(steps * static_cast<double>(kMinStepBytes), room);
    limit_ = std::max(limit_, allocated + static_cast<std::uint64_t>(want));
  }
  void plan_next(std::uint64_t allocated) noexcept {
    last_allocated_ = allocated;
    next_.store(std::min(allocated + step_bytes_, std::max(limit_, allocated)), std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> next_{0};
  std::uint64_t limit_ = 0;
  std::uint64_t wide_limit_ = 0;     // the window may widen this far first,
  std::uint64_t widest_limit_ = 0;   // and this far once the steps are kMaxStretch long
  std::uint64_t half_budget_ = 0;  // the allocation a cycle marks during
  std::uint64_t step_bytes_ = kMinStepBytes;
  std::uint64_t step_ns_ = 0;
  std::uint64_t base_step_ns_ = 0;  // Options::mark_step_ns
  double work_left_ = 0;            // bytes the cycle may still have to mark (an upper bound)
  std::uint64_t last_allocated_ = 0;
  double rate_ = 1.0;  // bytes marked per ns: a slow machine's (2-core EPYC: 1.3-3.2), until measured
};

}  // namespace tagheap::gc::internal
