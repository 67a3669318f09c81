"""Bench the order-line aggregation: 10 M lines of 1 M customers, from a Parquet file.

    python scripts/bench_orders.py                 # 10 M lines, 1 M customers, 3 rounds
    python scripts/bench_orders.py --lines 2000000 --customers 200000 --rounds 1

Each measurement runs in a fresh child process and reports its wall time and peak memory
(VmHWM of the child). Paired in one batch, alternating:

- duckdb: what `reportgen run` does (load the Parquet file, detect the columns, build the
  typed line table, aggregate with DuckDB's SQL in orders.AGGREGATES, derive the features);
- arrow:  the same, with the group-by done by pyarrow (Table.group_by().aggregate()) over the
  same line table: the alternative engine, kept here for the measurement;
- old:    the duckdb mode of another checkout (--old PATH): old code against new, paired;
- floor:  scripts/floor_orders.py: read the Parquet file and one pyarrow group-by of the amount
  per customer (the work no aggregation can skip).

Each child reports its wall time from its start (imports included) and its CPU time (user +
system): on a shared machine the CPU seconds move less with the load than the wall time.

Targets (issue 11): 10 M lines aggregated in ≤ 30 s and ≤ 3 GB peak on the 2-core machine.
The table is written once to --cache (default /tmp/reportgen-bench-orders-<lines>.parquet).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The reportgen a child measures: this checkout's, or the old one's (mode old).
sys.path.insert(0, os.environ.get("REPORTGEN_BENCH_TREE", str(ROOT)))


def make_table(path: Path, lines: int, customers: int, seed: int = 0) -> None:
    """Invoice lines: customer (zero-padded text), invoice, timestamp, quantity, unit price,
    stock code, category and country; four lines an order, every customer with at least one
    order, a few customers with many (lognormal); about 2% returns ("C" invoices with a
    negative quantity), 1% lines without a customer."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    lines_per_order = 4
    n_orders = -(-lines // lines_per_order)
    weights = rng.lognormal(0.0, 1.0, customers)
    buyer = rng.choice(customers, size=n_orders, p=weights / weights.sum())
    buyer[:customers] = rng.permutation(customers)  # everyone orders at least once
    order = np.arange(lines) // lines_per_order
    cust = buyer[order]
    start = np.datetime64("2010-12-01T08:00:00")
    seconds = rng.integers(0, 374 * 86400, size=n_orders)
    ts = start + seconds[order].astype("timedelta64[s]")
    qty = rng.integers(1, 13, size=lines).astype(np.int32)
    returns = rng.random(lines) < 0.02
    qty[returns] = -qty[returns]
    price = np.round(rng.lognormal(1.0, 0.6, size=lines), 2)

    def text(values: np.ndarray, width: int = 0) -> pa.Array:
        arr = pc.cast(pa.array(values), pa.string())
        return pc.utf8_lpad(arr, width, "0") if width else arr

    cats = pa.array([f"Category {i:02d}" for i in range(20)])
    countries = pa.array(["United Kingdom"] * 7 + ["Germany", "France", "EIRE", "Spain",
                                                   "Netherlands"])
    customer = pc.if_else(pa.array(rng.random(lines) < 0.01), pa.scalar(None, pa.string()),
                          text(cust, 7))
    invoice = pc.binary_join_element_wise(
        pc.if_else(pa.array(returns), "C", ""), text(536365 + order), "")
    table = pa.table({
        "InvoiceNo": invoice,
        "StockCode": text(rng.integers(10000, 10500, size=lines)),
        "Quantity": pa.array(qty),
        "InvoiceDate": pa.array(ts.astype("datetime64[us]")),
        "UnitPrice": pa.array(price),
        "CustomerID": customer,
        "Category": cats.take(pa.array(rng.integers(0, 20, size=lines))),
        "Country": countries.take(pa.array(rng.integers(0, len(countries), size=lines))),
    })
    pq.write_table(table, path)


def aggregate_arrow(t, extra_mix: dict[str, int], recent, before):  # type: ignore[no-untyped-def]
    """orders.AGGREGATES with pyarrow's group-by: masked columns, then one aggregate call."""
    import pyarrow as pa
    import pyarrow.compute as pc

    buy = pc.invert(t["is_return"])
    ret = t["is_return"]
    day = t["day"]

    def masked(values, mask):  # type: ignore[no-untyped-def]
        return pc.if_else(mask, values, pa.scalar(None, values.type))

    recent_ts = pa.scalar(recent, day.type)
    before_ts = pa.scalar(before, day.type)
    is_recent = pc.greater_equal(day, recent_ts)
    is_before = pc.and_(pc.greater_equal(day, before_ts), pc.less(day, recent_ts))
    cols = {
        "customer": t["customer"],
        "order_buy": masked(t["order_key"], buy), "day_buy": masked(day, buy),
        "net": t["net"], "amount_buy": masked(t["amount"], buy),
        "amount_ret": masked(t["amount"], ret), "ret_int": pc.cast(ret, pa.int64()),
        "qty_buy": masked(t["qty"], buy), "month_buy": masked(t["month"], buy),
        "net_recent": masked(t["net"], is_recent), "net_before": masked(t["net"], is_before),
    }
    aggs = [("order_buy", "count_distinct"), ("day_buy", "count_distinct"), ("net", "sum"),
            ("amount_buy", "sum"), ("amount_ret", "sum"), ("ret_int", "sum"),
            ("net", "count"), ("qty_buy", "sum"), ("amount_buy", "count"), ("day_buy", "min"),
            ("day_buy", "max"), ("month_buy", "count_distinct"), ("net_recent", "sum"),
            ("net_before", "sum")]
    for role, n in extra_mix.items():
        code = t[f"{role}_code"]
        for i in [*range(n), -1]:
            test = pc.equal(code, i) if i >= 0 else pc.less(code, 0)
            name = f"{role}_{i if i >= 0 else 'other'}"
            cols[name] = masked(t["amount"], pc.and_(buy, test))
            aggs.append((name, "sum"))
    table = pa.table(cols)
    return table.group_by("customer").aggregate(aggs).to_pandas()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def child(mode: str, path: str) -> None:
    """One measurement, in this (fresh) process; prints a JSON line."""
    warnings.simplefilter("ignore")  # DuckDB warns that to_arrow_table() copies: measured
    start = time.perf_counter()
    stages: dict[str, float] = {}
    cpu_stages: dict[str, float] = {}
    from reportgen import orders
    from reportgen.config import Config
    from reportgen.load import load

    cfg = Config()
    t0 = time.perf_counter()
    c0 = _cpu()
    loaded = load(path, cfg.input)
    stages["load"] = time.perf_counter() - t0
    cpu_stages["load"] = _cpu() - c0
    t0 = time.perf_counter()
    c0 = _cpu()
    cols = orders.detect(loaded.frame, cfg.transactions, loaded.where)
    assert cols is not None, "not detected as order lines"
    stages["detect"] = time.perf_counter() - t0
    cpu_stages["detect"] = _cpu() - c0
    if mode == "duckdb":
        t0 = time.perf_counter()
        c0 = _cpu()
        result = orders.aggregate(loaded.frame, cols, cfg, loaded.where)
        stages["aggregate"] = time.perf_counter() - t0
        cpu_stages["aggregate"] = _cpu() - c0
        n = len(result.customers)
    else:
        t0 = time.perf_counter()
        c0 = _cpu()
        lines = orders.line_table(loaded.frame, cols, cfg, loaded.where)
        as_of = lines.last_day
        mix = {}
        codes: list[tuple[str, dict[str, object]]] = []
        for role in orders.MIX_ROLES:
            if getattr(cols, role) is None:
                continue
            query = orders.LEVELS_SQL.format(role=role, top=cfg.transactions.top_levels)
            unknown = lines.levels[role].index("Unknown")
            top = [r[0] for r in lines.con.execute(
                query, {"as_of": as_of, "unknown": unknown}).fetchall()]
            mix[role] = len(top)
            cases = " ".join(f"WHEN {role}_level = {c} THEN {i}" for i, c in enumerate(top))
            codes.append((f"CASE {cases} ELSE -1 END AS {role}_code", {}))
        params = {"as_of": as_of}
        for _, p in codes:
            params.update(p)
        table = lines.con.execute(
            "SELECT customer, order_key, day, amount, qty, is_return, "
            "CASE WHEN is_return THEN -amount ELSE amount END AS net, "
            "date_trunc('month', day) AS month"
            + "".join(", " + c for c, _ in codes)
            + " FROM usable WHERE day <= $as_of", params).to_arrow_table()
        stages["line_table"] = time.perf_counter() - t0
        cpu_stages["line_table"] = _cpu() - c0
        t0 = time.perf_counter()
        c0 = _cpu()
        agg = aggregate_arrow(table, mix, as_of - dt.timedelta(days=89),
                              as_of - dt.timedelta(days=179))
        stages["group_by"] = time.perf_counter() - t0
        cpu_stages["group_by"] = _cpu() - c0
        n = len(agg)
    wall = time.perf_counter() - start
    cpu = os.times()
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    print(json.dumps({"mode": mode, "wall": round(wall, 2),
                      "cpu": round(cpu.user + cpu.system, 2), "peak_gb": round(hwm / 2**20, 2),
                      "customers": n, "stages": {k: round(v, 2) for k, v in stages.items()},
                      "cpu_stages": {k: round(v, 2) for k, v in cpu_stages.items()}}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="duckdb,floor",
                        help="of duckdb, old (needs --old), arrow, floor")
    parser.add_argument("--old", type=Path, help="a checkout of the old code (mode old)")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    path = args.cache or Path(f"/tmp/reportgen-bench-orders-{args.lines}-{args.customers}.parquet")
    if not path.exists():
        t0 = time.perf_counter()
        make_table(path, args.lines, args.customers)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MB) in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    modes = args.modes.split(",")
    if "old" in modes and args.old is None:
        parser.error("mode old needs --old PATH (e.g. a `git worktree` of the old commit)")
    load1 = os.getloadavg()[0]
    results: dict[str, list[dict[str, object]]] = {}
    for r in range(args.rounds):
        for mode in modes:
            if mode == "floor":
                command = [sys.executable, str(ROOT / "scripts" / "floor_orders.py"), str(path)]
            else:  # the old code runs this script's duckdb mode with its own reportgen
                command = [sys.executable, __file__, "--child",
                           "duckdb" if mode == "old" else mode, str(path)]
            tree = args.old if mode == "old" else ROOT
            proc = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(tree),
                                       "REPORTGEN_BENCH_TREE": str(tree)})
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return 1
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            results.setdefault(mode, []).append(got)
            print(f"round {r + 1} {mode:<7} {got['wall']:6.2f} s  cpu {got['cpu']:6.2f} s  "
                  f"{got['peak_gb']:.2f} GB  wall {got['stages']}  cpu "
                  f"{got.get('cpu_stages', {})}", file=sys.stderr)
    print(f"\n{args.lines:,} lines, load average {load1:.1f} → {os.getloadavg()[0]:.1f} "
          f"(2 cores)")
    for mode, runs in results.items():
        wall = statistics.median(float(x["wall"]) for x in runs)  # type: ignore[arg-type]
        cpu = statistics.median(float(x["cpu"]) for x in runs)  # type: ignore[arg-type]
        peak = statistics.median(float(x["peak_gb"]) for x in runs)  # type: ignore[arg-type]
        print(f"  {mode:<7} median {wall:6.2f} s  cpu {cpu:6.2f} s  peak {peak:.2f} GB  "
              f"({runs[0]['customers']:,} customers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
