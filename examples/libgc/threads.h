// threads.h: the threads the collector knows, and stopping them.
//
// Every thread that allocates has a ThreadRecord: its tagheap ThreadState
// (attached to it), its stack's extent, and what it saved when it was
// stopped. A thread is registered explicitly (GC_register_my_thread, the
// main thread by GC_init) or on its first allocation; an implicitly
// registered thread is unregistered by a pthread key destructor at exit.
//
// Stopping the world (Boehm's way: the threads never poll): the collector
// takes the registry lock, sends kSuspendSignal to every other registered
// thread and waits for one acknowledgement each. The handler copies the
// interrupted registers into the record, notes the stack pointer, posts the
// acknowledgement and waits in sigsuspend until the resume epoch moves.
//
// Allocator calls are not async-signal-safe: a thread stopped inside one
// would leave its heap half-updated for the collector's walk. So a thread
// marks itself `in_allocator` around every call into tagheap; a suspend
// signal that lands there only sets `suspend_pending`, and the thread stops
// itself on the way out (leave_allocator). The collector counts on an
// acknowledgement from each, so when it proceeds no thread is inside tagheap.
//
// Lookups from mutators (GC_base, GC_is_heap_ptr, link and finalizer
// registration) read pages that other threads own: find_block reads a page's
// free bitmap, which its owner writes as it allocates (alloc/'s find_block is
// exact only while the world is stopped). A lookup therefore runs with the
// owners out of tagheap (lookup_with_owners_out): under the registry lock it
// raises `g_lookup_pending`, waits until no other thread is `in_allocator`,
// looks, and lowers the flag; a thread entering tagheap meanwhile steps back
// out and waits (a Dekker handshake: both sides store, then load, seq_cst).
// The owners' fast path pays one seq_cst store and one load.
//
// Invariants
//   registry lock held  <=>  no thread joins or leaves the registry, and no
//                            collection runs elsewhere (the collector holds it
//                            from before the stop until after the resume).
//   world stopped       =>   every registered thread other than the collector
//                            is suspended outside tagheap, its registers in
//                            `saved_regs` and its live stack in
//                            [stop_sp, stack_base).
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/tagheap.h"

namespace tagheap::libgc {

inline constexpr int kSuspendSignal = SIGPWR;   // as bdwgc on Linux
inline constexpr int kResumeSignal = SIGXCPU;

struct ThreadRecord {
  explicit ThreadRecord(Runtime& runtime) : state(runtime) {}
  ThreadState state;
  pthread_t id{};
  char* stack_base = nullptr;  // highest address of the stack (it grows down)
  bool implicit = false;       // registered by its first allocation
  int exit_rounds = 0;         // key destructor rounds seen while exiting (threads.cc)
  // Written by the thread itself; read by its signal handler and by lookups
  // (lock-free, so async-signal-safe).
  std::atomic<int> in_allocator{0};
  volatile sig_atomic_t suspend_pending = 0;  // written by the handler, read by the thread
  // Written while the thread stops, read by the collector after the ack.
  char* stop_sp = nullptr;
  static constexpr std::size_t kSavedRegs = 32;
  std::uintptr_t saved_regs[kSavedRegs] = {};
  std::size_t saved_reg_count = 0;
  // Allocation not yet added to the global count (see heap.cc).
  std::size_t unflushed_bytes = 0;
  // The heap of each kind's tag, made on first use (heap.h).
  static constexpr std::size_t kKinds = 16;
  Heap* heaps[kKinds] = {};
  ThreadRecord* next = nullptr;
};

// Once, from init(): the registry lock, the signal handlers, fork handlers.
void init_threads();

// initial-exec: read from the suspend handler, where a lazy TLS allocation
// would not be safe; the library is loaded at startup, never dlopen()ed late.
// External linkage on purpose: gold drops the offset of an initial-exec
// relocation made against a section symbol (what an internal-linkage
// variable gets), and the thread would read another variable.
extern thread_local ThreadRecord* t_self __attribute__((tls_model("initial-exec")));

// The calling thread's record, or nullptr when it is not registered.
inline ThreadRecord* current_thread() noexcept { return t_self; }

// The registry lock (recursive: GC_call_with_alloc_lock may allocate).
void lock_registry() noexcept;
void unlock_registry() noexcept;
struct RegistryLock {
  RegistryLock() { lock_registry(); }
  ~RegistryLock() { unlock_registry(); }
  RegistryLock(const RegistryLock&) = delete;
  RegistryLock& operator=(const RegistryLock&) = delete;
};

// Registers the calling thread with its stack base (nullptr: ask pthreads).
// Returns false if it was registered already.
bool register_current_thread(char* stack_base, bool implicit);
// Unregisters the calling thread; its pages go to the abandoned pool.
// Returns false if it was not registered.
bool unregister_current_thread();
// The calling thread's record, registering it implicitly if need be.
ThreadRecord& register_implicitly();
inline ThreadRecord& current_thread_or_register() {
  ThreadRecord* t = t_self;
  return t != nullptr ? *t : register_implicitly();
}

// The highest address of the calling thread's stack.
char* stack_base_of_current_thread() noexcept;

// Registry lock held: stops every other registered thread; resume_world()
// lets them go. Returns the number of threads stopped.
std::size_t stop_world();
void resume_world();

// Registry lock held, world stopped: calls f(ThreadRecord&) for every
// registered thread, the caller's included.
template <class F>
void for_each_thread(F&& f);

namespace detail {
extern std::atomic<int> g_lookup_pending;  // a lookup wants the owners out (see the file comment)
}  // namespace detail
void wait_for_lookup(ThreadRecord& t) noexcept;

// Around every call into tagheap (see the file comment).
inline void enter_allocator(ThreadRecord& t) noexcept {
  t.in_allocator.store(1, std::memory_order_seq_cst);
  if (detail::g_lookup_pending.load(std::memory_order_seq_cst) != 0) [[unlikely]] wait_for_lookup(t);
}
void suspend_self(ThreadRecord& t) noexcept;
inline void leave_allocator(ThreadRecord& t) noexcept {
  t.in_allocator.store(0, std::memory_order_release);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (t.suspend_pending) [[unlikely]] suspend_self(t);
}

// f() with no other registered thread inside tagheap, registry lock held:
// for find_block and friends from a mutator (see the file comment). Not
// from inside tagheap, nor with the world stopped (not needed there).
void begin_lookup() noexcept;
void end_lookup() noexcept;
template <class F>
auto lookup_with_owners_out(F&& f) {
  RegistryLock lock;
  begin_lookup();
  struct End {
    ~End() { end_lookup(); }
  } end;
  return f();
}
struct InAllocator {
  explicit InAllocator(ThreadRecord& t) : t_(t) { enter_allocator(t_); }
  ~InAllocator() { leave_allocator(t_); }
  InAllocator(const InAllocator&) = delete;
  InAllocator& operator=(const InAllocator&) = delete;

 private:
  ThreadRecord& t_;
};

ThreadRecord* thread_list() noexcept;  // registry lock held
template <class F>
void for_each_thread(F&& f) {
  for (ThreadRecord* t = thread_list(); t != nullptr; t = t->next) f(*t);
}

}  // namespace tagheap::libgc
