#!/usr/bin/env python3
"""Builds the benchmarks, runs them side by side, prints a table.

    bench/run.py [--rounds=5] [--only=churn,larson,xfree,walk,isolation]
                 [--no-build] [--output_base=DIR]

Each round runs every workload once per allocator, the allocators in a
rotated order each round (A B C D, B C D A, ...), so drift on a shared
machine (other builds, thermal) spreads over all of them instead of one.
Reports the median of the rounds, and writes bench/results/results.csv
(summary) and bench/results/runs.csv (every run).

Benchmarks print `workload allocator value peak_rss_kib` lines; value is ns
per op (churn, larson), ns per block (xfree, walk*) or a plain ratio
(isolation_ratio_*). Ratios in the table are tagheap's value over the peer's:
below 1.0 tagheap is faster.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALLOCATORS = ["tagheap", "mimalloc", "jemalloc", "glibc"]

# group -> list of (label, binary, args)
GROUPS = {
    "churn": [(a, "churn_" + a, []) for a in ALLOCATORS],
    "larson": [(a, "larson_" + a, []) for a in ALLOCATORS],
    "xfree": [(a, "xfree_" + a, []) for a in ALLOCATORS],
    "walk": [(m, "walk", [m]) for m in ["tagheap", "tagheap_c", "mimalloc"]],
    "isolation": [("isolation", "walk", ["isolation"])],
}
UNITS = {"churn": "ns/op", "larson": "ns/op", "xfree": "ns/block"}


def bazel(args, output_base):
    cmd = [os.path.join(ROOT, "bazelw")]
    if output_base:
        cmd.append("--output_base=" + output_base)
    # --symlink_prefix=/: leave the workspace's bazel-* links alone (they may
    # belong to someone else's output base).
    return cmd + args[:1] + ["--symlink_prefix=/"] + args[1:]


def source_version():
    """HEAD plus a hash of uncommitted changes under alloc/ and gc/."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "alloc", "gc"], cwd=ROOT, capture_output=True).stdout
        if not diff:
            return head
        import hashlib
        return f"{head}+dirty:{hashlib.sha1(diff).hexdigest()[:8]}"
    except OSError:
        return "unknown"


def build(output_base):
    print("building //bench:all (-c opt) ...", file=sys.stderr, flush=True)
    subprocess.run(bazel(["build", "-c", "opt", "//bench:all"], output_base), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run(bazel(["info", "-c", "opt", "bazel-bin"], output_base), cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return os.path.join(out.stdout.strip(), "bench")


def run_one(bindir, binary, args):
    out = subprocess.run([os.path.join(bindir, binary)] + args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    rows = []
    for line in out.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        workload, allocator, value, rss = line.split()
        rows.append((workload, allocator, float(value), int(rss)))
    return rows


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=",".join(GROUPS))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--output_base", default=os.environ.get("BENCH_OUTPUT_BASE", ""))
    ap.add_argument("--bindir", default="", help="use binaries from here (implies --no-build)")
    opts = ap.parse_args()
    groups = [g.strip() for g in opts.only.split(",") if g.strip()]
    for g in groups:
        if g not in GROUPS:
            raise SystemExit(f"unknown group {g}; known: {', '.join(GROUPS)}")

    if opts.bindir:
        bindir = opts.bindir
    elif opts.no_build:
        out = subprocess.run(bazel(["info", "-c", "opt", "bazel-bin"], opts.output_base), cwd=ROOT, check=True,
                             capture_output=True, text=True)
        bindir = os.path.join(out.stdout.strip(), "bench")
    else:
        bindir = build(opts.output_base)

    version = source_version()
    print(f"# tagheap sources: {version}", file=sys.stderr)
    load = os.getloadavg()
    print(f"# load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cpus",
          file=sys.stderr)
    results = {}  # (workload, allocator) -> list of (value, rss)
    raw = []
    total = opts.rounds * sum(len(GROUPS[g]) for g in groups)
    done = 0
    t_start = time.time()
    for r in range(opts.rounds):
        for g in groups:
            jobs = GROUPS[g]
            k = r % len(jobs)
            for label, binary, args in jobs[k:] + jobs[:k]:  # rotated: A B C D, B C D A, ...
                done += 1
                t0 = time.time()
                rows = run_one(bindir, binary, args)
                dt = time.time() - t0
                shown = "  ".join(f"{w}={v:.3f}" for w, _, v, _ in rows)
                print(f"[{done:3}/{total}] round {r + 1} {g:9} {label:10} {dt:5.1f}s  {shown}",
                      file=sys.stderr, flush=True)
                for w, a, v, rss in rows:
                    results.setdefault((w, a), []).append((v, rss))
                    raw.append((r + 1, w, a, v, rss))
    elapsed = time.time() - t_start
    load = os.getloadavg()

    # Summary rows, grouped by workload in first-seen order.
    order = []
    for key in results:
        if key[0] not in order:
            order.append(key[0])
    summary = []
    for w in order:
        med = {a: statistics.median(v for v, _ in results[(w2, a)]) for (w2, a) in results if w2 == w}
        peers = {a: v for a, v in med.items() if not a.startswith("tagheap")}
        is_ratio = "ratio" in w
        best_peer = min(peers.values()) if peers and not is_ratio else None
        mim = peers.get("mimalloc") if not is_ratio else None
        for a in sorted(med, key=lambda a: (not a.startswith("tagheap"), a)):
            vals = [v for v, _ in results[(w, a)]]
            rss = max(x for _, x in results[(w, a)])
            summary.append({
                "workload": w,
                "allocator": a,
                "median": med[a],
                "min": min(vals),
                "max": max(vals),
                "runs": len(vals),
                "peak_rss_kib": rss,
                "ratio_best_peer": med[a] / best_peer if best_peer else None,
                "ratio_mimalloc": med[a] / mim if mim else None,
            })

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "allocator", "unit", "median", "min", "max", "runs", "peak_rss_kib",
                     "ratio_to_best_peer", "ratio_to_mimalloc", "sources"])
        for s in summary:
            unit = "ratio" if "ratio" in s["workload"] else UNITS.get(s["workload"], "ns/live_block")
            wr.writerow([s["workload"], s["allocator"], unit, f"{s['median']:.3f}", f"{s['min']:.3f}",
                         f"{s['max']:.3f}", s["runs"], s["peak_rss_kib"],
                         "" if s["ratio_best_peer"] is None else f"{s['ratio_best_peer']:.3f}",
                         "" if s["ratio_mimalloc"] is None else f"{s['ratio_mimalloc']:.3f}", version])
    with open(os.path.join(HERE, "results", "runs.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["round", "workload", "allocator", "value", "peak_rss_kib"])
        wr.writerows(raw)

    print()
    print(f"{'workload':22} {'allocator':10} {'median':>9} {'unit':>9} {'spread':>7} {'peak RSS':>10} "
          f"{'/best peer':>10} {'/mimalloc':>9}")
    last = None
    for s in summary:
        if last is not None and s["workload"] != last:
            print()
        last = s["workload"]
        unit = "ratio" if "ratio" in s["workload"] else UNITS.get(s["workload"], "ns/block")
        spread = (s["max"] - s["min"]) / s["median"] * 100 if s["median"] else 0
        print(f"{s['workload']:22} {s['allocator']:10} {s['median']:9.3f} {unit:>9} {spread:6.0f}% "
              f"{s['peak_rss_kib'] / 1024:8.1f}Mi {fmt_ratio(s['ratio_best_peer']):>10} "
              f"{fmt_ratio(s['ratio_mimalloc']):>9}")
    print()
    speedups = []
    for w in order:
        if "ratio" in w:
            continue
        med = {a: statistics.median(v for v, _ in results[(w2, a)]) for (w2, a) in results if w2 == w}
        if "tagheap" in med and "mimalloc" in med:
            speedups.append(f"{w} {med['mimalloc'] / med['tagheap']:.2f}")
    if speedups:
        print("# mimalloc/tagheap (above 1: tagheap faster): " + ", ".join(speedups))
    print(f"# tagheap sources: {version}")
    print(f"# {opts.rounds} rounds in {elapsed:.0f}s; spread = (max-min)/median over rounds; "
          f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# results: {os.path.relpath(os.path.join(HERE, 'results', 'results.csv'), ROOT)}, "
          f"every run: bench/results/runs.csv")


if __name__ == "__main__":
    main()
