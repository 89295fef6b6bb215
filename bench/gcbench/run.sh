#!/usr/bin/env bash
# Runs GCBench and binary-trees for tagheap, Boehm and mimalloc, REPS times
# each (default 5), alternating the variants, and prints the median wall
# time and peak RSS of each with ratios to Boehm.
#   bench/gcbench/run.sh [REPS] [BINARY_TREES_DEPTH]
# Builds with ./bazelw; set BAZEL_ARGS (e.g. --output_base=/tmp/x) if needed.
set -euo pipefail
reps=${1:-5}
depth=${2:-18}
cd "$(dirname "$0")/../.."
variants=(tagheap boehm mimalloc)
targets=()
for b in gcbench binary_trees; do for v in "${variants[@]}"; do targets+=("//bench/gcbench:${b}_$v"); done; done
# shellcheck disable=SC2086
./bazelw ${BAZEL_ARGS:-} build "${targets[@]}" >/dev/null 2>&1
# shellcheck disable=SC2086
bin="$(./bazelw ${BAZEL_ARGS:-} info bazel-bin 2>/dev/null)/bench/gcbench"
out=$(mktemp)
for ((r = 0; r < reps; r++)); do
  for v in "${variants[@]}"; do
    "$bin/gcbench_$v" | grep -v '^#' >>"$out"
    "$bin/binary_trees_$v" "$depth" | grep -v '^#' >>"$out"
  done
done
python3 - "$out" "$depth" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    bench, variant, ms, rss, coll = line.split()
    rows.setdefault((bench, variant), []).append((float(ms), int(rss), int(coll)))
print(f"{'benchmark':<22} {'variant':<9} {'runs':>4} {'median ms':>10} {'x boehm':>8} {'peak RSS KiB':>13} {'x boehm':>8} {'GCs':>5}")
for bench in ("gcbench", "binarytrees"):
    base = rows.get((bench, "boehm"))
    bms = statistics.median(x[0] for x in base) if base else None
    brss = statistics.median(x[1] for x in base) if base else None
    name = bench if bench == "gcbench" else f"binarytrees({sys.argv[2]})"
    for v in ("tagheap", "boehm", "mimalloc"):
        xs = rows.get((bench, v))
        if not xs: continue
        ms = statistics.median(x[0] for x in xs); rss = statistics.median(x[1] for x in xs)
        coll = int(statistics.median(x[2] for x in xs))
        print(f"{name:<22} {v:<9} {len(xs):>4} {ms:>10.1f} {ms / bms:>8.2f} {rss:>13.0f} {rss / brss:>8.2f} {coll:>5}")
PY
rm -f "$out"
