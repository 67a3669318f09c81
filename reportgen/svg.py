"""An SVG logo made safe to inline: data, not a document.

An SVG is XML that can fetch (``<image href="http://…">``, ``url(http://…)``, ``@import``),
read local files (``href="/etc/…"``), run script, expand entities (external ones, or the
"billion laughs") and declare a canvas that aborts the rasteriser (60000×60000). A regular
expression on the text misses ``&#104;ttp://``; so the logo is parsed (entities refused before
parsing), checked element by element on the parsed values, and written out again, so what is
inlined is exactly what was checked. Anything that would reach outside the file is refused with
one line naming ``report.logo``; editor metadata (Inkscape, Sodipodi, RDF) is dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .errors import ConfigError

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
MAX_SIDE = 10_000  # px: a logo is drawn at most a few hundred pixels wide
# Elements that run code, embed other documents or change the picture over time
REFUSED = {"script", "foreignObject", "iframe", "embed", "object", "audio", "video", "canvas",
           "handler", "listener", "animate", "animateMotion", "animateTransform",
           "animateColor", "set", "discard", "feImage"}
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.I)
_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*>", re.I)
_LENGTH = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*")
_PX = {"px": 1.0, None: 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54,
       "in": 96.0}

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


def _refuse(what: str, file: str, hint: str = "export the logo as a plain SVG or a PNG") -> \
        ConfigError:
    return ConfigError(f"'report.logo' {what}", file=file, hint=hint)


def safe_svg(data: bytes, file: str) -> bytes:
    """The SVG ``data`` checked and written out again, or a ConfigError naming report.logo."""
    if re.search(rb"<!ENTITY", data, re.I) or re.search(rb"<!DOCTYPE[^>]*\[", data, re.I):
        raise _refuse("declares XML entities (an SVG logo needs none)", file)
    data = _DOCTYPE.sub(b"", data)  # an external DTD is never fetched: leave it out
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise _refuse(f"is not a well-formed SVG ({exc})", file) from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise _refuse("is not an SVG image (its root element is not <svg>)", file)
    _check_canvas(root, file)
    _clean(root, file)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _local(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return None, name


def _clean(element: ET.Element, file: str) -> None:
    for child in list(element):
        ns, local = _local(child.tag) if isinstance(child.tag, str) else (None, "")
        if ns != SVG_NS:
            element.remove(child)  # editor metadata, comments: not part of the picture
            continue
        if local in REFUSED:
            raise _refuse(f"contains <{local}> (a logo may not run code, animate or embed "
                          "other documents)", file)
        _clean(child, file)
    for name, value in list(element.attrib.items()):
        ns, local = _local(name)
        if ns not in (None, XLINK_NS, XML_NS):
            del element.attrib[name]  # inkscape:label and the like
            continue
        if local.lower().startswith("on"):
            raise _refuse(f"has an event handler ({local}); a logo may not run code", file)
        if local in ("href", "src") and not (value.strip().startswith("#")
                                             or _DATA_IMAGE.fullmatch(value.strip())):
            raise _refuse(f"refers to {_short(value)}; reports never fetch or read anything "
                          "outside the logo", file, hint="embed the image in the SVG (a "
                          "data:image/png URI) or use a PNG")
        _check_urls(value, file)
    if _local(element.tag)[1] == "style" and element.text:
        if "@import" in element.text.lower():
            raise _refuse("imports a style sheet (@import); reports never fetch anything",
                          file)
        _check_urls(element.text, file)


def _check_urls(text: str, file: str) -> None:
    for _, target in _URL.findall(text):
        target = target.strip()
        if not (target.startswith("#") or _DATA_IMAGE.fullmatch(target)):
            raise _refuse(f"refers to {_short(target)}; reports never fetch or read anything "
                          "outside the logo", file, hint="embed the image in the SVG (a "
                          "data:image/png URI) or use a PNG")


def _short(value: str) -> str:
    value = " ".join(value.split())
    return repr(value if len(value) <= 60 else value[:59] + "…")


def _px(value: str | None) -> float | None:
    if value is None or value.strip().endswith("%"):
        return None
    m = _LENGTH.fullmatch(value)
    return float(m.group(1)) * _PX[m.group(2)] if m else None


def _check_canvas(root: ET.Element, file: str) -> None:
    """The size the picture would be drawn at: width and height, else the viewBox."""
    width, height = _px(root.get("width")), _px(root.get("height"))
    box = (root.get("viewBox") or "").replace(",", " ").split()
    if len(box) == 4:
        try:
            vw, vh = abs(float(box[2])), abs(float(box[3]))
        except ValueError:
            shown = _short(root.get("viewBox") or "")
            raise _refuse(f"has a viewBox that is not four numbers ({shown})", file) from None
        width = width if width is not None else vw
        height = height if height is not None else vh
    for side in (width, height):
        if side is not None and not 0 <= side <= MAX_SIDE:
            raise _refuse(f"declares a canvas of {width or 0:,.0f}×{height or 0:,.0f} px (at "
                          f"most {MAX_SIDE:,} px a side)", file,
                          hint="set width and height (or the viewBox) to the logo's size")
