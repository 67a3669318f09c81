#!/usr/bin/env python3
"""Time `reportgen run` as a whole process: wall time and peak memory, median of several runs.

    python scripts/bench.py                       # the bundled sample, every format, 5 runs
    python scripts/bench.py --runs 3 big.csv      # another table
    python scripts/bench.py --synthetic 100000    # a generated table of that many customers
    python scripts/bench.py --cold                # no Vega bundle cache (a first run ever)

The machine is shared and noisy: read the median, and compare by ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def one_run(args: list[str]) -> tuple[float, float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's own peak RSS (not all children's, PERFORMANCE.md trap 8).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(proc.stderr.read().decode() if proc.stderr else "")
    return wall, usage.ru_maxrss / 1024, code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source", nargs="?", help="table to run on (default: the bundled sample)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--format", default="html,pdf,email", help="formats to render")
    ap.add_argument("--cold", action="store_true",
                    help="every run starts without the Vega bundle cache (~/.cache/reportgen)")
    ap.add_argument("--synthetic", type=int, metavar="N", help="generate a table of N customers")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = opts.source
        if opts.synthetic:
            source = str(synthetic(opts.synthetic, Path(tmp) / f"synthetic_{opts.synthetic}.tsv"))
        cmd = [sys.executable, "-m", "reportgen", "run", "--quiet", "--out", str(Path(tmp) / "out"),
               "--format", opts.format] + ([source] if source else [])
        walls, peaks = [], []
        for i in range(opts.runs):
            if opts.cold:
                os.environ["REPORTGEN_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp)
            wall, peak, code = one_run(cmd)
            if code != 0:
                print(f"run {i + 1} failed with exit code {code}", file=sys.stderr)
                return 1
            walls.append(wall)
            peaks.append(peak)
            print(f"run {i + 1}: {wall:.2f} s wall, {peak:.0f} MB peak", file=sys.stderr)
    result = {
        "source": (source or "bundled sample (2,240 customers)") + (", cold" if opts.cold else ""),
        "runs": opts.runs,
        "wall_median_s": round(statistics.median(walls), 2),
        "wall_min_s": round(min(walls), 2),
        "peak_rss_median_mb": round(statistics.median(peaks)),
        "target_s": TARGET_S if not (opts.source or opts.synthetic) else None,
    }
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['source']}: median {result['wall_median_s']} s wall "
              f"(min {result['wall_min_s']} s), median peak {result['peak_rss_median_mb']} MB "
              f"over {opts.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
