"""Where the shipped files live: the repo's top-level folders in a checkout, package data in a
wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"reportgen is installed without its {name}/ folder")


def templates_dir() -> Path:
    return _find("templates")


def sample_path() -> Path:
    return _find("data") / "marketing_campaign.csv"


def cache_dir() -> Path | None:
    """Where reportgen keeps what it can reuse across runs (today: the Vega JavaScript bundle,
    ~1 s to build, the same for every run of one vl-convert version).

    REPORTGEN_CACHE_DIR picks the folder ("off" or empty: no cache); otherwise
    $XDG_CACHE_HOME/reportgen or ~/.cache/reportgen.
    """
    import os

    chosen = os.environ.get("REPORTGEN_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip() in ("", "off") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reportgen"
