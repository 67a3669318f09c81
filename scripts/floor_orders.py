"""The floor of the order-line aggregation: what no aggregation of the bench table can skip.

    python scripts/floor_orders.py TABLE.parquet

Reads the Parquet file's customer, quantity and price columns and sums quantity × price per
customer with one pyarrow group-by; prints one JSON line (wall and CPU seconds from the
start of this process, imports included as in the bench's other modes, and the peak memory).
scripts/bench_orders.py runs it paired with `reportgen`'s aggregation, in one batch.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(path: str) -> int:
    start = time.perf_counter()
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["CustomerID", "Quantity", "UnitPrice"])
    t = t.append_column("amount", pc.multiply(pc.cast(t["Quantity"], "float64"), t["UnitPrice"]))
    out = t.group_by("CustomerID").aggregate([("amount", "sum")])
    wall = time.perf_counter() - start
    cpu = os.times()
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    print(json.dumps({"mode": "floor", "wall": round(wall, 2),
                      "cpu": round(cpu.user + cpu.system, 2), "peak_gb": round(hwm / 2**20, 2),
                      "customers": out.num_rows, "stages": {}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
