"""Finding a run's folder in an output root, which also holds the series' history
(history.sqlite) and its latest pointer; and a run's processes by the tag in their
environment."""

from __future__ import annotations

from pathlib import Path


def run_folders(out: Path) -> list[Path]:
    """The run folders of an output root: folders, not hidden (an unfinished run's is)."""
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


def only_run(out: Path) -> Path:
    """The one run folder of an output root."""
    (run,) = run_folders(out)
    return run


def tagged(tag: str) -> list[int]:
    """PIDs of the live processes whose environment carries ``REPORTGEN_TEST_TAG=tag`` (a run
    and its children); a zombie waiting to be reaped is not live."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"REPORTGEN_TEST_TAG={tag}".encode() in environ.split(b"\0") and state != "Z":
            pids.append(int(entry.name))
    return pids
