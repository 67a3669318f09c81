"""The helper process: same outputs as in-process, and a hung helper does not hang the run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .runs import only_run
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
    run_dir = only_run(out)
    return run_dir, result.stderr


def test_helper_and_in_process_give_the_same_outputs_and_a_hung_helper_is_replaced(
        table, tmp_path):
    forked, _ = run_cli(table, tmp_path / "forked")
    inline, _ = run_cli(table, tmp_path / "inline", REPORTGEN_EXPORT_INLINE="1")
    hung, stderr = run_cli(table, tmp_path / "hung", REPORTGEN_HELPER_TIMEOUT="0.001")
    # which helper gives up first depends on timing; either way the work is redone here
    assert re.search(r"helper process failed \((charts helper timed out|chart '\w+' did not "
                     r"arrive from the charts helper)\); doing its work in this process", stderr)
    for name in ("summary.json", "segments.csv", "report.html", "email.html",
                 "email-size_value.png", "email-zscore_heatmap.png"):
        assert (forked / name).read_bytes() == (inline / name).read_bytes() == \
            (hung / name).read_bytes(), name
    pdfs = [pdf_pages(run_dir / "report.pdf") for run_dir in (forked, inline, hung)]
    assert pdfs[0] == pdfs[1] == pdfs[2]
    assert sum(images for _, images in pdfs[0]) >= 8  # the charts are drawn, not left out
    for run_dir in (forked, inline, hung):
        assert (run_dir / "model.skops").stat().st_size > 1_000


def pdf_pages(path):
    """Each page's text and number of drawn images (SVG charts become form XObjects)."""
    import pypdf

    pages = []
    for page in pypdf.PdfReader(path).pages:
        xobjects = page["/Resources"].get("/XObject", {})
        pages.append((page.extract_text(), len(xobjects)))
    return pages


KILL_PRINT_HELPER = """
import sys
from pathlib import Path
from reportgen import exporter, pipeline
from reportgen.config import Config

real_pdf = exporter.Background.pdf

def pdf(self, *args, **kwargs):
    self._print.process.kill()  # the print helper dies just as the PDF is asked of it
    return real_pdf(self, *args, **kwargs)

exporter.Background.pdf = pdf
pipeline.run(sys.argv[1], Config(), Path(sys.argv[2]))
"""


def test_a_dead_print_helper_is_replaced(table, tmp_path):
    result = subprocess.run([sys.executable, "-c", KILL_PRINT_HELPER, str(table),
                             str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "helper process failed (print helper died); doing its work in this process" in \
        result.stderr
    run_dir = only_run(tmp_path / "out")
    forked, _ = run_cli(table, tmp_path / "forked")
    assert pdf_pages(run_dir / "report.pdf") == pdf_pages(forked / "report.pdf")


def test_an_error_in_the_print_helper_is_one_line_and_leaves_no_report(table, tmp_path):
    """A ReportgenError raised while the print helper renders comes back to the main process
    unchanged: exit 2, one line, no half-written run folder."""
    from reportgen.resources import templates_dir

    custom = tmp_path / "templates"
    custom.mkdir()
    page = (templates_dir() / "report_pdf.html.j2").read_text(encoding="utf-8")
    (custom / "report_pdf.html.j2").write_text(
        page.replace("<body>", '<body><img src="https://example.com/x.png">'), encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", str(table), "--out", str(out), "--quiet",
         "--template-dir", str(custom)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: the PDF template asks for a resource that may not be loaded: refused to fetch "
        "'https://example.com/x.png': the PDF renderer never uses the network (use data: URIs "
        "or files in the templates folder)"]
    assert not out.exists() or not any(out.iterdir())
