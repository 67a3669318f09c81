"""Bench the order-line aggregation: 10 M lines of 1 M customers, from a Parquet file.

    python scripts/bench_orders.py                 # 10 M lines, 1 M customers, 3 rounds
    python scripts/bench_orders.py --lines 2000000 --customers 200000 --rounds 1

Each measurement runs in a fresh child process and reports its wall time and peak memory
(VmHWM of the child). Paired in one batch, alternating:

- duckdb: what `reportgen run` does (load the Parquet file, detect the columns, build the
  typed line table, aggregate with DuckDB's SQL in orders.AGGREGATES, derive the features);
- arrow:  the same, with the group-by done by pyarrow (Table.group_by().aggregate()) over the
  same line table: the alternative engine, kept here for the measurement;
- floor:  read the Parquet file and one pyarrow group-by of the amount per customer (the work
  no aggregation can skip).

Targets (issue 11): 10 M lines aggregated in ≤ 30 s and ≤ 3 GB peak on the 2-core machine.
The table is written once to --cache (default /tmp/reportgen-bench-orders-<lines>.parquet).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_table(path: Path, lines: int, customers: int, seed: int = 0) -> None:
    """Invoice lines: customer (zero-padded text), invoice, timestamp, quantity, unit price,
    category and country; about 2% returns, 1% lines without a customer."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    # Customers buy at different rates (a few buy a lot): lines per customer ~ lognormal.
    weights = rng.lognormal(0.0, 1.0, customers)
    cust = rng.choice(customers, size=lines, p=weights / weights.sum())
    lines_per_order = 4
    order = (np.arange(lines) // lines_per_order).astype(np.int64)
    # One customer and one moment per order: take them from the order's first line.
    first = order * lines_per_order
    cust = cust[np.minimum(first, lines - 1)]
    start = np.datetime64("2010-12-01T08:00:00")
    seconds = rng.integers(0, 374 * 86400, size=lines // lines_per_order + 1)
    ts = start + seconds[order].astype("timedelta64[s]")
    qty = rng.integers(1, 13, size=lines).astype(np.int32)
    returns = rng.random(lines) < 0.02
    qty[returns] = -qty[returns]
    price = np.round(rng.lognormal(1.0, 0.6, size=lines), 2)
    cats = np.array([f"Category {i:02d}" for i in range(20)])
    countries = np.array(["United Kingdom"] * 7 + ["Germany", "France", "EIRE", "Spain",
                                                   "Netherlands"])
    cust_text = np.char.zfill(cust.astype(str), 7).astype(object)
    blank = rng.random(lines) < 0.01
    cust_text[blank] = None
    invoice = np.char.add(np.where(returns, "C", ""), (536365 + order).astype(str))
    table = pa.table({
        "InvoiceNo": pa.array(invoice.astype(object), pa.string()),
        "StockCode": pa.array(rng.integers(10000, 10500, size=lines).astype(str).astype(object),
                              pa.string()),
        "Quantity": pa.array(qty),
        "InvoiceDate": pa.array(ts.astype("datetime64[us]")),
        "UnitPrice": pa.array(price),
        "CustomerID": pa.array(cust_text, pa.string()),
        "Category": pa.array(cats[rng.integers(0, 20, size=lines)].astype(object), pa.string()),
        "Country": pa.array(countries[rng.integers(0, len(countries), size=lines)]
                            .astype(object), pa.string()),
    })
    pq.write_table(table, path)


def aggregate_arrow(lines, extra_mix: dict[str, int], recent, before):  # type: ignore[no-untyped-def]
    """orders.AGGREGATES with pyarrow's group-by: masked columns, then one aggregate call."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.Table.from_pandas(lines, preserve_index=False)
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


def child(mode: str, path: str) -> None:
    """One measurement, in this (fresh) process; prints a JSON line."""
    start = time.perf_counter()
    stages: dict[str, float] = {}
    if mode == "floor":
        import pyarrow.parquet as pq

        t = pq.read_table(path, columns=["CustomerID", "Quantity", "UnitPrice"])
        import pyarrow.compute as pc

        t = t.append_column("amount", pc.multiply(pc.cast(t["Quantity"], "float64"),
                                                  t["UnitPrice"]))
        out = t.group_by("CustomerID").aggregate([("amount", "sum")])
        n = out.num_rows
    else:
        from reportgen import orders
        from reportgen.config import Config
        from reportgen.load import load

        cfg = Config()
        t0 = time.perf_counter()
        loaded = load(path, cfg.input)
        stages["load"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cols = orders.detect(loaded.frame, cfg.transactions, loaded.where)
        assert cols is not None, "not detected as order lines"
        stages["detect"] = time.perf_counter() - t0
        if mode == "duckdb":
            t0 = time.perf_counter()
            result = orders.aggregate(loaded.frame, cols, cfg, loaded.where)
            stages["aggregate"] = time.perf_counter() - t0
            n = len(result.customers)
        else:
            import datetime as dt

            import pandas as pd

            t0 = time.perf_counter()
            lines, _, _, _ = orders.line_table(loaded.frame, cols, cfg, loaded.where)
            lines = lines[lines["keep"]].drop(columns="keep")
            stages["line_table"] = time.perf_counter() - t0
            as_of = lines["day"].max().date()
            lines["net"] = lines["amount"].where(~lines["is_return"], -lines["amount"])
            lines["month"] = lines["day"].dt.year * 12 + lines["day"].dt.month
            mix = {}
            for role in orders.MIX_ROLES:
                if f"{role}_level" in lines:
                    buys = lines.loc[~lines["is_return"]]
                    revenue = buys.groupby(f"{role}_level")["amount"].sum()
                    levels = list(revenue.sort_values(ascending=False).index[
                        :cfg.transactions.top_levels])
                    lines[f"{role}_code"] = pd.Categorical(
                        lines[f"{role}_level"], categories=levels).codes.astype("int16")
                    mix[role] = len(levels)
            lines = lines.drop(columns=[c for c in lines if c.endswith("_level")])
            t0 = time.perf_counter()
            agg = aggregate_arrow(lines, mix, pd.Timestamp(as_of - dt.timedelta(days=89)),
                                  pd.Timestamp(as_of - dt.timedelta(days=179)))
            stages["group_by"] = time.perf_counter() - t0
            n = len(agg)
    wall = time.perf_counter() - start
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    print(json.dumps({"mode": mode, "wall": round(wall, 2), "peak_gb": round(hwm / 2**20, 2),
                      "customers": n, "stages": {k: round(v, 2) for k, v in stages.items()}}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="duckdb,arrow,floor")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    path = args.cache or Path(f"/tmp/reportgen-bench-orders-{args.lines}.parquet")
    if not path.exists():
        t0 = time.perf_counter()
        make_table(path, args.lines, args.customers)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MB) in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    load1 = os.getloadavg()[0]
    results: dict[str, list[dict[str, object]]] = {}
    for r in range(args.rounds):
        for mode in args.modes.split(","):
            proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path)],
                                  capture_output=True, text=True, env={**os.environ,
                                                                       "PYTHONPATH": str(ROOT)})
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return 1
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            results.setdefault(mode, []).append(got)
            print(f"round {r + 1} {mode:<7} {got['wall']:6.2f} s  {got['peak_gb']:.2f} GB  "
                  f"{got['stages']}", file=sys.stderr)
    print(f"\n{args.lines:,} lines, load average {load1:.1f} → {os.getloadavg()[0]:.1f} "
          f"(2 cores)")
    for mode, runs in results.items():
        wall = statistics.median(float(x["wall"]) for x in runs)  # type: ignore[arg-type]
        peak = statistics.median(float(x["peak_gb"]) for x in runs)  # type: ignore[arg-type]
        print(f"  {mode:<7} median {wall:6.2f} s  peak {peak:.2f} GB  "
              f"({runs[0]['customers']:,} customers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
