"""Words for leadership (issue 12, item 8) and the migration chart (issue 10): plain words up
front and the method in the appendix; chart alt text in the markup, never printed; the
migration chart in a second month's report and in none of a first month's; no "undated" on
the pages of a table without dates. Read from real runs through the CLI (PDF text with pypdf)."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from markupsafe import escape
from pypdf import PdfReader

from reportgen import assemble
from reportgen.cli import main
from reportgen.render.html import render_html

from .factories import make_report
from .series_tables import group_months
from .tables import marketing_table, write_tsv

FAST = "[segment]\nstability_runs = 0\n"
# What a director must not meet up front: the method's words (the appendix keeps them).
JARGON = ("standard deviation", "Dimension 1", "Dimension 2", "partition of a continuum",
          "overlap with itself")


def _run(table: Path, out: Path, config: Path) -> Path:
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "--config",
                                       str(config), "--format", "html,pdf,email", "--json"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """June then July of the three-kinds table, one series: the run folders."""
    root = tmp_path_factory.mktemp("words")
    config = root / "fast.toml"
    config.write_text(FAST)
    runs = []
    for month in group_months()[:2]:
        table = write_tsv(month.frame, root / f"{month.period}.tsv")
        runs.append(_run(table, root / "out", config))
    return runs


def _summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def _pdf_text(run: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(run / "report.pdf").pages)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_migration_chart_is_in_the_second_months_report_only(months: list[Path]) -> None:
    june, july = (_summary(run) for run in months)
    assert "migration" not in june["charts"]
    assert "chart-migration" not in (months[0] / "report.html").read_text()
    assert not (months[0] / "email-migration.png").exists()
    chart = july["charts"]["migration"]
    table = july["changes"]["table"]
    # the chart draws the migration table, cell by cell: rows are June's segments then the
    # new customers, columns July's segments then the lost
    cells = {(row["from"], row["to"]): row["customers"]
             for data in chart["spec"]["datasets"].values() for row in data if "to" in row
             and "customers" in row}
    expected = {(r["label"], col): n for r in table["rows"]
                for col, n in zip(table["columns"], r["customers"], strict=True)}
    assert cells == expected
    assert table["rows"][-1]["label"] == "New customers" and table["columns"][-1] == "Lost"
    assert sum(n for (src, _), n in cells.items() if src == "New customers") == \
        july["changes"]["new_customers"]
    assert sum(n for (_, dst), n in cells.items() if dst == "Lost") == \
        july["changes"]["lost_customers"]
    # bounded: one row per cell of the (k + 1) × (k + 1) table, whatever the customers
    assert len(cells) == len(table["rows"]) * len(table["columns"])
    # every output shows it: the HTML draws the spec, the PDF prints its title, the email
    # attaches its PNG by Content-ID
    html = (months[1] / "report.html").read_text()
    assert 'id="chart-migration"' in html and '"migration":' in html
    assert chart["title"] in _flat(_pdf_text(months[1]))
    email = (months[1] / "email.html").read_text()
    assert "cid:migration." in email
    assert (months[1] / "email-migration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_alt_text_is_in_the_markup_and_not_printed(months: list[Path]) -> None:
    run = months[1]
    charts = _summary(run)["charts"]
    html = (run / "report.html").read_text()
    pdf = _flat(_pdf_text(run))
    visible = _flat(htmllib.unescape(re.sub(r"<[^>]+>", " ", html.split("<script>")[0])))
    for name, chart in charts.items():
        description = chart["description"]
        assert f'aria-label="{escape(description)}"' in html, name
        assert description not in visible, name  # not printed beside the chart
        assert description[:60] not in pdf, name
    assert 'class="alt"' not in html
    email_alts = [htmllib.unescape(alt) for alt in
                  re.findall(r'alt="([^"]*)"', (run / "email.html").read_text())]
    assert charts["migration"]["description"] in email_alts  # images off: its numbers


def test_no_method_jargon_up_front_and_the_method_in_the_appendix(months: list[Path]) -> None:
    run = months[1]
    pdf = _flat(_pdf_text(run))
    front, _, appendix = pdf.partition("Appendix: how the segments were made")
    assert appendix, "the appendix heading is in the PDF"
    for word in JARGON:
        assert word not in front, word
    assert not re.search(r"\bSD\b", front)
    assert "Index: 100 = the average customer" in front  # the heatmap's key
    assert "Silhouette of the result" in appendix and "Jaccard" not in front
    email = _flat(re.sub(r"<[^>]+>", " ", (run / "email.html").read_text()))
    assert "standard deviation" not in email and "100 is the average customer" in email


def test_an_undated_table_prints_no_undated_header(tmp_path: Path) -> None:
    config = tmp_path / "fast.toml"
    config.write_text(FAST)
    frame = marketing_table(40).drop(columns=["Dt_Customer"])
    run = _run(write_tsv(frame, tmp_path / "nodates.tsv"), tmp_path / "out", config)
    summary = _summary(run)
    assert summary["period"] == "" and summary["as_of"] == ""
    # the run id (a folder name: undated-<hash>) is the one place the word may stay
    pdf = _pdf_text(run).replace(summary["run_id"], "RUN")
    assert "undated" not in pdf.lower()
    first = PdfReader(run / "report.pdf").pages[1].extract_text()
    assert "Customer segmentation" in first  # the running header, without a period
    assert "undated" not in (run / "report.html").read_text().replace(summary["run_id"],
                                                                      "RUN").lower()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["email"]["subject"] == "Customer segmentation"


def test_stability_and_overlap_are_said_in_plain_words() -> None:
    report = make_report()
    html = render_html(report)
    visible = _flat(htmllib.unescape(re.sub(r"<[^>]+>", " ", html.split("<script>")[0])))
    stable = next(s for s in report.segments if s.stability is not None and not s.tentative)
    assert (f"Holds together {round(stable.stability * 100)}% of it is found again when the "
            "model is refitted on other customers") in visible
    assert "overlap with itself" not in visible
    assert not re.search(r"[+\u2212]\d\.\d SD\b", visible)  # no z-scores beside the traits
    # the definition is in the appendix
    appendix = visible.partition("How the segments were made")[2]
    assert '"holds together: 75%" is a Jaccard index of 0.75' in appendix


def _attention(silhouette: float) -> list[str]:
    segments = make_report(with_charts=False).segments
    return assemble.attention(
        segments, SimpleNamespace(silhouette=silhouette),  # type: ignore[arg-type]
        SimpleNamespace(excluded=[]),  # type: ignore[arg-type]
        SimpleNamespace(frame=pd.DataFrame(), meta={}, value="total_spend",  # type: ignore[arg-type]
                        value_label="spend"),
        SimpleNamespace(overall_mean={}), "$")  # type: ignore[arg-type]


def test_overlapping_segments_are_said_plainly_without_the_silhouette() -> None:
    notes = _attention(0.15)
    overlap = [n for n in notes if "overlap" in n]
    assert overlap == ["The segments overlap: customers shade from one segment into the next, "
                       "so treat the boundaries as soft; a customer near one could sit in "
                       "either."]
    assert not any("silhouette" in n or "continuum" in n for n in notes)
    assert not any("overlap" in n for n in _attention(0.4))
    tentative = [n for n in notes if "tentative" in n]
    assert tentative and all("stability 0." not in n and "% of it is found again" in n
                             for n in tentative)
