#!/usr/bin/env python3
"""Builds every benchmark, runs them side by side, prints one table.

    bench/run.py [--rounds=7] [--only=GROUP,...] [--depth=21] [--depths=18,...,22]
                 [--no-build] [--output_base=DIR] [--no-readme]
    ./bazelw run //bench:all -- [same options]

Groups (--only): churn, larson, xfree, thread_churn, large, walk,
isolation (allocators: tagheap, mimalloc, jemalloc, glibc) and gcbench,
mt_gcbench, binarytrees, pause (collectors: tagheap's MarkSweep, Boehm's libgc, mimalloc with
explicit free as the floor).

Each round runs every job of a group once, in a rotated order (A B C D,
B C D A, ...), so drift on a shared machine (other builds, thermal) spreads
over all of them instead of one. The collection groups run at most
min(--rounds, 3) rounds (they are long). Single-threaded workloads run
pinned to the last CPU (the scheduler moving a process between cores was
the largest source of spread on 2 cores); in the multi-threaded ones each
worker pins itself to CPU k (bench::pin_this_thread). Reports the median
of the rounds,
and writes bench/results/results.csv (summary), bench/results/runs.csv
(every run) and bench/results/results.svg (a bar per peer and workload,
relative to the best; partial runs write these under the temp dir, or
--results_dir), and rewrites README.md between the markers
<!-- bench:begin --> and <!-- bench:end --> (only there; --no-readme to
skip; partial runs with --only or --rounds below the default leave the
README alone unless --readme is given).

Every run's resource use comes from wait4() on the child: user and system
CPU time, minor page faults and the kernel's peak RSS (ru_maxrss, which
Linux carries over execve from run.py's own fork, so it is at least
run.py's size: the peak RSS column is the benchmark's own VmHWM). The
table shows system time and faults beside each median and marks with `!`
a run whose system time passes 10% of its wall time; the header records
the machine's transparent-huge-page mode, which decides what page faults
cost. With --depths, binary-trees runs at each depth and
binarytrees_depths.svg plots tagheap's time over Boehm's and mimalloc's,
and the system time share, against depth.

Benchmarks print `workload peer value peak_rss_kib [extra ...]` lines
(extras: key=value, or for gcbench and binary-trees a bare collection
count); lines starting with '#' are for humans. Lower values are better;
ratios in the table are a peer's value over the best other peer's (for
tagheap rows: below 1.0, tagheap is ahead).
"""
import argparse
import csv
import datetime
import hashlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALLOCATORS = ["tagheap", "mimalloc", "jemalloc", "glibc"]
COLLECTORS = ["tagheap", "boehm", "mimalloc"]
DEFAULT_ROUNDS = 7
GC_ROUNDS = 3              # at most this many rounds for the collection groups
DEFAULT_DEPTH = 21         # binary-trees, as the Benchmarks Game runs it (Boehm ~13 s per run here)
PAUSE_LIVE_MIB = [1, 10, 100]
PAUSE_OTHER_MIB = 500
WALK_LAYOUTS = ["half", "all", "sparse", "mixed"]


def GENERATIONAL(program, args, suffix=""):
    """tagheap's generational mode (Options::generational, the programs'
    write barriers on) as a peer of its own: tagheap_gen."""
    return ("tagheap_gen" + suffix, program + "_tagheap", args, {"GCB_GENERATIONAL": "1"})


def groups(depths):
    """group -> list of (label, binary under bazel-bin/bench, args[, extra environment[, pinned[, peer suffix]]])."""
    g = {
        "churn": [(a, "churn_" + a, []) for a in ALLOCATORS],
        "larson": [(a, "larson_" + a, []) for a in ALLOCATORS],
        "xfree": [(a, "xfree_" + a, []) for a in ALLOCATORS],
        "thread_churn": [(a, "thread_churn_" + a, []) for a in ALLOCATORS],
        "large": [(a, "large_" + a, []) for a in ALLOCATORS],
        # Every layout of walk.cc: half (reported as "walk"), all, sparse, mixed.
        "walk": [(f"{m} {l}", "walk", [m, "--layout=" + l]) for l in WALK_LAYOUTS for m in ["tagheap", "tagheap_c", "mimalloc"]],
        "isolation": [("isolation", "walk", ["isolation"])],
        "gcbench": [(v, "gcbench/gcbench_" + v, []) for v in COLLECTORS] + [GENERATIONAL("gcbench/gcbench", [])],
        "mt_gcbench": [(v, "gcbench/mt_gcbench_" + v, ["2"]) for v in COLLECTORS]
                      + [GENERATIONAL("gcbench/mt_gcbench", ["2"])],
        "binarytrees": [(v if len(depths) == 1 else f"{v} d{d}", "gcbench/binary_trees_" + v, [str(d)])
                        for d in depths for v in COLLECTORS]
                       + [GENERATIONAL("gcbench/binary_trees", [str(d)], "" if len(depths) == 1 else f" d{d}")
                          for d in depths],
        "pause": [],
    }
    for live in PAUSE_LIVE_MIB:
        g["pause"] += [
            (f"tagheap {live}M", "gcbench/pause_tagheap", [str(live)]),
            (f"tagheap {live}M+other", "gcbench/pause_tagheap", [str(live), str(PAUSE_OTHER_MIB)]),
            (f"boehm {live}M", "gcbench/pause_boehm", [str(live)]),
            (f"boehm {live}M+atomic", "gcbench/pause_boehm", [str(live), str(PAUSE_OTHER_MIB)]),
        ]
    # Parallel marking: both collectors with two markers, not pinned (the
    # other rows are pinned to one CPU, where the default is one marker).
    # On a 2-core machine, tagheap's two markers are its defaults unpinned,
    # what a user running GCBench or binary-trees gets.
    two_markers = [("tagheap", {"GCB_MARKERS": "2"}), ("boehm", {"GCB_BOEHM_MARKER_THREADS": "1", "GC_MARKERS": "2"})]
    g["gcbench"] += [(f"{v} 2 markers", "gcbench/gcbench_" + v, [], env, False, "_2markers") for v, env in two_markers]
    if len(depths) == 1:
        g["binarytrees"] += [(f"{v} 2 markers", "gcbench/binary_trees_" + v, [str(depths[0])], env, False, "_2markers")
                             for v, env in two_markers]
    g["pause"] += [
        (f"tagheap {PAUSE_LIVE_MIB[-1]}M 2 markers", "gcbench/pause_tagheap", [str(PAUSE_LIVE_MIB[-1])],
         {"GCB_MARKERS": "2"}, False),
        (f"boehm {PAUSE_LIVE_MIB[-1]}M 2 markers", "gcbench/pause_boehm", [str(PAUSE_LIVE_MIB[-1])],
         {"GCB_BOEHM_MARKER_THREADS": "1", "GC_MARKERS": "2"}, False),
    ]
    return g


GC_GROUPS = {"gcbench", "mt_gcbench", "binarytrees", "pause"}
MULTI_THREADED = {"larson", "xfree", "thread_churn", "mt_gcbench"}  # their threads pin themselves
UNITS = {"churn": "ns/op", "larson": "ns/op", "xfree": "ns/block", "thread_churn": "ns/alloc", "large": "ns/op",
         "walk": "ns/block", "gcbench": "ms", "mt_gcbench": "ms", "pause": "ms"}


def unit_of(workload):
    if "ratio" in workload:
        return "ratio"
    if workload.startswith("walk"):
        return "ns/block"
    if workload.startswith("binarytrees"):
        return "ms"
    if workload.startswith("pause"):
        return "ms/gc"
    return UNITS.get(workload, "")


def bazel(args, output_base):
    cmd = [os.path.join(ROOT, "bazelw")]
    if output_base:
        cmd.append("--output_base=" + output_base)
    # --symlink_prefix=/: leave the workspace's bazel-* links alone (they may
    # belong to someone else's output base).
    return cmd + args[:1] + ["--symlink_prefix=/"] + args[1:]


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True).stdout
    except OSError:
        return b""


def source_version():
    """HEAD plus a hash of uncommitted changes under alloc/, gc/ and bench/."""
    head = git("rev-parse", "--short", "HEAD").decode().strip() or "unknown"
    paths = ["alloc", "gc", "bench", ":!bench/results"]  # the results are outputs, not sources
    diff = git("diff", "HEAD", "--", *paths)
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *paths)
    if not diff and not untracked:
        return head
    return f"{head}+dirty:{hashlib.sha1(diff + untracked).hexdigest()[:8]}"


def build(output_base):
    print("building //bench/... (-c opt) ...", file=sys.stderr, flush=True)
    t0 = time.time()
    subprocess.run(bazel(["build", "-c", "opt", "//bench/..."], output_base), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run(bazel(["info", "-c", "opt", "bazel-bin"], output_base), cwd=ROOT, check=True,
                         capture_output=True, text=True)
    print(f"built in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return os.path.join(out.stdout.strip(), "bench")


def pin_to_last_cpu():
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def thp_mode():
    """The kernel's transparent-huge-page modes, e.g. 'enabled madvise, defrag madvise'."""
    modes = []
    for name in ["enabled", "defrag"]:
        try:
            with open(f"/sys/kernel/mm/transparent_hugepage/{name}") as f:
                m = re.search(r"\[(\S+)\]", f.read())
                modes.append(f"{name} {m.group(1) if m else '?'}")
        except OSError:
            modes.append(f"{name} unknown")
    return ", ".join(modes)


def run_child(cmd, pinned, env=None):
    """Runs cmd to the end; returns (returncode, stdout, stderr, usage) with usage from wait4()."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=pin_to_last_cpu if pinned else None,
                             env={**os.environ, **env} if env else None)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        usage = {"wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "minflt": ru.ru_minflt,
                 "majflt": ru.ru_majflt, "maxrss_kib": ru.ru_maxrss}
        return p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), usage


def run_one(bindir, binary, args, pinned=False, env=None):
    code, stdout, stderr, usage = run_child([os.path.join(bindir, binary)] + args, pinned, env)
    if code != 0:
        raise SystemExit(f"{binary} {' '.join(args)} failed ({code}):\n{stdout}\n{stderr}")
    rows = []
    for line in stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        workload, peer, value, rss = fields[:4]
        extras = {}
        for x in fields[4:]:
            k, sep, v = x.partition("=")
            if sep:
                extras[k] = v
            else:
                extras["gcs"] = x  # gcbench / binary-trees: the collection count
        if workload == "binarytrees":
            workload = f"binarytrees_d{args[0]}"
        rows.append((workload, peer, float(value), int(rss), extras, usage))
    return rows


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def fmt_notes(extras):
    return " ".join(f"{k}={v}" for k, v in extras.items())


SYS_FLAG = 0.10  # a run whose system time passes this share of its wall time is flagged


def summarize(results):
    """results: (workload, peer) -> list of (value, rss, extras, usage). Returns rows in first-seen order."""
    order = []
    for w, _ in results:
        if w not in order:
            order.append(w)
    summary = []
    for w in order:
        entries = {a: results[(w2, a)] for (w2, a) in results if w2 == w}
        med = {a: statistics.median(r[0] for r in runs) for a, runs in entries.items()}
        is_ratio = "ratio" in w
        best_all = min(med.values()) if not is_ratio else None
        for a in sorted(med, key=lambda a: (not a.startswith("tagheap"), a)):
            # Best other peer: for tagheap rows, the best non-tagheap one.
            others = {b: v for b, v in med.items() if b != a and not b.startswith("tagheap")}
            best_name = min(others, key=others.get) if others and not is_ratio else None
            runs = entries[a]
            vals = [r[0] for r in runs]
            near = min(runs, key=lambda r: abs(r[0] - med[a]))  # the run closest to the median
            use = lambda key: statistics.median(r[3][key] for r in runs)
            def ratio_to(name):
                # A row with several markers against the same peer's (tagheap_2markers / boehm_2markers).
                if "_" in a and a.split("+")[0].endswith("markers") and name == "boehm":
                    name = "boehm_" + a.split("+")[0].split("_", 1)[1]
                base = med.get(name)
                return med[a] / base if base and not is_ratio and name != a else None
            summary.append({
                "workload": w, "peer": a, "unit": unit_of(w), "median": med[a], "min": min(vals),
                "max": max(vals), "runs": len(vals), "peak_rss_kib": max(r[1] for r in runs),
                "best_peer": best_name,
                "ratio_best_peer": med[a] / others[best_name] if best_name else None,
                "ratio_best": med[a] / best_all if best_all else None,
                "ratio_mimalloc": ratio_to("mimalloc"), "ratio_boehm": ratio_to("boehm"),
                "notes": fmt_notes(near[2]),
                "wall_s": use("wall_s"), "user_s": use("user_s"), "sys_s": use("sys_s"),
                "minflt": use("minflt"), "maxrss_kib": max(r[3]["maxrss_kib"] for r in runs),
                "sys_share": statistics.median(r[3]["sys_s"] / r[3]["wall_s"] for r in runs),
                "sys_flagged": sum(r[3]["sys_s"] > SYS_FLAG * r[3]["wall_s"] for r in runs),
            })
    return summary


def fmt_count(n):
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"


def table_lines(summary):
    head = (f"{'workload':22} {'peer':22} {'median':>9} {'unit':>8} {'spread':>6} {'peak RSS':>9} "
            f"{'user s':>7} {'sys s':>6} {'sys%':>5} {'faults':>6} "
            f"{'/best peer':>10} {'(which)':10} {'/mimalloc':>9} {'/boehm':>7}  notes")
    lines = [head]
    last = None
    for s in summary:
        if last is not None and s["workload"] != last:
            lines.append("")
        last = s["workload"]
        spread = (s["max"] - s["min"]) / s["median"] * 100 if s["median"] else 0
        flag = "!" if s["sys_flagged"] else " "
        lines.append(f"{s['workload']:22} {s['peer']:22} {s['median']:9.3f} {s['unit']:>8} {spread:5.0f}% "
                     f"{s['peak_rss_kib'] / 1024:7.1f}Mi {s['user_s']:7.2f} {s['sys_s']:6.2f} "
                     f"{s['sys_share'] * 100:4.0f}%{flag}{fmt_count(s['minflt']):>6} "
                     f"{fmt_ratio(s['ratio_best_peer']):>10} "
                     f"{s['best_peer'] or '':10} {fmt_ratio(s['ratio_mimalloc']):>9} "
                     f"{fmt_ratio(s['ratio_boehm']):>7}  {s['notes']}".rstrip())
    return lines


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_svg(path, summary, title):
    """One group of bars per workload, a bar per peer, value / best in group."""
    rows = [s for s in summary if s["ratio_best"] is not None]
    workloads = []
    for s in rows:
        if s["workload"] not in workloads:
            workloads.append(s["workload"])
    workloads = [w for w in workloads if sum(1 for s in rows if s["workload"] == w) > 1]
    palette = {"tagheap": "#1f77b4", "mimalloc": "#ff7f0e", "jemalloc": "#2ca02c", "glibc": "#9467bd",
               "boehm": "#d62728"}
    cap = 4.0  # bars longer than this are clipped (and say so)
    label_w, bar_area, bar_h, gap = 360, 480, 14, 12
    height = 60 + sum(gap + bar_h * sum(1 for s in rows if s["workload"] == w) for w in workloads) + 40
    width = label_w + bar_area + 190
    esc = lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{esc(title)}</text>',
           f'<text x="10" y="38" fill="#555">value / best in its workload (1.0 = best; lower is better; '
           f'bars clipped at {cap:g})</text>']
    x0 = label_w
    y = 56
    for w in workloads:
        y += gap
        out.append(f'<text x="10" y="{y + bar_h - 3}" font-weight="bold">{esc(w)} ({esc(unit_of(w))})</text>')
        for s in [s for s in rows if s["workload"] == w]:
            r = s["ratio_best"]
            length = min(r, cap) / cap * bar_area
            color = palette.get(s["peer"].split()[0].split("+")[0].split("_")[0], "#7f7f7f")
            out.append(f'<text x="{x0 - 6}" y="{y + bar_h - 3}" text-anchor="end">{esc(s["peer"])}</text>')
            out.append(f'<rect x="{x0}" y="{y + 1}" width="{length:.1f}" height="{bar_h - 2}" fill="{color}"/>')
            label = f"{r:.2f}{'+' if r > cap else ''}  ({s['median']:.3g} {unit_of(w)})"
            out.append(f'<text x="{x0 + length + 4:.1f}" y="{y + bar_h - 3}">{esc(label)}</text>')
            y += bar_h
    one = x0 + bar_area / cap
    out.append(f'<line x1="{one:.1f}" y1="50" x2="{one:.1f}" y2="{y + 4}" stroke="#999" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{one:.1f}" y="{y + 18}" text-anchor="middle" fill="#555">1.0</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_depth_svg(path, summary, title):
    """binary-trees over depth: tagheap's time over each peer's, and each peer's system time share."""
    by = {}  # depth -> peer -> summary row
    for s in summary:
        m = re.fullmatch(r"binarytrees_d(\d+)", s["workload"])
        if m:
            by.setdefault(int(m.group(1)), {})[s["peer"]] = s
    depths = sorted(d for d in by if "tagheap" in by[d])
    if len(depths) < 2:
        return
    palette = {"tagheap": "#1f77b4", "mimalloc": "#ff7f0e", "boehm": "#d62728"}
    esc = lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    pw, ph, left, top, gap = 400, 240, 60, 84, 90
    width, height = left + 2 * pw + gap + 30, top + ph + 96
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{esc(title)}</text>',
           '<text x="10" y="38" fill="#555">medians over rounds. Left: tagheap\'s wall (and CPU) time over the '
           'peer\'s (goal: at most 0.6 of Boehm\'s, flat in depth).</text>',
           '<text x="10" y="52" fill="#555">Right: each peer\'s system CPU time over its wall time '
           '(goal: under 10%).</text>']

    def panel(x0, name, series, ymax, guides, fmt):
        out.append(f'<text x="{x0}" y="{top - 12}" font-weight="bold">{esc(name)}</text>')
        out.append(f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        X = lambda d: x0 + 20 + (d - depths[0]) / (depths[-1] - depths[0]) * (pw - 40)
        Y = lambda v: top + ph - min(v, ymax) / ymax * ph
        for g, label in guides:
            out.append(f'<line x1="{x0}" y1="{Y(g):.1f}" x2="{x0 + pw}" y2="{Y(g):.1f}" stroke="#bbb" '
                       f'stroke-dasharray="4,3"/>')
            out.append(f'<text x="{x0 + pw - 4}" y="{Y(g) - 3:.1f}" text-anchor="end" fill="#777">{esc(label)}</text>')
        for i in range(5):
            v = ymax * i / 4
            out.append(f'<text x="{x0 - 4}" y="{Y(v) + 4:.1f}" text-anchor="end" fill="#555">{fmt(v)}</text>')
        for d in depths:
            out.append(f'<text x="{X(d):.1f}" y="{top + ph + 16}" text-anchor="middle">{d}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 32}" text-anchor="middle" fill="#555">depth</text>')
        for k, (label, color, points) in enumerate(series):
            pts = " ".join(f"{X(d):.1f},{Y(v):.1f}" for d, v in points)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
            for d, v in points:
                out.append(f'<circle cx="{X(d):.1f}" cy="{Y(v):.1f}" r="3" fill="{color}"/>')
                out.append(f'<text x="{X(d) + 4:.1f}" y="{Y(v) - 5:.1f}" fill="{color}">{fmt(v)}</text>')
            out.append(f'<text x="{x0 + 8}" y="{top + ph + 50 + 14 * k}" fill="{color}">{esc(label)}</text>')

    ratios = []
    cpu = lambda row: row["user_s"] + row["sys_s"]
    for peer in ["boehm", "mimalloc"]:
        pts = [(d, by[d]["tagheap"]["median"] / by[d][peer]["median"]) for d in depths if peer in by[d]]
        if pts:
            ratios.append((f"tagheap / {peer}, wall time", palette[peer], pts))
    # CPU time (user + system) too: on a loaded machine it is the steadier figure.
    pts = [(d, cpu(by[d]["tagheap"]) / cpu(by[d]["boehm"])) for d in depths if "boehm" in by[d] and cpu(by[d]["boehm"])]
    if pts:
        ratios.append(("tagheap / boehm, CPU time", "#8c564b", pts))
    ymax = max([1.2] + [v * 1.15 for _, _, pts in ratios for _, v in pts])
    panel(left, "time ratio", ratios, ymax, [(1.0, "1.0"), (0.6, "0.6 (goal vs Boehm)")], lambda v: f"{v:.2f}")
    shares = [(peer, palette[peer], [(d, by[d][peer]["sys_share"] * 100) for d in depths if peer in by[d]])
              for peer in ["tagheap", "boehm", "mimalloc"]]
    shares = [x for x in shares if x[2]]
    ymax = max([15.0] + [v * 1.15 for _, _, pts in shares for _, v in pts])
    panel(left + pw + gap, "system time, % of wall", shares, ymax, [(10.0, "10%")], lambda v: f"{v:.1f}")
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def update_readme(lines):
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    i = text.index(begin) + len(begin)
    j = text.index(end)
    text = text[:i] + "\n" + "\n".join(lines) + "\n" + text[j:]
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    ap.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="binary-trees depth")
    ap.add_argument("--depths", default="", help="binary-trees at each of these depths (e.g. 18,19,20,21,22), "
                    "plotted in binarytrees_depths.svg")
    ap.add_argument("--only", default="", help="comma-separated groups (default: all)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--output_base", default=os.environ.get("BENCH_OUTPUT_BASE", ""))
    ap.add_argument("--bindir", default="", help="use binaries from here (implies --no-build)")
    ap.add_argument("--readme", action="store_true", help="rewrite README.md's section even for a partial run")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--results_dir", default="", help="where the CSVs and the SVG go (default: bench/results "
                    "for a full run or --readme, else a directory under the system's temp dir)")
    opts = ap.parse_args()
    depths = [int(d) for d in opts.depths.split(",") if d.strip()] or [opts.depth]
    all_groups = groups(depths)
    selected = [g.strip() for g in opts.only.split(",") if g.strip()] or list(all_groups)
    for g in selected:
        if g not in all_groups:
            raise SystemExit(f"unknown group {g}; known: {', '.join(all_groups)}")

    if opts.bindir:
        bindir = opts.bindir
    elif opts.no_build:
        out = subprocess.run(bazel(["info", "-c", "opt", "bazel-bin"], opts.output_base), cwd=ROOT, check=True,
                             capture_output=True, text=True)
        bindir = os.path.join(out.stdout.strip(), "bench")
    else:
        bindir = build(opts.output_base)

    version = source_version()
    load_before = os.getloadavg()
    print(f"# tagheap sources: {version}", file=sys.stderr)
    print(f"# load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
          f"on {os.cpu_count()} cpus; transparent huge pages: {thp_mode()}", file=sys.stderr)
    rounds_of = {g: min(opts.rounds, GC_ROUNDS) if g in GC_GROUPS else opts.rounds for g in selected}
    results = {}  # (workload, peer) -> list of (value, rss, extras, usage)
    raw = []
    total = sum(rounds_of[g] * len(all_groups[g]) for g in selected)
    done = 0
    t_start = time.time()
    for r in range(max(rounds_of.values())):
        for g in selected:
            if r >= rounds_of[g]:
                continue
            jobs = all_groups[g]
            k = r % len(jobs)
            for label, binary, args, *rest in jobs[k:] + jobs[:k]:  # rotated: A B C D, B C D A, ...
                env = rest[0] if rest else None
                pinned = rest[1] if len(rest) > 1 else g not in MULTI_THREADED
                done += 1
                t0 = time.time()
                rows = run_one(bindir, binary, args, pinned=pinned, env=env)
                if len(rest) > 2:  # the peer as it ran (tagheap_2markers), not as the binary names itself
                    rows = [(w, p + rest[2], *more) for w, p, *more in rows]
                dt = time.time() - t0
                shown = "  ".join(f"{w}={v:.3f}" for w, _, v, _, _, _ in rows)
                if rows:
                    u = rows[0][5]
                    shown += f"  (sys {u['sys_s']:.2f}s, {fmt_count(u['minflt'])} faults)"
                el = time.time() - t_start
                eta = el / done * (total - done)
                print(f"[{done:3}/{total}] round {r + 1} {g:12} {label:20} {dt:5.1f}s  {shown}"
                      f"   (elapsed {el:.0f}s, ~{eta:.0f}s left, load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
                for w, a, v, rss, extras, u in rows:
                    results.setdefault((w, a), []).append((v, rss, extras, u))
                    raw.append((r + 1, w, a, v, rss, f"{u['wall_s']:.3f}", f"{u['user_s']:.3f}", f"{u['sys_s']:.3f}",
                                u["minflt"], u["majflt"], u["maxrss_kib"], fmt_notes(extras)))
    elapsed = time.time() - t_start
    load = os.getloadavg()
    summary = summarize(results)
    thp = thp_mode()

    # A partial run must not leave bench/results disagreeing with README.md.
    full = set(selected) == set(all_groups) and opts.rounds >= DEFAULT_ROUNDS and not opts.depths
    out_dir = opts.results_dir or (os.path.join(HERE, "results") if full or opts.readme
                                   else os.path.join(tempfile.gettempdir(), "tagheap-bench-results"))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "peer", "unit", "median", "min", "max", "runs", "peak_rss_kib",
                     "ratio_to_best_peer", "best_peer", "ratio_to_best", "ratio_to_mimalloc", "ratio_to_boehm",
                     "notes", "wall_s", "user_s", "sys_s", "sys_share", "minflt", "ru_maxrss_kib", "thp", "sources"])
        r3 = lambda x: "" if x is None else f"{x:.3f}"
        for s in summary:
            wr.writerow([s["workload"], s["peer"], s["unit"], f"{s['median']:.3f}", f"{s['min']:.3f}",
                         f"{s['max']:.3f}", s["runs"], s["peak_rss_kib"], r3(s["ratio_best_peer"]),
                         s["best_peer"] or "", r3(s["ratio_best"]), r3(s["ratio_mimalloc"]), r3(s["ratio_boehm"]),
                         s["notes"], f"{s['wall_s']:.3f}", f"{s['user_s']:.3f}", f"{s['sys_s']:.3f}",
                         f"{s['sys_share']:.3f}", f"{s['minflt']:.0f}", s["maxrss_kib"], thp, version])
    with open(os.path.join(out_dir, "runs.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["round", "workload", "peer", "value", "peak_rss_kib", "wall_s", "user_s", "sys_s", "minflt",
                     "majflt", "ru_maxrss_kib", "notes"])
        wr.writerows(raw)
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = f"{os.cpu_count()} cpus (nproc), {cpu_model()}"
    write_svg(os.path.join(out_dir, "results.svg"), summary,
              f"tagheap benchmarks, {date}, {version}, {machine}")
    if len(depths) > 1:
        write_depth_svg(os.path.join(out_dir, "binarytrees_depths.svg"), summary,
                        f"binary-trees by depth, {date}, {version}, {machine}, THP {thp.split(',')[0]}")

    lines = table_lines(summary)
    footer = [
        f"# sources {version}; {date}; {machine}; transparent huge pages: {thp}",
        f"# rounds: {', '.join(f'{g} {rounds_of[g]}' for g in selected)}; ran {elapsed:.0f}s; spread = "
        f"(max-min)/median over rounds",
        f"# load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"# user s, sys s, faults: medians of the process's CPU times and minor page faults (wait4); "
        f"sys% its system time over its wall time, `!`: over {SYS_FLAG:.0%} in some round",
    ]
    print()
    print("\n".join(lines))
    print()
    print("\n".join(footer))
    print(f"# results: {os.path.relpath(out_dir, ROOT) if out_dir.startswith(ROOT) else out_dir}/"
          "results.csv, runs.csv, results.svg" + (", binarytrees_depths.svg" if len(depths) > 1 else ""))

    if opts.readme or (full and not opts.no_readme):
        update_readme([
            "## Performance",
            "",
            f"`bench/run.py` (or `./bazelw run //bench:all`), {date}, sources `{version}`, on {machine}; "
            f"load average {load_before[0]:.2f} before, {load[0]:.2f} after (2-core machine shared with "
            "other work: read the spread). Medians over rounds; single-threaded workloads pinned to one CPU, "
            "multi-threaded ones one thread per CPU (pinned, tagheap's default is one marker); `_2markers`: "
            "unpinned, two markers (tagheap's default here unpinned; Boehm with its helpers started), "
            "`/boehm` then over `boehm_2markers`; "
            "lower is better; `/best peer` is the "
            "value over the best other peer's (below 1.0: ahead). binary-trees at depth "
            f"{opts.depth}; transparent huge pages: {thp}. GC peers: tagheap `MarkSweep` (defaults; "
            "`tagheap_gen`: `Options::generational`, the programs calling `write_barrier`), Boehm (libgc), mimalloc "
            "with explicit free (the floor, no collector). `pause_*`: one full collection of that much live data; `+other`: "
            f"beside {PAUSE_OTHER_MIB} MiB of live non-GC-tag blocks (Boehm: `GC_MALLOC_ATOMIC_UNCOLLECTABLE` blocks). "
            "Chart: `bench/results/results.svg`; details: `bench/README.md`.",
            "",
            "```",
            *lines,
            "",
            *footer,
            "```",
        ])
        print("# README.md: performance section rewritten")


if __name__ == "__main__":
    main()
