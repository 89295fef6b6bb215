// weak_test.cc: weak boxes, weak (ephemeron) tables and finalizers.
// Every program runs under --verify with a 64 KiB budget (test_util.h),
// so the heap is checked after every collection: an entry or box left
// pointing at a freed object is fatal.
#include <doctest/doctest.h>

#include "examples/toy_vm/test_util.h"

using tvm::test::lisp;
using tvm::test::out_of;

namespace {
// Allocates garbage: many collections while it runs.
const std::string kChurn = "(define (churn n) (if (> n 0) (begin (make-vector 50 0) (churn (- n 1)))))\n";
}  // namespace

TEST_SUITE("toy_vm.weak") {
  TEST_CASE("a weak box keeps reading its object while it is reachable, and #f once it is not") {
    CHECK(out_of(kChurn + R"(
(define x (list 1 2))
(define b (make-weak-box x))
(churn 3000)
(gc)
(display (weak-box-value b))
(display (eq? (weak-box-value b) x))
(set! x #f)
(gc)
(display (weak-box-value b))
(display (list (weak-box-value (make-weak-box 42)) (weak-box? b) (weak-box? x)))
)") == "(1 2)#t#f(42 #t #f)");
  }

  TEST_CASE("an object reachable only through a live key's entry in a weak table stays, and goes with the key") {
    CHECK(out_of(kChurn + R"(
(define t (make-weak-table))
(define k (list 'key))
(define v (list 'value))
(define b (make-weak-box v))
(table-set! t k v)
(set! v #f)
(churn 2000)
(gc)
(display (weak-box-value b))
(set! k #f)
(gc)
(display (weak-box-value b))
(display (table-count t))
)") == "(value)#f0");
  }

  TEST_CASE("a weak table drops the entries whose keys died; a value referring to its own key does not keep it") {
    // The WeakMap leak: each value holds its key. As ephemerons, the
    // entries go when nothing else holds the keys.
    CHECK(out_of(kChurn + R"(
(define t (make-weak-table))
(define keep (list 'kept))
(table-set! t keep 'a)
(let loop ((i 0))
  (when (< i 200)
    (let ((k (list i)))
      (table-set! t k (cons k 'holds-its-key)))
    (loop (+ i 1))))
(table-set! t 7 'fixnum-key)
(display (table-count t)) (newline)
(churn 2000)
(gc)
(display (table-count t)) (newline)
(display (list (table-ref t keep) (table-ref t 7) (table-ref t (list 1) 'none) (table-ref t 'x)))
(table-set! t keep 'b)
(display (list (table-ref t keep) (table-count t) (weak-table? t) (weak-table? keep)))
)") == "202\n2\n(a fixnum-key none #f)(b 2 #t #f)");
  }

  TEST_CASE("a chain of entries whose values hold the next key lives from its first key and goes with it") {
    CHECK(out_of(R"(
(define t (make-weak-table))
(define first (list 0))
(let loop ((i 1) (key first))
  (when (< i 1000)
    (let ((next (list i)))
      (table-set! t key next)
      (loop (+ i 1) next))))
(gc)
(display (table-count t))
(set! first #f)
(gc)
(display " ")
(display (table-count t))
)") == "999 0");
  }

  TEST_CASE("a finalizer runs once, with its object, after the object became unreachable, never inside a collection") {
    CHECK(out_of(kChurn + R"(
(define runs 0)
(define seen #f)
(define x (list 'obj))
(register-finalizer! x (lambda (o) (set! runs (+ runs 1)) (set! seen o) (churn 100)))
(churn 2000)
(gc)
(display runs)
(set! x #f)
(gc)
(display (list runs seen))
(set! seen #f)
(gc)
(churn 2000)
(gc)
(display runs)
)") == "0(1 (obj))1");
  }

  TEST_CASE("finalizers run at a safe point without (gc), and an error in one is reported while the others run") {
    const auto r = lisp(kChurn + R"(
(define runs 0)
(define (garbage-with-finalizers n)
  (when (> n 0)
    (register-finalizer! (list n) (lambda (o) (set! runs (+ runs 1)) (when (= (car o) 3) (car 'bad))))
    (garbage-with-finalizers (- n 1))))
(garbage-with-finalizers 10)
(let wait ((i 0)) (when (and (< runs 10) (< i 200)) (churn 200) (wait (+ i 1))))
(display runs)
)");
    CHECK(r.rc == 0);
    CHECK(r.out == "10");
    CHECK(r.err.find("car: expected a pair, got bad (in a finalizer)") != std::string::npos);
  }

  TEST_CASE("an entry whose key is kept only for its finalizer lives as long as the key, value and all") {
    // The key is kept for its finalizer, and its ephemeron's value with it:
    // the finalizer finds the entry intact; once it ran, the key dies and
    // the entry goes (--verify would stop at an entry pointing at a freed
    // object).
    CHECK(out_of(kChurn + R"(
(define t (make-weak-table))
(define k (list 'k))
(table-set! t k (list 'value))
(register-finalizer! k (lambda (o) (display (table-ref t o 'gone))))
(set! k #f)
(gc)
(churn 2000)
(gc)
(display (table-count t))
)") == "(value)0");
  }

  TEST_CASE("weak primitives reject wrong argument types and counts with the usual errors") {
    const struct {
      const char* src;
      const char* err;
    } cases[] = {
        {"(weak-box-value 5)", "weak-box-value: expected a weak box, got 5"},
        {"(make-weak-box)", "make-weak-box: expected 1 argument, got 0"},
        {"(make-weak-box 1 2)", "make-weak-box: expected 1 argument, got 2"},
        {"(make-weak-table 1)", "make-weak-table: expected 0 arguments, got 1"},
        {"(table-set! 1 2 3)", "table-set!: expected a weak table, got 1"},
        {"(table-set! (make-weak-table) 1)", "table-set!: expected 3 arguments, got 2"},
        {"(table-ref (make-weak-table))", "table-ref: expected 2 to 3 arguments, got 1"},
        {"(table-ref (list 1) 1)", "table-ref: expected a weak table, got (1)"},
        {"(table-count 'x)", "table-count: expected a weak table, got x"},
        {"(register-finalizer! 5 car)", "register-finalizer!: expected a heap object, got 5"},
        {"(register-finalizer! (list 1) 5)", "register-finalizer!: expected a procedure, got 5"},
        {"(register-finalizer! (list 1))", "register-finalizer!: expected 2 arguments, got 1"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.src);
      const auto r = lisp(c.src);
      CHECK(r.rc == 1);
      CHECK(r.err == std::string("t.lisp:1:1: error: ") + c.err + "\n");
    }
  }

  TEST_CASE("threads filling one weak table at once while collections prune it") {
    CHECK(out_of(kChurn + R"(
(define t (make-weak-table))
(define (fill tag n keep)
  (if (= n 0)
      keep
      (let ((k (list tag n)))
        (table-set! t k (cons k n))
        (fill tag (- n 1) (if (= 0 (remainder n 10)) (cons k keep) keep)))))
(define a (spawn (lambda () (fill 'a 2000 '()))))
(define b (spawn (lambda () (fill 'b 2000 '()))))
(define kept (append (join a) (join b)))
(gc)
(display (list (length kept) (table-count t)))
(display (table-ref t (car kept)))
)") == "(400 400)((a 10) . 10)");
  }
}
