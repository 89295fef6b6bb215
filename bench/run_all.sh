#!/usr/bin/env bash
# `./bazelw run //bench:all -- [run.py options]`: runs bench/run.py in the
# workspace on the binaries Bazel just built as this target's data.
set -euo pipefail
if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then
  echo "run through: ./bazelw run //bench:all -- [options]   (or bench/run.py directly)" >&2
  exit 2
fi
# The working directory is this target's runfiles tree: bench/... sits here.
exec python3 "$BUILD_WORKSPACE_DIRECTORY/bench/run.py" --bindir="$PWD/bench" "$@"
