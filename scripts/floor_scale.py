#!/usr/bin/env python3
"""The floor of issue 14: the work no segmentation tool can skip, as a bare script.

    python scripts/floor_scale.py TABLE.parquet OUT.parquet
    python scripts/floor_scale.py --stream TABLE.parquet OUT.parquet   # larger than memory

Read the Parquet file, standardise the numeric columns, fit k-means (k = 5, one init) on a
50,000-customer sample, assign every customer in chunks, write (id, segment) as Parquet.
--stream is the same work out of core, for a table memory cannot hold (50 M customers): a
first pass over the record batches gathers the means, standard deviations and the seeded
sample, a second standardises and assigns each batch and appends it to the output.
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


def _matrix(batch: pa.RecordBatch, numeric: list[str]) -> np.ndarray:
    x = np.empty((batch.num_rows, len(numeric)), dtype="float64")
    for j, name in enumerate(numeric):
        x[:, j] = pc.fill_null(pc.cast(batch.column(name), pa.float64()), 0.0).to_numpy()
    return x


def main_stream(source: str, out: str) -> int:
    parquet = pq.ParquetFile(source)
    numeric = [f.name for f in parquet.schema_arrow
               if f.name != "ID" and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))]
    n = parquet.metadata.num_rows
    rows = np.sort(np.random.default_rng(SEED).choice(n, min(SAMPLE, n), replace=False))
    total = np.zeros(len(numeric))
    squares = np.zeros(len(numeric))
    sample, offset = [], 0
    for batch in parquet.iter_batches(batch_size=CHUNK, columns=numeric):
        x = _matrix(batch, numeric)
        total += x.sum(axis=0)
        squares += (x * x).sum(axis=0)
        lo, hi = np.searchsorted(rows, [offset, offset + len(x)])
        sample.append(x[rows[lo:hi] - offset])
        offset += len(x)
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    std[std == 0] = 1.0
    model = KMeans(n_clusters=K, n_init=1, random_state=SEED).fit(
        (np.concatenate(sample) - mean) / std)
    writer = None
    for batch in parquet.iter_batches(batch_size=CHUNK, columns=["ID", *numeric]):
        labels = model.predict((_matrix(batch, numeric) - mean) / std).astype("int8")
        table = pa.table({"ID": batch.column("ID"), "segment": pa.array(labels)})
        if writer is None:
            writer = pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    stream = args[:1] == ["--stream"]
    args = args[1:] if stream else args
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main_stream(*args) if stream else main(*args))
