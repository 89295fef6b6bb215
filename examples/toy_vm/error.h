// error.h: the VM's one error type.
//
// Every error the language can raise (syntax, type, arity, unbound variable,
// recursion depth, out of memory) is a VmError thrown as a C++ exception. It
// is thrown without a location; the innermost evaluator frame whose form has
// one (a form the reader read) stamps it on the way out, so the message names
// the form that failed: `demo.lisp:3:5: error: car: expected a pair, got 42`.
// Handle scopes and depth counters unwind with RAII, so the VM stays usable
// after an error (the REPL goes on).
#pragma once

#include <stdexcept>
#include <string>

#include "examples/toy_vm/value.h"

namespace tvm {

class VmError : public std::runtime_error {
 public:
  explicit VmError(const std::string& msg, Loc loc = {}) : std::runtime_error(msg), loc(loc) {}
  Loc loc;
};

// "file:line:col: error: message" (or "file: error: message" without a line).
std::string format_error(const std::string& file, const VmError& e);

}  // namespace tvm
