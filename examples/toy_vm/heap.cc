// heap.cc: Mutators (allocation contexts and root stacks) and constructors.
//
// The recursion guard reads the calling thread's real stack bounds
// (pthread_getattr_np) and keeps a 256 KiB margin, so deep non-tail
// recursion ends in a VmError on any thread, whatever its stack size.
#include "examples/toy_vm/heap.h"

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {
constexpr std::size_t kStackMargin = 256 * 1024;
// Report allocation to the VM in chunks, not per object (one atomic add).
constexpr std::size_t kReportChunk = 32 * 1024;

std::uintptr_t stack_limit_of_this_thread() {
  pthread_attr_t attr;
  void* addr = nullptr;
  std::size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return 0;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (size <= 2 * kStackMargin) return 0;
  return reinterpret_cast<std::uintptr_t>(addr) + kStackMargin;
}
}  // namespace

Mutator::Mutator(Vm& vm)
    : vm_(vm),
      world_(vm.world_),
      collector_(&vm.mark_sweep()),
      omitted_barrier_(vm.opts().omit_barrier),
      ts_(std::make_unique<tagheap::ThreadState>(vm.rt_)),
      stack_(new Value[kStackSlots]),
      stack_limit_(stack_limit_of_this_thread()),
      max_depth_(vm.opts().max_depth) {
  world_.attach(*ts_);
  gc_heap_ = &ts_->heap(kGcTag);
  object_heap_ = &ts_->heap(kObjectTag);
  raw_heap_ = &ts_->heap(kRawTag);
  // Running, so no collection is under way: the list is ours to change.
  std::lock_guard lock(vm.gc_mu_);
  vm.mutators_.push_back(this);
}

Mutator::~Mutator() {
  // Held across the teardown: a collector that stops the world after our
  // detach waits here, so it never walks pages we are abandoning.
  std::lock_guard lock(vm_.gc_mu_);
  std::erase(vm_.mutators_, this);
  vm_.allocated_.fetch_add(unreported_, std::memory_order_relaxed);
  world_.detach(*ts_);
  ts_.reset();
}

void Mutator::poll() {
  if (!world_.stop_requested()) [[likely]] return;
  SafeWhile safe(*this);
  world_.safepoint();
}

void Mutator::stack_overflow() { throw VmError("recursion too deep: the value stack is full (too many live temporaries)"); }

void Mutator::too_deep() {
  throw VmError("recursion too deep (depth " + std::to_string(depth_) + "; limit " + std::to_string(max_depth_) +
                " or the C stack)");
}

void Mutator::account(std::size_t bytes) {
  unreported_ += bytes;
  const std::size_t budget = vm_.opts().gc_budget;
  if (unreported_ >= kReportChunk || (budget != 0 && unreported_ >= budget / 8)) {
    const std::size_t n = unreported_;
    unreported_ = 0;
    vm_.note_allocation(*this, n);
  }
}

void* Mutator::gc_alloc(std::size_t bytes, Type type, Loc loc) {
  poll();
  account(bytes);
  void* p = gc_heap_->allocate(bytes);
  if (p == nullptr) throw VmError("out of memory (" + std::to_string(bytes) + " bytes)");
  auto* h = static_cast<Header*>(p);
  h->type = type;
  h->flags = 0;
  h->col = static_cast<std::uint16_t>(loc.col > 0xFFFF ? 0xFFFF : loc.col);
  h->line = loc.line;
  return p;
}

char* Mutator::object_alloc(std::size_t bytes) {
  unreported_ += bytes;  // counted; checked at the next gc_alloc
  void* p = object_heap_->allocate(bytes);
  if (p == nullptr) throw VmError("out of memory (" + std::to_string(bytes) + " bytes)");
  return static_cast<char*>(p);
}

void* Mutator::raw_alloc(std::size_t bytes) {
  unreported_ += bytes;
  void* p = vm_.opts().system_malloc ? std::malloc(bytes == 0 ? 1 : bytes) : raw_heap_->allocate(bytes);
  if (p == nullptr) throw VmError("out of memory (" + std::to_string(bytes) + " bytes)");
  return p;
}

// --- constructors ---

Value cons(Mutator& m, Value a, Value d, Loc loc) {
  Scope s(m);
  Value& ra = m.push(a);
  Value& rd = m.push(d);
  auto* p = static_cast<Pair*>(m.gc_alloc(sizeof(Pair), Type::kPair, loc));
  p->car = ra;
  p->cdr = rd;
  write_barrier(m, p);
  return Value::ptr(p);
}

Value make_integer(Mutator& m, std::int64_t i) {
  if (Value::fits_fixnum(i)) [[likely]] return Value::fixnum(i);
  auto* p = static_cast<Int*>(m.gc_alloc(sizeof(Int), Type::kInt));
  p->value = i;
  return Value::ptr(p);
}

Value make_float(Mutator& m, double d) {
  auto* p = static_cast<Float*>(m.gc_alloc(sizeof(Float), Type::kFloat));
  p->value = d;
  return Value::ptr(p);
}

Value make_string(Mutator& m, std::string_view s) {
  // The data first: a collection during the wrapper's allocation finds no
  // half-built String. If the wrapper's allocation throws, the data leaks
  // (out of memory only).
  char* data = m.object_alloc(s.size() + 1);
  std::memcpy(data, s.data(), s.size());
  data[s.size()] = '\0';
  auto* p = static_cast<String*>(m.gc_alloc(sizeof(String), Type::kString));
  p->length = s.size();
  p->data = data;
  return Value::ptr(p);
}

Value make_vector(Mutator& m, std::size_t n, Value fill) {
  if (n > (std::size_t{1} << 32)) throw VmError("make-vector: length too large: " + std::to_string(n));
  Scope s(m);
  Value& rf = m.push(fill);
  auto* items = static_cast<Value*>(m.raw_alloc(n * sizeof(Value)));
  for (std::size_t i = 0; i < n; ++i) items[i] = rf;
  auto* p = static_cast<Vector*>(m.gc_alloc(sizeof(Vector), Type::kVector));
  p->length = n;
  p->items = items;
  write_barrier(m, p);
  return Value::ptr(p);
}

Value make_closure(Mutator& m, Value params, Value body, Value env, Value name) {
  std::uint32_t required = 0;
  Value p = params;
  for (; is_pair(p); p = cdr(p)) {
    if (!is_symbol(car(p))) throw VmError("lambda: parameter is not a symbol");
    ++required;
  }
  if (!p.is_nil() && !is_symbol(p)) throw VmError("lambda: bad parameter list");
  Scope s(m);
  Value& rp = m.push(params);
  Value& rb = m.push(body);
  Value& re = m.push(env);
  Value& rn = m.push(name);
  auto* c = static_cast<Closure*>(m.gc_alloc(sizeof(Closure), Type::kClosure));
  c->required = required;
  c->has_rest = p.is_nil() ? 0 : 1;
  c->params = rp;
  c->body = rb;
  c->env = re;
  c->name = rn;
  write_barrier(m, c);
  return Value::ptr(c);
}

Value make_env(Mutator& m, std::size_t count, Value parent) {
  Scope s(m);
  Value& rp = m.push(parent);
  auto* e = static_cast<Env*>(m.gc_alloc(sizeof(Env) + 2 * count * sizeof(Value), Type::kEnv));
  e->count = count;
  e->parent = rp;
  e->extra = Value::nil();
  for (std::size_t i = 0; i < 2 * count; ++i) e->slots[i] = Value::unbound();
  write_barrier(m, e);
  return Value::ptr(e);
}

Value make_primitive(Mutator& m, const char* name, PrimFn fn, int min_args, int max_args) {
  auto* p = static_cast<Primitive*>(m.gc_alloc(sizeof(Primitive), Type::kPrimitive));
  p->fn = fn;
  p->name = name;
  p->min_args = min_args;
  p->max_args = max_args;
  return Value::ptr(p);
}

Value intern(Mutator& m, std::string_view name) {
  Vm& vm = m.vm();
  const std::string key(name);
  {
    std::lock_guard lock(vm.symbols_mu_);
    auto it = vm.symbols_.find(key);
    if (it != vm.symbols_.end()) return Value::ptr(it->second);
  }
  // Allocate without the lock (allocation may stop the world); a thread that
  // interned the same name meanwhile wins, and ours becomes garbage.
  char* data = m.object_alloc(name.size() + 1);
  std::memcpy(data, name.data(), name.size());
  data[name.size()] = '\0';
  auto* sym = static_cast<Symbol*>(m.gc_alloc(sizeof(Symbol), Type::kSymbol));
  sym->length = name.size();
  sym->name = data;
  new (&sym->global) std::atomic<std::uint64_t>(Value::unbound().bits());
  std::lock_guard lock(vm.symbols_mu_);
  auto [it, inserted] = vm.symbols_.emplace(key, sym);
  return Value::ptr(it->second);
}

Value list_from(Mutator& m, const Value* vals, std::size_t n) {
  Scope s(m);
  Value& list = m.push(Value::nil());
  for (std::size_t i = n; i > 0; --i) list = cons(m, vals[i - 1], list);
  return list;
}

const char* type_name(Value v) {
  if (v.is_fixnum()) return "integer";
  if (v.is_nil()) return "()";
  if (v == Value::t() || v == Value::f()) return "boolean";
  if (!v.is_ptr()) return "constant";
  switch (v.header()->type) {
    case Type::kPair: return "pair";
    case Type::kVector: return "vector";
    case Type::kString: return "string";
    case Type::kSymbol: return "symbol";
    case Type::kFloat: return "float";
    case Type::kInt: return "integer";
    case Type::kClosure: return "procedure";
    case Type::kEnv: return "environment";
    case Type::kPrimitive: return "primitive";
    case Type::kThread: return "thread";
    case Type::kWeakBox: return "weak box";
    case Type::kWeakTable: return "weak table";
  }
  return "object";
}

}  // namespace tvm
