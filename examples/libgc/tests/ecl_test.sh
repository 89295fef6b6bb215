#!/usr/bin/env bash
# ECL (Embeddable Common Lisp, Debian's ecl and libecl.so.21.2) on tagheap's
# libgc.so.1: each program runs twice, on Debian's libgc and on ours
# (LD_LIBRARY_PATH); standard output, standard error and exit status must
# be identical, and ours must have collected (GC_PRINT_STATS, whose lines
# are taken out of our standard error before comparing). Also `ecl --eval`. ECL pushes
# its own Lisp stacks as roots (GC_push_other_roots, GC_push_conditional,
# GC_set_mark_bit), so control.lsp fails if those are not honoured.
# usage: ecl_test.sh LIBGC_SO PROGRAM.lsp...
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
shift
export HOME=$WORK
failed=0

run_both() {  # NAME ARGS...: runs ecl --norc ARGS --eval (quit) with both libraries and compares
  local name=$1 rc_ref=0 rc=0
  shift
  ecl --norc "$@" --eval '(quit)' > "$WORK/$name.ref" 2> "$WORK/$name.referr" || rc_ref=$?
  GC_PRINT_STATS=1 LD_PRELOAD=$SANITIZER_PRELOAD LD_LIBRARY_PATH=$LIBDIR \
    ecl --norc "$@" --eval '(quit)' > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
  grep -av '^tagheap libgc: ' "$WORK/$name.err" > "$WORK/$name.err.program" || true
  local collections
  collections=$(sed -n 's/^tagheap libgc: \([0-9]*\) collections.*/\1/p' "$WORK/$name.err")
  [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ] && cp "$WORK/$name.out" "$WORK/$name.err" "$TEST_UNDECLARED_OUTPUTS_DIR/" || true
  if [ -z "$collections" ]; then
    echo "FAILED $name: no statistics from tagheap's libgc (exit $rc)"; tail -20 "$WORK/$name.err"; failed=1
  elif [ "$rc" != "$rc_ref" ] || ! cmp -s "$WORK/$name.ref" "$WORK/$name.out" ||
       ! cmp -s "$WORK/$name.referr" "$WORK/$name.err.program"; then
    echo "FAILED $name: exit $rc (stock $rc_ref), output differs:"
    diff "$WORK/$name.ref" "$WORK/$name.out" | head -20
    diff "$WORK/$name.referr" "$WORK/$name.err.program" | head -20
    failed=1
  else
    echo "ok $name: $(wc -l < "$WORK/$name.out") identical lines, $collections collections"
  fi
}

run_both ecl-eval --eval '(print (length (loop for i below 300000 collect (make-string 3 :initial-element #\a))))'
for program in "$@"; do
  run_both "$(basename "$program" .lsp)" --load "$program"
done
# The stacks ECL pushes and the threads again with two markers (GC_MARKERS=2,
# which Debian's libgc reads too).
for program in "$@"; do
  case "$(basename "$program")" in
    control.lsp | threads.lsp)
      name="$(basename "$program" .lsp)-2markers"
      GC_MARKERS=2 run_both "$name" --load "$program"
      if ! grep -q ', 2 markers' "$WORK/$name.err"; then
        echo "FAILED $name: no collection ran with 2 markers"; failed=1
      fi
      ;;
  esac
done
exit $failed
