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
// Lookups from mutators (GC_base, link and finalizer registration; not
// GC_is_heap_ptr, which reads no page) read pages that other threads own:
// find_block reads a page's free bitmap, which its owner writes as it
// allocates (alloc/'s find_block is exact only while the world is stopped). A lookup therefore runs with the
// owners out of tagheap (lookup_with_owners_out): under the registry lock it
// raises kLookupPending in `g_lookup_state`, waits until no other thread is
// `in_allocator`, looks, and lowers the flag; a thread entering tagheap
// meanwhile steps back out and waits. It is a Dekker handshake (each side
// stores, then loads what the other stored), made asymmetric because the
// owners enter on every allocation and lookups are rare: an owner's store
// and load are plain (relaxed, with only a compiler barrier between), and
// the lookup, between its store and its loads, makes every running thread of
// the process execute a full memory barrier (membarrier(2),
// PRIVATE_EXPEDITED, registered at init and again in a forked child). After
// that barrier, either the lookup sees the owner's in_allocator = 1, or the
// owner's load (not yet made) sees the flag. Where membarrier is missing (an
// old kernel, a seccomp filter) or TAGHEAP_LIBGC_NO_MEMBARRIER is set,
// kSymmetric stays raised in `g_lookup_state`: every entry then takes the
// slow path, where both sides store and load seq_cst.
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
  bool is_main = false;        // the process's first thread: its stack ends at GC_stackbottom
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
extern thread_local constinit ThreadRecord* t_self __attribute__((tls_model("initial-exec")));

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
// Where a scan of t's stack ends: its stack base, or for the main thread
// bdwgc's GC_stackbottom, which a client may move (Crystal points it at the
// running fiber's stack).
const char* stack_end_of(const ThreadRecord& t) noexcept;

// Registry lock held: stops every other registered thread; resume_world()
// lets them go. Returns the number of threads stopped.
std::size_t stop_world();
void resume_world();

// Registry lock held, world stopped: calls f(ThreadRecord&) for every
// registered thread, the caller's included.
template <class F>
void for_each_thread(F&& f);

namespace detail {
// Bits of g_lookup_state (see the file comment).
inline constexpr int kLookupPending = 1;  // a lookup wants the owners out
inline constexpr int kSymmetric = 2;      // no membarrier: entries take the seq_cst path
extern std::atomic<int> g_lookup_state;
}  // namespace detail
// The slow path of enter_allocator: a lookup is on, or the handshake is
// symmetric.
void enter_allocator_slow(ThreadRecord& t) noexcept;

// Around every call into tagheap (see the file comment). The signal fence
// keeps the compiler from moving the load above the store; the lookup's
// membarrier orders them for the processor. The load acquires: when it
// reads the 0 that ended a lookup, the lookup's reads of our pages come
// before the writes we are about to make (a plain load on x86).
// Its two halves, apart for a fast path that takes the general path (which
// waits) when a lookup is on: the mark, then the check.
inline void enter_allocator_mark(ThreadRecord& t) noexcept {
  t.in_allocator.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline bool no_lookup_pending() noexcept {
  return detail::g_lookup_state.load(std::memory_order_acquire) == 0;
}
inline void enter_allocator(ThreadRecord& t) noexcept {
  enter_allocator_mark(t);
  if (!no_lookup_pending()) [[unlikely]] enter_allocator_slow(t);
}
void suspend_self(ThreadRecord& t) noexcept;
// The way out: the mark cleared; then the caller suspends if a collection
// asked meanwhile (t.suspend_pending).
inline void leave_allocator_mark(ThreadRecord& t) noexcept {
  t.in_allocator.store(0, std::memory_order_release);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline void leave_allocator(ThreadRecord& t) noexcept {
  leave_allocator_mark(t);
  if (t.suspend_pending) [[unlikely]] suspend_self(t);
}
// leave_allocator, returning p: a tail call when a suspension waits.
[[gnu::noinline]] void* suspend_then_return(ThreadRecord& t, void* p) noexcept;
inline void* leave_allocator_with(ThreadRecord& t, void* p) noexcept {
  leave_allocator_mark(t);
  if (t.suspend_pending) [[unlikely]] return suspend_then_return(t, p);
  return p;
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
