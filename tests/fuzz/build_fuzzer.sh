#!/usr/bin/env bash
# Builds the libFuzzer target for the operation interpreter (ops.h) with
# clang, outside Bazel (Bazel 4.2.3 here uses gcc, which has no libFuzzer):
#
#   tests/fuzz/build_fuzzer.sh [OUT]        # default OUT: /tmp/tagheap-fuzz/fuzz_ops
#
# Needs Debian's clang and libclang-rt-14-dev (bazelw installs both).
# TAGHEAP_CHECKED turns on the allocator's expensive invariant checks, so a
# broken invariant is caught where it breaks, not when the model notices.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-/tmp/tagheap-fuzz/fuzz_ops}"
CXX="${CXX_FUZZ:-clang++}"
mkdir -p "$(dirname "$out")"
srcs=()
for f in "$root"/alloc/*.cc "$root"/gc/internal/*.cc; do
  case "$f" in *_test.cc) ;; *) srcs+=("$f") ;; esac
done
srcs+=("$root/gc/mark_sweep.cc" "$root/tests/fuzz/ops.cc" "$root/tests/fuzz/fuzz_main.cc")
"$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer -mpopcnt -fno-strict-aliasing \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DTAGHEAP_ASAN=1 -DTAGHEAP_CHECKED=1 -I"$root" \
  "${srcs[@]}" -o "$out" -pthread
echo "$out"
