// threads.cc: the thread registry and the signal-based stop (threads.h).
#include "examples/libgc/threads.h"

#include <linux/membarrier.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <climits>  // PTHREAD_DESTRUCTOR_ITERATIONS
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "examples/libgc/heap.h"
#include "examples/libgc/policy.h"

namespace tagheap::libgc {

thread_local constinit ThreadRecord* t_self __attribute__((tls_model("initial-exec"))) = nullptr;
namespace detail {
// Symmetric until init_threads() has registered for membarrier.
std::atomic<int> g_lookup_state{kSymmetric};
}  // namespace detail

namespace {

pthread_mutex_t g_registry_mutex;  // recursive, set up by init_threads()
ThreadRecord* g_threads = nullptr;
pthread_key_t g_exit_key;
sem_t g_acks;                                // one post per stopped thread
std::atomic<unsigned> g_resume_epoch{0};     // moves once per resume_world()
std::size_t g_stopped = 0;
int g_lookup_depth = 0;  // nested begin_lookup() calls; registry lock held

// The lookup's side of the asymmetric handshake (threads.h).
bool membarrier_call(int cmd) noexcept { return syscall(SYS_membarrier, cmd, 0, 0) == 0; }
bool g_membarrier_usable = false;  // registered, and not refused by the user
// Makes the handshake asymmetric if this process can use membarrier and
// the user did not ask otherwise; symmetric if not. No lookup is on (the
// registry lock is held, or the process has a single thread).
void choose_handshake() noexcept {
  g_membarrier_usable = std::getenv("TAGHEAP_LIBGC_NO_MEMBARRIER") == nullptr &&
                        membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
  detail::g_lookup_state.store(g_membarrier_usable ? 0 : detail::kSymmetric, std::memory_order_seq_cst);
}

// Which side pays follows how often lookups come (threads.h): a membarrier
// costs about 1.5 us here, a locked store about 5 ns per allocation, and an
// allocation is 32 bytes or so; so one lookup per 8 KiB allocated is where
// they break even. Guile looked up once per ~430 bytes while
// GC_is_heap_ptr (on every set-car!) was a lookup; w3m and GCBench never. Decided every kLookupWindow
// lookups made while other threads exist. Registry lock held.
constexpr std::size_t kLookupWindow = 256;
constexpr std::size_t kBreakEvenBytesPerLookup = 8 << 10;
std::size_t g_window_lookups = 0;
std::size_t g_window_start_bytes = 0;
void follow_lookup_rate() noexcept {
  if (!g_membarrier_usable || ++g_window_lookups < kLookupWindow) return;
  const std::size_t now = total_allocated();
  const bool frequent = now - g_window_start_bytes < kLookupWindow * kBreakEvenBytesPerLookup;
  if (frequent)
    detail::g_lookup_state.fetch_or(detail::kSymmetric, std::memory_order_seq_cst);
  else
    detail::g_lookup_state.fetch_and(~detail::kSymmetric, std::memory_order_seq_cst);
  g_window_lookups = 0;
  g_window_start_bytes = now;
}

// Waits (in sigsuspend, so only kResumeSignal gets through) until the epoch
// moves past `epoch`. The caller has kResumeSignal blocked, so a resume sent
// between the check and sigsuspend stays pending instead of being lost.
void wait_for_resume(unsigned epoch) noexcept {
  sigset_t wait_mask;
  sigfillset(&wait_mask);
  sigdelset(&wait_mask, kResumeSignal);
  while (g_resume_epoch.load(std::memory_order_acquire) == epoch) sigsuspend(&wait_mask);
}

void on_suspend(int, siginfo_t*, void* context) {
  const int saved_errno = errno;
  ThreadRecord* t = t_self;
  if (t == nullptr) {  // not (or no longer) registered: nothing to stop
    errno = saved_errno;
    return;
  }
  if (t->in_allocator.load(std::memory_order_relaxed) != 0) {  // stops itself in leave_allocator()
    t->suspend_pending = 1;
    errno = saved_errno;
    return;
  }
  // The interrupted registers, from the signal frame. The stack is scanned
  // from here when the handler runs on it (that covers the whole signal
  // frame, FP state included); from the interrupted sp, red zone included,
  // when it runs on an alternate stack.
  const auto* uc = static_cast<const ucontext_t*>(context);
  static_assert(NGREG <= ThreadRecord::kSavedRegs);
  for (int i = 0; i < NGREG; ++i) t->saved_regs[i] = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[i]);
  t->saved_reg_count = NGREG;
  // The frame address, not a local's: under ASan's fake stacks a local may
  // live in the heap.
  char* here = static_cast<char*>(__builtin_frame_address(0));
  char* interrupted_sp = reinterpret_cast<char*>(uc->uc_mcontext.gregs[REG_RSP]) - 128;
  const bool on_thread_stack = here < interrupted_sp && here > interrupted_sp - (1 << 20);
  t->stop_sp = on_thread_stack ? here : interrupted_sp;
  const unsigned epoch = g_resume_epoch.load(std::memory_order_acquire);
  sem_post(&g_acks);
  wait_for_resume(epoch);
  errno = saved_errno;
}

void on_resume(int) {}

// A suspend signal arrived while the thread was inside tagheap: it parks
// here on the way out, with its callee-saved registers spilled into this
// frame and its stack scanned from below it.
[[gnu::noinline]] void park(ThreadRecord& t, sigset_t* old_mask) noexcept {
  t.stop_sp = static_cast<char*>(__builtin_frame_address(0));
  t.saved_reg_count = 0;
  const unsigned epoch = g_resume_epoch.load(std::memory_order_acquire);
  sem_post(&g_acks);
  wait_for_resume(epoch);
  pthread_sigmask(SIG_SETMASK, old_mask, nullptr);
}

// A pthread key destructor, so it runs while the thread exits. Other keys'
// destructors may still run Boehm-client code after it (Guile's frees the
// thread's VM stack, then calls GC_unregister_my_thread): unregistering in
// the first round would let that code run on, unstopped, while a collection
// reads what it frees. So the key is re-armed each round and the thread
// leaves only in the last one glibc runs, if it is still registered then
// (an implicit registration, or a thread that never unregistered).
void on_thread_exit(void*) {
  ThreadRecord* t = t_self;
  if (t == nullptr) return;
  if (++t->exit_rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
    pthread_setspecific(g_exit_key, t);
    return;
  }
  unregister_current_thread();
}

void init_registry_mutex() noexcept {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g_registry_mutex, &attr);
  pthread_mutexattr_destroy(&attr);
}

// The child is made with no registered thread inside tagheap (a lookup's
// handshake keeps them out: a thread halfway through its heap's queues
// would leave them torn for the child's abandon) and with the runtime's
// locks held (its populator thread takes them). The world is not stopped:
// a thread suspended inside malloc would hold the arena lock glibc's fork
// takes after these handlers.
void before_fork() {
  lock_registry();
  begin_lookup();
  runtime().before_fork();
}
void after_fork_parent() {
  runtime().after_fork_parent();
  end_lookup();
  unlock_registry();
}
// Only the forking thread lives on in the child: forget the others (their
// pages go to the abandoned pool) and start the acknowledgements afresh.
// The registry lock is made anew, not unlocked: a recursive mutex records
// its owner's thread id, and the forking thread has another one in the
// child, so pthread_mutex_unlock would refuse (EPERM) and leave it locked
// for good (every collection, lookup and thread registration in the child
// hung).
void after_fork_child() {
  sem_init(&g_acks, 0, 0);
  g_lookup_depth = 0;  // before_fork's lookup; choose_handshake lowers its flag
  choose_handshake();  // the child is a new process: register it anew
  ThreadRecord* self = t_self;
  if (self != nullptr) {
    runtime().after_fork_child(self->state);
    self->id = pthread_self();
    self->next = nullptr;
  } else {
    runtime().after_fork_child();  // forked by a thread it does not know
  }
  g_threads = self;  // the others' records are leaked: their thread states are
                     // marked attached to threads that no longer exist
  init_registry_mutex();
}

}  // namespace

ThreadRecord* thread_list() noexcept { return g_threads; }

void lock_registry() noexcept { pthread_mutex_lock(&g_registry_mutex); }
void unlock_registry() noexcept { pthread_mutex_unlock(&g_registry_mutex); }

// The process the library started in: only its first thread is the main
// thread (in a fork child, where the forking thread's id is the new pid, the
// forking thread keeps the record and the stack it had).
static pid_t g_started_pid = 0;

void init_threads() {
  g_started_pid = getpid();
  init_registry_mutex();
  sem_init(&g_acks, 0, 0);
  pthread_key_create(&g_exit_key, on_thread_exit);

  struct sigaction sa {};
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sa.sa_sigaction = on_suspend;
  sigfillset(&sa.sa_mask);  // nothing interrupts the handler; resume waits pending
  sigdelset(&sa.sa_mask, SIGSEGV);
  sigdelset(&sa.sa_mask, SIGBUS);
  if (sigaction(kSuspendSignal, &sa, nullptr) != 0) std::abort();
  struct sigaction ra {};
  ra.sa_flags = SA_RESTART;
  ra.sa_handler = on_resume;
  sigemptyset(&ra.sa_mask);
  if (sigaction(kResumeSignal, &ra, nullptr) != 0) std::abort();
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  choose_handshake();
}

char* stack_base_of_current_thread() noexcept {
  pthread_attr_t attr;
  void* addr = nullptr;
  std::size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  if (addr == nullptr) {  // no answer: the current frame, rounded up a page
    return reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) | 4095) + 1);
  }
  return static_cast<char*>(addr) + size;
}

}  // namespace tagheap::libgc

// bdwgc's variable: the main thread's stack bottom (its cold end, the highest
// address). Set when the main thread registers unless the client set it
// first; read at every collection, so a client may move it.
extern "C" {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
char* GC_stackbottom = nullptr;
#pragma GCC diagnostic pop
}

namespace tagheap::libgc {

const char* stack_end_of(const ThreadRecord& t) noexcept {
  if (t.is_main) {
    const char* bottom = __atomic_load_n(&GC_stackbottom, __ATOMIC_RELAXED);
    if (bottom != nullptr) return bottom;
  }
  return t.stack_base;
}

bool register_current_thread(char* stack_base, bool implicit) {
  if (t_self != nullptr) return false;
  auto* t = new ThreadRecord(runtime());  // glibc's heap: never scanned as a root
  t->id = pthread_self();
  t->stack_base = stack_base != nullptr ? stack_base : stack_base_of_current_thread();
  t->implicit = implicit;
  t->is_main = syscall(SYS_gettid) == g_started_pid;
  if (t->is_main && __atomic_load_n(&GC_stackbottom, __ATOMIC_RELAXED) == nullptr)
    __atomic_store_n(&GC_stackbottom, t->stack_base, __ATOMIC_RELAXED);
  RegistryLock lock;
  t->state.attach();
  t->next = g_threads;
  g_threads = t;
  t_self = t;
  pthread_setspecific(g_exit_key, t);
  return true;
}

bool unregister_current_thread() {
  ThreadRecord* t = t_self;
  if (t == nullptr) return false;
  flush_allocation_count(*t);
  {
    RegistryLock lock;
    for (ThreadRecord** p = &g_threads; *p != nullptr; p = &(*p)->next)
      if (*p == t) {
        *p = t->next;
        break;
      }
    t_self = nullptr;
    delete t;  // detaches and abandons its pages, lock held: no walk meanwhile
  }
  pthread_setspecific(g_exit_key, nullptr);
  return true;
}

ThreadRecord& register_implicitly() {
  init();
  register_current_thread(nullptr, true);
  return *t_self;
}

// A lookup is on, or the handshake is symmetric: enter with seq_cst store
// and load; while a lookup is on, step out of tagheap until it ends. A
// suspend request that came while we were in (suspend_pending) is honoured
// here, out of tagheap: the collector may be waiting for it.
void enter_allocator_slow(ThreadRecord& t) noexcept {
  using detail::g_lookup_state;
  for (;;) {
    t.in_allocator.store(1, std::memory_order_seq_cst);
    if ((g_lookup_state.load(std::memory_order_seq_cst) & detail::kLookupPending) == 0) return;
    t.in_allocator.store(0, std::memory_order_seq_cst);
    while ((g_lookup_state.load(std::memory_order_acquire) & detail::kLookupPending) != 0) {
      if (t.suspend_pending) suspend_self(t);
      sched_yield();
    }
  }
}

// Registry lock held (so no collection stops anyone meanwhile, and the
// thread list stays put). One lookup at a time: the lock serialises them;
// a nested one (finalization.cc looks up under the lock) only counts.
void begin_lookup() noexcept {
  using detail::g_lookup_state;
  if (g_lookup_depth++ != 0) return;
  ThreadRecord* self = t_self;
  bool others = false;
  for (ThreadRecord* t = g_threads; t != nullptr; t = t->next) others |= t != self;
  if (!others) {  // no owner to keep out
    g_lookup_state.fetch_or(detail::kLookupPending, std::memory_order_seq_cst);
    return;
  }
  // Only a lookup changes kSymmetric (registry lock held), so `before` is
  // what the owners have seen up to now.
  const int before = g_lookup_state.load(std::memory_order_relaxed);
  follow_lookup_rate();
  const int now = g_lookup_state.fetch_or(detail::kLookupPending, std::memory_order_seq_cst);
  // An owner that entered on the fast path (kSymmetric clear, before or
  // after a switch) may hold its in_allocator store in its store buffer:
  // the barrier makes it visible, or makes the owner see our flag.
  if ((before & now & detail::kSymmetric) == 0 && !membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
    // Not expected once registered. Go symmetric for good; stopping and
    // resuming the others is this once the barrier (each passes through
    // the kernel, and sees the flags when it next enters).
    g_membarrier_usable = false;
    g_lookup_state.fetch_or(detail::kSymmetric, std::memory_order_seq_cst);
    stop_world();
    resume_world();
  }
  for (ThreadRecord* t = g_threads; t != nullptr; t = t->next)
    if (t != self)
      while (t->in_allocator.load(std::memory_order_seq_cst) != 0) sched_yield();
}
void end_lookup() noexcept {
  if (--g_lookup_depth == 0) detail::g_lookup_state.fetch_and(~detail::kLookupPending, std::memory_order_release);
}

void* suspend_then_return(ThreadRecord& t, void* p) noexcept {
  suspend_self(t);
  return p;
}

void suspend_self(ThreadRecord& t) noexcept {
  t.suspend_pending = 0;
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, kResumeSignal);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  __builtin_unwind_init();  // callee-saved registers into this frame
  park(t, &old_mask);
}

std::size_t stop_world() {
  ThreadRecord* self = t_self;
  std::size_t sent = 0;
  for (ThreadRecord* t = g_threads; t != nullptr; t = t->next) {
    if (t == self) continue;
    if (pthread_kill(t->id, kSuspendSignal) == 0) ++sent;
  }
  for (std::size_t i = 0; i < sent; ++i)
    while (sem_wait(&g_acks) != 0 && errno == EINTR) {
    }
  g_stopped = sent;
  return sent;
}

void resume_world() {
  g_resume_epoch.fetch_add(1, std::memory_order_release);
  ThreadRecord* self = t_self;
  if (g_stopped == 0) return;
  for (ThreadRecord* t = g_threads; t != nullptr; t = t->next)
    if (t != self) pthread_kill(t->id, kResumeSignal);
  g_stopped = 0;
}

}  // namespace tagheap::libgc
