"""Branding from the config: the logo file as a data: URI, and the ink that reads on a colour.

The logo is read once per run and travels inside the Report (``Report.logo``), so the HTML, the
PDF and the email show the same bytes and need no file at render time.
"""

from __future__ import annotations

import base64

from ..errors import ConfigError

MAX_LOGO_BYTES = 1_000_000  # it is inlined into every report: a logo is a few KB, not a photo
INK = "#1f2933"
WHITE = "#ffffff"

def _mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head:
        return "image/svg+xml"
    return None


def logo_data_uri(path: str | None) -> str:
    """The logo at ``path`` as a ``data:`` URI ("" when no logo is configured).

    Refused with a ConfigError naming ``report.logo``: an unreadable file, a file that is not a
    PNG, JPEG or SVG image whatever its name, one over MAX_LOGO_BYTES, an SVG that points at
    anything on the network (reports never fetch).
    """
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_LOGO_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"'report.logo' cannot be read ({exc.strerror})", file=path) from None
    if len(data) > MAX_LOGO_BYTES:
        raise ConfigError("'report.logo' is over 1 MB; it is inlined in every report",
                          file=path, hint="export a smaller PNG or an SVG")
    mime = _mime(data)
    if mime is None:
        raise ConfigError("'report.logo' is not a PNG, JPEG or SVG image", file=path)
    if mime == "image/svg+xml":
        from ..svg import safe_svg

        data = safe_svg(data, path)  # no fetch, no file, no script, no entity, bounded canvas
    else:
        _check_pixels(data, mime, path)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _pixels(data: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's frame header, without decoding."""
    import struct

    if mime == "image/png":
        return struct.unpack(">II", data[16:24]) if len(data) >= 24 else None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _check_pixels(data: bytes, mime: str, path: str) -> None:
    """A 2 KB PNG may declare 60000×60000 pixels (14 GB once decoded): refused unread."""
    from ..svg import MAX_SIDE

    size = _pixels(data, mime)
    if size is None:
        raise ConfigError(f"'report.logo' is not a readable {mime.split('/')[1].upper()} image",
                          file=path)
    if max(size) > MAX_SIDE:
        raise ConfigError(f"'report.logo' is {size[0]:,}×{size[1]:,} pixels (at most "
                          f"{MAX_SIDE:,} a side)", file=path,
                          hint="export the logo at the size it is shown, a few hundred pixels")


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 ``data:`` URI as ``logo_data_uri`` makes them."""
    head, _, payload = uri.partition(",")
    mime = head.removeprefix("data:").split(";", 1)[0]
    return mime, base64.b64decode(payload)


def _luminance(color: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio between two #rrggbb colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def ink_on(color: str) -> str:
    """White or near-black, whichever has the higher contrast on ``color`` (a light brand
    colour gets dark text instead of unreadable white)."""
    return WHITE if contrast(WHITE, color) >= contrast(INK, color) else INK


def text_on_white(color: str) -> str:
    """``color`` when it reads as text on white paper (contrast 4.5:1, WCAG AA), else ink: a
    light brand colour may fill a band but not set the numbers."""
    return color if contrast(color, WHITE) >= 4.5 else INK
