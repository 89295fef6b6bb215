# common.sh (sourced by the tests): use_libgc LIBGC_SO sets up what every
# run on tagheap's library needs:
#   LIBDIR             a directory holding libgc.so.1, for LD_LIBRARY_PATH
#   SANITIZER_PRELOAD  the sanitizer runtime when the library was built with
#                      one (the program loading it was not, so the runtime
#                      must come first); empty for a plain build
#   WORK               a scratch directory
# and ASAN_OPTIONS: no leak checking (w3m's and guile's own malloc leaks are
# not ours to report) and no fake stacks (locals moved to the heap are
# invisible to a conservative stack scan; bdwgc has the same limit).
use_libgc() {
  local lib
  lib=$(readlink -f "$1")
  LIBDIR=$(mktemp -d)
  ln -s "$lib" "$LIBDIR/libgc.so.1"
  SANITIZER_PRELOAD=$(ldd "$lib" | grep -oE '/[^ ]*lib(a|t)san\.so[^ ]*' | head -1 || true)
  WORK=${TEST_TMPDIR:-$(mktemp -d)}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0:detect_stack_use_after_return=0
}

# run_on_both BIN ARGS...: runs a Boehm client with Debian's libgc (which
# checks the test itself), then with tagheap's; fails if either fails.
run_on_both() {
  echo "--- $(basename "$1") $*: with Debian's libgc"
  "$@"
  echo "--- with tagheap's libgc.so.1"
  LD_LIBRARY_PATH=$LIBDIR "$@"
}
