#!/usr/bin/env bash
# `./bazelw run //bench:libgc -- [options]`: bench/libgc_bench.py in the workspace.
set -euo pipefail
if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then
  echo "run through: ./bazelw run //bench:libgc -- [options]   (or bench/libgc_bench.py directly)" >&2
  exit 2
fi
exec python3 "$BUILD_WORKSPACE_DIRECTORY/bench/libgc_bench.py" "$@"
