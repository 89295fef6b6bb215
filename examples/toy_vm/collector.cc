// collector.cc: the VM's collector model and when it runs.
//
// Design
//   Collector is the Model that gc::MarkSweep<Model> calls:
//     roots(t)    every registered Mutator's value stack [0, sp), every
//                 interned symbol (so every global), the thunks and Thread
//                 objects of spawned threads not finished yet, registered
//                 finalizers' procs and the finalizers due to run
//     trace(o,t)  reads the Header's type and marks the object's Values;
//                 a weak box's target is a weak slot (Tracer::mark_weak), a
//                 weak table's entries ephemerons (Tracer::mark_ephemeron)
//     process_weak(l)  removes dead weak tables from the Vm's list and the
//                 entries of live ones whose keys (or values) died
//     finalize(o) a dying String hands its tag-0 bytes, a dying Vector its
//                 raw storage, to lists freed after the collection: the
//                 sweep is a walk, and a walk's visitor frees nothing but the
//                 block it was handed (DESIGN.md, walking rules)
//   Only tag 1 is walked; tag-0 and raw blocks are never read by the sweep.
//
//   Collection protocol (one collector at a time):
//     world.stop()        every other mutator parked, blocking or detached
//                         (Mutator::WorldStop: safe while it waits)
//     lock gc_mu          no mutator is being registered or torn down
//     skip if a collection ran since the trigger (unless forced)
//     MarkSweep::collect (collect_full when forced by (gc)), rt.verify()
//                         under --verify
//
//   --generational: gc::Options::generational, so collect() is minor
//   unless the collector's policy says a full one is due; every store of a
//   GC pointer into a GC object calls write_barrier (barrier.h). With
//   --verify, gc::Options::verify_minor checks after each minor collection
//   that nothing reachable was left unmarked (a missing barrier is fatal,
//   naming the object).
//   --incremental: gc::Options::incremental, so collect() is one pause of
//   a cycle (the collector's pacing says when one is due, even with a
//   fixed --gc-budget, which then only sets its minimum budget); the same
//   barriers; with --verify, gc::Options::verify_incremental checks after
//   each cycle. (gc) runs collect_full, which drops a cycle under way.
//     unlock, world.resume(), then free the dead objects' data
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <vector>

#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/vm.h"
#include "gc/chrome_trace.h"
#include "gc/heap_map.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"

namespace tvm {

class Collector {
 public:
  explicit Collector(Vm& vm) : vm_(vm) {}

  void roots(tagheap::gc::Tracer& t) {
    for (Mutator* m : vm_.mutators_)
      for (const Value* v = m->stack_begin(), *end = v + m->sp(); v != end; ++v) mark(t, *v);
    {
      std::lock_guard lock(vm_.symbols_mu_);
      for (auto& [name, sym] : vm_.symbols_) t.mark(sym);
    }
    {
      std::lock_guard lock(vm_.finalizers_mu_);
      for (auto& [obj, proc] : vm_.finalizer_procs_) mark(t, proc);
      for (auto& [obj, proc] : vm_.finalizers_due_) {
        mark(t, obj);
        mark(t, proc);
      }
    }
    std::lock_guard lock(vm_.handles_mu_);
    for (auto& h : vm_.handles_)
      if (!h->done.load(std::memory_order_acquire)) {
        mark(t, h->thunk);
        mark(t, h->object);
      }
  }

  void trace(void* obj, tagheap::gc::Tracer& t) {
    auto* h = static_cast<Header*>(obj);
    switch (h->type) {
      case Type::kPair: {
        auto* p = static_cast<Pair*>(obj);
        mark(t, p->car);
        mark(t, p->cdr);
        break;
      }
      case Type::kVector: {
        auto* v = static_cast<Vector*>(obj);
        for (std::uint64_t i = 0; i < v->length; ++i) mark(t, v->items[i]);
        break;
      }
      case Type::kSymbol:
        mark(t, Value::from_bits(static_cast<Symbol*>(obj)->global.load(std::memory_order_relaxed)));
        break;
      case Type::kClosure: {
        auto* c = static_cast<Closure*>(obj);
        mark(t, c->params);
        mark(t, c->body);
        mark(t, c->env);
        mark(t, c->name);
        break;
      }
      case Type::kEnv: {
        auto* e = static_cast<Env*>(obj);
        mark(t, e->parent);
        mark(t, e->extra);
        for (std::uint64_t i = 0; i < 2 * e->count; ++i) mark(t, e->slots[i]);
        break;
      }
      case Type::kThread: {
        ThreadHandle* th = static_cast<Thread*>(obj)->handle;
        mark(t, th->thunk);
        mark(t, th->result);
        break;
      }
      case Type::kWeakBox: {
        auto* b = static_cast<WeakBox*>(obj);
        t.mark_weak(&b->target);  // cleared after marking unless its object was marked
        break;
      }
      case Type::kWeakTable: {
        auto* w = static_cast<WeakTable*>(obj);
        for (std::uint64_t i = 0; i < w->capacity; ++i) {
          const Value key = w->entries[2 * i], value = w->entries[2 * i + 1];
          if (key == WeakTable::kEmpty || key == WeakTable::kRemoved) continue;
          if (!key.is_ptr()) mark(t, value);  // a key that is no object never dies
          else if (value.is_ptr()) t.mark_ephemeron(key.header(), value.header());
        }
        break;
      }
      case Type::kString:
      case Type::kFloat:
      case Type::kInt:
      case Type::kPrimitive:
        break;
    }
  }

  // After marking, world stopped: dead tables leave the list; a live table
  // loses the entries whose key died. The collector keeps an ephemeron's
  // value as long as its key, also a key kept only for its finalizer, so
  // the value check below never fires: it stays as a guard, since an entry
  // with a dead value would point into freed memory. No lock: every
  // mutator is stopped outside weak_mu.
  void process_weak(const tagheap::gc::Liveness& live) {
    std::erase_if(vm_.weak_tables_, [&](WeakTable* w) { return !live.is_live(w); });
    for (WeakTable* w : vm_.weak_tables_)
      for (std::uint64_t i = 0; i < w->capacity; ++i) {
        Value* entry = &w->entries[2 * i];
        if (!entry[0].is_ptr()) continue;  // empty, removed, or a key that never dies
        if (live.is_live(entry[0].header()) && (!entry[1].is_ptr() || live.is_live(entry[1].header()))) continue;
        entry[0] = WeakTable::kRemoved;
        entry[1] = Value::f();
        --w->count;
      }
  }

  void finalize(void* obj) noexcept {
    auto* h = static_cast<Header*>(obj);
    switch (h->type) {
      case Type::kString: dead_objects_.push_back(static_cast<String*>(obj)->data); break;
      case Type::kSymbol: dead_objects_.push_back(static_cast<Symbol*>(obj)->name); break;  // lost an intern race
      case Type::kVector: dead_raw_.push_back(static_cast<Vector*>(obj)->items); break;
      case Type::kWeakTable: dead_raw_.push_back(static_cast<WeakTable*>(obj)->entries); break;
      default: break;
    }
  }

  // --verify, world stopped, after a collection: every reference held by a
  // live object or a root leads to the start of a live GC block with a
  // valid type. Fatal (with the culprit) otherwise: a reachable object was
  // freed, or a field holds garbage.
  void check_heap() {
    auto check = [&](Value v, const void* holder, const char* what) {
      if (!v.is_ptr()) return;
      void* block = tagheap::find_block(v.header());
      const auto type = static_cast<unsigned>(v.header()->type);
      if (block != v.header() || tagheap::tag_of(block) != kGcTag || type < 1 ||
          type > static_cast<unsigned>(kLastType)) {
        std::fprintf(stderr, "tvm: --verify: %s %p holds %p, which is not a live GC object (block %p)\n", what,
                     holder, static_cast<void*>(v.header()), block);
        std::abort();
      }
    };
    for (Mutator* m : vm_.mutators_)
      for (const Value* v = m->stack_begin(), *end = v + m->sp(); v != end; ++v) check(*v, m, "the stack of mutator");
    tagheap::visit_gc_blocks(vm_.rt_, [&](const tagheap::BlockRef& b) {
      auto* h = static_cast<Header*>(b.block);
      auto each = [&](Value v) { check(v, b.block, type_name(Value::ptr(b.block))); };
      switch (h->type) {
        case Type::kPair: each(static_cast<Pair*>(b.block)->car); each(static_cast<Pair*>(b.block)->cdr); break;
        case Type::kVector: {
          auto* v = static_cast<Vector*>(b.block);
          for (std::uint64_t i = 0; i < v->length; ++i) each(v->items[i]);
          break;
        }
        case Type::kClosure: {
          auto* c = static_cast<Closure*>(b.block);
          each(c->params); each(c->body); each(c->env); each(c->name);
          break;
        }
        case Type::kEnv: {
          auto* e = static_cast<Env*>(b.block);
          each(e->parent); each(e->extra);
          for (std::uint64_t i = 0; i < 2 * e->count; ++i) each(e->slots[i]);
          break;
        }
        case Type::kSymbol:
          each(Value::from_bits(static_cast<Symbol*>(b.block)->global.load(std::memory_order_relaxed)));
          break;
        case Type::kThread:
          each(static_cast<Thread*>(b.block)->handle->thunk);
          each(static_cast<Thread*>(b.block)->handle->result);
          break;
        case Type::kWeakBox:
          if (void* target = static_cast<WeakBox*>(b.block)->target) each(Value::ptr(target));
          break;
        case Type::kWeakTable: {
          auto* w = static_cast<WeakTable*>(b.block);
          for (std::uint64_t i = 0; i < 2 * w->capacity; ++i) each(w->entries[i]);
          break;
        }
        default: break;
      }
    });
  }

  // Under gc_mu_, right after the collection: the data its dead objects
  // owned, handed to the collecting thread to free after the world resumes
  // (the model outlives the collection; the next one refills the lists).
  struct Dead {
    std::vector<void*> objects, raw;
  };
  Dead take_dead() {
    Dead d;
    d.objects.swap(dead_objects_);
    d.raw.swap(dead_raw_);
    return d;
  }
  // From any thread (free() works for any block).
  void free_dead(Dead& d) const {
    for (void* p : d.objects) tagheap::free(p);
    const bool system = vm_.opts().system_malloc;
    for (void* p : d.raw) system ? std::free(p) : tagheap::free(p);
  }

 private:
  static void mark(tagheap::gc::Tracer& t, Value v) {
    if (v.is_ptr()) t.mark(v.header());
  }

  Vm& vm_;
  std::vector<void*> dead_objects_;
  std::vector<void*> dead_raw_;
};

// The collector for the Vm's life: the model, the collector (its marker
// threads parked between collections) and the trace recorder.
namespace {
tagheap::gc::Options gc_options(const VmOptions& opts) {
  tagheap::gc::Options o;
  o.generational = opts.generational;
  o.verify_minor = opts.generational && opts.verify;
  o.incremental = opts.incremental;
  o.verify_incremental = opts.incremental && opts.verify;
  // A fixed budget (--gc-budget) also sizes the collector's own budgets:
  // with --generational, a full collection is due once old bytes grow by
  // max(budget, heap_growth * old bytes) since the last one.
  if (opts.gc_budget != 0) o.min_budget_bytes = opts.gc_budget;
  return o;
}
}  // namespace

struct Vm::Gc {
  explicit Gc(Vm& vm) : model(vm), ms(vm.rt_, model, gc_options(vm.opts_)) {
    if (!vm.opts_.gc_trace.empty()) ms.set_listener(&trace);
  }
  Collector model;
  tagheap::gc::MarkSweep<Collector> ms;
  tagheap::gc::ChromeTraceRecorder trace;
};

void Vm::GcDeleter::operator()(Gc* gc) const { delete gc; }

void Vm::start_gc() { gc_.reset(new Gc(*this)); }

tagheap::gc::MarkSweep<Collector>& Vm::mark_sweep() { return gc_->ms; }

std::size_t Vm::gc_budget_bytes() const {
  return opts_.gc_budget != 0 ? opts_.gc_budget : static_cast<std::size_t>(gc_->ms.budget_bytes());
}

bool Vm::write_gc_trace() const { return opts_.gc_trace.empty() || gc_->trace.write(opts_.gc_trace); }

void Vm::note_allocation(Mutator& m, std::size_t bytes) {
  const std::size_t total = allocated_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  const bool fixed = opts_.gc_budget != 0 && !opts_.incremental;
  if (fixed ? total >= opts_.gc_budget : gc_->ms.collection_due()) collect(m, false);
}

void Vm::collect(Mutator& m, bool forced) {
  using Clock = std::chrono::steady_clock;
  const std::uint64_t seen = collections_.load(std::memory_order_acquire);
  const auto t0 = Clock::now();
  Collector& model = gc_->model;
  Collector::Dead dead;
  tagheap::gc::CollectStats stats;
  {
    Mutator::WorldStop stop(m);
    std::lock_guard lock(gc_mu_);
    for (Mutator* o : mutators_)
      if (o != &m && !o->safe()) {
        std::fprintf(stderr, "tvm: BUG: mutator %p is running during a collection\n", static_cast<void*>(o));
        std::abort();
      }
    // Another thread collected while we waited for the stop.
    if (!forced && collections_.load(std::memory_order_relaxed) != seen) return;
    m.unreported_ = 0;
    stats = forced ? gc_->ms.collect_full() : gc_->ms.collect();
    dead = model.take_dead();
    if (opts_.verify) {
      rt_.verify();
      model.check_heap();
    }
    allocated_.store(0, std::memory_order_relaxed);
    collections_.fetch_add(1, std::memory_order_release);
  }
  const auto t1 = Clock::now();
  model.free_dead(dead);
  // Outside the pause: the finalizers this collection queued move to the
  // Vm's due list (a root), for the main thread to run at a safe point.
  gc_->ms.run_finalizers();
  std::lock_guard lock(log_mu_);
  gc_log_.push_back({static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()),
                     stats.mark_ns, stats.sweep_ns, stats.live_blocks, stats.freed_blocks, stats.minor,
                     stats.cycle_done});
}

tagheap::RuntimeStats Vm::heap_stats(Mutator& m) {
  Mutator::WorldStop stop(m);
  std::lock_guard lock(gc_mu_);
  return rt_.stats();
}

namespace {
tagheap::gc::HeapMapOptions map_options(const std::string& title) {
  tagheap::gc::HeapMapOptions o;
  o.title = title;
  o.tag_names[kObjectTag] = "objects (strings, symbols)";
  o.tag_names[kGcTag] = "GC objects (pairs, vectors, closures)";
  o.tag_names[kRawTag] = "raw buffers";
  return o;
}
}  // namespace

namespace {
// A file write may wait on the disk: inside m.blocking(), errno kept for
// the caller's message.
bool write_file_blocking(Mutator& m, const std::string& path, const std::string& text) {
  int error = 0;
  const bool ok = m.blocking([&] {
    const bool written = tagheap::gc::write_file(path, text);
    error = errno;
    return written;
  });
  errno = error;
  return ok;
}
}  // namespace

tagheap::gc::HeapSnapshot Vm::heap_snapshot(Mutator& m) {
  Mutator::WorldStop stop(m);
  std::lock_guard lock(gc_mu_);
  return tagheap::gc::take_heap_snapshot(rt_);
}

bool Vm::write_heap_map(Mutator& m, const std::string& path) {
  const auto options = map_options("tvm heap: " + opts_.script_name);
  const std::string svg = tagheap::gc::heap_map_svg(heap_snapshot(m), options);
  return write_file_blocking(m, path, svg);
}

bool Vm::write_stats_json(Mutator& m, const std::string& path) {
  const auto options = map_options("tvm heap: " + opts_.script_name);
  const std::string json = tagheap::gc::heap_stats_json(heap_snapshot(m), options);
  return write_file_blocking(m, path, json);
}

std::vector<GcRecord> Vm::gc_log() const {
  std::lock_guard lock(log_mu_);
  return gc_log_;
}

}  // namespace tvm
