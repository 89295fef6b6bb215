#!/usr/bin/env python3
"""tagheap's libgc.so.1 against Debian's libgc, on programs that are the same
binaries for both (only LD_LIBRARY_PATH differs):

  w3m        Debian's w3m -dump of the largest generated document (the 4 MB
             "mixed" one of examples/libgc/tests/gen_html.py)
  gcbench    bench/gcbench's GCBench built against Debian's gc.h (gcbench_boehm)
  guile      Debian's guile running examples/libgc/tests/guile/closures.scm
  guile-weak Debian's guile running examples/libgc/tests/guile/weak.scm
             (weak tables, guardians, finalizers)
  ecl        Debian's ecl (ECL 21.2) loading examples/libgc/tests/ecl/data.lsp
             (lists, bignums, strings, hash tables, structures, sorting)
  ecl-control  the same on control.lsp (696 forced full collections under
             deep recursion, conditions and CLOS: the collections' cost)

Each round runs every (program, library) pair once, in rotating order. The
single-threaded programs (w3m, gcbench) run pinned to the last CPU, as
bench/run.py pins its own: on this VM one vCPU ran memory-bound code 1.5x
slower than the other for minutes at a time (w3m 1.03-1.04 s on CPU 1
against 0.69-0.76 on CPU 0, the same library, interleaved), and an
unpinned run landed on either, so five rounds' medians could put the two
libraries on different CPUs (w3m 1.17x one run, 0.82x the next). Guile
and ECL run marker and finalizer threads: unpinned. The table shows
medians of wall time, CPU time (user+sys) and peak RSS over the
rounds, and the ratios tagheap / Debian (below 1.0: tagheap is ahead), with
the load average before and after. A benchmark, not a test: it checks
nothing but that both libraries give the same output.

    bench/libgc_bench.py [--rounds=N] [--output_base=DIR] [--only=w3m,guile]
                         [--env=NAME=VALUE ...]   (tagheap's runs only)
                         [--libgc=PATH]  (a libgc.so.1 built earlier, instead of the workspace's)
                         [--before=PATH] (a libgc.so.1 built earlier, run as a third library
                                          "before", interleaved with the others)
    ./bazelw run //bench:libgc -- [--rounds=N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from run import pin_to_last_cpu  # the suite's own pinning (bench/run.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


SINGLE_THREADED = {"w3m", "gcbench"}  # pinned to one CPU (the module comment says why)


def build(output_base):
    cmd = ["./bazelw"] + (["--output_base=" + output_base] if output_base else [])
    cmd += ["build", "-c", "opt", "//examples/libgc:libgc.so.1", "//bench/gcbench:gcbench_boehm"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = cmd[:-4] + ["info", "bazel-bin"]
    info = [c for c in info if c != "build"]
    return subprocess.run(info, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def run(argv, libdir, env_extra=None, pinned=False):
    """Runs argv under /usr/bin/time (pinned: on the last CPU); returns (wall s, user+sys s, peak KiB, stdout)."""
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if libdir:
        env["LD_LIBRARY_PATH"] = libdir
    env.update(env_extra or {})
    with tempfile.NamedTemporaryFile("r") as t:
        p = subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%e %U %S %M"] + argv, env=env,
                           capture_output=True, text=True, preexec_fn=pin_to_last_cpu if pinned else None)
        if p.returncode != 0:
            sys.exit("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr[-2000:]))
        wall, user, system, kib = t.read().split()[-4:]
    return float(wall), float(user) + float(system), int(kib), p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--output_base", default="")
    ap.add_argument("--only", default="", help="comma-separated programs (default: all)")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for tagheap's runs")
    ap.add_argument("--libgc", default="", help="use this libgc.so.1 instead of the workspace's")
    ap.add_argument("--before", default="", help="also run this libgc.so.1, as the library 'before'")
    args = ap.parse_args()
    tagheap_env = dict(e.split("=", 1) for e in args.env)
    bin_dir = build(args.output_base)
    work = tempfile.mkdtemp(prefix="libgc-bench-")
    libdir = os.path.join(work, "lib")
    os.mkdir(libdir)
    lib = os.path.abspath(args.libgc) if args.libgc else os.path.join(bin_dir, "examples/libgc/libgc.so.1")
    os.symlink(lib, os.path.join(libdir, "libgc.so.1"))
    libs = {"debian": None, "tagheap": libdir}
    if args.before:
        libs["before"] = os.path.join(work, "before")
        os.mkdir(libs["before"])
        os.symlink(os.path.abspath(args.before), os.path.join(libs["before"], "libgc.so.1"))
    doc = os.path.join(work, "mixed.html")
    subprocess.run([sys.executable, os.path.join(ROOT, "examples/libgc/tests/gen_html.py"), "mixed", doc], check=True)
    home = {"HOME": work, "GUILE_AUTO_COMPILE": "0"}
    programs = {
        "w3m": (["w3m", "-dump", doc], home),
        "gcbench": ([os.path.join(bin_dir, "bench/gcbench/gcbench_boehm")], {}),
        "guile": (["guile", "--no-auto-compile", os.path.join(ROOT, "examples/libgc/tests/guile/closures.scm")], home),
        "guile-weak": (["guile", "--no-auto-compile", os.path.join(ROOT, "examples/libgc/tests/guile/weak.scm")], home),
        "ecl": (["ecl", "--norc", "--load", os.path.join(ROOT, "examples/libgc/tests/ecl/data.lsp"), "--eval", "(quit)"],
                home),
        "ecl-control": (["ecl", "--norc", "--load", os.path.join(ROOT, "examples/libgc/tests/ecl/control.lsp"), "--eval",
                         "(quit)"], home),
    }
    if args.only:
        programs = {p: programs[p] for p in args.only.split(",")}
    results = {(p, l): [] for p in programs for l in libs}
    outputs = {}
    pairs = [(p, l) for p in programs for l in libs]
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for i in range(len(pairs)):
            prog, lib = pairs[(i + r) % len(pairs)]
            argv, env = programs[prog]
            env = dict(env, **tagheap_env) if lib != "debian" else env
            wall, cpu, kib, out = run(argv, libs[lib], env, pinned=prog in SINGLE_THREADED)
            results[(prog, lib)].append((wall, cpu, kib))
            if prog != "gcbench":  # gcbench prints its own timing
                outputs.setdefault(prog, out)
                if out != outputs[prog]:
                    sys.exit("%s printed different output on %s's libgc" % (prog, lib))
    load = os.getloadavg()
    print("libgc.so.1: tagheap vs Debian's libgc (bdwgc 8.2), %d rounds, medians, %s pinned to the last CPU; "
          "load average %.2f before, %.2f %.2f %.2f after%s" % (args.rounds, " and ".join(sorted(SINGLE_THREADED)),
                                                                 load_before[0], *load,
                                      "; tagheap with " + " ".join(args.env) if args.env else ""))
    print("%-11s %-8s %8s %8s %10s %7s %7s %7s" % ("program", "libgc", "wall s", "cpu s", "peak RSS", "wall x",
                                                   "cpu x", "RSS x"))
    for prog in programs:
        base = [statistics.median(r[c] for r in results[(prog, "debian")]) for c in range(3)]
        for lib in libs:
            wall, cpu, kib = [statistics.median(r[c] for r in results[(prog, lib)]) for c in range(3)]
            print("%-11s %-8s %8.3f %8.3f %8.1fMi %7.2f %7.2f %7.2f" % (prog, lib, wall, cpu, kib / 1024,
                                                                     wall / base[0], cpu / base[1], kib / base[2]))


if __name__ == "__main__":
    main()
