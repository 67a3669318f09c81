"""The straight line: load → schema → clean → features → segment → profile → personas →
playbook → report → output. Each stage is timed; only load reads and only output writes."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .config import Config
from .report import Gate, Report

if TYPE_CHECKING:
    from .personas import Words
    from .playbook import Rule

log = logging.getLogger("reportgen")


@dataclass
class RunResult:
    """What a run made: its folder, the Report, the files written, the seconds per stage."""

    run_dir: Path
    report: Report
    files: list[Path]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed_gates(self) -> list[Gate]:
        """The CI gates that failed (``reportgen run`` exits with code 3 when any did)."""
        return [g for g in self.report.gates if not g.passed]


@dataclass
class _Clock:
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 4)
        log.info("%-9s done in %.2f s", name, self.timings[name])


def run_id_for(period_key: str, input_sha256: str, cfg: Config) -> str:
    digest = hashlib.sha256(
        (input_sha256 + json.dumps(cfg.to_dict(), sort_keys=True)).encode()
    ).hexdigest()
    return f"{period_key}-{digest[:8]}"


@dataclass(frozen=True)
class Inputs:
    """What a run reads besides the customer table, read once before the first stage so that
    no stage opens a file: the persona vocabulary, the playbook and the logo."""

    vocabulary: dict[str, Words]
    playbook: list[Rule]
    logo: str  # data: URI, "" for none


def read_inputs(cfg: Config) -> Inputs:
    """The built-in persona vocabulary and playbook, and the configured logo."""
    from .personas import load_vocabulary
    from .playbook import load_playbook
    from .render.branding import logo_data_uri
    from .render.vega import cache_folder

    if "html" in cfg.report.formats:
        cache_folder()  # a bad REPORTGEN_CACHE_DIR stops the run now, not after clustering
    return Inputs(vocabulary=load_vocabulary(), playbook=load_playbook(),
                  logo=logo_data_uri(cfg.report.logo))


def run(
    source: str | None,
    cfg: Config,
    out_root: Path,
) -> RunResult:
    """Make the report for SOURCE (None = the bundled sample) into out_root/<run id>/."""
    inputs = read_inputs(cfg)
    return _run(source, cfg, out_root, inputs)


def _run(source: str | None, cfg: Config, out_root: Path, inputs: Inputs) -> RunResult:
    from .assemble import build_report
    from .clean import clean, require_rows
    from .features import build_features
    from .load import load
    from .output import write_outputs
    from .personas import name_personas
    from .playbook import recommend
    from .profile import profile
    from .schema import infer_schema
    from .scoring import build_bundle
    from .segment import segment

    clock = _Clock()
    template_dir = Path(cfg.report.template_dir) if cfg.report.template_dir else None
    with clock.stage("load"):
        loaded = load(source, cfg.input, cfg.limits)
    file = loaded.where
    with clock.stage("schema"):
        schema = infer_schema(loaded.frame, cfg.columns, file=file, scale=cfg.scale)
    with clock.stage("clean"):
        cleaned = clean(loaded.frame, schema, cfg, file=file, notes=loaded.notes)
        require_rows(cleaned, cfg, file=file)
    with clock.stage("features"):
        ff = build_features(cleaned, schema, cfg, file=file)
    with clock.stage("segment"):
        seg = segment(ff, cfg.segment, _categories(cleaned, schema, cfg))
    with clock.stage("profile"):
        profiles = profile(ff, seg)
    value_label = ff.value_label
    with clock.stage("personas"):
        personas = name_personas(profiles, ff, cfg.report.currency, value_label,
                                 inputs.vocabulary)
    with clock.stage("playbook"):
        actions = {
            sp.id: recommend(sp, inputs.playbook, ff, profiles, cfg.report.currency,
                             value_label)
            for sp in profiles.segments
        }
    period_key = cleaned.as_of.strftime("%Y-%m") if cleaned.as_of else "undated"
    run_id = run_id_for(period_key, loaded.sha256, cfg)
    names = {p.segment_id: p.name for p in personas}
    model = build_bundle(cfg=cfg, schema=schema, raw=loaded.frame, cleaned=cleaned, ff=ff,
                         seg=seg, categories=list(seg.categorical), names=names, run_id=run_id)
    with clock.stage("report"):
        report = build_report(
            cfg=cfg, run_id=run_id, source=loaded.name, raw=loaded.frame, schema=schema,
            cleaned=cleaned, ff=ff, seg=seg, profiles=profiles, personas=personas,
            actions=actions, logo=inputs.logo,
        )
    with clock.stage("output"):
        manifest = _manifest(loaded, cfg, clock.timings)
        run_dir, files = write_outputs(
            report=report, out_root=out_root, frame=loaded.frame, key=cleaned.key,
            kept_index=ff.frame.index, labels=seg.labels, excluded=cleaned.excluded,
            features=ff.frame[_csv_features(ff)], manifest=manifest,
            formats=cfg.report.formats, template_dir=template_dir,
            timings=clock.timings, model=model,
        )
    return RunResult(run_dir=run_dir, report=report, files=files, timings=clock.timings)


def _categories(cleaned: Any, schema: Any, cfg: Config) -> pd.DataFrame | None:
    """The category columns k-prototypes clusters on (None for the other algorithms)."""
    if cfg.segment.algorithm != "kprototypes":
        return None
    from .schema import CATEGORY_ROLES

    columns = [c for role in CATEGORY_ROLES for c in schema.cols(role) if c in cleaned.frame]
    return cleaned.frame[columns]


@dataclass
class ScoreResult:
    out_dir: Path
    files: list[Path]
    summary: dict[str, Any]


def score(source: str, model_dir: Path, out_dir: Path) -> ScoreResult:
    """Segment the customers of SOURCE with the model saved in model_dir (a run's folder)."""
    from .config import InputConfig
    from .load import load
    from .output import write_scores
    from .scoring import load_model
    from .scoring import score as score_frame

    model = load_model(model_dir)
    loaded = load(source, InputConfig())
    where = str(getattr(loaded, "where", loaded.path))
    scored = score_frame(loaded.frame, model, where)
    counts = pd.Series(scored.labels).value_counts()
    n = len(scored.labels)
    summary = {
        "model_run": scored.run_id, "input": loaded.name, "sha256": loaded.sha256,
        "customers_in": int(len(loaded.frame)), "customers": int(n),
        "excluded": int(len(loaded.frame) - n),
        "segments": [{"id": i, "name": name, "customers": int(counts.get(i, 0)),
                      "share": round(float(counts.get(i, 0)) / n, 4) if n else 0.0}
                     for i, name in sorted(scored.names.items())],
    }
    files = write_scores(out_dir=out_dir, frame=loaded.frame, key=scored.key,
                         kept_index=scored.kept_index, labels=scored.labels,
                         excluded=scored.excluded, features=scored.features, names=scored.names,
                         summary=summary)
    return ScoreResult(out_dir=out_dir, files=files, summary=summary)


def _csv_features(ff: Any) -> list[str]:
    wanted = list(dict.fromkeys(ff.model + ([ff.value] if ff.value else [])))
    return [c for c in ff.frame.columns if c in wanted]


def _manifest(loaded: Any, cfg: Config, timings: dict[str, float]) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for pkg in ("reportgen", "pandas", "numpy", "scikit-learn", "altair", "vl-convert-python",
                "weasyprint", "jinja2", "click"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    import platform

    versions["python"] = platform.python_version()
    return {
        "input": {"file": loaded.name, "path": loaded.where, "sha256": loaded.sha256,
                  "rows": int(len(loaded.frame)), "columns": int(loaded.frame.shape[1]),
                  "delimiter": loaded.delimiter, "encoding": loaded.encoding},
        "config": cfg.to_dict(),
        "seed": cfg.segment.random_state,
        "versions": versions,
        "timings_s": timings,
    }
