"""The Jinja2 environment and the HTML / PDF writers.

Every template gets the same two things: ``report`` (the Report, the single source of truth)
and ``assets`` (an ``Assets``: what the code built for this output: the Vega JavaScript for
the HTML, chart images for the PDF). Templates lay these out; they never compute.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from . import __version__, branding, charts, fmt
from .errors import ReportgenError
from .report import ChartSpec, ColumnInfo, Report
from .resources import templates_dir

if TYPE_CHECKING:
    import weasyprint

log = logging.getLogger(__name__)

HTML_TEMPLATE = "report.html.j2"
PDF_TEMPLATE = "report_pdf.html.j2"
PNG_SCALE = 2  # dense charts: sharp at print resolution, still small

# vega-embed options: no actions menu (it links to the online Vega editor), and the mode is
# given because the specs carry no $schema URL.
EMBED_OPTIONS: dict[str, Any] = {"actions": False, "mode": "vega-lite", "renderer": "svg"}

__all__ = [
    "Assets",
    "chart_image",
    "chart_images",
    "ChartImage",
    "ChartSource",
    "export_for_print",
    "image_from",
    "print_specs",
    "column_roles",
    "environment",
    "RefusedResourceError",
    "render_html",
    "render_pdf",
    "RoleGroup",
    "templates_dir",
    "url_fetcher",
]


@dataclass(frozen=True)
class ChartImage:
    """A chart image: its URI and, when known, its size in CSS pixels (the PDF's charts
    are sized by layout when it draws them: their size is 0 there)."""

    uri: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Assets:
    """What a template gets besides the Report; all of it built by code, none of it user data.

    vega_js: the Vega + Vega-Lite + vega-embed bundle, inlined once (HTML only).
    embed_options: options passed to every vegaEmbed call (HTML only).
    images: chart name -> ChartImage (PDF: data: URIs; email: cid: URIs).
    column_roles: the data dictionary's columns grouped by role (PDF only: one table row per
        role instead of one per column keeps WeasyPrint's table time down, trap 5).
    generator: "reportgen <version>", for the colophon.
    """

    vega_js: Markup = Markup("")
    embed_options: dict[str, Any] = field(default_factory=lambda: dict(EMBED_OPTIONS))
    images: dict[str, ChartImage] = field(default_factory=dict)
    column_roles: list[RoleGroup] = field(default_factory=list)
    generator: str = f"reportgen {__version__}"
    logo: ChartImage | None = None  # email only: the logo by cid (the reports use report.logo)


@dataclass(frozen=True)
class RoleGroup:
    """The input columns that share a role, for the printed data dictionary."""

    role: str
    columns: list[str]
    missing: int  # blank cells over these columns
    notes: list[str]


def column_roles(report: Report) -> list[RoleGroup]:
    """Group ``report.columns`` by role, in order of first appearance."""
    groups: dict[str, list[ColumnInfo]] = {}
    for c in report.columns:
        groups.setdefault(c.role, []).append(c)
    return [
        RoleGroup(role=role, columns=[c.column for c in cols],
                  missing=sum(c.missing for c in cols),
                  notes=list(dict.fromkeys(c.note for c in cols if c.note)))
        for role, cols in groups.items()
    ]


# ----------------------------------------------------------------------------- environment

@jinja2.pass_context
def _money(ctx: jinja2.runtime.Context, value: float) -> str:
    report = ctx.get("report")
    return fmt.money(value, getattr(report, "currency", "$"))


@jinja2.pass_context
def _by_unit(ctx: jinja2.runtime.Context, value: float, unit: str) -> str:
    report = ctx.get("report")
    return fmt.by_unit(value, unit, getattr(report, "currency", "$"))


@jinja2.pass_context
def _value(ctx: jinja2.runtime.Context, value: float) -> str:
    """An amount of the report's value measure: money for spend, a plain number for a score."""
    report = ctx.get("report")
    return fmt.by_unit(value, getattr(report, "value_unit", "money"),
                       getattr(report, "currency", "$"))


def _num(value: float, digits: int = 0) -> str:
    return fmt.num(value, digits)


def _autoescape(name: str | None) -> bool:
    # everything is HTML except the plain-text email, where "&amp;" would be shown as such
    return not (name or "").endswith(".txt.j2")


@functools.lru_cache(maxsize=8)
def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The one Jinja environment: a user template dir (if any) is searched before the
    built-in templates; autoescape on; a missing variable is an error, not a blank."""
    search = [str(template_dir)] if template_dir is not None else []
    search.append(str(templates_dir()))
    # A template folder of the user's is code reportgen did not write: it runs in Jinja's
    # sandbox (no attribute starting with _, no unsafe callables, bounded range()), so
    # {{ cycler.__init__.__globals__.os.popen('id').read() }} fails instead of running a
    # shell. The built-in templates alone keep the plain environment (and its speed).
    kind = jinja2.Environment if template_dir is None else SandboxedEnvironment
    env = kind(
        loader=jinja2.FileSystemLoader(search),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # formatting only: templates never compute
    env.filters.update(
        pct=fmt.pct,
        money=_money,
        value=_value,
        num=_num,
        signed=charts.signed,
        unit=_by_unit,
        ink_on=branding.ink_on,
        text_on_white=branding.text_on_white,
    )
    return env


def _render(template: str, report: Report, assets: Assets, template_dir: Path | None) -> str:
    env = environment(template_dir)
    return env.get_template(template).render(report=report, assets=assets)


# ----------------------------------------------------------------------------- HTML

def render_html(report: Report, template_dir: Path | None = None, *,
                bundle_cache: Path | None = None, vega_js: str | None = None) -> str:
    """The interactive report: one self-contained file that works offline.

    The Vega JavaScript is inlined once; each chart is a ``vegaEmbed`` call on its spec.
    ``vega_js``: the bundle if the caller already has it (exporter.Background builds it in a
    helper process); otherwise it is built here (``bundle_cache``: see
    ``charts.javascript_bundle``).
    """
    start = time.perf_counter()
    if vega_js is None:
        vega_js = charts.javascript_bundle(bundle_cache)
    # "</script" inside the bundle would end the script element early; it has none today,
    # and this keeps it that way whatever vl-convert ships next.
    js = vega_js.replace("</script", "<\\/script")
    html = _render(HTML_TEMPLATE, report, Assets(vega_js=Markup(js)), template_dir)
    log.debug("render_html: %.2f s, %d KB", time.perf_counter() - start, len(html) // 1024)
    return html


# ----------------------------------------------------------------------------- PDF

class RefusedResourceError(ValueError):
    """The PDF renderer was asked for something outside the data: URIs and template files."""


def _png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])  # IHDR: the first chunk of every PNG
    return int(width), int(height)


_SVG_SIZE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"')


def _svg_size(svg: str) -> tuple[int, int]:
    match = _SVG_SIZE.search(svg[:2000])
    if not match:
        return 560, 300
    return round(float(match.group(1))), round(float(match.group(2)))


def image_from(kind: str, data: bytes | str) -> ChartImage:
    """A ChartImage (data: URI and CSS size) from an exported PNG (at PNG_SCALE) or SVG."""
    if kind == "png":
        assert isinstance(data, bytes)
        w, h = _png_size(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        return ChartImage(uri, round(w / PNG_SCALE), round(h / PNG_SCALE))
    assert isinstance(data, str)
    w, h = _svg_size(data)
    uri = "data:image/svg+xml;base64," + base64.b64encode(data.encode("utf-8")).decode("ascii")
    return ChartImage(uri, w, h)


def print_specs(report: Report) -> dict[str, ChartSpec]:
    """The charts to export for print (``export_for_print``), in the order the PDF shows them
    (an export helper sends them in this order while layout waits for each)."""
    return {name: report.charts[name] for name in sorted(report.charts, key=charts.page_rank)}


def chart_image(chart: ChartSpec) -> ChartImage:
    """Export one chart for print, in this process, as a data: URI."""
    return image_from(*export_for_print(chart))


def chart_images(report: Report) -> dict[str, ChartImage]:
    """Every chart of the report exported once for print."""
    return {name: chart_image(chart) for name, chart in report.charts.items()}


def _local_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise RefusedResourceError(f"refused to fetch {url!r}: remote file URL")
    return Path(unquote(parts.path)).resolve()


@functools.cache
def _fetcher_class() -> type:
    # defined on first use: importing WeasyPrint costs ~0.5 s and the HTML does not need it
    import weasyprint

    class LocalOnlyFetcher(weasyprint.URLFetcher):
        """Serves data: URIs and files under its roots; refuses everything else."""

        def __init__(self, roots: Sequence[Path]) -> None:
            # fail_on_errors: a refused or missing resource stops the render instead of
            # silently leaving a hole in the PDF
            super().__init__(allowed_protocols=("data", "file"), fail_on_errors=True)
            self.roots = [Path(r).resolve() for r in roots]

        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                path = _local_path(url)
                if any(path.is_relative_to(root) for root in self.roots):
                    return super().fetch(url, headers)
                raise RefusedResourceError(
                    f"refused to read {path}: the PDF may only use files under "
                    + ", ".join(str(r) for r in self.roots))
            raise RefusedResourceError(
                f"refused to fetch {url!r}: the PDF renderer never uses the network")

    return LocalOnlyFetcher


def url_fetcher(roots: Sequence[Path]) -> weasyprint.URLFetcher:
    """A WeasyPrint URL fetcher that serves ``data:`` URIs and files under ``roots`` and
    refuses everything else (network, other files) with ``RefusedResourceError``."""
    return _fetcher_class()(roots)


ChartSource = Callable[[str], "tuple[str, bytes | str]"]
CHART_URI = "reportgen-chart:"  # the PDF template's src for a chart, drawn by _LazyChart


def export_for_print(chart: ChartSpec) -> tuple[str, bytes | str]:
    """One chart exported for print: ("png", bytes) if dense (thousands of SVG circles would
    triple WeasyPrint's time), else ("svg", text)."""
    if chart.dense:
        return "png", charts.to_png(chart.spec, scale=PNG_SCALE)
    return "svg", charts.to_svg(chart.spec)


class _LazyChart:
    """A chart as WeasyPrint's layout sees it, exported only when layout first reaches it.

    ``source(name)`` may wait for the charts helper process (exporter.py), which exports the
    charts in page order while this process lays out the pages before them: export and layout
    overlap instead of following each other. Once the data is there, this is exactly the image
    WeasyPrint makes for a data: URI; sizes and drawing are delegated to it.
    """

    def __init__(self, name: str, source: ChartSource, fetcher: Any, fonts: Any) -> None:
        self._name, self._source, self._fetcher = name, source, fetcher
        self._context = _FontsOnly(fonts)
        self._real: Any = None

    def _image(self) -> Any:
        if self._real is None:
            import weasyprint
            from weasyprint.images import get_image_from_uri

            kind, data = self._source(self._name)
            self._real = get_image_from_uri(
                cache={}, url_fetcher=self._fetcher, options=dict(weasyprint.DEFAULT_OPTIONS),
                url=image_from(kind, data).uri, context=self._context)
            if self._real is None:
                raise ReportgenError(f"chart {self._name!r} could not be drawn in the PDF")
        return self._real

    def get_intrinsic_size(self, resolution: float, font_size: float) -> Any:
        return self._image().get_intrinsic_size(resolution, font_size)

    def draw(self, stream: Any, width: float, height: float, style: Any) -> None:
        self._image().draw(stream, width, height, style)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._image(), name)


class _FontsOnly:
    """What a chart's SVG needs of WeasyPrint's layout context: the document's fonts (for its
    text). Vega's SVGs embed no images and no hyphenated text."""

    def __init__(self, font_config: Any) -> None:
        self.font_config = font_config
        self.dictionaries: dict[Any, Any] = {}

    def get_image_from_uri(self, **_: Any) -> None:
        return None


class _Failures(logging.Handler):
    """Collects what WeasyPrint logs as errors (an image it could not load or draw)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:200])


@functools.cache
def _lazy_charts_supported() -> bool:
    """WeasyPrint takes images from the ``cache`` dict by URL (true of version 70, the one
    pyproject.toml asks for at least); if a later version stops, the charts are exported up
    front instead. tests/test_fast_paths.py checks that both ways give the same PDF."""
    try:
        import inspect

        from weasyprint.images import get_image_from_uri

        return list(inspect.signature(get_image_from_uri).parameters)[:4] == \
            ["cache", "url_fetcher", "options", "url"]
    except (ImportError, ValueError):
        return False


def render_pdf(report: Report, path: Path | None, template_dir: Path | None = None, *,
               source: ChartSource | None = None) -> bytes:
    """The print report: A4, charts inlined, no network; written to ``path`` (if given) and
    returned as bytes.

    ``source(name)`` gives a chart exported for print (see ``export_for_print``); it may wait
    for another process. Layout asks for each chart when it reaches it. Without a source the
    charts are exported here."""
    import weasyprint

    start = time.perf_counter()
    if source is None:
        source = lambda name: export_for_print(report.charts[name])  # noqa: E731
    roots = [templates_dir()] + ([template_dir] if template_dir is not None else [])
    fetcher = url_fetcher(roots)
    fonts = weasyprint.text.fonts.FontConfiguration()
    if _lazy_charts_supported():
        images = {name: ChartImage(CHART_URI + name) for name in report.charts}
        cache: dict[str, Any] = {CHART_URI + name: _LazyChart(name, source, fetcher, fonts)
                                 for name in report.charts}
    else:
        images = {name: image_from(*source(name)) for name in report.charts}
        cache = {}
    assets = Assets(images=images, column_roles=column_roles(report))
    html = _render(PDF_TEMPLATE, report, assets, template_dir)
    document = weasyprint.HTML(string=html, base_url=str(roots[-1]), url_fetcher=fetcher)
    failures = _Failures()
    weasy_log = logging.getLogger("weasyprint")
    weasy_log.addHandler(failures)
    try:
        pdf = bytes(document.write_pdf(cache=cache, font_config=fonts))
    except weasyprint.urls.FatalURLFetchingError as exc:
        cause = exc.__cause__ or exc
        raise ReportgenError(
            f"the PDF template asks for a resource that may not be loaded: {cause}",
            hint="use data: URIs or files in the templates folder",
        ) from None
    finally:
        weasy_log.removeHandler(failures)
    if failures.messages:
        # WeasyPrint logs an image it cannot draw and leaves a hole: a PDF with a chart
        # missing is a half-written report, so it is an error here.
        raise ReportgenError(f"the PDF could not be drawn completely: {failures.messages[0]}")
    if path is not None:
        path.write_bytes(pdf)
    log.debug("render_pdf: %.2f s", time.perf_counter() - start)
    return pdf


# ----------------------------------------------------------------------------- email

EMAIL_TEMPLATE = "email.html.j2"
EMAIL_TEXT_TEMPLATE = "email.txt.j2"
# What a phone screen can take: who the segments are and how they differ. The rest is one tap
# away in the attached PDF.
EMAIL_CHARTS = ("size_value", "zscore_heatmap")
EMAIL_CONTENT_WIDTH = 552  # the 600 px layout less 24 px padding either side
EMAIL_PNG_SCALE = 2  # sharp on high-density screens
MAX_EMAIL_HTML = 100_000  # Gmail clips a message body over 102 KB behind "[Message clipped]"


@dataclass(frozen=True)
class InlineImage:
    """An image the email shows by Content-ID: ``<img src="cid:{cid}">``."""

    name: str  # chart name, or "logo"
    cid: str  # the Content-ID without angle brackets
    filename: str  # the file written beside email.html, e.g. email-size_value.png
    data: bytes
    width: int  # display size in CSS pixels
    height: int
    alt: str
    mime: str = "image/png"


@dataclass(frozen=True)
class Email:
    """The email summary: subject, HTML (CSS inlined, images by cid:), plain text, images."""

    subject: str
    html: str
    text: str
    images: list[InlineImage]

    def files(self) -> dict[str, bytes]:
        """File name -> bytes, for the run folder."""
        out = {"email.html": self.html.encode("utf-8"), "email.txt": self.text.encode("utf-8")}
        out.update({i.filename: i.data for i in self.images})
        return out

    def manifest(self) -> dict[str, Any]:
        """What ``reportgen email`` needs to rebuild the message from the run folder."""
        return {"subject": self.subject, "html": "email.html", "text": "email.txt",
                "images": [{"cid": i.cid, "file": i.filename, "mime": i.mime}
                           for i in self.images]}


def email_subject(report: Report) -> str:
    company = f"{report.company}: " if report.company else ""
    return f"{company}{report.title}, {report.period}"


def email_specs(report: Report) -> dict[str, dict[str, Any]]:
    """The charts the email shows, {name: Vega-Lite spec}, each to export as PNG at
    EMAIL_PNG_SCALE."""
    return {name: report.charts[name].spec for name in EMAIL_CHARTS if name in report.charts}


def email_png(spec: dict[str, Any], svg: str | None = None) -> bytes:
    """One chart as the email's PNG: drawn at EMAIL_PNG_SCALE, then reduced to a 256-colour
    palette (flat chart colours survive; the files shrink ~8x, which a phone on a mobile
    connection notices). ``svg``: the chart's print SVG if already exported; rasterising it
    gives the same pixels as drawing the spec again, in a third of the time. A pure function,
    so it can run in a helper process."""
    import io

    from PIL import Image  # WeasyPrint's own dependency

    png = charts.svg_to_png(svg, scale=EMAIL_PNG_SCALE) if svg is not None else \
        charts.to_png(spec, scale=EMAIL_PNG_SCALE)
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGBA").quantize(256, method=Image.Quantize.FASTOCTREE,
                                               dither=Image.Dither.NONE)
        out = io.BytesIO()
        small.save(out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def email_images(report: Report, exported: dict[str, tuple[str, bytes | str]] | None = None
                 ) -> dict[str, bytes]:
    """The email's charts as PNG (``email_pngs`` of ``email_specs``)."""
    return email_pngs(email_specs(report), exported)


def email_pngs(specs: dict[str, dict[str, Any]],
               exported: dict[str, tuple[str, bytes | str]] | None = None) -> dict[str, bytes]:
    """``email_png`` of each spec (name -> Vega-Lite spec). ``exported``: the print export
    (``export_for_print`` per chart), whose SVGs are reused."""
    exported = exported or {}
    return {name: email_png(spec, svg_of(exported.get(name))) for name, spec in specs.items()}


def svg_of(item: tuple[str, bytes | str] | None) -> str | None:
    """The SVG text of an exported chart, or None if it was exported as PNG (or not at all)."""
    return item[1] if item is not None and item[0] == "svg" and isinstance(item[1], str) \
        else None


def _fit(width: int, height: int, scale: float) -> tuple[int, int]:
    """Display size of an image of ``width`` x ``height`` device pixels at ``scale``, no wider
    than the email's content column."""
    w, h = width / scale, height / scale
    if w > EMAIL_CONTENT_WIDTH:
        w, h = EMAIL_CONTENT_WIDTH, h * EMAIL_CONTENT_WIDTH / w
    return round(w), round(h)


def _logo_png(report: Report) -> bytes | None:
    """The logo as PNG: mail clients (Gmail, Outlook) do not show SVG images."""
    if not report.logo:
        return None
    mime, data = branding.decode_data_uri(report.logo)
    if mime == "image/png":
        return data
    if mime == "image/svg+xml":
        return bytes(charts._vlc().svg_to_png(data.decode("utf-8"), scale=2))
    return None  # JPEG: sent as it is (see below)


def _logo_image(report: Report) -> InlineImage | None:
    if not report.logo:
        return None
    mime, data = branding.decode_data_uri(report.logo)
    if mime == "image/jpeg":
        name, png = "email-logo.jpg", None
    else:
        png = _logo_png(report)
        assert png is not None
        data, mime, name = png, "image/png", "email-logo.png"
    # the header shows the logo at most 40 px high and 200 px wide
    w, h = _image_size(data, mime)
    scale = max(h / 40, w / 200, 1.0)
    alt = report.company or "logo"
    return InlineImage(name="logo", cid=f"logo.{report.run_id}@reportgen", filename=name,
                       data=data, width=round(w / scale), height=round(h / scale), alt=alt,
                       mime=mime)


def _image_size(data: bytes, mime: str) -> tuple[int, int]:
    if mime == "image/png":
        return _png_size(data)
    # JPEG: walk the markers to the first start-of-frame
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return int(width), int(height)
        i += 2 + length
    return 200, 40


def _inline_css(html: str) -> str:
    import css_inline

    # keep_at_rules: the dark-mode @media block stays in <style> (Apple Mail, iOS Mail and
    # Outlook on the web apply it); everything else moves into style attributes, which is all
    # that Gmail keeps. Nothing is ever fetched.
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False,
                                    minify_css=True)
    return str(inliner.inline(html))


def render_email(report: Report, images_png: dict[str, bytes],
                 template_dir: Path | None = None) -> Email:
    """The email summary from the same Report: a 600 px table layout with every style inlined,
    no script, the charts as PNG by Content-ID with their numbers as alt text, and a plain-text
    alternative. ``images_png``: chart name -> PNG at EMAIL_PNG_SCALE (``email_images``)."""
    start = time.perf_counter()
    images: list[InlineImage] = []
    for name in EMAIL_CHARTS:
        if name not in images_png or name not in report.charts:
            continue
        png = images_png[name]
        w, h = _fit(*_png_size(png), EMAIL_PNG_SCALE)
        images.append(InlineImage(
            name=name, cid=f"{name}.{report.run_id}@reportgen", filename=f"email-{name}.png",
            data=png, width=w, height=h, alt=report.charts[name].description))
    logo = _logo_image(report)
    assets = Assets(
        images={i.name: ChartImage(f"cid:{i.cid}", i.width, i.height) for i in images},
        logo=ChartImage(f"cid:{logo.cid}", logo.width, logo.height) if logo else None,
    )
    env = environment(template_dir)
    html = _inline_css(env.get_template(EMAIL_TEMPLATE).render(report=report, assets=assets))
    text = env.get_template(EMAIL_TEXT_TEMPLATE).render(report=report, assets=assets)
    if len(html.encode("utf-8")) > MAX_EMAIL_HTML:
        log.warning("email.html is %d KB: Gmail clips messages over 102 KB",
                    len(html.encode("utf-8")) // 1000)
    log.debug("render_email: %.3f s, %d KB", time.perf_counter() - start, len(html) // 1000)
    return Email(subject=email_subject(report), html=html, text=text,
                 images=([logo] if logo else []) + images)
