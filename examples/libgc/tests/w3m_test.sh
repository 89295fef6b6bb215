#!/usr/bin/env bash
# w3m on tagheap's libgc.so.1: generated documents (a big table, deep
# nesting, thousands of links, long preformatted text, a several-MB mix) are
# dumped by Debian's w3m twice, with Debian's libgc and with ours through
# LD_LIBRARY_PATH. The dumps must be byte-identical, and ours must have
# collected (GC_PRINT_STATS makes it say how often).
# usage: w3m_test.sh LIBGC_SO GEN_HTML_PY
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
gen=$2
export HOME=$WORK  # w3m keeps its settings under ~/.w3m
failed=0
for kind in table nested links pre mixed; do
  doc=$WORK/$kind.html
  python3 "$gen" "$kind" "$doc"
  w3m -dump "$doc" > "$WORK/$kind.boehm"
  if ! GC_PRINT_STATS=1 LD_PRELOAD=$SANITIZER_PRELOAD LD_LIBRARY_PATH=$LIBDIR \
       w3m -dump "$doc" > "$WORK/$kind.tagheap" 2> "$WORK/$kind.stats"; then
    echo "FAILED $kind: w3m on tagheap's libgc exited non-zero"; tail -20 "$WORK/$kind.stats"; failed=1; continue
  fi
  collections=$(sed -n 's/^tagheap libgc: \([0-9]*\) collections.*/\1/p' "$WORK/$kind.stats")
  if [ -z "$collections" ]; then
    echo "FAILED $kind: no statistics from tagheap's libgc (was it loaded?)"; failed=1; continue
  fi
  if ! cmp -s "$WORK/$kind.boehm" "$WORK/$kind.tagheap"; then
    echo "FAILED $kind: the dumps differ"; diff "$WORK/$kind.boehm" "$WORK/$kind.tagheap" | head -20; failed=1; continue
  fi
  if [ "$collections" -lt 2 ]; then
    echo "FAILED $kind: only $collections collections"; failed=1; continue
  fi
  echo "ok $kind: $(wc -c < "$doc") bytes of HTML, identical $(wc -c < "$WORK/$kind.tagheap")-byte dump, $collections collections"
done
# The mixed document again with two markers (GC_MARKERS=2): a helper thread
# marks in every pause, allocating through the pause allocator; this test
# runs under --config=tsan, where a race between the markers fails it.
if ! GC_MARKERS=2 GC_PRINT_STATS=1 LD_PRELOAD=$SANITIZER_PRELOAD LD_LIBRARY_PATH=$LIBDIR \
     w3m -dump "$WORK/mixed.html" > "$WORK/mixed2.tagheap" 2> "$WORK/mixed2.stats"; then
  echo "FAILED mixed, 2 markers: w3m exited non-zero"; tail -20 "$WORK/mixed2.stats"; failed=1
elif ! cmp -s "$WORK/mixed.boehm" "$WORK/mixed2.tagheap"; then
  echo "FAILED mixed, 2 markers: the dumps differ"; failed=1
elif ! grep -q ', 2 markers' "$WORK/mixed2.stats"; then
  echo "FAILED mixed, 2 markers: no collection ran with 2 markers"; failed=1
else
  echo "ok mixed, 2 markers: identical dump, $(grep -c ', 2 markers (2 took part)' "$WORK/mixed2.stats") collections in which both marked"
fi
exit $failed
