#!/usr/bin/env bash
# base_race_test (lookups from threads that do not own the objects) on both
# libraries; under --config=tsan ours is instrumented and a race fails it.
# usage: base_race_test.sh LIBGC_SO TEST_BINARY
set -euo pipefail
. "$(dirname "$0")/tests/common.sh"  # the test runs as examples/libgc/NAME
use_libgc "$1"
run_on_both "$2"
