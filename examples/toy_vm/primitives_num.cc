// primitives_num.cc: numbers, comparison, equality and type predicates.
//
// Integers are int64 (fixnums, boxed when outside 63 bits); an operation
// that overflows int64 is an error, not a silent wrap. A float anywhere
// makes the result a float. (/ a b) on integers is exact when it divides,
// a float otherwise.
#include <cmath>
#include <string>
#include <unordered_map>

#include "examples/toy_vm/error.h"
#include "examples/toy_vm/primitives.h"
#include "examples/toy_vm/printer.h"

namespace tvm {

namespace {

struct Num {
  bool is_float;
  std::int64_t i;
  double d;
  double as_double() const { return is_float ? d : static_cast<double>(i); }
};

Num num_arg(const char* who, Value v) {
  if (v.is_fixnum()) return {false, v.as_fixnum(), 0};
  if (v.is(Type::kInt)) return {false, v.as<Int>()->value, 0};
  if (v.is(Type::kFloat)) return {true, 0, v.as<Float>()->value};
  type_error(who, "a number", v);
}

Value make_num(Mutator& m, const Num& n) { return n.is_float ? make_float(m, n.d) : make_integer(m, n.i); }

[[noreturn]] void overflow(const char* who) { throw VmError(std::string(who) + ": integer overflow (int64)"); }

template <char Op>
Num combine(const char* who, Num a, Num b) {
  if (a.is_float || b.is_float) {
    const double x = a.as_double(), y = b.as_double();
    return {true, 0, Op == '+' ? x + y : Op == '-' ? x - y : x * y};
  }
  std::int64_t r;
  const bool o = Op == '+' ? __builtin_add_overflow(a.i, b.i, &r)
                 : Op == '-' ? __builtin_sub_overflow(a.i, b.i, &r)
                             : __builtin_mul_overflow(a.i, b.i, &r);
  if (o) overflow(who);
  return {false, r, 0};
}

Value add(Mutator& m, Value* a, std::size_t n) {
  Num acc{false, 0, 0};
  for (std::size_t i = 0; i < n; ++i) acc = combine<'+'>("+", acc, num_arg("+", a[i]));
  return make_num(m, acc);
}

Value mul(Mutator& m, Value* a, std::size_t n) {
  Num acc{false, 1, 0};
  for (std::size_t i = 0; i < n; ++i) acc = combine<'*'>("*", acc, num_arg("*", a[i]));
  return make_num(m, acc);
}

Value sub(Mutator& m, Value* a, std::size_t n) {
  Num acc = num_arg("-", a[0]);
  if (n == 1) return make_num(m, combine<'-'>("-", Num{false, 0, 0}, acc));
  for (std::size_t i = 1; i < n; ++i) acc = combine<'-'>("-", acc, num_arg("-", a[i]));
  return make_num(m, acc);
}

Value div(Mutator& m, Value* a, std::size_t n) {
  Num acc = n == 1 ? Num{false, 1, 0} : num_arg("/", a[0]);
  std::size_t i = n == 1 ? 0 : 1;
  for (; i < n; ++i) {
    const Num b = num_arg("/", a[i]);
    if (!acc.is_float && !b.is_float) {
      if (b.i == 0) throw VmError("/: division by zero");
      if (b.i == -1 && acc.i == INT64_MIN) overflow("/");
      if (acc.i % b.i == 0) {
        acc.i /= b.i;
        continue;
      }
    }
    acc = Num{true, 0, acc.as_double() / b.as_double()};
  }
  return make_num(m, acc);
}

template <int Kind>  // 0 quotient, 1 remainder, 2 modulo
Value int_div(Mutator& m, Value* a, std::size_t) {
  static constexpr const char* kNames[] = {"quotient", "remainder", "modulo"};
  const char* who = kNames[Kind];
  const std::int64_t x = int_arg(who, a[0]), y = int_arg(who, a[1]);
  if (y == 0) throw VmError(std::string(who) + ": division by zero");
  if (Kind == 0 && y == -1 && x == INT64_MIN) overflow(who);
  if (y == -1) return Kind == 0 ? make_integer(m, -x) : Value::fixnum(0);
  if (Kind == 0) return make_integer(m, x / y);
  std::int64_t r = x % y;
  if (Kind == 2 && r != 0 && ((r < 0) != (y < 0))) r += y;
  return make_integer(m, r);
}

template <int Op>  // 0 =, 1 <, 2 >, 3 <=, 4 >=
Value compare(Mutator&, Value* a, std::size_t n) {
  static constexpr const char* kNames[] = {"=", "<", ">", "<=", ">="};
  for (std::size_t i = 0; i < n; ++i) num_arg(kNames[Op], a[i]);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const Num x = num_arg(kNames[Op], a[i]), y = num_arg(kNames[Op], a[i + 1]);
    int c;
    if (!x.is_float && !y.is_float) {
      c = x.i < y.i ? -1 : x.i > y.i ? 1 : 0;
    } else {
      const double p = x.as_double(), q = y.as_double();
      if (std::isnan(p) || std::isnan(q)) return Value::f();
      c = p < q ? -1 : p > q ? 1 : 0;
    }
    const bool ok = Op == 0 ? c == 0 : Op == 1 ? c < 0 : Op == 2 ? c > 0 : Op == 3 ? c <= 0 : c >= 0;
    if (!ok) return Value::f();
  }
  return Value::t();
}

Value abs_(Mutator& m, Value* a, std::size_t) {
  const Num x = num_arg("abs", a[0]);
  if (x.is_float) return make_float(m, std::fabs(x.d));
  if (x.i == INT64_MIN) overflow("abs");
  return make_integer(m, x.i < 0 ? -x.i : x.i);
}

template <bool Max>
Value minmax(Mutator& m, Value* a, std::size_t n) {
  const char* who = Max ? "max" : "min";
  Num best = num_arg(who, a[0]);
  bool any_float = best.is_float;
  for (std::size_t i = 1; i < n; ++i) {
    const Num x = num_arg(who, a[i]);
    any_float |= x.is_float;
    const bool better = (x.is_float || best.is_float) ? (Max ? x.as_double() > best.as_double()
                                                            : x.as_double() < best.as_double())
                                                      : (Max ? x.i > best.i : x.i < best.i);
    if (better) best = x;
  }
  if (any_float) best = Num{true, 0, best.as_double()};
  return make_num(m, best);
}

Value sqrt_(Mutator& m, Value* a, std::size_t) { return make_float(m, std::sqrt(num_arg("sqrt", a[0]).as_double())); }
Value inexact(Mutator& m, Value* a, std::size_t) {
  return make_float(m, num_arg("exact->inexact", a[0]).as_double());
}
Value exact(Mutator& m, Value* a, std::size_t) {
  const Num x = num_arg("exact", a[0]);
  if (!x.is_float) return a[0];
  if (!(x.d >= -9.2e18 && x.d <= 9.2e18)) throw VmError("exact: cannot convert " + format_number(x.d));
  return make_integer(m, static_cast<std::int64_t>(x.d));
}
Value floor_(Mutator& m, Value* a, std::size_t) {
  const Num x = num_arg("floor", a[0]);
  return x.is_float ? make_float(m, std::floor(x.d)) : a[0];
}

Value is_zero(Mutator&, Value* a, std::size_t) { return Value::boolean(num_arg("zero?", a[0]).as_double() == 0); }
Value is_even(Mutator&, Value* a, std::size_t) { return Value::boolean(int_arg("even?", a[0]) % 2 == 0); }
Value is_odd(Mutator&, Value* a, std::size_t) { return Value::boolean(int_arg("odd?", a[0]) % 2 != 0); }

Value not_(Mutator&, Value* a, std::size_t) { return Value::boolean(a[0].is_false()); }
Value eq(Mutator&, Value* a, std::size_t) { return Value::boolean(a[0] == a[1]); }
Value eqv(Mutator&, Value* a, std::size_t) { return Value::boolean(eqv_values(a[0], a[1])); }
Value equal(Mutator& m, Value* a, std::size_t) { return Value::boolean(equal_values(m, a[0], a[1])); }

template <bool (*Pred)(Value)>
Value predicate(Mutator&, Value* a, std::size_t) {
  return Value::boolean(Pred(a[0]));
}
bool p_null(Value v) { return v.is_nil(); }
bool p_pair(Value v) { return is_pair(v); }
bool p_list(Value v) {
  Value slow = v;
  for (;;) {
    if (v.is_nil()) return true;
    if (!is_pair(v)) return false;
    v = cdr(v);
    if (v.is_nil()) return true;
    if (!is_pair(v)) return false;
    v = cdr(v);
    slow = cdr(slow);
    if (v == slow) return false;
  }
}
bool p_number(Value v) { return is_number(v); }
bool p_integer(Value v) {
  return is_integer(v) || (v.is(Type::kFloat) && std::floor(v.as<Float>()->value) == v.as<Float>()->value);
}
bool p_symbol(Value v) { return is_symbol(v); }
bool p_string(Value v) { return v.is(Type::kString); }
bool p_vector(Value v) { return v.is(Type::kVector); }
bool p_procedure(Value v) { return is_procedure(v); }
bool p_boolean(Value v) { return v == Value::t() || v == Value::f(); }
bool p_thread(Value v) { return v.is(Type::kThread); }

constexpr PrimDef kDefs[] = {
    {"+", add, 0, -1},
    {"-", sub, 1, -1},
    {"*", mul, 0, -1},
    {"/", div, 1, -1},
    {"quotient", int_div<0>, 2, 2},
    {"remainder", int_div<1>, 2, 2},
    {"modulo", int_div<2>, 2, 2},
    {"=", compare<0>, 1, -1},
    {"<", compare<1>, 1, -1},
    {">", compare<2>, 1, -1},
    {"<=", compare<3>, 1, -1},
    {">=", compare<4>, 1, -1},
    {"abs", abs_, 1, 1},
    {"min", minmax<false>, 1, -1},
    {"max", minmax<true>, 1, -1},
    {"sqrt", sqrt_, 1, 1},
    {"exact->inexact", inexact, 1, 1},
    {"inexact", inexact, 1, 1},
    {"exact", exact, 1, 1},
    {"floor", floor_, 1, 1},
    {"zero?", is_zero, 1, 1},
    {"even?", is_even, 1, 1},
    {"odd?", is_odd, 1, 1},
    {"not", not_, 1, 1},
    {"eq?", eq, 2, 2},
    {"eqv?", eqv, 2, 2},
    {"equal?", equal, 2, 2},
    {"null?", predicate<p_null>, 1, 1},
    {"pair?", predicate<p_pair>, 1, 1},
    {"list?", predicate<p_list>, 1, 1},
    {"number?", predicate<p_number>, 1, 1},
    {"integer?", predicate<p_integer>, 1, 1},
    {"symbol?", predicate<p_symbol>, 1, 1},
    {"string?", predicate<p_string>, 1, 1},
    {"vector?", predicate<p_vector>, 1, 1},
    {"procedure?", predicate<p_procedure>, 1, 1},
    {"boolean?", predicate<p_boolean>, 1, 1},
    {"thread?", predicate<p_thread>, 1, 1},
};

}  // namespace

std::span<const PrimDef> num_primitives() { return kDefs; }

bool eqv_values(Value a, Value b) {
  if (a == b) return true;
  if (a.is(Type::kFloat) && b.is(Type::kFloat)) return a.as<Float>()->value == b.as<Float>()->value;
  if (a.is(Type::kInt) && b.is(Type::kInt)) return a.as<Int>()->value == b.as<Int>()->value;
  return false;
}

namespace {

// equal? on data that may be cyclic (R7RS requires it to end). It walks both
// values in step; after kTreeSteps containers it also keeps a union-find of
// the pairs and vectors compared so far and treats a pair whose members are
// already in one class as equal (as Adams and Dybvig's equal? does): were
// the whole answer true, every such assumption holds, and a false answer
// returns at once. So cyclic data ends, in near-linear time. The cursors sit
// in stack slots and a long comparison polls the safepoint now and then, so
// it never holds a collection up.
class EqualWalk {
 public:
  explicit EqualWalk(Mutator& m) : m_(m) {}

  bool equal(Value a, Value b) {
    DepthGuard depth(m_);
    Scope s(m_);
    Value& x = m_.push(a);
    Value& y = m_.push(b);
    for (;;) {
      if (eqv_values(x, y)) return true;
      if (x.is(Type::kString) && y.is(Type::kString)) return x.as<String>()->view() == y.as<String>()->view();
      const bool pairs = is_pair(x) && is_pair(y);
      const bool vectors = x.is(Type::kVector) && y.is(Type::kVector);
      if (!pairs && !vectors) return false;
      if (++steps_ % kPollEvery == 0) m_.poll();
      if (steps_ > kTreeSteps && !unite(x.header(), y.header())) return true;  // assumed equal already
      if (vectors) return equal_items(x, y);
      if (!equal(car(x), car(y))) return false;
      x = cdr(x);
      y = cdr(y);
    }
  }

 private:
  static constexpr std::size_t kTreeSteps = 1000;
  static constexpr std::size_t kPollEvery = 4096;

  bool equal_items(Value& x, Value& y) {
    if (x.as<Vector>()->length != y.as<Vector>()->length) return false;
    for (std::uint64_t i = 0; i < x.as<Vector>()->length; ++i)
      if (!equal(x.as<Vector>()->items[i], y.as<Vector>()->items[i])) return false;
    return true;
  }

  const Header* find(const Header* h) {
    for (;;) {
      auto it = parent_.find(h);
      if (it == parent_.end()) return h;
      auto up = parent_.find(it->second);
      if (up != parent_.end()) it->second = up->second;  // path halving
      h = it->second;
    }
  }
  // false when a and b were in one class already.
  bool unite(const Header* a, const Header* b) {
    const Header* ra = find(a);
    const Header* rb = find(b);
    if (ra == rb) return false;
    parent_[ra] = rb;
    return true;
  }

  Mutator& m_;
  std::size_t steps_ = 0;
  std::unordered_map<const Header*, const Header*> parent_;
};

}  // namespace

bool equal_values(Mutator& m, Value a, Value b) { return EqualWalk(m).equal(a, b); }

}  // namespace tvm
