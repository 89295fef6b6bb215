#include "gc/internal/finalizer_table.h"

namespace tagheap::gc::internal {

FinalizerTable::Entry FinalizerTable::set(void* obj, FinalizerFn fn, void* data, FinalizerOrder order) {
  std::lock_guard lock(mu_);
  Entry old{nullptr, nullptr, FinalizerOrder::kOrdered};
  auto it = table_.find(obj);
  if (it != table_.end()) {
    old = it->second;
    if (fn == nullptr) table_.erase(it);
    else it->second = Entry{fn, data, order};
    return old;
  }
  if (fn != nullptr) table_.emplace(obj, Entry{fn, data, order});
  return old;
}

bool FinalizerTable::empty() const {
  std::lock_guard lock(mu_);
  return table_.empty() && head_ == queue_.size();
}

std::size_t FinalizerTable::registered() const {
  std::lock_guard lock(mu_);
  return table_.size();
}

std::size_t FinalizerTable::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size() - head_;
}

std::vector<std::pair<void*, FinalizerTable::Entry>> FinalizerTable::snapshot() const {
  std::lock_guard lock(mu_);
  return {table_.begin(), table_.end()};
}

void FinalizerTable::snapshot(std::vector<std::pair<void*, Entry>>& out) const {
  std::lock_guard lock(mu_);
  out.assign(table_.begin(), table_.end());
}

bool FinalizerTable::make_ready(void* obj) noexcept {
  std::lock_guard lock(mu_);
  auto it = table_.find(obj);
  if (it == table_.end()) return true;
  try {
    queue_.push_back(Ready{obj, it->second.fn, it->second.data});
  } catch (...) {
    return false;
  }
  table_.erase(it);
  return true;
}

bool FinalizerTable::pop(Ready& out) {
  std::lock_guard lock(mu_);
  if (head_ == queue_.size()) return false;
  out = queue_[head_++];
  if (head_ == queue_.size()) {
    queue_.clear();
    head_ = 0;
  }
  return true;
}

}  // namespace tagheap::gc::internal
