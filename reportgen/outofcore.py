"""Tables larger than memory (issue 14): a Parquet file, folder or glob streamed in batches.

A streamed run never holds the whole table. It reads the source once in record batches
(pyarrow.dataset) to draw a seeded random sample of ``limits.sample_rows`` customers, runs the
ordinary pipeline on that sample (schema, clean, features, the k search and fit, profile,
personas, playbook, the Report and every format: the same Report as any run, measured on the
sample), then reads the key column to find the keys the table holds more than once
(``batchscore.RepeatedKeys``: 8 bytes a customer while they are sorted), then reads the source
a last time, batch by batch, and puts every customer in a segment with the run's saved model
(``Model.apply``: the sample's cleaning decisions, scaling and centres, as ``reportgen score``
does), writing segments.csv and segments.parquet a batch at a time and counting each segment's
customers as it goes. A repeated key is assigned once, at its first occurrence, and its later
ones are left out with clean's reason, whichever batches they fall in, as the in-memory run
does. Memory is bounded by the sample's run and one batch, whatever the size of the table.

When: ``limits.out_of_core`` = auto streams a Parquet file of more than ``limits.stream_rows``
rows (2 M; ``limits.rows`` if lower) or ``limits.bytes`` bytes uncompressed, and any folder or
glob of Parquet files; always streams any Parquet source; never refuses past ``limits.rows``
as before.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import progress
from .config import Config
from .errors import ConfigError, InputError
from .report import SAMPLED, CleaningStep

if TYPE_CHECKING:
    from .pipeline import Inputs, RunResult

log = logging.getLogger("reportgen")

BATCH = 500_000  # rows per record batch read (and per block written)
PARQUET_MAGIC = b"PAR1"


def parquet_files(source: str | None) -> list[str] | None:
    """The Parquet files of SOURCE (a file, a folder of them, or a glob), or None when SOURCE
    is something else (a text or Excel file, a database, the sample)."""
    if source is None or "://" in source:
        return None
    if any(ch in source for ch in "*?["):
        files = sorted(f for f in glob.glob(source, recursive=True) if _is_parquet(Path(f)))
        if not files:
            raise InputError("no Parquet file matches this pattern", file=source)
        return files
    path = Path(source)
    if path.is_dir():  # without Parquet files in it, load says it is a folder
        files = sorted(str(f) for f in path.rglob("*") if f.is_file() and _is_parquet(f))
        return files or None
    return [source] if path.is_file() and _is_parquet(path) else None


def _is_parquet(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def wanted(source: str | None, cfg: Config) -> bool:
    """Whether SOURCE runs out of core (see the module's docstring)."""
    mode = cfg.limits.out_of_core
    if mode == "never":
        return False
    files = parquet_files(source)
    if files is None:
        if mode == "always" and source is not None and "://" not in source \
                and Path(source).exists():
            raise ConfigError("out of core ('limits.out_of_core = \"always\"') reads Parquet "
                              "files, folders or globs", file=source,
                              hint="convert the table to Parquet, or set out_of_core = auto")
        return False
    assert source is not None
    if mode == "always" or len(files) > 1 or Path(source).is_dir() or source != files[0]:
        return True
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(files[0]).metadata
    except Exception:  # noqa: BLE001 - a bad file: load says what is wrong with it
        return False
    # past limits.stream_rows (faster streamed, in a fraction of the memory), or what load
    # would refuse: more rows than limits.rows, or more bytes uncompressed (the
    # footer's count, before anything is read) than limits.bytes
    inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    rows = min(cfg.limits.stream_rows, cfg.limits.rows)
    return bool(meta.num_rows > rows or inflated > cfg.limits.bytes)


def _dataset(files: list[str], where: str) -> Any:
    import pyarrow.dataset as ds

    try:
        return ds.dataset(files, format="parquet")
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds on a bad file
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:80]
        raise InputError(f"not a readable Parquet table ({first})", file=where) from None


def _batches(dataset: Any, columns: list[str] | None = None) -> Any:
    # one thread reading ahead: memory stays at a batch or two
    return dataset.to_batches(columns=columns, batch_size=BATCH, batch_readahead=1,
                              fragment_readahead=1)


def run(source: str, cfg: Config, out_root: Path, inputs: Inputs, previous: str | None,
        fresh: bool) -> RunResult:
    """The streamed run of SOURCE (see the module's docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .load import load
    from .pipeline import _Clock, _run

    files = parquet_files(source)
    assert files is not None
    clock = _Clock()
    dataset = _dataset(files, source)
    total = dataset.count_rows()
    if total == 0:
        raise InputError("the table has no rows", file=source)
    n = min(cfg.limits.sample_rows, cfg.limits.rows, total)  # the sample is read whole
    seed = cfg.segment.random_state
    picked = np.sort(np.random.default_rng(seed).choice(total, n, replace=False)) \
        if n < total else None
    # the report names the file, or the folder or glob as given
    name = Path(source).name if source == files[0] else source
    with tempfile.TemporaryDirectory(prefix="reportgen-sample-") as tmp:
        sample_path = Path(tmp) / "sample.parquet"
        with clock.stage("sample"):
            offset = 0
            with pq.ParquetWriter(sample_path, dataset.schema) as writer:
                for batch in _batches(dataset):
                    if picked is None:
                        part = batch
                    else:
                        lo, hi = np.searchsorted(picked, [offset, offset + len(batch)])
                        part = batch.take(pa.array(picked[lo:hi] - offset))
                    writer.write_table(pa.Table.from_batches([part], schema=dataset.schema))
                    offset += len(batch)
                    progress.update("sample", offset, total, "rows read")
            loaded = load(str(sample_path), cfg.input, cfg.limits)
        note = CleaningStep(
            "*", SAMPLED, total - n,
            f"{n:,} of {total:,} customers drawn at random (seed {seed})",
            "the table is read in batches (larger than memory): segments are fitted and the "
            "report's figures measured on this sample; segments.csv and segments.parquet "
            "assign every customer")
        loaded = dataclasses.replace(loaded, name=name, where=source, path=Path(files[0]),
                                     notes=(*loaded.notes, note))
        result = _run(source, cfg, out_root, inputs, loaded, previous, fresh)
    with clock.stage("assign"):
        counts = _assign_all(dataset, total, result.run_dir, source)
    streamed = {"rows": total, "sample_rows": n, "customers": counts}
    _amend_manifest(result.run_dir, streamed, clock.timings)
    result.timings.update(clock.timings)
    return dataclasses.replace(result, streamed=streamed)


def _assign_all(dataset: Any, total: int, run_dir: Path, where: str) -> dict[str, int]:
    """Every customer of dataset segmented with the run's model, segments.csv and
    segments.parquet written a batch at a time; customers per persona (and left out)."""
    import pyarrow.parquet as pq

    from .batchscore import BatchScorer, RepeatedKeys
    from .load import frame_from_arrow, tidy_names
    from .output import SegmentsWriter, segments_table
    from .scoring import load_model, score

    model = load_model(run_dir)
    # the batches' columns in NumPy when the model's features allow it (batchscore), else
    # each batch cleaned and featured as a frame (Model.apply)
    scorer = BatchScorer.build(model, dataset.schema.names, dataset.schema.types)
    # the sample's segments.parquet says which columns the series reads back: kept
    stored = (pq.read_schema(run_dir / "segments.parquet").metadata or {}).get(b"reportgen")
    meta = json.loads(stored) if stored else None
    # a key repeated in two batches: only its first occurrence is assigned, as in memory
    # (the key's column as the files name it: load tidies the spaces in names and renames
    # a name met before, "ID " after "ID" becoming "ID.1")
    key = model.cleaning.key
    tidied = tidy_names(dataset.schema.names)[0]
    repeated = None
    if model.cleaning.key_from == "column" and key in tidied:
        column = dataset.schema.names[tidied.index(key)]
        repeated = RepeatedKeys.find(_batches(dataset, [column]), column, key, total)
    counts: dict[str, int] = {name: 0 for name in model.names.values()}
    counts["left out"] = 0
    parts = [run_dir / f".{name}.partial-{os.getpid()}"
             for name in ("segments.csv", "segments.parquet")]
    try:
        # a second thread writes each batch's rows (pyarrow formats the CSV text without
        # holding the GIL) while the next batch is read and scored; one batch waits at most
        with SegmentsWriter(parts[0], parts[1], meta) as out, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="segments") as writer:
            offset = 0
            pending: Future[None] | None = None
            for batch in _batches(dataset, scorer.columns if scorer else None):
                index = pd.RangeIndex(offset, offset + batch.num_rows)
                earlier = repeated.earlier(batch) if repeated is not None else {}
                done = scorer.score(batch, earlier) if scorer else None
                if done is None:
                    frame = frame_from_arrow(batch)
                    frame.index = index
                    # left out before cleaning, as clean leaves out a repeated key first
                    excluded = {index[i]: why for i, why in earlier.items()}
                    rest = frame.drop(index=list(excluded)) if excluded else frame
                    if len(rest):
                        scored = score(rest, model, where)
                        labels, kept, features = scored.labels, scored.kept_index, \
                            scored.features
                        excluded.update(scored.excluded.to_dict())
                    else:  # every key was met in a batch before
                        labels, kept = np.array([], dtype=np.int64), index[:0]
                        features = pd.DataFrame({f: np.array([]) for f in model.csv_features},
                                                index=kept)
                    table = segments_table(model.names, frame, key, kept, labels,
                                           pd.Series(excluded, dtype="string"), features)
                else:
                    labels = done.labels
                    kept = index[done.kept]
                    excluded = pd.Series({index[i]: why for i, why in done.excluded.items()},
                                         dtype="string")
                    table = segments_table(
                        model.names, done.key.set_axis(index).to_frame(), model.cleaning.key,
                        kept, labels, excluded, pd.DataFrame(done.features, index=kept))
                if pending is not None:
                    pending.result()
                pending = writer.submit(out.write, table)
                del table
                for segment_id, count in enumerate(np.bincount(labels).tolist()):
                    if count:
                        counts[model.names[segment_id]] += count
                counts["left out"] += batch.num_rows - len(labels)
                offset += batch.num_rows
                progress.update("assign", offset, total, "customers assigned")
            if pending is not None:
                pending.result()
        for part, final in zip(parts, ("segments.csv", "segments.parquet"), strict=True):
            os.replace(part, run_dir / final)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return counts


def _amend_manifest(run_dir: Path, streamed: dict[str, Any], timings: dict[str, float]
                    ) -> None:
    """manifest.json says the run was streamed: rows of the table, the sample, and how many
    customers each segment holds in the whole table (the report's counts are the sample's)."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["input"]["rows"] = streamed["rows"]
    manifest["timings_s"] = {**manifest["timings_s"], **timings}
    manifest["out_of_core"] = streamed
    part = run_dir / f".manifest.json.partial-{os.getpid()}"
    part.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(part, path)
