"""history.py: a series' runs and segments in SQLite and in a real PostgreSQL, one entry per
period, transactional writes, one writer per series, and every kind of broken database as one
line (or a logged recovery). Assignments as Parquet.

PostgreSQL: the server .ci/run starts (REPORTGEN_TEST_PG_URL, or the reportgen role on
127.0.0.1:5432 with REPORTGEN_TEST_PG_PASSWORD); each test gets a schema of its own. Skipped
when no server answers, except in CI (CI=true), where a missing server fails.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reportgen import compare, history
from reportgen.errors import ConfigError, HistoryError

from .pg import PG_PASSWORD, PG_URL, pg_engine


@pytest.fixture
def pg_url():
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    engine = pg_engine("+psycopg")
    schema = f"hist_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path):
    """(output root, history URL or None) for each backend."""
    if request.param == "sqlite":
        return tmp_path, None
    return tmp_path, request.getfixturevalue("pg_url")


def _run(period: str, run_id: str, *, series: str = "default", names=("A", "B"),
         sizes=(60, 40), policy: str = "first", previous: str | None = None
         ) -> history.RunRecord:
    total = float(sum(sizes))
    segments = tuple(
        history.SegmentRecord(segment_id=i, name=name, color=f"#00000{i}", size=size,
                              share=size / total, value=size * 10.0,
                              value_share=size / total, centroid=(0.1 * i, -1 / 3, 2.5e-7),
                              transition="" if policy == "first" else "survived")
        for i, (name, size) in enumerate(zip(names, sizes, strict=True), start=1))
    return history.RunRecord(
        series=series, period=period, run_id=run_id, as_of=f"{period}-28",
        period_label=period, source="crm.csv", run_dir=run_id, customers=int(total),
        total_value=total * 10, k=len(names), policy=policy, previous_run_id=previous,
        features=("income", "total_spend"),
        scaling={"features": ["income", "total_spend"], "methods": ["standard", "log1p"],
                 "center": [1.0, 2.0], "scale": [3.0, 4.0]},
        bins=({"feature": "income", "edges": [1.5], "shares": [0.5, 0.5]},),
        distance=1.25, gates=({"name": "min_segment_share", "passed": True,
                               "reason": "ok"},),
        segments=segments)


def _open(where, **kw) -> history.History:
    root, url = where
    h = history.open_history(root, url, **kw)
    assert h is not None
    return h


def test_a_run_is_recorded_and_read_back_exactly(where):
    with _open(where) as h:
        stored = h.record(_run("2014-06", "2014-06-aaaa"))
        (back,) = h.runs("default")
    assert back == stored and stored.created.endswith("Z")
    assert back.segments[0].centroid == (0.1, -1 / 3, 2.5e-7)  # floats survive exactly
    assert back.scaling["methods"] == ["standard", "log1p"]
    assert h.where == (str(where[0] / "history.sqlite") if where[1] is None else h.where)


def test_rerunning_a_period_replaces_its_entry_and_other_series_are_untouched(where):
    with _open(where) as h:
        h.record(_run("2014-06", "2014-06-aaaa"))
        h.record(_run("2014-06", "2014-06-aaaa", series="shops", names=("X",), sizes=(9,)))
        h.record(_run("2014-06", "2014-06-bbbb", names=("A", "B", "C"), sizes=(5, 3, 2)))
        h.record(_run("2014-06", "2014-06-bbbb", names=("A", "B", "C"), sizes=(5, 3, 2)))
        runs = h.runs("default")
        assert [r.run_id for r in runs] == ["2014-06-bbbb"]
        assert [s.name for s in runs[0].segments] == ["A", "B", "C"]
        assert [r.run_id for r in h.runs("shops")] == ["2014-06-aaaa"]
        assert h.series_names() == ["default", "shops"]


def test_previous_run_is_the_latest_earlier_period_and_ids_never_come_back(where):
    with _open(where) as h:
        assert h.previous("default", "2014-06") is None
        h.record(_run("2014-04", "2014-04-a"))
        h.record(_run("2014-06", "2014-06-a", names=("A", "B", "C"), sizes=(1, 1, 1)))
        h.record(_run("2014-07", "2014-07-a", previous="2014-06-a", policy="keep"))
        prev = h.previous("default", "2014-07")
        assert prev is not None and prev.run_id == "2014-06-a"
        assert h.previous("default", "2014-06").run_id == "2014-04-a"
        assert h.next_segment_id("default") == 4  # segment 3 existed in June
        assert h.get("default", "2014-07-a").previous_run_id == "2014-06-a"
        assert h.forget("default", "2014-07-a") and h.get("default", "2014-07-a") is None


def test_a_failed_write_keeps_the_entry_it_would_have_replaced(where):
    with _open(where) as h:
        h.record(_run("2014-06", "2014-06-good"))
        broken = _run("2014-06", "2014-06-bad")
        twice = broken.segments[0]
        broken = history.RunRecord(**{**broken.__dict__, "segments": (twice, twice)})
        with pytest.raises(HistoryError) as exc:
            h.record(broken)
        assert "\n" not in str(exc.value)
        (kept,) = h.runs("default")
        assert kept.run_id == "2014-06-good" and len(kept.segments) == 2


def test_a_second_run_of_the_same_series_is_refused_while_another_series_may_run(where):
    with _open(where) as h, _open(where) as other:
        with h.lock("default"):
            with pytest.raises(HistoryError, match="another run of series 'default' is in "
                                                   "progress") as exc, other.lock("default"):
                pass
            assert "\n" not in str(exc.value)
            with other.lock("shops"):
                pass
        with other.lock("default"):  # released
            pass


_HOLDER = """
import sys, time
from pathlib import Path
from reportgen import history
h = history.open_history(Path(sys.argv[1]), sys.argv[2] or None)
with h.lock("default"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_killed_run_leaves_no_stale_lock(where):
    root, url = where
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), url or ""],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with _open(where) as h:
            with pytest.raises(HistoryError, match=r"another run of series 'default' is in "
                                                   r"progress"), \
                    h.lock("default"):
                pass
            proc.kill()
            proc.wait(timeout=30)
            deadline = time.monotonic() + 10  # the server notices the dropped connection
            while True:
                try:
                    with h.lock("default"):
                        break
                except HistoryError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_history_from_a_newer_reportgen_is_refused_and_left_alone(where):
    import sqlalchemy as sa

    with _open(where) as h:
        h.record(_run("2014-06", "2014-06-a"))
        with h.engine.begin() as conn:
            conn.execute(sa.text("UPDATE reportgen_schema SET version = 99"))
    with pytest.raises(HistoryError, match=r"newer reportgen \(schema version 99; this one "
                                           r"reads up to 1\)"):
        _open(where)
    if where[1] is None:
        with sqlite3.connect(where[0] / "history.sqlite") as conn:
            assert conn.execute("SELECT count(*) FROM reportgen_runs").fetchone() == (1,)


class _Records(logging.Handler):
    """Collects the reportgen logger's records (the CLI stops it propagating to the root
    logger, where caplog listens)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_damaged_sqlite_file_is_one_line_or_a_logged_rebuild_from_the_run_folders(
        tmp_path):
    db = tmp_path / "history.sqlite"
    for period, run_id in (("2014-06", "2014-06-a"), ("2014-07", "2014-07-b")):
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / history.RECORD_FILE).write_text(_run(period, run_id).to_json())
    (tmp_path / ".2014-08-c.partial-1").mkdir()  # an unfinished run is not rebuilt
    (tmp_path / ".2014-08-c.partial-1" / history.RECORD_FILE).write_text(
        _run("2014-08", "2014-08-c").to_json())
    db.write_bytes(b"this is not a database, it is a note somebody saved here\n" * 20)
    with pytest.raises(HistoryError) as exc:
        history.open_history(tmp_path)
    assert str(exc.value) == (f"{db}: the history database is damaged (not an SQLite file) "
                              "(move it aside: the next run rebuilds it from the run folders)")
    records = _Records()
    logger = logging.getLogger("reportgen")
    logger.addHandler(records)
    try:
        h = history.open_history(tmp_path, recover=True)
    finally:
        logger.removeHandler(records)
    assert h is not None
    with h:
        assert [r.run_id for r in h.runs("default")] == ["2014-06-a", "2014-07-b"]
    (warning,) = records.lines
    assert "was damaged" in warning and "rebuilt from 2 run folders" in warning
    (aside,) = tmp_path.glob("history.sqlite.damaged-*")
    assert aside.read_bytes().startswith(b"this is not a database")


def test_a_truncated_sqlite_file_is_damaged_too(tmp_path):
    with history.open_history(tmp_path) as h:
        for month in range(1, 13):
            h.record(_run(f"2014-{month:02d}", f"2014-{month:02d}-x",
                          names=tuple(f"S{i}" for i in range(8)), sizes=(5,) * 8))
    db = tmp_path / "history.sqlite"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2] + b"\0" * 100)
    with pytest.raises(HistoryError, match="damaged"):
        h = history.open_history(tmp_path)
        h.runs("default")


def test_a_database_locked_by_another_process_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "BUSY_TIMEOUT", 0.2)
    with history.open_history(tmp_path) as h:
        h.record(_run("2014-06", "2014-06-a"))
        other = sqlite3.connect(tmp_path / "history.sqlite", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(HistoryError) as exc:
                h.record(_run("2014-07", "2014-07-a"))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert str(exc.value).startswith(f"{tmp_path / 'history.sqlite'}: the history database "
                                         "is locked by another process (database is locked)")
        assert [r.run_id for r in h.runs("default")] == ["2014-06-a"]


def test_no_file_yet_means_an_empty_listing(tmp_path):
    assert history.open_history(tmp_path, create=False) is None
    assert history.listing(tmp_path) == []
    assert not (tmp_path / "history.sqlite").exists()


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("RG_HIST_PW", "s3cr3t-Pw")
    with pytest.raises(HistoryError) as exc:
        history.open_history(tmp_path, "postgresql://rg:${RG_HIST_PW}@127.0.0.1:1/db")
    text = str(exc.value)
    assert "s3cr3t-Pw" not in text and "rg:***@127.0.0.1:1/db" in text
    assert "cannot reach the history database" in text and "\n" not in text


def test_bad_series_names_and_urls_are_config_errors(tmp_path):
    for bad in ("", "../up", "a/b", ".hidden", "x" * 65):
        with pytest.raises(ConfigError, match="series name"):
            history.check_series(bad)
    assert history.check_series("crm-2014_v2.1") == "crm-2014_v2.1"
    with pytest.raises(ConfigError, match="not a valid database URL"):
        history.open_history(tmp_path, "not a url at all")
    with pytest.raises(HistoryError, match="cannot reach the history database .failed to "
                                           "resolve host"):
        history.open_history(tmp_path, "postgresql://rg@no-such-host.invalid/db")


def test_listing_names_periods_runs_personas_gates_and_missing_folders(where):
    root, url = where
    with _open(where) as h:
        h.record(_run("2014-06", "2014-06-a"))
        failed = _run("2014-07", "2014-07-b", policy="keep", previous="2014-06-a")
        failed = history.RunRecord(**{**failed.__dict__, "gates": (
            {"name": "min_stability", "passed": False, "reason": "0.41 < 0.6"},)})
        h.record(failed)
    (root / "2014-06-a").mkdir()
    runs = history.listing(root, url)
    assert [(r.period, r.run_id, r.personas, r.folder_exists) for r in runs] == [
        ("2014-06", "2014-06-a", ["A", "B"], True), ("2014-07", "2014-07-b", ["A", "B"], False)]
    text = history.describe(runs, "output/history.sqlite")
    assert text.splitlines()[0] == "Series default: 2 runs (output/history.sqlite)"
    assert "2014-07  2014-07-b  crm.csv  100 customers  k=2  keep  gates failed: " \
           "min_stability  [run folder missing]" in text
    assert json.loads(json.dumps([r.to_dict() for r in runs]))[1]["policy"] == "keep"


# assignments -------------------------------------------------------------------------------

def _segments_parquet(folder, keys, *, value="Spend", key="ID"):
    """segments.parquet as a run writes it: every row (one left out), the series' metadata."""
    from reportgen.output import segments_table, write_parquet

    n = len(keys)
    frame = pd.DataFrame({key: list(keys) + [keys[0]]})
    frame[key] = frame[key].astype(keys.dtype)
    features = pd.DataFrame({"Spend": [1.5, 0.0, 3.25, 1e6, -2.0][:n]})
    table = segments_table({1: "A", 2: "B", 7: "C"}, frame, key, pd.RangeIndex(n),
                           np.array([1, 2, 2, 7, 1][:n]),
                           pd.Series(["a duplicate"], index=[n]), features)
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(table, folder / history.SEGMENTS_FILE,
                  history.segments_metadata(key=key, value=value, run_id="2014-06-a"))


@pytest.mark.parametrize("keys", [
    pd.Index(np.arange(5, dtype=np.int64) * 7),
    pd.Index(["C-001", "C-002", "x", "Zoë", "=cmd"], dtype="string"),
    pd.Index(["C-001", "C-002", "x", "Zoë", "=cmd"], dtype=object),
])
def test_assignments_are_read_back_from_segments_parquet(tmp_path, keys):
    _segments_parquet(tmp_path, keys)
    back = history.read_assignments(tmp_path)
    assert back is not None
    assert back.keys.tolist() == keys.tolist()  # "=cmd" as it is: only segments.csv neutralises
    assert back.segments.tolist() == [1, 2, 2, 7, 1]
    assert back.values.tolist() == [1.5, 0.0, 3.25, 1e6, -2.0]
    now = compare.Assignments(keys=keys, segments=np.array([1, 2, 2, 7, 1]),
                              values=np.ones(5))
    assert compare.flows(back, now).returning_customers == 5


def test_assignments_without_a_value_column_count_each_customer_once(tmp_path):
    _segments_parquet(tmp_path, pd.Index([3, 4, 5], dtype="int64"), value=None)
    back = history.read_assignments(tmp_path)
    assert back is not None and back.values.tolist() == [1.0, 1.0, 1.0]


def test_a_run_without_customer_keys_has_no_assignments(tmp_path):
    from reportgen.output import write_parquet

    write_parquet(pd.DataFrame({"ID": [2, 3], "segment": pd.array([1, 2], dtype="Int64")}),
                  tmp_path / history.SEGMENTS_FILE,
                  history.segments_metadata(key=None, value=None, run_id="r"))
    assert history.read_assignments(tmp_path) is None


def test_an_older_run_folder_with_assignments_parquet_is_still_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # what runs wrote before segments.parquet served the series (format 1)
    pq.write_table(pa.table({"key": pa.array(["C-1", "C-2"]),
                             "segment": pa.array([2, 1], type=pa.int32()),
                             "value": pa.array([10.0, 20.0]),
                             "distance": pa.array([0.5, 1.5], type=pa.float32())}),
                   tmp_path / history.ASSIGNMENTS_FILE)
    _segments_parquet(tmp_path, pd.Index([9, 8, 7], dtype="int64"))  # not read: the old file is
    back = history.read_assignments(tmp_path)
    assert back is not None
    assert (back.keys.tolist(), back.segments.tolist(), back.values.tolist()) == \
        (["C-1", "C-2"], [2, 1], [10.0, 20.0])


def test_missing_or_damaged_assignments_are_one_line(tmp_path):
    folder = tmp_path / "gone"
    with pytest.raises(HistoryError, match="assignments are missing .was its folder moved or "
                                           "deleted"):
        history.read_assignments(folder)
    folder.mkdir()
    (folder / history.SEGMENTS_FILE).write_bytes(b"PAR1 not really")
    with pytest.raises(HistoryError, match="cannot read the previous run's customer "
                                           "assignments"):
        history.read_assignments(folder)
    from reportgen.output import write_parquet

    # a segments.parquet without the series' metadata (written by something else)
    write_parquet(pd.DataFrame({"ID": [1]}), folder / history.SEGMENTS_FILE)
    with pytest.raises(HistoryError, match="does not say which column holds the customer keys"):
        history.read_assignments(folder)
    (folder / history.ASSIGNMENTS_FILE).write_bytes(b"PAR1 not really")
    with pytest.raises(HistoryError, match="cannot read the previous run's customer "
                                           "assignments"):
        history.read_assignments(folder)


# the command -------------------------------------------------------------------------------

def _cli(*args: str):
    from click.testing import CliRunner

    from reportgen.cli import main

    return CliRunner().invoke(main, list(args))


def test_history_command_lists_runs_as_text_and_json(where):
    root, url = where
    with _open(where) as h:
        h.record(_run("2014-06", "2014-06-a"))
        h.record(_run("2014-07", "2014-07-b", names=("A", "B", "Newcomers"), sizes=(5, 3, 2),
                      policy="refit", previous="2014-06-a"))
        h.record(_run("2014-07", "2014-07-b", series="shops"))
    extra = ["--history", url] if url else []
    text = _cli("history", "--out", str(root), "--series", "default", *extra)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Series default: 2 runs (")
    assert lines[3].startswith("  2014-07  2014-07-b  crm.csv  10 customers  k=3  refit")
    assert lines[4].strip() == "A, B, Newcomers"
    assert "shops" not in text.stdout
    listed = _cli("history", "--out", str(root), "--json", *extra)
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    assert [(r["series"], r["period"]) for r in runs] == [
        ("default", "2014-06"), ("default", "2014-07"), ("shops", "2014-07")]
    assert runs[1]["personas"] == ["A", "B", "Newcomers"]
    assert runs[1]["previous_run_id"] == "2014-06-a"
    if url:
        assert PG_PASSWORD not in text.stdout + listed.stdout


def test_history_command_on_a_damaged_database_is_one_line_exit_2(tmp_path):
    (tmp_path / "history.sqlite").write_bytes(b"garbage" * 10)
    result = _cli("history", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'history.sqlite'}: the history database is damaged (not an SQLite "
        "file) (move it aside: the next run rebuilds it from the run folders)"]
