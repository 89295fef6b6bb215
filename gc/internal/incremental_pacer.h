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
//   At the start the pacer plans the steps: the live bytes of the last
//   cycle, marked at the measured rate (bytes per ns of marking, starting
//   from a conservative guess and following each step), in steps of
//   Options::mark_step_ns, twice over for margin, give the number of steps;
//   the allocation left before the limit divided by it gives the bytes
//   between steps (never less than kMinStepBytes, so a tiny budget does not
//   turn into a pause per allocation).
//   A cycle still marking when the allocation reaches the limit finishes in
//   the next pause, whatever that costs: the heap never grows past what the
//   stop-the-world policy allows because the marker fell behind.
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

  // No cycle runs: the next one starts once `allocated` (the GC tags' total)
  // passes the last collection's mark plus kStartShare of its budget.
  void idle(std::uint64_t allocated_at_last, std::uint64_t budget) noexcept {
    limit_ = allocated_at_last + budget;
    next_.store(allocated_at_last + static_cast<std::uint64_t>(kStartShare * static_cast<double>(budget)),
                std::memory_order_relaxed);
  }
  // A cycle begins; `live_estimate`: the bytes the last collection marked.
  void start(std::uint64_t allocated, std::size_t live_estimate, std::uint64_t step_ns) noexcept {
    const double per_step = std::max(1.0, rate_ * static_cast<double>(step_ns));
    const double steps = std::clamp(std::ceil(2.0 * static_cast<double>(live_estimate) / per_step), 4.0,
                                    static_cast<double>(kMaxSteps));
    const std::uint64_t left = limit_ > allocated ? limit_ - allocated : 0;
    step_bytes_ = std::max<std::uint64_t>(kMinStepBytes, static_cast<std::uint64_t>(static_cast<double>(left) / steps));
    plan_next(allocated);
  }
  // A step marked `bytes` in `ns` of marking; the next one is due after
  // step_bytes more.
  void step_done(std::uint64_t allocated, std::size_t bytes, std::uint64_t ns) noexcept {
    if (ns > 0 && bytes > 0) rate_ = 0.5 * rate_ + 0.5 * static_cast<double>(bytes) / static_cast<double>(ns);
    plan_next(allocated);
  }
  bool due(std::uint64_t allocated) const noexcept { return allocated >= next_.load(std::memory_order_relaxed); }
  bool at_limit(std::uint64_t allocated) const noexcept { return allocated >= limit_; }
  std::uint64_t step_bytes() const noexcept { return step_bytes_; }
  double rate_bytes_per_ns() const noexcept { return rate_; }

 private:
  void plan_next(std::uint64_t allocated) noexcept {
    next_.store(std::min(allocated + step_bytes_, std::max(limit_, allocated)), std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> next_{0};
  std::uint64_t limit_ = 0;
  std::uint64_t step_bytes_ = kMinStepBytes;
  double rate_ = 0.5;  // bytes marked per ns: a slow machine's, until measured
};

}  // namespace tagheap::gc::internal
