// primitives_weak.cc: weak boxes, weak-keyed (ephemeron) tables and
// finalizers.
//
// Design
//   (make-weak-box v), (weak-box-value b): a WeakBox (value.h) whose
//   target the collector clears once its object is unreachable (#f then).
//   (make-weak-table), (table-set! t k v), (table-ref t k [default]),
//   (table-count t): an eq?-keyed hash table of ephemerons (value.h). Every
//   table is in the Vm's list, so the collector's process_weak can remove
//   the entries whose keys died (collector.cc). Table operations hold
//   weak_mu and neither allocate GC objects nor poll (growing the slots
//   takes raw memory only), so a collection never finds a table half
//   changed.
//   (register-finalizer! obj proc): MarkSweep::register_finalizer (ordered
//   finalization: gc/internal/finalizer_table.h). proc is a root until it
//   runs, so a proc that refers to obj keeps obj alive for ever (as a
//   Java Cleaner's action must not refer to its object); proc is handed obj
//   instead. When obj is unreachable the collection queues it; the
//   collecting thread moves it to the Vm's due list after the world
//   resumes (Vm::finalizer_due) and the main thread calls (proc obj) at its
//   next safe point: an evaluation step, or the end of (gc). Never inside a
//   collection, never twice per registration; pending ones are dropped at
//   exit.
#include <cstdlib>
#include <string>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/eval.h"
#include "examples/toy_vm/primitives.h"
#include "examples/toy_vm/printer.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {

WeakBox* weak_box_arg(const char* who, Value v) {
  if (!v.is(Type::kWeakBox)) type_error(who, "a weak box", v);
  return v.as<WeakBox>();
}

WeakTable* weak_table_arg(const char* who, Value v) {
  if (!v.is(Type::kWeakTable)) type_error(who, "a weak table", v);
  return v.as<WeakTable>();
}

Value make_weak_box(Mutator& m, Value* a, std::size_t) {
  auto* b = static_cast<WeakBox*>(m.gc_alloc(sizeof(WeakBox), Type::kWeakBox));
  const Value v = a[0];  // rooted by the caller
  b->target = v.is_ptr() ? static_cast<void*>(v.header()) : nullptr;
  b->immediate = v.is_ptr() ? Value::f() : v;
  write_barrier(m, b);  // a weak store is a store: an old box must see a young target die
  return Value::ptr(b);
}

Value weak_box_value(Mutator&, Value* a, std::size_t) {
  const WeakBox* b = weak_box_arg("weak-box-value", a[0]);
  return b->target != nullptr ? Value::ptr(b->target) : b->immediate;
}

// --- weak tables ---

// The slot of key in a table of capacity > 0: its entry, or the first free
// slot of its probe sequence (a removed one if any was passed).
Value* find_slot(const WeakTable* t, Value key) {
  const std::uint64_t mask = t->capacity - 1;
  std::uint64_t i = (key.bits() * 0x9E3779B97F4A7C15ull) >> 20 & mask;
  Value* removed = nullptr;
  for (;; i = (i + 1) & mask) {
    Value* slot = &t->entries[2 * i];
    if (*slot == key) return slot;
    if (*slot == WeakTable::kEmpty) return removed != nullptr ? removed : slot;
    if (*slot == WeakTable::kRemoved && removed == nullptr) removed = slot;
  }
}

void free_raw(Mutator& m, void* p) {
  if (m.vm().opts().system_malloc) std::free(p);
  else tagheap::free(p);
}

// Twice the slots (or 8), the live entries moved over, removed ones dropped.
// Raw memory only: no collection can run meanwhile.
void grow(Mutator& m, WeakTable* t) {
  const std::uint64_t capacity = t->capacity == 0 ? 8 : 2 * t->capacity;
  auto* fresh = static_cast<Value*>(m.raw_alloc(2 * capacity * sizeof(Value)));
  for (std::uint64_t i = 0; i < 2 * capacity; i += 2) {
    fresh[i] = WeakTable::kEmpty;
    fresh[i + 1] = Value::f();  // raw memory may hold stale words: --verify reads every slot
  }
  Value* old = t->entries;
  const std::uint64_t old_capacity = t->capacity;
  t->entries = fresh;
  t->capacity = capacity;
  t->used = t->count;
  for (std::uint64_t i = 0; i < old_capacity; ++i) {
    const Value key = old[2 * i];
    if (key == WeakTable::kEmpty || key == WeakTable::kRemoved) continue;
    Value* slot = find_slot(t, key);
    slot[0] = key;
    slot[1] = old[2 * i + 1];
  }
  free_raw(m, old);
}

Value make_weak_table(Mutator& m, Value*, std::size_t) {
  auto* t = static_cast<WeakTable*>(m.gc_alloc(sizeof(WeakTable), Type::kWeakTable));
  t->count = t->used = t->capacity = 0;
  t->entries = nullptr;
  m.vm().register_weak_table(t);
  return Value::ptr(t);
}

Value table_set(Mutator& m, Value* a, std::size_t) {
  WeakTable* t = weak_table_arg("table-set!", a[0]);
  std::lock_guard lock(m.vm().weak_mu());
  if (4 * (t->used + 1) > 3 * t->capacity) grow(m, t);
  Value* slot = find_slot(t, a[1]);
  if (*slot != a[1]) {
    if (*slot == WeakTable::kEmpty) ++t->used;
    ++t->count;
    slot[0] = a[1];
  }
  slot[1] = a[2];
  write_barrier(m, t);
  return Value::unspecified();
}

Value table_ref(Mutator& m, Value* a, std::size_t n) {
  const WeakTable* t = weak_table_arg("table-ref", a[0]);
  std::lock_guard lock(m.vm().weak_mu());
  if (t->capacity != 0) {
    const Value* slot = find_slot(t, a[1]);
    if (*slot == a[1]) return slot[1];
  }
  return n > 2 ? a[2] : Value::f();
}

Value table_count(Mutator& m, Value* a, std::size_t) {
  const WeakTable* t = weak_table_arg("table-count", a[0]);
  std::uint64_t count;
  {
    std::lock_guard lock(m.vm().weak_mu());
    count = t->count;
  }
  return make_integer(m, static_cast<std::int64_t>(count));
}

// --- finalizers ---

Value register_finalizer(Mutator& m, Value* a, std::size_t) {
  if (!a[0].is_ptr()) type_error("register-finalizer!", "a heap object", a[0]);
  if (!is_procedure(a[1])) type_error("register-finalizer!", "a procedure", a[1]);
  m.vm().register_finalizer(a[0], a[1]);
  return Value::unspecified();
}

bool p_weak_box(Value v) { return v.is(Type::kWeakBox); }
bool p_weak_table(Value v) { return v.is(Type::kWeakTable); }
template <bool (*P)(Value)>
Value predicate(Mutator&, Value* a, std::size_t) { return Value::boolean(P(a[0])); }

constexpr PrimDef kDefs[] = {
    {"make-weak-box", make_weak_box, 1, 1},
    {"weak-box-value", weak_box_value, 1, 1},
    {"weak-box?", predicate<p_weak_box>, 1, 1},
    {"make-weak-table", make_weak_table, 0, 0},
    {"table-set!", table_set, 3, 3},
    {"table-ref", table_ref, 2, 3},
    {"table-count", table_count, 1, 1},
    {"weak-table?", predicate<p_weak_table>, 1, 1},
    {"register-finalizer!", register_finalizer, 2, 2},
};

}  // namespace

std::span<const PrimDef> weak_primitives() { return kDefs; }

void Vm::register_weak_table(WeakTable* table) {
  std::lock_guard lock(weak_mu_);
  weak_tables_.push_back(table);
}

void Vm::register_finalizer(Value obj, Value proc) {
  std::lock_guard lock(finalizers_mu_);
  finalizer_procs_[obj.header()] = proc;
  mark_sweep().register_finalizer(obj.header(), &Vm::finalizer_due, this);
}

void Vm::finalizer_due(void* obj, void* vm_ptr) {
  Vm& vm = *static_cast<Vm*>(vm_ptr);
  std::lock_guard lock(vm.finalizers_mu_);
  auto it = vm.finalizer_procs_.find(obj);
  if (it == vm.finalizer_procs_.end()) return;
  vm.finalizers_due_.emplace_back(Value::ptr(obj), it->second);
  vm.finalizer_procs_.erase(it);
  vm.finalizers_pending_.store(true, std::memory_order_relaxed);
}

void Vm::run_finalizers(Mutator& m) {
  if (m.thread_handle != nullptr || m.in_finalizer) return;  // the main thread, not re-entered
  m.in_finalizer = true;
  struct Leave {
    Mutator& m;
    ~Leave() { m.in_finalizer = false; }
  } leave{m};
  for (;;) {
    Scope s(m);
    Value* call = nullptr;  // [obj, proc], rooted
    {
      std::lock_guard lock(finalizers_mu_);
      if (finalizers_due_.empty()) {
        finalizers_pending_.store(false, std::memory_order_relaxed);
        return;
      }
      const auto [obj, proc] = finalizers_due_.front();
      finalizers_due_.pop_front();
      call = &m.push(obj);
      m.push(proc);
    }
    try {
      apply(m, call[1], call, 1);
    } catch (VmError& e) {
      write(m, Stream::kErr, format_error(opts_.script_name, e) + " (in a finalizer)\n");
    }
  }
}

}  // namespace tvm
