// printer.cc: values to text (see printer.h).
#include "examples/toy_vm/printer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tvm {

namespace {
constexpr int kMaxDepth = 200;
constexpr std::size_t kMaxItems = 100000;
// The whole text of one value: depth and items alone still allow a vector
// holding itself twice to print 2^200 times. Every print call adds text, so
// this bounds the work too (the printer cannot poll: it holds no roots).
constexpr std::size_t kMaxChars = std::size_t{4} << 20;

bool full(std::string& out) {
  if (out.size() < kMaxChars) return false;
  out += "...";
  return true;
}

void print(std::string& out, Value v, bool write, int depth);

void print_string(std::string& out, std::string_view s, bool write) {
  if (!write) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\0': out += "\\0"; break;  // the reader refuses a raw NUL
      default: out += c;
    }
  }
  out += '"';
}

void print_list(std::string& out, Value v, bool write, int depth) {
  // (quote x) as 'x
  if (is_symbol(car(v)) && car(v).as<Symbol>()->view() == "quote" && is_pair(cdr(v)) && cdr(cdr(v)).is_nil()) {
    out += '\'';
    print(out, car(cdr(v)), write, depth + 1);
    return;
  }
  out += '(';
  std::size_t n = 0;
  for (;;) {
    print(out, car(v), write, depth + 1);
    if (full(out)) break;
    v = cdr(v);
    if (v.is_nil()) break;
    if (!is_pair(v)) {
      out += " . ";
      print(out, v, write, depth + 1);
      break;
    }
    if (++n >= kMaxItems) {
      out += " ...";
      break;
    }
    out += ' ';
  }
  out += ')';
}

void print(std::string& out, Value v, bool write, int depth) {
  if (out.size() >= kMaxChars) return;  // the caller's loop ends it with "..."
  if (depth > kMaxDepth) {
    out += "...";
    return;
  }
  if (v.is_fixnum()) {
    out += std::to_string(v.as_fixnum());
    return;
  }
  if (!v.is_ptr()) {
    if (v.is_nil()) out += "()";
    else if (v == Value::t()) out += "#t";
    else if (v == Value::f()) out += "#f";
    else if (v == Value::eof()) out += "#<eof>";
    else if (v == Value::unbound()) out += "#<unbound>";
    else out += "#<unspecified>";
    return;
  }
  switch (v.header()->type) {
    case Type::kPair: print_list(out, v, write, depth); return;
    case Type::kVector: {
      auto* vec = v.as<Vector>();
      out += "#(";
      for (std::uint64_t i = 0; i < vec->length; ++i) {
        if (i) out += ' ';
        if (i >= kMaxItems) {
          out += "...";
          break;
        }
        print(out, vec->items[i], write, depth + 1);
        if (full(out)) break;
      }
      out += ')';
      return;
    }
    case Type::kString: print_string(out, v.as<String>()->view(), write); return;
    case Type::kSymbol: out += v.as<Symbol>()->view(); return;
    case Type::kFloat: out += format_number(v.as<Float>()->value); return;
    case Type::kInt: out += std::to_string(v.as<Int>()->value); return;
    case Type::kClosure: {
      Value name = v.as<Closure>()->name;
      out += "#<procedure";
      if (is_symbol(name)) {
        out += ' ';
        out += name.as<Symbol>()->view();
      }
      out += '>';
      return;
    }
    case Type::kPrimitive:
      out += "#<primitive ";
      out += v.as<Primitive>()->name;
      out += '>';
      return;
    case Type::kEnv: out += "#<environment>"; return;
    case Type::kThread: out += "#<thread>"; return;
    case Type::kWeakBox: out += "#<weak-box>"; return;
    case Type::kWeakTable: out += "#<weak-table>"; return;
  }
  out += "#<object>";
}
}  // namespace

std::string format_number(double d) {
  if (std::isnan(d)) return "+nan.0";
  if (std::isinf(d)) return d > 0 ? "+inf.0" : "-inf.0";
  char buf[64];
  // Shortest of %.15g / %.17g that reads back the same double.
  std::snprintf(buf, sizeof buf, "%.15g", d);
  if (std::strtod(buf, nullptr) != d) std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s = buf;
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";
  return s;
}

void print_value(std::string& out, Value v, bool write) { print(out, v, write, 0); }

std::string to_display(Value v) {
  std::string s;
  print(s, v, false, 0);
  return s;
}

std::string to_write(Value v) {
  std::string s;
  print(s, v, true, 0);
  return s;
}

std::string describe(Value v, std::size_t max) {
  std::string s = to_write(v);
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

}  // namespace tvm
