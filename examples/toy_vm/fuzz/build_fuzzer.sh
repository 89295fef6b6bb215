#!/usr/bin/env bash
# Builds the libFuzzer target for the toy VM's reader (read_input.h) with
# clang, outside Bazel (Bazel 4.2.3 here uses gcc, which has no libFuzzer):
#
#   examples/toy_vm/fuzz/build_fuzzer.sh [OUT]   # default OUT: /tmp/tagheap-fuzz/fuzz_reader
#
# Needs Debian's clang and libclang-rt-14-dev (bazelw installs both). Compiles
# the allocator, the collector pieces the VM uses and the VM's sources
# (not main.cc, not the tests) with TAGHEAP_CHECKED.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${1:-/tmp/tagheap-fuzz/fuzz_reader}"
CXX="${CXX_FUZZ:-clang++}"
mkdir -p "$(dirname "$out")"
srcs=()
for f in "$root"/alloc/*.cc "$root"/gc/internal/*.cc "$root"/examples/toy_vm/*.cc; do
  case "$f" in *_test.cc | */main.cc) ;; *) srcs+=("$f") ;; esac
done
srcs+=("$root/gc/heap_map.cc" "$root/gc/mark_sweep.cc" "$root/gc/world.cc" "$root/gc/chrome_trace.cc"
       "$root/examples/toy_vm/fuzz/read_input.cc" "$root/examples/toy_vm/fuzz/fuzz_main.cc")
"$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer -mpopcnt -fno-strict-aliasing \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DTAGHEAP_ASAN=1 -DTAGHEAP_CHECKED=1 -I"$root" \
  "${srcs[@]}" -o "$out" -pthread
echo "$out"
