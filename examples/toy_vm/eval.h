// eval.h: the evaluator.
//
// Design
//   A direct evaluator over the forms the reader built (no compile step).
//   eval() keeps the form and environment it is working on in two stack
//   slots, so they are roots whenever it allocates or polls the safepoint
//   (once per step). Tail positions (if/cond/case branches, the last form of
//   a body, begin, and/or, let bodies, and closure calls) loop instead of
//   recursing, so a loop written as tail recursion runs in constant C stack.
//   Everything else recurses through eval() under a DepthGuard: deep
//   non-tail recursion ends in a VmError, never a crash.
//
//   Environments: a chain of Env frames ending in () (the globals, kept in
//   the symbols). Calls evaluate the operator and arguments onto the stack;
//   a closure call builds one Env frame from them.
//
//   Errors: a VmError leaving eval() without a location gets the location of
//   the innermost form being evaluated that has one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/value.h"

namespace tvm {

// `form` and `env` need not be rooted by the caller (eval roots them before
// it allocates); the result is unrooted.
Value eval(Mutator& m, Value form, Value env);
// Calls fn with args[0..n), which must be rooted (stack slots).
Value apply(Mutator& m, Value fn, Value* args, std::size_t n);

// Reads and evaluates every form of src in the global environment. On an
// error prints "name:line:col: error: ..." to the VM's err stream and
// returns false (the forms before it have run). print_results: the REPL
// writes each form's value.
bool run_source(Mutator& m, std::string_view src, const std::string& name, bool print_results,
                std::uint32_t first_line = 1);
// run_source on a file's contents (read into a raw-domain buffer).
bool run_file(Mutator& m, const std::string& path, const std::string& display_name);

}  // namespace tvm
