"""Write the run's files. The only stage that writes; all or nothing.

Everything is written into a hidden temporary folder beside the final one and moved into place
at the end, so a failed run leaves no half-written report behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import ReportgenError

if TYPE_CHECKING:
    from .exporter import Background
from .report import Report

log = logging.getLogger("reportgen")

# OWASP CSV injection: a cell starting with one of these runs as a formula in Excel.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def segments_table(names: dict[int, str], frame: pd.DataFrame, key: str, kept_index: pd.Index,
                   labels: np.ndarray, excluded: pd.Series, features: pd.DataFrame
                   ) -> pd.DataFrame:
    """Every input row: its key, segment and persona (names: segment id -> persona), or the
    reason it was left out."""
    segment = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    segment.loc[kept_index] = labels
    keys = frame[key] if key in frame else pd.Series(
        [int(i) + 2 for i in frame.index], index=frame.index)
    out = pd.DataFrame({
        key: keys,
        "segment": segment,
        "persona": segment.map(names).astype("string"),
        "left_out": excluded.reindex(frame.index).astype("string"),
    })
    out = out.join(features.round(4), how="left")
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise, na_action="ignore")
    out.columns = [neutralise(c) for c in out.columns]  # the key's name is a header cell too
    return out


def write_outputs(*, report: Report, out_root: Path, frame: pd.DataFrame, key: str,
                  kept_index: pd.Index, labels: np.ndarray, excluded: pd.Series,
                  features: pd.DataFrame, manifest: dict[str, Any], formats: list[str],
                  template_dir: Path | None = None,
                  timings: dict[str, float], model: dict[str, Any] | None = None,
                  background: Background | None = None) -> tuple[Path, list[Path]]:
    """Write the run's files into out_root/<run id>/, replacing an earlier run of the same
    id only once everything is written. ``model``: the bundle to save as model.skops.
    ``background``: the run's helper processes (exporter.Background), which may already be
    exporting the report's charts."""
    final = out_root / report.run_id
    tmp = out_root / f".{report.run_id}.partial-{os.getpid()}"
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise ReportgenError(f"cannot write the output folder ({exc.strerror})",
                             file=str(out_root)) from None
    try:
        from .exporter import Background

        bg = background if background is not None else Background(charts=False, pdf=False)
        exported = None
        pdf = bg.pdf(report, template_dir) if "pdf" in formats else None
        if {"pdf", "email"} & set(formats):
            from .render import email_specs, print_specs

            # The charts helper exports (print charts in page order, then the email's) while
            # the print helper lays the pages out; this process meanwhile writes the rest.
            exported = bg.charts(print_specs(report) if "pdf" in formats else {},
                                 email_specs(report) if "email" in formats else {})
            if "pdf" in formats and bg.helpers:
                # Keep out of the helpers' way while they export and lay out the pages (two
                # cores, three processes): this process's own writes wait for the export,
                # then overlap the PDF's drawing instead.
                exported.result()
        names = {s.id: s.name for s in report.segments}
        table = segments_table(names, frame, key, kept_index, labels, excluded, features)
        table.to_csv(tmp / "segments.csv", index=False, lineterminator="\n")
        (tmp / "summary.json").write_text(report.to_json(), encoding="utf-8")
        if {"html", "pdf", "email"} & set(formats):
            from . import render
        timings = dict(timings)
        if "html" in formats:
            start = time.perf_counter()
            (tmp / "report.html").write_text(render.render_html(
                report, template_dir, vega_js=bg.bundle()), encoding="utf-8")
            timings["render_html"] = round(time.perf_counter() - start, 4)
        if exported is not None and "email" in formats:
            start = time.perf_counter()
            email = render.render_email(report, exported.result().email, template_dir)
            for name, data in email.files().items():
                (tmp / name).write_bytes(data)
            manifest = {**manifest, "email": email.manifest()}
            timings["render_email"] = round(time.perf_counter() - start, 4)
        if model is not None:
            from .scoring import MODEL_FILE, dump

            dump(model, tmp / MODEL_FILE)  # while the print helper finishes the PDF
        if pdf is not None:
            data, seconds = pdf.result()
            (tmp / "report.pdf").write_bytes(data)
            timings["render_pdf"] = round(seconds, 4)
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
    except BaseException:
        if background is not None:
            background.close()  # a helper still writing into tmp would race the removal
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(final.iterdir())
    return final, files


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
