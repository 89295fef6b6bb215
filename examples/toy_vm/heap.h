// heap.h: one VM thread's allocation context and roots (a Mutator), and the
// object constructors built on it.
//
// Design
//   A Mutator is what a PyThreadState is to CPython: one per OS thread that
//   runs Lisp code. It owns a tagheap::ThreadState attached through the VM's
//   gc::World, and a value stack: a fixed array of Values that is this
//   thread's precise root set. C++ code roots a Value by pushing it
//   (`Value& x = m.push(v)`); a Scope pops everything pushed since it opened.
//   The array never moves, so `Value&` into it and `Value*` argument vectors
//   stay valid while more is pushed.
//
//   Rooting rule: any call that may allocate may collect (this thread or
//   another, at the safepoint inside every allocation), so across it every
//   live Value must sit in a stack slot or in an object reachable from one.
//   Constructors below root their own Value arguments; their result is
//   unrooted until the caller pushes or stores it.
//
//   Allocation domains:
//     gc_alloc     tag 1, counted against --gc-budget; may collect first
//     object_alloc tag 0: reference-free data owned by one GC object
//     raw_alloc    tag 2 or malloc (--malloc=): raw buffers
//
//   Thread ownership: a Mutator is used only by the OS thread that made it.
//   Its stack is read by the collector while that thread is parked at a
//   safepoint, blocking, or is the collector itself.
//
//   Waiting: every way this thread leaves the running state goes through
//   the Mutator, never through the World directly: poll() (a safepoint),
//   blocking(f) (anything that may wait: sleep, join, a lock that a waiting
//   thread may hold, reading input, writing output), and WorldStop (this
//   thread stops the world, and may park for another stopper first). Each
//   marks the Mutator safe_ for as long as it may be counted out of the
//   World, at every nesting level, so the collector's guard (collector.cc)
//   agrees with the World. Its roots stay registered and are scanned.
//   Nothing inside blocking(f) may allocate, poll or touch a Value that is
//   not rooted: a collection may run meanwhile.
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "alloc/tagheap.h"
#include "examples/toy_vm/value.h"
#include "examples/toy_vm/vm.h"
#include "gc/world.h"

namespace tvm {

class Vm;
struct ThreadHandle;

inline constexpr tagheap::Tag kObjectTag = 0;
inline constexpr tagheap::Tag kGcTag = 1;
inline constexpr tagheap::Tag kRawTag = 2;

class Mutator {
 public:
  static constexpr std::size_t kStackSlots = std::size_t{1} << 18;

  // Makes a ThreadState, attaches it through vm.world and registers the
  // stack as roots. On the OS thread that will use it.
  explicit Mutator(Vm& vm);
  // Unregisters, detaches and abandons the thread state's pages, holding the
  // VM's GC lock so that no collection walks a half-abandoned heap.
  ~Mutator();
  Mutator(const Mutator&) = delete;
  Mutator& operator=(const Mutator&) = delete;

  Vm& vm() const { return vm_; }

  // --- roots ---
  Value& push(Value v) {
    if (sp_ == kStackSlots) [[unlikely]] stack_overflow();
    stack_[sp_] = v;
    return stack_[sp_++];
  }
  std::size_t sp() const { return sp_; }
  void reset(std::size_t sp) { sp_ = sp; }
  Value* slot(std::size_t i) { return &stack_[i]; }
  const Value* stack_begin() const { return stack_.get(); }

  // --- safepoints, waiting and recursion ---
  void poll();
  // Runs f counted out of the World (see "Waiting" above).
  template <class F>
  decltype(auto) blocking(F&& f) {
    SafeWhile safe(*this);
    return world_.blocking(std::forward<F>(f));
  }
  // The world stopped by this thread for the scope's life.
  class WorldStop {
   public:
    explicit WorldStop(Mutator& m) : world_(m.world_) {
      SafeWhile safe(m);  // while it parks for another stopper, if any
      world_.stop();
    }
    ~WorldStop() { world_.resume(); }
    WorldStop(const WorldStop&) = delete;
    WorldStop& operator=(const WorldStop&) = delete;

   private:
    tagheap::gc::World& world_;
  };
  // At a safepoint, blocking or waiting for a stop: what the collector's
  // guard checks of every other mutator.
  bool safe() const { return safe_.load(); }
  // The spawned thread this Mutator runs (nullptr on the main thread).
  ThreadHandle* thread_handle = nullptr;
  // Running a finalizer (Vm::run_finalizers is not re-entered).
  bool in_finalizer = false;
  // Throws a VmError when the C stack or the nesting depth runs out.
  void check_depth() {
    // The frame address, not a local's: ASan's detect_stack_use_after_return
    // moves locals to a fake stack on the heap.
    const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    if (here < stack_limit_ || depth_ >= max_depth_) [[unlikely]] too_deep();
  }
  int depth_ = 0;

  // --- write barrier (barrier.h) ---
  tagheap::gc::MarkSweep<Collector>& collector() const { return *collector_; }
  BarrierSite omitted_barrier() const { return omitted_barrier_; }

  // --- allocation ---
  void* gc_alloc(std::size_t bytes, Type type, Loc loc = {});
  char* object_alloc(std::size_t bytes);
  void* raw_alloc(std::size_t bytes);
  // Bytes allocated since this thread last reported to the VM.
  std::size_t unreported_ = 0;

 private:
  // Marks the Mutator safe for a scope; restores the previous mark, so
  // nested waits stay safe until the outermost ends.
  class SafeWhile {
   public:
    explicit SafeWhile(Mutator& m) : m_(m), was_(m.safe_.exchange(true)) {}
    ~SafeWhile() { m_.safe_.store(was_); }
    SafeWhile(const SafeWhile&) = delete;
    SafeWhile& operator=(const SafeWhile&) = delete;

   private:
    Mutator& m_;
    bool was_;
  };

  [[noreturn]] void stack_overflow();
  [[noreturn]] void too_deep();
  void account(std::size_t bytes);

  Vm& vm_;
  tagheap::gc::World& world_;
  tagheap::gc::MarkSweep<Collector>* collector_;
  BarrierSite omitted_barrier_;
  // At a safepoint, blocking or waiting for a stop (a cheap guard on the
  // World protocol: the collector checks it of every other mutator).
  std::atomic<bool> safe_{false};
  std::unique_ptr<tagheap::ThreadState> ts_;
  tagheap::Heap* gc_heap_;
  tagheap::Heap* object_heap_;
  tagheap::Heap* raw_heap_;
  std::unique_ptr<Value[]> stack_;
  std::size_t sp_ = 0;
  std::uintptr_t stack_limit_ = 0;
  int max_depth_;
};

// Pops what was pushed since it opened.
class Scope {
 public:
  explicit Scope(Mutator& m) : m_(m), saved_(m.sp()) {}
  ~Scope() { m_.reset(saved_); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Mutator& m_;
  std::size_t saved_;
};

// Counts one level of C++ recursion (eval, equal?, printing, reading).
class DepthGuard {
 public:
  explicit DepthGuard(Mutator& m) : m_(m) {
    m.check_depth();
    ++m.depth_;
  }
  ~DepthGuard() { --m_.depth_; }

 private:
  Mutator& m_;
};

// --- constructors (each roots its Value arguments; results are unrooted) ---
Value cons(Mutator& m, Value a, Value d, Loc loc = {});
Value make_integer(Mutator& m, std::int64_t i);
Value make_float(Mutator& m, double d);
Value make_string(Mutator& m, std::string_view s);
Value make_vector(Mutator& m, std::size_t n, Value fill);
Value make_closure(Mutator& m, Value params, Value body, Value env, Value name);
Value make_env(Mutator& m, std::size_t count, Value parent);
Value make_primitive(Mutator& m, const char* name, PrimFn fn, int min_args, int max_args);
Value intern(Mutator& m, std::string_view name);
// A proper list of vals[0..n).
Value list_from(Mutator& m, const Value* vals, std::size_t n);

}  // namespace tvm
