// primitives.h: the built-in procedures, and helpers for writing them.
//
// A primitive is Value fn(Mutator&, Value* args, size_t n): args are rooted
// stack slots (the caller pushed them); whatever else a primitive keeps live
// across an allocation it pushes itself. The evaluator checks the arity
// declared in the PrimDef table before the call, and stamps the calling
// form's location on any VmError a primitive throws.
//
// Files: primitives_num.cc (numbers, comparison, equality, predicates),
// primitives_data.cc (lists, vectors, strings), primitives_sys.cc (output,
// errors, gc, heap-stats, threads, command-line-args), primitives_weak.cc
// (weak boxes, weak tables, finalizers).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/value.h"

namespace tvm {

struct PrimDef {
  const char* name;
  PrimFn fn;
  int min_args, max_args;  // max -1: any number
};

// Binds every primitive as a global.
void install_primitives(Mutator& m);
void install(Mutator& m, std::span<const PrimDef> defs);

std::span<const PrimDef> num_primitives();
std::span<const PrimDef> data_primitives();
std::span<const PrimDef> sys_primitives();
std::span<const PrimDef> weak_primitives();

// "who: expected <what>, got <value>"
[[noreturn]] void type_error(const char* who, const char* what, Value got);
std::int64_t int_arg(const char* who, Value v);
// A non-negative index below `limit`.
std::size_t index_arg(const char* who, Value v, std::size_t limit);
Pair* pair_arg(const char* who, Value v);
String* string_arg(const char* who, Value v);
Vector* vector_arg(const char* who, Value v);
bool equal_values(Mutator& m, Value a, Value b);
bool eqv_values(Value a, Value b);

}  // namespace tvm
