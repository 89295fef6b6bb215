#include "gc/world.h"

#include <new>
#include <stdexcept>

#include "alloc/internal/config.h"

namespace tagheap::gc {

namespace {
// This OS thread's role (see world.h). Only its own thread reads or writes
// it; the World's counts change under the World's mutex.
struct Role {
  World* world = nullptr;       // the World this thread is a mutator of
  ThreadState* ts = nullptr;    // attached through it
  int depth = 0;                // nested blocking() levels of that World
};
thread_local Role t_role;

[[noreturn]] void misuse(const char* what) { throw std::logic_error(what); }
}  // namespace

World::~World() {
  std::lock_guard lock(mu_);
  if (attached_ != 0) internal::fatal("tagheap: gc::World destroyed with %d mutators attached", attached_);
}

bool World::caller_counts_as_running() const noexcept {
  return t_role.world == this && t_role.depth == 0 && !holds_stop();
}

void World::wait_for_resume(std::unique_lock<std::mutex>& lock) noexcept {
  const std::uint64_t seen = epoch_.load(std::memory_order_relaxed);
  cv_.wait(lock, [&] { return epoch_.load(std::memory_order_relaxed) != seen; });
}

void World::become_running(std::unique_lock<std::mutex>& lock) noexcept {
  if (!stop_requested_.load(std::memory_order_relaxed)) {
    ++running_;
    return;
  }
  ++waiters_;
  wait_for_resume(lock);
  // resume() counted us as running already.
}

void World::attach(ThreadState& ts) {
  if (t_role.world == this) misuse("tagheap: gc::World::attach: this thread is already a mutator of this World");
  if (t_role.world != nullptr) misuse("tagheap: gc::World::attach: this thread is already a mutator of another World");
  // First the step that may throw, while nothing of ours has changed; the
  // rest cannot fail. Binding ts to this thread is no heap change, so it
  // needs no running count yet.
  ts.attach();
  std::unique_lock lock(mu_);
  if (!holds_stop()) become_running(lock);  // the stopper is counted at resume()
  ++attached_;
  t_role = Role{this, &ts, 0};
}

void World::detach(ThreadState& ts) {
  if (t_role.world != this) misuse("tagheap: gc::World::detach from a thread that is not its mutator");
  if (t_role.ts != &ts) misuse("tagheap: gc::World::detach: not the ThreadState this thread attached");
  if (t_role.depth != 0) misuse("tagheap: gc::World::detach inside blocking()");
  // Still counted as running: no collection can walk these pages meanwhile.
  ts.detach();
  ts.abandon();
  std::lock_guard lock(mu_);
  if (caller_counts_as_running()) --running_;
  t_role = Role{};
  --attached_;
  cv_.notify_all();
}

void World::park() noexcept {
  std::unique_lock lock(mu_);
  if (!stop_requested_.load(std::memory_order_relaxed)) return;
  if (holds_stop()) return;  // our own stop: nothing to wait for
  if (t_role.world != this) internal::fatal("tagheap: gc::World::safepoint from a thread that is not its mutator");
  if (t_role.depth != 0) return;  // inside blocking(): counted out already
  --running_;
  cv_.notify_all();
  become_running(lock);
}

bool World::enter_blocking() {
  if (t_role.world == this) {
    if (t_role.depth++ == 0) {
      std::lock_guard lock(mu_);
      if (!holds_stop()) {
        --running_;
        cv_.notify_all();
      }
    }
    return true;
  }
  std::lock_guard lock(mu_);
  if (holds_stop()) return false;  // not counted: nothing to do
  misuse("tagheap: gc::World::blocking from a thread that is neither its mutator nor its stopper");
}

void World::leave_blocking(bool entered) noexcept {
  if (!entered || --t_role.depth != 0) return;
  std::unique_lock lock(mu_);
  if (!holds_stop()) become_running(lock);  // else resume() counts us
}

void World::stop() {
  std::unique_lock lock(mu_);
  if (holds_stop()) misuse("tagheap: gc::World::stop: this thread holds the stop already");
  const bool counted = caller_counts_as_running();
  // Another stopper first: a running mutator parks for it meanwhile.
  while (stop_requested_.load(std::memory_order_relaxed)) {
    if (counted) {
      --running_;
      cv_.notify_all();
      become_running(lock);
    } else {
      wait_for_resume(lock);
    }
  }
  stop_requested_.store(true, std::memory_order_release);
  stopper_ = std::this_thread::get_id();
  if (counted) --running_;
  cv_.wait(lock, [&] { return running_ == 0; });
}

void World::resume() {
  std::lock_guard lock(mu_);
  if (!stop_requested_.load(std::memory_order_relaxed)) misuse("tagheap: gc::World::resume without stop");
  if (!holds_stop()) misuse("tagheap: gc::World::resume from a thread that does not hold the stop");
  stopper_ = std::thread::id{};
  running_ += waiters_ + (caller_counts_as_running() ? 1 : 0);
  waiters_ = 0;
  epoch_.fetch_add(1, std::memory_order_relaxed);
  stop_requested_.store(false, std::memory_order_release);
  cv_.notify_all();
}

int World::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

int World::attached() const {
  std::lock_guard lock(mu_);
  return attached_;
}

void World::after_fork_child() noexcept {
  // Threads that held or waited on these are gone in the child.
  new (&mu_) std::mutex();
  new (&cv_) std::condition_variable();
  if (stop_requested_.load(std::memory_order_relaxed) && !holds_stop()) {
    // The stopper vanished: nobody is left to resume.
    stopper_ = std::thread::id{};
    epoch_.fetch_add(1, std::memory_order_relaxed);
    stop_requested_.store(false, std::memory_order_release);
  }
  waiters_ = 0;
  attached_ = t_role.world == this ? 1 : 0;
  running_ = caller_counts_as_running() ? 1 : 0;
}

}  // namespace tagheap::gc
