"""The history of a series: every run, its period, its segments (ids, names, colours, centres,
size and value) and its gates, in a database through SQLAlchemy Core; and each run's customer
assignments as a Parquet file beside the run.

- **Where**: an SQLite file in the output root (``output/history.sqlite``) by default; any
  SQLAlchemy URL (``[history] url`` or ``--history URL``), PostgreSQL for a team, holds the same
  tables (``reportgen_schema``, ``reportgen_runs``, ``reportgen_segments``). Passwords come from
  the environment (``${VAR}`` in the URL, or ``PGPASSWORD``) and are masked in every message.
- **A period is recorded once**: recording a run replaces the entry of its series and period
  (a rerun is idempotent), in one transaction: the old entry is never gone without the new one.
- **One writer per series**: ``History.lock(series)`` is held for a run's whole comparison and
  recording; a second run of the same series at once is refused with one line. The lock is an
  OS file lock (SQLite) or a PostgreSQL advisory lock: the OS or the server drops it when its
  process dies, so a killed run never leaves a stale lock behind.
- **Trouble is one line** (``HistoryError``, exit 2): a file that is not an SQLite database or
  fails its integrity check, a database locked beyond ``BUSY_TIMEOUT``, one written by a newer
  reportgen (its schema version is higher than ``SCHEMA_VERSION``: never touched), a server that
  does not answer. A corrupt SQLite file can be recovered instead (``recover=True``): it is
  moved aside and the history rebuilt from the ``series.json`` each run folder keeps, with a
  warning, so no recorded run is lost.
- **Assignments**: the next run reads a run's customers (key, segment, value) from the
  segments.parquet it wrote anyway, whose metadata names the key and value columns; pyarrow
  reads only those columns, with no Python loop over customers. Run folders written before
  that have an assignments.parquet, still read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import socket
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import ConfigError, HistoryError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .compare import Assignments

log = logging.getLogger("reportgen")

SCHEMA_VERSION = 1  # bump with a migration in _migrate when a table changes
HISTORY_FILE = "history.sqlite"
DEFAULT_SERIES = "default"
SEGMENTS_FILE = "segments.parquet"  # every run's customers: what the next run compares with
ASSIGNMENTS_FILE = "assignments.parquet"  # the same, as runs before segments.parquet wrote it
RECORD_FILE = "series.json"  # the run's history entry, kept in its folder: the database's backup
RECORD_MAX_BYTES = 10_000_000  # a series.json larger than this is not one reportgen wrote
BUSY_TIMEOUT = 10.0  # seconds SQLite waits for another writer before "database is locked"
SERIES_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# PostgreSQL advisory locks are keyed by two int4: this one says "a reportgen series".
ADVISORY_CLASS = 0x7267  # "rg"
SQLITE_MAGIC = b"SQLite format 3\x00"


def check_series(name: str) -> str:
    """A series name becomes a folder name: letters, digits, dot, dash, underscore."""
    if not SERIES_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"series name {name!r} is not allowed",
                          hint="use letters, digits, '.', '-' and '_' (at most 64), starting "
                               "with a letter or digit")
    return name


# records -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentRecord:
    """One segment of a recorded run. centroid: its centre in the run's model space (the
    scaled model features, in the order of RunRecord.features)."""

    segment_id: int
    name: str
    color: str
    size: int
    share: float
    value: float
    value_share: float
    centroid: tuple[float, ...] = ()
    transition: str = ""  # against the run before: survived, split, merged, emerged ("" first)


@dataclass(frozen=True)
class RunRecord:
    """One run of a series, as the history keeps it."""

    series: str
    period: str  # period key, e.g. 2014-06: a series has one run per period
    run_id: str
    as_of: str  # ISO date, "" when undated
    period_label: str  # e.g. June 2014
    source: str
    run_dir: str  # the run folder, relative to the output root (posix)
    customers: int
    total_value: float
    k: int
    policy: str  # first, keep or refit
    previous_run_id: str | None = None
    features: tuple[str, ...] = ()  # model features, in model order
    scaling: dict[str, Any] | None = None  # Scaling.to_dict() with lists: to compare centres
    bins: tuple[dict[str, Any], ...] = ()  # compare.Bins.to_dict() per feature (drift reference)
    distance: float | None = None  # mean distance of customers to their segment's centre
    gates: tuple[dict[str, Any], ...] = ()  # {name, passed, reason} per gate
    created: str = ""  # UTC time of recording, ISO
    segments: tuple[SegmentRecord, ...] = ()

    @property
    def as_of_date(self) -> dt.date | None:
        return dt.date.fromisoformat(self.as_of) if self.as_of else None

    def folder(self, root: Path) -> Path:
        """The run folder, which must lie inside the output root: a run_dir edited into the
        database or a series.json to name another place (``../..``, an absolute path, a link
        out of the root) is a HistoryError, never read or written."""
        folder = root / Path(self.run_dir)
        try:
            inside = folder.resolve().is_relative_to(root.resolve()) \
                and not Path(self.run_dir).is_absolute() and ".." not in Path(self.run_dir).parts
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL
            inside = False
        if not inside:
            raise HistoryError(f"run {self.run_id!r} names a folder outside the output root "
                               f"({self.run_dir!r})", file=str(root),
                               hint="the history or a series.json was edited; --no-previous "
                                    "starts afresh")
        return folder

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["segments"] = tuple(
            SegmentRecord(**{**s, "centroid": tuple(s.get("centroid", ()))})
            for s in data.get("segments", ()))
        for name in ("features", "bins", "gates"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


def _plain(value: Any) -> Any:
    """JSON-ready: NumPy scalars and arrays to Python, tuples to lists, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# tables ------------------------------------------------------------------------------------

def _tables() -> tuple[Any, Any, Any, Any]:
    import sqlalchemy as sa

    md = sa.MetaData()
    version = sa.Table("reportgen_schema", md, sa.Column("version", sa.Integer, nullable=False))
    runs = sa.Table(
        "reportgen_runs", md,
        sa.Column("series", sa.String(64), primary_key=True),
        sa.Column("period", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("period_label", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("total_value", sa.Float, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("previous_run_id", sa.String(64)),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("scaling", sa.JSON),
        sa.Column("bins", sa.JSON, nullable=False),
        sa.Column("distance", sa.Float),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.UniqueConstraint("series", "run_id", name="reportgen_runs_run_id"),
    )
    segments = sa.Table(
        "reportgen_segments", md,
        sa.Column("series", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("segment_id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("value_share", sa.Float, nullable=False),
        sa.Column("centroid", sa.JSON, nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["series", "run_id"],
                                ["reportgen_runs.series", "reportgen_runs.run_id"],
                                name="reportgen_segments_run"),
    )
    return md, version, runs, segments


# the database ------------------------------------------------------------------------------

@dataclass
class History:
    """An open history database. Use ``open_history``; close it (or use it as a context
    manager) when done."""

    engine: sa.Engine
    where: str  # for messages: the file, or the URL with its password masked
    root: Path  # the output root run folders are relative to
    secrets: list[str] = field(default_factory=list, repr=False)
    _tables: tuple[Any, Any, Any, Any] = field(default_factory=_tables, repr=False)

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # reading -------------------------------------------------------------------------------

    def series_names(self) -> list[str]:
        import sqlalchemy as sa

        runs = self._tables[2]
        with self._errors("read"), self.engine.connect() as conn:
            return [r[0] for r in conn.execute(
                sa.select(runs.c.series).distinct().order_by(runs.c.series))]

    def runs(self, series: str) -> list[RunRecord]:
        """Every run of the series, oldest period first, with its segments."""
        import sqlalchemy as sa

        _, _, runs, segments = self._tables
        with self._errors("read"), self.engine.connect() as conn:
            rows = conn.execute(sa.select(runs).where(runs.c.series == series)
                                .order_by(runs.c.period)).mappings().all()
            segs = conn.execute(sa.select(segments).where(segments.c.series == series)
                                .order_by(segments.c.run_id, segments.c.segment_id)
                                ).mappings().all()
        by_run: dict[str, list[SegmentRecord]] = {}
        for s in segs:
            by_run.setdefault(s["run_id"], []).append(SegmentRecord(
                segment_id=s["segment_id"], name=s["name"], color=s["color"], size=s["size"],
                share=s["share"], value=s["value"], value_share=s["value_share"],
                centroid=tuple(s["centroid"]), transition=s["transition"]))
        return [RunRecord(
            series=r["series"], period=r["period"], run_id=r["run_id"], as_of=r["as_of"],
            period_label=r["period_label"], source=r["source"], run_dir=r["run_dir"],
            customers=r["customers"], total_value=r["total_value"], k=r["k"],
            policy=r["policy"], previous_run_id=r["previous_run_id"],
            features=tuple(r["features"]), scaling=r["scaling"], bins=tuple(r["bins"]),
            distance=r["distance"], gates=tuple(r["gates"]), created=r["created"],
            segments=tuple(by_run.get(r["run_id"], ())),
        ) for r in rows]

    def get(self, series: str, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs(series) if r.run_id == run_id), None)

    def previous(self, series: str, period: str) -> RunRecord | None:
        """The latest run of the series with an earlier period."""
        earlier = [r for r in self.runs(series) if r.period < period]
        return earlier[-1] if earlier else None

    def next_segment_id(self, series: str) -> int:
        """One above every segment id the series ever used: an emerged segment's id."""
        import sqlalchemy as sa

        segments = self._tables[3]
        with self._errors("read"), self.engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(segments.c.segment_id))
                               .where(segments.c.series == series)).scalar()
        return int(top or 0) + 1

    # writing -------------------------------------------------------------------------------

    def record(self, run: RunRecord) -> RunRecord:
        """Record run, replacing its series' entry for the same period (or the same run id),
        in one transaction. Returns the record as stored (with its creation time)."""
        import sqlalchemy as sa

        _, _, runs, segments = self._tables
        check_series(run.series)
        if not run.created:
            run = replace(run, created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        data = run.to_dict()
        seg_rows = [{**s, "series": run.series, "run_id": run.run_id}
                    for s in data.pop("segments")]
        same = sa.and_(runs.c.series == run.series,
                       sa.or_(runs.c.period == run.period, runs.c.run_id == run.run_id))
        with self._errors("write"), self.engine.begin() as conn:
            old = [r[0] for r in conn.execute(sa.select(runs.c.run_id).where(same))]
            if old:
                conn.execute(sa.delete(segments).where(segments.c.series == run.series,
                                                       segments.c.run_id.in_(old)))
                conn.execute(sa.delete(runs).where(same))
            conn.execute(sa.insert(runs), data)
            if seg_rows:
                conn.execute(sa.insert(segments), seg_rows)
        return run

    def forget(self, series: str, run_id: str) -> bool:
        """Remove one run from the history (its folder is left alone)."""
        import sqlalchemy as sa

        _, _, runs, segments = self._tables
        with self._errors("write"), self.engine.begin() as conn:
            conn.execute(sa.delete(segments).where(segments.c.series == series,
                                                   segments.c.run_id == run_id))
            gone = conn.execute(sa.delete(runs).where(runs.c.series == series,
                                                      runs.c.run_id == run_id)).rowcount
        return bool(gone)

    # one writer per series -----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, series: str) -> Iterator[None]:
        """Hold the series for one run; a second holder is refused with one line."""
        check_series(series)
        if self.is_sqlite:
            with series_lock(self.root, series, self.where):
                yield
        else:
            with self._advisory_lock(series):
                yield

    @contextlib.contextmanager
    def _advisory_lock(self, series: str) -> Iterator[None]:
        import sqlalchemy as sa

        key = _signed32(zlib.crc32(series.encode()))
        with self._errors("lock"):
            conn = self.engine.connect()
        try:
            with self._errors("lock"):
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, :k)"),
                                   {"c": ADVISORY_CLASS, "k": key}).scalar()
                conn.commit()
            if not got:
                holder = ""
                with contextlib.suppress(Exception):
                    holder = conn.execute(sa.text(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = :c "
                        "AND l.objid = :k AND l.granted"),
                        {"c": ADVISORY_CLASS, "k": key & 0xFFFFFFFF}).scalar() or ""
                raise _busy(series, self.where, holder)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"),
                                 {"c": ADVISORY_CLASS, "k": key})
                    conn.commit()
        finally:
            conn.close()

    # errors --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from sqlalchemy import exc as sa_exc

        try:
            yield
        except HistoryError:
            raise
        except sa_exc.DBAPIError as exc:
            raise _db_error(exc, self.where, doing, self.secrets) from None
        except sa_exc.SQLAlchemyError as exc:
            raise HistoryError(f"cannot {doing} the history ({_first_line(exc, self.secrets)})",
                               file=self.where) from None


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _first_line(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else exc.__class__.__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _db_error(exc: BaseException, where: str, doing: str, secrets: Sequence[str]
              ) -> HistoryError:
    message = _first_line(exc, secrets)
    low = message.lower()
    if "locked" in low or "busy" in low:
        return HistoryError(f"the history database is locked by another process ({message})",
                            file=where, hint="wait for the other run to finish, then run again")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return HistoryError(f"the history database is damaged ({message})", file=where,
                            hint="move it aside: the next run rebuilds it from the run folders")
    if any(word in low for word in ("connect", "resolve host", "translate host", "timeout",
                                    "password", "authentication")):
        return HistoryError(f"cannot reach the history database ({message})", file=where,
                            hint="check [history] url / --history, that the server runs, and "
                                 "the credentials (passwords come from the environment)")
    return HistoryError(f"cannot {doing} the history ({message})", file=where)


def _busy(series: str, where: str, holder: str) -> HistoryError:
    who = f" ({holder})" if holder else ""
    return HistoryError(f"another run of series {series!r} is in progress{who}", file=where,
                        hint="wait for it to finish; runs of one series are recorded one at a "
                             "time")


_HOLDERS: dict[tuple[str, str], str] = {}  # (root, series) -> who holds it, for the message


@contextlib.contextmanager
def series_lock(root: Path, series: str, where: str) -> Iterator[None]:
    """An OS lock (flock) on the series' folder (root/<series>/, or root itself for the
    default series): held for a run, dropped by the OS when the process ends however it ends,
    and no lock file is left in the output folder."""
    import fcntl

    folder = root if series == DEFAULT_SERIES else root / series
    if folder != root and (folder.is_symlink() or (folder.exists() and not folder.resolve()
                                                   .is_relative_to(root.resolve()))):
        raise HistoryError("the series folder is a link out of the output root", file=str(folder),
                           hint="remove the link: a series' runs are kept inside the output root")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise HistoryError(f"cannot lock the series folder ({exc.strerror})",
                           file=str(folder)) from None
    key = (str(folder.resolve()), series)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(series, where, _HOLDERS.get(key, "")) from None
        started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        _HOLDERS[key] = f"pid {os.getpid()} on {socket.gethostname()} since {started}"
        try:
            yield
        finally:
            _HOLDERS.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def history_location(root: Path, url: str | None) -> str:
    """Where the history of root lives, for messages: the file or the masked URL."""
    if url:
        from .load import ENV_REFERENCE, mask_url

        return mask_url(ENV_REFERENCE.sub("***", url))
    return str(root / HISTORY_FILE)


def open_history(root: Path, url: str | None = None, *, create: bool = True,
                 recover: bool = False) -> History | None:
    """Open the history of the output root (SQLite file) or of url.

    create=False: None when the SQLite file does not exist (nothing was recorded yet).
    recover=True: a damaged SQLite file is moved aside and the history rebuilt from the run
    folders' series.json, with a warning, instead of an error.
    """
    if url:
        return _open_url(root, url)
    path = root / HISTORY_FILE
    if not path.exists() and not path.is_symlink() and not create:
        return None
    try:
        return _open_sqlite(root, path)
    except HistoryError as exc:
        if not recover or "damaged" not in exc.message and "not a reportgen" not in exc.message:
            raise
        aside = path.with_name(f"{path.name}.damaged-"
                               f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}")
        try:
            path.rename(aside)
        except OSError as err:
            raise HistoryError(f"the history database is damaged and cannot be moved aside "
                               f"({err.strerror})", file=str(path)) from None
        history = _open_sqlite(root, path)
        records = find_records(root)
        for record in records:
            history.record(record)
        log.warning("%s was damaged (%s): moved to %s and rebuilt from %d run folder%s", path,
                    exc.message, aside.name, len(records), "" if len(records) == 1 else "s")
        return history


def _open_sqlite(root: Path, path: Path) -> History:
    import sqlalchemy as sa

    where = str(path)
    if path.is_symlink():
        raise HistoryError("is a link, not the history database", file=where,
                           hint="a history kept elsewhere is named with --history "
                                "sqlite:///PATH ([history] url)")
    if path.is_dir():
        raise HistoryError("is a folder, not a history database", file=where)
    if path.exists() and not path.is_file():
        raise HistoryError("is not a regular file (a FIFO or a device), not a history database",
                           file=where)
    if path.exists() and path.stat().st_size > 0:
        try:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise HistoryError(f"cannot read the history database ({exc.strerror})",
                               file=where) from None
        if head != SQLITE_MAGIC:
            raise HistoryError("the history database is damaged (not an SQLite file)",
                               file=where, hint="move it aside: the next run rebuilds it from "
                                                "the run folders")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryError(f"cannot create the output folder ({exc.strerror})",
                           file=str(root)) from None
    engine = sa.create_engine(f"sqlite:///{path.resolve()}",
                              connect_args={"timeout": BUSY_TIMEOUT})

    # pysqlite starts transactions only before writes, and never for reads: SQLAlchemy's
    # documented recipe hands BEGIN to SQLAlchemy so reads are consistent and every write of
    # a record is one transaction.
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    history = History(engine=engine, where=where, root=root)
    try:
        with history._errors("read"), engine.connect() as conn:
            status = conn.exec_driver_sql("PRAGMA quick_check").scalar()
        if status != "ok":
            raise HistoryError(f"the history database is damaged (integrity check: {status})",
                               file=where, hint="move it aside: the next run rebuilds it from "
                                                "the run folders")
        _prepare(history)
    except BaseException:
        engine.dispose()
        raise
    return history


# What a history URL may say besides where the database is: libpq's connection settings
# for TLS and timeouts (nothing that names a service file, a password file or other options).
PG_URL_OPTIONS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl",
                            "connect_timeout", "target_session_attrs", "application_name"})
# options= only to keep the history in a schema of its own: -c search_path=NAME[,NAME]
PG_SEARCH_PATH = re.compile(r"-c\s*search_path=[A-Za-z_][A-Za-z0-9_$]*(,[A-Za-z_][A-Za-z0-9_$]*)*")
HISTORY_URL_HINT = "e.g. postgresql://reportgen@db/crm or sqlite:///path/to/history.db"


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def check_history_url(url: str, masked: str | None = None) -> Any:
    """The parsed [history] url, or one ConfigError line. A history is PostgreSQL (the team
    database, on any host: that is its purpose) or an SQLite file named by its path. Refused:
    other database types, an SQLite URL with no file (in memory: the history would vanish) or
    with options (``?mode=rwc&uri=true`` and other sqlite3 URI options, which can open a
    database other than the named file), a ``file:`` URI as the path, and PostgreSQL options
    other than PG_URL_OPTIONS and an ``options`` that sets search_path (a schema of its
    own). ``${VAR}`` references may be left in (checked as text)."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    from .load import ENV_REFERENCE

    where = masked or history_location(Path("."), url)
    try:
        parsed = make_url(ENV_REFERENCE.sub("x", url))
        real = make_url(url) if not ENV_REFERENCE.search(url) else parsed
    except (sa_exc.ArgumentError, ValueError):
        raise ConfigError("[history] url is not a valid database URL", file=where,
                          hint=HISTORY_URL_HINT) from None
    backend = parsed.get_backend_name()
    options = sorted(parsed.query)
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ConfigError("[history] url must name an SQLite file by its path",
                              file=where, hint=HISTORY_URL_HINT)
        if options:
            raise ConfigError(f"[history] url: SQLite options are not accepted "
                              f"({', '.join(options)})", file=where,
                              hint="name the file only: sqlite:///path/to/history.db")
        if "\x00" in database:
            raise ConfigError("[history] url: the file name has a NUL character", file=where)
    elif backend == "postgresql":
        unknown = [o for o in options if o not in PG_URL_OPTIONS and not (
            o == "options" and all(PG_SEARCH_PATH.fullmatch(v) for v in
                                   _values(parsed.query[o])))]
        if unknown:
            raise ConfigError(f"[history] url: option {unknown[0]!r} is not accepted", file=where,
                              hint=f"accepted: {', '.join(sorted(PG_URL_OPTIONS))}; options "
                                   "only as -c search_path=SCHEMA")
    else:
        raise ConfigError(f"[history] url: {parsed.drivername!r} is not a history database",
                          file=where, hint="the history is kept in PostgreSQL or SQLite: "
                                           + HISTORY_URL_HINT)
    return real


def _open_url(root: Path, url: str) -> History:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    from .load import _expand_env

    masked = history_location(root, url)
    expanded, secrets = _expand_env(url, masked)
    parsed = check_history_url(expanded, masked)
    if parsed.password:
        secrets.append(str(parsed.password))
    masked = parsed.render_as_string(hide_password=True)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": 10, "application_name":
                        f"reportgen pid {os.getpid()} on {socket.gethostname()}"[:63]}
        if parsed.drivername == "postgresql":
            # SQLAlchemy < 2.1 picks psycopg2 for postgresql://; the sql extra brings psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args)
    except sa_exc.NoSuchModuleError:
        raise ConfigError(f"unknown database type {parsed.drivername!r} in [history] url",
                          file=masked) from None
    except ImportError as exc:
        raise HistoryError(f"the database driver for {parsed.drivername!r} is not installed "
                           f"({exc.name or exc})", file=masked,
                           hint="pip install 'reportgen[sql]'") from None
    history = History(engine=engine, where=masked, root=root, secrets=secrets)
    try:
        _prepare(history)
    except BaseException:
        engine.dispose()
        raise
    return history


def _prepare(history: History) -> None:
    """Create the tables on first use; refuse a database of a newer schema."""
    import sqlalchemy as sa

    md, version, runs, _ = history._tables
    with history._errors("open"):
        with history.engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
        if runs.name in names and version.name not in names:
            raise HistoryError("not a reportgen history: it has a reportgen_runs table but no "
                               "schema version", file=history.where)
        if version.name not in names:
            try:
                with history.engine.begin() as conn:
                    md.create_all(conn)
                    if conn.execute(sa.select(sa.func.count()).select_from(version)).scalar() \
                            == 0:
                        conn.execute(sa.insert(version), {"version": SCHEMA_VERSION})
            except sa.exc.IntegrityError:
                pass  # another run created them at the same moment
            except sa.exc.ProgrammingError as exc:
                if "already exists" not in str(exc):
                    raise
        with history.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.max(version.c.version))).scalar()
    if found is None:
        raise HistoryError("not a reportgen history: its schema version is missing",
                           file=history.where)
    if int(found) > SCHEMA_VERSION:
        raise HistoryError(f"the history was written by a newer reportgen (schema version "
                           f"{found}; this one reads up to {SCHEMA_VERSION})",
                           file=history.where,
                           hint="upgrade reportgen, or point --history at another database")
    if int(found) < SCHEMA_VERSION:
        _migrate(history, int(found))


def _migrate(history: History, found: int) -> None:
    """Bring an older schema up to SCHEMA_VERSION (version 1 is the first: nothing yet)."""
    raise HistoryError(f"the history has schema version {found}, which this reportgen cannot "
                       "upgrade", file=history.where)


# run folders -------------------------------------------------------------------------------

def find_records(root: Path) -> list[RunRecord]:
    """The series.json of every run folder under root (root/<run>/ and root/<series>/<run>/),
    for rebuilding a history; unreadable ones are skipped with a warning."""
    out = []
    for path in sorted([*root.glob(f"*/{RECORD_FILE}"), *root.glob(f"*/*/{RECORD_FILE}")]):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # a partial or old folder of an unfinished run
        try:
            if path.is_symlink() or not path.is_file() \
                    or path.stat().st_size > RECORD_MAX_BYTES:
                raise ValueError("a link, a special file or too large")
            record = RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
            check_series(record.series)
            out.append(record)
        except (OSError, ValueError, TypeError, KeyError, ConfigError) as exc:
            log.warning("%s: not a readable run record (%s); left out of the rebuilt history",
                        path, exc.__class__.__name__)
    # One entry per series and period: the newest record wins, as recording would have done.
    latest: dict[tuple[str, str], RunRecord] = {}
    for record in sorted(out, key=lambda r: r.created):
        latest[(record.series, record.period)] = record
    return sorted(latest.values(), key=lambda r: (r.series, r.period))


# assignments -------------------------------------------------------------------------------

def segments_metadata(*, key: str | None, value: str | None, run_id: str) -> dict[str, Any]:
    """What segments.parquet says about itself for the next run of the series: the column of
    the customer keys (None: the table had no unique key, customers cannot be followed), the
    value column (None: every customer counts 1) and the run id."""
    return {"key": key, "value": value, "run_id": run_id, "format": 2}


def segments_columns(path: Path) -> tuple[str | None, str | None]:
    """The key and value columns a run's segments.parquet names in its metadata (key None:
    the run's customers had no key to follow them by; value None: every customer counts 1).
    ValueError when it names none; OSError when it cannot be read."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(b"reportgen")
    meta = json.loads(raw) if raw else None
    if not isinstance(meta, dict) or meta.get("format") != 2:
        raise ValueError("it does not say which column holds the customer keys")
    key, value = meta.get("key"), meta.get("value")
    if not (key is None or isinstance(key, str)) or not (value is None or
                                                         isinstance(value, str)):
        raise ValueError("its key or value column is not a column name")
    return key, value


def read_assignments(folder: Path) -> Assignments | None:
    """The customers of the run in ``folder``: key, segment and value of every segmented
    customer, read column-wise from its segments.parquet (the left-out rows dropped); a run
    written before segments.parquet served the series has assignments.parquet, read instead.
    None when that run's customers had no key to follow them by. A missing or damaged file
    is a HistoryError."""
    import pyarrow.parquet as pq

    from .compare import Assignments

    old = folder / ASSIGNMENTS_FILE
    if old.is_file():
        return _read_old_assignments(old)
    path = folder / SEGMENTS_FILE
    if not path.is_file():
        raise HistoryError("the previous run's customer assignments are missing",
                           file=str(path), hint="was its folder moved or deleted? --previous "
                                                "RUN_ID picks another, --no-previous starts afresh")
    try:
        key, value = segments_columns(path)
        if key is None:
            return None
        table = pq.read_table(path, columns=[key, "segment"] + ([value] if value else []))
        table = table.filter(table.column("segment").is_valid())
        keys_col = table.column(key)
        segments = table.column("segment").to_numpy()
        values = table.column(value).to_numpy() if value else np.ones(table.num_rows)
    except (OSError, KeyError, ValueError) as exc:
        raise HistoryError(f"cannot read the previous run's customer assignments ({exc})",
                           file=str(path)) from None
    return Assignments(keys=_key_index(keys_col), segments=np.asarray(segments, dtype=np.int64),
                       values=np.asarray(values, dtype=np.float64))


def _key_index(keys_col: Any) -> pd.Index:
    import pyarrow as pa

    if pa.types.is_integer(keys_col.type):
        return pd.Index(keys_col.to_numpy(), dtype="int64")
    return pd.Index(keys_col.to_pandas(), dtype="string")


def _read_old_assignments(path: Path) -> Assignments:
    """assignments.parquet (key, segment, value, distance), as runs wrote it before their
    segments.parquet carried the series' metadata."""
    import pyarrow.parquet as pq

    from .compare import Assignments

    try:
        table = pq.read_table(path)
        keys_col = table.column("key")
        segments = table.column("segment").to_numpy()
        values = table.column("value").to_numpy()
    except (OSError, KeyError, ValueError) as exc:
        raise HistoryError(f"cannot read the previous run's customer assignments ({exc})",
                           file=str(path)) from None
    return Assignments(keys=_key_index(keys_col), segments=np.asarray(segments, dtype=np.int64),
                       values=np.asarray(values, dtype=np.float64))


# listing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    """One line of `reportgen history`."""

    series: str
    period: str
    period_label: str
    run_id: str
    source: str
    customers: int
    k: int
    personas: list[str]
    gates: list[dict[str, Any]]
    policy: str
    previous_run_id: str | None
    folder: str  # the run folder, relative to the output root
    folder_exists: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def listing(root: Path, url: str | None = None, series: str | None = None) -> list[Listed]:
    """The runs of every series of root (or of one), oldest first per series."""
    if series is not None:
        check_series(series)
    history = open_history(root, url, create=False)
    if history is None:
        return []
    with history:
        names = [check_series(series)] if series else history.series_names()
        out = []
        for name in names:
            for r in history.runs(name):
                out.append(Listed(
                    series=r.series, period=r.period, period_label=r.period_label,
                    run_id=r.run_id, source=r.source, customers=r.customers, k=r.k,
                    personas=[s.name for s in sorted(r.segments, key=lambda s: s.segment_id)],
                    gates=[dict(g) for g in r.gates], policy=r.policy,
                    previous_run_id=r.previous_run_id, folder=r.run_dir,
                    folder_exists=_folder_exists(r, root)))
    return out


def _folder_exists(record: RunRecord, root: Path) -> bool:
    try:
        return record.folder(root).is_dir()
    except HistoryError:  # names a place outside the root: listed, never looked at
        return False


def describe(runs: Sequence[Listed], where: str) -> str:
    """The listing as text: one block per series, one line per run."""
    if not runs:
        return f"No runs recorded in {where} yet."
    lines = []
    for name in dict.fromkeys(r.series for r in runs):
        block = [r for r in runs if r.series == name]
        lines.append(f"Series {name}: {len(block)} run{'s' if len(block) != 1 else ''} "
                     f"({where})")
        for r in block:
            failed = [g["name"] for g in r.gates if not g.get("passed", True)]
            gates = "no gates" if not r.gates else \
                f"gates failed: {', '.join(failed)}" if failed else "gates passed"
            missing = "" if r.folder_exists else "  [run folder missing]"
            lines.append(f"  {r.period}  {r.run_id}  {r.source}  {r.customers:,} customers  "
                         f"k={r.k}  {r.policy}  {gates}{missing}")
            lines.append(f"           {', '.join(r.personas)}")
    return "\n".join(lines)
