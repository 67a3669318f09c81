"""Tables larger than memory (issue 14): a Parquet file, folder or glob streamed in batches,
fitted on a sample, every customer assigned. Forced on small tables here (limits.out_of_core
= always, or limits.rows below the table's), with batches of a few hundred rows."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import reportgen
from reportgen import outofcore
from reportgen.config import Config
from reportgen.errors import ConfigError, InputError, LimitError
from reportgen.resources import sample_path


def _sample() -> pd.DataFrame:
    return pd.read_csv(sample_path(), sep="\t")


def _cfg(**limits: object) -> Config:
    return Config().with_overrides(report__formats=["json"],
                                   **{f"limits__{k}": v for k, v in limits.items()})


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outofcore, "BATCH", 700)  # several batches, a short last one


def test_a_table_streamed_whole_gives_the_in_memory_run_byte_for_byte(
        tmp_path: Path, small_batches: None) -> None:
    table = tmp_path / "customers.parquet"
    _sample().to_parquet(table, index=False)
    memory = reportgen.run(table, _cfg(out_of_core="never"), tmp_path / "memory")
    streamed = reportgen.run(table, _cfg(out_of_core="always", sample_rows=5000),
                             tmp_path / "streamed")
    assert memory.streamed is None
    assert streamed.streamed is not None
    assert streamed.streamed["rows"] == streamed.streamed["sample_rows"] == 2240
    # every customer, written in 4 batches, as the in-memory run writes them
    assert (streamed.run_dir / "segments.csv").read_bytes() == \
        (memory.run_dir / "segments.csv").read_bytes()
    a = pd.read_parquet(memory.run_dir / "segments.parquet")
    b = pd.read_parquet(streamed.run_dir / "segments.parquet")
    pd.testing.assert_frame_equal(a, b)
    import pyarrow.parquet as pq

    stored = [json.loads(pq.read_schema(r.run_dir / "segments.parquet").metadata[b"reportgen"])
              for r in (memory, streamed)]
    assert stored[0]["key"] == stored[1]["key"] == "ID"  # the series reads the keys back
    assert [(s.name, s.size, s.value_share) for s in streamed.report.segments] == \
        [(s.name, s.size, s.value_share) for s in memory.report.segments]
    counts = streamed.streamed["customers"]
    assert {s.name: s.size for s in memory.report.segments} == \
        {k: v for k, v in counts.items() if k != "left out"}
    manifest = json.loads((streamed.run_dir / "manifest.json").read_text())
    assert manifest["out_of_core"]["rows"] == 2240
    assert {"sample", "assign"} <= set(manifest["timings_s"])


@pytest.mark.parametrize("kind", ["number", "text", "colliding hash", "spaced name",
                                  "renamed key", "spaced twin"])
def test_a_key_repeated_in_later_batches_is_left_out_there_as_in_memory(
        tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch, kind: str
        ) -> None:
    """Keys met again one, two and three batches later, a whole batch of keys met before, and
    a repeat within a batch: the first occurrence is assigned and every later one left out
    with clean's reason, as the in-memory run does, byte for byte."""
    from reportgen import batchscore

    frame = _sample()
    ids = frame["ID"].to_numpy().copy()
    ids[1000] = ids[5]  # batch 0, again in batch 1
    ids[1400:2100] = ids[0:700]  # all of batch 2 is batch 0's keys
    ids[2200] = ids[2150] = ids[800]  # batch 1, twice in batch 3
    ids[710] = ids[705]  # within batch 1
    frame["ID"] = ids
    if kind == "text":  # stripped before they are compared
        frame["ID"] = [f" C{v}" if i % 3 else f"C{v} " for i, v in enumerate(ids)]
    if kind == "colliding hash":  # many different keys share each identity: compared exactly
        identities = batchscore._identities

        def shared(batch: object, column: str, name: str) -> tuple[np.ndarray, np.ndarray]:
            rows, ids = identities(batch, column, name)
            return rows, ids % np.uint64(7)
        monkeypatch.setattr(batchscore, "_identities", shared)
    if kind == "spaced name":  # the key's column, named as the file names it
        frame = frame.rename(columns={"ID": " ID "})
    cfg = {"out_of_core": "never"}, {"out_of_core": "always", "sample_rows": 5000}
    memory_cfg, streamed_cfg = (_cfg(**c) for c in cfg)
    if kind == "renamed key":  # load names the second "ID" "ID.1": the key, as pinned
        frame.insert(0, "ID ", np.arange(len(frame)) % 7)
        frame = frame.rename(columns={"ID": "ID  "})
        memory_cfg, streamed_cfg = (dataclasses.replace(c, columns={"ID.1": "id"})
                                    for c in (memory_cfg, streamed_cfg))
    if kind == "spaced twin":  # the key first, a column load renames "ID.1" after it
        frame["ID "] = np.arange(len(frame)) % 7
    table = tmp_path / "customers.parquet"
    frame.to_parquet(table, index=False)
    memory = reportgen.run(table, memory_cfg, tmp_path / "memory")
    streamed = reportgen.run(table, streamed_cfg, tmp_path / "streamed")
    assert streamed.streamed is not None
    key = "ID.1" if kind == "renamed key" else "ID"
    assert json.loads(pq.read_schema(streamed.run_dir / "segments.parquet").metadata[
        b"reportgen"])["key"] == key
    assert (streamed.run_dir / "segments.csv").read_bytes() == \
        (memory.run_dir / "segments.csv").read_bytes()
    a = pd.read_parquet(memory.run_dir / "segments.parquet")
    b = pd.read_parquet(streamed.run_dir / "segments.parquet")
    pd.testing.assert_frame_equal(a, b)
    # the later occurrences left out with clean's reason, the first ones assigned
    later = [1000, *range(1400, 2100), 2150, 2200, 710]
    for row in later:
        assert re.fullmatch(
            rf"duplicate {re.escape(key)} .*{ids[row]}'?\)? \(first occurrence kept\)",
            b.at[row, "left_out"]), (row, b.at[row, "left_out"])
    assert b.loc[later, "segment"].isna().all()
    assert b.loc[[5, *range(700), 800, 705], "segment"].notna().all()
    assert streamed.streamed["customers"]["left out"] == int(b["left_out"].notna().sum()) \
        == len(later)


def test_a_sample_of_a_larger_table_gives_the_same_segments_within_tolerance(
        tmp_path: Path) -> None:
    """15,000 customers of three kinds, fitted on 3,000 of them: the same k and persona names
    as the run that holds all 15,000, each persona's share of customers (counted over the whole
    table) within half a point and its share of value (the sample's) within one point, and
    the two assignments agreeing (adjusted Rand index ≥ 0.99)."""
    from sklearn.metrics import adjusted_rand_score

    from tests.tables import marketing_table

    table = tmp_path / "customers.parquet"
    marketing_table(n_per_kind=5000).drop(columns=["kind"], errors="ignore").to_parquet(
        table, index=False)
    memory = reportgen.run(table, _cfg(out_of_core="never"), tmp_path / "memory")
    streamed = reportgen.run(table, _cfg(out_of_core="always", sample_rows=3000)
                             .with_overrides(report__formats=["json", "html", "email"]),
                             tmp_path / "streamed")
    assert streamed.streamed is not None
    assert streamed.streamed["rows"] == 15_000
    assert streamed.report.headline.customers == 3000  # the report is the sample's
    # ... and says so up front: the cover counts the table, the figures are the sample's
    assert streamed.report.headline.sampled_from == 15_000
    assert memory.report.headline.sampled_from is None
    page = re.sub(r"<[^>]+>|\s+", " ", (streamed.run_dir / "report.html").read_text())
    assert re.search(r"Customers in the table\s+15,000", page), page[:2000]
    assert "random sample of 3,000 of the 15,000 customers in customers.parquet" in page
    assert "15,000" in (streamed.run_dir / "email.txt").read_text()
    assert streamed.report.headline.k == memory.report.headline.k == 3
    assert [s.name for s in streamed.report.segments] == \
        [s.name for s in memory.report.segments]
    counts = streamed.streamed["customers"]
    assert sum(counts.values()) == 15_000
    for s, t in zip(memory.report.segments, streamed.report.segments, strict=True):
        assert abs(counts[s.name] / 15_000 - s.share) <= 0.005, s.name
        assert abs(t.value_share - s.value_share) <= 0.01, s.name
    a = pd.read_parquet(memory.run_dir / "segments.parquet", columns=["ID", "segment"])
    b = pd.read_parquet(streamed.run_dir / "segments.parquet", columns=["ID", "segment"])
    assert b["ID"].tolist() == a["ID"].tolist()
    assert adjusted_rand_score(a["segment"], b["segment"]) >= 0.99


def test_a_folder_and_a_glob_of_parts_are_one_table(tmp_path: Path, small_batches: None
                                                    ) -> None:
    frame = _sample()
    folder = tmp_path / "customers"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")  # what Spark leaves beside its parts: not Parquet
    by_folder = reportgen.run(folder, _cfg(), tmp_path / "a")  # auto: a folder streams
    by_glob = reportgen.run(f"{folder}/part-*.parquet", _cfg(), tmp_path / "b")
    for result in (by_folder, by_glob):
        assert result.streamed is not None and result.streamed["rows"] == 2240
        back = pd.read_parquet(result.run_dir / "segments.parquet")
        assert back["ID"].tolist() == frame["ID"].tolist()
    assert (by_folder.run_dir / "segments.csv").read_bytes() == \
        (by_glob.run_dir / "segments.csv").read_bytes()


def test_auto_streams_a_parquet_file_past_the_rows_limit_and_never_refuses_it(
        tmp_path: Path) -> None:
    table = tmp_path / "customers.parquet"
    _sample().to_parquet(table, index=False)
    streamed = reportgen.run(table, _cfg(rows=1000), tmp_path / "out")  # sample: ≤ rows
    assert streamed.streamed is not None
    assert streamed.streamed["sample_rows"] == 1000
    assert sum(streamed.streamed["customers"].values()) == 2240
    assert len(pd.read_parquet(streamed.run_dir / "segments.parquet")) == 2240
    with pytest.raises(LimitError, match="2,240 rows"):
        reportgen.run(table, _cfg(rows=1000, out_of_core="never"), tmp_path / "never")
    assert not outofcore.wanted(str(table), _cfg())  # within the limits: read whole
    assert outofcore.wanted(str(table), _cfg(bytes=10_000))  # larger than limits.bytes
    # past stream_rows (2,239 < 2,240 rows): streamed, faster than in memory from there
    assert outofcore.wanted(str(table), _cfg(stream_rows=2239))
    assert not outofcore.wanted(str(table), _cfg(stream_rows=2240))
    assert not outofcore.wanted(str(table), _cfg(stream_rows=1000, out_of_core="never"))
    assert outofcore.wanted(str(table), _cfg(stream_rows=5000, rows=2000))  # rows if lower


def test_what_cannot_stream_is_refused_in_one_line(tmp_path: Path) -> None:
    csv = tmp_path / "customers.csv"
    _sample().to_csv(csv, index=False)
    with pytest.raises(ConfigError, match="reads Parquet"):
        reportgen.run(csv, _cfg(out_of_core="always"), tmp_path / "out")
    with pytest.raises(InputError, match="no Parquet file matches"):
        reportgen.run(f"{tmp_path}/nothing-*.parquet", _cfg(), tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="is a folder, not a file"):
        reportgen.run(empty, _cfg(), tmp_path / "out")
    with pytest.raises(ConfigError, match="out_of_core"):
        _cfg(out_of_core="sometimes")
    proc = subprocess.run([sys.executable, "-m", "reportgen", "run", "--out",
                           str(tmp_path / "cli"), f"{tmp_path}/nothing-*.parquet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no Parquet file matches" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # the line (and its hint)
    assert not (tmp_path / "cli").exists() or not any((tmp_path / "cli").iterdir())


def test_the_cli_says_how_many_were_streamed(tmp_path: Path) -> None:
    table = tmp_path / "customers.parquet"
    _sample().to_parquet(table, index=False)
    config = tmp_path / "reportgen.toml"
    config.write_text('[limits]\nout_of_core = "always"\nsample_rows = 1000\n')
    proc = subprocess.run([sys.executable, "-m", "reportgen", "run", "--config", str(config),
                           "--format", "json", "--out", str(tmp_path / "out"), str(table)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "1,000 customers" in proc.stdout
    assert "Streamed: 2,240 customers in segments.csv and segments.parquet, the figures " \
           "above measured on a sample of 1,000" in proc.stdout


def test_the_streamed_stages_show_progress_on_a_terminal(tmp_path: Path, small_batches: None,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import io

    from reportgen import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    table = tmp_path / "customers.parquet"
    _sample().to_parquet(table, index=False)
    stream = Terminal()
    progress.install(stream, quiet=False)
    try:
        reportgen.run(table, _cfg(out_of_core="always", sample_rows=1000), tmp_path / "out")
    finally:
        progress.install(io.StringIO(), quiet=True)
    shown = [part for part in stream.getvalue().split("\r\033[K") if part]
    # each batch of 700 rows read (the sample drawn), then each batch assigned; the last
    # update of a stage clears the live line (its "done in" line follows)
    read = [s.split(" rows read")[0] for s in shown if "rows read" in s]
    assigned = [s.split(" customers assigned")[0] for s in shown if "customers assigned" in s]
    assert read == [f"reportgen: sample: {n} of 2,240" for n in ("700", "1,400", "2,100")]
    assert assigned == [f"reportgen: assign: {n} of 2,240" for n in ("700", "1,400", "2,100")]


def test_a_parquet_file_whose_text_decodes_past_the_bytes_limit_is_refused_not_streamed(
        tmp_path: Path) -> None:
    """The footer says ~100 KB (a dictionary of one long value); decoded, the column is
    4.5 MB, past limits.bytes: auto does not stream what only its decoding reveals (a batch of
    such rows would be as large), load refuses it in one line; always streams it."""
    import pyarrow.parquet as pq

    table = tmp_path / "customers.parquet"
    frame = _sample()
    frame["Note"] = "x" * 2000
    frame.to_parquet(table, index=False)
    meta = pq.ParquetFile(table).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) \
        < 3_000_000
    assert not outofcore.wanted(str(table), _cfg(bytes=3_000_000))
    with pytest.raises(LimitError, match="limits.bytes"):
        reportgen.run(table, _cfg(bytes=3_000_000), tmp_path / "auto")
    streamed = reportgen.run(table, _cfg(bytes=3_000_000, out_of_core="always",
                                         sample_rows=1000), tmp_path / "always")
    assert streamed.streamed is not None
    assert sum(streamed.streamed["customers"].values()) == 2240
