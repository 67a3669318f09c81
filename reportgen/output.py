"""Write the run's files. The only stage that writes; all or nothing.

Everything is written into a hidden temporary folder beside the final one
(``.<run id>.partial-<pid>``) and moved into place at the end, so a failed or interrupted run
leaves no half-written report behind: on an exception (SIGTERM and Ctrl-C included, see
cli.entry) the folder is removed before the error goes on. A run killed outright (SIGKILL, the
machine losing power) cannot clean up: the next run into the same output root removes every
such folder whose process is gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ReportgenError
from .report import Report

log = logging.getLogger("reportgen")

LATEST_FILE = "latest"  # out_root/latest: JSON naming the newest run of the series

# OWASP CSV injection: a cell starting with one of these runs as a formula in Excel.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def segments_table(names: dict[int, str], frame: pd.DataFrame, key: str, kept_index: pd.Index,
                   labels: np.ndarray, excluded: pd.Series, features: pd.DataFrame,
                   previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every input row: its key, segment and persona (names: segment id -> persona), or the
    reason it was left out. previous: previous_segment, previous_persona and movement of the
    kept rows (series.customer_columns), placed after the persona."""
    segment = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    segment.loc[kept_index] = labels
    keys = frame[key] if key in frame else pd.Series(
        [int(i) + 2 for i in frame.index], index=frame.index)
    out = pd.DataFrame({
        key: keys,
        "segment": segment,
        "persona": segment.map(names).astype("string"),
    })
    if previous is None:  # scores, or a run compared with nothing: the columns, empty
        previous = pd.DataFrame({"previous_segment": pd.array([], dtype="Int64"),
                                 "previous_persona": pd.array([], dtype="string"),
                                 "movement": pd.array([], dtype="string")})
    out = out.join(previous, how="left")
    out["left_out"] = excluded.reindex(frame.index).astype("string")
    out = out.join(features.round(4), how="left")
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise, na_action="ignore")
    out.columns = [neutralise(c) for c in out.columns]  # the key's name is a header cell too
    return out


# What write_outputs leaves while it works: .<run id>.partial-<pid>, .<run id>.old-<pid>
_WORKING = re.compile(r"^\.(?P<run>.+)\.(?:partial|old)-(?P<pid>\d+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale(out_root: Path) -> list[Path]:
    """Remove the working folders of runs into ``out_root`` whose process is gone (killed
    with SIGKILL, say); the ones of live runs are left alone. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(out_root.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _WORKING.match(path.name)
        if not match or not path.is_dir() or int(match["pid"]) == os.getpid() \
                or _alive(int(match["pid"])):
            continue
        final = out_root / match["run"]
        if ".old-" in path.name and not final.exists():
            # killed between moving the previous run aside and the new one into place:
            # the previous run is the complete one, so it goes back
            path.rename(final)
            log.info("restored %s, moved aside by a run that was killed", final)
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed %s, left by a run that was killed", path)
        removed.append(path)
    return removed


def write_outputs(*, report: Report, out_root: Path, frame: pd.DataFrame, key: str,
                  kept_index: pd.Index, labels: np.ndarray, excluded: pd.Series,
                  features: pd.DataFrame, manifest: dict[str, Any], formats: list[str],
                  template_dir: Path | None = None,
                  timings: dict[str, float], model: dict[str, Any] | None = None,
                  previous: pd.DataFrame | None = None,
                  extra: dict[str, Callable[[Path], object]] | None = None,
                  latest: dict[str, Any] | None = None) -> tuple[Path, list[Path]]:
    """Write the run's files into out_root/<run id>/, replacing an earlier run of the same
    id only once everything is written. ``model``: the bundle to save as model.skops.
    ``previous``: segments.csv's columns about the previous run; ``extra``: more files of
    the run (name -> writer of that path: the assignments, the history record, movers.csv);
    ``latest``: the pointer written to out_root/latest once the run folder is in place."""
    final = out_root / report.run_id
    tmp = out_root / f".{report.run_id}.partial-{os.getpid()}"
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        remove_stale(out_root)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise ReportgenError(f"cannot write the output folder ({exc.strerror})",
                             file=str(out_root)) from None
    try:
        names = {s.id: s.name for s in report.segments}
        table = segments_table(names, frame, key, kept_index, labels, excluded, features,
                               previous)
        table.to_csv(tmp / "segments.csv", index=False, lineterminator="\n")
        for name, writer in (extra or {}).items():
            writer(tmp / name)
        (tmp / "summary.json").write_text(report.to_json(), encoding="utf-8")
        timings = dict(timings)
        if "html" in formats:
            from .render.html import render_html

            start = time.perf_counter()
            (tmp / "report.html").write_text(render_html(report, template_dir),
                                             encoding="utf-8")
            timings["render_html"] = round(time.perf_counter() - start, 4)
        exported = None
        if "pdf" in formats:
            from .render.pdf import chart_images, print_exports, render_pdf

            start = time.perf_counter()
            exported = print_exports(report)
            pdf = render_pdf(report, template_dir, images=chart_images(report, exported))
            (tmp / "report.pdf").write_bytes(pdf)
            timings["render_pdf"] = round(time.perf_counter() - start, 4)
        if "email" in formats:
            from .render.email import email_images, render_email

            start = time.perf_counter()
            # the print SVGs, when there are some, are rasterised rather than drawn again
            email = render_email(report, email_images(report, exported), template_dir)
            for name, data in email.files().items():
                (tmp / name).write_bytes(data)
            manifest = {**manifest, "email": email.manifest()}
            timings["render_email"] = round(time.perf_counter() - start, 4)
        if model is not None:
            from .scoring import MODEL_FILE, dump

            dump(model, tmp / MODEL_FILE)
        # Timings are the one thing that changes between identical runs: they live here,
        # not in summary.json, so summary.json stays byte-for-byte reproducible.
        manifest = {**manifest, "timings_s": dict(timings),
                    "files": sorted(p.name for p in tmp.iterdir()) + ["manifest.json"]}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")
        if final.exists():
            old = out_root / f".{report.run_id}.old-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        if latest is not None and _newer_or_same(latest, out_root / LATEST_FILE):
            pointer = out_root / f".latest.partial-{os.getpid()}"
            pointer.write_text(json.dumps(latest, indent=2, sort_keys=True) + "\n",
                               encoding="utf-8")
            os.replace(pointer, out_root / LATEST_FILE)
    except BaseException:
        # SIGTERM (cli.entry turns it into an exception) and Ctrl-C included
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(final.iterdir())
    return final, files


def _newer_or_same(latest: dict[str, Any], path: Path) -> bool:
    """Whether the run ``latest`` names is at least as recent as the one path names (a rerun
    of an older period does not move the pointer back)."""
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
        return str(latest.get("period", "")) >= str(current.get("period", ""))
    except (OSError, ValueError, AttributeError):
        return True


def write_scores(*, out_dir: Path, frame: pd.DataFrame, key: str, kept_index: pd.Index,
                 labels: np.ndarray, excluded: pd.Series, features: pd.DataFrame,
                 names: dict[int, str], summary: dict[str, Any]) -> list[Path]:
    """segments.csv (the same columns as a run's) and score.json into out_dir.

    out_dir may be any folder, the current one included, so it is never replaced: each file is
    written beside its final name and moved into place once both are complete.
    """
    final = [out_dir / "segments.csv", out_dir / "score.json"]
    parts = [out_dir / f".{p.name}.partial-{os.getpid()}" for p in final]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table = segments_table(names, frame, key, kept_index, labels, excluded, features)
        table.to_csv(parts[0], index=False, lineterminator="\n")
        parts[1].write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                            encoding="utf-8")
        for part, path in zip(parts, final, strict=True):
            os.replace(part, path)
    except OSError as exc:
        raise ReportgenError(f"cannot write the scores ({exc.strerror})",
                             file=str(out_dir)) from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return final
