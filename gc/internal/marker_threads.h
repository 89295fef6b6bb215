// internal/marker_threads.h: the threads that help a collection mark.
// Internal: users must not rely on anything under gc/internal/.
//
// Design
//   A collector owns one MarkerThreads. Helper threads are started the
//   first time a collection asks for them and then parked on a condition
//   variable between collections: never a thread per collection. run(n, job)
//   runs job(0) on the calling thread and job(1..n-1) on helpers, and
//   returns when all n have returned.
//
// Invariants
//   Between run() calls every helper is parked; run() is not re-entrant
//   (one collection at a time per collector).
//   A helper that could not be started (the OS refused a thread) is simply
//   not there: run() reports how many markers actually ran.
//   In a fork() child the parent's helpers do not exist: run() notices the
//   new process and starts helpers afresh, forgetting the old ones.
//   job must not throw (the collector catches inside it).
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace tagheap::gc::internal {

class MarkerThreads {
 public:
  using Job = void (*)(void* context, unsigned marker) noexcept;

  MarkerThreads() = default;
  ~MarkerThreads();
  MarkerThreads(const MarkerThreads&) = delete;
  MarkerThreads& operator=(const MarkerThreads&) = delete;

  // Makes sure n - 1 helpers exist; returns how many markers can run
  // (fewer than n when the OS refuses threads).
  unsigned start(unsigned n) noexcept;
  // Runs job(context, i) for i in [0, n) (0 on the caller), n <= start(n).
  void run(unsigned n, Job job, void* context) noexcept;

 private:
  static void* helper_main(void* self) noexcept;
  void helper_loop(unsigned marker) noexcept;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<pthread_t> threads_;
  pid_t pid_ = 0;            // the process the helpers belong to
  std::uint64_t round_ = 0;  // incremented by each run()
  unsigned active_ = 0;      // helpers taking part in this round
  unsigned running_ = 0;     // helpers still in this round's job
  Job job_ = nullptr;
  void* context_ = nullptr;
  bool quit_ = false;
};

}  // namespace tagheap::gc::internal
