#!/usr/bin/env bash
# malloc_stop_test (collections while other threads are inside malloc) on
# both libraries, with one malloc arena and no tcache, under a timeout: a
# collector that calls malloc or free while the world is stopped hangs.
# usage: malloc_stop_test.sh LIBGC_SO TEST_BINARY
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
export GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0
hang_is_failure() {
  local rc=0
  timeout 60 "$@" || rc=$?
  if [[ $rc == 124 ]]; then echo "FAILED: hung (deadlock: malloc while the world is stopped?)"; exit 1; fi
  return $rc
}
run_on_both hang_is_failure "$2"
# With a helper marker thread too: it must not malloc in the pause either.
echo "--- with tagheap's libgc.so.1, GC_MARKERS=2"
GC_MARKERS=2 LD_LIBRARY_PATH=$LIBDIR hang_is_failure "$2"
