"""Load a customer table. The only stage that reads.

Sources: delimited text (sniffed delimiter, UTF-8 / BOM / CP1252, CRLF, gzip), Parquet, Excel
.xlsx, and SQL databases through a SQLAlchemy URL plus a table or a query. Whatever the source,
the result is a DataFrame with string column names, a 0-based row index, and plain dtypes
(no categoricals, booleans as 0/1, naive datetimes), so the later stages see one kind of table.

What reading had to repair (a file that was not UTF-8, duplicated column names) is returned as
cleaning steps, so the report's cleaning log says it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import os
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import InputConfig, LimitsConfig
from .errors import ConfigError, InputError, LimitError, ReportgenError
from .report import CleaningStep
from .resources import sample_path

DELIMITERS = [",", "\t", ";", "|"]
# The delimiter of whitespace-aligned text (fixed-width exports, CDNOW_master.txt): any run
# of spaces or tabs separates two fields, and leading spaces are no field.
WHITESPACE = " "
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50
HEADER_SCAN = 4 * 1024 * 1024  # characters searched for the header row (1,000 names of 1,000)
NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-", "#N/A"]
# A decoded text with more control characters than this share is not a table.
MAX_CONTROL_SHARE = 0.01
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Addresses reportgen will not fetch (it never downloads): named so the message is clear.
WEB_URL = re.compile(r"^(https?|ftps?|s3|gs|gcs|az|abfss?|hdfs|webhdfs)://", re.I)
# Excel's "sep=;" first line names the delimiter of the CSV it wrote.
EXCEL_SEP_LINE = re.compile(r"sep=(.)[ \t]*\r?\n")

# First bytes of the formats we can read, or at least name.
MAGIC = {
    b"PAR1": "parquet",
    b"PK\x03\x04": "zip",
    b"\x1f\x8b": "gzip",
    b"\xd0\xcf\x11\xe0": "xls",
    b"%PDF": "pdf",
    b"SQLite format 3\x00": "sqlite",
}


@dataclass(frozen=True)
class Loaded:
    frame: pd.DataFrame
    path: Path | None  # the file read; None for a database
    name: str  # shown in the report: file name, or the table / "query"
    where: str  # shown in messages: the path, or the URL with its password masked
    sha256: str  # of the file's bytes, or of the table's content for a database
    delimiter: str = ""
    encoding: str = ""
    kind: str = "text"  # text, parquet, excel, sql
    notes: tuple[CleaningStep, ...] = ()  # repairs made while reading


def is_database_url(source: str | Path | None) -> bool:
    return isinstance(source, str) and bool(URL_PATTERN.match(source)) \
        and not source.startswith("file://")


def load(source: str | Path | None, cfg: InputConfig,
         limits: LimitsConfig | None = None) -> Loaded:
    """Read SOURCE (None = the bundled sample) into a DataFrame of strings and numbers.

    Nothing past ``limits`` is read: a file larger than limits.bytes (after decompression),
    more rows or columns than allowed, or a special file (a FIFO, a device) is refused with a
    LimitError or InputError before it can fill the memory or block the run.
    """
    limits = limits or LimitsConfig()
    if isinstance(source, str) and (web := WEB_URL.match(source)):
        raise InputError(f"a {web.group(1).lower()}:// address: reportgen reads local files "
                         "and databases, and never downloads",
                         file=re.sub(r"(://[^/@]*:)[^@/]*@", r"\1***@", source),
                         hint="download the file first, then give its path")
    if is_database_url(source):
        return _load_sql(str(source), cfg, limits)
    if cfg.table or cfg.query:
        raise ConfigError("--table and --query (input.table, input.query) are for database "
                          "sources", file=str(source) if source else None,
                          hint="give a database URL such as postgresql://host/db or "
                               "sqlite:///customers.db")
    path = Path(source) if source is not None else sample_path()
    where = str(path)
    raw = _read_file(path, where, limits)
    if not raw.strip():
        raise InputError("the file is empty", file=where)
    digest = hashlib.sha256(raw).hexdigest()
    kind = _kind(raw, path)
    if kind == "parquet":
        frame, parquet_notes = _read_parquet(raw, where, limits)
        return _finish(frame, path, where, digest, kind="parquet", notes=parquet_notes,
                       limits=limits)
    if kind == "excel":
        frame = _read_excel(raw, where, cfg.sheet, limits)
        return _finish(frame, path, where, digest, kind="excel", notes=[], limits=limits)
    if kind == "xls":
        raise InputError("this is an old Excel .xls workbook", file=where,
                         hint="save it as .xlsx or CSV")
    if kind in ("pdf", "sqlite", "zip"):
        what = {"pdf": "a PDF document", "sqlite": "an SQLite database",
                "zip": "a zip archive, not an .xlsx workbook"}[kind]
        hint = (f"read it as sqlite:///{path} --table NAME" if kind == "sqlite"
                else "export the table as CSV, Parquet or .xlsx")
        raise InputError(f"the file is {what}", file=where, hint=hint)
    notes: list[CleaningStep] = []
    if kind == "gzip":
        raw = _gunzip(raw, where, limits)
        notes.append(CleaningStep("*", "decompressed", 0, "gzip", "the file was compressed"))
        if not raw.strip():
            raise InputError("the file is empty", file=where)
    frame, delimiter, encoding, text_notes = _read_text(raw, where, cfg, limits)
    return _finish(frame, path, where, digest, kind="text", delimiter=delimiter,
                   encoding=encoding, notes=notes + text_notes, limits=limits)


def over_limit(what: str, key: str, limits: LimitsConfig, where: str | None,
               unit: str = "") -> LimitError:
    """The one line for an input past a limit: what, which limit, how to raise it."""
    value = getattr(limits, key)
    return LimitError(f"{what} (more than limits.{key} = {value:,}{unit})", file=where,
                      hint=f"raise {key} under [limits] in the config if the input is right")


def _read_file(path: Path, where: str, limits: LimitsConfig) -> bytes:
    """The file's bytes, at most limits.bytes of them; only a regular file is read (a FIFO
    would block forever, /dev/zero never ends)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        hint = "check the path" if not path.is_symlink() else "the link points nowhere"
        raise InputError("file not found", file=where, hint=hint) from None
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc.__class__.__name__})",
                         file=where, hint="check the file's permissions") from None
    if stat.S_ISDIR(mode):
        raise InputError("is a folder, not a file", file=where, hint="give the table's path")
    if not stat.S_ISREG(mode):
        what = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise InputError(f"is {what}, not a file", file=where,
                         hint="save the table to a file and give its path")
    try:
        with path.open("rb") as f:
            # no more than the file holds: read(n) allocates n bytes before it reads
            size = os.fstat(f.fileno()).st_size
            raw = f.read(min(size, limits.bytes) + 1)
            if size < len(raw) <= limits.bytes:  # it grew since: the rest, up to the limit
                raw += f.read(limits.bytes + 1 - len(raw))
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc.__class__.__name__})",
                         file=where, hint="check the file's permissions") from None
    if len(raw) > limits.bytes:
        raise over_limit("the file is too large", "bytes", limits, where, " bytes")
    return raw


# Deflate inflates at most ~1032:1, so a gzip file smaller than limits.bytes / GZIP_MAX_RATIO
# cannot pass the limit; a larger one is first inflated in chunks and counted, holding one
# chunk at a time, so a bomb is refused with bounded memory instead of limits.bytes of it.
GZIP_MAX_RATIO = 1032
GZIP_CHUNK = 1 << 20


def _gunzip(raw: bytes, where: str, limits: LimitsConfig) -> bytes:
    """Decompress. A file that could inflate past limits.bytes is counted first, streaming
    (one GZIP_CHUNK in memory at a time): a bomb is refused without being held."""
    try:
        if len(raw) * GZIP_MAX_RATIO > limits.bytes:
            total = 0
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                while chunk := f.read(GZIP_CHUNK):
                    total += len(chunk)
                    if total > limits.bytes:
                        raise over_limit("the file is too large once decompressed", "bytes",
                                         limits, where, " bytes")
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(limits.bytes + 1)
    except (OSError, EOFError, zlib.error):
        raise InputError("the file looks gzip-compressed but cannot be decompressed",
                         file=where, hint="check that it was copied whole") from None
    if len(data) > limits.bytes:
        raise over_limit("the file is too large once decompressed", "bytes", limits, where,
                         " bytes")
    return data


def _kind(raw: bytes, path: Path) -> str:
    for magic, kind in MAGIC.items():
        if raw.startswith(magic):
            if kind == "zip":
                return "excel" if b"xl/" in raw[:65536] or path.suffix.lower() in (
                    ".xlsx", ".xlsm") else "zip"
            return kind
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"  # not a Parquet magic: _read_parquet says so
    if suffix in (".xlsx", ".xlsm"):
        return "excel"
    return "text"


# delimited text --------------------------------------------------------------------------

def _decode(raw: bytes, encoding: str | None, where: str) -> tuple[str, str, list[CleaningStep]]:
    if encoding:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise InputError(
                f"cannot decode the file as {encoding} (byte {raw[exc.start]:#04x} on line "
                f"{line})", file=where, row=None,
                hint="fix [input] encoding in the config, or leave it empty to detect it",
            ) from None
        return (text[1:] if text.startswith("\ufeff") else text), encoding, []
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        try:
            return raw.decode("utf-8"), "utf-8-sig", []
        except UnicodeDecodeError:
            pass  # a BOM on a file that is not UTF-8 after all: fall through
    try:
        return raw.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        first_line = raw[:exc.start].count(b"\n") + 1
    # Spreadsheet exports on Windows are CP1252 (a superset of Latin-1 for text); it decodes
    # all but five byte values, which become U+FFFD. It is the last resort, and it is logged.
    text = raw.decode("cp1252", errors="replace")
    lines = len(re.findall(rb"^[^\n]*[\x80-\xff]", raw, flags=re.M))
    lost = text.count("\ufffd")
    detail = f"not valid UTF-8 (first at line {first_line}); read as Windows-1252 / Latin-1"
    if lost:
        detail += f"; {lost} undecodable bytes became '\ufffd'"
    return text, "cp1252", [CleaningStep(
        "*", "decoded", lines, detail,
        "accented text from a Windows or Latin-1 export; set [input] encoding if it looks wrong")]


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of fields."""
    lines = [ln for ln in sample.splitlines()[:SNIFF_LINES] if ln.strip()]
    if len(lines) > 1 and len(sample) >= SNIFF_BYTES:
        lines = lines[:-1]  # the sample may end mid-line
    if not lines:
        return ","
    # Same number of fields on every line, and the most of them: robust to quoted cells
    # that contain other delimiters, where csv.Sniffer guesses wrong.
    best, best_fields = "", 1
    for d in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=d)}
        if len(counts) == 1 and (n := counts.pop()) > best_fields:
            best, best_fields = d, n
    if best:
        return best
    # A ragged line or two (the parser then names them): the header's width, on 80% of lines.
    for d in DELIMITERS:
        counts_list = [len(row) for row in csv.reader(lines, delimiter=d)]
        n = counts_list[0]
        if n > best_fields and sum(c == n for c in counts_list) >= 0.8 * len(counts_list):
            best, best_fields = d, n
    if best:
        return best
    if _whitespace_aligned(lines):
        return WHITESPACE
    if max(len(ln) for ln in lines) > 4096:
        return ","  # long cells make the csv module's regexes slow, and its guess no better
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _whitespace_aligned(lines: list[str]) -> bool:
    """Every line splits on runs of blanks into the same number (≥ 2) of fields, and none
    holds a quote (quoted cells with spaces inside need a real delimiter)."""
    if any('"' in ln for ln in lines):
        return False
    counts = {len(ln.split()) for ln in lines}
    return len(counts) == 1 and counts.pop() >= 2


def _text_columns(sample: str, delimiter: str) -> list[str]:
    """Columns whose values are digits with leading zeros ("00042", zip codes, zero-padded
    customer ids): read as text, so "00042" stays "00042" and never becomes 42."""
    lines = [ln for ln in sample.splitlines()[:SNIFF_LINES + 1] if ln.strip()]
    if len(lines) > 1 and len(sample) >= SNIFF_BYTES:
        lines = lines[:-1]
    if len(lines) < 2:
        return []
    if delimiter == WHITESPACE:
        rows = [ln.split() for ln in lines]
    else:
        rows = list(csv.reader(lines, delimiter=delimiter))
    header, body = rows[0], rows[1:]
    out = []
    for i, name in enumerate(header):
        values = [r[i].strip() for r in body if i < len(r) and r[i].strip()]
        if values and all(v.isdigit() for v in values) and \
                any(len(v) > 1 and v.startswith("0") for v in values):
            out.append(name.strip())
    return out


def _read_text(raw: bytes, where: str, cfg: InputConfig, limits: LimitsConfig
               ) -> tuple[pd.DataFrame, str, str, list[CleaningStep]]:
    encoding_wanted = cfg.encoding
    if encoding_wanted is None and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding_wanted = "utf-16"  # a UTF-16 byte-order mark (Excel's "Unicode text")
    if encoding_wanted is None and b"\x00" in raw[:SNIFF_BYTES]:
        raise InputError("the file is binary, not a delimited text table", file=where,
                         hint="export it as CSV, or set [input] encoding if it is UTF-16/32")
    text, encoding, notes = _decode(raw, encoding_wanted, where)
    sample = text[:SNIFF_BYTES]
    control = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n")
    if control > MAX_CONTROL_SHARE * len(sample):
        raise InputError("the file is binary, not a delimited text table", file=where,
                         hint="export it as CSV")
    skip = 0  # characters before the table
    if sep := EXCEL_SEP_LINE.match(text):
        # Excel writes "sep=;" as the first line of a CSV to name its delimiter
        skip = sep.end()
        delimiter = cfg.delimiter or sep.group(1)
        sample = text[skip:skip + SNIFF_BYTES]
    else:
        delimiter = cfg.delimiter or sniff_delimiter(sample)
    _check_header(text[skip:skip + HEADER_SCAN], delimiter, where, limits)
    text_columns = _text_columns(sample, delimiter)
    # pandas reads the table as UTF-8 bytes: the file's own bytes when it is UTF-8 (no copy),
    # else the text encoded once. A StringIO of the text would hold 4 bytes a character
    # (scripts/bench_load.py: 944 -> 560 MB peak for an 82 MB CSV); the text is let go here.
    body = _utf8_body(raw, text, encoding, skip)
    del text, sep  # (the match holds the text too)
    options: dict[str, Any] = dict(sep=r"\s+" if delimiter == WHITESPACE else delimiter,
                                   engine="c", encoding="utf-8", skipinitialspace=True,
                                   na_values=NA_VALUES, keep_default_na=False,
                                   nrows=limits.rows + 1)
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype={c: str for c in text_columns} or None,
                            skip_blank_lines=True, low_memory=False, **options)
    except pd.errors.EmptyDataError:
        raise InputError("the file has no columns", file=where) from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise _parse_error(str(exc), where, delimiter) from None
    lossy = [c for c in frame.columns if frame[c].dtype.kind == "f"
             and (frame[c].abs() >= EXACT_INTEGERS).any()
             and (frame[c].dropna() == frame[c].dropna().round()).all()]
    if lossy:
        # long integer ids with a blank among them were read as floats, losing digits: the
        # exact digits again, for those columns only
        exact = pd.read_csv(io.BytesIO(body), dtype=str, usecols=lossy, **options)
        for c in lossy:
            digits = exact[c].dropna().str.strip()
            if digits.str.fullmatch(r"[+-]?\d+").all():
                frame[c] = exact[c].str.strip().astype(object)
                notes.append(CleaningStep(str(c), "kept as text", 0,
                                          "integers of 16 or more digits",
                                          "too long for a number without losing digits: an "
                                          "identifier"))
    mangled = [c for c in frame.columns if (m := re.fullmatch(r"(.+)\.(\d+)", str(c)))
               and m.group(1) in frame.columns]
    if mangled:
        notes.append(CleaningStep("*", "renamed columns", 0,
                                  ", ".join(f"{str(c).rsplit('.', 1)[0]} → {c}" for c in mangled),
                                  "two columns had the same name"))
    if frame.shape[1] < 2:
        raise InputError(
            f"found a single column with delimiter {delimiter!r}", file=where,
            hint="the table needs an id or several columns; if it has them, set [input] "
                 "delimiter in the config",
        )
    return frame, delimiter, encoding, notes


def _utf8_body(raw: bytes, text: str, encoding: str, skip: int) -> bytes:
    """The table (``text`` from character ``skip`` on) as UTF-8 bytes, without a BOM."""
    if encoding in ("utf-8", "utf-8-sig") or codecs.lookup(encoding).name == "utf-8":
        start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
        if skip:
            start += len(text[:skip].encode("utf-8"))
        return raw[start:] if start else raw
    return text[skip:].encode("utf-8")


def _check_header(head: str, delimiter: str, where: str, limits: LimitsConfig) -> None:
    """Refuse a header past the column or name-length limits before pandas parses the rest
    (a 100,000-character name, or 100,000 columns, would slow every later stage).
    ``head``: the start of the text, where the header is searched."""
    lines = (ln for ln in io.StringIO(head) if ln.strip())
    try:
        header = next(lines, "").split() if delimiter == WHITESPACE else \
            next(csv.reader(lines, delimiter=delimiter), [])
    except csv.Error:  # a cell longer than the csv module's field limit (131,072)
        raise over_limit("a column name is too long", "header_chars", limits, where,
                         " characters") from None
    if len(header) > limits.columns:
        raise over_limit(f"the table has {len(header):,} columns", "columns", limits, where)
    for i, name in enumerate(header):
        if len(name.strip()) > limits.header_chars:
            raise over_limit(f"the name of column {i + 1} is {len(name.strip()):,} characters "
                             "long", "header_chars", limits, where)


def _parse_error(message: str, where: str, delimiter: str) -> InputError:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", first)
    if m:
        expected, line, saw = (int(g) for g in m.groups())
        return InputError(f"{saw} fields where the header has {expected}",
                          file=where, row=line,
                          hint=f"check quoting on that line, or the delimiter ({delimiter!r})")
    m = re.search(r"EOF inside string starting (?:at|on) (?:row|line) (\d+)", first)
    if m:
        return InputError("a quoted cell is never closed", file=where, row=int(m.group(1)) + 1,
                          hint="check the double quotes on that line")
    return InputError(f"cannot parse the table: {first}", file=where,
                      hint="check the delimiter and quoting, or set [input] delimiter")


# Parquet and Excel -----------------------------------------------------------------------

def _read_parquet(raw: bytes, where: str, limits: LimitsConfig
                  ) -> tuple[pd.DataFrame, list[CleaningStep]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        raise InputError("reading Parquet needs pyarrow", file=where,
                         hint="pip install pyarrow") from None
    notes: list[CleaningStep] = []
    try:
        pf = pq.ParquetFile(io.BytesIO(raw))
        meta = pf.metadata
        # The footer says how large the table is before any of it is decompressed.
        if meta.num_rows > limits.rows:
            raise over_limit(f"the table has {meta.num_rows:,} rows", "rows", limits, where)
        fields = list(pf.schema_arrow)
        if len(fields) > limits.columns:
            raise over_limit(f"the table has {len(fields):,} columns", "columns", limits,
                             where)
        inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if inflated > limits.bytes:
            raise over_limit(f"the table is {inflated:,} bytes uncompressed", "bytes", limits,
                             where, " bytes")
        flat = [f.name for f in fields if not pa.types.is_nested(f.type)]
        for f in fields:
            if pa.types.is_nested(f.type):
                notes.append(CleaningStep(
                    str(f.name), "ignored column", 0, f"nested values ({f.type})",
                    "lists, structs and maps are not measures; flatten them into columns to "
                    "use them"))
        # Text columns are read as dictionaries first: a file of a few hundred KB can repeat
        # one 100 KB value a million times (its footer says a few KB), so the size of the
        # decoded text is counted from the dictionary before anything is decoded.
        texts = [f.name for f in fields if f.name in flat and _is_text(f.type)]
        table = pq.ParquetFile(io.BytesIO(raw), read_dictionary=texts).read(columns=flat)
        decoded = _decoded_bytes(table)
        if decoded > limits.bytes:
            raise over_limit(f"the table is {decoded:,} bytes once decoded", "bytes", limits,
                             where, " bytes")
        for name in texts:
            column = table.column(name)
            i = table.schema.get_field_index(name)
            field = pf.schema_arrow.field(name)
            table = table.set_column(i, field, pa.chunked_array(
                [chunk.dictionary_decode().cast(field.type) for chunk in column.chunks],
                type=field.type))
        # One column at a time, each freed from the Arrow table as it is converted: the
        # table and the frame are never both whole in memory (2× the table, otherwise).
        return table.to_pandas(split_blocks=True, self_destruct=True), notes
    except ReportgenError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... on a bad file
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        first = first if len(first) <= 80 else first[:79] + "…"
        raise InputError(f"not a readable Parquet file ({first})", file=where,
                         hint="check that the file was copied whole") from None


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _decoded_bytes(table: Any) -> int:
    """Bytes of ``table`` once its dictionary columns are decoded: each row's value counted
    (each distinct value's length times the rows that hold it), not each distinct value once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for column in table.columns:
        if not (pa.types.is_dictionary(column.type) and _is_text(column.type.value_type)):
            total += column.nbytes
            continue
        for chunk in column.chunks:
            # each value's length times the rows that hold it (blank rows hold none)
            lengths = pc.fill_null(pc.binary_length(chunk.dictionary), 0).to_numpy(
                zero_copy_only=False)
            indices = chunk.indices.drop_null().to_numpy()
            rows = np.bincount(indices, minlength=len(lengths))
            total += chunk.indices.nbytes + int(rows @ lengths.astype(np.int64))
    return total


def _read_excel(raw: bytes, where: str, sheet: str | None,
                limits: LimitsConfig) -> pd.DataFrame:
    try:
        import openpyxl
    except ImportError:
        raise InputError("reading .xlsx workbooks needs openpyxl", file=where,
                         hint="pip install 'reportgen[excel]'") from None
    unreadable = "open it in Excel and save it again as .xlsx"
    try:
        # A workbook is a zip archive: its members' sizes, as the archive declares them
        # (and zipfile enforces), bound what openpyxl would inflate.
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"not a readable .xlsx workbook ({exc.__class__.__name__})",
                         file=where, hint=unreadable) from None
    if inflated > limits.bytes:
        raise over_limit(f"the workbook is {inflated:,} bytes uncompressed", "bytes", limits,
                         where, " bytes")
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # BadZipFile, InvalidFileException, KeyError on a broken file
        raise InputError(f"not a readable .xlsx workbook ({exc.__class__.__name__})",
                         file=where, hint=unreadable) from None
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise ConfigError(f"the workbook has no sheet {sheet!r}", file=where,
                              hint=f"sheets: {', '.join(names)}")
        ws = book[sheet] if sheet is not None else book[names[0]]
        header, data = _sheet_rows(ws, where, limits)
    except ReportgenError:
        raise
    except Exception as exc:  # a malformed sheet: openpyxl raises from deep inside
        raise InputError(f"not a readable .xlsx workbook ({exc.__class__.__name__})",
                         file=where, hint=unreadable) from None
    finally:
        book.close()
    others = [n for n in names if n != ws.title]
    problem = ("is empty" if not header else "has a single column" if len(header) < 2
               else "has no rows below its header" if not data else "")
    if problem and sheet is None and others:
        # A workbook whose first sheet is a note or a cover: the table is on another one
        raise InputError(f"the first sheet {ws.title!r} {problem}", file=where,
                         hint="the workbook has other sheets: set [input] sheet to one of "
                              + ", ".join(repr(n) for n in others[:8]))
    if not header:
        raise InputError(f"sheet {ws.title!r} is empty", file=where,
                         hint="the first row must hold the column names")
    width = len(header)
    names_ = [str(h).strip() if h is not None else "" for h in header]
    frame = pd.DataFrame([list(r[:width]) + [None] * (width - len(r)) for r in data],
                         columns=names_, dtype=object)
    # openpyxl gives Python objects per cell: let pandas find the numbers and dates.
    frame = frame.replace({"": None}).infer_objects()
    return frame


def _sheet_rows(ws: Any, where: str, limits: LimitsConfig
                ) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The header (trailing blanks dropped) and the non-blank rows of a read-only sheet,
    stopping at the rows and cells limits.

    The sheet's declared dimensions are trusted only when they are within the limits: a
    workbook declaring A1:XFD1048576 would otherwise be padded to 17 billion cells."""
    declared_rows, declared_cols = ws.max_row, ws.max_column
    if declared_rows is None or declared_cols is None or declared_rows > limits.rows + 1 \
            or declared_cols > limits.columns or \
            declared_rows * declared_cols > limits.excel_cells:
        ws.reset_dimensions()  # read the cells that are there, no padding
    rows = ws.iter_rows(values_only=True)
    first = next(rows, None)
    header = list(first or ())
    while header and (header[-1] is None or header[-1] == ""):
        header.pop()
    if len(header) > limits.columns:
        raise over_limit(f"the sheet has {len(header):,} columns", "columns", limits, where)
    cells = len(first or ())
    data = []
    for r in rows:
        cells += len(r)
        if cells > limits.excel_cells:
            raise over_limit("the sheet holds too many cells", "excel_cells", limits, where)
        if any(v is not None and v != "" for v in r):
            data.append(r)
            if len(data) > limits.rows:
                raise over_limit("the sheet has too many rows", "rows", limits, where)
    return header, data


# SQL ---------------------------------------------------------------------------------------

def _expand_env(source: str, masked: str) -> tuple[str, list[str]]:
    """Replace ${NAME} with the environment's value (URL-quoted); the values are secrets."""
    from urllib.parse import quote

    secrets: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(f"the database URL uses ${{{name}}}, which is not set in the "
                              "environment", file=masked, hint=f"export {name}=... before running")
        value = os.environ[name]
        if value:
            secrets.append(value)
        return value if m.group(0) == source else quote(value, safe="")

    return ENV_REFERENCE.sub(sub, source), secrets


def mask_url(source: str) -> str:
    """The URL with any password replaced by ***, for messages and the manifest."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(source).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", source)


def _scrub(text: str, secrets: list[str]) -> str:
    from urllib.parse import quote

    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
    return lines[0] if lines else exc.__class__.__name__


def _load_sql(source: str, cfg: InputConfig, limits: LimitsConfig) -> Loaded:
    """Read a table or a query, read-only by construction.

    SQLite: the file is opened by reportgen itself with ``mode=ro`` (no URL option can make it
    writable or create a file) and an authorizer allows only reading. PostgreSQL: every
    transaction of the session is read-only (``default_transaction_read_only``) and the one
    reportgen opens is ``READ ONLY`` too. Either way --query must be a single SELECT or WITH
    statement (check_query). Other databases are refused: reportgen cannot promise it only
    reads them.
    """
    masked = mask_url(ENV_REFERENCE.sub("***", source))
    if cfg.table and cfg.query:
        raise ConfigError("give either --table or --query, not both", file=masked)
    if not cfg.table and not cfg.query:
        raise ConfigError("a database source needs a table or a query", file=masked,
                          hint="add --table NAME or --query 'SELECT ...'")
    try:
        import sqlalchemy as sa
        from sqlalchemy import exc as sa_exc
        from sqlalchemy.engine import make_url
    except ImportError:
        raise InputError("reading from a database needs SQLAlchemy", file=masked,
                         hint="pip install 'reportgen[sql]'") from None
    expanded, secrets = _expand_env(source, masked)
    try:
        url = make_url(expanded)
    except (sa_exc.ArgumentError, ValueError):
        raise ConfigError("not a valid database URL", file=masked,
                          hint="e.g. postgresql://user@host:5432/crm or sqlite:///file.db"
                          ) from None
    if url.password:
        secrets.append(str(url.password))
    masked = url.render_as_string(hide_password=True)
    where = f"{masked} table {cfg.table}" if cfg.table else f"{masked} query"
    backend = url.get_backend_name()
    try:
        url.get_dialect()
    except sa_exc.NoSuchModuleError:
        raise ConfigError(f"unknown database type {url.drivername!r}", file=masked,
                          hint="use e.g. postgresql://..., sqlite:///...") from None
    except ImportError:
        pass  # a known database whose driver is missing: _engine says so
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"reportgen reads only PostgreSQL and SQLite databases, not "
                          f"{backend}", file=masked,
                          hint="it can guarantee read-only access only for those two; export "
                               "the table to CSV or Parquet")
    query = check_query(cfg.query, where, backend) if cfg.query else None
    connect_args: dict[str, Any] = {}
    creator = None
    if backend == "sqlite":
        creator = _sqlite_creator(url, masked)
    else:
        # Every transaction of the session read-only, and no statement longer than the
        # run may take.
        connect_args["connect_timeout"] = 10
        connect_args["options"] = ("-c default_transaction_read_only=on "
                                   f"-c statement_timeout={limits.seconds * 1000}")
    try:
        engine = _engine(sa, url, connect_args, creator)
    except ImportError as exc:
        hint = "pip install 'reportgen[sql]'" if backend == "postgresql" else \
            f"install the Python driver for {backend}"
        raise InputError(f"the database driver for {url.drivername!r} is not installed "
                         f"({exc.name or exc})", file=masked, hint=hint) from None
    except sa_exc.ArgumentError as exc:
        raise ConfigError(f"invalid database URL ({_scrub(_first_line(exc), secrets)})",
                          file=masked) from None
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            stmt = (_table_select(sa, conn, cfg.table, where) if cfg.table
                    else sa.text(query or ""))
            if backend == "sqlite":
                conn.connection.driver_connection.set_authorizer(_sqlite_authorizer)
            result = conn.execute(stmt)
            if not result.returns_rows:
                raise InputError("the query returned no rows", file=where,
                                 hint="--query must be a SELECT")
            columns = list(result.keys())
            if len(columns) > limits.columns:
                raise over_limit(f"the query returns {len(columns):,} columns", "columns",
                                 limits, where)
            records = result.fetchmany(limits.rows + 1)
            if len(records) > limits.rows:
                raise over_limit("the query returns too many rows", "rows", limits, where)
            frame = pd.DataFrame.from_records(records, columns=columns, coerce_float=True)
            conn.rollback()
    except ReportgenError:
        raise
    except sa_exc.DBAPIError as exc:
        message = _scrub(_first_line(exc), secrets)
        if any(m in message for m in _READ_ONLY_REFUSALS):
            raise InputError(f"the query tried to change the database ({message})",
                             file=where, hint="reportgen only reads: --query must be a "
                                              "SELECT") from None
        raise _sql_error(exc, message, cfg.query, where, masked) from None
    except (sa_exc.ResourceClosedError, sa_exc.NoSuchTableError, sa_exc.ArgumentError,
            sa_exc.CompileError) as exc:
        raise InputError(f"cannot read from the database ({_scrub(_first_line(exc), secrets)})",
                         file=where) from None
    finally:
        engine.dispose()
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    name = cfg.table or "query"
    return _finish(frame, None, where, digest.hexdigest(), kind="sql", notes=[], name=name,
                   limits=limits)


# What SQLite and PostgreSQL say when the read-only connection stops a write
_READ_ONLY_REFUSALS = ("not authorized", "authorization denied", "readonly database",
                       "read-only transaction")


def _sql_error(exc: Exception, message: str, query: str | None, where: str,
               masked: str) -> InputError:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.OperationalError):
        if query and "connect" not in message.lower():
            return InputError(f"the query failed: {message}", file=where,
                              hint="check the SQL in --query")
        return InputError(f"cannot connect to the database: {message}", file=masked,
                          hint="check that the server runs, the host and port, and the "
                               "credentials; passwords come from the environment: PGPASSWORD, "
                               "or ${VAR} in the URL")
    if isinstance(exc, (sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.IntegrityError,
                        sa_exc.NotSupportedError, sa_exc.InternalError)):
        return InputError(f"the query failed: {message}", file=where,
                          hint="check the SQL in --query" if query else "check the table name")
    return InputError(f"the database refused: {message}", file=where)


def _sqlite_creator(url: Any, masked: str) -> Any:
    """A connect function opening the database file read-only, whatever the URL asks."""
    import sqlite3
    from urllib.parse import quote

    database = url.database
    if url.query:
        raise ConfigError(f"options in an SQLite URL are not accepted ({', '.join(url.query)})",
                          file=masked, hint="reportgen opens the file read-only itself; give "
                                            "sqlite:///path/to/file.db")
    if database in (None, "", ":memory:") or str(database).startswith("file:"):
        raise ConfigError("an SQLite URL must name a database file", file=masked,
                          hint="e.g. sqlite:///customers.db (no file: URIs or :memory:)")
    db = Path(database)
    try:
        mode = db.stat().st_mode
    except OSError:
        raise InputError("database file not found", file=str(db)) from None
    if not stat.S_ISREG(mode):
        raise InputError("is a folder, not a database file" if stat.S_ISDIR(mode) else
                         "is not a regular file", file=str(db))
    uri = f"file:{quote(str(db.resolve()))}?mode=ro"

    def connect() -> Any:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


# What a query may do in SQLite: read tables and call functions, nothing else (no PRAGMA,
# ATTACH, VACUUM INTO, writes or temp tables), checked by SQLite itself as it prepares the
# statement.
_SQLITE_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None,
                       trigger: str | None) -> int:
    import sqlite3

    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in \
            _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _engine(sa: Any, url: Any, connect_args: dict[str, Any], creator: Any = None) -> Any:
    if creator is not None:
        # the URL's file and options are ignored: creator opens the file read-only
        return sa.create_engine("sqlite://", creator=creator)
    try:
        return sa.create_engine(url, connect_args=connect_args)
    except ImportError:
        # postgresql:// picks psycopg2 on SQLAlchemy < 2.1; use psycopg 3 when that is what
        # is installed.
        if url.drivername != "postgresql":
            raise
        return sa.create_engine(url.set(drivername="postgresql+psycopg"),
                                connect_args=connect_args)


# --query: one statement that only reads ------------------------------------------------

# Words that make a statement write, lock, change the session or reach outside the
# database. A SELECT never needs them (outside quotes, where check_query does not look).
_WRITING_WORDS = {
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "INTO", "CREATE", "DROP",
    "ALTER", "TRUNCATE", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "REINDEX", "ANALYZE", "COPY",
    "GRANT", "REVOKE", "COMMIT", "ROLLBACK", "BEGIN", "SAVEPOINT", "RELEASE", "LOCK", "CALL",
    "EXECUTE", "PREPARE", "DEALLOCATE", "LISTEN", "NOTIFY", "DISCARD", "RESET", "CLUSTER",
    "REFRESH", "LOAD_EXTENSION", "SET_CONFIG", "NEXTVAL", "SETVAL", "LO_IMPORT",
    "LO_EXPORT", "LO_UNLINK", "LO_CREATE", "LO_FROM_BYTEA", "LO_PUT", "PG_READ_FILE",
    "PG_READ_BINARY_FILE", "PG_LS_DIR", "PG_STAT_FILE", "PG_TERMINATE_BACKEND",
    "PG_CANCEL_BACKEND", "PG_RELOAD_CONF", "PG_ROTATE_LOGFILE", "DBLINK", "DBLINK_EXEC",
    "PG_ADVISORY_LOCK", "PG_ADVISORY_XACT_LOCK",
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def check_query(sql: str, where: str, backend: str = "postgresql") -> str:
    """The query without a trailing ';', if it is one SELECT or WITH statement that only
    reads; else a ConfigError naming what it found.

    A small tokeniser, not a parser: it blanks out comments, string literals, quoted names and
    dollar-quoted bodies (whose contents are data, not SQL), splits the rest on ';', and looks
    at the words left. The database's read-only mode stays the guarantee; this catches what
    read-only mode would let through (SQLite's VACUUM INTO writes a copy even from a read-only
    connection) and gives a clear line instead of the database's error.
    """
    hint = "reportgen only reads: give one SELECT (or WITH ... SELECT) statement"
    code = _blank_quoted(sql, where, backend == "sqlite")
    statements = [st for st in code.split(";") if st.strip()]
    if not statements:
        raise ConfigError("--query is empty", file=where, hint=hint)
    if len(statements) > 1:
        raise ConfigError(f"--query holds {len(statements)} statements", file=where, hint=hint)
    words = [w.upper() for w in _WORD.findall(statements[0])]
    if not words or words[0] not in ("SELECT", "WITH", "VALUES"):
        first = words[0] if words else statements[0].strip()[:20]
        raise ConfigError(f"--query must be a SELECT, not {first}", file=where, hint=hint)
    found = [w for w in words if w in _WRITING_WORDS]
    if found:
        raise ConfigError(f"--query may only read, but uses {found[0]}", file=where, hint=hint)
    end = len(code.rstrip())
    return (sql[:end - 1] if code[:end].endswith(";") else sql[:end]).strip()


def _blank_quoted(sql: str, where: str, brackets: bool) -> str:
    """sql with comments replaced by as many blanks, and strings, quoted identifiers and
    dollar quotes by as many '?' (so a ';' or a keyword inside them is not seen, and positions
    stay the same)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ConfigError("--query has a comment that is never closed", file=where)
            out.append(" " * (end + 2 - i))
            i = end + 2
            continue
        if ch == "$" and (m := _DOLLAR_TAG.match(sql, i)) and \
                not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            end = sql.find(m.group(0), m.end())
            if end < 0:
                raise ConfigError("--query has a $-quoted string that is never closed",
                                  file=where)
            out.append("?" * (end + len(m.group(0)) - i))
            i = end + len(m.group(0))
            continue
        closing = {"'": "'", '"': '"', "`": "`"}.get(ch) or ("]" if brackets and ch == "["
                                                              else None)
        if closing:
            # E'...' strings of PostgreSQL take backslash escapes
            backslash = ch == "'" and i > 0 and sql[i - 1] in "eE" and \
                (i == 1 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while True:
                if j >= n:
                    raise ConfigError("--query has a quote that is never closed", file=where)
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == closing:
                    if closing != "]" and j + 1 < n and sql[j + 1] == closing:
                        j += 2  # a doubled quote inside the quotes
                        continue
                    break
                j += 1
            out.append("?" * (j + 1 - i))  # not a blank: 'a'INTO still splits into words
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _table_select(sa: Any, conn: Any, name: str, where: str) -> Any:
    schema, _, table_name = name.rpartition(".")
    inspector = sa.inspect(conn)
    if not inspector.has_table(table_name, schema=schema or None):
        import difflib

        try:
            known = inspector.get_table_names(schema=schema or None) + \
                inspector.get_view_names(schema=schema or None)
        except Exception:
            known = []
        close = difflib.get_close_matches(table_name, known, n=1)
        hint = (f"did you mean {close[0]!r}?" if close else
                f"tables: {', '.join(sorted(known)[:12])}" if known else "the database has no "
                "tables")
        raise InputError(f"table {name!r} not found", file=where, hint=hint)
    table = sa.Table(table_name, sa.MetaData(), schema=schema or None, autoload_with=conn)
    # Without ORDER BY a database may return rows in any order; k-means and row numbers
    # need the same order every run: the primary key, else every column.
    pk = list(table.primary_key.columns)
    return sa.select(table).order_by(*(pk or list(table.columns)))


# common ------------------------------------------------------------------------------------

def _finish(frame: pd.DataFrame, path: Path | None, where: str, sha256: str, *, kind: str,
            notes: list[CleaningStep], delimiter: str = "", encoding: str = "",
            name: str | None = None, limits: LimitsConfig | None = None) -> Loaded:
    limits = limits or LimitsConfig()
    _check_size(frame, where, limits)
    frame, tidy_notes = _tidy(frame)
    if frame.shape[1] == 0:
        raise InputError("the table has no columns", file=where)
    if frame.shape[1] < 2 and kind != "text":
        raise InputError("the table has a single column", file=where,
                         hint="a customer table needs an id and at least one measure")
    if frame.empty:
        raise InputError("the table has a header but no rows", file=where)
    return Loaded(frame=frame, path=path, name=name or (path.name if path else where),
                  where=where, sha256=sha256, delimiter=delimiter, encoding=encoding, kind=kind,
                  notes=tuple(notes + tidy_notes))


def finish(frame: pd.DataFrame, path: Path | None, where: str, sha256: str, *, kind: str,
           notes: list[CleaningStep], name: str | None = None) -> Loaded:
    """A table read elsewhere (the Spark engine's sample) made Loaded as load makes it:
    the same checks, column names and dtypes."""
    return _finish(frame, path, where, sha256, kind=kind, notes=notes, name=name)


def _check_size(frame: pd.DataFrame, where: str, limits: LimitsConfig) -> None:
    """Rows, columns, name and cell lengths within the limits, whatever the source."""
    if len(frame) > limits.rows:
        raise over_limit("the table has too many rows", "rows", limits, where)
    if frame.shape[1] > limits.columns:
        raise over_limit(f"the table has {frame.shape[1]:,} columns", "columns", limits, where)
    for i, name in enumerate(frame.columns):
        if len(str(name).strip()) > limits.header_chars:
            raise over_limit(f"the name of column {i + 1} is {len(str(name).strip()):,} "
                             "characters long", "header_chars", limits, where)
    for i, name in enumerate(frame.columns):
        longest = _longest_text(frame.iloc[:, i])  # by position: names may repeat (Excel)
        if longest > limits.cell_chars:
            raise LimitError(
                f"a cell is {longest:,} characters long (more than limits.cell_chars "
                f"= {limits.cell_chars:,})", file=where, column=str(name)[:80],
                hint="raise cell_chars under [limits] in the config if the input is right")


def _longest_text(s: pd.Series) -> int:
    """Characters in the longest text cell of ``s`` (0 without text). Vectorised: a text
    column of Python objects (Excel, SQL) is measured by pyarrow, 3-6x less CPU than a
    Python function per cell (scripts/bench_load.py)."""
    if s.dtype != object:
        if not pd.api.types.is_string_dtype(s):
            return 0
        longest = s.str.len().max()
        return int(longest) if pd.notna(longest) else 0
    values = s.to_numpy()
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind not in ("string", "mixed", "mixed-integer"):
        return 0  # numbers, dates, bytes, booleans: no text
    if kind != "string":
        values = values[np.fromiter((type(v) is str for v in values), bool, len(values))]
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        longest = pc.max(pc.utf8_length(pa.array(values, type=pa.large_string(),
                                                 from_pandas=True))).as_py()
    except (pa.ArrowException, UnicodeError):  # a lone surrogate pyarrow cannot encode
        longest = max((len(v) for v in values if isinstance(v, str)), default=0)
    return int(longest or 0)


EXACT_INTEGERS = 2**53  # a float64 holds every integer below this, and loses digits above


def _long_integers(s: pd.Series) -> bool:
    """Integers (Python ints, int64/uint64, integral Decimals) of which one is past 2**53."""
    if s.dtype.kind in "iu":
        # the extremes as Python integers: no column of absolute values (a copy of each
        # column, at 1 M rows 8 MB), and -2**63 counts as past 2**53 (its abs wraps in int64)
        return bool(len(s)) and max(-int(s.min()), int(s.max())) >= EXACT_INTEGERS
    if s.dtype != object or pd.api.types.infer_dtype(s, skipna=True) not in ("integer",
                                                                             "decimal"):
        return False
    values = s.dropna()
    try:
        return bool(len(values)) and all(v == int(v) for v in values) and \
            max(abs(int(v)) for v in values) >= EXACT_INTEGERS
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return False


def tidy_names(columns: Iterable[object]) -> tuple[list[str], list[str]]:
    """The names load gives a table's columns: spaces tidied (runs of white space as one
    space, none at the ends), a blank name as column_<position>, and a name met before as
    <name>.1, <name>.2…; with the renames made ("ID → ID.1")."""
    names: list[str] = []
    seen: set[str] = set()
    renamed = []
    for i, c in enumerate(columns):
        name = " ".join(str(c).split()) if c is not None else ""
        if not name or name.lower() == "nan":
            name = f"column_{i + 1}"
        base, n = name, 1
        while name in seen:
            name = f"{base}.{n}"
            n += 1
        if name != base:
            renamed.append(f"{base} → {name}")
        seen.add(name)
        names.append(name)
    return names, renamed


def _tidy(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[CleaningStep]]:
    """String column names, a 0..n-1 index and dtypes the later stages all understand."""
    notes: list[CleaningStep] = []
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or \
            frame.index.step != 1:
        named = any(n is not None for n in frame.index.names)
        frame = frame.reset_index(drop=not named)
    names, renamed = tidy_names(frame.columns)
    frame = frame.copy() if list(frame.columns) != names else frame
    frame.columns = names
    if renamed:
        notes.append(CleaningStep("*", "renamed columns", 0, ", ".join(renamed),
                                  "two columns had the same name"))
    for column in frame.columns:
        s = frame[column]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(s.cat.categories.dtype if s.cat.categories.dtype != object else
                         "object")
        if pd.api.types.is_bool_dtype(s):
            s = s.astype("Int64") if s.isna().any() else s.astype("int64")
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        elif _long_integers(s):
            # 26-digit customer ids would become the float 1.2345678901234568e+25, equal to
            # their neighbours: an integer past 2**53 is an identifier, kept as its digits
            s = s.map(lambda v: str(int(v)), na_action="ignore").astype(object)
            notes.append(CleaningStep(column, "kept as text", 0,
                                      "integers of 16 or more digits",
                                      "too long for a number without losing digits: an "
                                      "identifier"))
        elif s.dtype == object:
            inferred = pd.api.types.infer_dtype(s, skipna=True)
            if inferred in ("decimal", "integer", "floating", "mixed-integer-float"):
                s = pd.to_numeric(s, errors="coerce")
            elif inferred == "boolean":
                s = s.map({True: 1, False: 0}, na_action="ignore").astype("float64")
            elif inferred == "bytes":
                s = s.map(lambda b: b.decode("utf-8", "replace"), na_action="ignore")
        if pd.api.types.is_extension_array_dtype(s) and pd.api.types.is_numeric_dtype(s):
            s = s.astype("float64")  # nullable Int64 / Float64 → float with NaN
        frame[column] = s
    return frame, notes


def frame_from_arrow(table: Any) -> pd.DataFrame:
    """A batch of a streamed Parquet table as ``load`` gives a whole one: converted column by
    column, with tidy column names and dtypes (out of core reads the table this way)."""
    frame, _ = _tidy(table.to_pandas(split_blocks=True, self_destruct=True))
    return frame
