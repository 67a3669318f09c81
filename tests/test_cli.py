"""The command line: exit codes, messages, what a run writes, reproducibility, no partial output."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from reportgen import pipeline
from reportgen.cli import main

from .runs import only_run, run_folders
from .tables import marketing_table, write_tsv


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_tsv(marketing_table(40), tmp_path_factory.mktemp("in") / "customers.tsv")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_run_writes_the_files_and_one_line_per_segment(table, tmp_path):
    result = invoke("run", str(table), "--out", str(tmp_path), "--format", "html")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Customer segmentation: ")
    assert "120 customers, 3 segments" in lines[0]
    segment_lines = [ln for ln in lines if ln.startswith("  ") and "of customers" in ln]
    assert len(segment_lines) == 3
    assert all("% of spend" in ln for ln in segment_lines)
    run_dir = only_run(tmp_path)
    assert run_dir.name.startswith("2013-12-")  # period of the latest enrolment + hash
    names = {p.name for p in run_dir.iterdir()}
    assert names == {"segments.csv", "segments.parquet", "summary.json", "manifest.json",
                     "report.html", "model.skops", "series.json"}
    assert str(run_dir / "summary.json") in result.stdout
    # progress per stage goes to stderr, not stdout
    assert "segment" in result.stderr and "done in" in result.stderr
    assert "done in" not in result.stdout


def test_run_is_reproducible_byte_for_byte(table, tmp_path):
    outs = []
    for name in ("a", "b"):
        result = invoke("run", str(table), "--out", str(tmp_path / name), "--format", "html",
                        "--quiet")
        assert result.exit_code == 0, result.output
        run_dir = only_run(tmp_path / name)
        outs.append(run_dir)
    assert outs[0].name == outs[1].name
    for f in ("summary.json", "segments.csv", "report.html"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_another_seed_or_k_is_another_run_id(table, tmp_path):
    ids = set()
    for extra in ([], ["--seed", "7"], ["--k", "4"]):
        result = invoke("run", str(table), "--out", str(tmp_path), "--format", "html",
                        "--no-previous", "--json", *extra)
        assert result.exit_code == 0, result.output
        ids.add(json.loads(result.stdout)["run_id"])
    assert len(ids) == 3
    assert len(run_folders(tmp_path)) == 3


def test_segments_csv_has_every_customer_and_matches_summary(table, tmp_path):
    frame = marketing_table(40)
    frame.loc[5, "ID"] = frame.loc[4, "ID"]  # a duplicate is left out, with its reason
    path = write_tsv(frame, tmp_path / "dup.tsv")
    result = invoke("run", str(path), "--out", str(tmp_path / "out"), "--format", "html", "-q")
    assert result.exit_code == 0, result.output
    run_dir = only_run(tmp_path / "out")
    csv = pd.read_csv(run_dir / "segments.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(csv) == len(frame)
    assert csv["left_out"].notna().sum() == 1
    assert csv.loc[5, "left_out"].startswith("duplicate ID")
    assert pd.isna(csv.loc[5, "segment"])
    counts = csv["segment"].value_counts().to_dict()
    assert {s["id"]: s["size"] for s in summary["segments"]} == counts
    names = csv.dropna(subset=["segment"]).groupby("segment")["persona"].first().to_dict()
    assert {s["id"]: s["name"] for s in summary["segments"]} == names
    assert summary["headline"]["excluded"] == 1


@pytest.mark.parametrize("args, message", [
    (["run", "nope.csv"], "Error: nope.csv: file not found"),
    (["run", "--format", "pfd"], "Error: --format 'pfd': choose from html, pdf"),
    (["run", "--k", "1"], "Error: 'segment.k' must be between 2 and 30, got 1"),
    (["run", "--as-of", "30/06/2014"], "Error: --as-of '30/06/2014' is not a date"),
    (["run", "-v", "-q"], "Error: --verbose and --quiet cannot be used together"),
])
def test_bad_options_exit_2_with_one_line(args, message, tmp_path):
    result = invoke(*args, "--out", str(tmp_path))
    assert result.exit_code == 2
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr
    if "-v" not in args:  # --verbose shows tracebacks on purpose
        assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_bad_config_names_the_key_and_exits_2(table, tmp_path):
    cfg = tmp_path / "reportgen.toml"
    cfg.write_text("[segment]\nrandom_sate = 3\n")
    result = invoke("run", str(table), "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "unknown key 'segment.random_sate'; did you mean 'random_state'?" in result.stderr


def test_a_bug_exits_1_without_traceback_unless_verbose(table, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "run", broken)
    result = invoke("run", str(table), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "internal error (RuntimeError: boom)" in result.stderr
    assert "Traceback" not in result.stderr
    result = invoke("run", str(table), "--out", str(tmp_path), "--verbose")
    assert result.exit_code == 1 and "Traceback" in result.stderr


def test_a_failed_render_leaves_no_partial_output_and_a_rerun_works(table, tmp_path,
                                                                     monkeypatch):
    from reportgen.render import html

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    with monkeypatch.context() as m:
        m.setattr(html, "render_html", broken)
        result = invoke("run", str(table), "--out", str(tmp_path), "--format", "html")
        assert result.exit_code == 1
        assert list(tmp_path.iterdir()) == []
    result = invoke("run", str(table), "--out", str(tmp_path), "--format", "html", "-q")
    assert result.exit_code == 0
    run_dir = only_run(tmp_path)
    assert (run_dir / "report.html").exists()


def test_csv_formula_cells_are_neutralised(tmp_path):
    frame = marketing_table(20)
    frame["ID"] = [f"=HYPERLINK(\"x\",{i})" if i % 2 else f"C{i}" for i in range(len(frame))]
    path = write_tsv(frame, tmp_path / "evil.tsv")
    result = invoke("run", str(path), "--out", str(tmp_path / "o"), "--format", "html", "-q")
    assert result.exit_code == 0, result.output
    run_dir = only_run(tmp_path / "o")
    first_cells = [ln.split(",")[0] for ln in
                   (run_dir / "segments.csv").read_text().splitlines()[1:]]
    assert not any(c.lstrip('"').startswith("=") for c in first_cells)
    assert any(c.lstrip('"').startswith("'=HYPERLINK") for c in first_cells)


def test_help_lists_the_run_options():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for option in ("--config", "--out", "--format", "--k", "--seed", "--as-of"):
        assert option in result.output
