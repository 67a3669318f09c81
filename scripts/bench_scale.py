#!/usr/bin/env python3
"""Issue 14's bench: `reportgen run` against the floor at 100 k / 1 M / 10 M customers.

    python scripts/bench_scale.py                          # 100k and 1M, 3 rounds, this tree
    python scripts/bench_scale.py --sizes 10000000 --runs 3
    python scripts/bench_scale.py --sizes 1000000 --old /work/wt/base   # old code paired too
    python scripts/bench_scale.py --sizes 1000000 --out-of-core always  # the streamed run
    python scripts/bench_scale.py --sizes 50000000 --runs 1 --floor-stream  # past memory

Each size gets a marketing-shaped Parquet table of the sample's columns (the bundled sample
resampled with replacement, amounts and counts with ±10 % noise), written once in chunks into
--tables (default /tmp/reportgen-scale; never into git) and reused. Then, in one batch, the
floor (scripts/floor_scale.py: read, standardise, k-means k=5 one init on a 50k sample, assign
in chunks, write id+segment as Parquet) and `python -m reportgen run` (every format) of each
tree alternate, rotating the order every round, so a drift of the shared machine's load falls
on all of them alike. Each figure is the whole run: wall time and peak memory, the peak of
the SUM of the resident memory of the process and every process it started (a worker process
would hide its memory from the process's own figure), polled from /proc every 20 ms
(``TreePeak``); the process's own peak (ru_maxrss from wait4, PERFORMANCE.md trap 8) is printed
beside it. Prints the medians, the ratio to the floor, the stage times and the peak memory
after each stage of the last reportgen run (its manifest), and the load average before and
after.

--out-of-core MODE runs every reportgen tree with ``[limits] out_of_core = MODE`` (auto by
default: what each tree chooses); several modes (``--out-of-core never,always``) run each tree
once per mode in the same batch, named tree-mode. --floor-stream runs the floor out of core too
(floor_scale.py --stream: two passes over the record batches), for a table the in-memory
floor cannot hold (50 M customers need ~22 GB); it is on by default past 20 M customers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHUNK = 1_000_000


def make_table(n: int, path: Path, seed: int = 0) -> Path:
    """n customers shaped like the sample, written in chunks (bounded memory at any n)."""
    if path.exists():
        return path
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pd.read_csv(ROOT / "data" / "marketing_campaign.csv", sep="\t")
    noisy = [c for c in base.columns if c.startswith(("Mnt", "Num"))]
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial")
    writer = None
    try:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            frame = base.iloc[rng.integers(0, len(base), m)].reset_index(drop=True)
            frame["ID"] = np.arange(start, start + m, dtype="int64")
            for col in noisy:
                frame[col] = (frame[col] * rng.uniform(0.9, 1.1, m)).round().astype("int64")
            frame["Income"] = (frame["Income"] * rng.uniform(0.95, 1.05, m)).round()
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)
    return path


PAGE = os.sysconf("SC_PAGE_SIZE")


class TreePeak:
    """The peak of the summed resident memory (bytes) of a process and all its descendants,
    polled from /proc in a thread: every ``every_s`` the RSS of each process of the tree
    (/proc/PID/statm), every ``scan_every`` polls a scan of /proc for new descendants (a scan
    of every process's parent costs ~1.3 ms, the RSS reads a few µs each). Linux only; elsewhere
    ``peak`` stays 0. Shared pages (libraries, the interpreter) count once per process, as RSS
    does: an upper bound of what the tree holds. A child that has not yet called exec (its
    command line still its parent's: the moment between fork or vfork and exec of a
    subprocess, a spawned worker or ``ldconfig``) counts 0: it shares its parent's pages, and
    counting them twice showed 1.1 GB for a 0.88 GB run without any worker."""

    def __init__(self, pid: int, every_s: float = 0.02, scan_every: int = 5) -> None:
        import threading

        self.pid, self.every_s, self.scan_every = pid, every_s, scan_every
        self.peak = 0
        self._parent: dict[int, int] = {}
        self.most = 1  # the most processes of the tree seen at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    @staticmethod
    def _parents() -> dict[int, int]:
        parents = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # the command name (in parentheses) may hold spaces: the fields after it
            parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2:].split(None, 2)[1])
        return parents

    def _tree(self) -> set[int]:
        parents = self._parents()
        tree, grown = {self.pid}, True
        while grown:
            more = {p for p, parent in parents.items() if parent in tree} - tree
            grown = bool(more)
            tree |= more
        self._parent = {p: parents[p] for p in tree if p in parents}
        return tree

    @staticmethod
    def _cmdline(pid: int) -> bytes | None:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read()
        except OSError:
            return None

    def _forked(self, pid: int) -> bool:
        """Whether pid is a child that has not called exec yet (see the class)."""
        parent = self._parent.get(pid)
        if pid == self.pid or parent is None:
            return False
        mine = self._cmdline(pid)
        return mine is not None and mine == self._cmdline(parent)

    def _poll(self) -> None:
        if not Path("/proc/self/statm").exists():
            return
        tree: set[int] = {self.pid}
        polls = 0
        while not self._stop.is_set():
            if polls % self.scan_every == 0:
                tree = self._tree()
            polls += 1
            total = 0
            for pid in list(tree):
                if self._forked(pid):
                    continue
                try:
                    with open(f"/proc/{pid}/statm", "rb") as f:
                        total += int(f.read().split()[1]) * PAGE
                except (OSError, ValueError, IndexError):
                    tree.discard(pid)  # gone (or a zombie)
            self.peak = max(self.peak, total)
            self.most = max(self.most, len(tree))
            self._stop.wait(self.every_s)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def one_run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, the peak of the summed RSS of the process tree (GB, ``TreePeak``) and
    the process's own peak RSS (GB, ru_maxrss) of one run; exits on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    poller = TreePeak(proc.pid)
    # the poller reads /proc/PID while the process lives: wait4 (which reaps it) only after
    # the process has exited (waitid with WNOWAIT leaves it to be reaped)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    tree = poller.stop()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(err)
        raise SystemExit(f"failed: {' '.join(argv)}")
    own = usage.ru_maxrss / 1024 / 1024
    return wall, max(tree / 1024 ** 3, own), own


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def stage_times(out: Path) -> tuple[dict[str, float], dict[str, float]]:
    """The last run's seconds per stage and the process's peak RSS (MB) after each stage
    (manifest.json's timings_s and peak_rss_mb: where the time and the memory went)."""
    manifests = sorted(out.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return {}, {}
    manifest = json.loads(manifests[-1].read_text())
    return manifest["timings_s"], manifest.get("peak_rss_mb", {})


FLOOR_STREAM_FROM = 20_000_000  # customers: past this the floor streams by default


def bench_size(n: int, table: Path, trees: dict[str, Path], runs: int, formats: str,
               work: Path, out_of_core: str = "auto", floor_stream: bool = False
               ) -> dict[str, object]:
    stream = ["--stream"] if floor_stream or n > FLOOR_STREAM_FROM else []
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "floor": ([sys.executable, str(HERE / "floor_scale.py"), *stream, str(table),
                   str(work / f"floor-{n}.parquet")], dict(os.environ))}
    modes = out_of_core.split(",")
    for mode in modes:
        config = work / f"limits-{mode}.toml"
        config.write_text(f'[limits]\nout_of_core = "{mode}"\n', encoding="utf-8")
        for tree_name, tree in trees.items():
            name = tree_name if len(modes) == 1 else f"{tree_name}-{mode}"
            # PYTHONSAFEPATH: `python -m` would put the working folder first on sys.path,
            # before PYTHONPATH, so run from a checkout every tree would run that checkout's code
            env = dict(os.environ, PYTHONPATH=str(tree), PYTHONSAFEPATH="1")
            commands[name] = ([sys.executable, "-m", "reportgen", "run", "--quiet", "--config",
                               str(config), "--out", str(work / f"out-{name}-{n}"), "--format",
                               formats, str(table)], env)
    walls: dict[str, list[float]] = {k: [] for k in commands}
    peaks: dict[str, list[float]] = {k: [] for k in commands}
    own: dict[str, list[float]] = {k: [] for k in commands}
    before = load_average()
    names = list(commands)
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            wall, peak, alone = one_run(*commands[name])
            walls[name].append(wall)
            peaks[name].append(peak)
            own[name].append(alone)
        print(f"  {n:,} round {r + 1}: " + ", ".join(
            f"{k} {walls[k][-1]:.1f} s {peaks[k][-1]:.2f} GB (own {own[k][-1]:.2f})"
            for k in names)
            + f"  (load {load_average()})", file=sys.stderr)
    result: dict[str, object] = {"customers": n, "runs": runs, "load_before": before,
                                 "load_after": load_average()}
    for name in names:
        result[name] = {"wall_s": round(statistics.median(walls[name]), 2),
                        "peak_gb": round(statistics.median(peaks[name]), 2),
                        "own_peak_gb": round(statistics.median(own[name]), 2),
                        "walls": [round(w, 2) for w in walls[name]]}
        if name != "floor":
            stages, stage_peaks = stage_times(work / f"out-{name}-{n}")
            result[name]["stages_s"] = stages  # type: ignore
            result[name]["stage_peaks_mb"] = stage_peaks  # type: ignore
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000",
                    help="comma-separated customer counts (default 100000,1000000)")
    ap.add_argument("--runs", type=int, default=3, help="rounds per size (median of these)")
    ap.add_argument("--tree", default=str(ROOT), help="reportgen tree to time (default: this)")
    ap.add_argument("--old", help="another tree to pair in the same batch (old code)")
    ap.add_argument("--format", default="html,pdf,email", help="formats to render")
    ap.add_argument("--tables", default="/tmp/reportgen-scale",
                    help="folder for the generated tables (kept between runs)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--out-of-core", default="auto",
                    help="[limits] out_of_core of every reportgen run (default auto), or "
                         "several, comma-separated: each tree runs once per mode")
    ap.add_argument("--floor-stream", action="store_true",
                    help="run the floor out of core (default past 20 M customers)")
    opts = ap.parse_args()

    tables = Path(opts.tables)
    tables.mkdir(parents=True, exist_ok=True)
    work = tables / f"work-{os.getpid()}"
    work.mkdir()
    trees = {"reportgen": Path(opts.tree).resolve()}
    if opts.old:
        trees = {"old": Path(opts.old).resolve(), **trees}
    results = []
    try:
        for n in (int(s) for s in opts.sizes.split(",")):
            table = make_table(n, tables / f"marketing_{n}.parquet")
            print(f"{n:,} customers: {table}", file=sys.stderr)
            results.append(bench_size(n, table, trees, opts.runs, opts.format, work,
                                      opts.out_of_core, opts.floor_stream))
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    if opts.json:
        print(json.dumps(results, indent=2))
        return 0
    heads = [k for k in results[0] if isinstance(results[0][k], dict) and k != "floor"] \
        if results else []
    print("peak: the summed RSS of the process and its children (the process's own ru_maxrss "
          "in parentheses); GB = 2**30 bytes")
    print("| customers | " + " | ".join(f"{h} time, peak" for h in heads)
          + " | floor time, peak | " + " | ".join(f"{h}/floor" for h in heads) + " | load |")
    print("|---" * (2 + 2 * len(heads)) + "|---|")
    for res in results:
        floor = res["floor"]
        cells = [f"{res[h]['wall_s']} s, {res[h]['peak_gb']} GB "  # type: ignore
                 f"({res[h]['own_peak_gb']})" for h in heads]  # type: ignore
        ratios = [f"{res[h]['wall_s'] / floor['wall_s']:.1f}× time, "  # type: ignore
                  f"{res[h]['peak_gb'] / floor['peak_gb']:.1f}× memory" for h in heads]  # type: ignore
        print(f"| {res['customers']:,} | " + " | ".join(cells)
              + f" | {floor['wall_s']} s, {floor['peak_gb']} GB "  # type: ignore
              f"({floor['own_peak_gb']}) | "  # type: ignore
              + " | ".join(ratios) + f" | {res['load_before']} → {res['load_after']} |")
    for res in results:
        for h in heads:
            print(f"{res['customers']:,} {h} stages: {res[h]['stages_s']}")  # type: ignore
            if res[h]["stage_peaks_mb"]:  # type: ignore
                print(f"{res['customers']:,} {h} peak MB after each stage: "
                      f"{res[h]['stage_peaks_mb']}")  # type: ignore
    return 0


if __name__ == "__main__":
    sys.exit(main())
