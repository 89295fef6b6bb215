#!/usr/bin/env bash
# A missing write barrier is caught: with set-cdr!'s barrier left out
# (--omit-barrier=set-cdr!, a test-only switch), --generational --verify
# stops at the first minor collection after an old pair's cdr was set to a
# young list, naming the pair; with the barrier the same program runs.
# usage: barrier_test.sh path/to/tvm
set -u
tvm=$1
dir=${TEST_TMPDIR:-/tmp}
cat >"$dir/barrier.lisp" <<'LISP'
(define old (cons 'old '()))
(gc)                                  ; a full collection: the pair is old
(set-cdr! old (list 1 2 3))           ; old -> young, reachable only through old
(define (churn n) (if (> n 0) (begin (make-vector 64 0) (churn (- n 1)))))
(churn 5000)                          ; minor collections
(display (cdr old))
LISP
fail() { echo "FAIL: $*"; exit 1; }

out=$("$tvm" --generational --verify --gc-budget=64K --stats "$dir/barrier.lisp" 2>"$dir/ok.err") ||
  fail "with the barrier: exit $?: $(cat "$dir/ok.err")"
[ "$out" = "(1 2 3)" ] || fail "with the barrier: printed '$out'"
grep -Eq "generational: [1-9][0-9]* minor" "$dir/ok.err" || fail "no minor collection: $(cat "$dir/ok.err")"

"$tvm" --generational --verify --gc-budget=64K --omit-barrier=set-cdr! "$dir/barrier.lisp" >/dev/null 2>"$dir/bad.err" &&
  fail "without the barrier: the program ran to its end"
grep -q "minor collection" "$dir/bad.err" || fail "without the barrier: $(cat "$dir/bad.err")"
grep -q "was not followed by write_barrier" "$dir/bad.err" || fail "without the barrier: $(cat "$dir/bad.err")"
echo "PASS: the missing barrier was reported: $(grep -m1 'write_barrier' "$dir/bad.err")"
