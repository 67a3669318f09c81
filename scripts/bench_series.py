#!/usr/bin/env python3
"""What the monthly comparison costs: the second month of a synthetic series, paired in one
batch against the old code (a run that compares with nothing).

    python scripts/bench_series.py --customers 1000000 --runs 3
    python scripts/bench_series.py --old /work/wt/base     # the tree of the old code
    python scripts/bench_series.py --old no-previous       # this code, --no-previous

With `--old no-previous` the baseline is this code's own run of month 2 with --no-previous
(the same fit and files, no comparison): the ratios are then the comparison's cost alone.

Month 1 is bench.synthetic's table (the sample resampled with noise); month 2 changes 5% of
the customers' spend, drops 1% and adds 2% new ones dated a month later. Month 1 is run once
into an output root with each code; then, alternating, month 2 runs with:

- old:   the old code (no series: every run a new analysis);
- refit: this code, --refit (the same k search and fit as the old code, plus the comparison);
- keep:  this code, keeping month 1's model (no k search: usually the cheapest).

It prints the median wall time of each, the ratio refit / old (the comparison's cost, the
target is at most 1.20), and this code's "compare" stage time from the manifest. Each run of
month 2 goes into a copy of the output root after month 1, so every run compares with the
same month 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def months(n: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE / "scripts"))
    from bench import synthetic

    first = synthetic(n, folder / "month1.tsv", seed)
    frame = pd.read_csv(first, sep="\t")
    frame["Dt_Customer"] = "15-01-2014"  # day 15: the date format is not ambiguous
    frame.loc[0, "Dt_Customer"] = "30-06-2014"
    frame.to_parquet(folder / "month1.parquet", index=False)
    rng = np.random.default_rng(seed + 1)
    second = frame.sample(frac=0.99, random_state=seed).reset_index(drop=True)
    touched = rng.choice(len(second), len(second) // 20, replace=False)
    spend = [c for c in second.columns if c.startswith("Mnt")]
    second.loc[touched, spend] = (second.loc[touched, spend].to_numpy() *
                                  rng.uniform(0.6, 1.4, (len(touched), len(spend)))).round()
    new = frame.sample(n // 50, random_state=seed + 2).reset_index(drop=True)
    new["ID"] = np.arange(n, n + len(new))
    new["Dt_Customer"] = "15-07-2014"
    new.loc[0, "Dt_Customer"] = "31-07-2014"
    second = pd.concat([second, new], ignore_index=True)
    second.to_parquet(folder / "month2.parquet", index=False)
    return folder / "month1.parquet", folder / "month2.parquet"


def run(tree: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    # cwd: the tree, so `python -m reportgen` imports that tree's package and no other
    proc = subprocess.run([sys.executable, "-m", "reportgen", "run", *args, "-q"], env=env,
                          cwd=str(tree),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        sys.exit(f"run failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--format", default="json", help="formats to render (default: the data "
                                                      "files only, where the comparison's "
                                                      "share is largest)")
    ap.add_argument("--old", default=str(HERE.parent / "base"),
                    help="tree of the old code, or no-previous: this code with --no-previous")
    opts = ap.parse_args()
    old = HERE if opts.old == "no-previous" else Path(opts.old)
    old_extra = ["--no-previous"] if opts.old == "no-previous" else []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        first, second = months(opts.customers, folder)
        common = ["--format", opts.format, "--seed", "42"]
        seeded = {}
        for name, tree in (("old", old), ("new", HERE)):
            root = folder / f"seed-{name}"
            run(tree, [str(first), "--out", str(root), *common])
            seeded[name] = root
        times: dict[str, list[float]] = {"old": [], "refit": [], "keep": []}
        compare_s: dict[str, list[float]] = {"refit": [], "keep": []}
        for i in range(opts.runs):
            for name, tree, extra in (("old", old, old_extra), ("refit", HERE, ["--refit"]),
                                      ("keep", HERE, [])):
                root = folder / f"{name}-{i}"
                shutil.copytree(seeded["old" if name == "old" else "new"], root)
                times[name].append(run(tree, [str(second), "--out", str(root), *common,
                                              *extra]))
                if name != "old":
                    runs = sorted(p for p in root.iterdir() if p.is_dir()
                                  and p.name.startswith("2014-07"))
                    manifest = json.loads((runs[-1] / "manifest.json").read_text())
                    compare_s[name].append(manifest["timings_s"].get("compare", 0.0))
                shutil.rmtree(root)
    medians = {k: round(statistics.median(v), 2) for k, v in times.items()}
    print(json.dumps({
        "customers": opts.customers, "runs": opts.runs, "format": opts.format,
        "old": opts.old, "load_avg_before": load_before, "load_avg": os.getloadavg(),
        "median_s": medians,
        "refit_over_old": round(medians["refit"] / medians["old"], 3),
        "keep_over_old": round(medians["keep"] / medians["old"], 3),
        "compare_stage_s": {k: round(statistics.median(v), 3) for k, v in compare_s.items()},
        "all_s": times,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
