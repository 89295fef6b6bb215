#!/usr/bin/env bash
# base_race_test (lookups from threads that do not own the objects) on both
# libraries (ours with either handshake of threads.h); under --config=tsan
# ours is instrumented and a race fails it.
# usage: base_race_test.sh LIBGC_SO TEST_BINARY
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
run_on_both "$2"
# Again on ours with the symmetric handshake, as where membarrier(2) is
# missing (threads.h).
echo "--- with tagheap's libgc.so.1, TAGHEAP_LIBGC_NO_MEMBARRIER=1"
LD_LIBRARY_PATH=$LIBDIR TAGHEAP_LIBGC_NO_MEMBARRIER=1 "$2"
