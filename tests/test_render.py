"""HTML and PDF writers: templates render from a real Report, structure, escaping, offline."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pypdf
import pytest

from reportgen import fmt
from reportgen.errors import RefusedResourceError, ReportgenError
from reportgen.render.environment import Assets, ChartImage, environment
from reportgen.render.html import render_html
from reportgen.render.pdf import chart_images, column_roles, render_pdf, url_fetcher
from reportgen.report import Report
from reportgen.resources import templates_dir

from .factories import make_report

XSS = "<script>alert(1)</script>"


pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def pdf(report: Report, tmp_path_factory: pytest.TempPathFactory) -> pypdf.PdfReader:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    path.write_bytes(render_pdf(report))
    return pypdf.PdfReader(path)


class Page(HTMLParser):
    """Collects what the structure tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data

    def with_class(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and cls in a.get("class", "").split()]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


# ----------------------------------------------------------------------------- environment

def test_filters_format_numbers_for_a_marketing_reader(report: Report) -> None:
    env = environment()
    tpl = env.from_string(
        "{{ 0.213|pct }} {{ 76234|money }} {{ 1200000|money }} {{ 54|money }} "
        "{{ 2240|num }} {{ 1.23|signed }} {{ -0.8|signed }} {{ 0.25|unit('share') }}")
    assert tpl.render(report=report) == "21% $76k $1.2M $54 2,240 +1.2 \u22120.8 25%"
    euro = Report(**{**report.__dict__, "currency": "€"})
    assert env.from_string("{{ 76234|money }}").render(report=euro) == "€76k"


def test_a_missing_variable_fails_the_render_instead_of_printing_blank() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ report.nope }}").render(report=make_report(
            with_charts=False))


def test_every_template_renders_from_a_real_report(report: Report) -> None:
    env = environment()
    assets = Assets(images=chart_images(report),
                           column_roles=column_roles(report))
    names = [p.name for p in templates_dir().glob("*.j2") if not p.name.startswith("_")]
    assert {"report.html.j2", "report_pdf.html.j2"} <= set(names)
    for name in names:
        text = env.get_template(name).render(report=report, assets=assets)
        assert report.segments[0].name in text, name


def test_a_user_template_dir_is_searched_first(report: Report, tmp_path: Path) -> None:
    (tmp_path / "report.html.j2").write_text(
        '{% import "_parts.html.j2" as parts with context %}'
        "<h1>Custom {{ report.title }}</h1>{{ parts.glance_table(report) }}", encoding="utf-8")
    out = render_html(report, template_dir=tmp_path)
    assert out.startswith("<h1>Custom Customer segmentation</h1>")
    assert "Affluent wine lovers" in out  # the built-in partials are still found


def test_templates_dir_is_the_checkout_templates_folder() -> None:
    assert (templates_dir() / "report.html.j2").is_file()


# ----------------------------------------------------------------------------- HTML

def test_html_has_one_persona_section_per_segment(html: str, report: Report) -> None:
    page = parse(html)
    sections = page.with_class("section", "persona")
    assert [s["id"] for s in sections] == [f"segment-{s.id}" for s in report.segments]
    text = re.sub(r"\s+", " ", html)
    for s in report.segments:
        assert s.name in text and s.story in text
        for a in s.actions:
            assert a.title in text and a.evidence in text
    for t in report.top_actions:
        assert t.action.title in text
    for line in report.attention:
        assert line in text


def test_html_inlines_the_vega_bundle_once_and_embeds_every_placed_chart(
    html: str, report: Report
) -> None:
    page = parse(html)
    assert len(page.scripts) == 2
    assert sum("window.vegaEmbed=" in s for s in page.scripts) == 1
    placed = {a["id"].removeprefix("chart-") for t, a in page.tags
              if t == "div" and a.get("id", "").startswith("chart-")}
    assert placed == set(report.charts)
    init = page.scripts[1]
    assert json.dumps({"actions": False, "mode": "vega-lite", "renderer": "svg"}) in init
    for name in report.charts:
        assert json.dumps(name) in init


def test_html_loads_nothing_from_anywhere(html: str) -> None:
    """The real guarantee: no attribute points off the page, no CSS import or remote url(),
    and a Content-Security-Policy forbids any fetch. (The Vega bundle does contain URL
    strings: XML namespaces, an error message, the editor link that actions:false hides.)"""
    page = parse(html)
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "poster", "data", "srcset"):
            value = attrs.get(key, "")
            assert not re.match(r"\s*(https?:|//|ftp:)", value, re.I), (tag, key, value)
    for style in page.styles:
        assert "@import" not in style
        assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", style, re.I)
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") ==
           "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    # outside the bundle (a JS library we do not write), no URL at all
    assert "http" not in page.scripts[1]
    assert not re.search(r"https?://", "".join(page.styles))


def test_a_persona_name_with_markup_is_escaped_everywhere(tmp_path: Path) -> None:
    names = [XSS, "Established families", "Deal-seeking web shoppers", "Budget young parents"]
    evil = make_report(names=names)
    html = render_html(evil)
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "alert(1)" in html  # still shown, as text; and inside the JSON specs as \u003c…
    # one script element for the bundle and one for the charts: the name added none
    assert len(parse(html).scripts) == 2
    path = tmp_path / "evil.pdf"
    path.write_bytes(render_pdf(evil))
    assert XSS in pypdf.PdfReader(path).pages[5].extract_text()


# ----------------------------------------------------------------------------- PDF

def test_pdf_has_cover_summary_chart_persona_and_appendix_pages(
    pdf: pypdf.PdfReader, report: Report
) -> None:
    texts = [p.extract_text() for p in pdf.pages]
    k = len(report.segments)
    assert "Customer segmentation" in texts[0] and "NORTHWIND FOOD & WINE" in texts[0].upper()
    assert "Executive summary" in texts[1] and "Three things to do this month" in texts[1]
    assert "Who the segments are" in texts[2]
    assert "How they differ" in texts[3]
    assert "What, where and how they buy" in texts[4]
    for i, s in enumerate(report.segments):
        own = texts[5 + i]
        assert f"SEGMENT {s.id} OF {k}" in own.upper()
        assert s.name in own
        for other in report.segments:
            if other is not s:
                assert other.name not in own.split("SEGMENT")[1]
    appendix = texts[5 + k:]
    assert "Appendix: how the segments were made" in appendix[0]
    assert any("Appendix: data" in t for t in appendix)
    # the appendix stays short (WeasyPrint pays ~10 ms per table row) and nothing else follows
    assert 1 <= len(appendix) <= 3
    assert all("Appendix" in t for t in appendix)  # in the running header of every page
    assert len(texts) == 1 + 1 + 3 + k + len(appendix)


def test_pdf_pages_carry_page_numbers_and_a_running_header(pdf: pypdf.PdfReader) -> None:
    n = len(pdf.pages)
    for i, page in enumerate(pdf.pages):
        assert f"Page {i + 1} of {n}" in page.extract_text()
    assert "Northwind Food & Wine · Customer segmentation · June 2014" in (
        pdf.pages[1].extract_text())


def test_pdf_charts_are_svg_except_dense_ones_which_are_jpeg(report: Report) -> None:
    images = chart_images(report)
    assert set(images) == set(report.charts)
    for name, image in images.items():
        kind = "jpeg" if report.charts[name].dense else "svg+xml"
        assert image.uri.startswith(f"data:image/{kind};base64,"), name
        assert 100 < image.width <= 800 and 50 < image.height < 800, name


def test_pdf_data_dictionary_is_summarised_by_role(report: Report) -> None:
    groups = column_roles(report)
    assert len(groups) < len(report.columns)
    spend = next(g for g in groups if g.role == "spend")
    assert spend.columns[:2] == ["MntWines", "MntFruits"]
    assert sum(len(g.columns) for g in groups) == len(report.columns)


# ----------------------------------------------------------------------------- URL fetcher

def test_url_fetcher_refuses_the_network_and_files_outside_the_templates(tmp_path: Path) -> None:
    fetcher = url_fetcher([templates_dir()])
    with pytest.raises(RefusedResourceError, match="never uses the network"):
        fetcher.fetch("http://example.com/x.png")
    with pytest.raises(RefusedResourceError):
        fetcher.fetch("https://example.com/font.woff2")
    with pytest.raises(RefusedResourceError, match="only use files under"):
        fetcher.fetch("file:///etc/passwd")
    with pytest.raises(RefusedResourceError):
        fetcher.fetch((templates_dir() / ".." / "pyproject.toml").as_uri())
    with pytest.raises(RefusedResourceError):
        fetcher.fetch("file://evil.example.com/share/x.png")


def test_url_fetcher_serves_data_uris_and_template_files() -> None:
    fetcher = url_fetcher([templates_dir()])
    data = fetcher.fetch("data:text/plain;base64,aGVsbG8=")
    assert data.read() == b"hello"
    data.close()
    css = fetcher.fetch((templates_dir() / "print.css").as_uri())
    assert b"@page" in css.read()
    css.close()


def test_the_pdf_html_names_each_chart_by_a_short_url_the_fetcher_serves(report: Report) -> None:
    from reportgen.render.pdf import CHART_SCHEME, in_memory

    images = chart_images(report)
    shown, served = in_memory(images)
    assert set(shown) == set(images)
    for name, image in images.items():
        url = shown[name].uri
        assert url == f"{CHART_SCHEME}:{name}"
        assert (shown[name].width, shown[name].height) == (image.width, image.height)
        mime = "image/jpeg" if report.charts[name].dense else "image/svg+xml"
        assert served[url][0] == mime
        assert base64.b64encode(served[url][1]).decode() == image.uri.split(",", 1)[1]
    fetcher = url_fetcher([templates_dir()], served)
    name = next(iter(images))
    response = fetcher.fetch(f"{CHART_SCHEME}:{name}")
    assert response.read() == served[f"{CHART_SCHEME}:{name}"][1]
    assert response.content_type == served[f"{CHART_SCHEME}:{name}"][0]
    response.close()
    with pytest.raises(RefusedResourceError, match="no such chart"):
        fetcher.fetch(f"{CHART_SCHEME}:nope")
    with pytest.raises(RefusedResourceError, match="no such chart"):
        url_fetcher([templates_dir()]).fetch(f"{CHART_SCHEME}:{name}")
    # a URI that is not base64 data is left to WeasyPrint as it is
    odd = {"a": ChartImage("data:image/svg+xml,%3Csvg%3E", 1, 1),
           "b": ChartImage("data:image/png;base64,!!", 1, 1)}
    assert in_memory(odd) == (odd, {})


def test_a_template_asking_for_a_remote_image_fails_the_pdf_clearly(
    report: Report, tmp_path: Path
) -> None:
    (tmp_path / "report_pdf.html.j2").write_text(
        '<p>{{ report.title }}</p><img src="http://example.com/logo.png">', encoding="utf-8")
    with pytest.raises(ReportgenError, match="'report.template_dir' asks for a resource the "
                       "PDF may not load: refused to fetch 'http://example.com/logo.png'"):
        render_pdf(report, template_dir=tmp_path)


def test_a_score_valued_undated_report_has_no_currency_and_no_empty_date() -> None:
    """Mall-style tables: the value is a spending score, not money, and there may be no date."""
    scored = dataclasses.replace(make_report(with_charts=False), value_unit="number",
                                 value_label="spending score", as_of="")
    env = environment()
    assets = Assets(column_roles=column_roles(scored))
    html = env.get_template("report.html.j2").render(report=scored, assets=assets)
    text = env.get_template("email.txt.j2").render(report=scored, assets=assets)
    headline = scored.headline
    assert f"Total spending score {fmt.num(headline.total_value)}," in text
    assert "$" not in text.split("THE SEGMENTS")[0]
    for s in scored.segments:
        assert f"{fmt.num(s.value_per_customer)} per customer" in text
    assert f"<dd>{fmt.num(headline.total_value)}</dd>" in html
    assert "as of ." not in html and "as of ." not in text.lower()


def test_built_in_templates_are_compiled_once_into_the_cache_folder(report, tmp_path,
                                                                     monkeypatch) -> None:
    """The built-in templates' compiled code is kept in the cache folder: a later process
    renders the same HTML from it; a cache that cannot be made only costs the compiling, and
    a user's template folder is never cached."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", str(cache))
    environment.cache_clear()
    try:
        compiled = render_html(report)
        kept = sorted((cache / "jinja").glob("reportgen-*.cache"))
        assert len(kept) >= 2  # report.html.j2 and the parts it includes
        environment.cache_clear()  # as a new process: the code comes from the files
        assert render_html(report) == compiled
        assert sorted((cache / "jinja").glob("reportgen-*.cache")) == kept
        for path in kept:
            path.unlink()
        (cache / "jinja").rmdir()
        (cache / "jinja").write_text("not a folder")
        environment.cache_clear()
        assert render_html(report) == compiled
        assert environment(None).bytecode_cache is None
        assert environment(tmp_path).bytecode_cache is None
    finally:
        environment.cache_clear()
