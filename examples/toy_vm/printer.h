// printer.h: values to text, for display/write and error messages.
//
// Printing never allocates on the VM's heaps (it builds a std::string), so
// it may hold unrooted Values. Deep nesting is cut at a depth, long or
// cyclic lists at a length: printing a cycle ends, with "...".
#pragma once

#include <cstddef>
#include <string>

#include "examples/toy_vm/value.h"

namespace tvm {

// write: strings quoted and escaped (as the REPL shows results);
// display: strings as their characters.
void print_value(std::string& out, Value v, bool write);
std::string to_display(Value v);
std::string to_write(Value v);
// For error messages: like write, cut to about `max` characters.
std::string describe(Value v, std::size_t max = 60);
std::string format_number(double d);

}  // namespace tvm
