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

