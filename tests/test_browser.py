"""report.html in a real browser: headless Chromium (the Debian package, driven over the DevTools
protocol by reportgen.browser) opens the file and every chart must draw, with no console error.

In CI (CI=true) Chromium must be there: .ci/run installs it, and a missing browser fails the
run instead of skipping the check. Elsewhere the test skips when Chromium is absent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from reportgen import render
from reportgen.browser import Chromium, find_chromium
from reportgen.report import Report

from .factories import make_report

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

if find_chromium() is None:
    if IN_CI:
        raise RuntimeError("CI=true but Chromium is missing: .ci/run must install chromium")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

# Resolves when every chart div holds an svg or a canvas, or holds the error text the
# report's script writes when vegaEmbed fails, or after 20 s.
WAIT_FOR_CHARTS = """new Promise(function (resolve) {
  var names = %s, start = Date.now();
  (function poll() {
    var state = {};
    names.forEach(function (n) {
      var el = document.getElementById("chart-" + n);
      state[n] = !el ? "missing" : el.querySelector("svg, canvas") ? "drawn"
               : el.textContent ? "error: " + el.textContent : "pending";
    });
    var pending = names.some(function (n) { return state[n] === "pending"; });
    if (!pending || Date.now() - start > 20000) { resolve(state); } else { setTimeout(poll, 50); }
  })();
})"""

ROW_SIZES = ("Array.prototype.map.call(document.querySelectorAll('table.sortable tbody tr'), "
             "function (r) { return +r.getAttribute('data-size'); })")


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def browser(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render.render_html(report), encoding="utf-8")
    with Chromium() as chromium:
        chromium.open(path, width=1280, height=900)
        yield chromium


def test_every_chart_draws_in_chromium_without_console_errors(
    browser: Chromium, report: Report
) -> None:
    state = browser.evaluate(WAIT_FOR_CHARTS % json.dumps(list(report.charts)))
    assert state == {name: "drawn" for name in report.charts}
    problems = [(level, text) for level, text in browser.console
                if level == "error" or "WARN" in text]
    assert problems == []
    # each chart carries its numbers for screen readers
    labels = browser.evaluate(
        "Array.prototype.map.call(document.querySelectorAll('div.chart'), "
        "function (el) { return el.getAttribute('aria-label'); })")
    assert labels and all(label and any(c.isdigit() for c in label) for label in labels)


def test_hovering_a_bar_shows_its_tooltip(browser: Chromium, report: Report) -> None:
    browser.evaluate(WAIT_FOR_CHARTS % json.dumps(["size_value"]))
    # the centre of the first bar of the size/value chart, in page coordinates
    box = browser.evaluate("""(function () {
      var el = document.querySelector('#chart-size_value svg .mark-rect path');
      el.scrollIntoView({block: 'center'});
      var r = el.getBoundingClientRect();
      return {x: r.left + r.width / 2, y: r.top + r.height / 2};
    })()""")
    for kind in ("mouseMoved", "mouseMoved"):  # Vega shows the tooltip on the second move
        browser.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"]})
        box = {"x": box["x"] + 1, "y": box["y"]}
    text = browser.evaluate("""new Promise(function (resolve) {
      var start = Date.now();
      (function poll() {
        var tip = document.getElementById('vg-tooltip-element');
        if (tip && tip.classList.contains('visible')) { resolve(tip.textContent); }
        else if (Date.now() - start > 5000) { resolve(null); }
        else { setTimeout(poll, 50); }
      })();
    })""")
    first = report.segments[0]
    assert text is not None and first.name in text and "of customers" in text


def test_the_segments_table_sorts_by_size_and_value(browser: Chromium, report: Report) -> None:
    sizes = [s.size for s in report.segments]
    assert browser.evaluate(ROW_SIZES) == sizes
    browser.evaluate("document.querySelector('th[data-sort-key=size] button').click()")
    assert browser.evaluate(ROW_SIZES) == sorted(sizes, reverse=True)
    assert browser.evaluate("document.querySelector('th[data-sort-key=size]')"
                            ".getAttribute('aria-sort')") == "descending"
    browser.evaluate("document.querySelector('th[data-sort-key=size] button').click()")
    assert browser.evaluate(ROW_SIZES) == sorted(sizes)
    browser.evaluate("document.querySelector('th[data-sort-key=value] button').click()")
    by_value = [s.size for s in sorted(report.segments, key=lambda s: -s.value_share)]
    assert browser.evaluate(ROW_SIZES) == by_value
    browser.evaluate("document.querySelector('th[data-sort-key=id] button').click()")
    assert browser.evaluate(ROW_SIZES) == sizes  # back to the report's order
