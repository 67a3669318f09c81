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
    return out


def write_outputs(*, report: Report, out_root: Path, frame: pd.DataFrame, key: str,
                  kept_index: pd.Index, labels: np.ndarray, excluded: pd.Series,
                  features: pd.DataFrame, manifest: dict[str, Any], formats: list[str],
                  template_dir: Path | None = None,
                  timings: dict[str, float], model: dict[str, Any] | None = None,
                  background: Background | None = None) -> tuple[Path, list[Path]]:
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
        exported = None
        if "pdf" in formats and background is not None:
            from .render import print_specs

            # Charts export in helper processes while this one writes the tables.
            exported = background.export(print_specs(report))
        email_pngs = None
        if "email" in formats and background is not None:
            from .render import email_specs

            email_pngs = background.email_pngs(email_specs(report))
        # Queued after the charts: the helper serialises it while this process lays out the PDF.
        model_file = None
        if model is not None:
            model_file = background.dump_model(model) if background is not None else None
        names = {s.id: s.name for s in report.segments}
        table = segments_table(names, frame, key, kept_index, labels, excluded, features)
        table.to_csv(tmp / "segments.csv", index=False, lineterminator="\n")
        (tmp / "summary.json").write_text(report.to_json(), encoding="utf-8")
        if {"html", "pdf", "email"} & set(formats):
            from . import render
        timings = dict(timings)
        if "html" in formats:
            start = time.perf_counter()
            vega_js = background.bundle() if background is not None else None
            (tmp / "report.html").write_text(render.render_html(
                report, template_dir, vega_js=vega_js),
                                             encoding="utf-8")
            timings["render_html"] = round(time.perf_counter() - start, 4)
        if "pdf" in formats:
            start = time.perf_counter()
            images = None
            if exported is not None:
                # Import WeasyPrint (~0.35 s) while the helper is still exporting the charts.
                import weasyprint  # noqa: F401

                images = {name: render.image_from(kind, data)
                          for name, (kind, data) in exported.result().items()}
            render.render_pdf(report, tmp / "report.pdf", template_dir, images=images)
            timings["render_pdf"] = round(time.perf_counter() - start, 4)
        if "email" in formats:
            start = time.perf_counter()
            # The PNGs were exported in a helper process, started above.
            pngs = email_pngs.result() if email_pngs is not None else \
                render.email_images(report)
            email = render.render_email(report, pngs, template_dir)
            for name, data in email.files().items():
                (tmp / name).write_bytes(data)
            manifest = {**manifest, "email": email.manifest()}
            timings["render_email"] = round(time.perf_counter() - start, 4)
        if model is not None:
            from .scoring import MODEL_FILE, dump

            if model_file is not None:
                (tmp / MODEL_FILE).write_bytes(model_file.result())
            else:
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
    except BaseException:
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
