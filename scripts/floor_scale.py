#!/usr/bin/env python3
"""The floor of issue 14: the work no segmentation tool can skip, as a bare script.

    python scripts/floor_scale.py TABLE.parquet OUT.parquet

Read the Parquet file, standardise the numeric columns, fit k-means (k = 5, one init) on a
50,000-customer sample, assign every customer in chunks, write (id, segment) as Parquet.
scripts/bench_scale.py runs it beside `reportgen run` on the same table, paired in one batch.
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.cluster import KMeans

SAMPLE = 50_000
CHUNK = 500_000
K = 5
SEED = 42


def main(source: str, out: str) -> int:
    table = pq.read_table(source)
    ids = table.column("ID")
    numeric = [f.name for f in table.schema
               if f.name != "ID" and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]
    x = np.empty((table.num_rows, len(numeric)), dtype="float64")
    for j, name in enumerate(numeric):
        col = table.column(name)
        x[:, j] = pc.fill_null(pc.cast(col, pa.float64()), 0.0).to_numpy()
    del table
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    x -= mean
    x /= std
    rng = np.random.default_rng(SEED)
    rows = rng.choice(len(x), min(SAMPLE, len(x)), replace=False)
    model = KMeans(n_clusters=K, n_init=1, random_state=SEED).fit(x[rows])
    labels = np.empty(len(x), dtype="int8")
    for start in range(0, len(x), CHUNK):
        labels[start:start + CHUNK] = model.predict(x[start:start + CHUNK])
    pq.write_table(pa.table({"ID": ids, "segment": pa.array(labels)}), out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
