// primitives_sys.cc: output, errors, the collector, threads, the command
// line; and install_primitives.
//
// Output goes to the VM's out stream whole, one primitive call at a time
// (Vm::write), so lines written by different threads do not interleave
// mid-call; a write that waits on a full pipe does not hold a collection up.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>

#include "examples/toy_vm/error.h"
#include "examples/toy_vm/primitives.h"
#include "examples/toy_vm/printer.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {

Value display(Mutator& m, Value* a, std::size_t) {
  m.vm().write(m, Vm::Stream::kOut, to_display(a[0]));
  return Value::unspecified();
}
Value write(Mutator& m, Value* a, std::size_t) {
  m.vm().write(m, Vm::Stream::kOut, to_write(a[0]));
  return Value::unspecified();
}
Value newline(Mutator& m, Value*, std::size_t) {
  m.vm().write(m, Vm::Stream::kOut, "\n");
  return Value::unspecified();
}

// (error "message" irritant ...)
Value error(Mutator&, Value* a, std::size_t n) {
  std::string msg = a[0].is(Type::kString) ? std::string(a[0].as<String>()->view()) : to_write(a[0]);
  for (std::size_t i = 1; i < n; ++i) msg += " " + to_write(a[i]);
  throw VmError(msg);
}

// A full collection, then (on the main thread) the finalizers it queued.
Value gc(Mutator& m, Value*, std::size_t) {
  m.vm().collect(m, true);
  m.vm().run_finalizers(m);
  return Value::unspecified();
}

void print_tag(std::ostream& out, const char* what, unsigned tag, const tagheap::TagStats& t) {
  out << "  tag " << tag << " (" << what << "): " << t.pages << " pages (" << t.abandoned_pages << " abandoned), "
      << t.blocks << " blocks, " << t.bytes_in_use << " bytes in use, " << t.bytes_committed << " bytes committed\n";
}

Value heap_stats(Mutator& m, Value*, std::size_t) {
  const tagheap::RuntimeStats s = m.vm().heap_stats(m);
  const std::size_t collections = m.vm().gc_log().size();
  std::ostringstream out;
  out << "heap-stats:\n";
  print_tag(out, "objects", kObjectTag, s.tags[kObjectTag]);
  print_tag(out, "gc", kGcTag, s.tags[kGcTag]);
  print_tag(out, m.vm().opts().system_malloc ? "raw, unused: --malloc=system" : "raw", kRawTag, s.tags[kRawTag]);
  out << "  pages abandoned " << s.total.abandoned_total << ", reclaimed " << s.total.reclaimed_total << "; "
      << s.thread_states << " thread states; " << collections << " collections\n";
  m.vm().write(m, Vm::Stream::kOut, out.str());
  return Value::unspecified();
}

// (heap-map "file.svg"): writes a map of the heap; #t, or an error.
Value heap_map(Mutator& m, Value* a, std::size_t) {
  if (!a[0].is(Type::kString)) type_error("heap-map", "a file name string", a[0]);
  const std::string path(a[0].as<String>()->view());
  if (!m.vm().write_heap_map(m, path)) throw VmError("heap-map: cannot write " + path + ": " + std::strerror(errno));
  return Value::boolean(true);
}

Value spawn(Mutator& m, Value* a, std::size_t) {
  if (!is_procedure(a[0])) type_error("spawn", "a procedure", a[0]);
  return m.vm().spawn(m, a[0]);
}
Value join(Mutator& m, Value* a, std::size_t) {
  if (!a[0].is(Type::kThread)) type_error("join", "a thread", a[0]);
  return m.vm().join(m, a[0]);
}
Value sleep_ms(Mutator& m, Value* a, std::size_t) {
  const std::int64_t ms = int_arg("sleep", a[0]);
  m.blocking([&] { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); });
  return Value::unspecified();
}

Value command_line_args(Mutator& m, Value*, std::size_t) {
  const std::vector<std::string>& args = m.vm().opts().args;
  Scope s(m);
  Value& out = m.push(Value::nil());
  for (std::size_t i = args.size(); i > 0; --i) {
    Value& str = m.push(make_string(m, args[i - 1]));
    out = cons(m, str, out);
  }
  return out;
}

Value current_ms(Mutator& m, Value*, std::size_t) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return make_integer(m, std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

Value gc_count(Mutator& m, Value*, std::size_t) {
  return make_integer(m, static_cast<std::int64_t>(m.vm().gc_log().size()));
}

constexpr PrimDef kDefs[] = {
    {"display", display, 1, 2},
    {"write", write, 1, 2},
    {"newline", newline, 0, 1},
    {"error", error, 1, -1},
    {"gc", gc, 0, 0},
    {"gc-count", gc_count, 0, 0},
    {"heap-stats", heap_stats, 0, 0},
    {"heap-map", heap_map, 1, 1},
    {"spawn", spawn, 1, 1},
    {"join", join, 1, 1},
    {"sleep", sleep_ms, 1, 1},
    {"command-line-args", command_line_args, 0, 0},
    {"current-milliseconds", current_ms, 0, 0},
};

}  // namespace

std::span<const PrimDef> sys_primitives() { return kDefs; }

void install(Mutator& m, std::span<const PrimDef> defs) {
  Scope s(m);
  for (const PrimDef& d : defs) {
    Value& sym = m.push(intern(m, d.name));
    Value& prim = m.push(make_primitive(m, d.name, d.fn, d.min_args, d.max_args));
    m.vm().define_global(m, sym, prim);
  }
}

void install_primitives(Mutator& m) {
  install(m, num_primitives());
  install(m, data_primitives());
  install(m, sys_primitives());
  install(m, weak_primitives());
}

}  // namespace tvm
