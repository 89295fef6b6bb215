#!/usr/bin/env python3
"""Every collection's pause over a binary-trees run: generational against not.

    bench/generational_pauses.py [--rounds=3] [--depth=21] [--no-build] [--output_base=DIR]
                                 [--results_dir=bench/results/generational/binary_trees]

A benchmark, not a test. Runs bench/gcbench/binary_trees_tagheap DEPTH with
gc::Options{} (stop-the-world, every collection full), with
GCB_GENERATIONAL=1 (minor collections unless a full one is due) and with
GCB_GENERATIONAL=1 GCB_MARKERS=1 (one marker thread), each with
GCB_PAUSE_LOG (gcbench/variant.h: every collection's start time, its own
pause_ns and its kind). Rounds interleaved, order rotated. Per run: wall
time, user and sys CPU, minor faults and peak RSS (os.wait4, through
policy_curve.run_one), the load average, and the pause figures of its log;
medians over rounds. Writes into --results_dir: runs.csv, summary.md,
pauses_<mode>.csv (the last round's log) and timeline.svg (one panel per
mode, pause ms on a log scale against time in the run, minor and full
collections in two colours). The peers run the same program beside them,
for time and memory only (their collectors give no pause log): Boehm in its
default mode and with GC_enable_incremental() (GCB_BOEHM_INCREMENTAL=1,
its generational mode), and mimalloc with explicit free (the floor).
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

import policy_curve
import svgplot

# The default markers are one per hardware thread; "1marker" sets one, which
# decides small minor pauses on a loaded machine (bench/README.md).
MODES = [("generational", {"GCB_GENERATIONAL": 1}), ("generational-1marker", {"GCB_GENERATIONAL": 1, "GCB_MARKERS": 1}),
         ("non-generational", {"GCB_GENERATIONAL": 0})]
PEERS = [("boehm", "binary_trees_boehm", {}), ("boehm-incremental", "binary_trees_boehm", {"GCB_BOEHM_INCREMENTAL": 1}),
         ("mimalloc", "binary_trees_mimalloc", {})]
KIND_COLOURS = {"minor": "#2ca02c", "full": "#d62728"}


def read_log(path):
    """[(t_ms, pause_ms, kind)] from a GCB_PAUSE_LOG file."""
    with open(path) as f:
        return [(float(t), float(d), kind) for t, d, kind in (line.strip().split(",") for line in f if line.strip())]


def quantile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def pause_figures(pauses):
    """What one run's log says: counts, quantiles and totals per kind."""
    out = {"collections": len(pauses), "pause_total_ms": sum(d for _, d, _ in pauses)}
    for kind in KIND_COLOURS:
        ds = [d for _, d, k in pauses if k == kind]
        out[kind + "s"] = len(ds)
        out[kind + "_p50_ms"] = quantile(ds, 0.5)
        out[kind + "_p99_ms"] = quantile(ds, 0.99)
        out[kind + "_max_ms"] = max(ds) if ds else float("nan")
    return out


def svg(logs, path, depth):
    w, panel_h, pad = 980, 260, 60
    h = pad + len(logs) * (panel_h + pad) + 20
    tmax = max((t + d for ps in logs.values() for t, d, _ in ps), default=1)
    parts = []
    for i, (mode, pauses) in enumerate(logs.items()):
        top = pad + i * (panel_h + pad)
        f = pause_figures(pauses)
        title = "binary-trees %d, %s (last round): " % (depth, mode) + ", ".join(
            "%d %s (p50 %.2f, max %.2f ms)" % (f[k + "s"], k, f[k + "_p50_ms"], f[k + "_max_ms"])
            for k in KIND_COLOURS if f[k + "s"])
        series = [(colour, [(t, d) for t, d, k in pauses if k == kind]) for kind, colour in KIND_COLOURS.items()]
        parts += svgplot.timeline((pad, top, w - 20, top + panel_h), series, tmax, title,
                                  "time since the program started, ms (0 to %.0f); pause ms on a log scale" % tmax,
                                  radius=2.2)
    parts += svgplot.legend(pad + 10, h - 16, [(c, k + " collection") for k, c in KIND_COLOURS.items()])
    with open(path, "w") as f:
        f.write(svgplot.document(w, h, parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--depth", type=int, default=21)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--output_base", default="")
    ap.add_argument("--results_dir", default=os.path.join(policy_curve.HERE, "results", "generational", "binary_trees"))
    opts = ap.parse_args()
    jobs = [policy_curve.Job("timeline", "binarytrees_%d" % opts.depth, "tagheap", mode, "binary_trees_tagheap",
                             [str(opts.depth)], env) for mode, env in MODES]
    jobs += [policy_curve.Job("timeline", "binarytrees_%d" % opts.depth, peer, peer, binary, [str(opts.depth)], env)
             for peer, binary, env in PEERS]
    tagheap_modes = {mode for mode, _ in MODES}
    if opts.no_build:
        bindir = os.path.join(policy_curve.ROOT, "bazel-bin", policy_curve.GCBENCH_DIR)
    else:
        bindir = policy_curve.build(opts, jobs)
    os.makedirs(opts.results_dir, exist_ok=True)
    tmp = tempfile.mkdtemp()
    runs, last_logs = [], {}
    for r in range(opts.rounds):
        shift = r % len(jobs)
        for job in jobs[shift:] + jobs[:shift]:
            if job.label not in tagheap_modes:
                run = policy_curve.run_one(bindir, job)
                run.update({"mode": job.label, "round": r})
                runs.append(run)
                print("# round %d %s: wall %.2f s, cpu %.2f s, rss %.0f MiB, load %.1f" % (
                    r, job.label, run["wall_s"], run["cpu_s"], run["peak_rss_mib"], run["load1"]),
                    file=sys.stderr, flush=True)
                continue
            log_path = os.path.join(tmp, "pauses.csv")
            job.env["GCB_PAUSE_LOG"] = log_path
            run = policy_curve.run_one(bindir, job)
            pauses = read_log(log_path)
            run.update(pause_figures(pauses))
            run.update({"mode": job.label, "round": r})
            runs.append(run)
            last_logs[job.label] = pauses
            print("# round %d %s: wall %.2f s, cpu %.2f s, %d collections (%d minor), max pause %.2f ms, "
                  "rss %.0f MiB, load %.1f" % (r, job.label, run["wall_s"], run["cpu_s"], run["collections"],
                                               run["minors"], max(d for _, d, _ in pauses), run["peak_rss_mib"],
                                               run["load1"]), file=sys.stderr, flush=True)
    keys = ["mode", "round", "wall_s", "cpu_s", "user_s", "sys_s", "minflt", "peak_rss_mib", "load1", "collections",
            "minors", "fulls", "pause_total_ms", "minor_p50_ms", "minor_p99_ms", "minor_max_ms", "full_p50_ms",
            "full_p99_ms", "full_max_ms"]
    policy_curve.write_csv(os.path.join(opts.results_dir, "runs.csv"),
                           [{k: run.get(k, "") for k in keys} for run in runs])
    for mode, pauses in last_logs.items():
        with open(os.path.join(opts.results_dir, "pauses_%s.csv" % mode), "w", newline="") as f:
            csv.writer(f).writerows([("t_ms", "pause_ms", "kind")] + pauses)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=policy_curve.ROOT, stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    lines = ["revision %s, %s UTC, binary-trees %d, %d rounds, medians over rounds" % (
                 rev, time.strftime("%Y-%m-%d %H:%M", time.gmtime()), opts.depth, opts.rounds), "",
             "| mode | wall s | wall / Boehm | wall / mimalloc | user+sys s | sys s | minor faults | peak RSS MiB | load | "
             "collections (minor) | pause total ms | minor p50 ms | minor p99 ms | minor max ms | full p50 ms | "
             "full max ms |",
             "|" + " --- |" * 16]
    walls = {j.label: statistics.median(x["wall_s"] for x in runs if x["mode"] == j.label) for j in jobs}
    for j in jobs:
        rs = [x for x in runs if x["mode"] == j.label]
        m = {k: statistics.median(float(x.get(k, "nan")) for x in rs) for k in keys[2:]}
        pauses = ("%.0f (%.0f) | %.1f | %.3f | %.3f | %.3f | %.2f | %.2f" % (
            m["collections"], m["minors"], m["pause_total_ms"], m["minor_p50_ms"], m["minor_p99_ms"],
            m["minor_max_ms"], m["full_p50_ms"], m["full_max_ms"]) if j.label in tagheap_modes
            else " | ".join(["-"] * 7))
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %.3f | %.0f | %.1f | %.1f | %s |" % (
            j.label, m["wall_s"], m["wall_s"] / walls["boehm"], m["wall_s"] / walls["mimalloc"], m["cpu_s"],
            m["sys_s"], m["minflt"], m["peak_rss_mib"], m["load1"], pauses))
    text = "\n".join(lines).replace("nan", "-") + "\n"
    with open(os.path.join(opts.results_dir, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    svg(last_logs, os.path.join(opts.results_dir, "timeline.svg"), opts.depth)


if __name__ == "__main__":
    main()
