// read_input.cc: see read_input.h.
#include "examples/toy_vm/fuzz/read_input.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "examples/toy_vm/error.h"
#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/printer.h"
#include "examples/toy_vm/reader.h"
#include "examples/toy_vm/vm.h"

namespace tvm::fuzz {

namespace {

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "read_input: %s\ninput (%zu bytes): [%.*s]\n", what.c_str(), input.size(),
               static_cast<int>(input.size() < 500 ? input.size() : 500), input.data());
  std::abort();
}

// The number of lines of `s` (a line count the reader can reach).
std::uint32_t lines_of(std::string_view s) {
  std::uint32_t n = 1;
  for (char c : s) n += c == '\n';
  return n;
}

void check_error(const VmError& e, std::string_view input) {
  if (!e.loc.known()) fail(std::string("reader error without a location: ") + e.what(), input);
  if (e.loc.line > lines_of(input)) fail("reader error past the last line: " + std::string(e.what()), input);
  if (std::string_view(e.what()).size() > 200) fail("reader error message longer than 200 bytes", input);
}

}  // namespace

void read_input(const std::uint8_t* data, std::size_t size, ReadStats* stats, GcMode mode) {
  ReadStats local;
  ReadStats& st = stats != nullptr ? *stats : local;
  ++st.inputs;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::ostringstream out, err;
  VmOptions opts;
  opts.gc_budget = 16 * 1024;
  opts.verify = true;  // Runtime::verify after every collection (and each minor one checked)
  opts.generational = mode == GcMode::kGenerational;
  opts.incremental = mode == GcMode::kIncremental;
  opts.out = &out;
  opts.err = &err;
  Vm vm(opts);
  {
    Mutator m(vm);
    vm.init(m);
    Scope s(m);
    Value& form = m.push(Value::nil());
    Value& again = m.push(Value::nil());
    Reader reader(m, input);
    try {
      while (reader.next(&form)) {
        ++st.forms;
        const std::string printed = to_write(form);
        if (printed.find("...") != std::string::npos) continue;  // cut by the printer's limits
        // After a space: a symbol may start with U+FEFF, which the reader
        // skips as a byte order mark only at the very start of a source.
        const std::string source = " " + printed;
        Reader second(m, source);
        try {
          if (!second.next(&again)) fail("printed form reads as nothing: " + printed, input);
        } catch (const VmError& e) {
          fail("printed form does not read back: " + std::string(e.what()) + "\nprinted: " + printed, input);
        }
        const std::string reprinted = to_write(again);
        if (reprinted != printed) fail("round trip changed the form:\n  " + printed + "\n  " + reprinted, input);
        if (second.next(&again)) fail("printed form reads as more than one form: " + printed, input);
        ++st.round_trips;
      }
    } catch (const IncompleteInput& e) {
      ++st.incomplete;
      check_error(e, input);
    } catch (const VmError& e) {
      ++st.errors;
      check_error(e, input);
    }
    form = Value::nil();
    again = Value::nil();
    vm.collect(m, /*forced=*/true);
  }
}

}  // namespace tvm::fuzz
