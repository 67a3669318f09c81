"""The straight line: load → schema → clean → features → segment → compare → profile →
personas → playbook → report → output. Each stage is timed; only load reads the customer
table and only output writes the run (the series' history is read before segment and
recorded after output, under the series' lock)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .config import Config
from .report import Gate, Report

if TYPE_CHECKING:
    from .assemble import Totals
    from .clean import Cleaned
    from .compare import Flows
    from .features import FeatureFrame
    from .history import History
    from .load import Loaded
    from .orders import OrderColumns, Orders
    from .personas import Words
    from .playbook import Rule
    from .profile import Profiles
    from .render.worker import RenderWorker
    from .report import Changes, CleaningStep, ColumnInfo, Rfm
    from .rfm import Group
    from .schema import Schema
    from .segment import Segmentation
    from .series import Previous, Step

log = logging.getLogger("reportgen")


@dataclass
class RunResult:
    """What a run made: its folder, the Report, the files written, the seconds per stage."""

    run_dir: Path
    report: Report
    files: list[Path]
    timings: dict[str, float] = field(default_factory=dict)
    # A streamed run (outofcore): rows of the table, the sample's size and customers per
    # persona in the whole table ("left out" too); None for a run held in memory.
    streamed: dict[str, Any] | None = None

    @property
    def failed_gates(self) -> list[Gate]:
        """The CI gates that failed (``reportgen run`` exits with code 3 when any did)."""
        return [g for g in self.report.gates if not g.passed]


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (ru_maxrss: KB on Linux)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


@dataclass
class _Clock:
    timings: dict[str, float] = field(default_factory=dict)
    # the process's peak RSS (MB) at the end of each stage: where the memory goes
    peaks: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 4)
        self.peaks[name] = peak_rss_mb()
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
    from .render.vega import cache_folder
    from .rfm import load_groups

    if "html" in cfg.report.formats:
        cache_folder()  # a bad REPORTGEN_CACHE_DIR stops the run now, not after clustering
    return Inputs(vocabulary=load_vocabulary(), playbook=load_playbook(),
                  logo=logo_data_uri(cfg.report.logo), rfm_groups=load_groups())


def run(
    source: str | None,
    cfg: Config,
    out_root: Path,
    loaded: Loaded | None = None,
    *,
    previous: str | None = None,
    fresh: bool = False,
) -> RunResult:
    """Make the report for SOURCE (None = [input] source, else the bundled sample) into
    out_root/<run id>/ (out_root/<series>/<run id>/ for a named series), compared with the
    previous run of its series: ``previous`` names that run (default: the latest earlier
    one), ``fresh`` starts the series afresh. ``loaded``: the table SOURCE already read
    (backfill reads it once for every month)."""
    from . import outofcore

    inputs = read_inputs(cfg)
    if source is None:
        source = cfg.input.source
    if cfg.engine.name == "spark":
        return _spark_run(source, cfg, out_root, inputs, previous, fresh)
    if loaded is None and source is not None and outofcore.wanted(source, cfg):
        return outofcore.run(source, cfg, out_root, inputs, previous, fresh)
    return _run(source, cfg, out_root, inputs, loaded, previous, fresh)


def _spark_run(source: str | None, cfg: Config, out_root: Path, inputs: Inputs,
               previous: str | None, fresh: bool) -> RunResult:
    from .spark import run as spark_run

    return spark_run(_spark_source(source), cfg, out_root, inputs, previous, fresh)


def _spark_source(source: str | None) -> str:
    from .errors import ConfigError

    if source is None:
        raise ConfigError("--engine spark needs a SOURCE: a Parquet or CSV path (file, folder "
                          "or glob) or a catalog table spark:db.customers")
    return source


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
    history from one export. The table is read once; each run cuts its lines at its as_of.
    On the Spark engine the table stays where it is (spark.backfill)."""
    from .errors import ConfigError
    from .load import load
    from .orders import date_span, detect

    if start is not None and end is not None and end < start:
        raise ConfigError(f"--to {end:%Y-%m} is before --from {start:%Y-%m}")
    if cfg.engine.name == "spark":
        from .spark import backfill as spark_backfill

        return spark_backfill(_spark_source(source), cfg, out_root, start, end)
    loaded = load(source, cfg.input, cfg.limits)
    columns = order_lines_only(detect(loaded.frame, cfg.transactions, loaded.where),
                               loaded.where)
    first, last = date_span(loaded.frame, columns, cfg, loaded.where)
    return [run(source, cfg.with_overrides(report__as_of=as_of), out_root, loaded)
            for as_of in backfill_months(first, last, start, end)]


def order_lines_only(columns: OrderColumns | None, where: str | None) -> OrderColumns:
    """The order-line columns a backfill needs (None: the table is customers, refused)."""
    from .errors import InputError

    if columns is None:
        raise InputError("backfill needs order lines: a customer key that repeats, a date and "
                         "an amount on every row", file=where,
                         hint="name the columns in [transactions], or use `reportgen run`")
    return columns


def backfill_months(first: dt.date, last: dt.date, start: dt.date | None,
                    end: dt.date | None) -> list[dt.date]:
    """A backfill's month ends (month_ends), refused when none has data."""
    from .errors import ConfigError

    ends = month_ends(first, last, start, end)
    if not ends:
        raise ConfigError(f"no month end between {start or first} and {end or last} has data "
                          f"(the lines run from {first} to {last})",
                          hint="choose --from and --to within the data")
    return ends


def _run(source: str | None, cfg: Config, out_root: Path, inputs: Inputs,
         preloaded: Loaded | None = None, previous_id: str | None = None,
         fresh: bool = False) -> RunResult:
    from .assemble import column_infos
    from .clean import clean, require_rows
    from .features import build_features, order_features
    from .load import load
    from .orders import aggregate, detect
    from .output import release_memory
    from .rfm import rfm
    from .schema import infer_schema

    clock = _Clock()
    if source is None:
        source = cfg.input.source
    with clock.stage("load"):
        loaded = preloaded if preloaded is not None else load(source, cfg.input,
                                                              cfg.limits)
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
    period_key = cleaned.as_of.strftime("%Y-%m") if cleaned.as_of else "undated"
    run_id = run_id_for(period_key, loaded.sha256, cfg)
    manifest = _manifest(loaded, cfg, clock.timings)  # the table's shape, before it goes
    with series_context(out_root, cfg, period_key, previous_id, fresh) as (history, previous):
        # A customer table that the previous run's model will not re-clean (policy keep)
        # is needed after cleaning only as its keys, its columns' types and blanks, and
        # the clean table after features only as its decisions: each is let go then, so
        # the raw, clean and feature tables are never all in memory (at 1 M customers,
        # ~0.25 GB each).
        slim = orders is None and not _may_keep(previous, cfg)
        raw_types, raw_columns = table, None
        if slim:
            # no row: an empty slice of Arrow-backed text would keep the table's buffers
            raw_types = pd.DataFrame({c: pd.Series([], dtype=t)
                                      for c, t in table.dtypes.items()})
            raw_columns = column_infos(table, table_schema)
            table = table[[cleaned.key]] if cleaned.key in table else table[[]]
            loaded = dataclasses.replace(loaded, frame=table)
            release_memory()
        with clock.stage("features"):
            ff = order_features(cleaned, orders.features, cfg, file) \
                if orders is not None else \
                build_features(cleaned, table_schema, cfg, file=file)
            scores = rfm(ff.frame["recency"], ff.frame["frequency"],
                         ff.frame["total_spend"], inputs.rfm_groups) \
                if orders is not None else None
        categories = _categories(cleaned, table_schema, cfg)
        if slim:
            cleaned = dataclasses.replace(cleaned, frame=cleaned.frame.iloc[:0].copy())
            release_memory()
        engine = DefaultEngine(table=table, raw=raw_types, columns=raw_columns,
                               orders=orders, scores=scores, started=manifest)
        return series_run(
            engine=engine, loaded=loaded, table=table, notes=loaded.notes,
            schema=table_schema, cleaned=cleaned, ff=ff, categories=categories,
            orders=orders, cfg=cfg, out_root=out_root, inputs=inputs,
            clock=clock, run_id=run_id, period_key=period_key, history=history,
            previous=previous, fresh=fresh)


@contextmanager
def series_context(out_root: Path, cfg: Config, period_key: str, previous_id: str | None,
                   fresh: bool, customers: bool = True) -> Iterator[tuple[Any, Any]]:
    """The series' history (None before its first recorded run) and the previous run
    (series.read_previous; customers=False leaves its customers unread), with the series'
    lock held for the whole run."""
    from . import history as history_
    from . import series as series_
    from .errors import HistoryError

    series = series_.series_name(cfg)
    # No SQLite file yet: nothing to compare with, and the file is made only when the run is
    # recorded, so a run that fails leaves nothing behind.
    history = history_.open_history(out_root, cfg.history.url, create=False, recover=True)
    lock = history.lock(series) if history is not None else history_.series_lock(
        out_root, series, history_.history_location(out_root, cfg.history.url))
    try:
        with lock:
            previous = None if history is None else series_.read_previous(
                history, series, period_key, out_root, run_id=previous_id, fresh=fresh,
                customers=customers)
            if previous_id and history is None:
                raise HistoryError(
                    f"series {series!r} has no run {previous_id!r} (nothing is recorded yet)",
                    file=history_.history_location(out_root, cfg.history.url))
            yield history, previous
    finally:
        if history is not None:
            history.close()


def _may_keep(previous: Any, cfg: Config) -> bool:
    """Whether the run may assign with the previous run's model (which re-cleans the raw
    table): policy keep and a previous run whose model is there."""
    return previous is not None and cfg.series.policy == "keep" \
        and previous.model is not None


def record_run(history: Any, out_root: Path, cfg: Config, entry: Any) -> None:
    """Record the run's entry in the series' history, made now on a first run."""
    if history is None:
        from .history import open_history

        made = open_history(out_root, cfg.history.url)
        assert made is not None  # create=True always opens
        with made:
            made.record(entry)
    else:
        history.record(entry)


class Engine(Protocol):
    """What one period of a series does its own way on an engine; series_run does the rest.
    DefaultEngine: the customers are in memory (ff and seg are all of them);
    spark.SparkEngine: they are a Spark table, ff and seg its driver's sample, and Spark
    assigns, follows, profiles and writes them where they are."""

    movers_file: str  # where the playbook's moved-down evidence says the movers are
    raw: pd.DataFrame  # the columns and types the model bundle records
    columns: list[ColumnInfo] | None  # the report's column list, measured before raw went

    def assigned(self, seg: Segmentation, ff: FeatureFrame, cleaned: Cleaned, schema: Schema,
                 clock: _Clock) -> AbstractContextManager[object]:
        """Held from compare to the playbook: every customer assigned to seg's segments."""
        ...

    def flows(self, seg: Segmentation, ff: FeatureFrame, cleaned: Cleaned, policy: str,
              previous: Previous | None
              ) -> tuple[pd.Index | None, Flows | None, Previous | None]:
        """For compare_stage: the keys of ff's customers, or the flows the engine counted
        itself, and the previous run (with the customers it could not read noted)."""
        ...

    def profile(self, ff: FeatureFrame, seg: Segmentation, step: Step) -> Profiles:
        """Every segment's profile."""
        ...

    def rfm(self, ff: FeatureFrame, seg: Segmentation, groups: list[Group]) -> Rfm | None:
        """The RFM table of every customer aggregated from order lines, after profile (None
        for a customer table)."""
        ...

    def write_segments(self, *, step: Step, profiles: Profiles, names: dict[int, str],
                       previous: Previous | None, cleaned: Cleaned, ff: FeatureFrame,
                       run_id: str, clock: _Clock) -> str | None:
        """The customers' segments (and movers) written before the report, where they are;
        where the movers went, if they were written."""
        ...

    def totals(self, profiles: Profiles) -> Totals | None:
        """The whole table's counts, when ff is a sample of it."""
        ...

    def manifest(self, clock: _Clock) -> dict[str, Any]:
        """manifest.json."""
        ...

    def files(self, *, step: Step, profiles: Profiles, names: dict[int, str],
              cleaned: Cleaned, ff: FeatureFrame, seg: Segmentation, changes: Changes | None,
              run_id: str) -> dict[str, Any]:
        """write_outputs' arguments for the customers' files (``extra``: more files)."""
        ...


@dataclass
class DefaultEngine:
    """The default engine's ways (Engine): the customers are ff's, in memory; segments.csv,
    segments.parquet and movers.csv are written with the report. table: the customers (or
    only their keys once let go), raw_types its columns' types, raw_columns the report's
    column list when the table was let go."""

    table: pd.DataFrame
    raw: pd.DataFrame
    columns: list[ColumnInfo] | None
    orders: Orders | None
    scores: pd.DataFrame | None
    started: dict[str, Any]  # the manifest begun before the table was let go
    movers_file: str = "movers.csv"
    keys: pd.Index | None = None

    def assigned(self, seg: Segmentation, ff: FeatureFrame, cleaned: Cleaned, schema: Schema,
                 clock: _Clock) -> AbstractContextManager[object]:
        return nullcontext()

    def flows(self, seg: Segmentation, ff: FeatureFrame, cleaned: Cleaned, policy: str,
              previous: Previous | None
              ) -> tuple[pd.Index | None, Flows | None, Previous | None]:
        self.keys = _keys(self.table, cleaned.key, ff.frame.index)
        return self.keys, None, previous

    def profile(self, ff: FeatureFrame, seg: Segmentation, step: Step) -> Profiles:
        from .profile import profile

        return profile(ff, seg)

    def rfm(self, ff: FeatureFrame, seg: Segmentation, groups: list[Group]) -> Rfm | None:
        from .rfm import summarise

        if self.scores is None:
            return None
        index = ff.frame.index
        return summarise(self.scores.loc[index], pd.Series(np.asarray(seg.labels), index=index),
                         ff.frame["recency"], ff.frame["frequency"], ff.frame["total_spend"],
                         groups)

    def write_segments(self, **_: Any) -> str | None:
        return None  # with the report (files)

    def totals(self, profiles: Profiles) -> Totals | None:
        return None

    def manifest(self, clock: _Clock) -> dict[str, Any]:
        return {**self.started, "peak_rss_mb": clock.peaks}

    def files(self, *, step: Step, profiles: Profiles, names: dict[int, str],
              cleaned: Cleaned, ff: FeatureFrame, seg: Segmentation, changes: Changes | None,
              run_id: str) -> dict[str, Any]:
        from . import series as series_
        from .history import segments_metadata

        extra: dict[str, Callable[[Path], object]] = {}
        if changes is not None and self.keys is not None and step.flows is not None:
            value = ff.frame[ff.value].to_numpy(dtype="float64") if ff.value else \
                np.ones(len(ff.frame))
            movers = series_.movers_table(step, profiles, names, self.keys, cleaned.key, value)
            extra["movers.csv"] = lambda path: movers.to_csv(path, index=False,
                                                              lineterminator="\n")
        # the features segments.csv shows, taken from ff.frame a block at a time
        table, orders = self.table, self.orders
        frame, excluded, csv, csv_columns = table, cleaned.excluded, ff.frame, _csv_features(ff)
        if orders is not None:
            # One row per customer, the ones left out (only returns) with their reason.
            left = orders.left_out().set_axis(range(len(table), len(table) + len(orders.excluded)))
            frame = pd.concat([table[[cleaned.key]], left])
            excluded = pd.concat([excluded, pd.Series(orders.excluded.to_numpy(),
                                                      index=left.index, dtype="string")])
            assert self.scores is not None
            csv = csv[csv_columns].join(self.scores[["rfm_score", "rfm_group"]])
            csv_columns = list(csv.columns)
        return {
            "frame": frame, "key": cleaned.key, "kept_index": ff.frame.index,
            "labels": seg.labels, "excluded": excluded, "features": csv,
            "feature_columns": csv_columns, "extra": extra,
            "previous": series_.customer_columns(step, profiles, ff.frame.index),
            # nothing after the segments reads the customers' features (~0.2 GB at 1 M)
            "let_go": functools.partial(_let_go, ff.frame, csv),
            # the next run of the series reads this run's customers from segments.parquet
            "parquet_meta": segments_metadata(key=cleaned.key if self.keys is not None
                                              else None, value=ff.value, run_id=run_id),
        }


def _let_go(*frames: pd.DataFrame) -> None:
    from .output import empty

    for frame in frames:
        empty(frame)


def series_run(*, cfg: Config, **run: Any) -> RunResult:
    """The run as one period of its series, on either engine: the previous run's model kept
    (policy keep) or a refit matched to its segments, compared with it, profiled, named,
    given its actions, reported, written and recorded in the history (``_series_run`` has
    the arguments). A run of the command line that makes a PDF or an email has a render
    worker (render.worker), stopped however the run ends."""
    from .render import worker as render_worker

    if not {"pdf", "email"} & set(cfg.report.formats) or not render_worker.allowed():
        return _series_run(cfg=cfg, worker=None, **run)
    from .render.worker import RenderWorker

    with RenderWorker() as worker:
        return _series_run(cfg=cfg, worker=worker, **run)


def _series_run(*, engine: Engine, loaded: Loaded, table: pd.DataFrame,
                notes: Sequence[CleaningStep], schema: Schema, cleaned: Cleaned,
                ff: FeatureFrame, categories: pd.DataFrame | None, orders: Orders | None,
                cfg: Config, out_root: Path, inputs: Inputs,
                clock: _Clock, run_id: str, period_key: str, history: History | None,
                previous: Previous | None, fresh: bool, worker: RenderWorker | None
                ) -> RunResult:
    """series_run. table and notes: what the previous run's model re-cleans under keep (the
    customers, the cleaning notes so far); categories: k-prototypes' category columns;
    worker: the render worker, started here (after the features, the run's memory peak)."""
    from . import series as series_
    from .assemble import build_report, period_label
    from .output import write_outputs
    from .personas import name_personas
    from .playbook import recommend_all
    from .render import charts
    from .scoring import build_bundle
    from .segment import segment

    series = series_.series_name(cfg)
    kept = keep_previous(previous, cfg, table=table, where=loaded.where, notes=notes,
                         schema=schema, cleaned=cleaned, ff=ff, ordered=orders is not None,
                         clock=clock)
    if kept.cleaned is not cleaned and categories is not None:
        categories = _categories(kept.cleaned, kept.schema, cfg)  # re-cleaned: the model's
    policy, schema, cleaned, ff = kept.policy, kept.schema, kept.cleaned, kept.ff
    template_dir = Path(cfg.report.template_dir) if cfg.report.template_dir else None
    if worker is not None:
        # The worker starts and warms up (imports, templates, vl-convert's engine: ~1 s of
        # CPU, ~0.13 GB) while this process searches k, so it is ready when the report is.
        # Not earlier: the features stage is the run's memory peak, and the worker beside it
        # would add to it (README "Performance").
        worker.warm(template_dir)
    with clock.stage("segment"):
        if kept.labels is not None and previous is not None and previous.model is not None:
            seg = series_.keep(previous.model, ff, kept.labels, cfg, previous.record)
        else:
            seg = segment(ff, cfg.segment, categories)
    with engine.assigned(seg, ff, cleaned, schema, clock):
        with clock.stage("compare"):
            keys, counted, previous = engine.flows(seg, ff, cleaned, policy, previous)
            step = series_.compare_stage(
                seg, ff, keys, previous, cfg, policy=policy,
                next_id=history.next_segment_id(series) if history is not None else 1,
                palette=charts.palette(len(charts.OKABE_ITO + charts.TOL_MUTED)),
                notes=kept.notes, as_of=cleaned.as_of, counted=counted)
            seg = step.seg
        with clock.stage("profile"):
            profiles = engine.profile(ff, seg, step)
            rfm = engine.rfm(ff, seg, inputs.rfm_groups)
            outlier_values = _outlier_values(cleaned, schema, ff, cfg, loaded.where, orders)
        value_label = ff.value_label
        with clock.stage("personas"):
            personas = name_personas(
                profiles, ff, cfg.report.currency, value_label, inputs.vocabulary,
                fixed=step.names,
                reserved=[s.name for s in previous.record.segments] if previous else ())
            names = {p.segment_id: p.name for p in personas}
        with clock.stage("playbook"):
            actions = recommend_all(profiles.segments, inputs.playbook, ff, profiles,
                                    cfg.report.currency, value_label,
                                    ff.business.type if ff.business else None,
                                    series_.deltas(step, profiles),
                                    movers_file=engine.movers_file)
        movers = engine.write_segments(step=step, profiles=profiles, names=names,
                                       previous=previous, cleaned=cleaned, ff=ff,
                                       run_id=run_id, clock=clock)
    model = build_bundle(cfg=cfg, schema=schema, raw=engine.raw, cleaned=cleaned, ff=ff,
                         seg=seg, categories=list(seg.categorical), names=names, run_id=run_id,
                         segment_ids=step.segment_ids)
    root = series_.series_root(out_root, cfg)
    value_unit = ff.meta[ff.value].unit if ff.value else "number"
    with clock.stage("report"):
        changes = series_.changes(step, profiles, names, as_of=cleaned.as_of,
                                  currency=cfg.report.currency, value_unit=value_unit,
                                  value_label=value_label)
        if changes is not None and movers is not None:
            changes = dataclasses.replace(changes, movers_file=movers)
        entry = series_.record(
            step=step, profiles=profiles, names=names, cfg=cfg, run_id=run_id,
            period=period_key, period_label=period_label(cfg, cleaned.as_of),
            as_of=cleaned.as_of.isoformat() if cleaned.as_of else "", source=loaded.name,
            run_dir=(root / run_id).relative_to(out_root).as_posix(), k=len(profiles.segments),
            gates=[])
        trend = series_.trend(history.runs(series) if history is not None else [], entry,
                              fresh)
        # The scaled model matrix served the record's centres; nothing after needs it (at
        # 1 M customers it is 0.1 GB of the output stage's peak). An empty copy, not a slice:
        # a view keeps its whole base alive.
        step = dataclasses.replace(step, z=step.z[:0].copy())
        report = build_report(
            cfg=cfg, run_id=run_id, source=loaded.name, raw=loaded.frame, schema=schema,
            cleaned=cleaned, ff=ff, seg=seg, profiles=profiles, personas=personas,
            actions=actions, logo=inputs.logo, orders=orders, rfm=rfm,
            colors=step.colors, series=series,
            changes=changes, trend=trend,
            extra_gates=[series_.drift_gate(changes)] if cfg.series.fail_on_drift else [],
            outlier_values=outlier_values, totals=engine.totals(profiles),
            columns=engine.columns,
        )
    entry = dataclasses.replace(entry, gates=tuple(
        {"name": g.name, "passed": g.passed, "reason": g.reason} for g in report.gates))
    with clock.stage("output"):
        customers = engine.files(step=step, profiles=profiles, names=names, cleaned=cleaned,
                                 ff=ff, seg=seg, changes=changes, run_id=run_id)
        extra: dict[str, Callable[[Path], object]] = {
            "series.json": lambda path: path.write_text(entry.to_json(), encoding="utf-8"),
            **customers.pop("extra", {}),
        }
        run_dir, files = write_outputs(
            report=report, out_root=root, manifest=engine.manifest(clock),
            formats=cfg.report.formats, template_dir=template_dir,
            timings=clock.timings, model=model, extra=extra, worker=worker,
            latest={"series": series, "run_id": run_id, "period": period_key,
                    "run_dir": run_id},
            **customers)
        record_run(history, out_root, cfg, entry)
    return RunResult(run_dir=run_dir, report=report, files=files, timings=clock.timings)


@dataclass(frozen=True)
class Kept:
    """The series policy as run and, under keep, this period's customers as the previous
    run's model cleans, features and assigns them (schema, cleaned, ff replaced)."""

    policy: str  # first, keep or refit
    schema: Any
    cleaned: Any
    ff: Any
    labels: np.ndarray | None  # segment ids under keep, else None
    notes: list[str]  # why a keep became a refit


def keep_previous(previous: Any, cfg: Config, *, table: pd.DataFrame, where: str | None,
                  notes: Any, schema: Any, cleaned: Any, ff: Any, ordered: bool,
                  clock: _Clock) -> Kept:
    """Whether the previous run's model is kept (the series policy, unless its model is gone,
    its features changed or it does not fit this table). table: the customers (the Spark
    engine's driver sample); ordered: they were aggregated from order lines."""
    from . import series as series_
    from .errors import ModelError

    policy = "first" if previous is None else cfg.series.policy
    if policy == "keep" and previous.model is None:
        policy = "refit"  # its folder is gone: read_previous logged it, the report says it
    if policy != "keep":
        return Kept(policy, schema, cleaned, ff, None, [])
    reason = series_.keep_reason(previous.model, ff)
    if not reason and ordered:
        # Order lines: the customers are this month's aggregation (nothing is imputed
        # there to keep); they are assigned with the previous run's scaling and model.
        return Kept(policy, schema, cleaned, ff, previous.model.assign(ff, cleaned, where), [])
    if not reason:
        # This period's table cleaned, featured and assigned exactly as the previous
        # run's model would: its medians, fences, levels, scaling and centres, so a
        # customer whose row did not change stays in its segment.
        try:
            with clock.stage("keep"):
                applied = previous.model.apply(table, where, as_of=cleaned.as_of, notes=notes,
                                               snapshot=cfg.report.as_of is not None)
        except ModelError as exc:
            reason = (f"the previous run's model does not fit this table ({exc.message}), "
                      "so its segments could not be kept: new segments were fitted and "
                      "matched to them")
        else:
            return Kept(policy, applied.schema, applied.cleaned, applied.features,
                        applied.labels, [])
    return Kept("refit", schema, cleaned, ff, None, [reason[0].upper() + reason[1:] + "."])


def _outlier_values(cleaned: Any, schema: Any, ff: Any, cfg: Config, file: str | None,
                    orders: Any) -> pd.Series | None:
    """The value of each customer set aside as an outlier, featured with the run's own
    decisions (None: nobody set aside, or no value measure)."""
    from .features import build_features

    if cleaned.outliers is None or orders is not None or not ff.value:
        return None
    aside = build_features(dataclasses.replace(cleaned, frame=cleaned.outliers), schema, cfg,
                           file=file, decisions=ff.decisions())
    return aside.frame[ff.value]


def _keys(frame: pd.DataFrame, key: str, index: pd.Index) -> pd.Index | None:
    """The customer keys of the segmented rows, or None when the table has none (row numbers
    say nothing about who a customer is next month)."""
    if key not in frame.columns:
        return None
    keys = pd.Index(frame.loc[index, key])
    if not keys.is_unique or keys.hasnans:
        return None
    return keys


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
