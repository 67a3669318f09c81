"""report.html in a real browser: headless Chromium (the Debian package, driven through Selenium
and Debian's chromium-driver by tests/support/browser.py) opens the file and every chart must draw,
with no console error.

In CI (CI=true) the browser must be there: .ci/run installs chromium and chromium-driver, the test
extra brings selenium, and a missing piece fails the run instead of skipping the check. Elsewhere
the test skips when one is absent.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reportgen.render import charts
from reportgen.render.html import render_html
from reportgen.report import Changes, MigrationRow, MigrationTable, Report

from .factories import make_report

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

if importlib.util.find_spec("selenium") is None:
    if IN_CI:
        raise RuntimeError("CI=true but selenium is missing: it comes with the test extra")
    pytest.skip("selenium is not installed (pip install -e '.[test]')", allow_module_level=True)

from .support.browser import Chromium, missing  # noqa: E402  (needs selenium)

if (absent := missing()) is not None:
    if IN_CI:
        raise RuntimeError(f"CI=true but {absent}: .ci/run must install it")
    pytest.skip(absent, allow_module_level=True)

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
    path.write_text(render_html(report), encoding="utf-8")
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
    # and the check above can fail: an error, an uncaught exception and a Vega-style warning
    # raised in the page now all reach the console list
    browser.evaluate("""new Promise(function (resolve) {
      console.error("probe error"); console.warn("WARN", "probe warning");
      setTimeout(function () { throw new Error("probe exception"); }, 0);
      setTimeout(resolve, 100);
    })""")
    caught = [(level, text) for level, text in browser.console if "probe" in text]
    assert [level for level, _ in caught] == ["error", "warning", "error"]
    assert "probe exception" in caught[2][1] and "WARN" in caught[1][1]
    # each chart carries its numbers for screen readers
    labels = browser.evaluate(
        "Array.prototype.map.call(document.querySelectorAll('div.chart'), "
        "function (el) { return el.getAttribute('aria-label'); })")
    assert labels and all(label and any(c.isdigit() for c in label) for label in labels)


def test_hovering_a_bar_shows_its_tooltip(browser: Chromium, report: Report) -> None:
    browser.evaluate(WAIT_FOR_CHARTS % json.dumps(["size_value"]))
    browser.hover("#chart-size_value svg .mark-rect path")  # the first bar
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


# Each chart's drawn width against the width its box has, and the page's own width.
WIDTHS = """JSON.stringify({page: document.documentElement.scrollWidth,
  charts: Array.prototype.map.call(document.querySelectorAll("div.chart"), function (el) {
    var svg = el.querySelector("svg");
    return {id: el.id, box: el.clientWidth, drawn: svg ? svg.getBoundingClientRect().width : -1,
            natural: svg ? +svg.getAttribute("width") : -1,
            scrolls: el.scrollWidth > el.clientWidth};
  })})"""


def _with_migration(report: Report) -> Report:
    """The report as a second month: a migration table (4 segments + new × 4 + lost) and
    its chart."""
    names = [s.name for s in report.segments]
    counts = [[90, 5, 3, 0, 4], [2, 80, 6, 1, 3], [0, 4, 70, 9, 2], [1, 0, 5, 99, 6],
              [12, 9, 7, 20, 0]]
    table = MigrationTable(
        columns=[*names, "Lost"], colors=[*(s.color for s in report.segments), "#999999"],
        rows=[MigrationRow(label=label, color=color, customers=row, total=sum(row))
              for label, color, row in zip([*names, "New customers"],
                                           [*(s.color for s in report.segments), "#999999"],
                                           counts, strict=True)])
    changes = Changes(previous_run_id="2014-05-abc", previous_period="May 2014", policy="keep",
                      new_customers=48, lost_customers=15, returning_customers=400,
                      migration=[], segments=[], drift=None, table=table)
    built = charts.build_charts(report.segments, report.features, report.method, None,
                                moves=table, previous_period="May 2014")
    return dataclasses.replace(report, changes=changes,
                               charts={**report.charts, "migration": built["migration"]})


def test_on_a_phone_the_grids_fit_the_screen_and_nothing_widens_the_page(
    report: Report, tmp_path: Path
) -> None:
    second = _with_migration(report)
    path = tmp_path / "report.html"
    path.write_text(render_html(second), encoding="utf-8")
    with Chromium() as phone:
        phone.open(path, width=390, height=800)
        state = phone.evaluate(WAIT_FOR_CHARTS % json.dumps(list(second.charts)))
        assert set(state.values()) == {"drawn"}
        seen = json.loads(phone.evaluate(WIDTHS))
    assert seen["page"] == 390  # no chart or table makes the whole page scroll sideways
    by_id = {c["id"]: c for c in seen["charts"]}
    for name in ("zscore_heatmap", "migration"):
        chart = by_id[f"chart-{name}"]
        assert 0 < chart["drawn"] <= chart["box"] <= 390, chart  # whole, not cut
        assert not chart["scrolls"], chart
        # shrunk no further than legible: at least 70% of its size (10 px text >= 7 px)
        assert chart["drawn"] >= 0.7 * chart["natural"], chart
