// Thread states: attaching, making heaps, abandoning.
#include "alloc/thread_state.h"

#include <new>
#include <stdexcept>

#include "alloc/heap_walk.h"
#include "alloc/internal/runtime_core.h"

namespace tagheap {

namespace {
// The walk holds threads_mu: waiting for it from inside would never end.
void check_not_walking(internal::RuntimeCore& core, const char* what) {
  if (internal::t_walking == &core)
    internal::fatal("tagheap: %s inside a walk or collection of its runtime (a visitor or a collector's "
                    "callback); do it after the walk returns",
                    what);
}
}  // namespace

ThreadState::ThreadState(Runtime& runtime)
    : runtime_(&runtime), heap_storage_(::operator new(kTagCount * sizeof(Heap), std::align_val_t{alignof(Heap)})) {
  node_.self = this;
  // Fully built: now a walk may see it (invariant 9).
  internal::RuntimeCore& core = runtime.core();
  check_not_walking(core, "ThreadState made");
  std::lock_guard lock(core.threads_mu);
  core.threads.push_back(node_);
  in_runtime_list_ = true;
}

ThreadState::~ThreadState() {
  if (attached()) {
    if (internal::t_current_owner != owner_token())
      internal::fatal("tagheap: ThreadState %p destroyed while attached to another OS thread; detach it first",
                      static_cast<void*>(this));
    detach();
  }
  internal::RuntimeCore& core = runtime_->core();
  check_not_walking(core, "ThreadState destroyed");
  abandon();
  {
    // Leaves the list only after its pages are in the pool (invariant 9).
    std::lock_guard lock(core.threads_mu);
    if (in_runtime_list_) core.threads.erase(core.threads.iterator_to(node_));
    in_runtime_list_ = false;
  }
  for (Heap*& heap : heaps_) {
    if (heap != nullptr) heap->~Heap();
    heap = nullptr;
  }
  ::operator delete(heap_storage_, std::align_val_t{alignof(Heap)});
}

void ThreadState::attach() {
  if (internal::t_current_owner == owner_token()) return;
  if (internal::t_current_owner != 1)
    throw std::logic_error("tagheap: another ThreadState is attached to this OS thread; detach it first");
  bool expected = false;
  if (!attached_.compare_exchange_strong(expected, true, std::memory_order_acquire))
    throw std::logic_error("tagheap: this ThreadState is attached to another OS thread");
  internal::t_current_owner = owner_token();
  // Its buffer is taken at its first free into another thread's page
  // (detach gave the last one back).
  node_.remote_frees_tried = node_.remote_frees != nullptr;
  internal::t_remote_frees = node_.remote_frees;
}

void ThreadState::detach() {
  if (internal::t_current_owner != owner_token()) return;
  // Its gathered frees land now: a detached thread state may never run
  // again, or run on another thread. The buffer goes back with them, so
  // buffers follow the thread states attached, not all of them.
  if (node_.remote_frees != nullptr) runtime_->core().give_back_remote_free_buffer(node_.remote_frees);
  node_.remote_frees = nullptr;
  internal::t_remote_frees = nullptr;
  internal::t_current_owner = 1;
  attached_.store(false, std::memory_order_release);
}

internal::RemoteFreeBuffer* internal::take_remote_free_buffer_for_current(RuntimeCore* core) noexcept {
  ThreadState* ts = ThreadState::current();
  if (ts == nullptr || ts->node_.remote_frees_tried || &ts->runtime_->core() != core) return nullptr;
  // Once per attachment: short of memory for it, its frees land one by one.
  ts->node_.remote_frees_tried = true;
  ts->node_.remote_frees = core->take_remote_free_buffer();
  t_remote_frees = ts->node_.remote_frees;
  return t_remote_frees;
}

ThreadState* ThreadState::current() noexcept {
  return internal::t_current_owner == 1 ? nullptr : reinterpret_cast<ThreadState*>(internal::t_current_owner);
}

Heap& ThreadState::make_heap(Tag tag) {
  internal::RuntimeCore& core = runtime_->core();
  check_not_walking(core, "a heap made (first use of ThreadState::heap(tag))");
  auto* heap = new (static_cast<Heap*>(heap_storage_) + tag) Heap(*this, core, tag, runtime_->options().debug_fill);
  std::lock_guard lock(core.threads_mu);  // a walk sees no half-built heap
  heaps_[tag] = heap;
  return *heap;
}

void ThreadState::abandon() {
  if (attached() && internal::t_current_owner != owner_token())
    internal::fatal("tagheap: ThreadState %p abandoned while attached to another OS thread",
                    static_cast<void*>(this));
  // Its own frees into other pages first (while detached, or on its
  // thread: nobody else writes the buffer).
  if (node_.remote_frees != nullptr) node_.remote_frees->flush();
  for (Heap* heap : heaps_) {
    if (heap == nullptr || heap->page_count() == 0) continue;
    runtime_->core().check_no_walk("abandoning a thread state");
    heap->abandon_all();
  }
}

}  // namespace tagheap
