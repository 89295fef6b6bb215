// internal/mark_worklist.h: how parallel markers share work and agree that
// marking is over. Internal: users must not rely on anything under gc/internal/.
//
// Design
//   Each marker drains a stack of its own (no lock, no atomic per object).
//   A marker that runs dry calls take(): it counts itself idle and waits for
//   a chunk. A busy marker checks wants_work() (one relaxed load) every few
//   dozen objects and, when somebody is idle and its own stack is deep
//   enough, give()s the oldest half of its stack: the entries nearest the
//   roots, so the biggest subgraphs change hands. Chunks go through one
//   mutex-protected list: a transfer moves hundreds of objects, so the lock
//   is taken rarely (Boehm's and cppgc's marking share work in the same
//   coarse way).
//
//   Marker 0 takes part from reset(); a helper joins when it starts
//   (join()), and not at all once marking is over: the collecting thread
//   never waits for a helper the OS has not scheduled yet.
//
// Invariants
//   idle == markers waiting in take(); marking is over exactly when every
//   joined marker is idle and no chunk is left (then `done` is set, every
//   waiter returns false and join() refuses). An object is on exactly one stack or chunk until
//   traced, so each marked object is traced once.
//   abort() (an exception in a marker) wakes everybody; take() then returns
//   false at once and the collector undoes the marks.
//   stop() (an incremental step's time is up) wakes everybody the same way,
//   but the work stays: each marker keeps its stack, and take_leftovers()
//   hands the chunks still on the list to the collector for the next step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

#include "gc/internal/mark_stack.h"

namespace tagheap::gc::internal {

class MarkWorklist {
 public:
  // A collection begins, with marker 0 taking part.
  void reset() noexcept;
  // A helper starts: true if it takes part (it must then take() until
  // false), false if marking is already over, aborted or stopped.
  bool join() noexcept;
  // Markers that took part in this collection (or step), 0 included.
  unsigned joined() const noexcept { return joined_.load(std::memory_order_relaxed); }

  // Somebody waits for work (relaxed; a hint).
  bool wants_work() const noexcept { return idle_.load(std::memory_order_relaxed) != 0; }
  // Moves the oldest half of `stack` to the shared list when it is deep
  // enough. Never throws: out of memory, the stack stays as it is.
  void share(MarkStack& stack) noexcept;
  // Blocks until a chunk is available (moved into the empty `stack`: true)
  // or marking is over or aborted (false).
  bool take(MarkStack& stack);
  void abort() noexcept;
  bool aborted() const noexcept { return aborted_.load(std::memory_order_relaxed); }
  void stop() noexcept;
  bool stopped() const noexcept { return stopped_.load(std::memory_order_relaxed); }
  // After the markers returned: appends the chunks nobody took to `stack`.
  // False when memory for that ran out (some entries are then dropped: the
  // caller must rescan marked objects).
  bool take_leftovers(MarkStack& stack) noexcept;

  static constexpr std::size_t kMinShare = 32;  // entries a stack keeps before it gives

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MarkStack> chunks_;  // kept across collections
  // Emptied chunk buffers, capacity kept: share() refills one instead of
  // allocating (a collector may allocate in its pause only at a cost: libgc
  // maps every block then). Kept across collections.
  std::vector<MarkStack> spare_;
  std::atomic<unsigned> idle_{0};
  std::atomic<bool> aborted_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<unsigned> joined_{1};
  bool done_ = false;
};

}  // namespace tagheap::gc::internal
