"""The straight line: load → schema → clean → features → segment → profile → personas →
playbook → report → output. Each stage is timed; only load reads and only output writes."""

from __future__ import annotations

import dataclasses
import datetime as dt
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
    from .load import Loaded
    from .personas import Words
    from .playbook import Rule
    from .rfm import Group

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
        (input_sha256 + json.dumps(cfg.run_key(), sort_keys=True)).encode()
    ).hexdigest()
    return f"{period_key}-{digest[:8]}"


@dataclass(frozen=True)
class Inputs:
    """What a run reads besides the customer table, read once before the first stage so that
    no stage opens a file: the persona vocabulary, the playbook and the logo."""

    vocabulary: dict[str, Words]
    playbook: list[Rule]
    logo: str  # data: URI, "" for none
    rfm_groups: list[Group]  # the named RFM groups (order tables)


def read_inputs(cfg: Config) -> Inputs:
    """The built-in persona vocabulary and playbook, and the configured logo."""
    from .personas import load_vocabulary
    from .playbook import load_playbook
    from .render.branding import logo_data_uri
    from .rfm import load_groups

    return Inputs(vocabulary=load_vocabulary(), playbook=load_playbook(),
                  logo=logo_data_uri(cfg.report.logo), rfm_groups=load_groups())


def run(
    source: str | None,
    cfg: Config,
    out_root: Path,
    loaded: Loaded | None = None,
) -> RunResult:
    """Make the report for SOURCE (None = the bundled sample) into out_root/<run id>/.
    ``loaded``: the table SOURCE already read (backfill reads it once for every month)."""
    inputs = read_inputs(cfg)
    return _run(source, cfg, out_root, inputs, loaded)


def month_ends(first: dt.date, last: dt.date, start: dt.date | None = None,
               end: dt.date | None = None) -> list[dt.date]:
    """The as_of of each monthly snapshot of data from first to last: the last day of each
    month from start's month (default: first's) to end's (default: last's), the final one
    cut at the last day in the data (a snapshot after it would age everyone for nothing)."""
    month = (start or first).replace(day=1)
    stop = (end or last).replace(day=1)
    out = []
    while month <= stop:
        following = (month + dt.timedelta(days=32)).replace(day=1)
        day = min(following - dt.timedelta(days=1), last)
        if day >= first and day >= month:
            out.append(day)
        month = following
    return out


def backfill(source: str | None, cfg: Config, out_root: Path, start: dt.date | None = None,
             end: dt.date | None = None) -> list[RunResult]:
    """One run per month end of an order table into out_root (one series): a year of
    history from one export. The table is read once; each run cuts its lines at its as_of."""
    from .errors import ConfigError, InputError
    from .load import load
    from .orders import date_span, detect

    if start is not None and end is not None and end < start:
        raise ConfigError(f"--to {end:%Y-%m} is before --from {start:%Y-%m}")
    loaded = load(source, cfg.input)
    columns = detect(loaded.frame, cfg.transactions, loaded.where)
    if columns is None:
        raise InputError("backfill needs order lines: a customer key that repeats, a date and "
                         "an amount on every row", file=loaded.where,
                         hint="name the columns in [transactions], or use `reportgen run`")
    first, last = date_span(loaded.frame, columns, cfg, loaded.where)
    ends = month_ends(first, last, start, end)
    if not ends:
        raise ConfigError(f"no month end between {start or first} and {end or last} has data "
                          f"(the lines run from {first} to {last})",
                          hint="choose --from and --to within the data")
    return [run(source, cfg.with_overrides(report__as_of=as_of), out_root, loaded)
            for as_of in ends]


def _run(source: str | None, cfg: Config, out_root: Path, inputs: Inputs,
         preloaded: Loaded | None = None) -> RunResult:
    from .assemble import build_report
    from .clean import clean, require_rows
    from .features import build_features, order_features
    from .load import load
    from .orders import aggregate, detect
    from .output import write_outputs
    from .personas import name_personas
    from .playbook import recommend
    from .profile import profile
    from .rfm import rfm
    from .schema import infer_schema
    from .scoring import build_bundle
    from .segment import segment

    clock = _Clock()
    template_dir = Path(cfg.report.template_dir) if cfg.report.template_dir else None
    with clock.stage("load"):
        loaded = preloaded if preloaded is not None else load(source, cfg.input)
    file = loaded.where
    with clock.stage("schema"):
        # Order lines (a customer key that repeats, dates, amounts) or customers; the roles
        # of a customer table's columns (order lines get theirs from the aggregation).
        order_columns = detect(loaded.frame, cfg.transactions, file)
        schema = infer_schema(loaded.frame, cfg.columns, file=file, scale=cfg.scale) \
            if order_columns is None else None
    with clock.stage("orders"):
        # Order lines become one row per customer as of as_of; a customer table goes on.
        orders = aggregate(loaded.frame, order_columns, cfg, file) \
            if order_columns is not None else None
    table, notes = loaded.frame, list(loaded.notes)
    if orders is not None:
        table, schema = orders.table()
        notes += orders.log
    assert schema is not None
    table_schema = schema
    with clock.stage("clean"):
        cleaned = clean(table, table_schema, cfg, file=file, notes=notes)
        if orders is not None:
            cleaned = dataclasses.replace(cleaned, as_of=orders.as_of)
        require_rows(cleaned, cfg, file=file)
    with clock.stage("features"):
        ff = order_features(cleaned, orders.features, cfg, file) if orders is not None else \
            build_features(cleaned, table_schema, cfg, file=file)
        scores = rfm(ff.frame["recency"], ff.frame["frequency"], ff.frame["total_spend"],
                     inputs.rfm_groups) if orders is not None else None
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
    model = build_bundle(cfg=cfg, schema=table_schema, raw=table, cleaned=cleaned, ff=ff,
                         seg=seg, categories=list(seg.categorical), names=names, run_id=run_id)
    with clock.stage("report"):
        report = build_report(
            cfg=cfg, run_id=run_id, source=loaded.name, raw=loaded.frame, schema=schema,
            cleaned=cleaned, ff=ff, seg=seg, profiles=profiles, personas=personas,
            actions=actions, logo=inputs.logo, orders=orders, rfm=scores,
            rfm_groups=inputs.rfm_groups,
        )
    with clock.stage("output"):
        manifest = _manifest(loaded, cfg, clock.timings)
        frame, excluded, csv = table, cleaned.excluded, ff.frame[_csv_features(ff)]
        if orders is not None:
            # One row per customer, the ones left out (only returns) with their reason.
            left = orders.left_out().set_axis(range(len(table), len(table) + len(orders.excluded)))
            frame = pd.concat([table[[cleaned.key]], left])
            excluded = pd.concat([excluded, pd.Series(orders.excluded.to_numpy(),
                                                      index=left.index, dtype="string")])
            csv = csv.join(scores[["rfm_score", "rfm_group"]])  # type: ignore[index]
        run_dir, files = write_outputs(
            report=report, out_root=out_root, frame=frame, key=cleaned.key,
            kept_index=ff.frame.index, labels=seg.labels, excluded=excluded,
            features=csv, manifest=manifest,
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
