#!/usr/bin/env python3
"""The collector policy's trade-off curve, pauses and generations, measured.

    bench/policy_curve.py [--rounds=3] [--parts=curve,pause,generational,barrier,minor]
                          [--growth=0.25,0.5,1,2,3] [--min-mib=1,4,8]
                          [--depths=18,19,20] [--gen-depths=18,19,20,21] [--gen-growth=G,...] [--gen-nursery=N,...]
                          [--full-grid=gcbench,mt_gcbench,binarytrees_18] [--other-min-mib=4]
                          [--no-build] [--bindir=DIR] [--output_base=DIR] [--results_dir=DIR]

A benchmark, not a test. Parts:
  curve         GCBench, mt-GCBench (2 threads) and binary-trees at --depths
                for tagheap at every heap_growth x min_budget pair (GCB_GROWTH,
                GCB_MIN_MIB; the benchmarks not in --full-grid at --other-min-mib
                only, to save time), plus gc::Options{} as it is, with Boehm
                (Debian's libgc) and mimalloc with explicit free (the floor) in
                the same rounds.
  pause         pause_<peer> 100 (MiB live): tagheap with GCB_MARKERS=1 and
                2, Boehm with GC_MARKERS=1 and 2 (its helper threads started:
                GCB_BOEHM_MARKER_THREADS=1, see gcbench/variant.h).
  generational  GCBench, mt-GCBench and binary-trees at --gen-depths: tagheap
                (gc::Options{}), tagheap with GCB_GENERATIONAL=1 (and at
                --gen-growth, and at --gen-nursery), Boehm, Boehm with 2 marker threads
                (single-threaded programs), mimalloc, and for --incremental
                Boehm with GC_ENABLE_INCREMENTAL=1.
  barrier       barrier_tagheap: ns per store of the write barrier's paths.
  minor         minor_pause_tagheap 100 1 8 20 16 3: minor collections with
                100 MiB old and 1 MiB of young survivors (plus 8 MiB of young
                garbage) per collection, then 3 full ones on the same heap,
                with GCB_MARKERS=1 and the default markers (one per hardware
                thread). Not in the default --parts.

Each round runs every job once, in a rotated order (A B C, B C A, ...), so
load from other work spreads over all jobs instead of hitting one. Per run
it records wall time (from the parent: fork to wait), user and sys CPU,
minor faults and peak RSS, all from os.wait4's rusage of the child, plus
what the program prints (its own timed section, collections). Linux keeps
ru_maxrss across execve, so a child's peak RSS never reads below this
script's own at the fork (the "rss floor" printed; every benchmark here is
far above it). Runs are not pinned: tagheap's default is one marker per
hardware thread, and a process pinned to one CPU would run both markers on
it (mt-GCBench's threads pin themselves, as in run.py).

Writes into --results_dir (default bench/results/policy/): runs.csv (every
run), summary.csv (medians over rounds, spread = (max - min) / median of
the wall time, ratios to Boehm and to mimalloc), curve.svg (wall time
against peak RSS, one curve per benchmark and min budget, tagheap's points
labelled by growth factor, Boehm's and mimalloc's points on the same axes)
and prints the tables as Markdown.
"""
import argparse
import csv
import datetime
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GCBENCH_DIR = "bench/gcbench"
PAUSE_LIVE_MIB = 100


class Job:
    """One program run with one configuration: (benchmark, peer, label)."""

    def __init__(self, part, bench, peer, label, binary, args=(), env=None, growth=None, min_mib=None):
        self.part, self.bench, self.peer, self.label = part, bench, peer, label
        self.binary, self.args, self.env = binary, list(args), dict(env or {})
        self.growth, self.min_mib = growth, min_mib
        self.runs = []

    def key(self):
        return (self.part, self.bench, self.label)


def bench_programs(depths):
    """benchmark name -> (binary stem, args)."""
    programs = {"gcbench": ("gcbench", []), "mt_gcbench": ("mt_gcbench", ["2"])}
    for d in depths:
        programs["binarytrees_%d" % d] = ("binary_trees", [str(d)])
    return programs


def curve_jobs(opts):
    jobs = []
    for bench, (stem, args) in bench_programs(opts.depths).items():
        for min_mib in opts.min_mib if bench in opts.full_grid else opts.other_min_mib:
            for growth in opts.growth:
                jobs.append(Job("curve", bench, "tagheap", "tagheap g=%g min=%gMiB" % (growth, min_mib),
                                stem + "_tagheap", args, {"GCB_GROWTH": growth, "GCB_MIN_MIB": min_mib},
                                growth, min_mib))
        jobs.append(Job("curve", bench, "tagheap", "tagheap default", stem + "_tagheap", args))
        jobs.append(Job("curve", bench, "boehm", "boehm", stem + "_boehm", args))
        jobs.append(Job("curve", bench, "mimalloc", "mimalloc", stem + "_mimalloc", args))
    return jobs


def pause_jobs(opts):
    live = [str(PAUSE_LIVE_MIB), "0", "10"]
    bench = "pause_%dMiB" % PAUSE_LIVE_MIB
    return [
        Job("pause", bench, "tagheap", "tagheap markers=1", "pause_tagheap", live, {"GCB_MARKERS": 1}),
        Job("pause", bench, "tagheap", "tagheap markers=2", "pause_tagheap", live, {"GCB_MARKERS": 2}),
        Job("pause", bench, "boehm", "boehm GC_MARKERS=1", "pause_boehm", live, {"GC_MARKERS": 1}),
        Job("pause", bench, "boehm", "boehm GC_MARKERS=2", "pause_boehm", live,
            {"GC_MARKERS": 2, "GCB_BOEHM_MARKER_THREADS": 1}),
    ]


def generational_jobs(opts):
    jobs = []
    for bench, (stem, args) in bench_programs(opts.gen_depths).items():
        jobs += [
            Job("generational", bench, "tagheap", "tagheap", stem + "_tagheap", args),
            Job("generational", bench, "tagheap", "tagheap generational", stem + "_tagheap", args,
                {"GCB_GENERATIONAL": 1}),
            Job("generational", bench, "boehm", "boehm", stem + "_boehm", args),
        ]
        if bench in opts.incremental:
            jobs.append(Job("generational", bench, "boehm", "boehm incremental", stem + "_boehm", args,
                            {"GC_ENABLE_INCREMENTAL": 1}))
        for growth in opts.gen_growth:
            jobs.append(Job("generational", bench, "tagheap", "tagheap generational g=%g" % growth,
                            stem + "_tagheap", args, {"GCB_GENERATIONAL": 1, "GCB_GROWTH": growth}, growth))
        for nursery in opts.gen_nursery:
            jobs.append(Job("generational", bench, "tagheap", "tagheap generational n=%g" % nursery,
                            stem + "_tagheap", args, {"GCB_GENERATIONAL": 1, "GCB_NURSERY": nursery}, nursery))
        if bench != "mt_gcbench":  # its threads start Boehm's helper markers anyway
            jobs.append(Job("generational", bench, "boehm", "boehm 2 markers", stem + "_boehm", args,
                            {"GCB_BOEHM_MARKER_THREADS": 1, "GC_MARKERS": 2}))
        jobs += [
            Job("generational", bench, "mimalloc", "mimalloc", stem + "_mimalloc", args),
        ]
    return jobs


def barrier_jobs(opts):
    return [Job("barrier", "barrier", "tagheap", "tagheap", "barrier_tagheap")]


def minor_jobs(opts):
    args = [str(PAUSE_LIVE_MIB), "1", "8", "20", "16", "3"]
    bench = "minor_pause_%dMiB" % PAUSE_LIVE_MIB
    return [
        Job("minor", bench, "tagheap", "tagheap generational markers=1", "minor_pause_tagheap", args,
            {"GCB_MARKERS": 1}),
        Job("minor", bench, "tagheap", "tagheap generational markers=default", "minor_pause_tagheap", args),
    ]


PARTS = {"curve": curve_jobs, "pause": pause_jobs, "generational": generational_jobs, "barrier": barrier_jobs,
         "minor": minor_jobs}


def bazel(opts, *args):
    cmd = [os.path.join(ROOT, "bazelw")]
    if opts.output_base:
        cmd.append("--output_base=" + opts.output_base)
    return subprocess.run(cmd + list(args), cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout


def build(opts, jobs):
    targets = sorted({"//%s:%s" % (GCBENCH_DIR, j.binary) for j in jobs})
    bazel(opts, "build", "-c", "opt", *targets)
    return os.path.join(bazel(opts, "info", "-c", "opt", "bazel-bin").strip(), GCBENCH_DIR)


def parse_output(job, text):
    """The program's machine-readable lines -> dict of extras."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            if "minor of" in line:  # tagheap's detail line
                out["detail"] = line[2:].strip()
            elif "helper markers" in line or "minor phases" in line:
                out["detail"] = line[2:].strip()
            continue
        f = line.split()
        if job.part == "barrier":
            out["barrier " + f[1]] = float(f[2])
        elif job.part in ("pause", "minor"):
            out["program_ms"] = float(f[2])
            for kv in f[4:]:
                k, _, v = kv.partition("=")
                out[k] = v
        else:
            out["program_ms"] = float(f[2])
            rest = f[4:]
            for item in rest:
                k, _, v = item.partition("=")
                out["collections" if not v or k == "gcs" else k] = v if v else k
    return out


def run_one(bindir, job):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in job.env.items()})
    t0 = time.monotonic()
    proc = subprocess.Popen([os.path.join(bindir, job.binary)] + job.args, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("%s %s failed (%d):\n%s" % (job.binary, job.args, proc.returncode, out))
    run = {"wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "cpu_s": ru.ru_utime + ru.ru_stime,
           "minflt": ru.ru_minflt,
           "majflt": ru.ru_majflt, "peak_rss_mib": ru.ru_maxrss / 1024.0, "load1": os.getloadavg()[0]}
    run.update(parse_output(job, out))
    return run


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(jobs):
    """One row per job: medians over its runs."""
    rows = []
    for j in jobs:
        if not j.runs:
            continue
        row = {"part": j.part, "bench": j.bench, "label": j.label, "peer": j.peer, "growth": j.growth,
               "min_mib": j.min_mib, "rounds": len(j.runs)}
        for k in ["wall_s", "cpu_s", "user_s", "sys_s", "minflt", "peak_rss_mib", "program_ms", "load1"]:
            vals = [float(r[k]) for r in j.runs if r.get(k, "") != ""]
            row[k] = median(vals)
        for k, spread in [("wall_s", "spread"), ("cpu_s", "cpu_spread")]:
            vals = [float(r[k]) for r in j.runs]
            row[spread] = (max(vals) - min(vals)) / median(vals) if len(vals) > 1 else 0.0
        for k in j.runs[0]:
            if k.startswith("barrier ") or k in ("collections", "max_pause_ms", "min_ms", "max_ms", "full_ms"):
                vals = [float(r[k]) for r in j.runs if r.get(k, "") != ""]
                row[k] = median(vals)
        row["detail"] = j.runs[-1].get("detail", "")
        rows.append(row)
    # Ratios to Boehm's and mimalloc's plain rows of the same part and benchmark.
    for row in rows:
        for peer in ["boehm", "mimalloc"]:
            ref = next((r for r in rows if r["part"] == row["part"] and r["bench"] == row["bench"] and
                        r["label"] == peer), None)
            if ref is None:
                continue
            row["time_vs_" + peer] = row["wall_s"] / ref["wall_s"]
            row["cpu_vs_" + peer] = row["cpu_s"] / ref["cpu_s"]
            row["rss_vs_" + peer] = row["peak_rss_mib"] / ref["peak_rss_mib"]
    return rows


def write_csv(path, rows):
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def fmt(v, spec=".2f"):
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def markdown(rows, part):
    sel = [r for r in rows if r["part"] == part]
    if not sel:
        return ""
    if part == "barrier":
        lines = ["| path | ns per store |", "| --- | --- |"]
        for k, v in sel[0].items():
            if k.startswith("barrier "):
                lines.append("| %s | %.2f |" % (k[len("barrier "):], v))
        return "\n".join(lines)
    head = ("| benchmark | run | user+sys s | spread | sys s | minor faults | peak RSS MiB | wall s | "
            "cpu / Boehm | RSS / Boehm | wall / Boehm | cpu / mimalloc | collections |")
    if part == "pause":
        head = "| benchmark | run | pause ms (median) | min ms | max ms | sys s | minor faults | peak RSS MiB | note |"
    if part == "minor":
        head = ("| benchmark | run | minor pause ms (median) | min ms | max ms | full pause ms | wall s | user+sys s | "
                "sys s | minor faults | peak RSS MiB | load | phases (last round) |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in sel:
        if part == "minor":
            lines.append("| %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.3f | %d | %.1f | %.1f | %s |" % (
                r["bench"], r["label"], fmt(r.get("program_ms"), ".3f"), fmt(r.get("min_ms"), ".3f"),
                fmt(r.get("max_ms"), ".3f"), fmt(r.get("full_ms"), ".1f"), r["wall_s"], r["cpu_s"], r["sys_s"],
                r["minflt"], r["peak_rss_mib"], r["load1"], r.get("detail", "")))
        elif part == "pause":
            lines.append("| %s | %s | %s | %s | %s | %.3f | %d | %.1f | %s |" % (
                r["bench"], r["label"], fmt(r.get("program_ms"), ".1f"), fmt(r.get("min_ms"), ".1f"),
                fmt(r.get("max_ms"), ".1f"), r["sys_s"], r["minflt"], r["peak_rss_mib"], r.get("detail", "")))
        else:
            lines.append("| %s | %s | %.3f | %.0f%% | %.3f | %d | %.1f | %.2f | %s | %s | %s | %s | %s |" % (
                r["bench"], r["label"], r["cpu_s"], 100 * r["cpu_spread"], r["sys_s"], r["minflt"],
                r["peak_rss_mib"], r["wall_s"], fmt(r.get("cpu_vs_boehm")), fmt(r.get("rss_vs_boehm")),
                fmt(r.get("time_vs_boehm")), fmt(r.get("cpu_vs_mimalloc")), fmt(r.get("collections"), ".0f")))
    return "\n".join(lines)


# ---- SVG: wall time against peak RSS, one panel per benchmark ----

TIME_AXIS = {"wall_s": "wall time (s)", "cpu_s": "user+sys CPU time (s)"}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]


def svg_curve(rows, path, time_key):
    sel = [r for r in rows if r["part"] == "curve"]
    benches = []
    for r in sel:
        if r["bench"] not in benches:
            benches.append(r["bench"])
    if not benches:
        return
    pw, ph, margin = 420, 300, 60
    cols = 2
    nrows = (len(benches) + cols - 1) // cols
    width, height = cols * (pw + margin) + margin, nrows * (ph + margin + 20) + 60
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="13">%s against peak RSS, medians. tagheap: label = heap_growth, '
           'colour = min budget; squares: Boehm, mimalloc (explicit free)</text>' %
           (margin, TIME_AXIS[time_key])]
    min_budgets = sorted({r["min_mib"] for r in sel if r["min_mib"] is not None})
    for i, bench in enumerate(benches):
        x0 = margin + (i % cols) * (pw + margin)
        y0 = 50 + (i // cols) * (ph + margin + 20)
        pts = [r for r in sel if r["bench"] == bench]
        xs = [r["peak_rss_mib"] for r in pts]
        ys = [r[time_key] for r in pts]
        xlo, xhi = 0, max(xs) * 1.1
        ylo, yhi = 0, max(ys) * 1.1

        def px(x):
            return x0 + (x - xlo) / (xhi - xlo) * pw

        def py(y):
            return y0 + ph - (y - ylo) / (yhi - ylo) * ph

        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>' % (x0, y0, pw, ph))
        out.append('<text x="%d" y="%d" font-size="13">%s</text>' % (x0, y0 - 6, bench))
        for t in range(5):
            xv = xlo + (xhi - xlo) * t / 4
            yv = ylo + (yhi - ylo) * t / 4
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>' % (px(xv), y0 + ph + 14, xv))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (x0 - 4, py(yv) + 4, yv))
        out.append('<text x="%d" y="%d" text-anchor="middle">peak RSS (MiB)</text>' % (x0 + pw / 2, y0 + ph + 28))
        out.append('<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>' %
                   (x0 - 40, y0 + ph / 2, x0 - 40, y0 + ph / 2, TIME_AXIS[time_key]))
        for c, mb in enumerate(min_budgets):
            curve = sorted([r for r in pts if r["min_mib"] == mb], key=lambda r: r["growth"])
            color = COLORS[c % len(COLORS)]
            out.append('<polyline fill="none" stroke="%s" points="%s"/>' %
                       (color, " ".join("%.1f,%.1f" % (px(r["peak_rss_mib"]), py(r[time_key])) for r in curve)))
            for r in curve:
                out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' %
                           (px(r["peak_rss_mib"]), py(r[time_key]), color))
                out.append('<text x="%.1f" y="%.1f" fill="%s" font-size="9">%g</text>' %
                           (px(r["peak_rss_mib"]) + 4, py(r[time_key]) - 3, color, r["growth"]))
        for r in pts:
            if r["label"] in ("boehm", "mimalloc", "tagheap default"):
                shape = {"boehm": ("black", "Boehm"), "mimalloc": ("#ff7f0e", "mimalloc"),
                         "tagheap default": ("#17becf", "default")}[r["label"]]
                x, y = px(r["peak_rss_mib"]), py(r[time_key])
                out.append('<rect x="%.1f" y="%.1f" width="7" height="7" fill="%s"/>' % (x - 3.5, y - 3.5, shape[0]))
                out.append('<text x="%.1f" y="%.1f" fill="%s">%s</text>' % (x + 5, y + 12, shape[0], shape[1]))
        # Legend for the min budgets.
        for c, mb in enumerate(min_budgets):
            out.append('<text x="%d" y="%d" fill="%s">min budget %g MiB</text>' %
                       (x0 + pw - 110, y0 + 14 + 12 * c, COLORS[c % len(COLORS)], mb))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def load_runs(jobs, paths):
    """Attaches the runs recorded in runs.csv files to the jobs they belong to; returns those runs."""
    by_key = {j.key(): j for j in jobs}
    loaded = []
    for path in paths:
        with open(path) as f:
            for run in csv.DictReader(f):
                job = by_key.get((run["part"], run["bench"], run["label"]))
                if job is None:
                    continue
                if not run.get("cpu_s"):
                    run["cpu_s"] = float(run["user_s"]) + float(run["sys_s"])
                job.runs.append({k: v for k, v in run.items() if v != ""})
                loaded.append(run)
    return loaded


def measure(opts, jobs, floor):
    """Runs every job once per round, rotating the order; writes runs.csv after each round."""
    if opts.bindir:
        bindir = opts.bindir
    elif opts.no_build:
        bindir = os.path.join(ROOT, "bazel-bin", GCBENCH_DIR)
    else:
        bindir = build(opts, jobs)
    print("# %d jobs x %d rounds; rss floor %.1f MiB; %s" % (len(jobs), opts.rounds, floor,
                                                              datetime.datetime.utcnow().isoformat()))
    runs_path = os.path.join(opts.results_dir, "runs.csv")
    all_runs = []
    start = time.monotonic()
    for rnd in range(opts.rounds):
        shift = rnd % len(jobs)
        for n, j in enumerate(jobs[shift:] + jobs[:shift]):
            run = run_one(bindir, j)
            run.update({"round": rnd, "part": j.part, "bench": j.bench, "label": j.label})
            j.runs.append(run)
            all_runs.append(run)
            done = rnd * len(jobs) + n + 1
            elapsed = time.monotonic() - start
            print("# [%d/%d] %.0fs elapsed, ~%.0fs left, load %.1f: %s %s %.3fs %.1f MiB" % (
                done, len(jobs) * opts.rounds, elapsed, elapsed / done * (len(jobs) * opts.rounds - done),
                run["load1"], j.bench, j.label, run["wall_s"], run["peak_rss_mib"]), flush=True)
            write_csv(runs_path, all_runs)  # after each run, so an interrupted measurement keeps its data


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    floats = lambda s: [float(x) for x in s.split(",") if x]  # noqa: E731
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="curve,pause,generational,barrier")
    ap.add_argument("--growth", type=floats, default=[0.25, 0.5, 1, 2, 3])
    ap.add_argument("--min-mib", dest="min_mib", type=floats, default=[1, 4, 8])
    ap.add_argument("--depths", type=ints, default=[18, 19, 20])
    ap.add_argument("--full-grid", dest="full_grid", type=lambda s: s.split(","),
                    default=["gcbench", "mt_gcbench", "binarytrees_18"],
                    help="benchmarks run at every --min-mib (the others at --other-min-mib only)")
    ap.add_argument("--other-min-mib", dest="other_min_mib", type=floats, default=[4])
    ap.add_argument("--gen-depths", dest="gen_depths", type=ints, default=[18, 19, 20, 21])
    ap.add_argument("--incremental", type=lambda s: s.split(","),
                    default=["gcbench", "mt_gcbench", "binarytrees_18", "binarytrees_21"],
                    help="benchmarks also run with Boehm's incremental mode (about twice its default time)")
    ap.add_argument("--gen-growth", dest="gen_growth", type=floats, default=[],
                    help="generational runs also at these heap_growth values")
    ap.add_argument("--gen-nursery", dest="gen_nursery", type=floats, default=[],
                    help="generational runs also at these nursery_growth values (GCB_NURSERY)")
    ap.add_argument("--benchmarks", default="", help="only these benchmarks (e.g. gcbench,mt_gcbench)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bindir", default="", help="run the binaries from here (a copy, so a rebuild meanwhile "
                    "cannot swap them under a running measurement); implies --no-build")
    ap.add_argument("--output_base", default="")
    ap.add_argument("--plot-time", dest="plot_time", choices=["wall_s", "cpu_s"], default="wall_s",
                    help="the plot's time axis: wall time, or user+sys CPU time (steadier on a loaded machine)")
    ap.add_argument("--from-runs", dest="from_runs", default="",
                    help="measure nothing: summarize (tables, summary.csv, plot) the runs.csv files given "
                         "(comma-separated) for the jobs the other options select, and write their runs, "
                         "merged, to runs.csv")
    ap.add_argument("--results_dir", default=os.path.join(HERE, "results", "policy"))
    opts = ap.parse_args()

    parts = [p for p in opts.parts.split(",") if p]
    jobs = [j for p in parts for j in PARTS[p](opts)]
    if opts.benchmarks:
        keep = set(opts.benchmarks.split(","))
        jobs = [j for j in jobs if j.bench in keep or j.part in ("pause", "barrier")]
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    os.makedirs(opts.results_dir, exist_ok=True)
    if opts.from_runs:
        write_csv(os.path.join(opts.results_dir, "runs.csv"), load_runs(jobs, opts.from_runs.split(",")))
    else:
        measure(opts, jobs, floor)
    rows = summarize(jobs)
    write_csv(os.path.join(opts.results_dir, "summary.csv"), rows)
    if "curve" in parts:
        svg_curve(rows, os.path.join(opts.results_dir, "curve.svg"), opts.plot_time)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    print("\nrevision %s, %s, load average %s, rss floor %.1f MiB" % (
        rev, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        " ".join("%.1f" % x for x in os.getloadavg()), floor))
    for p in parts:
        print("\n### %s\n\n%s" % (p, markdown(rows, p)))


if __name__ == "__main__":
    sys.exit(main())
