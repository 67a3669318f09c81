"""The email summary from the same Report: a 600 px table layout with every style inlined, no
script, the charts as PNG by Content-ID with their numbers as alt text, and a plain-text
alternative."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..report import Report
from . import branding, vega
from .environment import Assets, ChartImage, render_template
from .pdf import Exported, jpeg_size, png_size

log = logging.getLogger(__name__)

EMAIL_TEMPLATE = "email.html.j2"
EMAIL_TEXT_TEMPLATE = "email.txt.j2"
# What a phone screen can take: who the segments are and how they differ. The rest is one tap
# away in the attached PDF.
EMAIL_CHARTS = ("migration", "trend", "size_value", "zscore_heatmap")
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
    return f"{company}{report.title}" + (f", {report.period}" if report.period else "")


def email_specs(report: Report) -> dict[str, dict[str, Any]]:
    """The charts the email shows, {name: Vega-Lite spec}, each to export as PNG at
    EMAIL_PNG_SCALE."""
    return {name: report.charts[name].spec for name in EMAIL_CHARTS if name in report.charts}


def email_png(spec: dict[str, Any], svg: str | None = None) -> bytes:
    """One chart as the email's PNG: drawn at EMAIL_PNG_SCALE, then reduced to a 256-colour
    palette (flat chart colours survive; the files shrink ~8x, which a phone on a mobile
    connection notices). ``svg``: the chart's print SVG if already exported; rasterising it
    gives the same pixels as drawing the spec again, in a third of the time."""
    import io

    from PIL import Image  # WeasyPrint's own dependency

    png = vega.svg_to_png(svg, scale=EMAIL_PNG_SCALE) if svg is not None else \
        vega.to_png(spec, scale=EMAIL_PNG_SCALE)
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGBA").quantize(256, method=Image.Quantize.FASTOCTREE,
                                               dither=Image.Dither.NONE)
        out = io.BytesIO()
        small.save(out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def email_images(report: Report, exported: dict[str, Exported] | None = None
                 ) -> dict[str, bytes]:
    """The email's charts as PNG (``email_pngs`` of ``email_specs``)."""
    return email_pngs(email_specs(report), exported)


def email_pngs(specs: dict[str, dict[str, Any]],
               exported: dict[str, Exported] | None = None) -> dict[str, bytes]:
    """``email_png`` of each spec (name -> Vega-Lite spec). ``exported``: the print export
    (``export_for_print`` per chart), whose SVGs are reused."""
    exported = exported or {}
    return {name: email_png(spec, svg_of(exported.get(name))) for name, spec in specs.items()}


def svg_of(item: Exported | None) -> str | None:
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
        try:
            return vega.svg_to_png(data.decode("utf-8"), scale=2)
        except Exception as exc:  # the user's SVG, not ours: theirs to fix
            raise ConfigError(f"'report.logo' cannot be drawn as PNG for the email ({exc})",
                              hint="export it as PNG") from None
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
        return png_size(data)
    return jpeg_size(data) or (200, 40)


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
        w, h = _fit(*png_size(png), EMAIL_PNG_SCALE)
        images.append(InlineImage(
            name=name, cid=f"{name}.{report.run_id}@reportgen", filename=f"email-{name}.png",
            data=png, width=w, height=h, alt=report.charts[name].description))
    logo = _logo_image(report)
    assets = Assets(
        images={i.name: ChartImage(f"cid:{i.cid}", i.width, i.height) for i in images},
        logo=ChartImage(f"cid:{logo.cid}", logo.width, logo.height) if logo else None,
    )
    html = _inline_css(render_template(EMAIL_TEMPLATE, report, assets, template_dir))
    text = render_template(EMAIL_TEXT_TEMPLATE, report, assets, template_dir)
    if len(html.encode("utf-8")) > MAX_EMAIL_HTML:
        log.warning("email.html is %d KB: Gmail clips messages over 102 KB",
                    len(html.encode("utf-8")) // 1000)
    log.debug("render_email: %.3f s, %d KB", time.perf_counter() - start, len(html) // 1000)
    return Email(subject=email_subject(report), html=html, text=text,
                 images=([logo] if logo else []) + images)
