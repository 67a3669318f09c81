"""The shortcuts taken for speed give the same results as the plain way."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from reportgen.render import vega
from reportgen.render.email import email_png
from reportgen.render.pdf import print_exports
from reportgen.report import ChartSpec, Report
from reportgen.segment import Silhouette

from .factories import make_report


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
    svg = vega.to_svg(spec)
    assert 'd="M0,0h0v0h0Z"' not in svg and 'display="none"' not in svg
    assert "aria-" not in svg and "<text" in svg
    # the same pixels as Vega's own PNG of the spec
    assert vega.svg_to_png(svg, scale=1) == vega.to_png(spec, scale=1)


def test_email_png_from_the_print_svg_equals_the_one_drawn_from_the_spec(
        report: Report) -> None:
    spec = report.charts["zscore_heatmap"].spec
    assert email_png(spec, vega.to_svg(spec)) == email_png(spec)


def test_charts_are_exported_for_print_in_the_order_the_pdf_shows_them() -> None:
    names = ["k_metrics", "persona_10", "persona_2", "campaigns", "size_value", "persona_1",
             "projection", "zscore_heatmap"]
    spec = make_report().charts["size_value"].spec
    fake = dataclasses.replace(make_report(with_charts=False), charts={
        n: ChartSpec(name=n, title=n, description=n, spec=spec, dense=n == "projection")
        for n in names})
    exported = print_exports(fake)
    assert list(exported) == [
        "size_value", "zscore_heatmap", "projection", "campaigns", "persona_1", "persona_2",
        "persona_10", "k_metrics"]
    # dense charts as PNG (thousands of SVG circles triple WeasyPrint's time), the rest SVG
    assert {n: kind for n, (kind, _) in exported.items()} == {
        n: "png" if n == "projection" else "svg" for n in names}
    assert exported["projection"][1][:8] == b"\x89PNG\r\n\x1a\n"
