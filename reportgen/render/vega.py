"""Vega-Lite specs rendered with vl-convert: SVG and PNG for print and email, and the Vega
JavaScript bundle the HTML report inlines.

Apart from the chart builders (``charts``, which need Altair and pandas), so the print side can
be imported without them.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)

# What Vega writes into every SVG that draws nothing: the zero-size or hidden background and
# foreground paths of each group, and accessibility attributes that only a live SVG in a
# browser uses (the PDF and the email carry each chart's description as its alt text).
_INVISIBLE = re.compile(
    r'<path class="(?:background|foreground)" aria-hidden="true" d="(?:|M0,0h0v0h0Z)"[^>]*/>')
_ARIA = re.compile(r' (?:aria-[a-z]+|role|pointer-events)="[^"]*"')
# A group's background path with no paint of its own: Vega writes the paint of a group that
# has one on this path, and every ancestor of it is a <g> whose only paint is the root's
# fill="none", so the path draws nothing (one in ten of a chart's elements, 5% of WeasyPrint's
# time drawing it).
_UNPAINTED = re.compile(r'<path class="background" d="[^"]*"(?: opacity="[^"]*")?/>')


def to_svg(spec: dict[str, Any]) -> str:
    """Render a Vega-Lite spec to a static SVG (for print and email); the spec may not load
    any external data. Vega's invisible placeholders and unpainted backgrounds are left out:
    the same pixels, with a third fewer elements for WeasyPrint to parse and draw."""
    svg = str(_vlc().vegalite_to_svg(spec, allowed_base_urls=[]))
    return _UNPAINTED.sub("", _ARIA.sub("", _INVISIBLE.sub("", svg)))


def to_png(spec: dict[str, Any], scale: float = 2) -> bytes:
    """Render a Vega-Lite spec to PNG (for dense charts in the PDF and for email)."""
    return bytes(_vlc().vegalite_to_png(spec, scale=scale, allowed_base_urls=[]))


def svg_to_png(svg: str, scale: float = 2) -> bytes:
    """Rasterise an SVG this module exported (the same pixels as ``to_png`` of its spec)."""
    return bytes(_vlc().svg_to_png(svg, scale=scale))


def vega_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one script, inlined once per HTML page.

    vl-convert takes about a second to bundle the modules, the same result for every run of
    one vl-convert version, so it is kept on disk (``cache_folder``), keyed by that
    version (and in memory once built). A missing or unwritable cache only costs that
    second."""
    from importlib import metadata

    folder = cache_folder()
    path = folder / f"vega-bundle-vlc{metadata.version('vl-convert-python')}.js" \
        if folder is not None else None
    if path is not None and path.is_file():  # a FIFO or a folder by that name is not read
        try:
            text = path.read_text(encoding="utf-8")
            if "vegaEmbed" in text:
                return text
        except OSError:
            pass
    text = _built_bundle()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)  # atomic: a concurrent run never reads half a file
        except OSError as exc:
            log.warning("could not cache the Vega bundle in %s: %s", folder, exc)
    return text


@functools.lru_cache(maxsize=1)
def _built_bundle() -> str:
    return str(_vlc().javascript_bundle())


def cache_folder() -> Path | None:
    """Where ``vega_bundle`` keeps the bundle: the user cache folder of the platform
    (platformdirs: ~/.cache/reportgen on Linux, honouring $XDG_CACHE_HOME), or
    $REPORTGEN_CACHE_DIR when set ("off" or empty: no disk cache). Read when asked, not at
    import.

    The bundle is inlined as a script into every HTML report, so a folder the user names must
    be one only they can write: one that is not a folder, cannot be created, or that other
    users can write (/tmp, where anyone could leave a bundle of their own) is a ConfigError
    (exit 2). The platform's folder failing only costs the second of building the bundle."""
    chosen = os.environ.get("REPORTGEN_CACHE_DIR")
    if chosen is None:
        import platformdirs

        return Path(platformdirs.user_cache_dir("reportgen", appauthor=False))
    if chosen.strip() in ("", "off"):
        return None
    folder = Path(chosen)

    def bad(what: str) -> ConfigError:
        return ConfigError(f"REPORTGEN_CACHE_DIR {chosen!r} {what}",
                           hint='set it to a folder only you can write, or to "off" for no '
                                "cache")

    try:
        if not folder.exists():
            folder.mkdir(parents=True, mode=0o700)
        info = folder.stat()
    except OSError as exc:
        raise bad(f"cannot be created ({exc.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise bad("is not a folder")
    if info.st_mode & 0o022 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise bad("can be written by other users (the Vega script cached there is inlined "
                  "into every report)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise bad("cannot be written")
    return folder


def _vlc() -> Any:
    # imported on first use: commands that never export charts should not pay for it
    import vl_convert as vlc

    return vlc
