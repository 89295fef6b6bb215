// eval.cc: the evaluator (see eval.h for the design).
#include "examples/toy_vm/eval.h"

#include <string>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/printer.h"
#include "examples/toy_vm/reader.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {

// Length of a proper list, or -1.
long list_length(Value v) {
  long n = 0;
  for (; is_pair(v); v = cdr(v)) ++n;
  return v.is_nil() ? n : -1;
}

[[noreturn]] void bad_syntax(Value form, const char* what) {
  throw VmError(std::string(what) + ": bad syntax in " + describe(form), loc_of(form));
}

std::string sym_name(Value sym) { return std::string(sym.as<Symbol>()->view()); }

// A local variable's slot, and the object holding it (for the write
// barrier): an Env frame, or the (sym . val) pair of an internal define.
struct Local {
  Value* slot = nullptr;
  Value holder;
};

Local find_local(Value sym, Value env) {
  for (Value e = env; !e.is_nil(); e = e.as<Env>()->parent) {
    Env* f = e.as<Env>();
    for (std::uint64_t i = 0; i < f->count; ++i)
      if (f->slots[2 * i] == sym) return {&f->slots[2 * i + 1], e};
    for (Value p = f->extra; !p.is_nil(); p = cdr(p))
      if (car(car(p)) == sym) return {&car(p).as<Pair>()->cdr, car(p)};
  }
  return {};
}

Value lookup(Value sym, Value env) {
  if (Value* slot = find_local(sym, env).slot) {
    if (*slot == Value::unbound()) throw VmError(sym_name(sym) + ": variable used before its definition");
    return *slot;
  }
  const Value g = Value::from_bits(sym.as<Symbol>()->global.load(std::memory_order_acquire));
  if (g == Value::unbound()) throw VmError("unbound variable: " + sym_name(sym));
  return g;
}

// env, val: rooted by the caller.
void define_var(Mutator& m, Value sym, Value& val, Value& env) {
  if (env.is_nil()) {
    m.vm().define_global(m, sym, val);
    return;
  }
  Env* f = env.as<Env>();
  for (std::uint64_t i = 0; i < f->count; ++i)
    if (f->slots[2 * i] == sym) {
      f->slots[2 * i + 1] = val;
      write_barrier(m, env);
      return;
    }
  for (Value p = f->extra; !p.is_nil(); p = cdr(p))
    if (car(car(p)) == sym) {
      car(p).as<Pair>()->cdr = val;
      write_barrier(m, car(p));
      return;
    }
  Scope s(m);
  Value& binding = m.push(cons(m, sym, val));
  const Value cell = cons(m, binding, env.as<Env>()->extra);
  env.as<Env>()->extra = cell;
  write_barrier(m, env);
}

// Names an anonymous closure after the variable it is bound to.
void name_closure(Mutator& m, Value fn, Value name) {
  if (!fn.is(Type::kClosure) || !fn.as<Closure>()->name.is_false()) return;
  fn.as<Closure>()->name = name;
  write_barrier(m, fn);
}

[[noreturn]] void arity_error(const std::string& who, long want_min, long want_max, std::size_t got) {
  std::string want = std::to_string(want_min);
  if (want_max < 0) want = "at least " + want;
  else if (want_max != want_min) want += " to " + std::to_string(want_max);
  throw VmError(who + ": expected " + want + " argument" + (want_min == 1 && want_max == 1 ? "" : "s") + ", got " +
                std::to_string(got));
}

std::string proc_name(Value fn) {
  if (fn.is(Type::kPrimitive)) return fn.as<Primitive>()->name;
  Value name = fn.as<Closure>()->name;
  return is_symbol(name) ? sym_name(name) : "#<procedure>";
}

Value call_primitive(Mutator& m, Value fn, Value* args, std::size_t n) {
  Primitive* p = fn.as<Primitive>();
  if (n < static_cast<std::size_t>(p->min_args) || (p->max_args >= 0 && n > static_cast<std::size_t>(p->max_args)))
    arity_error(p->name, p->min_args, p->max_args, n);
  return p->fn(m, args, n);
}

// A new frame binding fn's parameters to args (fn and args rooted).
Value bind_args(Mutator& m, Value fn, Value* args, std::size_t n) {
  Closure* c = fn.as<Closure>();
  if (n < c->required || (!c->has_rest && n > c->required))
    arity_error(proc_name(fn), c->required, c->has_rest ? -1 : c->required, n);
  Scope s(m);
  Value& env = m.push(make_env(m, c->required + c->has_rest, c->env));
  Env* f = env.as<Env>();
  Value params = c->params;
  for (std::uint32_t i = 0; i < c->required; ++i, params = cdr(params)) {
    f->slots[2 * i] = car(params);
    f->slots[2 * i + 1] = args[i];
  }
  if (c->has_rest) {
    // list_from may collect: the frame may be old by now.
    const Value rest = list_from(m, args + c->required, n - c->required);
    f->slots[2 * c->required] = params;
    f->slots[2 * c->required + 1] = rest;
  }
  write_barrier(m, env);
  return env;
}

// Evaluates all forms of a body but the last; returns the last (x: rooted
// holder of the body while it runs).
Value body_tail(Mutator& m, Value& x, Value& e) {
  if (!is_pair(x)) throw VmError("empty body");
  while (is_pair(cdr(x))) {
    eval(m, car(x), e);
    x = cdr(x);
  }
  return car(x);
}

}  // namespace

Value apply(Mutator& m, Value fn, Value* args, std::size_t n) {
  if (fn.is(Type::kPrimitive)) return call_primitive(m, fn, args, n);
  if (!fn.is(Type::kClosure)) throw VmError("not a procedure: " + describe(fn));
  Scope s(m);
  Value& f = m.push(fn);
  Value& env = m.push(bind_args(m, f, args, n));
  Value& body = m.push(f.as<Closure>()->body);
  const Value last = body_tail(m, body, env);
  return eval(m, last, env);
}

Value eval(Mutator& m, Value form, Value env) {
  DepthGuard depth(m);
  Scope scope(m);
  Value& x = m.push(form);
  Value& e = m.push(env);
  Value& tmp = m.push(Value::nil());
  const std::size_t base = m.sp();
  const Vm::Syms& S = m.vm().sym;
  try {
    for (;;) {
      m.reset(base);
      m.poll();
      if (m.vm().finalizers_pending()) [[unlikely]] m.vm().run_finalizers(m);
      if (is_symbol(x)) return lookup(x, e);
      if (!is_pair(x)) {
        if (x.is_nil()) throw VmError("(): empty combination");
        return x;
      }
      const Value op = car(x);
      if (is_symbol(op)) {
        if (op == S.quote) {
          if (list_length(x) != 2) bad_syntax(x, "quote");
          return car(cdr(x));
        }
        if (op == S.if_) {
          const long len = list_length(x);
          if (len != 3 && len != 4) bad_syntax(x, "if");
          const Value test = eval(m, car(cdr(x)), e);
          if (test.truthy()) {
            x = car(cdr(cdr(x)));
          } else if (len == 4) {
            x = car(cdr(cdr(cdr(x))));
          } else {
            return Value::unspecified();
          }
          continue;
        }
        if (op == S.define) {
          if (list_length(x) < 2) bad_syntax(x, "define");
          const Value target = car(cdr(x));
          if (is_pair(target)) {
            if (!is_symbol(car(target)) || !is_pair(cdr(cdr(x)))) bad_syntax(x, "define");
            tmp = make_closure(m, cdr(target), cdr(cdr(x)), e, car(target));
            define_var(m, car(target), tmp, e);
          } else {
            if (!is_symbol(target) || list_length(x) > 3) bad_syntax(x, "define");
            tmp = is_pair(cdr(cdr(x))) ? eval(m, car(cdr(cdr(x))), e) : Value::unspecified();
            name_closure(m, tmp, target);
            define_var(m, target, tmp, e);
          }
          return Value::unspecified();
        }
        if (op == S.set) {
          if (list_length(x) != 3 || !is_symbol(car(cdr(x)))) bad_syntax(x, "set!");
          tmp = eval(m, car(cdr(cdr(x))), e);
          const Value name = car(cdr(x));
          if (const Local local = find_local(name, e); local.slot != nullptr) {
            *local.slot = tmp;
            write_barrier(m, local.holder);
          } else {
            m.vm().set_global(m, name, tmp);
          }
          return Value::unspecified();
        }
        if (op == S.lambda) {
          if (list_length(x) < 3) bad_syntax(x, "lambda");
          return make_closure(m, car(cdr(x)), cdr(cdr(x)), e, Value::f());
        }
        if (op == S.begin) {
          if (cdr(x).is_nil()) return Value::unspecified();
          x = cdr(x);
          x = body_tail(m, x, e);
          continue;
        }
        if (op == S.let || op == S.let_star || op == S.letrec) {
          if (list_length(x) < 3) bad_syntax(x, "let");
          const bool named = op == S.let && is_symbol(car(cdr(x)));
          Value bindings = named ? car(cdr(cdr(x))) : car(cdr(x));
          const long n = list_length(bindings);
          if (n < 0 || (named && list_length(x) < 4)) bad_syntax(x, "let");
          for (Value b = bindings; is_pair(b); b = cdr(b))
            if (list_length(car(b)) != 2 || !is_symbol(car(car(b)))) bad_syntax(x, "let");
          Value& body = m.push(named ? cdr(cdr(cdr(x))) : cdr(cdr(x)));
          if (op == S.let_star) {
            for (Value b = bindings; is_pair(b); b = cdr(b)) {
              tmp = eval(m, car(cdr(car(b))), e);
              const Value frame = make_env(m, 1, e);
              frame.as<Env>()->slots[0] = car(car(b));
              frame.as<Env>()->slots[1] = tmp;
              write_barrier(m, frame);
              e = frame;
            }
          } else if (op == S.letrec) {
            e = make_env(m, static_cast<std::size_t>(n), e);
            long i = 0;
            for (Value b = bindings; is_pair(b); b = cdr(b), ++i) e.as<Env>()->slots[2 * i] = car(car(b));
            write_barrier(m, e);
            i = 0;
            for (Value b = bindings; is_pair(b); b = cdr(b), ++i) {
              tmp = eval(m, car(cdr(car(b))), e);  // may collect: the frame may be old by now
              name_closure(m, tmp, car(car(b)));
              e.as<Env>()->slots[2 * i + 1] = tmp;
              write_barrier(m, e);
            }
          } else {
            // Forms are never mutated while they run: x keeps them alive.
            const std::size_t args = m.sp();
            for (Value b = bindings; is_pair(b); b = cdr(b)) m.push(eval(m, car(cdr(car(b))), e));
            Value* vals = m.slot(args);
            if (named) {
              // (let name ((v i) ...) body): name is bound to the loop
              // procedure in a frame of its own; then a tail call.
              Value& vars = m.push(Value::nil());
              {
                Scope vs(m);
                const std::size_t sym_base = m.sp();
                for (Value b = bindings; is_pair(b); b = cdr(b)) m.push(car(car(b)));
                vars = list_from(m, m.slot(sym_base), static_cast<std::size_t>(n));
              }
              Value& frame = m.push(make_env(m, 1, e));
              frame.as<Env>()->slots[0] = car(cdr(x));
              write_barrier(m, frame);
              tmp = make_closure(m, vars, body, frame, car(cdr(x)));  // may collect
              frame.as<Env>()->slots[1] = tmp;
              write_barrier(m, frame);
              e = bind_args(m, tmp, vals, static_cast<std::size_t>(n));
            } else {
              const Value frame = make_env(m, static_cast<std::size_t>(n), e);
              long i = 0;
              for (Value b = bindings; is_pair(b); b = cdr(b), ++i) {
                frame.as<Env>()->slots[2 * i] = car(car(b));
                frame.as<Env>()->slots[2 * i + 1] = vals[i];
              }
              write_barrier(m, frame);
              e = frame;
            }
          }
          x = body;
          x = body_tail(m, x, e);
          continue;
        }
        if (op == S.cond) {
          Value& clauses = m.push(cdr(x));
          bool taken = false;
          for (; is_pair(clauses); clauses = cdr(clauses)) {
            const Value clause = car(clauses);
            if (!is_pair(clause)) bad_syntax(x, "cond");
            if (car(clause) == S.else_) {
              if (!cdr(clauses).is_nil()) bad_syntax(x, "cond: else must be the last clause;");
              tmp = Value::t();
            } else {
              tmp = eval(m, car(clause), e);
            }
            if (tmp.truthy()) {
              taken = true;
              break;
            }
          }
          if (!taken) return Value::unspecified();
          if (cdr(car(clauses)).is_nil()) return tmp;
          x = cdr(car(clauses));
          x = body_tail(m, x, e);
          continue;
        }
        if (op == S.and_ || op == S.or_) {
          const bool is_and = op == S.and_;
          if (cdr(x).is_nil()) return Value::boolean(is_and);
          x = cdr(x);
          while (is_pair(cdr(x))) {
            tmp = eval(m, car(x), e);
            if (is_and ? tmp.is_false() : tmp.truthy()) return tmp;
            x = cdr(x);
          }
          x = car(x);
          continue;
        }
        if (op == S.when || op == S.unless) {
          if (list_length(x) < 3) bad_syntax(x, op == S.when ? "when" : "unless");
          tmp = eval(m, car(cdr(x)), e);
          if (tmp.truthy() != (op == S.when)) return Value::unspecified();
          x = cdr(cdr(x));
          x = body_tail(m, x, e);
          continue;
        }
      }
      // An application: the operator and arguments onto the stack.
      if (list_length(x) < 0) bad_syntax(x, "call");
      Value& fn = m.push(eval(m, op, e));
      const std::size_t args = m.sp();
      for (Value a = cdr(x); is_pair(a); a = cdr(a)) m.push(eval(m, car(a), e));
      const std::size_t n = m.sp() - args;
      Value* argv = m.slot(args);
      if (fn.is(Type::kPrimitive)) return call_primitive(m, fn, argv, n);
      if (!fn.is(Type::kClosure)) throw VmError("not a procedure: " + describe(fn));
      e = bind_args(m, fn, argv, n);
      x = fn.as<Closure>()->body;
      x = body_tail(m, x, e);
    }
  } catch (VmError& err) {
    if (!err.loc.known()) err.loc = loc_of(x);
    throw;
  }
}

bool run_source(Mutator& m, std::string_view src, const std::string& name, bool print_results,
                std::uint32_t first_line) {
  Scope s(m);
  Value& form = m.push(Value::nil());
  Reader reader(m, src, first_line);
  try {
    while (reader.next(&form)) {
      const Value v = eval(m, form, Value::nil());
      if (print_results && v != Value::unspecified()) m.vm().write(m, Vm::Stream::kOut, to_write(v) + "\n");
    }
  } catch (VmError& err) {
    // No form with a location failed (a top-level symbol, say): name the
    // top-level form, so every error has a line and column.
    if (!err.loc.known()) err.loc = reader.form_start();
    m.vm().write(m, Vm::Stream::kErr, format_error(name, err) + "\n");
    return false;
  }
  return true;
}

bool run_file(Mutator& m, const std::string& path, const std::string& display_name) {
  try {
    RawText text(m, path);
    return run_source(m, text.view(), display_name, false);
  } catch (VmError& err) {
    m.vm().write(m, Vm::Stream::kErr, std::string("tvm: error: ") + err.what() + "\n");
    return false;
  }
}

std::string format_error(const std::string& file, const VmError& e) {
  if (e.loc.known())
    return file + ":" + std::to_string(e.loc.line) + ":" + std::to_string(e.loc.col) + ": error: " + e.what();
  return file + ": error: " + e.what();
}

}  // namespace tvm
