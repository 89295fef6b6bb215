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
  }
  return std::min<unsigned>(n, static_cast<unsigned>(threads_.size()) + 1);
}

void MarkerThreads::run(unsigned n, Job job, void* context) noexcept {
  if (n > 1) {
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
