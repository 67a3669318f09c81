"""Whose failure is it: the user's template or logo (exit 2, naming the setting) or ours (a bug,
exit 1)."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pypdf
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.errors import ConfigError
from reportgen.render import charts
from reportgen.render.email import render_email
from reportgen.render.environment import ChartImage
from reportgen.render.html import render_html
from reportgen.render.pdf import chart_images, render_pdf
from reportgen.report import Report

from .factories import make_report
from .tables import marketing_table, write_tsv

BROKEN_SVG = "data:image/svg+xml;base64," + base64.b64encode(b"<svg><g></svg").decode()


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


def test_a_user_template_with_a_missing_variable_names_the_setting_the_file_and_the_line(
        report: Report, tmp_path: Path) -> None:
    (tmp_path / "report.html.j2").write_text("<h1>{{ report.title }}</h1>\n{{ report.nope }}\n",
                                             encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        render_html(report, tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'report.html.j2'}, line 2: a template of 'report.template_dir' failed: "
        "'reportgen.report.Report object' has no attribute 'nope'")


def test_a_user_template_with_a_syntax_error_names_the_setting(report: Report,
                                                                tmp_path: Path) -> None:
    (tmp_path / "email.txt.j2").write_text("one\n{% if %}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"email.txt.j2, line 2: a template of "
                                          r"'report.template_dir' failed"):
        render_email(report, {}, tmp_path)


def test_a_user_template_including_a_missing_part_names_the_setting(report: Report,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "report.html.j2").write_text('{% include "_mine.html.j2" %}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"report.html.j2, line 1: .*_mine.html.j2"):
        render_html(report, tmp_path)


def test_a_built_in_template_failing_is_a_bug_even_with_a_template_dir(
        report: Report, tmp_path: Path) -> None:
    # the user's folder replaces only the email; the built-in HTML template breaks on a Report
    # that cannot be (segments must be a list): that is ours, not a ConfigError
    (tmp_path / "email.html.j2").write_text("<p>{{ report.title }}</p>", encoding="utf-8")
    broken = dataclasses.replace(report, segments=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        render_html(broken, tmp_path)


def test_a_chart_weasyprint_cannot_draw_is_a_bug_not_a_hole_in_the_pdf(report: Report) -> None:
    images = chart_images(report)
    images["size_value"] = ChartImage(BROKEN_SVG, 560, 300)
    with pytest.raises(RuntimeError, match="the PDF could not be drawn completely"):
        render_pdf(report, images=images)


def test_a_logo_weasyprint_cannot_draw_names_report_logo(report: Report) -> None:
    with pytest.raises(ConfigError, match=r"'report.logo' cannot be drawn in the PDF"):
        render_pdf(dataclasses.replace(report, logo=BROKEN_SVG))


def test_a_logo_that_cannot_become_the_emails_png_names_report_logo(report: Report) -> None:
    with pytest.raises(ConfigError, match=r"'report.logo' cannot be drawn as PNG for the email"):
        render_email(dataclasses.replace(report, logo=BROKEN_SVG), {})


def test_the_pdf_gets_every_chart_as_a_data_uri_drawn_on_its_page(report: Report) -> None:
    images = chart_images(report)
    assert set(images) == set(report.charts)
    assert all(i.uri.startswith(("data:image/svg+xml;base64,", "data:image/jpeg;base64,"))
               and i.width > 0 and i.height > 0 for i in images.values())
    import io

    pages = pypdf.PdfReader(io.BytesIO(render_pdf(report, images=images))).pages
    drawn = sum(len(p["/Resources"].get("/XObject", {})) for p in pages)
    assert drawn >= len(report.charts)  # each chart is an XObject (SVG form or JPEG image)


# ----------------------------------------------------------------------------- exit codes

@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tsv(marketing_table(30), tmp_path_factory.mktemp("in") / "t.tsv")


def test_cli_a_broken_user_template_exits_2_with_one_line_and_no_report(table: Path,
                                                                        tmp_path: Path) -> None:
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "report_pdf.html.j2").write_text("{{ report.title | nope }}", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "-q",
                                       "--template-dir", str(custom)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {custom / 'report_pdf.html.j2'}, line 1: a template of "
                           "'report.template_dir' failed: ") and "nope" in line
    assert not any(out.iterdir())


def test_cli_a_chart_vl_convert_cannot_export_is_a_bug_exit_1(
        table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One of our chart specs that vl-convert rejects (exported in the print worker): exit 1,
    the worker's error in the message, nothing written."""
    real = charts._spec

    def broken(chart: object) -> dict[str, object]:
        spec = real(chart)
        return {**spec, "mark": "nope"} if "mark" in spec else spec

    monkeypatch.setattr(charts, "_spec", broken)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "-q",
                                       "--format", "pdf"])
    assert result.exit_code == 1, result.output
    assert "Error: internal error (ValueError: Vega-Lite to PNG conversion failed" in \
        result.stderr and "this is a bug in reportgen" in result.stderr
    assert not any(out.iterdir())


def test_cli_a_chart_the_email_cannot_export_is_a_bug_exit_1(
        table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The email's PNGs are exported in the background thread too (no PDF asked: drawn from
    the spec): a chart vl-convert refuses (data from a URL; size_value, an email chart, has
    its data at the top) is the same bug, exit 1, and no partial folder is left."""
    real = charts._spec

    def broken(chart: object) -> dict[str, object]:
        spec = real(chart)
        return {**spec, "data": {"url": "https://example.com/data.csv"}} if "data" in spec \
            else spec

    monkeypatch.setattr(charts, "_spec", broken)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "-q",
                                       "--format", "html,email"])
    assert result.exit_code == 1, result.output
    assert "Error: internal error (ValueError: " in result.stderr and "not allowed" in \
        result.stderr and "this is a bug in reportgen" in result.stderr
    assert not any(out.iterdir())
