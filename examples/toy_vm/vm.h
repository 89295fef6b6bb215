// vm.h: one toy VM instance: its runtime, world, globals and collector.
//
// Design
//   A Vm owns one tagheap::Runtime (gc_tags = {1}) and one gc::World. Every
//   OS thread running Lisp code has a Mutator (heap.h) attached through the
//   World; the Vm keeps the list of them so the collector can read their
//   value stacks.
//
//   Globals live in the Symbol objects themselves (Symbol::global): readers
//   load the word atomically, writers (define, set!) hold globals_mu. The
//   symbol table (interned forever) is a root, so globals are too.
//
//   Locks, and the rule that keeps them deadlock-free: no thread allocates,
//   polls a safepoint or waits on the World while holding symbols_mu,
//   globals_mu, handles_mu, weak_mu, finalizers_mu or out_mu. gc_mu is taken
//   only *after* the World
//   is stopped (collector, heap-stats) or by a running mutator that does not
//   wait on the World while holding it (registering, exiting).
//
//   Waiting: whatever may wait (sleep, join and its join_mu, out_mu around a
//   write that may block on a full pipe, the REPL's read) runs inside
//   Mutator::blocking (heap.h), so a collection never waits for it and the
//   collector's guard counts the thread as safe; its roots are still
//   scanned. join refuses to wait for itself, directly or through a chain
//   of joins (each ThreadHandle records whom it is joining, under
//   handles_mu).
//     gc_mu       the mutator list; a collection; a thread state's teardown
//     symbols_mu  the symbol table
//     globals_mu  writes of global bindings
//     handles_mu  the spawned threads' handles
//     weak_mu     weak tables' contents and the list of weak tables
//     finalizers_mu  registered finalizers and those due to run
//     out_mu      the output streams
//
//   Collection (collector.cc): one gc::MarkSweep for the Vm's life (its
//   marker threads parked between collections). Triggered when its policy
//   says a collection is due (gc::Options{}: the heap grows with the live
//   data), or when allocation since the last one passes opts.gc_budget if
//   one is set (--gc-budget), or by (gc). The triggering thread stops the
//   World, takes gc_mu, collects tag 1 (the sweep is lazy), optionally
//   verifies, resumes, then frees the tag-0 and raw data whose owners died.
//   --gc-trace=FILE records every collection as Chrome trace-event JSON.
//   After the world resumes, the collecting thread moves the finalizers the
//   collection queued (MarkSweep::run_finalizers) to finalizers_due; the
//   main thread runs them at its next safe point, never inside a collection.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "alloc/tagheap.h"
#include "examples/toy_vm/value.h"
#include "gc/heap_map.h"
#include "gc/world.h"

namespace tagheap::gc {
template <class Model>
class MarkSweep;
}  // namespace tagheap::gc

namespace tvm {

class Collector;
// The stores whose write barrier a test may omit (barrier.h).
enum class BarrierSite : std::uint8_t { kNone, kAny, kSetCdr };

struct VmOptions {
  std::size_t gc_budget = 0;   // 0: the collector's policy; else a fixed budget in bytes
  std::string gc_trace;        // a Chrome trace-event JSON file written at exit ("" for none)
  bool system_malloc = false;  // raw domain on malloc instead of tag 2
  bool verify = false;         // rt.verify() after each collection (and each minor one checked)
  bool generational = false;   // --generational: sticky mark bits, minor collections, write barriers
  bool incremental = false;    // --incremental: full collections as cycles of short pauses, write barriers
  // Tests only: this site's write barrier is left out (barrier.h), so a
  // test can show that --verify catches a missing barrier.
  BarrierSite omit_barrier = BarrierSite::kNone;
  bool debug_fill = false;
  int max_depth = 100000;      // nested evaluation limit (the C stack is checked too)
  std::ostream* out = nullptr; // default std::cout
  std::ostream* err = nullptr; // default std::cerr
  std::vector<std::string> args;  // (command-line-args)
  std::string script_name = "<thread>";  // names errors raised in spawned threads
};

struct GcRecord {
  std::uint64_t pause_ns, mark_ns, sweep_ns;
  std::size_t live_blocks, freed_blocks;
  bool minor;
  bool cycle_done;  // --incremental: this pause ended its cycle (always true otherwise)
};

// A spawned OS thread. Its thunk is a root until it finishes; its result is
// reachable through the Thread object.
struct ThreadHandle {
  pthread_t thread{};
  int id = 0;
  Value thunk, result;
  Value object;  // the Thread object: a root until done, so the result's store can log it
  std::atomic<bool> done{false};
  std::mutex join_mu;
  std::atomic<bool> joined{false};  // the OS thread was joined (set under join_mu)
  ThreadHandle* joining = nullptr;  // the thread it waits for in join (under handles_mu)
  bool failed = false;
  std::string error;
};

class Vm {
 public:
  explicit Vm(VmOptions opts = {});
  // Joins every spawned thread still running. No Mutator may remain.
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  const VmOptions& opts() const { return opts_; }
  tagheap::Runtime& runtime() { return rt_; }

  // --- output ---
  // text, whole, to the out stream (or to err, out flushed first), under
  // out_mu and inside m.blocking(): a write may wait on a full pipe.
  enum class Stream { kOut, kErr };
  void write(Mutator& m, Stream to, std::string_view text);

  // --- globals (m: the writing thread, for the write barrier) ---
  void define_global(Mutator& m, Value sym, Value v);
  // Throws VmError if unbound.
  void set_global(Mutator& m, Value sym, Value v);

  // --- collection (collector.cc) ---
  // Reports bytes allocated by m; collects when over budget.
  void note_allocation(Mutator& m, std::size_t bytes);
  // Stops the world and collects. m: the calling thread's mutator. A forced
  // collection ((gc)) is full; otherwise the collector decides (minor in
  // generational mode unless a full one is due).
  void collect(Mutator& m, bool forced);
  // The collector, for write barriers (barrier.h).
  tagheap::gc::MarkSweep<Collector>& mark_sweep();
  // Stops the world and returns rt.stats().
  tagheap::RuntimeStats heap_stats(Mutator& m);
  // The heap's map (SVG) or statistics (JSON) written to path, the world
  // stopped meanwhile; false with errno set when the file cannot be written.
  bool write_heap_map(Mutator& m, const std::string& path);
  bool write_stats_json(Mutator& m, const std::string& path);
  tagheap::gc::HeapSnapshot heap_snapshot(Mutator& m);
  std::vector<GcRecord> gc_log() const;
  // The collection budget now (fixed, or the policy's), for --stats.
  std::size_t gc_budget_bytes() const;
  // Writes --gc-trace's file; false with errno set on failure.
  bool write_gc_trace() const;

  // --- weak tables and finalizers (primitives_weak.cc) ---
  // Every weak table, so the collector can prune them (process_weak drops
  // dead ones from the list). Table contents and the list: under weak_mu.
  void register_weak_table(WeakTable* table);
  std::mutex& weak_mu() { return weak_mu_; }
  // (register-finalizer! obj proc): once obj is unreachable, proc is called
  // with it on the main thread at a safe point. proc is a root until then.
  void register_finalizer(Value obj, Value proc);
  // Whether finalizers wait to run; any thread, no lock.
  bool finalizers_pending() const { return finalizers_pending_.load(std::memory_order_relaxed); }
  // The main thread, at a safe point (eval's step, (gc)): runs the waiting
  // finalizers, one at a time; an error in one is reported and the others
  // still run. Not re-entered from inside a finalizer.
  void run_finalizers(Mutator& m);

  // --- threads (threads.cc) ---
  Value spawn(Mutator& m, Value thunk);
  Value join(Mutator& m, Value thread);
  void join_all(Mutator& m);

  // Well-known symbols, interned at start (set by install_primitives' caller).
  struct Syms {
    Value quote, quasiquote, define, lambda, let, let_star, letrec, if_, cond, else_, begin, set, and_, or_,
        when, unless, arrow;
  } sym;
  void init(Mutator& m);  // interns sym and installs the primitives

 private:
  friend class Mutator;
  friend class Collector;
  friend Value intern(Mutator& m, std::string_view name);
  void start_gc();  // collector.cc

  VmOptions opts_;
  std::ostream* out_;
  std::ostream* err_;
  tagheap::Runtime rt_;
  tagheap::gc::World world_;

  // The collector and its model (collector.cc), made with the Vm.
  struct Gc;
  struct GcDeleter {
    void operator()(Gc* gc) const;
  };
  std::unique_ptr<Gc, GcDeleter> gc_;

  std::mutex gc_mu_;
  std::vector<Mutator*> mutators_;      // under gc_mu_
  std::atomic<std::size_t> allocated_{0};
  std::atomic<std::uint64_t> collections_{0};
  mutable std::mutex log_mu_;
  std::vector<GcRecord> gc_log_;

  std::mutex symbols_mu_;
  std::unordered_map<std::string, Symbol*> symbols_;
  std::mutex globals_mu_;

  std::mutex weak_mu_;
  std::vector<WeakTable*> weak_tables_;  // under weak_mu_; pruned by the collector (world stopped)

  // Finalizers: registered obj -> proc (procs are roots); those due, as
  // (obj, proc), roots until run. Under finalizers_mu_.
  static void finalizer_due(void* obj, void* vm);  // MarkSweep::run_finalizers' callback
  std::mutex finalizers_mu_;
  std::unordered_map<void*, Value> finalizer_procs_;
  std::deque<std::pair<Value, Value>> finalizers_due_;
  std::atomic<bool> finalizers_pending_{false};

  std::mutex handles_mu_;
  std::vector<std::unique_ptr<ThreadHandle>> handles_;
  int next_thread_id_ = 1;

  std::mutex out_mu_;
};

}  // namespace tvm
