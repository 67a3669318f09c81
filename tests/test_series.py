"""The monthly series end to end: three months through the CLI into one output root, under
keep and refit; what summary.json, segments.csv and movers.csv say; the series' files; and
every broken history as one line or a logged recovery."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reportgen.cli import main

from .runs import run_folders
from .series_tables import Month, group_months, sample_months

FAST = "[segment]\nstability_runs = 0\n"


@pytest.fixture(scope="module")
def fast(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cfg") / "fast.toml"
    path.write_text(FAST)
    return str(path)


def _write(month: Month, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{month.period}.tsv"
    month.frame.drop(columns=["kind"], errors="ignore").to_csv(path, sep="\t", index=False)
    return path


def _run(table: Path, out: Path, *extra: str):
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "--format", "json",
                                       "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _months(months: list[Month], tmp_path: Path, fast: str, *extra: str) -> list[dict]:
    out = tmp_path / "out"
    return [_run(_write(m, tmp_path / "in"), out, "--config", fast, *extra) for m in months]


def _errors(result) -> list[str]:
    """The error lines on stderr (the stage timings are there too)."""
    return [ln for ln in result.stderr.splitlines() if not ln.startswith("reportgen: ")]


def _summary(run: dict) -> dict:
    return json.loads((Path(run["run_dir"]) / "summary.json").read_text())


def _segments(run: dict) -> pd.DataFrame:
    return pd.read_csv(Path(run["run_dir"]) / "segments.csv")


@pytest.mark.parametrize("policy", ["keep", "refit"])
def test_three_months_of_known_groups_give_the_exact_migration(tmp_path, fast, policy):
    months = group_months()
    runs = _months(months, tmp_path, fast, *(["--refit"] if policy == "refit" else []))
    june = _segments(runs[0]).set_index("ID")
    kinds = months[0].frame.set_index("ID")["kind"]
    # Which segment each kind is: the three kinds are far apart, k = 3.
    of_kind = {kind: int(june.loc[kinds.index[kinds == kind], "segment"].mode()[0])
               for kind in ("affluent", "family", "young")}
    assert len(set(of_kind.values())) == 3
    names = [[s["name"] for s in _summary(r)["segments"]] for r in runs]
    assert names[0] == names[1] == names[2]
    for i, (before, after) in enumerate(zip(months, months[1:], strict=False), start=1):
        changes = _summary(runs[i])["changes"]
        assert changes["policy"] == policy
        assert changes["previous_run_id"] == runs[i - 1]["run_id"]
        assert changes["new_customers"] == len(after.new)
        assert changes["lost_customers"] == len(after.gone)
        assert changes["returning_customers"] == len(before.frame) - len(after.gone)
        cells = {(m["from"], m["to"]): m["customers"] for m in changes["migration"]}
        expected: dict[tuple[object, object], int] = {}
        kinds_before = before.frame.set_index("ID")["kind"]
        kinds_after = after.frame.set_index("ID")["kind"]
        for key, kind in kinds_after.items():
            source = of_kind[kinds_before[key]] if key in kinds_before.index else "new"
            cell = (source, of_kind[kind])
            expected[cell] = expected.get(cell, 0) + 1
        for key in after.gone:
            cell = (of_kind[kinds_before[key]], "lost")
            expected[cell] = expected.get(cell, 0) + 1
        assert cells == expected
        assert [s["transition"] for s in changes["segments"]] == ["survived"] * 3
        # Every customer whose row did not change keeps its segment.
        now = _segments(runs[i]).set_index("ID")
        was = _segments(runs[i - 1]).set_index("ID")
        same = [k for k in now.index.intersection(was.index) if k not in after.changed]
        assert (now.loc[same, "segment"] == was.loc[same, "segment"]).all()
        assert (now.loc[same, "movement"] == "same").all()
        moved = now.loc[sorted(after.moved)]
        assert (moved["previous_segment"] != moved["segment"]).all()
        assert set(moved["movement"]) <= {"up", "down"}
        assert (now.loc[sorted(after.new), "movement"] == "new").all()


def test_one_file_serves_the_report_and_the_next_run_and_old_folders_still_compare(
        tmp_path, fast):
    """segments.parquet is what the next run reads (its metadata names the key and value
    columns); a previous run written before that, with assignments.parquet and a
    segments.parquet without the metadata, gives the same comparison."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    june, july = group_months()[:2]
    runs = _months([june, july], tmp_path / "new", fast)
    parquet = Path(runs[0]["run_dir"]) / "segments.parquet"
    meta = json.loads(pq.read_schema(parquet).metadata[b"reportgen"])
    assert meta == {"key": "ID", "value": meta["value"], "run_id": runs[0]["run_id"],
                    "format": 2} and meta["value"]
    # the old layout: June's folder as an earlier reportgen left it
    out = tmp_path / "old" / "out"
    first = _run(_write(june, tmp_path / "old" / "in"), out, "--config", fast)
    folder = Path(first["run_dir"])
    table = pq.read_table(folder / "segments.parquet")
    kept = table.filter(table.column("segment").is_valid())
    pq.write_table(pa.table({"key": kept.column("ID"),
                             "segment": kept.column("segment").cast(pa.int32()),
                             "value": kept.column(meta["value"]).cast(pa.float64())}),
                   folder / "assignments.parquet")
    pq.write_table(table.replace_schema_metadata(None), folder / "segments.parquet")
    second = _run(_write(july, tmp_path / "old" / "in"), out, "--config", fast)
    new, old = _summary(runs[1])["changes"], _summary(second)["changes"]
    for field in ("new_customers", "lost_customers", "returning_customers", "migration"):
        assert new[field] == old[field], field
    assert new["returning_customers"] == len(june.frame) - len(july.gone)


def test_the_sample_keeps_its_names_for_three_months_under_both_policies(tmp_path, fast):
    months = sample_months()
    for policy in ("keep", "refit"):
        runs = _months(months, tmp_path / policy, fast,
                       *(["--refit"] if policy == "refit" else []))
        names = [{s["id"]: s["name"] for s in _summary(r)["segments"]} for r in runs]
        assert names[0] == names[1] == names[2], policy
        july = _summary(runs[1])
        assert july["changes"]["new_customers"] == 200
        assert july["changes"]["lost_customers"] == 100
        assert len(july["trend"]) == 2 * len(names[0])
        august = _summary(runs[2])
        assert sorted({p["period"] for p in august["trend"]}) == ["2014-06", "2014-07",
                                                                  "2014-08"]
        if policy == "keep":
            seg_june = _segments(runs[1]).set_index("ID")
            unchanged = [k for k in seg_june.index if k not in months[1].changed
                         and k not in months[1].new]
            assert (seg_june.loc[unchanged, "movement"] == "same").all()


def test_a_first_run_says_changes_come_next_period_and_files_of_the_series(tmp_path, fast):
    (june,) = sample_months(1)
    out = tmp_path / "out"
    run = _run(_write(june, tmp_path), out, "--config", fast, "--series", "shop")
    summary = _summary(run)
    assert summary["changes"] is None and summary["series"] == "shop"
    assert Path(run["run_dir"]).parent == out / "shop"
    assert {p.name for p in Path(run["run_dir"]).iterdir()} >= {
        "segments.parquet", "series.json", "segments.csv", "summary.json", "model.skops"}
    assert not (Path(run["run_dir"]) / "assignments.parquet").exists()  # segments.parquet serves
    latest = json.loads((out / "shop" / "latest").read_text())
    assert latest["run_id"] == run["run_id"] and latest["period"] == "2014-06"
    assert (out / "history.sqlite").is_file()
    seg = _segments(run)
    assert list(seg.columns[:6]) == ["ID", "segment", "persona", "previous_segment",
                                     "previous_persona", "movement"]
    assert seg["movement"].isna().all()
    listed = CliRunner().invoke(main, ["history", "--out", str(out), "--json"])
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run["run_id"]]


def test_json_prints_one_object_and_quiet_prints_nothing(tmp_path, fast):
    (june,) = sample_months(1)
    table = _write(june, tmp_path)
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(tmp_path / "o"),
                                       "--format", "json", "--config", fast, "--json"])
    data = json.loads(result.stdout)
    assert set(data) >= {"run_id", "run_dir", "files", "segments", "gates", "changes"}
    quiet = CliRunner().invoke(main, ["run", str(table), "--out", str(tmp_path / "q"),
                                      "--format", "json", "--config", fast, "-q"])
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_movers_csv_lists_customers_who_moved_down_from_a_valuable_segment(tmp_path, fast):
    months = group_months()
    runs = _months(months[:2], tmp_path, fast)
    movers = pd.read_csv(Path(runs[1]["run_dir"]) / "movers.csv")
    summary = _summary(runs[1])
    valuable = {s["id"] for s in _summary(runs[0])["segments"]
                if s["value_share"] / s["share"] > 1}
    assert len(movers) == summary["changes"]["movers"] > 0
    assert set(movers["previous_segment"]) <= valuable
    assert list(movers.columns) == ["ID", "previous_segment", "previous_persona", "segment",
                                    "persona", "previous_value", "value", "value_change"]
    # the affluent customers who now behave like families are there
    moved_down = {k for k, (a, b) in months[1].moved.items() if (a, b) == ("affluent",
                                                                          "family")}
    assert moved_down <= set(movers["ID"])


def test_drift_past_the_threshold_fails_the_gate_with_exit_3(tmp_path, fast):
    months = sample_months(2)
    july = months[1]
    july.frame["Income"] = july.frame["Income"] * 2.5
    out = tmp_path / "out"
    _run(_write(months[0], tmp_path / "in"), out, "--config", fast)
    result = CliRunner().invoke(main, ["run", str(_write(july, tmp_path / "in")), "--out",
                                       str(out), "--format", "json", "--config", fast,
                                       "--fail-on-drift"])
    assert result.exit_code == 3, result.output
    assert "Gate failed: fail_on_drift: Income moved (population stability index" in \
        result.stderr
    run = run_folders(out)[-1]
    drift = json.loads((run / "summary.json").read_text())["changes"]["drift"]
    assert drift["exceeded"] and drift["features"][0]["feature"] == "income"


def test_a_previous_run_whose_folder_was_deleted_is_a_logged_recovery(tmp_path, fast):
    months = sample_months(2)
    out = tmp_path / "out"
    june = _run(_write(months[0], tmp_path / "in"), out, "--config", fast)
    shutil.rmtree(june["run_dir"])
    result = CliRunner().invoke(main, ["run", str(_write(months[1], tmp_path / "in")),
                                       "--out", str(out), "--format", "json", "--config", fast,
                                       "--json"])
    assert result.exit_code == 0, result.output
    assert "are gone" in result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert changes["new_customers"] is None and "matched by their centres" in \
        changes["notes"][0]
    names = {s["name"] for s in json.loads(result.stdout)["segments"]}
    history = CliRunner().invoke(main, ["history", "--out", str(out), "--json"])
    assert names == set(json.loads(history.stdout)[0]["personas"])
    # asked for by name, the missing folder is an error
    again = CliRunner().invoke(main, ["run", str(_write(months[1], tmp_path / "in")),
                                      "--out", str(out), "--format", "json", "--config", fast,
                                      "--previous", june["run_id"]])
    assert again.exit_code == 2
    (line,) = _errors(again)
    assert line.startswith(f"Error: run {june['run_id']!r} cannot be compared with")


def test_broken_histories_are_one_line_errors_or_a_logged_rebuild(tmp_path, fast):
    months = sample_months(2)
    out = tmp_path / "out"
    june = _run(_write(months[0], tmp_path / "in"), out, "--config", fast)
    db = out / "history.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE reportgen_schema SET version = 7")
    newer = CliRunner().invoke(main, ["run", str(_write(months[1], tmp_path / "in")), "--out",
                                      str(out), "--format", "json", "--config", fast])
    assert newer.exit_code == 2
    assert _errors(newer) == [
        f"Error: {db}: the history was written by a newer reportgen (schema version 7; this "
        "one reads up to 1) (upgrade reportgen, or point --history at another database)"]
    assert len(run_folders(out)) == 1  # nothing written
    db.write_bytes(b"scribbled over" * 100)
    rebuilt = CliRunner().invoke(main, ["run", str(_write(months[1], tmp_path / "in")),
                                        "--out", str(out), "--format", "json", "--config", fast,
                                        "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "was damaged" in rebuilt.stderr and "rebuilt from 1 run folder" in rebuilt.stderr
    assert json.loads(rebuilt.stdout)["changes"]["previous_run_id"] == june["run_id"]
    listed = json.loads(CliRunner().invoke(main, ["history", "--out", str(out),
                                                  "--json"]).stdout)
    assert [r["period"] for r in listed] == ["2014-06", "2014-07"]


def test_a_second_run_of_the_series_at_once_is_refused(tmp_path, fast):
    from reportgen import history

    (june,) = sample_months(1)
    out = tmp_path / "out"
    table = _write(june, tmp_path)
    with history.series_lock(out, "default", str(out / "history.sqlite")):
        result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "--format",
                                           "json", "--config", fast])
    assert result.exit_code == 2
    assert _errors(result) == [
        f"Error: {out / 'history.sqlite'}: another run of series 'default' is in progress "
        f"(pid {os.getpid()} on {os.uname().nodename} since "
        f"{result.stderr.split(' since ')[1].split(')')[0]}) (wait for it to finish; runs of "
        "one series are recorded one at a time)"]
    assert run_folders(out) == []


def test_the_config_names_its_source_relative_to_its_folder(tmp_path, fast, monkeypatch):
    (june,) = sample_months(1)
    folder = tmp_path / "crm"
    _write(june, folder)
    (folder / "crm.toml").write_text(f'[input]\nsource = "{june.period}.tsv"\n\n{FAST}')
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(main, ["run", "--config", "crm/crm.toml", "--out", "o",
                                      "--format", "json", "--json"])
    assert first.exit_code == 0, first.output
    monkeypatch.chdir(folder)
    second = CliRunner().invoke(main, ["run", "--config", "crm.toml", "--out", "o",
                                       "--format", "json", "--json"])
    assert json.loads(first.stdout)["run_id"] == json.loads(second.stdout)["run_id"]


def test_playbook_rules_on_change_fire_from_the_second_month(tmp_path, fast):
    runs = _months(sample_months(2), tmp_path, fast)
    june, july = (_summary(r) for r in runs)
    rules = {"win-back-movers", "shrinking-valuable", "lost-valuable"}
    assert not any(a["rule"] in rules for s in june["segments"] for a in s["actions"])
    lost = [a for s in july["segments"] for a in s["actions"] if a["rule"] == "lost-valuable"]
    assert lost and "of last period's" in lost[0]["evidence"]
    assert "are not in this period's table" in lost[0]["evidence"]


def test_a_playbook_rule_on_an_unknown_change_is_refused(tmp_path):
    from reportgen.errors import ConfigError
    from reportgen.playbook import load_playbook

    path = tmp_path / "playbook.toml"
    path.write_text('[[rule]]\nid = "x"\ntitle = "t"\nchannel = "c"\nkpi = "k"\n'
                    'business = ["shop"]\nwhen = [{ change = "grew", above = 0.1 }]\n')
    with pytest.raises(ConfigError, match="unknown change 'grew'"):
        load_playbook(path)


def test_as_of_makes_a_snapshot_leaving_later_customers_out_with_the_reason(tmp_path, fast):
    (june,) = sample_months(1)
    joined = pd.to_datetime(june.frame["Dt_Customer"], format="%d-%m-%Y")
    later = int((joined > "2014-03-31").sum())
    assert later > 0
    run = _run(_write(june, tmp_path), tmp_path / "out", "--config", fast,
               "--as-of", "2014-03-31")
    assert run["run_id"].startswith("2014-03-") and run["customers"] == len(june.frame) - later
    seg = _segments(run)
    reasons = seg.loc[seg["segment"].isna(), "left_out"]
    assert (reasons == "joined after as_of 2014-03-31").sum() == later


def test_keep_cleans_the_new_month_with_the_previous_runs_decisions(tmp_path, fast):
    """Under keep July is cleaned with June's decisions (its income median and fence), its
    features built and its customers assigned with June's model: not one customer whose row
    did not change moves, and every segment keeps its id, name and colour."""
    june, july = sample_months(2)
    new = july.frame["ID"].isin(july.new)
    # The new customers are rich: July's own median income is not June's any more.
    july.frame.loc[new, "Income"] = 150_000.0
    blank = june.frame.loc[june.frame["Income"].isna(), "ID"]
    unchanged_blank = sorted(set(blank) - july.changed - july.gone)
    assert len(unchanged_blank) >= 10
    runs = _months([june, july], tmp_path, fast)
    before, after = _segments(runs[0]).set_index("ID"), _segments(runs[1]).set_index("ID")
    june_median = before.loc[unchanged_blank, "income"].unique()
    assert len(june_median) == 1  # every blank income got June's median
    kept = july.frame.loc[july.frame["Income"].notna(), "Income"]
    assert abs(kept.median() - june_median[0]) > 1_000  # a relearned clean would differ
    assert (after.loc[unchanged_blank, "income"] == june_median[0]).all()
    unchanged = sorted(set(before.index) - july.changed - july.gone)
    assert len(unchanged) == len(june.frame) - len(july.changed) - len(july.gone)
    moved = after.loc[unchanged, "segment"] != before.loc[unchanged, "segment"]
    assert int(moved.sum()) == 0
    assert (after.loc[unchanged, "movement"] == "same").all()
    assert (after.loc[unchanged, "previous_segment"] == before.loc[unchanged, "segment"]).all()
    # The same model features, to four decimals, for every unchanged customer but its age
    # (measured at July's date).
    columns = [c for c in before.columns if c not in ("segment", "persona", "left_out", "age",
                                                      "previous_segment", "previous_persona",
                                                      "movement")]
    pd.testing.assert_frame_equal(after.loc[unchanged, columns], before.loc[unchanged, columns])
    ids = [[(s["id"], s["name"], s["color"]) for s in _summary(r)["segments"]] for r in runs]
    assert ids[0] == ids[1]
    changes = _summary(runs[1])["changes"]
    assert changes["policy"] == "keep"
    assert [s["transition"] for s in changes["segments"]] == ["survived"] * len(ids[0])
