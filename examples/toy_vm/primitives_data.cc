// primitives_data.cc: lists, vectors and strings, and the argument helpers.
//
// List walks that could meet a cycle (length, list->vector, append, memq,
// member, assq, assoc) use Floyd's check, so a cyclic list is an error
// rather than a hang; list-tail, bounded by its index rather than by the
// list, polls the safepoint (a cyclic list has no end to reach), and
// equal? detects cycles itself (primitives_num.cc). map and
// for-each call back into the evaluator through apply(); their partial
// results and cursors live in stack slots across those calls.
#include <cerrno>
#include <cstdlib>
#include <string>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/eval.h"
#include "examples/toy_vm/primitives.h"
#include "examples/toy_vm/printer.h"

namespace tvm {

void type_error(const char* who, const char* what, Value got) {
  throw VmError(std::string(who) + ": expected " + what + ", got " + describe(got));
}

std::int64_t int_arg(const char* who, Value v) {
  if (!is_integer(v)) type_error(who, "an integer", v);
  return integer_value(v);
}

std::size_t index_arg(const char* who, Value v, std::size_t limit) {
  const std::int64_t i = int_arg(who, v);
  if (i < 0 || static_cast<std::uint64_t>(i) >= limit)
    throw VmError(std::string(who) + ": index " + std::to_string(i) + " out of range (length " +
                  std::to_string(limit) + ")");
  return static_cast<std::size_t>(i);
}

Pair* pair_arg(const char* who, Value v) {
  if (!is_pair(v)) type_error(who, "a pair", v);
  return v.as<Pair>();
}

String* string_arg(const char* who, Value v) {
  if (!v.is(Type::kString)) type_error(who, "a string", v);
  return v.as<String>();
}

Vector* vector_arg(const char* who, Value v) {
  if (!v.is(Type::kVector)) type_error(who, "a vector", v);
  return v.as<Vector>();
}

namespace {

// Floyd's check for a walk down a list: step(v) after each cell v; throws
// "who: cyclic list" once the walk has gone round. `slow` trails the walk
// on the same list (a stack slot where the walk may collect).
class CycleGuard {
 public:
  CycleGuard(const char* who, Value& slow) : who_(who), slow_(slow) {}
  std::size_t steps() const { return n_; }
  void step(Value v) {
    if (++n_ % 2 != 0) return;
    slow_ = cdr(slow_);
    if (slow_ == cdr(v)) throw VmError(std::string(who_) + ": cyclic list");
  }

 private:
  const char* who_;
  Value& slow_;
  std::size_t n_ = 0;
};

// Length of a proper list; an error for an improper or cyclic one.
std::size_t proper_length(const char* who, Value list) {
  Value slow = list;
  CycleGuard guard(who, slow);
  for (Value v = list; !v.is_nil(); v = cdr(v)) {
    if (!is_pair(v)) type_error(who, "a proper list", list);
    guard.step(v);
  }
  return guard.steps();
}

Value cons_(Mutator& m, Value* a, std::size_t) { return cons(m, a[0], a[1]); }
Value car_(Mutator&, Value* a, std::size_t) { return pair_arg("car", a[0])->car; }
Value cdr_(Mutator&, Value* a, std::size_t) { return pair_arg("cdr", a[0])->cdr; }
Value cadr_(Mutator&, Value* a, std::size_t) { return pair_arg("cadr", pair_arg("cadr", a[0])->cdr)->car; }
Value cddr_(Mutator&, Value* a, std::size_t) { return pair_arg("cddr", pair_arg("cddr", a[0])->cdr)->cdr; }
Value caar_(Mutator&, Value* a, std::size_t) { return pair_arg("caar", pair_arg("caar", a[0])->car)->car; }
Value caddr_(Mutator&, Value* a, std::size_t) {
  return pair_arg("caddr", pair_arg("caddr", pair_arg("caddr", a[0])->cdr)->cdr)->car;
}
Value set_car(Mutator& m, Value* a, std::size_t) {
  pair_arg("set-car!", a[0])->car = a[1];
  write_barrier(m, a[0]);
  return Value::unspecified();
}
Value set_cdr(Mutator& m, Value* a, std::size_t) {
  pair_arg("set-cdr!", a[0])->cdr = a[1];
  write_barrier(m, a[0], BarrierSite::kSetCdr);  // the one a test may omit
  return Value::unspecified();
}
// Appends cell to the list built in place in head/tail (cons may have
// collected since tail was made: it may be old).
void append_cell(Mutator& m, Value& head, Value& tail, Value cell) {
  if (head.is_nil()) {
    head = cell;
  } else {
    tail.as<Pair>()->cdr = cell;
    write_barrier(m, tail);
  }
  tail = cell;
}
Value list(Mutator& m, Value* a, std::size_t n) { return list_from(m, a, n); }
Value length(Mutator& m, Value* a, std::size_t) {
  return make_integer(m, static_cast<std::int64_t>(proper_length("length", a[0])));
}

Value reverse(Mutator& m, Value* a, std::size_t) {
  proper_length("reverse", a[0]);
  Scope s(m);
  Value& out = m.push(Value::nil());
  Value& rest = m.push(a[0]);
  for (; is_pair(rest); rest = cdr(rest)) out = cons(m, car(rest), out);
  return out;
}

Value append(Mutator& m, Value* a, std::size_t n) {
  if (n == 0) return Value::nil();
  Scope s(m);
  Value& head = m.push(Value::nil());
  Value& tail = m.push(Value::nil());
  Value& rest = m.push(Value::nil());
  for (std::size_t i = 0; i + 1 < n; ++i) {
    proper_length("append", a[i]);
    for (rest = a[i]; is_pair(rest); rest = cdr(rest)) append_cell(m, head, tail, cons(m, car(rest), Value::nil()));
  }
  if (head.is_nil()) return a[n - 1];
  tail.as<Pair>()->cdr = a[n - 1];
  write_barrier(m, tail);
  return head;
}

// The index bounds the walk, not the list (which may be cyclic): polls.
Value list_tail_of(Mutator& m, const char* who, Value list, Value k) {
  std::int64_t i = int_arg(who, k);
  if (i < 0) throw VmError(std::string(who) + ": negative index " + std::to_string(i));
  const std::int64_t want = i;
  Scope s(m);
  Value& v = m.push(list);
  for (; i > 0; --i) {
    if (!is_pair(v)) throw VmError(std::string(who) + ": index " + std::to_string(want) + " past the end of the list");
    v = cdr(v);
    if (i % 4096 == 0) m.poll();
  }
  return v;
}
Value list_tail(Mutator& m, Value* a, std::size_t) { return list_tail_of(m, "list-tail", a[0], a[1]); }
Value list_ref(Mutator& m, Value* a, std::size_t) {
  const Value rest = list_tail_of(m, "list-ref", a[0], a[1]);
  if (!is_pair(rest))
    throw VmError("list-ref: index " + std::to_string(integer_value(a[1])) + " past the end of the list");
  return car(rest);
}

template <bool Collect>
Value map_like(Mutator& m, Value* a, std::size_t n) {
  const char* who = Collect ? "map" : "for-each";
  if (!is_procedure(a[0])) type_error(who, "a procedure", a[0]);
  for (std::size_t i = 1; i < n; ++i)
    if (!a[i].is_nil() && !is_pair(a[i])) type_error(who, "a list", a[i]);
  Scope s(m);
  Value& head = m.push(Value::nil());
  Value& tail = m.push(Value::nil());
  const std::size_t lists = n - 1;
  const std::size_t cursors = m.sp();
  for (std::size_t i = 1; i < n; ++i) m.push(a[i]);
  for (;;) {
    for (std::size_t i = 0; i < lists; ++i)
      if (!is_pair(*m.slot(cursors + i))) return Collect ? head : Value::unspecified();
    Scope call(m);
    const std::size_t args = m.sp();
    for (std::size_t i = 0; i < lists; ++i) {
      Value& c = *m.slot(cursors + i);
      m.push(car(c));
      c = cdr(c);
    }
    Value& r = m.push(apply(m, a[0], m.slot(args), lists));
    if (Collect) append_cell(m, head, tail, cons(m, r, Value::nil()));
  }
}

Value apply_(Mutator& m, Value* a, std::size_t n) {
  Scope s(m);
  const std::size_t args = m.sp();
  for (std::size_t i = 1; i + 1 < n; ++i) m.push(a[i]);
  const Value last = n > 1 ? a[n - 1] : Value::nil();
  proper_length("apply", last);
  for (Value v = last; is_pair(v); v = cdr(v)) m.push(car(v));
  return apply(m, a[0], m.slot(args), m.sp() - args);
}

// memq, member (Assoc false) and assq, assoc (Assoc true): the first cell
// of list a[1] whose element (or the element's car) is eq? (or equal?, which
// may poll: the cursors sit in stack slots) to a[0]; #f at the end of the
// list; an error on a cyclic one.
template <bool Assoc, bool Equal>
Value find_in_list(Mutator& m, Value* a, std::size_t) {
  static constexpr const char* kWho = Assoc ? (Equal ? "assoc" : "assq") : (Equal ? "member" : "memq");
  Scope s(m);
  Value& v = m.push(a[1]);
  CycleGuard guard(kWho, m.push(a[1]));
  for (; is_pair(v); v = cdr(v)) {
    const Value item = car(v);
    if (!Assoc || is_pair(item)) {
      const Value key = Assoc ? car(item) : item;
      if (Equal ? equal_values(m, a[0], key) : key == a[0]) return Assoc ? car(v) : v;
    }
    guard.step(v);
  }
  return Value::f();
}

// --- vectors ---
Value make_vector_(Mutator& m, Value* a, std::size_t n) {
  const std::int64_t len = int_arg("make-vector", a[0]);
  if (len < 0) throw VmError("make-vector: negative length " + std::to_string(len));
  return make_vector(m, static_cast<std::size_t>(len), n > 1 ? a[1] : Value::fixnum(0));
}
Value vector_(Mutator& m, Value* a, std::size_t n) {
  const Value v = make_vector(m, n, Value::nil());
  for (std::size_t i = 0; i < n; ++i) v.as<Vector>()->items[i] = a[i];
  write_barrier(m, v);
  return v;
}
Value vector_ref(Mutator&, Value* a, std::size_t) {
  Vector* v = vector_arg("vector-ref", a[0]);
  return v->items[index_arg("vector-ref", a[1], v->length)];
}
Value vector_set(Mutator& m, Value* a, std::size_t) {
  Vector* v = vector_arg("vector-set!", a[0]);
  v->items[index_arg("vector-set!", a[1], v->length)] = a[2];
  write_barrier(m, v);
  return Value::unspecified();
}
Value vector_length(Mutator& m, Value* a, std::size_t) {
  return make_integer(m, static_cast<std::int64_t>(vector_arg("vector-length", a[0])->length));
}
Value vector_fill(Mutator& m, Value* a, std::size_t) {
  Vector* v = vector_arg("vector-fill!", a[0]);
  for (std::uint64_t i = 0; i < v->length; ++i) v->items[i] = a[1];
  write_barrier(m, v);
  return Value::unspecified();
}
Value vector_to_list(Mutator& m, Value* a, std::size_t) {
  vector_arg("vector->list", a[0]);
  Scope s(m);
  Value& out = m.push(Value::nil());
  for (std::uint64_t i = a[0].as<Vector>()->length; i > 0; --i) out = cons(m, a[0].as<Vector>()->items[i - 1], out);
  return out;
}
Value list_to_vector(Mutator& m, Value* a, std::size_t) {
  const std::size_t n = proper_length("list->vector", a[0]);
  const Value v = make_vector(m, n, Value::nil());
  std::size_t i = 0;
  for (Value p = a[0]; is_pair(p); p = cdr(p)) v.as<Vector>()->items[i++] = car(p);
  write_barrier(m, v);
  return v;
}

// --- strings ---
Value string_append(Mutator& m, Value* a, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += string_arg("string-append", a[i])->view();
  return make_string(m, s);
}
Value string_length(Mutator& m, Value* a, std::size_t) {
  return make_integer(m, static_cast<std::int64_t>(string_arg("string-length", a[0])->length));
}
Value number_to_string(Mutator& m, Value* a, std::size_t) {
  if (!is_number(a[0])) type_error("number->string", "a number", a[0]);
  return make_string(m, to_display(a[0]));
}
Value string_to_number(Mutator& m, Value* a, std::size_t) {
  const std::string s(string_arg("string->number", a[0])->view());
  if (s.empty()) return Value::f();
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (*end == '\0' && errno == 0) return make_integer(m, i);
  const double d = std::strtod(s.c_str(), &end);
  if (*end == '\0') return make_float(m, d);
  return Value::f();
}
Value symbol_to_string(Mutator& m, Value* a, std::size_t) {
  if (!is_symbol(a[0])) type_error("symbol->string", "a symbol", a[0]);
  return make_string(m, a[0].as<Symbol>()->view());
}
Value string_to_symbol(Mutator& m, Value* a, std::size_t) {
  return intern(m, string_arg("string->symbol", a[0])->view());
}
Value string_eq(Mutator&, Value* a, std::size_t n) {
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (string_arg("string=?", a[i])->view() != string_arg("string=?", a[i + 1])->view()) return Value::f();
  return Value::t();
}
Value substring(Mutator& m, Value* a, std::size_t n) {
  String* s = string_arg("substring", a[0]);
  const std::int64_t start = int_arg("substring", a[1]);
  const std::int64_t end = n > 2 ? int_arg("substring", a[2]) : static_cast<std::int64_t>(s->length);
  if (start < 0 || end < start || static_cast<std::uint64_t>(end) > s->length)
    throw VmError("substring: range " + std::to_string(start) + ".." + std::to_string(end) + " out of bounds (length " +
                  std::to_string(s->length) + ")");
  return make_string(m, s->view().substr(static_cast<std::size_t>(start), static_cast<std::size_t>(end - start)));
}

constexpr PrimDef kDefs[] = {
    {"cons", cons_, 2, 2},
    {"car", car_, 1, 1},
    {"cdr", cdr_, 1, 1},
    {"cadr", cadr_, 1, 1},
    {"cddr", cddr_, 1, 1},
    {"caar", caar_, 1, 1},
    {"caddr", caddr_, 1, 1},
    {"set-car!", set_car, 2, 2},
    {"set-cdr!", set_cdr, 2, 2},
    {"list", list, 0, -1},
    {"length", length, 1, 1},
    {"reverse", reverse, 1, 1},
    {"append", append, 0, -1},
    {"list-tail", list_tail, 2, 2},
    {"list-ref", list_ref, 2, 2},
    {"map", map_like<true>, 2, -1},
    {"for-each", map_like<false>, 2, -1},
    {"apply", apply_, 1, -1},
    {"assq", find_in_list<true, false>, 2, 2},
    {"assoc", find_in_list<true, true>, 2, 2},
    {"memq", find_in_list<false, false>, 2, 2},
    {"member", find_in_list<false, true>, 2, 2},
    {"make-vector", make_vector_, 1, 2},
    {"vector", vector_, 0, -1},
    {"vector-ref", vector_ref, 2, 2},
    {"vector-set!", vector_set, 3, 3},
    {"vector-length", vector_length, 1, 1},
    {"vector-fill!", vector_fill, 2, 2},
    {"vector->list", vector_to_list, 1, 1},
    {"list->vector", list_to_vector, 1, 1},
    {"string-append", string_append, 0, -1},
    {"string-length", string_length, 1, 1},
    {"number->string", number_to_string, 1, 1},
    {"string->number", string_to_number, 1, 1},
    {"symbol->string", symbol_to_string, 1, 1},
    {"string->symbol", string_to_symbol, 1, 1},
    {"string=?", string_eq, 1, -1},
    {"substring", substring, 2, 3},
};

}  // namespace

std::span<const PrimDef> data_primitives() { return kDefs; }

}  // namespace tvm
