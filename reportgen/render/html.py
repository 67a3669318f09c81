"""The interactive report: one self-contained HTML file that works offline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from markupsafe import Markup

from ..report import Report
from . import vega
from .environment import Assets, render_template

log = logging.getLogger(__name__)

HTML_TEMPLATE = "report.html.j2"


def render_html(report: Report, template_dir: Path | None = None) -> str:
    """The report as one HTML page: the Vega JavaScript inlined once (``vega.vega_bundle``),
    each chart a ``vegaEmbed`` call on its spec; nothing is fetched when it is opened."""
    start = time.perf_counter()
    # "</script" inside the bundle would end the script element early; it has none today,
    # and this keeps it that way whatever vl-convert ships next.
    js = vega.vega_bundle().replace("</script", "<\\/script")
    html = render_template(HTML_TEMPLATE, report, Assets(vega_js=Markup(js)), template_dir)
    log.debug("render_html: %.2f s, %d KB", time.perf_counter() - start, len(html) // 1024)
    return html
