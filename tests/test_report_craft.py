"""The craft of the PDF and the HTML report: contents with page references, nothing cut across
pages, fonts embedded, tooltips on every chart, a sortable segments table, a bounded size
whatever the number of customers, branding."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from reportgen.config import Config
from reportgen.render import branding
from reportgen.render.environment import Assets, render_template
from reportgen.render.html import render_html
from reportgen.render.pdf import PDF_TEMPLATE, chart_images, column_roles, render_pdf, url_fetcher
from reportgen.report import Report
from reportgen.resources import templates_dir

from .factories import make_points, make_report, make_segments, walk_dicts

# what a reader must never see split between two pages
UNBREAKABLE = {"chart-figure", "card", "cover-segment", "kpi", "stats", "trait"}


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    from reportgen import pipeline

    cfg = Config().with_overrides(report__formats=["json"])
    return pipeline.run(None, cfg, tmp_path_factory.mktemp("sample")).report


def layout(report: Report) -> Any:
    """The WeasyPrint layout of the PDF (pages and boxes), without writing it."""
    import weasyprint

    assets = Assets(images=chart_images(report),
                           column_roles=column_roles(report))
    html = render_template(PDF_TEMPLATE, report, assets)
    roots = [templates_dir()]
    return weasyprint.HTML(string=html, base_url=str(roots[0]),
                           url_fetcher=url_fetcher(roots)).render()


def _elements(box: Any) -> Iterator[Any]:
    for child in box.descendants():
        if getattr(child, "element", None) is not None:
            yield child.element


def split_across_pages(document: Any) -> list[str]:
    """Every unbreakable element (a chart, a card, a body table row...) found on two pages."""
    root = document.pages[0]._page_box.children[0].element
    parent = {child: p for p in root.iter() for child in p}
    pages: dict[int, tuple[Any, set[int]]] = {}
    for number, page in enumerate(document.pages, start=1):
        for el in _elements(page._page_box):
            classes = set((el.get("class") or "").split())
            body_row = el.tag == "tr" and parent[el].tag != "thead"  # headers repeat by design
            if body_row or classes & UNBREAKABLE:
                pages.setdefault(id(el), (el, set()))[1].add(number)
    return [f"{el.tag}.{el.get('class')} {''.join(el.itertext())[:50]!r} on pages {sorted(ps)}"
            for el, ps in pages.values() if len(ps) > 1]


# ----------------------------------------------------------------------------- PDF

def test_nothing_is_cut_across_pages_in_the_factory_report(report: Report) -> None:
    assert split_across_pages(layout(report)) == []


def test_nothing_is_cut_across_pages_in_the_sample_report(sample_report: Report) -> None:
    assert split_across_pages(layout(sample_report)) == []


def test_nothing_is_cut_with_many_segments(report: Report) -> None:
    segments = [dataclasses.replace(s, id=i + 1, name=f"{s.name} {i + 1}")
                for i, s in enumerate(make_segments() * 2)]
    big = dataclasses.replace(report, segments=segments,
                              headline=dataclasses.replace(report.headline, k=8), charts={})
    assert split_across_pages(layout(big)) == []


@pytest.fixture(scope="module")
def pdf(report: Report, tmp_path_factory: pytest.TempPathFactory) -> pypdf.PdfReader:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    path.write_bytes(render_pdf(report))
    return pypdf.PdfReader(path)


def test_contents_on_the_cover_give_the_right_page_numbers(
    pdf: pypdf.PdfReader, report: Report
) -> None:
    texts = [p.extract_text() for p in pdf.pages]
    cover = " ".join(texts[0].split())
    assert "CONTENTS" in cover.upper()
    contents = re.split("contents", cover, flags=re.I)[-1]
    entries = {"Executive summary": "Executive summary",
               "Who the segments are": "Who the segments are",
               "Appendix: method": "Appendix: how the segments were made",
               "Appendix: data": "Appendix: data"}
    entries.update({s.name: f"SEGMENT {s.id} OF" for s in report.segments})
    for label, marker in entries.items():
        match = re.search(re.escape(label) + r"[ .]*?(\d+)(?!\d)", contents)
        assert match, f"no contents entry for {label!r}"
        page = int(match.group(1))
        assert marker.upper() in texts[page - 1].upper(), (label, page)


def test_the_pdf_embeds_its_dejavu_fonts(pdf: pypdf.PdfReader) -> None:
    fonts: dict[str, bool] = {}
    for page in pdf.pages:
        resources = page["/Resources"].get_object()
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            base = str(font["/BaseFont"])
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font \
                else font
            descriptor = descendant["/FontDescriptor"].get_object()
            fonts[base] = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts and all(fonts.values()), fonts
    assert all("DejaVu" in name for name in fonts), fonts  # no fallback font sneaked in


def test_brand_colour_and_logo_reach_the_pdf_and_html(report: Report, tmp_path: Path) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="80" height="20">'
                    '<rect width="80" height="20" fill="#c2185b"/></svg>')
    branded = dataclasses.replace(report, primary_color="#0b5394",
                                  logo=branding.logo_data_uri(str(logo)))
    html = render_html(branded)
    assert "--navy: #0b5394" in html and "--on-brand: #ffffff" in html
    assert f'<img class="logo" src="{branded.logo}"' in html
    path = tmp_path / "branded.pdf"
    path.write_bytes(render_pdf(branded))
    cover = pypdf.PdfReader(path).pages[0]
    assert cover["/Resources"].get_object().get("/XObject")  # the logo, drawn as an image


def test_a_light_brand_colour_gets_dark_text() -> None:
    assert branding.ink_on("#ffcc00") == branding.INK
    assert branding.ink_on("#1d3557") == branding.WHITE
    assert branding.text_on_white("#ffcc00") == branding.INK
    assert branding.text_on_white("#0b5394") == "#0b5394"


def test_a_logo_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    from reportgen.errors import ConfigError

    fake = tmp_path / "logo.png"
    fake.write_text("not a png")
    with pytest.raises(ConfigError, match="'report.logo' is not a PNG, JPEG or SVG image"):
        branding.logo_data_uri(str(fake))
    remote = tmp_path / "remote.svg"
    remote.write_text('<svg xmlns="http://www.w3.org/2000/svg"><image href="https://x/y.png"/>'
                      "</svg>")
    with pytest.raises(ConfigError, match="refers to 'https://x/y.png'; reports never fetch"):
        branding.logo_data_uri(str(remote))


# ----------------------------------------------------------------------------- HTML


def test_every_chart_has_tooltips(report: Report) -> None:
    for name, chart in report.charts.items():
        tooltips = [n["tooltip"] for n in walk_dicts(chart.spec)
                    if isinstance(n.get("tooltip"), (list, dict))]
        assert tooltips, f"{name} has no tooltip"


def test_html_stays_under_2mb_whatever_the_number_of_customers() -> None:
    segments = make_segments()
    points = make_points(segments, n=300_000)
    html = render_html(make_report(points=points))
    assert len(html.encode("utf-8")) < 2_000_000


def test_html_segments_table_is_sortable_by_size_and_value(report: Report) -> None:
    html = render_html(report)
    table = re.search(r'<table class="glance sortable">.*?</table>', html, re.S)
    assert table
    keys = re.findall(r'data-sort-key="([^"]+)"', table.group(0))
    assert keys == ["id", "size", "value", "per-customer"]
    for s in report.segments:
        assert f'data-size="{s.size}" data-value="{s.value_share}"' in table.group(0)
    assert "aria-sort" in html  # the sorting script (the real sort is tested in Chromium)
