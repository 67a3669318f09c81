#!/usr/bin/env python3
"""Time `reportgen run` as a whole process: wall time and peak memory, median of several runs.

    python scripts/bench.py                       # the bundled sample, every format, 5 runs
    python scripts/bench.py --runs 3 big.csv      # another table
    python scripts/bench.py --synthetic 100000    # a generated table of that many customers
    python scripts/bench.py --cold                # no Vega bundle cache (a first run ever)

Paired: two commands alternated in one batch (A B B A A B ...), so drift in the shared
machine's load falls on both alike; prints each median and the ratio of medians (B / A):

    python scripts/bench.py --pair /work/wt/base .                 # two trees (PYTHONPATH)
    python scripts/bench.py --pair 'PYTHONPATH=/work/wt/base python -m reportgen run' \\
                                   'PYTHONPATH=. python -m reportgen run'
    python scripts/bench.py --pair /work/wt/base . --beside 1      # with a CPU-bound job beside

A pair member that is a folder runs `python -m reportgen run` with PYTHONPATH set to it;
anything else is a shell command. The run arguments (--quiet, --out, --format, the source)
are appended to either. --beside N holds N busy loops (`while True: pass`) for the whole
batch, the "another job on the machine" case. The load average is printed with every figure.

The machine is shared and noisy: read the median, and compare by ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TARGET_S = 4.0  # the whole sample report, every format


def synthetic(n: int, path: Path, seed: int = 0) -> Path:
    """A marketing-shaped table of n customers (the sample's columns, resampled with noise)."""
    import numpy as np
    import pandas as pd

    here = Path(__file__).resolve().parent.parent
    base = pd.read_csv(here / "data" / "marketing_campaign.csv", sep="\t")
    rng = np.random.default_rng(seed)
    frame = base.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    frame["ID"] = np.arange(n)
    for col in [c for c in frame.columns if c.startswith(("Mnt", "Num"))]:
        frame[col] = (frame[col] * rng.uniform(0.9, 1.1, n)).round().astype(int)
    frame.to_csv(path, sep="\t", index=False)
    return path


def one_run(args: list[str] | str, env: dict[str, str] | None = None
            ) -> tuple[float, float, int]:
    """Wall seconds, peak memory in MB and exit code of one run (a shell string runs in sh):
    the peak of the summed RSS of the process and its descendants (bench_scale.TreePeak: the
    render worker counts), or the process's own peak RSS if that is higher."""
    from bench_scale import TreePeak

    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            shell=isinstance(args, str), env=env)
    poller = TreePeak(proc.pid)
    # reaped only once the poller has stopped reading its /proc entries
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    tree = poller.stop()
    # wait4 gives this child's own peak RSS (not all children's, PERFORMANCE.md trap 8); for
    # a shell command it is the command's (sh execs a single command) or the shell's.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(proc.stderr.read().decode() if proc.stderr else "")
    if proc.stderr:
        proc.stderr.close()
    return wall, max(tree / 1024 ** 2, usage.ru_maxrss / 1024), code


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def busy_beside(n: int) -> Iterator[None]:
    """n CPU-bound processes held for the duration (another job sharing the machine)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        if procs:
            time.sleep(1.0)  # let the scheduler see them before the first timed run
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def pair_command(member: str, run_args: list[str]) -> str:
    """The shell command for one member of --pair."""
    if Path(member).is_dir():
        tree = Path(member).resolve()
        # PYTHONSAFEPATH: `python -m` would put the working folder first on sys.path, before
        # PYTHONPATH, so run from a checkout both trees would run that checkout's code
        return (f"PYTHONSAFEPATH=1 PYTHONPATH={shlex.quote(str(tree))} "
                f"{shlex.quote(sys.executable)} -m reportgen run {shlex.join(run_args)}")
    return f"{member} {shlex.join(run_args)}"


def paired(opts: argparse.Namespace, source: str | None, tmp: Path) -> dict[str, object]:
    commands = [pair_command(m, ["--quiet", "--out", str(tmp / f"out-{label}"),
                                 "--format", opts.format] + ([source] if source else []))
                for m, label in zip(opts.pair, "AB", strict=True)]
    walls: dict[str, list[float]] = {"A": [], "B": []}
    for label, cmd in zip("AB", commands, strict=True):
        print(f"{label}: {cmd}", file=sys.stderr)
    with busy_beside(opts.beside):
        before = load_average()
        print(f"before the batch: {before}", file=sys.stderr)
        # One untimed run each first (page cache, the Vega bundle cache).
        for label, cmd in zip("AB", commands, strict=True):
            if one_run(cmd)[2] != 0:
                print(f"{label} failed", file=sys.stderr)
                raise SystemExit(1)
        # ABBA order: a slow drift of the machine's load costs both commands the same.
        order = [("AB", "BA")[i % 2] for i in range(opts.runs)]
        for i, pair in enumerate(order):
            for label in pair:
                wall, _, code = one_run(commands["AB".index(label)])
                if code != 0:
                    print(f"{label} failed with exit code {code}", file=sys.stderr)
                    raise SystemExit(1)
                walls[label].append(wall)
            print(f"round {i + 1}: A {walls['A'][-1]:.2f} s, B {walls['B'][-1]:.2f} s  "
                  f"({load_average()})", file=sys.stderr)
        after = load_average()
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {
        "A": opts.pair[0], "B": opts.pair[1], "runs": opts.runs, "beside": opts.beside,
        "A_median_s": round(med["A"], 3), "B_median_s": round(med["B"], 3),
        "A_min_s": round(min(walls["A"]), 3), "B_min_s": round(min(walls["B"]), 3),
        "ratio_B_over_A": round(med["B"] / med["A"], 3),
        "load_before": before, "load_after": after,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source", nargs="?", help="table to run on (default: the bundled sample)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (per command with --pair)")
    ap.add_argument("--format", default="html,pdf,email", help="formats to render")
    ap.add_argument("--cold", action="store_true",
                    help="every run starts without the Vega bundle cache")
    ap.add_argument("--synthetic", type=int, metavar="N", help="generate a table of N customers")
    ap.add_argument("--pair", nargs=2, metavar=("A", "B"),
                    help="alternate two commands (or trees) and print the ratio of medians")
    ap.add_argument("--beside", type=int, default=0, metavar="N",
                    help="hold N CPU-bound busy loops for the whole batch")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = opts.source
        if opts.synthetic:
            source = str(synthetic(opts.synthetic, Path(tmp) / f"synthetic_{opts.synthetic}.tsv"))
        if opts.pair:
            result = paired(opts, source, Path(tmp))
            if opts.json:
                print(json.dumps(result, indent=2))
            else:
                print(f"A median {result['A_median_s']} s (min {result['A_min_s']} s), "
                      f"B median {result['B_median_s']} s (min {result['B_min_s']} s), "
                      f"B/A {result['ratio_B_over_A']} over {opts.runs} runs each, "
                      f"{opts.beside} busy loop(s) beside; {result['load_before']} before, "
                      f"{result['load_after']} after")
            return 0
        cmd = [sys.executable, "-m", "reportgen", "run", "--quiet", "--out", str(Path(tmp) / "out"),
               "--format", opts.format] + ([source] if source else [])
        walls, peaks = [], []
        env = dict(os.environ)
        with busy_beside(opts.beside):
            before = load_average()
            for i in range(opts.runs):
                if opts.cold:
                    env["REPORTGEN_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp)
                wall, peak, code = one_run(cmd, env)
                if code != 0:
                    print(f"run {i + 1} failed with exit code {code}", file=sys.stderr)
                    return 1
                walls.append(wall)
                peaks.append(peak)
                print(f"run {i + 1}: {wall:.2f} s wall, {peak:.0f} MB peak", file=sys.stderr)
            after = load_average()
    result = {
        "source": (source or "bundled sample (2,240 customers)") + (", cold" if opts.cold else ""),
        "runs": opts.runs,
        "wall_median_s": round(statistics.median(walls), 2),
        "wall_min_s": round(min(walls), 2),
        "peak_rss_median_mb": round(statistics.median(peaks)),
        "target_s": TARGET_S if not (opts.source or opts.synthetic) else None,
        "load_before": before, "load_after": after,
    }
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['source']}: median {result['wall_median_s']} s wall "
              f"(min {result['wall_min_s']} s), median peak {result['peak_rss_median_mb']} MB "
              f"over {opts.runs} runs; {before} before, {after} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
