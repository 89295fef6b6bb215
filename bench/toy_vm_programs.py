#!/usr/bin/env python3
"""The toy VM's programs under each collector mode, side by side.

    bench/toy_vm_programs.py [--rounds=5] [--no-build] [--results_dir=bench/results/toy_vm]

A benchmark, not a test. Runs every program of examples/toy_vm/programs/
(binary-trees at --depth, default 16; weak-cache for a fixed number of
steps, WEAK_CACHE_STEPS; the others as they are) with tvm built
-c opt, in four modes:
  policy        the defaults: the collector's heap-sizing policy
  budget=8M     --gc-budget=8M, the fixed budget the toy VM had before the
                policy (the collector-policy issue's baseline)
  generational  --generational (minor collections, write barriers)
  incremental   --incremental (cycles of short pauses, write barriers)
Rounds are interleaved (every mode of every program once per round, the
order rotated). Per run: wall time, user and sys CPU, minor faults and peak
RSS of the child (os.wait4); medians over rounds, with the ratios of time and
RSS to the policy run and to the budget=8M run. Writes runs.csv and
summary.md to --results_dir.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS_DIR = os.path.join(ROOT, "examples", "toy_vm", "programs")
MODES = [
    ("policy", []),
    ("budget=8M", ["--gc-budget=8M"]),
    ("generational", ["--generational"]),
    ("incremental", ["--incremental"]),
]


def build(no_build):
    bazel = [os.path.join(ROOT, "bazelw")]
    if not no_build:
        subprocess.run(bazel + ["build", "-c", "opt", "//examples/toy_vm:tvm"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    out = subprocess.run(bazel + ["info", "-c", "opt", "bazel-bin"], cwd=ROOT, check=True, stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    return os.path.join(out, "examples", "toy_vm", "tvm")


# weak-cache keeps allocating until its cache is empty, which takes as long
# as the first full collection after its keys die: a generational run would
# do about twice the work of the others (its dead keys are old). A fixed
# number of steps, past where every mode has emptied it, gives every mode
# the same work.
WEAK_CACHE_STEPS = 400000


def programs(depth):
    found = []
    for name in sorted(os.listdir(PROGRAMS_DIR)):
        if name.endswith(".lisp"):
            args = [str(depth)] if name == "binary-trees.lisp" else []
            if name == "weak-cache.lisp":
                args = [str(WEAK_CACHE_STEPS)]
            found.append((name[:-5], [os.path.join(PROGRAMS_DIR, name)] + args))
    return found


def run_one(tvm, mode_args, prog_args):
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.Popen([tvm] + mode_args + prog_args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=PROGRAMS_DIR)
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("tvm %s failed:\n%s" % (" ".join(mode_args + prog_args), err))
    return {"wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "cpu_s": ru.ru_utime + ru.ru_stime,
            "minflt": ru.ru_minflt, "peak_rss_mib": ru.ru_maxrss / 1024.0, "load1": load}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--depth", type=int, default=16, help="binary-trees' max depth")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--results_dir", default=os.path.join(ROOT, "bench", "results", "toy_vm"))
    opts = ap.parse_args()
    tvm = build(opts.no_build)
    jobs = [(prog, args, mode, margs) for prog, args in programs(opts.depth) for mode, margs in MODES]
    runs = []
    for r in range(opts.rounds):
        order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
        for prog, args, mode, margs in order:
            run = run_one(tvm, margs, args)
            run.update(program=prog, mode=mode, round=r)
            runs.append(run)
            print("%-13s %-13s wall %.3f s cpu %.3f s rss %.1f MiB" % (prog, mode, run["wall_s"], run["cpu_s"],
                                                                       run["peak_rss_mib"]), file=sys.stderr)
    os.makedirs(opts.results_dir, exist_ok=True)
    keys = ["program", "mode", "round", "wall_s", "cpu_s", "user_s", "sys_s", "minflt", "peak_rss_mib", "load1"]
    with open(os.path.join(opts.results_dir, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for run in runs:
            w.writerow({k: run[k] for k in keys})

    def med(prog, mode, key):
        return statistics.median(x[key] for x in runs if x["program"] == prog and x["mode"] == mode)

    lines = ["%d rounds, binary-trees depth %d, load1 %.1f-%.1f during the runs" %
             (opts.rounds, opts.depth, min(x["load1"] for x in runs), max(x["load1"] for x in runs)), "",
             "| program | mode | wall s | user+sys s | sys s | minor faults | peak RSS MiB "
             "| wall / policy | RSS / policy | wall / budget=8M | RSS / budget=8M |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for prog, _ in programs(opts.depth):
        base_w, base_m = med(prog, "policy", "wall_s"), med(prog, "policy", "peak_rss_mib")
        old_w, old_m = med(prog, "budget=8M", "wall_s"), med(prog, "budget=8M", "peak_rss_mib")
        for mode, _ in MODES:
            w, m = med(prog, mode, "wall_s"), med(prog, mode, "peak_rss_mib")
            lines.append("| %s | %s | %.3f | %.3f | %.3f | %d | %.1f | %.2f | %.2f | %.2f | %.2f |" %
                         (prog, mode, w, med(prog, mode, "cpu_s"), med(prog, mode, "sys_s"),
                          med(prog, mode, "minflt"), m, w / base_w, m / base_m, w / old_w, m / old_m))
    with open(os.path.join(opts.results_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
