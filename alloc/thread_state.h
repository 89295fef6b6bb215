// thread_state.h: the allocation context of one VM thread.
//
// Like a PyThreadState holding its allocator context: one Heap per tag in use
// (made on first use), not tied to an OS thread. attach() binds it to the
// calling OS thread (one attached thread state per OS thread at a time);
// detach() unbinds it. A ThreadState may live in memory the VM owns.
//
// Destroying or abandon()ing it moves its pages to the runtime's pool:
// allowed from any OS thread while it is detached (VM finalisation, or the
// child after fork()). It joins its runtime's list only once fully built and
// leaves it only after its pages are abandoned, so a walk sees every block
// (invariant 9).
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>

#include "alloc/heap.h"
#include "alloc/internal/intrusive.h"
#include "alloc/runtime.h"
#include "alloc/tag.h"

namespace tagheap {
namespace internal {
class RemoteFreeBuffer;
class RuntimeCore;
// The attached thread state's RemoteFreeBuffer, taken at its first free into
// another thread's page of `core` since it attached (remote_free_buffer.h).
RemoteFreeBuffer* take_remote_free_buffer_for_current(RuntimeCore* core) noexcept;
}  // namespace internal

class ThreadState {
 public:
  explicit ThreadState(Runtime& runtime);
  // Abandons its pages. Fatal if attached to another OS thread; detaches
  // first if attached to this one.
  ~ThreadState();
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;

  // Throws std::logic_error if another thread state is attached to this OS
  // thread or this one is attached elsewhere.
  void attach();
  void detach();
  bool attached() const noexcept { return attached_.load(std::memory_order_relaxed); }
  // The thread state attached to the calling OS thread, or nullptr.
  static ThreadState* current() noexcept;

  // Throws std::invalid_argument on a tag >= 16.
  Heap& heap(Tag tag) {
    Heap* h = heaps_[checked_tag(tag)];
    return h != nullptr ? *h : make_heap(tag);
  }
  // Any other integer type (an int literal, a size_t): checked before it
  // narrows to Tag, so heap(256) throws instead of being heap(0).
  template <std::integral I>
    requires(!std::same_as<I, Tag>)
  Heap& heap(I tag) {
    return heap(checked_tag(tag));
  }
  Heap* heap_if_made(Tag tag) const noexcept { return tag < kTagCount ? heaps_[tag] : nullptr; }
  // All pages go to the pool (empty ones back to their segments). From any
  // thread while detached; the thread state stays usable.
  void abandon();

  Runtime& runtime() const noexcept { return *runtime_; }
  std::uintptr_t owner_token() const noexcept { return reinterpret_cast<std::uintptr_t>(this); }

 private:
  friend class Runtime;
  friend internal::RemoteFreeBuffer* internal::take_remote_free_buffer_for_current(internal::RuntimeCore*) noexcept;
  Heap& make_heap(Tag tag);

  Runtime* runtime_;
  Heap* heaps_[kTagCount] = {};
  // Room for all sixteen heaps, reserved by the constructor (untouched until
  // a heap is made there), so heap(tag) never needs memory: when it runs out,
  // allocate() returns nullptr instead of heap() throwing.
  void* heap_storage_;
  std::atomic<bool> attached_{false};
  bool in_runtime_list_ = false;  // false once after_fork_child dropped it
  internal::ThreadNode node_;  // in the runtime's list once fully built
};

}  // namespace tagheap
