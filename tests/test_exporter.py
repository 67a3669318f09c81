"""The helper process: same outputs as in-process, and a hung helper does not hang the run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .tables import marketing_table, write_tsv


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_tsv(marketing_table(30), tmp_path_factory.mktemp("in") / "t.tsv")


def run_cli(table, out, **env):
    result = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", str(table), "--out", str(out),
         "--format", "html,pdf,email", "--quiet"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    (run_dir,) = out.iterdir()
    return run_dir, result.stderr


def test_helper_and_in_process_give_the_same_outputs_and_a_hung_helper_is_replaced(
        table, tmp_path):
    forked, _ = run_cli(table, tmp_path / "forked")
    inline, _ = run_cli(table, tmp_path / "inline", REPORTGEN_EXPORT_INLINE="1")
    hung, stderr = run_cli(table, tmp_path / "hung", REPORTGEN_HELPER_TIMEOUT="0.001")
    assert "helper process failed (TimeoutError); doing its work in this process" in stderr
    for name in ("summary.json", "segments.csv", "report.html", "email.html"):
        assert (forked / name).read_bytes() == (inline / name).read_bytes() == \
            (hung / name).read_bytes(), name
    for run_dir in (forked, inline, hung):
        assert (run_dir / "report.pdf").stat().st_size > 10_000
        assert (run_dir / "model.skops").stat().st_size > 1_000
