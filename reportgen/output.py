"""Write the run's files. The only stage that writes; all or nothing.

Everything is written into a hidden temporary folder beside the final one
(``.<run id>.partial-<pid>``) and moved into place at the end, so a failed or interrupted run
leaves no half-written report behind: on an exception (SIGTERM and Ctrl-C included, see
cli.entry) the folder is removed before the error goes on. A run killed outright (SIGKILL, the
machine losing power) cannot clean up: the next run into the same output root removes every
such folder whose process is gone.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import progress
from .errors import ReportgenError
from .report import Report

if TYPE_CHECKING:
    from .render.worker import Rendered, RenderWorker

log = logging.getLogger("reportgen")

LATEST_FILE = "latest"  # out_root/latest: JSON naming the newest run of the series

# OWASP CSV injection: a cell starting with one of these runs as a formula in Excel.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def segments_table(names: dict[int, str], frame: pd.DataFrame, key: str, kept_index: pd.Index,
                   labels: np.ndarray, excluded: pd.Series, features: pd.DataFrame,
                   previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every input row: its key, segment and persona (names: segment id -> persona), or the
    reason it was left out. previous: previous_segment, previous_persona and movement of the
    kept rows (series.customer_columns), placed after the persona. The values as they are:
    ``csv_safe`` neutralises what a spreadsheet would run, for segments.csv."""
    segment = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    segment.loc[kept_index] = labels
    keys = frame[key] if key in frame else pd.Series(
        [int(i) + 2 for i in frame.index], index=frame.index)
    out = pd.DataFrame({
        key: keys,
        "segment": segment,
        "persona": segment.map(names).astype("string"),
    })
    if previous is None:  # scores, or a run compared with nothing: the columns, empty
        for column, dtype in (("previous_segment", "Int64"), ("previous_persona", "string"),
                              ("movement", "string")):
            out[column] = pd.Series(pd.NA, index=frame.index, dtype=dtype)
    else:
        out = out.join(previous, how="left")
    out["left_out"] = excluded.reindex(frame.index).astype("string")
    # column by column: a join of features.round(4) held the rounded features twice
    aligned = features.index.equals(frame.index)
    for column in features.columns:
        rounded = features[column].round(4)
        out[column] = rounded if aligned else rounded.reindex(frame.index)
    return out


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """table for segments.csv: every text cell and header a spreadsheet would run as a formula
    neutralised (segments.parquet keeps the values as they are: the series reads its keys
    back from it, and no spreadsheet opens it)."""
    out = table.copy(deep=False)
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = _neutralised(out[column])
    out.columns = [neutralise(c) for c in out.columns]  # the key's name is a header cell too
    return out


def _neutralised(s: pd.Series) -> pd.Series:
    """neutralise() on every cell of a text column, vectorised (no Python call per row)."""
    if s.dtype == object and not s.map(lambda v: isinstance(v, str) or v is None
                                       or v is pd.NA or v != v).all():
        return s.map(neutralise, na_action="ignore")  # mixed values: one at a time
    text = s.astype("string")
    risky = text.str.startswith(FORMULA_START).fillna(False).astype(bool)
    if not risky.any():
        return s
    return s.where(~risky, "'" + text)


# segments.csv is written in blocks of this many rows (bounded memory at any size: a block's
# frames and text took ~0.25 GB at 200,000 rows, no faster than at 50,000).
CSV_BLOCK = 50_000
# Threads formatting a block's columns (the machines this runs on have two cores or more),
# for blocks of at least _PARALLEL_FROM rows.
CSV_THREADS = 2
_PARALLEL_FROM = 10_000
# Within this range of magnitudes Arrow's shortest float text and Python's repr (what
# DataFrame.to_csv writes) have the same digits and no exponent; outside it, repr is used.
_PLAIN_LOW, _PLAIN_HIGH = 1e-4, 1e9


def _csv_quotes() -> tuple[str, ...]:
    """The characters that make Python's csv writer (QUOTE_MINIMAL, lineterminator \\n, as
    DataFrame.to_csv uses it) quote a field; whether \\r does depends on the Python version."""
    probe = io.StringIO()
    csv.writer(probe, lineterminator="\n").writerow(["a\rb"])
    return (",", '"', "\n") + (("\r",) if probe.getvalue().startswith('"') else ())


_QUOTED = _csv_quotes()


# A cell's text as pieces the line joins (a float's integer part and fraction are not joined
# into one array first: one join of a whole line instead of one per column).
Cell = list[pa.Array]


def _csv_text(values: pd.Series) -> Cell | None:
    """The cells of one column as DataFrame.to_csv writes them (no nulls), as pieces whose
    concatenation is each cell, or None for a dtype this writer does not format (the caller
    then leaves the file to pandas)."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return [pc.fill_null(pc.cast(pa.array(values, from_pandas=True), pa.string()), "")]
    if pd.api.types.is_float_dtype(dtype):
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        decimal = _decimal_text(x)
        if decimal is not None:
            return decimal
        text = pc.cast(pa.array(x, from_pandas=True), pa.string())
        # 58138 → 58138.0 as repr writes it
        text = pc.if_else(pc.match_substring(text, "."), text,
                          pc.binary_join_element_wise(text, ".0", ""))
        magnitude = np.abs(x)
        odd = ~np.isnan(x) & (magnitude != 0) & ((magnitude < _PLAIN_LOW) |
                                                 (magnitude >= _PLAIN_HIGH))
        if odd.any():
            text = pc.replace_with_mask(text, pa.array(odd),
                                        pa.array([repr(float(v)) for v in x[odd]],
                                                 type=pa.string()))
        return [pc.fill_null(text, "")]
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        try:
            text = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if pa.types.is_null(text.type):
            return [pa.array([""] * len(values), type=pa.string())]  # all missing
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            return None
        if isinstance(text, pa.ChunkedArray):  # an Arrow-backed column
            text = text.combine_chunks()
        text = text.cast(pa.string())
        # quoted once per distinct value (a persona column has k of them), then taken
        encoded = pc.dictionary_encode(text)
        if len(encoded.dictionary) > len(text) // 2:  # mostly distinct (keys): as they are
            return [_quoted(text)]
        return [pc.fill_null(_quoted(encoded.dictionary).take(encoded.indices), "")]
    return None


def _quoted(text: pa.Array) -> pa.Array:
    """Each string as the csv module writes it (quoted when it holds a separator, a quote or
    a line end, its quotes doubled); nulls as ""."""
    needs = None
    for char in _QUOTED:
        found = pc.match_substring(text, char)
        needs = found if needs is None else pc.or_(needs, found)
    if needs is None or not pc.any(needs).as_py():
        return pc.fill_null(text, "")
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.fill_null(pc.if_else(needs, quoted, text), "")


# A float rounded to this many decimals is written from integers (segments.csv's features are
# rounded to 4): Arrow's float formatting was most of segments.csv's time.
_DECIMALS = 4


@functools.lru_cache(maxsize=1)
def _fractions() -> pa.Array:
    """".0", ".0001", ... ".9999": the fraction of i / 10**_DECIMALS as repr ends it."""
    scale = 10 ** _DECIMALS
    return pa.array(["." + (f"{i:0{_DECIMALS}d}".rstrip("0") or "0") for i in range(scale)],
                    type=pa.string())


def _decimal_text(x: np.ndarray) -> Cell | None:
    """x as repr writes each value ("" for NaN), when every value is a whole number of
    10**-_DECIMALS below 1e9 (else None: the caller formats it): the integer part cast and the
    fraction looked up, two pieces. Exact: such a value is the double nearest to its decimal,
    and no shorter decimal is that near (they are 1e-4 apart, its ulp is under 2e-7), so that
    decimal is repr's shortest round trip, and repr writes no exponent between 1e-4 and
    1e16."""
    scale = 10 ** _DECIMALS
    finite = np.isfinite(x)
    if not np.array_equal(finite, ~np.isnan(x)):
        return None  # infinities
    y = np.where(finite, x, 0.0)
    if len(y) and np.abs(y).max() >= _PLAIN_HIGH:
        return None
    n = np.rint(np.abs(y) * scale)
    if not np.array_equal(n / scale, np.abs(y)):
        return None  # not rounded to _DECIMALS
    whole = n.astype(np.int64)
    gaps = ~finite
    units = pc.cast(pa.array(whole // scale, mask=gaps), pa.string())
    negative = np.signbit(y) & finite  # -0.0 included, as repr writes it
    if negative.any():
        units = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", units, ""),
                           units)
    return [pc.fill_null(units, ""),
            pc.fill_null(_fractions().take(pa.array(whole % scale, mask=gaps)), "")]


def _csv_field(name: str) -> str:
    if any(c in name for c in _QUOTED):
        return '"' + name.replace('"', '""') + '"'
    return name


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """table as ``table.to_csv(path, index=False, lineterminator="\\n")`` writes it, byte for
    byte, formatted column by column with pyarrow in blocks of rows: no Python object per row
    or cell (DataFrame.to_csv took 85 s of a 10 M-customer run). A column of a dtype it does
    not format (booleans, dates, mixed objects) leaves the whole file to pandas."""
    with open(path, "wb") as f:
        f.write(_csv_header(table.columns))
        for start in range(0, len(table), CSV_BLOCK):
            progress.update("output", start, len(table), "rows written")
            lines = _csv_lines(table.iloc[start:start + CSV_BLOCK])
            if lines is None:
                break
            _write_text(f, lines)
        else:
            progress.update("output", len(table), len(table), "rows written")
            return
    table.to_csv(path, index=False, lineterminator="\n")


@functools.lru_cache(maxsize=1)
def _formatters() -> Any:
    """The threads that format a block's columns, made once (a pool per block made threads,
    and their allocators' memory, for every block)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(CSV_THREADS, thread_name_prefix="csv")


def _csv_header(columns: pd.Index) -> bytes:
    return (",".join(_csv_field(str(c)) for c in columns) + "\n").encode()


def _csv_lines(block: pd.DataFrame) -> pa.ChunkedArray | None:
    """The CSV lines of block (each ending in \\n), or None when a column's dtype is one this
    writer does not format."""
    columns = [block[c] for c in block.columns]
    parallel = len(block) >= _PARALLEL_FROM and CSV_THREADS > 1
    if parallel:
        # Arrow's kernels and numpy let go of the GIL: two columns are formatted at once
        cells = list(_formatters().map(_csv_text, columns))
    else:
        cells = [_csv_text(c) for c in columns]
    if any(c is None for c in cells):
        return None
    pieces: list[pa.Array | str] = []
    for i, cell in enumerate(cells):
        assert cell is not None
        pieces += ([","] if i else []) + cell
    # One join of every piece of a line (each cell's text is never an array of its own), a
    # share of the rows in each thread: the join of ~55 pieces was half the segments' time
    # at 1 M customers, in one thread.
    step = -(-len(block) // CSV_THREADS) if parallel else max(len(block), 1)
    join, starts = functools.partial(_joined, pieces, step), range(0, max(len(block), 1), step)
    return pa.chunked_array(_formatters().map(join, starts) if parallel else map(join, starts),
                            type=pa.string())


def _joined(pieces: list[pa.Array | str], length: int, start: int) -> pa.Array:
    """Rows start to start + length of the lines the pieces make."""
    return pc.binary_join_element_wise(
        *(p if isinstance(p, str) else p.slice(start, length) for p in pieces), "\n", "")


class SegmentsWriter:
    """segments.csv and segments.parquet written a block of rows at a time, for a table that
    never is whole in memory (out of core): the same bytes as write_csv(csv_safe(table)) and
    the same columns, types and metadata as write_parquet give for the whole table."""

    def __init__(self, csv_path: Path, parquet_path: Path,
                 metadata: dict[str, Any] | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow.parquet as pq

        self._pq = pq
        self._csv = open(csv_path, "wb")  # noqa: SIM115 - closed by close()
        self._parquet_path = parquet_path
        self._metadata = metadata
        self._parquet: Any = None
        self._schema: pa.Schema | None = None
        # A block's row group is encoded and compressed in this thread (Arrow lets go of the
        # GIL) while the next lines of the CSV are formatted; one block at most waits.
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="parquet")
        self._pending: Any = None

    def write(self, block: pd.DataFrame) -> None:
        """The next rows of segments_table(...): neutralised for the CSV, as they are for
        the Parquet file."""
        safe = csv_safe(block)
        if self._schema is None:
            self._csv.write(_csv_header(safe.columns))
            self._schema = _parquet_schema(block, self._metadata)
            self._parquet = self._pq.ParquetWriter(self._parquet_path, self._schema)
        table = pa.Table.from_pandas(block, schema=self._schema, preserve_index=False)
        self._wait()
        self._pending = self._encoder.submit(self._parquet.write_table, table)
        lines = _csv_lines(safe)
        if lines is None:
            self._csv.write(safe.to_csv(index=False, header=False,
                                        lineterminator="\n").encode())
        else:
            _write_text(self._csv, lines)

    def _wait(self) -> None:
        """Until the row group written in the background is written (raising its error)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self._encoder.shutdown()
            self._csv.close()
            if self._parquet is not None:
                self._parquet.close()

    def __enter__(self) -> SegmentsWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # the error on its way out is the one to see
            with contextlib.suppress(Exception):
                self._wait()
        self.close()


def _write_text(f: Any, text: pa.Array | pa.ChunkedArray) -> None:
    """The characters of a string array without nulls, one after the other."""
    if isinstance(text, pa.ChunkedArray):
        for chunk in text.chunks:  # each as it is: no copy of them joined
            _write_text(f, chunk)
        return
    if not len(text):
        return
    wide = pa.types.is_large_string(text.type)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if wide else np.int32
                            )[text.offset:]
    first, last = int(offsets[0]), int(offsets[len(text)])
    f.write(memoryview(text.buffers()[2])[first:last])


def _parquet_schema(table: pd.DataFrame, metadata: dict[str, Any] | None) -> pa.Schema:
    schema = pa.Schema.from_pandas(table, preserve_index=False)
    if metadata is not None:
        schema = schema.with_metadata({**(schema.metadata or {}),
                                       b"reportgen": json.dumps(metadata).encode()})
    return schema


def write_parquet(table: pd.DataFrame, path: Path,
                  metadata: dict[str, Any] | None = None) -> None:
    """segments.parquet: the rows and columns of segments.csv, typed and not neutralised
    (what the monthly series and other programs read back without parsing text).
    ``metadata``: kept as JSON under the schema's "reportgen" key (the series' key and value
    columns and the run id: history.read_assignments)."""
    import pyarrow.parquet as pq

    schema = _parquet_schema(table, metadata)
    with pq.ParquetWriter(path, schema) as writer:  # in blocks: bounded memory at any size
        for start in range(0, max(len(table), 1), CSV_BLOCK):
            block = table.iloc[start:start + CSV_BLOCK]
            writer.write_table(pa.Table.from_pandas(block, schema=schema, preserve_index=False))


def write_segments(folder: Path, names: dict[int, str], frame: pd.DataFrame, key: str,
                   kept_index: pd.Index, labels: np.ndarray, excluded: pd.Series,
                   features: pd.DataFrame, previous: pd.DataFrame | None = None,
                   parquet_meta: dict[str, Any] | None = None,
                   feature_columns: list[str] | None = None) -> None:
    """segments.csv and segments.parquet of segments_table(...) into folder, made and written
    a block of CSV_BLOCK rows at a time: the whole table is never built (at 1 M customers it
    was ~0.2 GB of a run's peak). The same bytes as write_csv(csv_safe(...)) and
    write_parquet of the whole table (segments_table and csv_safe work row by row).
    ``feature_columns``: the columns of features written (default: all), taken a block at a
    time (features[feature_columns] whole would copy them)."""
    labels = np.asarray(labels)
    # each input row's position among the kept ones (-1: left out), looked up once (a
    # lookup per block was a tenth of the segments' time at 1 M customers)
    position = kept_index.get_indexer(frame.index)
    columns = np.arange(features.shape[1]) if feature_columns is None else \
        features.columns.get_indexer(feature_columns)
    with SegmentsWriter(folder / "segments.csv", folder / "segments.parquet",
                        parquet_meta) as out:
        for start in range(0, max(len(frame), 1), CSV_BLOCK):
            progress.update("output", start, len(frame), "rows written")
            block = frame.iloc[start:start + CSV_BLOCK]
            rows = position[start:start + CSV_BLOCK]
            rows = rows[rows >= 0].astype(np.int64, copy=False)
            out.write(segments_table(
                names, block, key, kept_index[rows], labels[rows], excluded,
                _rows(features, rows).iloc[:, columns],
                None if previous is None else _rows(previous, rows)))
        progress.update("output", len(frame), len(frame), "rows written")


def _rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """frame.iloc[rows], copying only those rows: a block's kept rows are usually one run of
    consecutive positions, a slice and no copy at all. (frame.iloc[rows, columns] copied the
    columns of every row first: ~1 s of segments.csv at 1 M customers.)"""
    if not len(rows):
        return frame.iloc[:0]
    first, last = int(rows.min()), int(rows.max())
    span = frame.iloc[first:last + 1]
    if last - first + 1 == len(rows) and rows[0] == first and bool((np.diff(rows) == 1).all()):
        return span
    return span.iloc[rows - first]


def empty(frame: pd.DataFrame) -> None:
    """Every column of frame deleted in place: the memory of its values goes back (unless
    a view elsewhere holds it) for every holder of the frame at once. (pandas splits a block
    it deletes from into views, so no column is copied on the way.)"""
    for column in frame.columns.unique():
        del frame[column]


def release_memory() -> None:
    """Give the memory freed so far back to the system: what Arrow's allocator keeps for
    reuse, and on glibc what malloc keeps (malloc_trim). The freed blocks of segments.csv
    stayed resident through the rendering otherwise, which then peaked above the data."""
    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


# What write_outputs leaves while it works: .<run id>.partial-<pid>, .<run id>.old-<pid>
_WORKING = re.compile(r"^\.(?P<run>.+)\.(?:partial|old)-(?P<pid>\d+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale(out_root: Path) -> list[Path]:
    """Remove the working folders of runs into ``out_root`` whose process is gone (killed
    with SIGKILL, say); the ones of live runs are left alone. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(out_root.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _WORKING.match(path.name)
        if not match or not path.is_dir() or int(match["pid"]) == os.getpid() \
                or _alive(int(match["pid"])):
            continue
        final = out_root / match["run"]
        if ".old-" in path.name and not final.exists():
            # killed between moving the previous run aside and the new one into place:
            # the previous run is the complete one, so it goes back
            path.rename(final)
            log.info("restored %s, moved aside by a run that was killed", final)
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed %s, left by a run that was killed", path)
        removed.append(path)
    return removed


class ChartExports:
    """The charts the PDF and the email show, exported with vl-convert in a background thread
    while the main thread writes the other files. vl-convert (1.9) holds the GIL while it
    converts, so the two take turns rather than run at once: the thread saves the main
    thread's waiting, not its work. One chart at a time, in the order the renderers used to
    export them; ``print_exports`` and ``email_images`` wait for their part and raise what
    the export raised (a chart vl-convert rejects is the same error as when it was exported
    in line). ``cancel`` drops what has not started (a run that failed elsewhere)."""

    def __init__(self, report: Report, formats: list[str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from .render.pdf import export_for_print, page_rank

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="charts")
        self._print: dict[str, Future[Any]] = {}
        self._email: dict[str, Future[bytes]] = {}
        self.seconds = 0.0  # the thread's time exporting
        if "pdf" in formats:
            self._print = {name: self._pool.submit(self._timed, export_for_print,
                                                   report.charts[name])
                           for name in sorted(report.charts, key=page_rank)}
        if "email" in formats:
            from .render.email import email_specs

            self._email = {name: self._pool.submit(self._timed, self._email_png, spec,
                                                   self._print.get(name))
                           for name, spec in email_specs(report).items()}

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - start  # only this thread adds

    @staticmethod
    def _email_png(spec: dict[str, Any], exported: Any) -> bytes:
        from .render.email import email_png, svg_of

        # the print SVG, when there is one, is rasterised rather than drawn again
        return email_png(spec, svg_of(exported.result()) if exported is not None else None)

    def print_exports(self) -> dict[str, Any]:
        """As render.pdf.print_exports(report)."""
        return {name: future.result() for name, future in self._print.items()}

    def email_images(self) -> dict[str, bytes]:
        """As render.email.email_images(report, print_exports)."""
        return {name: future.result() for name, future in self._email.items()}

    def cancel(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _render(report: Report, formats: list[str], template_dir: Path | None, tmp: Path,
            manifest: dict[str, Any], timings: dict[str, float], peaks: dict[str, float],
            charts: ChartExports | None, rendered: Future[Rendered] | None) -> dict[str, Any]:
    """report.html, report.pdf and the email files into tmp, as formats asks: the PDF and
    the email from the render worker's result ``rendered`` when there is one, else made here
    with the charts ``charts`` exports; each one's seconds into timings (waiting for the
    charts included) and the process's peak memory after it into peaks. Returns the manifest
    with the email's part."""
    from .pipeline import peak_rss_mb

    if "html" in formats:
        from .render.html import render_html

        start = time.perf_counter()
        (tmp / "report.html").write_text(render_html(report, template_dir), encoding="utf-8")
        timings["render_html"] = round(time.perf_counter() - start, 4)
        peaks["render_html"] = peak_rss_mb()
    if rendered is not None:
        start = time.perf_counter()
        done = _worker_result(rendered)
        timings["render_wait"] = round(time.perf_counter() - start, 4)
        if done is not None:
            return _written(done, tmp, manifest, timings, peaks)
        charts = ChartExports(report, formats)  # the worker broke: everything here
    assert charts is not None
    if "pdf" in formats:
        import weasyprint  # noqa: F401 - its ~0.7 s of importing while the charts export

        from .render.pdf import chart_images, render_pdf

        start = time.perf_counter()
        pdf = render_pdf(report, template_dir,
                         images=chart_images(report, charts.print_exports()))
        (tmp / "report.pdf").write_bytes(pdf)
        timings["render_pdf"] = round(time.perf_counter() - start, 4)
        peaks["render_pdf"] = peak_rss_mb()
    if "email" in formats:
        from .render.email import render_email

        start = time.perf_counter()
        email = render_email(report, charts.email_images(), template_dir)
        for name, data in email.files().items():
            (tmp / name).write_bytes(data)
        manifest = {**manifest, "email": email.manifest()}
        timings["render_email"] = round(time.perf_counter() - start, 4)
        peaks["render_email"] = peak_rss_mb()
    if "pdf" in formats or "email" in formats:
        timings["charts"] = round(charts.seconds, 4)  # in the background, overlapping
    return manifest


def _submitted(worker: RenderWorker, report: Report, formats: list[str],
               template_dir: Path | None) -> Future[Rendered] | None:
    """The worker's job for this report, or None when its pool is already broken (the
    worker could not start, or died warming up): the work is then done here."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return worker.render(report, formats, template_dir)
    except BrokenProcessPool as exc:
        log.warning("the render worker stopped (%s); making the PDF and the email here", exc)
        return None


def _worker_result(rendered: Future[Rendered]) -> Rendered | None:
    """The render worker's result, or None when its pool broke (the worker killed, or unable
    to start): a reason to do its work here, not to fail the run. An error of the work itself
    (a chart vl-convert rejects, a user template WeasyPrint refuses) is raised as it is."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return rendered.result()
    except BrokenProcessPool as exc:
        log.warning("the render worker stopped (%s); making the PDF and the email here", exc)
        return None


def _written(done: Rendered, tmp: Path, manifest: dict[str, Any], timings: dict[str, float],
             peaks: dict[str, float]) -> dict[str, Any]:
    """The worker's files into tmp, its seconds into timings, and into peaks this process's
    peak so far after each renderer (as without a worker) and the worker's own
    (``render_worker``)."""
    from .pipeline import peak_rss_mb

    for name, data in done.files.items():
        (tmp / name).write_bytes(data)
    timings.update(done.timings)
    for step in ("render_pdf", "render_email"):
        if step in done.timings:
            peaks[step] = peak_rss_mb()
    peaks["render_worker"] = done.peak_rss_mb
    if done.email is not None:
        manifest = {**manifest, "email": done.email}
    return manifest


def write_outputs(*, report: Report, out_root: Path, frame: pd.DataFrame, key: str,
                  kept_index: pd.Index, labels: np.ndarray, excluded: pd.Series,
                  features: pd.DataFrame, manifest: dict[str, Any], formats: list[str],
                  template_dir: Path | None = None,
                  timings: dict[str, float], model: dict[str, Any] | None = None,
                  previous: pd.DataFrame | None = None,
                  extra: dict[str, Callable[[Path], object]] | None = None,
                  latest: dict[str, Any] | None = None,
                  parquet_meta: dict[str, Any] | None = None,
                  segments: bool = True,
                  feature_columns: list[str] | None = None,
                  let_go: Callable[[], object] | None = None,
                  worker: RenderWorker | None = None) -> tuple[Path, list[Path]]:
    """Write the run's files into out_root/<run id>/, replacing an earlier run of the same
    id only once everything is written. ``model``: the bundle to save as model.skops.
    ``previous``: segments.csv's columns about the previous run; ``extra``: more files of
    the run (name -> writer of that path: the assignments, the history record, movers.csv);
    ``latest``: the pointer written to out_root/latest once the run folder is in place;
    ``parquet_meta``: segments.parquet's "reportgen" metadata (write_parquet);
    ``feature_columns``: the columns of ``features`` segments.csv shows (default: all);
    ``segments``: False when the segments are written elsewhere (the Spark engine's
    Parquet), so no segments.csv/.parquet of a sample is written here; ``let_go``: called
    once the segments are written, for the caller to let go of the rows they came from
    (``empty``) before the renderers take their memory; ``worker``: the run's render worker
    (render.worker), which makes the PDF and the email while this process writes the rest
    (without one, or if it breaks, they are made here: the same bytes)."""
    final = out_root / report.run_id
    tmp = out_root / f".{report.run_id}.partial-{os.getpid()}"
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        remove_stale(out_root)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise ReportgenError(f"cannot write the output folder ({exc.strerror})",
                             file=str(out_root)) from None
    charts: ChartExports | None = None
    rendered: Future[Rendered] | None = None
    try:
        from .pipeline import peak_rss_mb

        timings = dict(timings)
        peaks = dict(manifest.get("peak_rss_mb", {}))
        if worker is not None and {"pdf", "email"} & set(formats):
            # first: the worker exports the charts and lays out the PDF on the other core
            # while this process writes the segments, the files and the HTML
            rendered = _submitted(worker, report, formats, template_dir)
        # What the stages before let go, given back before the segments take their blocks
        # (~75 MB at 1 M customers).
        release_memory()
        if segments:
            start = time.perf_counter()
            names = {s.id: s.name for s in report.segments}
            write_segments(tmp, names, frame, key, kept_index, labels, excluded, features,
                           previous, parquet_meta, feature_columns)
            if let_go is not None:
                let_go()
            # The blocks' memory (and the rows let go), before the renderers take theirs.
            release_memory()
            timings["segments"] = round(time.perf_counter() - start, 4)
            peaks["segments"] = peak_rss_mb()
        # The charts from here, not beside the segments, and the segments in this thread,
        # not beside the renderers (measured at 1 M customers, README "One process"):
        # vl-convert holds the GIL while it converts, so a chart export stalls every other
        # Python thread, and a segments thread beside Python work waited for the GIL at
        # each of its thousands of Arrow calls (2-5x slower; importing skops.io and
        # WeasyPrint in a thread beside the segments cost them as much as it saved); both
        # overlaps also held the blocks' memory beside vl-convert's ~0.17 GB, 40-100 MB above
        # this order's peak.
        if rendered is None:
            charts = ChartExports(report, formats)
        start = time.perf_counter()
        for name, writer in (extra or {}).items():
            writer(tmp / name)
        (tmp / "summary.json").write_text(report.to_json(), encoding="utf-8")
        if model is not None:  # while the charts are exported
            from .scoring import MODEL_FILE, dump

            dump(model, tmp / MODEL_FILE)
        timings["files"] = round(time.perf_counter() - start, 4)
        manifest = _render(report, formats, template_dir, tmp, manifest, timings, peaks,
                           charts, rendered)
        # Timings are the one thing that changes between identical runs: they live here,
        # not in summary.json, so summary.json stays byte-for-byte reproducible.
        manifest = {**manifest, "timings_s": dict(timings), "peak_rss_mb": peaks,
                    "files": sorted(p.name for p in tmp.iterdir()) + ["manifest.json"]}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
        if final.exists():
            old = out_root / f".{report.run_id}.old-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        if latest is not None and _newer_or_same(latest, out_root / LATEST_FILE):
            pointer = out_root / f".latest.partial-{os.getpid()}"
            pointer.write_text(json.dumps(latest, indent=2, sort_keys=True) + "\n",
                               encoding="utf-8")
            os.replace(pointer, out_root / LATEST_FILE)
    except BaseException:
        # SIGTERM (cli.entry turns it into an exception) and Ctrl-C included
        if charts is not None:
            charts.cancel()
        if worker is not None:
            worker.close()  # now, not once its PDF is done
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if charts is not None:
        charts.cancel()  # nothing is left to do: its thread ends
    files = sorted(final.iterdir())
    return final, files


def _newer_or_same(latest: dict[str, Any], path: Path) -> bool:
    """Whether the run ``latest`` names is at least as recent as the one path names (a rerun
    of an older period does not move the pointer back). Only a regular file is read, and only
    its first 64 KB: a pointer replaced by a link (to /dev/zero, to a file outside the root),
    a FIFO or a device is replaced without being opened; a folder there is left alone, with a
    warning."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return True
    if stat.S_ISDIR(mode):
        log.warning("%s is a folder, not the pointer to the newest run: left alone", path)
        return False
    if not stat.S_ISREG(mode):
        return True
    try:
        with path.open("rb") as f:
            current = json.loads(f.read(65536).decode("utf-8"))
        return str(latest.get("period", "")) >= str(current.get("period", ""))
    except (OSError, ValueError, AttributeError):
        return True


def write_scores(*, out_dir: Path, frame: pd.DataFrame, key: str, kept_index: pd.Index,
                 labels: np.ndarray, excluded: pd.Series, features: pd.DataFrame,
                 names: dict[int, str], summary: dict[str, Any]) -> list[Path]:
    """segments.csv (the same columns as a run's) and score.json into out_dir.

    out_dir may be any folder, the current one included, so it is never replaced: each file is
    written beside its final name and moved into place once both are complete.
    """
    final = [out_dir / "segments.csv", out_dir / "score.json"]
    parts = [out_dir / f".{p.name}.partial-{os.getpid()}" for p in final]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table = segments_table(names, frame, key, kept_index, labels, excluded, features)
        write_csv(csv_safe(table), parts[0])
        parts[1].write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                            encoding="utf-8")
        for part, path in zip(parts, final, strict=True):
            os.replace(part, path)
    except OSError as exc:
        raise ReportgenError(f"cannot write the scores ({exc.strerror})",
                             file=str(out_dir)) from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return final
