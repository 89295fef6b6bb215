#include "gc/internal/mark_worklist.h"

#include <algorithm>
#include <new>

namespace tagheap::gc::internal {

void MarkWorklist::reset() noexcept {
  std::lock_guard lock(mu_);
  chunks_.clear();
  idle_.store(0, std::memory_order_relaxed);
  aborted_.store(false, std::memory_order_relaxed);
  stopped_.store(false, std::memory_order_relaxed);
  joined_.store(1, std::memory_order_relaxed);
  done_ = false;
}

bool MarkWorklist::join() noexcept {
  std::lock_guard lock(mu_);
  if (done_ || aborted_.load(std::memory_order_relaxed) || stopped_.load(std::memory_order_relaxed)) return false;
  joined_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void MarkWorklist::share(MarkStack& stack) noexcept {
  if (stack.size() < 2 * kMinShare) return;
  const std::size_t n = stack.size() / 2;
  MarkStack chunk;
  try {
    {
      std::lock_guard lock(mu_);
      if (!spare_.empty()) {  // a buffer an earlier take() emptied: no allocation
        chunk.swap(spare_.back());
        spare_.pop_back();
      }
    }
    chunk.clear();
    chunk.append(stack.begin(), stack.begin() + n);
    {
      std::lock_guard lock(mu_);
      chunks_.push_back(std::move(chunk));
    }
    stack.drop_front(n);
  } catch (const std::bad_alloc&) {
    return;  // keep the work: slower, never wrong
  }
  cv_.notify_one();
}

bool MarkWorklist::take(MarkStack& stack) {
  std::unique_lock lock(mu_);
  idle_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    if (done_ || aborted_.load(std::memory_order_relaxed) || stopped_.load(std::memory_order_relaxed)) {
      idle_.fetch_sub(1, std::memory_order_relaxed);  // stopped: it may still hold work
      return false;
    }
    if (!chunks_.empty()) {
      stack.swap(chunks_.back());  // the chunk's slot now holds the taker's empty buffer
      try {
        spare_.push_back(std::move(chunks_.back()));
      } catch (const std::bad_alloc&) {
        // freed with the slot below: the next share allocates
      }
      chunks_.pop_back();
      idle_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    if (idle_.load(std::memory_order_relaxed) == joined_.load(std::memory_order_relaxed)) {
      done_ = true;
      cv_.notify_all();
      return false;
    }
    cv_.wait(lock);
  }
}

void MarkWorklist::abort() noexcept {
  {
    std::lock_guard lock(mu_);
    aborted_.store(true, std::memory_order_relaxed);
  }
  cv_.notify_all();
}

void MarkWorklist::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stopped_.store(true, std::memory_order_relaxed);
  }
  cv_.notify_all();
}

bool MarkWorklist::take_leftovers(MarkStack& stack) noexcept {
  std::lock_guard lock(mu_);
  bool kept_all = true;
  for (MarkStack& chunk : chunks_) {
    try {
      stack.append(chunk.begin(), chunk.end());
    } catch (const std::bad_alloc&) {
      kept_all = false;
    }
  }
  chunks_.clear();
  return kept_all;
}

}  // namespace tagheap::gc::internal
