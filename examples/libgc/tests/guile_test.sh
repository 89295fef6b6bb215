#!/usr/bin/env bash
# Guile 3.0 on tagheap's libgc.so.1: Debian's guile runs each program twice,
# on Debian's libgc and on ours (LD_LIBRARY_PATH); standard output and exit
# status must be identical, and ours must have collected (GC_PRINT_STATS).
# Also `guile -c`. Programs are read without auto-compilation, so Guile's
# evaluator (itself allocating) runs them.
# usage: guile_test.sh LIBGC_SO PROGRAM.scm...
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
shift
export HOME=$WORK GUILE_AUTO_COMPILE=0
failed=0

# Each run has a time limit, so a hang names its run instead of timing the
# whole test out: the reference run (Debian's libgc, not under test) is
# tried again once if it hangs, as Guile 3.0.8 on Debian's libgc was seen
# to (guile_threads_test in BUILD; once in CI, a whole guile_test under
# ASan timed out without saying which run); ours hanging fails the test.
run_both() {  # NAME ARGS...: runs guile ARGS with both libraries and compares
  local name=$1 rc_ref=0 rc=0
  shift
  timeout 60 guile "$@" > "$WORK/$name.ref" 2> "$WORK/$name.referr" || rc_ref=$?
  if [ "$rc_ref" = 124 ]; then
    echo "note $name: the reference run on Debian's libgc hung (60 s); running it again"
    rc_ref=0
    timeout 60 guile "$@" > "$WORK/$name.ref" 2> "$WORK/$name.referr" || rc_ref=$?
  fi
  GC_PRINT_STATS=1 LD_PRELOAD=$SANITIZER_PRELOAD LD_LIBRARY_PATH=$LIBDIR \
    timeout 150 guile "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
  if [ "$rc" = 124 ]; then
    echo "FAILED $name: the run on tagheap's libgc hung (150 s); its last collections:"
    grep '^tagheap libgc: collection ' "$WORK/$name.err" | tail -3 || true
    failed=1
    return
  fi
  local collections
  collections=$(sed -n 's/^tagheap libgc: \([0-9]*\) collections.*/\1/p' "$WORK/$name.err")
  [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ] && cp "$WORK/$name.err" "$WORK/$name.out" "$TEST_UNDECLARED_OUTPUTS_DIR/" || true
  if [ -z "$collections" ]; then
    echo "FAILED $name: no statistics from tagheap's libgc (exit $rc)"; grep -v '^tagheap libgc: collection ' "$WORK/$name.err" | tail -20; failed=1
  elif [ "$rc" != "$rc_ref" ] || ! cmp -s "$WORK/$name.ref" "$WORK/$name.out"; then
    echo "FAILED $name: exit $rc (stock $rc_ref), output differs:"; diff "$WORK/$name.ref" "$WORK/$name.out" | head -20
    grep -v '^tagheap libgc: collection ' "$WORK/$name.err" | tail -20; failed=1
  else
    echo "ok $name: $(wc -l < "$WORK/$name.out") identical lines, $collections collections"
  fi
}

run_both guile-c -c '(display (length (let loop ((i 0) (acc (list))) (if (= i 300000) acc (loop (+ i 1) (cons (make-string 3 #\a) acc)))))) (newline)'
for program in "$@"; do
  run_both "$(basename "$program" .scm)" --no-auto-compile "$program"
done
# Weak tables, guardians and Guile's mark procedures again with two markers
# (GC_MARKERS=2, which stock bdwgc reads too): a helper thread then runs
# mark procedures and marks in the pauses.
for program in "$@"; do
  case "$(basename "$program")" in
    weak.scm | closures.scm)
      name="$(basename "$program" .scm)-2markers"
      GC_MARKERS=2 run_both "$name" --no-auto-compile "$program"
      if ! grep -q ', 2 markers' "$WORK/$name.err"; then
        echo "FAILED $name: no collection ran with 2 markers"; failed=1
      fi
      ;;
  esac
done
exit $failed
