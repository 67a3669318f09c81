"""The shortcuts taken for speed give the same results as the plain way."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from reportgen import charts, render, resources
from reportgen.report import Report
from reportgen.segment import Silhouette

from .factories import make_report
from .test_exporter import pdf_pages


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.mark.parametrize("sample", [50, 300, 5000])  # shared distances, all rows, too many
def test_silhouette_equals_sklearns_sampled_silhouette(sample: int) -> None:
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(c, 1.0, size=(100, 4)) for c in (0, 4, 8)])
    score = Silhouette(x, sample, seed=7)
    for k in (2, 3, 5):
        labels = np.arange(len(x)) % k if k == 5 else np.repeat(np.arange(3), 100) % k
        expected = silhouette_score(x, labels, sample_size=min(sample, len(x)), random_state=7)
        assert score(labels) == pytest.approx(expected, abs=1e-12)


def test_silhouette_of_one_sampled_label_is_zero() -> None:
    x = np.arange(40, dtype=float).reshape(20, 2)
    assert Silhouette(x, 10, seed=0)(np.zeros(20, dtype=int)) == 0.0


def test_print_svg_drops_only_what_draws_nothing(report: Report) -> None:
    spec = report.charts["size_value"].spec
    svg = charts.to_svg(spec)
    assert 'd="M0,0h0v0h0Z"' not in svg and 'display="none"' not in svg
    assert "aria-" not in svg and "<text" in svg
    # the same pixels as Vega's own PNG of the spec
    assert charts.svg_to_png(svg, scale=1) == charts.to_png(spec, scale=1)


def test_email_png_from_the_print_svg_equals_the_one_drawn_from_the_spec(
        report: Report) -> None:
    spec = report.charts["zscore_heatmap"].spec
    assert render.email_png(spec, charts.to_svg(spec)) == render.email_png(spec)


def test_print_order_follows_the_pdf_pages() -> None:
    names = ["k_metrics", "persona_10", "persona_2", "campaigns", "size_value", "persona_1",
             "projection", "zscore_heatmap"]
    fake = dataclasses.replace(make_report(with_charts=False), charts={
        n: render.ChartSpec(name=n, title=n, description=n, spec={}) for n in names})
    assert list(render.print_specs(fake)) == [
        "size_value", "zscore_heatmap", "projection", "campaigns", "persona_1", "persona_2",
        "persona_10", "k_metrics"]


def test_lazy_charts_give_the_same_pdf_as_charts_exported_up_front(
        report: Report, tmp_path: Path) -> None:
    asked: list[str] = []
    exported = {name: render.export_for_print(chart) for name, chart in report.charts.items()}

    def source(name: str) -> tuple[str, bytes | str]:
        asked.append(name)
        return exported[name]

    render.render_pdf(report, tmp_path / "lazy.pdf", source=source)
    with mock.patch.object(render, "_lazy_charts_supported", return_value=False):
        render.render_pdf(report, tmp_path / "eager.pdf", source=exported.__getitem__)
    assert sorted(asked) == sorted(report.charts)  # each chart asked for once
    assert asked == list(render.print_specs(report))  # in page order
    assert pdf_pages(tmp_path / "lazy.pdf") == pdf_pages(tmp_path / "eager.pdf")


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", str(tmp_path))
    assert resources.cache_dir() == tmp_path
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", "off")
    assert resources.cache_dir() is None
    monkeypatch.delenv("REPORTGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.cache_dir() == tmp_path / "xdg" / "reportgen"


def test_a_chart_weasyprint_cannot_draw_fails_the_pdf_instead_of_leaving_a_hole(
        report: Report, tmp_path: Path) -> None:
    """WeasyPrint only logs an SVG it cannot draw; render_pdf turns that into an error."""
    exported = {name: render.export_for_print(chart) for name, chart in report.charts.items()}
    with mock.patch.object(render._FontsOnly, "__init__",  # no fonts: SVG text cannot be set
                           lambda self, font_config: setattr(self, "font_config", None)), \
            pytest.raises(render.ReportgenError, match="could not be drawn completely"):
        render.render_pdf(report, tmp_path / "holes.pdf", source=exported.__getitem__)
    assert not (tmp_path / "holes.pdf").exists()
