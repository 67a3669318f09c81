"""reportgen.run, the library's entry point: the same outputs as the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import reportgen
from reportgen.config import Config
from reportgen.errors import InputError

from . import customer_tables, tables
from .runs import only_run

COMPARED = ("summary.json", "segments.csv", "report.html", "email.html", "email.txt")
ROOT = Path(__file__).resolve().parent.parent


def _cli_run(source: Path, out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", str(source), "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return only_run(out)


def test_two_library_runs_in_one_process_match_two_cli_runs(tmp_path):
    sources = {
        "marketing": tables.marketing_table(),
        "cards": customer_tables.credit_card_table(n=300),
    }
    for name, frame in sources.items():
        frame.drop(columns=["kind"], errors="ignore").to_csv(tmp_path / f"{name}.csv",
                                                             index=False)
    # Both reports in this process, one after the other (every format, the PDF included).
    library = {name: reportgen.run(tmp_path / f"{name}.csv", out=tmp_path / "lib" / name)
               for name in sources}
    for name, result in library.items():
        cli_dir = _cli_run(tmp_path / f"{name}.csv", tmp_path / "cli" / name)
        assert result.run_dir.name == cli_dir.name  # same run id
        for file in COMPARED:
            assert (result.run_dir / file).read_bytes() == (cli_dir / file).read_bytes(), \
                f"{name}/{file} differs between reportgen.run and `reportgen run`"
        pdf = (result.run_dir / "report.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
        assert sorted(p.name for p in result.files) == sorted(p.name for p in cli_dir.iterdir())
        # the series' files beside the run folder, the same from both
        assert sorted(p.name for p in result.run_dir.parent.iterdir()) == sorted(
            p.name for p in cli_dir.parent.iterdir()) == sorted(["history.sqlite", "latest",
                                                                 result.run_dir.name])


def test_library_run_takes_a_config_object_or_a_toml_path(tmp_path):
    frame = tables.marketing_table(n_per_kind=40)
    frame.drop(columns=["kind"]).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "rg.toml").write_text('[segment]\nk = 4\n[report]\nformats = ["json"]\n')
    from_path = reportgen.run(tmp_path / "t.csv", tmp_path / "rg.toml", out=tmp_path / "a")
    from_object = reportgen.run(
        str(tmp_path / "t.csv"),
        Config().with_overrides(segment__k=4, report__formats=["json"]),
        out=tmp_path / "b")
    assert from_path.report.headline.k == from_object.report.headline.k == 4
    assert from_path.run_dir.name == from_object.run_dir.name
    assert (from_path.run_dir / "summary.json").read_bytes() == \
        (from_object.run_dir / "summary.json").read_bytes()
    assert {p.name for p in from_path.files} >= {"summary.json", "segments.csv",
                                                  "manifest.json"}
    assert from_path.failed_gates == []


def test_library_run_reports_gates_and_raises_reportgen_errors(tmp_path):
    frame = tables.marketing_table(n_per_kind=40)
    frame.drop(columns=["kind"]).to_csv(tmp_path / "t.csv", index=False)
    cfg = Config().with_overrides(report__formats=["json"], gates__fail_under_silhouette=0.99)
    result = reportgen.run(tmp_path / "t.csv", cfg, out=tmp_path / "out")
    assert [g.name for g in result.failed_gates] == ["fail_under_silhouette"]
    assert (result.run_dir / "summary.json").exists()  # a failed gate still writes the report
    with pytest.raises(InputError, match="missing.csv"):
        reportgen.run(tmp_path / "missing.csv", cfg, out=tmp_path / "out2")
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())
