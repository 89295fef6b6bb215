// internal/finalizer_table.h: objects with finalizers, and the queue of
// those ready to run. Internal: users must not rely on anything under
// gc/internal/ (MarkSweep::register_finalizer and run_finalizers are the API).
//
// Design (the Boehm collector's ordered finalization, done by MarkSweep)
//   registered  obj -> (fn, data, order); the table does not keep obj alive.
//   After marking, an unmarked registered object is unreachable. An
//   unordered one is ready at once. For each unmarked ordered object F the
//   collector marks what F reaches (F itself excluded): an ordered object
//   that another unreachable finalizable object reaches is not ready yet; it
//   becomes ready once that one has been finalized and collected. Ready
//   objects leave the table for the queue and are marked, with everything
//   they reach, so a finalizer sees its object and every referent intact.
//   The queue is a root until its finalizer ran: queued objects survive any
//   number of collections. Finalizers run when the VM calls run(), on the
//   thread it chooses, outside any pause: they may allocate, take locks,
//   register finalizers again (resurrection), or start a collection.
//
// Invariants
//   An object is in the table or the queue, never both; a finalizer runs
//   once per registration. Ordered objects that reach each other in a cycle
//   are never ready (as in Boehm's collector): they stay registered and
//   alive, and CollectStats::finalizers_waiting counts them with the others
//   that wait for a referrer's finalizer. A field of an object pointing at
//   the object itself does not count; any longer way back to it does (use
//   kUnordered for such objects).
//   All access under `mu` (mutators register while a collection may run on
//   another thread only with the world stopped, but run() may be called
//   anywhere).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tagheap::gc {

// A finalizer: called as fn(obj, data) from MarkSweep::run_finalizers.
using FinalizerFn = void (*)(void* obj, void* data);
enum class FinalizerOrder : std::uint8_t {
  kOrdered,    // not before every unreachable finalizable object reaching it was finalized
  kUnordered,  // as soon as it is unreachable from the roots (Boehm's _no_order)
};

namespace internal {

class FinalizerTable {
 public:
  struct Entry {
    FinalizerFn fn;
    void* data;
    FinalizerOrder order;
  };
  struct Ready {
    void* obj;
    FinalizerFn fn;
    void* data;
  };

  // fn == nullptr unregisters. Returns the previous registration of obj
  // (fn nullptr if none). Throws std::bad_alloc when the table cannot grow.
  Entry set(void* obj, FinalizerFn fn, void* data, FinalizerOrder order);
  bool empty() const;
  std::size_t registered() const;
  std::size_t queued() const;

  // World stopped: f(obj) for each queued object (roots).
  template <class F>
  void for_each_queued(F&& f) const {
    std::lock_guard lock(mu_);
    for (std::size_t i = head_; i < queue_.size(); ++i) f(queue_[i].obj);
  }
  // World stopped: the registered objects, copied (for the collector's passes).
  std::vector<std::pair<void*, Entry>> snapshot() const;
  // The same into `out` (cleared first; its capacity kept, so a collector
  // that keeps it does not allocate in the pause once it is big enough).
  // Throws std::bad_alloc when out cannot grow.
  void snapshot(std::vector<std::pair<void*, Entry>>& out) const;
  // World stopped: moves obj from the table to the queue. False when the
  // queue cannot grow (it stays registered: ready again next collection).
  bool make_ready(void* obj) noexcept;
  // Pops one ready finalizer (false: none).
  bool pop(Ready& out);

 private:
  mutable std::mutex mu_;
  std::unordered_map<void*, Entry> table_;
  // [head_, size): waiting to run. A vector, not a deque: an empty one
  // allocates nothing, so a collector can be made when memory has run out.
  std::vector<Ready> queue_;
  std::size_t head_ = 0;
};

}  // namespace internal
}  // namespace tagheap::gc
