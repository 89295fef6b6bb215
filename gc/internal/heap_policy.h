// internal/heap_policy.h: when a collection is due.
// Internal: users must not rely on anything under gc/internal/.
//
// Design
//   The allocator counts the bytes its heaps take for each tag
//   (Runtime::allocated_bytes: per bitmap word taken, flushed every 64 KiB
//   per heap, so no atomic on the allocation fast path). After each
//   collection the policy sets
//       budget = max(min_budget_bytes, heap_growth * live bytes after it)
//   and a collection is due once the GC tags' allocation since then passes
//   the budget. The heap then peaks near (1 + heap_growth) * live bytes
//   (plus min_budget_bytes when the live data is small): heap_growth is the
//   knob between time (fewer collections) and memory.
//
// Invariants
//   due() reads two atomics and the runtime's counters: any thread, no lock.
//   budget >= min_budget_bytes > 0, so an empty heap never collects in a loop.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tagheap::gc::internal {

class HeapPolicy {
 public:
  HeapPolicy(double heap_growth, std::size_t min_budget_bytes) noexcept
      : growth_(heap_growth > 0 ? heap_growth : 0), min_budget_(std::max<std::size_t>(min_budget_bytes, 1)),
        budget_(min_budget_) {}

  // World stopped, after marking: `allocated` is the GC tags' total now.
  void after_collection(std::uint64_t allocated, std::size_t live_bytes) noexcept {
    const double grown = growth_ * static_cast<double>(live_bytes);
    const std::uint64_t budget =
        std::max<std::uint64_t>(min_budget_, grown >= 1.8e19 ? UINT64_MAX : static_cast<std::uint64_t>(grown));
    budget_.store(budget, std::memory_order_relaxed);
    allocated_at_last_.store(allocated, std::memory_order_relaxed);
    live_at_last_ = live_bytes;
  }
  bool due(std::uint64_t allocated) const noexcept {
    return allocated - allocated_at_last_.load(std::memory_order_relaxed) >= budget_.load(std::memory_order_relaxed);
  }
  std::uint64_t budget() const noexcept { return budget_.load(std::memory_order_relaxed); }
  std::uint64_t allocated_at_last() const noexcept { return allocated_at_last_.load(std::memory_order_relaxed); }
  std::uint64_t allocated_since(std::uint64_t allocated) const noexcept {
    return allocated - allocated_at_last_.load(std::memory_order_relaxed);
  }
  // World stopped: the live bytes the last collection reported (0 before
  // the first). With allocated_since, a bound on what is live now (what
  // survived it, plus what was allocated since).
  std::size_t live_at_last() const noexcept { return live_at_last_; }

 private:
  double growth_;
  std::uint64_t min_budget_;
  std::atomic<std::uint64_t> budget_;
  std::atomic<std::uint64_t> allocated_at_last_{0};
  std::size_t live_at_last_ = 0;
};

}  // namespace tagheap::gc::internal
