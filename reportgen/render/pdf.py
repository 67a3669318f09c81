"""The print report: A4, every chart exported up front and handed over in memory, no network.

The charts reach ``render_pdf`` as ``data:`` URIs (``chart_images``); WeasyPrint gets plain HTML
that names each one by a short ``reportgen-chart:`` URL instead, served from memory by a URL
fetcher that refuses everything but those, data: URIs and files under the template folders.
Nothing else of WeasyPrint is used than ``HTML(...).write_pdf()``, ``URLFetcher`` and
``URLFetcherResponse``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import logging
import re
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ..errors import ConfigError, RefusedResourceError
from ..report import ChartSpec, ColumnInfo, Report
from ..resources import templates_dir
from . import vega
from .environment import Assets, ChartImage, RoleGroup, render_template

if TYPE_CHECKING:
    import weasyprint

log = logging.getLogger(__name__)

PDF_TEMPLATE = "report_pdf.html.j2"
PNG_SCALE = 2  # dense charts: sharp at print resolution, still small
# The dense charts go into the PDF as JPEG: WeasyPrint embeds a JPEG as it is, where it decodes
# a PNG and compresses its pixels again (0.05 s a chart); at this quality, without chroma
# subsampling, no pixel of a chart moves by more than a tenth of its range (mean 0.4/255).
JPEG_QUALITY = 95

Exported = tuple[str, "bytes | str"]  # ("jpeg", bytes) or ("svg", text)


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


# ----------------------------------------------------------------------------- chart images

# The order report_pdf.html.j2 shows the charts in: these, the persona_<id> charts in id
# order, then the appendix's k_metrics (and any other chart after that, by name).
PAGE_ORDER = ("migration", "trend", "size_value", "zscore_heatmap", "projection", "income_value",
              "product_mix", "channel_mix", "campaigns", "rfm_grid")


def page_rank(name: str) -> tuple[int, int, str]:
    """Sort key putting chart names in the order the PDF shows them."""
    if name in PAGE_ORDER:
        return 0, PAGE_ORDER.index(name), name
    if name.startswith("persona_") and name[8:].isdigit():
        return 1, int(name[8:]), name
    return 2, 0, name


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG."""
    width, height = struct.unpack(">II", data[16:24])  # IHDR: the first chunk of every PNG
    return int(width), int(height)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height in pixels of a JPEG (its first start-of-frame), None if it has none."""
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
    return None


_SVG_SIZE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"')


def _svg_size(svg: str) -> tuple[int, int]:
    match = _SVG_SIZE.search(svg[:2000])
    if not match:
        return 560, 300
    return round(float(match.group(1))), round(float(match.group(2)))


def export_for_print(chart: ChartSpec) -> Exported:
    """One chart exported for print: ("jpeg", bytes) at PNG_SCALE if dense (thousands of SVG
    circles would triple WeasyPrint's time), else ("svg", text)."""
    if chart.dense:
        return "jpeg", print_jpeg(vega.to_png(chart.spec, scale=PNG_SCALE))
    return "svg", vega.to_svg(chart.spec)


def print_jpeg(png: bytes) -> bytes:
    """A chart's PNG as the PDF's JPEG (JPEG_QUALITY, no chroma subsampling), drawn on white
    where it is transparent, as it shows on the page."""
    import io

    from PIL import Image  # WeasyPrint's own dependency

    with Image.open(io.BytesIO(png)) as image:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, "white")
        out = io.BytesIO()
        Image.alpha_composite(white, rgba).convert("RGB").save(
            out, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return out.getvalue()


def print_exports(report: Report) -> dict[str, Exported]:
    """Every chart of the report exported for print, in the order the PDF shows them."""
    return {name: export_for_print(report.charts[name])
            for name in sorted(report.charts, key=page_rank)}


def image_from(kind: str, data: bytes | str) -> ChartImage:
    """A ChartImage (data: URI and CSS size) from an exported JPEG or PNG (at PNG_SCALE) or
    SVG."""
    if kind in ("jpeg", "png"):
        assert isinstance(data, bytes)
        w, h = (png_size(data) if kind == "png" else jpeg_size(data)) or (0, 0)
        uri = f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")
        return ChartImage(uri, round(w / PNG_SCALE), round(h / PNG_SCALE))
    assert isinstance(data, str)
    w, h = _svg_size(data)
    uri = "data:image/svg+xml;base64," + base64.b64encode(data.encode("utf-8")).decode("ascii")
    return ChartImage(uri, w, h)


def chart_images(report: Report, exported: dict[str, Exported] | None = None
                 ) -> dict[str, ChartImage]:
    """Every chart of the report as a print image (``exported``: the print exports if the
    caller has them, see ``print_exports``)."""
    exported = exported if exported is not None else print_exports(report)
    return {name: image_from(*exported[name]) for name in report.charts}


# ----------------------------------------------------------------------------- fetching

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
        """Serves data: URIs, files under its roots and the charts it holds in memory;
        refuses everything else."""

        def __init__(self, roots: Sequence[Path],
                     charts: dict[str, tuple[str, bytes]] | None = None) -> None:
            # fail_on_errors: a refused or missing resource stops the render instead of
            # silently leaving a hole in the PDF
            super().__init__(allowed_protocols=("data", "file"), fail_on_errors=True)
            self.roots = [Path(r).resolve() for r in roots]
            self.charts = dict(charts or {})

        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == CHART_SCHEME:
                if url not in self.charts:
                    raise RefusedResourceError(f"refused to fetch {url!r}: no such chart")
                mime, data = self.charts[url]
                return weasyprint.urls.URLFetcherResponse(url, data, {"Content-Type": mime})
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


def url_fetcher(roots: Sequence[Path], charts: dict[str, tuple[str, bytes]] | None = None
                ) -> weasyprint.URLFetcher:
    """A WeasyPrint URL fetcher that serves ``data:`` URIs, files under ``roots`` and
    ``charts`` (``reportgen-chart:`` URL -> (MIME type, bytes), see ``in_memory``) and
    refuses everything else (network, other files) with ``RefusedResourceError``."""
    return _fetcher_class()(roots, charts)


CHART_SCHEME = "reportgen-chart"


def in_memory(images: dict[str, ChartImage]
              ) -> tuple[dict[str, ChartImage], dict[str, tuple[str, bytes]]]:
    """``images`` with each base64 data: URI replaced by a ``reportgen-chart:<name>`` URL,
    and what those URLs serve (URL -> (MIME type, bytes)) for ``url_fetcher``.

    The same images for WeasyPrint, ~1.4 MB less HTML: its parser reads a long attribute
    value chunk by chunk, 0.09 s of a report's PDF for the charts' data: URIs alone. A URI
    that is not base64 data stays as it is."""
    shown: dict[str, ChartImage] = {}
    served: dict[str, tuple[str, bytes]] = {}
    for name, image in images.items():
        head, comma, payload = image.uri.partition(",")
        if image.uri.startswith("data:") and comma and head.endswith(";base64"):
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                shown[name] = image  # WeasyPrint says what is wrong with it
                continue
            url = f"{CHART_SCHEME}:{quote(name, safe='')}"
            served[url] = (head[5:-7].split(";")[0] or "text/plain", data)
            image = dataclasses.replace(image, uri=url)
        shown[name] = image
    return shown, served


# ----------------------------------------------------------------------------- the PDF

class _Failures(logging.Handler):
    """Collects what WeasyPrint logs as errors (an image it could not load or draw): the
    message and its arguments (the image's URL among them)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[tuple[str, tuple[Any, ...]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.records.append((record.getMessage()[:200], args))


def _overrides(template_dir: Path | None) -> bool:
    """Whether ``template_dir`` holds any file the PDF could use instead of a built-in one."""
    return template_dir is not None and any(p.is_file() for p in Path(template_dir).iterdir())


def render_pdf(report: Report, template_dir: Path | None = None, *,
               images: dict[str, ChartImage] | None = None) -> bytes:
    """The print report as PDF bytes.

    ``images``: chart name -> ChartImage with a data: URI (``chart_images``); exported here
    when not given. Failures: a resource refused or an image WeasyPrint cannot draw is a
    ConfigError when it comes from the user's ``report.template_dir`` or ``report.logo``;
    from the built-in templates or the charts it is a bug and raised as such."""
    import weasyprint

    start = time.perf_counter()
    images, served = in_memory(images if images is not None else chart_images(report))
    roots = [templates_dir()] + ([template_dir] if template_dir is not None else [])
    fetcher = url_fetcher(roots, served)
    assets = Assets(images=images, column_roles=column_roles(report))
    html = render_template(PDF_TEMPLATE, report, assets, template_dir)
    document = weasyprint.HTML(string=html, base_url=str(roots[-1]), url_fetcher=fetcher)
    failures = _Failures()
    weasy_log = logging.getLogger("weasyprint")
    weasy_log.addHandler(failures)
    try:
        pdf = bytes(document.write_pdf())
    except weasyprint.urls.FatalURLFetchingError as exc:
        if not _overrides(template_dir):
            raise  # the built-in templates only use data: URIs and their own files
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"a template of 'report.template_dir' asks for a resource the PDF may not load: "
            f"{cause}", file=str(template_dir),
            hint="use data: URIs or files in the templates folder") from None
    finally:
        weasy_log.removeHandler(failures)
    # WeasyPrint logs an image it cannot draw and leaves a hole: a PDF with a hole is a
    # half-written report, so it is an error, the user's only if the image was theirs.
    if report.logo and any(isinstance(a, str) and a[:200] == report.logo[:200]
                           for _, args in failures.records for a in args):
        raise ConfigError("'report.logo' cannot be drawn in the PDF (WeasyPrint could not "
                          "render the image)", hint="export it again as PNG")
    if failures.records:
        if _overrides(template_dir):
            raise ConfigError("a template of 'report.template_dir' has an image the PDF "
                              f"cannot draw: {failures.records[0][0]}", file=str(template_dir))
        raise RuntimeError(f"the PDF could not be drawn completely: {failures.records[0][0]}")
    log.debug("render_pdf: %.2f s", time.perf_counter() - start)
    return pdf
