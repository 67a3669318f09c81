"""Finding a run's folder in an output root, which also holds the series' history
(history.sqlite) and its latest pointer."""

from __future__ import annotations

from pathlib import Path


def run_folders(out: Path) -> list[Path]:
    """The run folders of an output root: folders, not hidden (an unfinished run's is)."""
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


def only_run(out: Path) -> Path:
    """The one run folder of an output root."""
    (run,) = run_folders(out)
    return run
