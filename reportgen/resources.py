"""Where the shipped files live: the repo's top-level folders in a checkout, package data in a
wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

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



def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A shipped (or user-given) TOML file, parsed; unreadable or malformed is one ConfigError
    naming the file: "cannot read <what>: ..."."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what}: {exc}", file=str(path)) from None
