// internal/marker_threads.h: the threads that help a collection mark.
// Internal: users must not rely on anything under gc/internal/.
//
// Design
//   A collector owns one MarkerThreads. Helper threads are started the
//   first time a collection asks for them and then parked on a condition
//   variable between collections: never a thread per collection. run(n, job)
//   runs job(0) on the calling thread and offers job(1..n-1) to helpers.
//   The round closes when job(0) returns: a helper the OS had not scheduled
//   by then skips it, and run() waits only for the helpers that started.
//   A sleeping helper never holds a pause up (measured: with two markers on
//   a loaded 2-core machine, minor pauses of ~1 MiB waited 7x their marking
//   time for a helper to be scheduled). So job(0) must be able to finish
//   the whole job alone (MarkWorklist::join says who takes part).
//
// Invariants
//   Between run() calls every helper is parked; run() is not re-entrant
//   (one collection at a time per collector).
//   A helper that could not be started (the OS refused a thread) is simply
//   not there: run() reports how many markers actually ran.
//   In a fork() child the parent's helpers do not exist: run() notices the
//   new process and starts helpers afresh, forgetting the old ones.
//   job must not throw (the collector catches inside it).
//   Helpers run on the CPUs of the thread that constructed the
//   MarkerThreads (the collector's owner, usually the VM's main thread),
//   never on those of the thread that first asked for them: a new thread
//   inherits its creator's affinity, and a collection triggered by a
//   mutator pinned to one CPU pinned every helper to that CPU, where it
//   time-sliced with the collecting thread while the other cores idled
//   (mt_gcbench, whose mutators pin themselves: half its collections
//   marked no faster with two markers than with one). And while marker 0's
//   CPU is one of those and the others leave a CPU for every helper, run()
//   keeps the helpers off marker 0's CPU: the scheduler put a woken helper
//   on the waker's CPU now and then (a fifth of mt_gcbench's collections
//   once the helpers could run anywhere), where it waited for a time slice
//   while a core idled. run() sets the masks (pthread_setaffinity_np, one
//   call a helper) only when they change: a new helper, or marker 0 on
//   another CPU than the round before.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace tagheap::gc::internal {

class MarkerThreads {
 public:
  using Job = void (*)(void* context, unsigned marker) noexcept;

  MarkerThreads() noexcept;
  ~MarkerThreads();
  MarkerThreads(const MarkerThreads&) = delete;
  MarkerThreads& operator=(const MarkerThreads&) = delete;

  // Makes sure n - 1 helpers exist; returns how many markers can run
  // (fewer than n when the OS refuses threads).
  unsigned start(unsigned n) noexcept;
  // Runs job(context, 0) on the caller and job(context, i), i in [1, n),
  // on each helper that wakes before job(context, 0) returns; n <= start(n).
  // Returns once job 0 and every started helper job have returned.
  void run(unsigned n, Job job, void* context) noexcept;

 private:
  static void* helper_main(void* self) noexcept;
  void helper_loop(unsigned marker) noexcept;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<pthread_t> threads_;
  cpu_set_t cpus_;           // the constructing thread's affinity, for the helpers
  bool cpus_known_ = false;  // false: sched_getaffinity failed; helpers inherit
  static constexpr int kMasksMixed = -2;
  int helpers_avoid_ = -1;  // the CPU every helper's mask leaves out (-1: none; kMasksMixed: not the same for all)
  void keep_helpers_off(int cpu) noexcept;
  pid_t pid_ = 0;            // the process the helpers belong to
  std::uint64_t round_ = 0;  // incremented by each run()
  unsigned active_ = 0;      // markers this round offers jobs to (0 included)
  unsigned running_ = 0;     // helpers that started this round's job and are still in it
  bool open_ = false;        // helpers may still start this round's job
  Job job_ = nullptr;
  void* context_ = nullptr;
  bool quit_ = false;
};

}  // namespace tagheap::gc::internal
