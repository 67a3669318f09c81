#!/usr/bin/env python3
"""Peak memory and CPU of `load` on a generated CSV, two trees paired (issue 13).

    python scripts/bench_load.py /work/wt/base .            # old tree, new tree
    python scripts/bench_load.py /work/wt/base . --rows 3000000 --runs 5

Each run is a fresh process (`python -c`, PYTHONPATH set to the tree) that loads the table and
reports its peak RSS (ru_maxrss) and the CPU time of `load` and of the size check on a column
of Python objects (text and numbers, as Excel and SQL give them). The trees are alternated
(A B B A A B ...) so the shared machine's load falls on both alike; the medians and the ratio
B / A are printed with the load average. CPU time (not wall time) is compared: it does not
grow with the other jobs on the machine the way wall time does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import pandas as pd
from reportgen.config import InputConfig, LimitsConfig
from reportgen.load import _check_size, load

t = time.process_time()
loaded = load(sys.argv[1], InputConfig())
load_cpu = time.process_time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
n = len(loaded.frame)
note = pd.Series(loaded.frame["city"].to_numpy(dtype=object), dtype=object)
note[::7] = 3
mixed = pd.DataFrame({"note": note})
t = time.process_time()
_check_size(mixed, "bench", LimitsConfig())
check_cpu = time.process_time() - t
print(json.dumps({"peak_mb": peak, "load_cpu": load_cpu, "check_cpu": check_cpu, "rows": n}))
"""


def make_table(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    pd.DataFrame({
        "customer_id": np.arange(rows), "age": rng.integers(18, 90, rows),
        "income": rng.integers(1_000, 99_999, rows),
        "city": rng.choice(["Paris", "Lyon", "Nice", "Zürich"], rows),
        "spend": rng.random(rows).round(2),
    }).to_csv(path, index=False)


def one(tree: str, table: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    # cwd: `python -c` puts the working folder first on sys.path, before PYTHONPATH
    done = subprocess.run([sys.executable, "-c", CHILD, str(table)], env=env, check=True,
                          capture_output=True, text=True, cwd=table.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "bench.csv"
        make_table(table, args.rows)
        print(f"{args.rows:,} rows, {table.stat().st_size / 1e6:.0f} MB; "
              f"load average {os.getloadavg()[0]:.1f}")
        results: dict[str, list[dict[str, float]]] = {args.old: [], args.new: []}
        order = [args.old, args.new, args.new, args.old] * ((args.runs + 1) // 2)
        for tree in order[: 2 * args.runs]:
            results[tree].append(one(tree, table))
        for key in ("peak_mb", "load_cpu", "check_cpu"):
            a = statistics.median(r[key] for r in results[args.old])
            b = statistics.median(r[key] for r in results[args.new])
            print(f"{key:10} old {a:9.2f}  new {b:9.2f}  new/old {b / a:.2f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
