#!/usr/bin/env python3
"""Pauses of a mutator that rewires a large tree: incremental against stop-the-world.

    bench/incremental_pauses.py [--rounds=3] [--live=100] [--ops=2000000] [--garbage=256]
                                [--no-build] [--results_dir=bench/results/incremental]

A benchmark, not a test. Runs bench/gcbench/rewire_{tagheap,boehm} (see
rewire.cc for what an operation does and what counts as a pause) as:
  tagheap              gc::Options{} (stop-the-world, parallel marking)
  tagheap_incremental  Options::incremental (GCB_INCREMENTAL=1)
  boehm                Debian's libgc, default mode
  boehm_incremental    GC_enable_incremental() (GCB_BOEHM_INCREMENTAL=1)
  machine              bench/gcbench/machine_jitter: no allocator, no collector,
                       fixed work in operations of 0.4 ms (an incremental
                       step's budget): loads chasing a random cycle through a
                       buffer as large as the live data, as many operations as
                       the latest tagheap_incremental run's pauses (3,000
                       before one ran): how long the machine itself stretches
                       a step's worth of loads, the floor under the "max ms"
                       column (on a VM: the host preempting a vCPU or
                       faulting its memory back)
Rounds are interleaved (every variant once per round, order rotated). Per
run: wall time of the operation loop (the program's), user and sys CPU, minor
faults and peak RSS (os.wait4), the faults of the operations' thread alone
and the pause quantiles (both as the program prints them); medians over
rounds; the operations of 1 ms and of 2 ms or more (from the pause logs)
summed over rounds. tagheap's rewire also tells the CPU time of each
collect() (the calling thread's, which marks alone in an incremental step;
a stop-the-world pause's helper markers are not counted): a step far
longer than its CPU time was held up off CPU, and the "steal ms" column (the machine's
steal time from /proc/stat over the run, all vCPUs) says whether the
hypervisor took the time. Writes runs.csv, summary.md and pauses.svg (a histogram
of pause lengths and a timeline of the last round's pauses, one colour per
variant) to --results_dir.
"""
import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import svgplot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = [
    ("tagheap", "rewire_tagheap", {}),
    ("tagheap_incremental", "rewire_tagheap", {"GCB_INCREMENTAL": "1"}),
    ("boehm", "rewire_boehm", {}),
    ("boehm_incremental", "rewire_boehm", {"GCB_BOEHM_INCREMENTAL": "1"}),
    ("machine", "machine_jitter", {}),
]
MACHINE_STEP_US = 400  # Options::mark_step_ns's default
TIMELINE_DOTS = 4000
COLOURS = {"tagheap": "#1f77b4", "tagheap_incremental": "#2ca02c", "boehm": "#d62728",
           "boehm_incremental": "#ff7f0e", "machine": "#7f7f7f"}


def build(no_build):
    bazel = [os.path.join(ROOT, "bazelw")]
    if not no_build:
        subprocess.run(bazel + ["build", "-c", "opt", "//bench/gcbench:rewire_tagheap",
                                "//bench/gcbench:rewire_boehm", "//bench/gcbench:machine_jitter"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(bazel + ["info", "-c", "opt", "bazel-bin"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    return os.path.join(out, "bench", "gcbench")


def steal_ms():
    """The machine's steal time so far, all CPUs (/proc/stat, in ms): time a
    vCPU was ready to run but the hypervisor ran something else."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_one(bindir, binary, env_extra, args, log_path):
    env = dict(os.environ)
    env.update(env_extra)
    env["GCB_PAUSE_LOG"] = log_path
    load = os.getloadavg()[0]
    steal0 = steal_ms()
    proc = subprocess.Popen([os.path.join(bindir, binary)] + args, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("%s failed:\n%s" % (binary, out))
    line = [l for l in out.splitlines() if l.startswith(("rewire_", "jitter_"))][0].split()
    run = {"wall_ms": float(line[2]), "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
           "cpu_s": ru.ru_utime + ru.ru_stime, "minflt": ru.ru_minflt, "peak_rss_mib": ru.ru_maxrss / 1024.0,
           "load1": load, "steal_ms": steal_ms() - steal0}
    for kv in line[4:]:
        k, _, v = kv.partition("=")
        try:
            run[k] = float(v)
        except ValueError:
            run[k] = v
    with open(log_path) as f:
        rows = [list(map(float, l.split(","))) for l in f if l.strip() and not l.startswith("#")]
    pauses = [(r[0], r[1]) for r in rows]
    # Operations of 2 ms or more in which the collector itself ran 2 ms of
    # CPU (the rest of such an operation's time was off CPU: steal, or
    # waiting for a core).
    run["long_on_cpu"] = sum(1 for r in rows if r[1] >= 2.0 and len(r) > 3 and r[3] >= 2.0)
    return run, pauses


def svg(pauses_by_variant, path, live):
    w, h, pad = 980, 380, 50
    half = w // 2
    parts = []
    # Histogram: log2 buckets of pause ms from 1/64 ms to 512 ms.
    edges = [2.0 ** k for k in range(-6, 10)]
    maxc = 1
    hist = {}
    for v, ps in pauses_by_variant.items():
        counts = [0] * len(edges)
        for _, d in ps:
            i = min(len(edges) - 1, max(0, int(math.floor(math.log2(max(d, edges[0]))) + 6)))
            counts[i] += 1
        hist[v] = counts
        maxc = max(maxc, max(counts))
    x0, x1, y0, y1 = pad, half - 20, h - pad, pad
    parts.append('<text x="%d" y="20" font-size="13">Pauses of a mutator rewiring %g MiB: how long (count, log)</text>' % (x0, live))
    nb = len(edges)
    bw = (x1 - x0) / nb
    nv = len(hist)
    for j, (v, counts) in enumerate(hist.items()):
        for i, c in enumerate(counts):
            if c == 0:
                continue
            hh = (y0 - y1) * math.log10(1 + c) / math.log10(1 + maxc)
            parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' %
                         (x0 + i * bw + j * bw / nv, y0 - hh, bw / nv - 1, hh, COLOURS[v]))
    for i, e in enumerate(edges):
        if i % 2 == 0:
            parts.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (x0 + i * bw, y0 + 14, e))
    parts.append('<text x="%d" y="%d" text-anchor="middle">pause ms (bucket start)</text>' % ((x0 + x1) // 2, y0 + 30))
    parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (x0, y0, x1, y0))
    # Timeline: pause length (log) against time; of a variant with more than
    # TIMELINE_DOTS pauses, the longest (the plot stays a few hundred KiB).
    tmax = max((t for ps in pauses_by_variant.values() for t, _ in ps), default=1) or 1
    dots = {v: sorted(sorted(ps, key=lambda p: -p[1])[:TIMELINE_DOTS]) for v, ps in pauses_by_variant.items()}
    parts += svgplot.timeline((half + 30, y1, w - 20, y0), [(COLOURS[v], ps) for v, ps in dots.items()],
                              tmax, "Timeline (last round): pause ms, log scale",
                              "time since the operations began, ms (0 to %.0f)" % tmax, title_y=20)
    parts += svgplot.legend(x0 + 10, h - 12, [(COLOURS[v], v) for v in pauses_by_variant])
    with open(path, "w") as f:
        f.write(svgplot.document(w, h, parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--live", type=float, default=100)
    ap.add_argument("--ops", type=int, default=2000000)
    ap.add_argument("--garbage", type=int, default=256)
    ap.add_argument("--only", default="", help="comma-separated variants")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--results_dir", default=os.path.join(ROOT, "bench", "results", "incremental"))
    opts = ap.parse_args()
    variants = [v for v in VARIANTS if not opts.only or v[0] in opts.only.split(",")]
    bindir = build(opts.no_build)
    os.makedirs(opts.results_dir, exist_ok=True)
    args = [str(opts.live), str(opts.ops), str(opts.garbage)]
    runs, last_pauses = [], {}
    long_ops = {name: [0, 0] for name, _, _ in variants}  # operations >= 1 ms, >= 2 ms, all rounds
    tmp = tempfile.mkdtemp()
    for r in range(opts.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for name, binary, env in order:
            run_args = args
            if name == "machine":  # as many steps as the latest incremental run's pauses
                done = [x for x in runs if x["variant"] == "tagheap_incremental"]
                run_args = [str(int(done[-1]["pauses"]) if done else 3000), str(MACHINE_STEP_US),
                            str(int(opts.live))]
            run, pauses = run_one(bindir, binary, env, run_args, os.path.join(tmp, name + ".log"))
            long_ops[name][0] += sum(1 for _, d in pauses if d >= 1.0)
            long_ops[name][1] += sum(1 for _, d in pauses if d >= 2.0)
            run.update({"variant": name, "round": r})
            runs.append(run)
            last_pauses[name] = pauses
            print("# round %d %s: wall %.0f ms, cpu %.2f s, p50 %.3f max %.3f ms, rss %.0f MiB, load %.1f" %
                  (r, name, run["wall_ms"], run["cpu_s"], run["p50_ms"], run["max_ms"], run["peak_rss_mib"],
                   run["load1"]), file=sys.stderr)
    keys = ["variant", "round", "wall_ms", "cpu_s", "user_s", "sys_s", "minflt", "mutator_minflt", "peak_rss_mib",
            "load1", "pauses",
            "p50_ms", "p90_ms", "p99_ms", "max_ms", "gc_ms", "calls", "cycles", "at_limit", "max_first_ms",
            "max_step_ms", "max_last_ms", "max_whole_ms", "max_collect_cpu_ms", "long_on_cpu", "steal_ms", "gc_no"]
    with open(os.path.join(opts.results_dir, "runs.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        wr.writeheader()
        for run in runs:
            wr.writerow(run)
    med = {}
    for name, _, _ in variants:
        rs = [x for x in runs if x["variant"] == name]
        med[name] = {k: statistics.median([x[k] for x in rs if k in x]) for k in keys[2:]
                     if any(k in x for x in rs)}
    # The collector's own pauses (tagheap prints its longest stop-the-world
    # collection, and a cycle's longest first pause, step and last pause),
    # the longest over all rounds: the "max ms" column also counts an
    # operation that stalled outside the collector (a page fault).
    own = {}
    for name, _, _ in variants:
        vals = [x.get(k) for x in runs if x["variant"] == name
                for k in ("max_whole_ms", "max_first_ms", "max_step_ms", "max_last_ms")]
        vals = [v for v in vals if isinstance(v, float)]
        own[name] = max(vals) if vals else None
    stw = med.get("tagheap", {}).get("wall_ms")
    lines = ["revision %s, %s UTC, %d rounds, live %g MiB, %d ops, %d B garbage per op" %
             (subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True).stdout.strip(), time.strftime("%Y-%m-%d %H:%M", time.gmtime()), opts.rounds,
              opts.live, opts.ops, opts.garbage), "",
             "| variant | wall ms | / tagheap stop-the-world | user+sys s | sys s | minor faults | the mutator's faults "
             "| peak RSS MiB "
             "| pauses | p50 ms | p90 ms | p99 ms | max ms | max ms, each round | ops >= 1 ms / >= 2 ms, all rounds "
             "| collector's max ms, any round | its max ms on CPU | ops >= 2 ms, the collector on CPU >= 2 ms "
             "| steal ms | load |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
             "| --- | --- |"]
    for name, m in med.items():
        rs = [x for x in runs if x["variant"] == name]
        each = ", ".join("%.2f" % x["max_ms"] for x in rs)
        ratio = "%.2f" % (m["wall_ms"] / stw) if stw and name != "machine" else ""
        mutator_faults = "%.0f" % m["mutator_minflt"] if "mutator_minflt" in m else "-"
        cpu_max = max((x["max_collect_cpu_ms"] for x in rs if "max_collect_cpu_ms" in x), default=None)
        long_cpu = sum(x.get("long_on_cpu", 0) for x in rs)
        lines.append("| %s | %.0f | %s | %.2f | %.2f | %.0f | %s | %.0f | %.0f | %.3f | %.3f | %.3f | %.3f | %s | %d / %d "
                     "| %s | %s | %s | %.0f | %.1f |" % (
            name, m["wall_ms"], ratio, m["cpu_s"], m["sys_s"], m["minflt"], mutator_faults,
            m["peak_rss_mib"], m.get("pauses", 0), m.get("p50_ms", 0), m.get("p90_ms", 0), m.get("p99_ms", 0),
            m.get("max_ms", 0), each, long_ops[name][0], long_ops[name][1],
            "%.3f" % own[name] if own[name] is not None else "-",
            "%.3f" % cpu_max if cpu_max is not None else "-", long_cpu if cpu_max is not None else "-",
            m["steal_ms"], m["load1"]))
    with open(os.path.join(opts.results_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    svg(last_pauses, os.path.join(opts.results_dir, "pauses.svg"), opts.live)


if __name__ == "__main__":
    main()
