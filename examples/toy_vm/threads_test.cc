// threads_test.cc: objects that outlive the thread that made them.
#include <doctest/doctest.h>

#include "examples/toy_vm/test_util.h"

using tvm::test::lisp;

TEST_SUITE("toy_vm.threads") {
  TEST_CASE("objects surviving their thread's exit are intact after many collections") {
    auto r = lisp(R"(
      (define (build id n)
        (let loop ((i 0) (acc '()))
          (if (= i n) acc
              (loop (+ i 1) (cons (vector i (string-append "s" (number->string id)) (* 0.5 i)) acc)))))
      (define (ok? id l n)
        (let loop ((l l) (i (- n 1)))
          (cond ((null? l) (= i -1))
                ((and (= (vector-ref (car l) 0) i)
                      (equal? (vector-ref (car l) 1) (string-append "s" (number->string id)))
                      (= (vector-ref (car l) 2) (* 0.5 i)))
                 (loop (cdr l) (- i 1)))
                (else #f))))
      (define box (make-vector 8 #f))
      ; Eight threads: half hand their data back through join, half through a
      ; shared vector; all exit, abandoning their pages.
      (define ts (map (lambda (id) (spawn (lambda () (vector-set! box id (build id 400)) (build (+ id 50) 300))))
                      '(0 1 2 3 4 5 6 7)))
      (define joined (map join ts))
      (set! ts #f)
      ; Many collections, with new threads reclaiming the abandoned pages.
      (let loop ((k 0))
        (when (< k 30)
          (join (spawn (lambda () (build 99 200))))
          (gc)
          (loop (+ k 1))))
      (display (map (lambda (id) (ok? id (vector-ref box id) 400)) '(0 1 2 3 4 5 6 7)))
      (display (map (lambda (id l) (ok? (+ id 50) l 300)) '(0 1 2 3 4 5 6 7) joined))
    )",
                  {"--stats"});
    CHECK(r.rc == 0);
    CHECK(r.out == "(#t #t #t #t #t #t #t #t)(#t #t #t #t #t #t #t #t)");
    CHECK(r.err.find("pages abandoned: 0,") == std::string::npos);
    CHECK(r.err.find("reclaimed: 0\n") == std::string::npos);
  }

  TEST_CASE("threads allocating at once trigger collections from any thread") {
    auto r = lisp(R"(
      (define (sum l) (if (null? l) 0 (+ (car l) (sum (cdr l)))))
      (define (range n) (let loop ((i n) (acc '())) (if (= i 0) acc (loop (- i 1) (cons i acc)))))
      (define (work) (let loop ((k 0) (s 0)) (if (= k 100) s (loop (+ k 1) (+ s (sum (range 200)))))))
      (display (map join (map (lambda (i) (spawn work)) '(1 2 3 4))))
    )");
    CHECK(r.rc == 0);
    CHECK(r.out == "(2010000 2010000 2010000 2010000)");
  }

  TEST_CASE("an error in a thread is reported there and raised again by join") {
    auto r = lisp("(define t (spawn (lambda () (car 'x))))\n(join t)\n");
    CHECK(r.rc == 1);
    CHECK(r.err.find("t.lisp:1:29: error: car: expected a pair, got x (in thread 1)") != std::string::npos);
    CHECK(r.err.find("t.lisp:2:1: error: join: thread 1 failed: car: expected a pair, got x") != std::string::npos);
  }

  TEST_CASE("an unjoined thread is waited for at exit") {
    auto r = lisp("(spawn (lambda () (sleep 50) (display 'late)))");
    CHECK(r.rc == 0);
    CHECK(r.out == "late");
  }
}
