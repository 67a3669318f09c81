"""The print report: A4, every chart exported up front and inlined as a data: URI, no network.

WeasyPrint gets plain HTML whose images are ``data:`` URIs, through a URL fetcher that refuses
everything but data: URIs and files under the template folders. Nothing else of WeasyPrint is
used than ``HTML(...).write_pdf()`` and ``URLFetcher``.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

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

Exported = tuple[str, "bytes | str"]  # ("png", bytes) or ("svg", text)


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


_SVG_SIZE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"')


def _svg_size(svg: str) -> tuple[int, int]:
    match = _SVG_SIZE.search(svg[:2000])
    if not match:
        return 560, 300
    return round(float(match.group(1))), round(float(match.group(2)))


def export_for_print(chart: ChartSpec) -> Exported:
    """One chart exported for print: ("png", bytes) if dense (thousands of SVG circles would
    triple WeasyPrint's time), else ("svg", text)."""
    if chart.dense:
        return "png", vega.to_png(chart.spec, scale=PNG_SCALE)
    return "svg", vega.to_svg(chart.spec)


def print_exports(report: Report) -> dict[str, Exported]:
    """Every chart of the report exported for print, in the order the PDF shows them."""
    return {name: export_for_print(report.charts[name])
            for name in sorted(report.charts, key=page_rank)}


def image_from(kind: str, data: bytes | str) -> ChartImage:
    """A ChartImage (data: URI and CSS size) from an exported PNG (at PNG_SCALE) or SVG."""
    if kind == "png":
        assert isinstance(data, bytes)
        w, h = png_size(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
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
    images = images if images is not None else chart_images(report)
    roots = [templates_dir()] + ([template_dir] if template_dir is not None else [])
    fetcher = url_fetcher(roots)
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
