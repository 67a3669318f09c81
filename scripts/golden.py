"""Record or compare the outputs a run writes, on the sample and on the test tables.

    python scripts/golden.py record /tmp/golden        # run every table, keep the outputs
    python scripts/golden.py compare /tmp/golden       # run again, say which files differ

A refactor that must not change what a run writes (issue 9) records before and compares after
each step. Compared byte for byte: summary.json, segments.csv, report.html, email.html and
email.txt (report.pdf and model.skops carry timestamps, manifest.json carries timings).
Each table runs through the real command line (`python -m reportgen run`), so the check works
on any state of the code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPARED = ("summary.json", "segments.csv", "report.html", "email.html", "email.txt")


def tables(folder: Path) -> dict[str, list[str]]:
    """name -> arguments of `reportgen run` (source first)."""
    from tests import customer_tables, tables

    made = {
        "marketing": tables.marketing_table(),
        "credit_card": customer_tables.credit_card_table(),
        "wholesale": customer_tables.wholesale_table(),
        "telecom": customer_tables.telecom_table(),
        "mall": customer_tables.mall_table(),
    }
    runs: dict[str, list[str]] = {"sample": []}
    for name, frame in made.items():
        path = folder / f"{name}.csv"
        frame.drop(columns=["kind"], errors="ignore").to_csv(path, index=False)
        runs[name] = [str(path)]
    # ../shared/data beside the checkout (a worktree may sit a level deeper)
    for parent in ROOT.parents:
        shared = parent / "shared" / "data"
        if (shared / "Mall_Customers.csv").exists():
            runs["Mall_Customers"] = [str(shared / "Mall_Customers.csv")]
            break
    return runs


def run_all(out: Path) -> dict[str, dict[str, str]]:
    """Run every table into out/<name>/; returns name -> {file: sha256}."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = tables(Path(tmp))

        def one(item: tuple[str, list[str]]) -> tuple[str, dict[str, str]]:
            name, args = item
            root = Path(tmp) / "out" / name
            proc = subprocess.run(
                [sys.executable, "-m", "reportgen", "run", *args, "--out", str(root), "-q"],
                capture_output=True, text=True, cwd=ROOT)
            if proc.returncode not in (0, 3):
                raise SystemExit(f"{name}: exit {proc.returncode}: {proc.stderr.strip()}")
            # the run folder (beside it: the series' history.sqlite and latest pointer)
            (run_dir,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
            target = out / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(run_dir, target)
            return name, {f: hashlib.sha256((target / f).read_bytes()).hexdigest()
                          for f in COMPARED if (target / f).exists()}

        with ThreadPoolExecutor(2) as pool:
            return dict(pool.map(one, runs.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.mode == "record":
        hashes = run_all(args.folder)
        (args.folder / "hashes.json").write_text(json.dumps(hashes, indent=2, sort_keys=True))
        print(f"recorded {sum(len(h) for h in hashes.values())} files of {len(hashes)} runs "
              f"in {args.folder}")
        return 0
    want = json.loads((args.folder / "hashes.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        got = run_all(Path(tmp) / "now")
        differ = [(name, f) for name, files in want.items() for f, digest in files.items()
                  if got.get(name, {}).get(f) != digest]
        for name, f in differ:
            print(f"DIFFERS {name}/{f}  (diff {args.folder / name / f} "
                  f"{Path(tmp) / 'now' / name / f})")
        if differ:
            keep = args.folder.with_name(args.folder.name + "-now")
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(Path(tmp) / "now", keep)
            print(f"the new outputs are kept in {keep}")
            return 1
    print(f"identical: {sum(len(h) for h in want.values())} files of {len(want)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
