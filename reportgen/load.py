"""Load a customer table. The only stage that reads.

Sources: delimited text (sniffed delimiter, UTF-8 / BOM / CP1252, CRLF, gzip), Parquet, Excel
.xlsx, and SQL databases through a SQLAlchemy URL plus a table or a query. Whatever the source,
the result is a DataFrame with string column names, a 0-based row index, and plain dtypes
(no categoricals, booleans as 0/1, naive datetimes), so the later stages see one kind of table.

What reading had to repair (a file that was not UTF-8, duplicated column names) is returned as
cleaning steps, so the report's cleaning log says it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .config import InputConfig
from .errors import ConfigError, InputError, ReportgenError
from .report import CleaningStep
from .resources import sample_path

DELIMITERS = [",", "\t", ";", "|"]
# The delimiter of whitespace-aligned text (fixed-width exports, CDNOW_master.txt): any run
# of spaces or tabs separates two fields, and leading spaces are no field.
WHITESPACE = " "
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50
NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-", "#N/A"]
# A decoded text with more control characters than this share is not a table.
MAX_CONTROL_SHARE = 0.01
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

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


def load(source: str | Path | None, cfg: InputConfig) -> Loaded:
    """Read SOURCE (None = the bundled sample) into a DataFrame of strings and numbers."""
    if is_database_url(source):
        return _load_sql(str(source), cfg)
    if cfg.table or cfg.query:
        raise ConfigError("--table and --query (input.table, input.query) are for database "
                          "sources", file=str(source) if source else None,
                          hint="give a database URL such as postgresql://host/db or "
                               "sqlite:///customers.db")
    path = Path(source) if source is not None else sample_path()
    where = str(path)
    if not path.exists():
        hint = "check the path" if not path.is_symlink() else "the link points nowhere"
        raise InputError("file not found", file=where, hint=hint)
    if path.is_dir():
        raise InputError("is a folder, not a file", file=where, hint="give the table's path")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc.__class__.__name__})",
                         file=where, hint="check the file's permissions") from None
    if not raw.strip():
        raise InputError("the file is empty", file=where)
    digest = hashlib.sha256(raw).hexdigest()
    kind = _kind(raw, path)
    if kind == "parquet":
        return _finish(_read_parquet(raw, where), path, where, digest, kind="parquet", notes=[])
    if kind == "excel":
        frame = _read_excel(raw, where, cfg.sheet)
        return _finish(frame, path, where, digest, kind="excel", notes=[])
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
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise InputError("the file looks gzip-compressed but cannot be decompressed",
                             file=where, hint="check that it was copied whole") from None
        notes.append(CleaningStep("*", "decompressed", 0, "gzip", "the file was compressed"))
        if not raw.strip():
            raise InputError("the file is empty", file=where)
    frame, delimiter, encoding, text_notes = _read_text(raw, where, cfg)
    return _finish(frame, path, where, digest, kind="text", delimiter=delimiter,
                   encoding=encoding, notes=notes + text_notes)


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


def _read_text(raw: bytes, where: str, cfg: InputConfig
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
    delimiter = cfg.delimiter or sniff_delimiter(sample)
    text_columns = _text_columns(sample, delimiter)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=r"\s+" if delimiter == WHITESPACE else delimiter,
            engine="c",
            dtype={c: str for c in text_columns} or None,
            skipinitialspace=True,
            na_values=NA_VALUES,
            keep_default_na=False,
            skip_blank_lines=True,
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise InputError("the file has no columns", file=where) from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise _parse_error(str(exc), where, delimiter) from None
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

def _read_parquet(raw: bytes, where: str) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        raise InputError("reading Parquet needs pyarrow", file=where,
                         hint="pip install pyarrow") from None
    try:
        table = pq.read_table(io.BytesIO(raw))
        # One column at a time, each freed from the Arrow table as it is converted: the
        # table and the frame are never both whole in memory (2× the table, otherwise).
        return table.to_pandas(split_blocks=True, self_destruct=True)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... on a bad file
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        first = first if len(first) <= 80 else first[:79] + "…"
        raise InputError(f"not a readable Parquet file ({first})", file=where,
                         hint="check that the file was copied whole") from None


def _read_excel(raw: bytes, where: str, sheet: str | None) -> pd.DataFrame:
    try:
        import openpyxl
    except ImportError:
        raise InputError("reading .xlsx workbooks needs openpyxl", file=where,
                         hint="pip install 'reportgen[excel]'") from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # BadZipFile, InvalidFileException, KeyError on a broken file
        raise InputError(f"not a readable .xlsx workbook ({exc.__class__.__name__})",
                         file=where, hint="open it in Excel and save it again as .xlsx") from None
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise ConfigError(f"the workbook has no sheet {sheet!r}", file=where,
                              hint=f"sheets: {', '.join(names)}")
        ws = book[sheet] if sheet is not None else book[names[0]]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or all(v is None for v in header):
            raise InputError(f"sheet {ws.title!r} is empty", file=where,
                             hint="the first row must hold the column names")
        data = [r for r in rows if any(v is not None and v != "" for v in r)]
    finally:
        book.close()
    width = len(header)
    names_ = [str(h).strip() if h is not None else "" for h in header]
    frame = pd.DataFrame([list(r[:width]) + [None] * (width - len(r)) for r in data],
                         columns=names_, dtype=object)
    # openpyxl gives Python objects per cell: let pandas find the numbers and dates.
    frame = frame.replace({"": None}).infer_objects()
    return frame


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


def _load_sql(source: str, cfg: InputConfig) -> Loaded:
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
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not str(url.database).startswith("file:"):
        db = Path(url.database)
        if not db.is_file():
            raise InputError("database file not found" if not db.exists() else
                             "is a folder, not a database file", file=str(db))
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
    try:
        engine = _engine(sa, url, connect_args)
    except sa_exc.NoSuchModuleError:
        raise ConfigError(f"unknown database type {url.drivername!r}", file=masked,
                          hint="use e.g. postgresql://..., sqlite:///...") from None
    except ImportError as exc:
        hint = "pip install 'reportgen[sql]'" if url.get_backend_name() == "postgresql" else \
            f"install the Python driver for {url.get_backend_name()}"
        raise InputError(f"the database driver for {url.drivername!r} is not installed "
                         f"({exc.name or exc})", file=masked, hint=hint) from None
    except sa_exc.ArgumentError as exc:
        raise ConfigError(f"invalid database URL ({_scrub(_first_line(exc), secrets)})",
                          file=masked) from None
    try:
        # reportgen only reads: a read-only transaction where the database has them, and it
        # is never committed, so even a --query that writes changes nothing.
        with engine.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            if cfg.table:
                stmt = _table_select(sa, conn, cfg.table, where)
            else:
                stmt = sa.text(cfg.query or "")
            result = conn.execute(stmt)
            if not result.returns_rows:
                raise InputError("the query returned no rows", file=where,
                                 hint="--query must be a SELECT")
            columns = list(result.keys())
            frame = pd.DataFrame.from_records(result.fetchall(), columns=columns,
                                              coerce_float=True)
            conn.rollback()
    except ReportgenError:
        raise
    except sa_exc.OperationalError as exc:
        message = _scrub(_first_line(exc), secrets)
        if cfg.query and "connect" not in message.lower():
            raise InputError(f"the query failed: {message}", file=where,
                             hint="check the SQL in --query") from None
        raise InputError(f"cannot connect to the database: {message}", file=masked,
                         hint="check that the server runs, the host and port, and the "
                              "credentials; passwords come from the environment: PGPASSWORD, "
                              "or ${VAR} in the URL") from None
    except (sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.IntegrityError,
            sa_exc.NotSupportedError, sa_exc.InternalError) as exc:
        raise InputError(f"the query failed: {_scrub(_first_line(exc), secrets)}", file=where,
                         hint="check the SQL in --query" if cfg.query else
                         "check the table name") from None
    except sa_exc.DBAPIError as exc:
        raise InputError(f"the database refused: {_scrub(_first_line(exc), secrets)}",
                         file=where) from None
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
    return _finish(frame, None, where, digest.hexdigest(), kind="sql", notes=[], name=name)


def _engine(sa: Any, url: Any, connect_args: dict[str, Any]) -> Any:
    try:
        return sa.create_engine(url, connect_args=connect_args)
    except ImportError:
        # postgresql:// picks psycopg2 on SQLAlchemy < 2.1; use psycopg 3 when that is what
        # is installed.
        if url.drivername != "postgresql":
            raise
        return sa.create_engine(url.set(drivername="postgresql+psycopg"),
                                connect_args=connect_args)


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
            name: str | None = None) -> Loaded:
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


def _tidy(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[CleaningStep]]:
    """String column names, a 0..n-1 index and dtypes the later stages all understand."""
    notes: list[CleaningStep] = []
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or \
            frame.index.step != 1:
        named = any(n is not None for n in frame.index.names)
        frame = frame.reset_index(drop=not named)
    names: list[str] = []
    seen: set[str] = set()
    renamed = []
    for i, c in enumerate(frame.columns):
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
