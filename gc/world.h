// world.h: a stop-the-world helper for VMs that have none.
//
// Mutators are thread states attached through the World. Each polls
// safepoint() (one relaxed load) at points where it holds no half-updated
// heap object; blocking calls (join, I/O, sleeping) go inside blocking(f) so
// they do not hold a stop up. stop() returns once every attached mutator
// other than the caller is parked, blocking or detached; resume() lets them
// go.
//
// Invariants
//   running == mutators counted as running: attached through this World and
//              neither parked, nor blocking, nor the current stopper. Threads
//              that resume() lets go count as running from that moment, not
//              from when they wake, so a stop() right after resume() waits
//              for them to park again.
//   stop() returns only when running == 0; at most one stopper at a time.
//   Fairness: a thread waiting to attach, unpark or leave blocking() is let
//   through by the resume() that ends the stop it waited on, even if another
//   stop is requested at once: back-to-back stops cannot starve it. It then
//   parks at its next safepoint.
//   detach() abandons the thread state's pages while still counted as
//   running, so no collection walks them while they move to the pool, and
//   the ThreadState may be destroyed at once afterwards.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>

#include "alloc/thread_state.h"

namespace tagheap::gc {

class World {
 public:
  World() = default;
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World();

  // ts.attach() and join as a running mutator (waits while a stop is on).
  void attach(ThreadState& ts);
  // Abandon ts's pages to the pool, ts.detach(), and leave: the thread never
  // holds a stop up again and ts may be destroyed right away (thread exit).
  void detach(ThreadState& ts);

  void safepoint() noexcept {
    if (stop_requested_.load(std::memory_order_acquire)) [[unlikely]] park();
  }
  // Runs f while counted as parked (may wait for a stop to end afterwards).
  template <class F>
  decltype(auto) blocking(F&& f) {
    enter_blocking();
    struct Leave {
      World* w;
      ~Leave() { w->leave_blocking(); }
    } leave{this};
    return std::forward<F>(f)();
  }

  // From a mutator of this World or from any other thread.
  void stop();
  void resume();
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_relaxed); }
  int running() const;
  std::uint64_t stops() const noexcept { return epoch_.load(std::memory_order_relaxed); }

  // stop() ... resume() as a scope.
  class StopScope {
   public:
    explicit StopScope(World& w) : w_(w) { w_.stop(); }
    ~StopScope() { w_.resume(); }
    StopScope(const StopScope&) = delete;
    StopScope& operator=(const StopScope&) = delete;

   private:
    World& w_;
  };

 private:
  void park() noexcept;
  void enter_blocking();
  void leave_blocking();
  bool caller_is_mutator() const noexcept;
  // Becomes running: at once when no stop is on, else waits (lock held) as
  // one of the waiters that the stop's resume() turns into running threads.
  void become_running(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::uint64_t> epoch_{0};  // completed stops
  int running_ = 0;
  int waiters_ = 0;   // waiting for the current stop to end; running after it
  int attached_ = 0;
  bool stopper_is_mutator_ = false;
};

}  // namespace tagheap::gc
