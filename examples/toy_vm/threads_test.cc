// threads_test.cc: objects that outlive the thread that made them.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <istream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>

#include "examples/toy_vm/cli.h"
#include "examples/toy_vm/test_util.h"

using tvm::test::lisp;

namespace {

// Output that another thread can wait on (the VM writes it under its own
// lock; this one guards the text against the waiting reader).
class WatchedOutput : public std::streambuf {
 public:
  bool wait_for(const std::string& what, std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return text_.find(what) != std::string::npos; });
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c != traits_type::eof()) xsputn(reinterpret_cast<const char*>(&c), 1);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard lock(mu_);
    text_.append(s, static_cast<std::size_t>(n));
    cv_.notify_all();
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
};

// Input that hands out `first`, then blocks until `out` shows `marker` (or
// a deadline passes: gave_up()), then hands out `second`, then ends.
class GatedInput : public std::streambuf {
 public:
  GatedInput(std::string first, WatchedOutput& out, std::string marker, std::string second)
      : first_(std::move(first)), out_(out), marker_(std::move(marker)), second_(std::move(second)) {}
  bool gave_up() const { return gave_up_; }

 protected:
  int underflow() override {
    std::string* next = nullptr;
    if (part_ == 0) {
      next = &first_;
    } else if (part_ == 1) {
      gave_up_ = !out_.wait_for(marker_, std::chrono::seconds(30));
      next = &second_;
    } else {
      return traits_type::eof();
    }
    ++part_;
    setg(next->data(), next->data(), next->data() + next->size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string first_;
  WatchedOutput& out_;
  std::string marker_, second_;
  int part_ = 0;
  bool gave_up_ = false;
};

}  // namespace

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

// Issue 20: a thread that waits (sleep, join, a lock a waiting thread holds,
// the REPL's read, several threads stopping the world at once) is safe for
// a collection run by another thread, and its roots are still scanned.
TEST_SUITE("toy_vm.threads.waiting") {
  // A busy wait on flags set by the other threads just before they wait;
  // the waits last long enough that the collections below run while they
  // sit in them (a correct VM passes whatever the timing).
  const std::string kChurn = R"(
      (define (churn n) (if (> n 0) (begin (make-vector 100 0) (churn (- n 1))) 'done))
      (define (wait-for ready?) (if (not (ready?)) (wait-for ready?)))
  )";

  TEST_CASE("a collection while another thread sleeps goes ahead, and the sleeper's result survives") {
    auto r = lisp(kChurn + R"(
      (define ready #f)
      (define t (spawn (lambda () (let ((keep (list 'kept 1))) (set! ready #t) (sleep 1000) keep))))
      (wait-for (lambda () ready))
      (churn 2000)
      (gc)
      (display (join t)) (newline)
    )");
    CHECK(r.err == "");
    CHECK(r.rc == 0);
    CHECK(r.out == "(kept 1)\n");
  }

  TEST_CASE("collections while threads sit in join, one waiting for the thread and one for join's lock") {
    auto r = lisp(kChurn + R"(
      (define s-ready #f) (define j1-ready #f) (define j2-ready #f)
      (define sleeper (spawn (lambda () (set! s-ready #t) (sleep 1000) (list 'slept))))
      (define j1 (spawn (lambda () (set! j1-ready #t) (car (join sleeper)))))
      (define j2 (spawn (lambda () (set! j2-ready #t) (car (join sleeper)))))
      (wait-for (lambda () (and s-ready j1-ready j2-ready)))
      (churn 2000)
      (gc)
      (display (list (join j1) (join j2) (join sleeper)))
    )");
    CHECK(r.err == "");
    CHECK(r.rc == 0);
    CHECK(r.out == "(slept slept (slept))");
  }

  TEST_CASE("threads stopping the world at once (gc, heap-stats) each wait safely for the others") {
    auto r = lisp(R"(
      (define (stopper k) (lambda () (let loop ((i 0)) (when (< i 25) (gc) (heap-stats) (loop (+ i 1)))) k))
      (display (map join (map (lambda (k) (spawn (stopper k))) '(1 2 3 4))))
    )");
    CHECK(r.err == "");
    CHECK(r.rc == 0);
    CHECK(r.out.find("(1 2 3 4)") != std::string::npos);
  }

  TEST_CASE("the REPL waiting for input does not hold up a collection in a thread it spawned") {
    // stdin hands out the first lines, then waits until the spawned thread
    // has collected and said so (or gives up after a deadline, which is the
    // failure: the read held the collection up).
    WatchedOutput out;
    GatedInput in("(define (churn n) (if (> n 0) (begin (make-vector 100 0) (churn (- n 1))) 'done))\n"
                  "(define t (spawn (lambda () (let ((keep (vector 'v))) (churn 2000) (gc) (display \"collected\")"
                  " (newline) keep))))\n",
                  out, "collected", "(display (join t))\n");
    std::istream in_stream(&in);
    std::ostream out_stream(&out);
    std::ostringstream err;
    const char* argv[] = {"tvm", "--gc-budget=64K", "--verify"};
    const int rc = tvm::tvm_main(3, argv, in_stream, out_stream, err, false);
    CHECK_FALSE(in.gave_up());
    CHECK(err.str() == "");
    CHECK(rc == 0);
    CHECK(out.text() == "collected\n#(v)");
  }
}

TEST_SUITE("toy_vm.threads") {
  TEST_CASE("a thread that joins itself gets an error, not a deadlock") {
    auto r = lisp(R"(
      (define t #f) (define go #f)
      (set! t (spawn (lambda () (let wait () (if (not go) (wait))) (join t))))
      (set! go #t)
      (join t)
    )");
    CHECK(r.rc == 1);
    CHECK(r.err.find("join: thread 1 cannot join itself (in thread 1)") != std::string::npos);
    CHECK(r.err.find("join: thread 1 failed: join: thread 1 cannot join itself") != std::string::npos);
  }

  TEST_CASE("threads joining each other in a cycle get an error, not a deadlock") {
    auto r = lisp(R"(
      (define a #f) (define b #f) (define go #f)
      (define (wait-go) (if (not go) (wait-go)))
      (set! a (spawn (lambda () (wait-go) (join b) 'a)))
      (set! b (spawn (lambda () (wait-go) (join a) 'b)))
      (set! go #t)
      (join a)
    )");
    CHECK(r.rc == 1);
    CHECK(r.err.find("which would wait for it: a deadlock") != std::string::npos);
  }
}
