#!/usr/bin/env bash
# Runs boehm_api_test (a Boehm client linked with -lgc) with Debian's libgc,
# which checks the test itself against the reference, then with tagheap's
# libgc.so.1 through LD_LIBRARY_PATH (GC_PRINT_STATS proves it was loaded),
# then the out-of-memory case under GC_MAXIMUM_HEAP_SIZE with both.
# usage: boehm_api_test.sh LIBGC_SO TEST_BINARY
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
bin=$2

echo "--- every GC_ symbol Debian's libgc users import is exported"
missing=$(grep -v '^#' "$(dirname "$0")/tests/debian_imports.txt" |
  grep -vxFf <(nm -D --defined-only "$LIBDIR/libgc.so.1" | awk '{print $3}') || true)
[[ -z "$missing" ]] || { echo "FAILED: libgc.so.1 does not export:" $missing; exit 1; }
echo "--- with Debian's libgc"
"$bin"
echo "--- with tagheap's libgc.so.1"
GC_PRINT_STATS=1 LD_LIBRARY_PATH=$LIBDIR "$bin" 2> "$WORK/stats" || { tail -30 "$WORK/stats"; exit 1; }
grep -v '^tagheap libgc: collection ' "$WORK/stats" || true
grep -q '^tagheap libgc: [0-9]* collections' "$WORK/stats" || { echo "FAILED: tagheap's libgc was not loaded"; exit 1; }
echo "--- out of memory under GC_MAXIMUM_HEAP_SIZE=64M"
GC_MAXIMUM_HEAP_SIZE=64M "$bin" oom 2>/dev/null
GC_MAXIMUM_HEAP_SIZE=64M LD_LIBRARY_PATH=$LIBDIR "$bin" oom
echo "--- the same limit by GC_set_max_heap_size"
run_on_both "$bin" oom_set
echo "--- GC_FREE_SPACE_DIVISOR and GC_set_free_space_divisor"
for lib in "" "$LIBDIR"; do
  out=$(LD_LIBRARY_PATH=$lib "$bin" divisor)
  [[ "$out" == "divisor 3" ]] || { echo "FAILED: default divisor: $out"; exit 1; }
  out=$(GC_FREE_SPACE_DIVISOR=5 LD_LIBRARY_PATH=$lib "$bin" divisor)
  [[ "$out" == "divisor 5" ]] || { echo "FAILED: GC_FREE_SPACE_DIVISOR=5 (${lib:-the Debian libgc}): $out"; exit 1; }
done
echo "--- the heap keeps its high-water mark"
run_on_both "$bin" high_water
echo "--- allocation counts whole granules, and larger objects their size class"
run_on_both "$bin" granules
echo "--- a grown heap is filled before the next collection"
run_on_both "$bin" growing
echo "--- the rest of what Debian's libgc users import (setters, debug allocation, GC_stackbottom on a fiber)"
run_on_both "$bin" compat
echo "--- null and misaligned link slots are refused (tagheap's library only: bdwgc aborts)"
LD_LIBRARY_PATH=$LIBDIR "$bin" bad_links 2> "$WORK/bad_links"
grep -q "bad link 0 to GC_general_register_disappearing_link" "$WORK/bad_links" ||
  { cat "$WORK/bad_links"; echo "FAILED: no warning for a null link"; exit 1; }
echo "--- GC_set_dont_expand(1) collects rather than grows"
for lib in "" "$LIBDIR"; do
  plain=$(LD_LIBRARY_PATH=$lib "$bin" dont_expand 0)
  tight=$(LD_LIBRARY_PATH=$lib "$bin" dont_expand 1)
  name="Debian's libgc"
  [[ -z "$lib" ]] || name="tagheap's libgc"
  echo "$name: $plain collections, $tight with GC_set_dont_expand(1)"
  (( tight * 2 > plain * 3 )) || { echo "FAILED: dont_expand made $tight collections against $plain"; exit 1; }
done
echo "--- links registered, moved and unregistered at random, against a model"
run_on_both "$bin" link_churn
echo "--- an expansion past what the kernel would map fails and changes nothing"
run_on_both "$bin" expand_absurd
GC_INITIAL_HEAP_SIZE=100000G LD_LIBRARY_PATH=$LIBDIR "$bin" expand_absurd 2> "$WORK/initial"
grep -q "GC_INITIAL_HEAP_SIZE=.* is more than the heap may grow to .*; ignored" "$WORK/initial" ||
  { cat "$WORK/initial"; echo "FAILED: no warning for GC_INITIAL_HEAP_SIZE=100000G"; exit 1; }
echo "--- GC_dump: per kind on tagheap's library, from a finalizer too"
"$bin" dump > /dev/null
LD_LIBRARY_PATH=$LIBDIR "$bin" dump 2> "$WORK/dump"
for want in 'tag 1 (scanned): 1 pages' 'tag 2 (atomic): 1 pages' 'tag 3 (scanned, uncollectable): 1 pages'; do
  grep -qF "$want" "$WORK/dump" || { cat "$WORK/dump"; echo "FAILED: GC_dump printed no '$want'"; exit 1; }
done
echo "--- link and finalizer tables collect before they grow past 4096 entries"
run_on_both "$bin" table_growth
echo "--- fork: the child collects, looks up and starts a thread"
run_on_both timeout 60 "$bin" fork
run_on_both "$bin" exact_sizes
echo "--- a collection asked for inside a collection is ignored (tagheap's library only: bdwgc recurses)"
LD_LIBRARY_PATH=$LIBDIR "$bin" nested 2> "$WORK/nested"
grep -q "no heap statistics from inside a collection" "$WORK/nested" || { cat "$WORK/nested"; echo "FAILED: GC_dump inside a collection"; exit 1; }
echo "--- helper markers: none until the client goes multi-threaded, then one per CPU but one (GC_MARKERS unset)"
for lib in "" "$LIBDIR"; do
  out=$(env -u GC_MARKERS LD_LIBRARY_PATH=$lib "$bin" markers)
  read -r _ before after <<< "$out"
  # (bdwgc counts the CPUs online, tagheap the ones the process may use: compare with nproc loosely)
  if [[ "$before" != 0 ]] || { (( $(nproc) >= 2 )) && (( after < 1 )); }; then
    echo "FAILED: ${lib:-the Debian libgc}, $(nproc) CPUs: $out"; exit 1
  fi
  echo "ok: $out (${lib:-the Debian libgc})"
done
out=$(GC_MARKERS=2 LD_LIBRARY_PATH=$LIBDIR "$bin" markers)  # asked for: from the first collection
[[ "$out" == "helpers 1 1" ]] || { echo "FAILED: tagheap's libgc, GC_MARKERS=2: $out"; exit 1; }
echo "ok: $out with GC_MARKERS=2"
echo "--- GC_set_markers_count(1) before GC_INIT: no helper; GC_parallel agrees"
for lib in "" "$LIBDIR"; do
  out=$(env -u GC_MARKERS LD_LIBRARY_PATH=$lib "$bin" markers_count)
  [[ "$out" == "helpers 0, GC_parallel 0" ]] || { echo "FAILED: ${lib:-the Debian libgc}: $out"; exit 1; }
done
echo "ok: $out"
echo "--- mark procedures asking for the markers (tagheap's library only: bdwgc deadlocks in GC_start_mark_threads there)"
LD_LIBRARY_PATH=$LIBDIR timeout 60 "$bin" marker_calls
echo "--- GC_enable_incremental: the program runs on; tagheap's library stays stop-the-world"
out=$("$bin" incremental)
[[ "$out" == "incremental mode "* ]] || { echo "FAILED: Debian's libgc: $out"; exit 1; }
out=$(LD_LIBRARY_PATH=$LIBDIR "$bin" incremental)
[[ "$out" == "incremental mode 0" ]] || { echo "FAILED: tagheap's libgc: $out"; exit 1; }
