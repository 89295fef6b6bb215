#include "gc/world.h"

#include "alloc/internal/config.h"

namespace tagheap::gc {

namespace {
// The World the calling thread is a mutator of (one at a time).
thread_local World* t_world = nullptr;
}  // namespace

World::~World() {
  std::lock_guard lock(mu_);
  if (attached_ != 0) internal::fatal("tagheap: gc::World destroyed with %d mutators attached", attached_);
}

bool World::caller_is_mutator() const noexcept { return t_world == this; }

void World::become_running(std::unique_lock<std::mutex>& lock) {
  if (!stop_requested_.load(std::memory_order_relaxed)) {
    ++running_;
    return;
  }
  ++waiters_;
  const std::uint64_t seen = epoch_.load(std::memory_order_relaxed);
  cv_.wait(lock, [&] { return epoch_.load(std::memory_order_relaxed) != seen; });
  // resume() counted us as running already.
}

void World::attach(ThreadState& ts) {
  if (t_world != nullptr) internal::fatal("tagheap: this thread is already a mutator of a gc::World");
  {
    std::unique_lock lock(mu_);
    ++attached_;
    become_running(lock);
    t_world = this;
  }
  ts.attach();
}

void World::detach(ThreadState& ts) {
  if (t_world != this) internal::fatal("tagheap: gc::World::detach from a thread that is not its mutator");
  // Still counted as running: no collection can walk these pages meanwhile.
  ts.detach();
  ts.abandon();
  std::lock_guard lock(mu_);
  t_world = nullptr;
  --running_;
  --attached_;
  cv_.notify_all();
}

void World::park() noexcept {
  std::unique_lock lock(mu_);
  if (!stop_requested_.load(std::memory_order_relaxed)) return;
  --running_;
  cv_.notify_all();
  become_running(lock);
}

void World::enter_blocking() {
  std::lock_guard lock(mu_);
  --running_;
  cv_.notify_all();
}

void World::leave_blocking() {
  std::unique_lock lock(mu_);
  become_running(lock);
}

void World::stop() {
  std::unique_lock lock(mu_);
  const bool mutator = caller_is_mutator();
  // Another stopper first: a mutator parks for it meanwhile.
  while (stop_requested_.load(std::memory_order_relaxed)) {
    if (mutator) --running_;
    cv_.notify_all();
    if (mutator) {
      become_running(lock);
    } else {
      const std::uint64_t seen = epoch_.load(std::memory_order_relaxed);
      cv_.wait(lock, [&] { return epoch_.load(std::memory_order_relaxed) != seen; });
    }
  }
  stop_requested_.store(true, std::memory_order_release);
  stopper_is_mutator_ = mutator;
  if (mutator) --running_;
  cv_.wait(lock, [&] { return running_ == 0; });
}

void World::resume() {
  std::lock_guard lock(mu_);
  if (!stop_requested_.load(std::memory_order_relaxed)) internal::fatal("tagheap: gc::World::resume without stop");
  running_ += waiters_ + (stopper_is_mutator_ ? 1 : 0);
  waiters_ = 0;
  stopper_is_mutator_ = false;
  epoch_.fetch_add(1, std::memory_order_relaxed);
  stop_requested_.store(false, std::memory_order_release);
  cv_.notify_all();
}

int World::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

}  // namespace tagheap::gc
