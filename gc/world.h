// world.h: a stop-the-world helper for VMs that have none.
//
// Mutators are thread states attached through the World. Each polls
// safepoint() (one acquire load) at points where it holds no half-updated
// heap object; blocking calls (join, I/O, sleeping, waiting for a lock that
// a blocking thread may hold) go inside blocking(f) so they do not hold a
// stop up. stop() returns once every attached mutator other than the caller
// is parked, blocking or detached; resume() lets them go.
//
// Per-thread record (thread-local, one per OS thread): the World this thread
// is a mutator of (at most one), the ThreadState it attached through it, and
// its blocking() depth. The World itself remembers which thread holds its
// stop (the stopper), so one thread may stop several Worlds.
//
// A thread counts as running in World W exactly when
//     record.world == W  &&  record.depth == 0  &&  W.stopper != this thread
// and it is neither parked at a safepoint nor waiting to (re)enter.
// Every call below only moves the count when that predicate changes:
//   - blocking() counts the thread out on the outermost level only and back
//     in when that level ends; nested levels only change the depth.
//   - blocking() from the thread that holds the stop runs f at once: the
//     stopper is not counted anyway. If the stop ends inside f, leaving the
//     outermost level counts the thread in as usual.
//   - safepoint() from the stopper, or from inside blocking(), is a no-op.
//   - stop() from inside blocking() neither counts the caller out again nor
//     back in at resume(); stop() from a running mutator counts it out, and
//     its resume() counts it back in (if it is then outside blocking()).
//   - attach() by the thread that holds the stop does not wait for itself.
//
// Misuse is reported, never absorbed into the counts:
//   std::logic_error, thrown before anything changes (the caller may go on):
//     attach() by a thread that is already a mutator (of any World);
//     detach() from a thread that is not this World's mutator, with another
//     ThreadState than the one attached, or inside blocking();
//     blocking() from a thread that is neither a mutator nor the stopper;
//     stop() by the thread that already holds the stop;
//     resume() without a stop, or from a thread that does not hold it.
//   (detach() and resume() usually run in destructors: there the exception
//   ends the program through std::terminate, with its message.)
//   internal::fatal (noexcept paths): safepoint() from a thread that is not
//   a mutator of this World, seen when a stop is on; ~World with mutators
//   still attached.
//
// Invariants (under mu_)
//   running == number of threads for which the predicate above holds; while
//              a stop is on, threads that resume() will let go are counted
//              in waiters, and join running at that resume() (not when they
//              wake), so a stop() right after resume() waits for them to
//              park again.
//   attached == threads whose record names this World.
//   stop() returns only when running == 0; at most one stopper at a time.
//   Fairness: a thread waiting to attach, unpark or leave blocking() is let
//   through by the resume() that ends the stop it waited on, even if another
//   stop is requested at once: back-to-back stops cannot starve it. It then
//   parks at its next safepoint.
//   attach() gives the strong guarantee: if ts.attach() throws, the counts
//   and the thread's record are as before, and the thread may attach again.
//   detach() abandons the thread state's pages while still counted as
//   running, so no collection walks them while they move to the pool, and
//   the ThreadState may be destroyed at once afterwards.
//
// fork(): in the child only the forking thread exists. Take the stop around
// fork() (so no mutator is mid-allocation), then in the child call
// Runtime::after_fork_child(ts) and World::after_fork_child(): the World
// forgets the vanished threads and keeps the caller's own role (mutator,
// blocking depth, stop held). If a vanished thread held the stop, the stop
// is dropped: whatever it was doing under the stop is not the World's to
// finish, so do not fork while another thread collects.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>

#include "alloc/thread_state.h"

namespace tagheap::gc {

class World {
 public:
  World() = default;
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World();

  // ts.attach() and join as a running mutator (waits while a stop is on,
  // unless the caller holds it). Strong exception guarantee.
  void attach(ThreadState& ts);
  // Abandon ts's pages to the pool, ts.detach(), and leave: the thread never
  // holds a stop up again and ts may be destroyed right away (thread exit).
  void detach(ThreadState& ts);

  // Fast path: one acquire load. The slow path parks until the stop ends.
  void safepoint() noexcept {
    if (stop_requested_.load(std::memory_order_acquire)) [[unlikely]] park();
  }
  // Runs f while counted as not running (may wait for a stop to end
  // afterwards). Nests; see the rules above.
  template <class F>
  decltype(auto) blocking(F&& f) {
    struct Leave {
      World* w;
      bool entered;
      ~Leave() { w->leave_blocking(entered); }
    } leave{this, enter_blocking()};
    return std::forward<F>(f)();
  }

  // From a mutator of this World (running or inside blocking()) or from any
  // other thread. resume() from the thread that called stop().
  void stop();
  void resume();
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_relaxed); }
  int running() const;
  int attached() const;
  std::uint64_t stops() const noexcept { return epoch_.load(std::memory_order_relaxed); }

  // In a fork() child, by the thread that forked, after
  // Runtime::after_fork_child: see "fork()" above.
  void after_fork_child() noexcept;

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
  // Whether this call changed the caller's blocking depth (it is a mutator).
  bool enter_blocking();
  void leave_blocking(bool entered) noexcept;
  bool holds_stop() const noexcept { return stopper_ == std::this_thread::get_id(); }
  // The predicate above, for the calling thread (mu_ held).
  bool caller_counts_as_running() const noexcept;
  // Becomes running: at once when no stop is on, else waits (lock held) as
  // one of the waiters that the stop's resume() turns into running threads.
  void become_running(std::unique_lock<std::mutex>& lock) noexcept;
  void wait_for_resume(std::unique_lock<std::mutex>& lock) noexcept;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::uint64_t> epoch_{0};  // completed stops
  int running_ = 0;
  int waiters_ = 0;   // waiting for the current stop to end; running after it
  int attached_ = 0;
  std::thread::id stopper_{};  // none when no stop is on
};

}  // namespace tagheap::gc
