// vm.cc: the Vm's life cycle and its global bindings (see vm.h).
#include "examples/toy_vm/vm.h"

#include <cstdlib>
#include <iostream>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/primitives.h"
#include "gc/visit.h"

namespace tvm {

Vm::Vm(VmOptions opts)
    : opts_(std::move(opts)),
      out_(opts_.out != nullptr ? opts_.out : &std::cout),
      err_(opts_.err != nullptr ? opts_.err : &std::cerr),
      rt_(tagheap::RuntimeOptions{.gc_tags = {kGcTag}, .debug_fill = opts_.debug_fill}) {
  start_gc();
}

Vm::~Vm() {
  // Spawned threads still running finish on their own (no Mutator of ours
  // is left to stop them); wait for them before the runtime goes.
  for (auto& h : handles_) {
    std::lock_guard lock(h->join_mu);
    if (!h->joined) pthread_join(h->thread, nullptr);
    h->joined = true;
  }
  // Finalisation: the Runtime gives back every tagheap block with its
  // segments, but vector storage from the system malloc (--malloc=system)
  // must be freed here. No mutator is left, so the walk is safe.
  if (opts_.system_malloc) {
    tagheap::visit_gc_blocks(rt_, [](const tagheap::BlockRef& b) {
      if (static_cast<Header*>(b.block)->type == Type::kVector) std::free(static_cast<Vector*>(b.block)->items);
    });
  }
}

void Vm::init(Mutator& m) {
  Syms& s = sym;
  s.quote = intern(m, "quote");
  s.quasiquote = intern(m, "quasiquote");
  s.define = intern(m, "define");
  s.lambda = intern(m, "lambda");
  s.let = intern(m, "let");
  s.let_star = intern(m, "let*");
  s.letrec = intern(m, "letrec");
  s.if_ = intern(m, "if");
  s.cond = intern(m, "cond");
  s.else_ = intern(m, "else");
  s.begin = intern(m, "begin");
  s.set = intern(m, "set!");
  s.and_ = intern(m, "and");
  s.or_ = intern(m, "or");
  s.when = intern(m, "when");
  s.unless = intern(m, "unless");
  s.arrow = intern(m, "=>");
  install_primitives(m);
}

void Vm::write(Mutator& m, Stream to, std::string_view text) {
  m.blocking([&] {
    std::lock_guard lock(out_mu_);
    if (to == Stream::kOut) {
      *out_ << text;
    } else {
      out_->flush();
      *err_ << text << std::flush;
    }
  });
}

// A Symbol is a root, but an old one is not traced again by a minor
// collection: its global's store is followed by the barrier.
void Vm::define_global(Mutator& m, Value sym, Value v) {
  std::lock_guard lock(globals_mu_);
  sym.as<Symbol>()->global.store(v.bits(), std::memory_order_release);
  write_barrier(m, sym);
}

void Vm::set_global(Mutator& m, Value sym, Value v) {
  std::lock_guard lock(globals_mu_);
  auto& slot = sym.as<Symbol>()->global;
  if (slot.load(std::memory_order_relaxed) == Value::unbound().bits())
    throw VmError("set!: unbound variable: " + std::string(sym.as<Symbol>()->view()));
  slot.store(v.bits(), std::memory_order_release);
  write_barrier(m, sym);
}

}  // namespace tvm
