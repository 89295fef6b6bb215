#include "gc/internal/marker_threads.h"

#include <unistd.h>

#include <algorithm>
#include <new>

namespace tagheap::gc::internal {

namespace {
struct HelperStart {
  void* threads;
  unsigned marker;
};
}  // namespace

MarkerThreads::MarkerThreads() noexcept {
  CPU_ZERO(&cpus_);
  cpus_known_ = sched_getaffinity(0, sizeof cpus_, &cpus_) == 0;
}

MarkerThreads::~MarkerThreads() {
  if (pid_ != getpid()) return;  // a fork child: the helpers are the parent's
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  for (pthread_t t : threads_) pthread_join(t, nullptr);
}

void* MarkerThreads::helper_main(void* arg) noexcept {
  auto* start = static_cast<HelperStart*>(arg);
  auto* self = static_cast<MarkerThreads*>(start->threads);
  const unsigned marker = start->marker;
  delete start;
  self->helper_loop(marker);
  return nullptr;
}

void MarkerThreads::helper_loop(unsigned marker) noexcept {
  std::uint64_t seen = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return quit_ || round_ != seen; });
    if (quit_) return;
    seen = round_;
    if (marker >= active_ || !open_) continue;  // fewer markers, or marker 0 already finished
    ++running_;
    Job job = job_;
    void* context = context_;
    lock.unlock();
    job(context, marker);
    lock.lock();
    if (--running_ == 0) cv_.notify_all();
  }
}

unsigned MarkerThreads::start(unsigned n) noexcept {
  const pid_t pid = getpid();
  if (pid_ != pid) {
    // First use, or a fork child: the parent's helpers (and whatever lock
    // one of them held) do not exist here; forget them.
    new (&mu_) std::mutex();
    new (&cv_) std::condition_variable();
    threads_.clear();
    helpers_avoid_ = -1;
    pid_ = pid;
  }
  std::lock_guard lock(mu_);
  try {
    threads_.reserve(n);
  } catch (...) {
    return static_cast<unsigned>(threads_.size()) + 1;
  }
  while (threads_.size() + 1 < n) {
    auto* start = new (std::nothrow) HelperStart{this, static_cast<unsigned>(threads_.size() + 1)};
    if (start == nullptr) break;
    pthread_t t;
    if (pthread_create(&t, nullptr, &MarkerThreads::helper_main, start) != 0) {
      delete start;
      break;  // fewer markers: slower, never wrong
    }
    threads_.push_back(t);
    helpers_avoid_ = kMasksMixed;  // the new one has its creator's mask: run() sets it
  }
  return std::min<unsigned>(n, static_cast<unsigned>(threads_.size()) + 1);
}

// Gives every helper the CPUs of cpus_ but `cpu` (all of cpus_ for cpu =
// -1). A refused mask leaves the thread as it was.
void MarkerThreads::keep_helpers_off(int cpu) noexcept {
  if (cpu == helpers_avoid_) return;
  cpu_set_t mask = cpus_;
  if (cpu >= 0) CPU_CLR(cpu, &mask);
  for (pthread_t t : threads_) (void)pthread_setaffinity_np(t, sizeof mask, &mask);
  helpers_avoid_ = cpu;
}

void MarkerThreads::run(unsigned n, Job job, void* context) noexcept {
  if (n > 1) {
    if (cpus_known_) {
      const int cpu = sched_getcpu();
      const bool room = cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &cpus_) &&
                        static_cast<unsigned>(CPU_COUNT(&cpus_)) >= n;
      keep_helpers_off(room ? cpu : -1);
    }
    {
      std::lock_guard lock(mu_);
      job_ = job;
      context_ = context;
      active_ = n;
      running_ = 0;
      open_ = true;
      ++round_;
    }
    cv_.notify_all();
  }
  job(context, 0);
  if (n > 1) {
    std::unique_lock lock(mu_);
    open_ = false;
    cv_.wait(lock, [&] { return running_ == 0; });
  }
}

}  // namespace tagheap::gc::internal
