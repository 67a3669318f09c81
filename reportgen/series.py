"""A run as one period of its series: the previous run, the segments kept or matched to it, and
what changed.

- ``read_previous`` (called by the pipeline before the stages that need it, like the other
  inputs) finds the previous run in the history and reads what comparing with it needs: its
  customer assignments and its model. A previous run whose folder is gone is a logged
  recovery (its segments are matched by their centres, customers cannot be followed), unless
  it was asked for by --previous, then it is an error.
- under the keep policy the pipeline cleans this period's table with the previous run's
  model (``scoring.Model.apply``: its cleaning decisions, feature decisions, scaling,
  estimator and segment ids) and ``keep`` makes the Segmentation of those labels;
  ``compare_stage`` matches a refit to the previous run (compare.match_segments).
  Both give a Segmentation whose labels are the series' segment ids.
- ``changes`` builds the Report's Changes and ``record`` the history entry; pure functions.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import compare
from .errors import HistoryError
from .history import (
    DEFAULT_SERIES,
    History,
    RunRecord,
    SegmentRecord,
    read_assignments,
)
from .report import (
    Changes,
    Drift,
    FeatureDrift,
    MigrationRow,
    MigrationTable,
    SegmentChange,
    TrendPoint,
)

if TYPE_CHECKING:
    from .config import Config
    from .features import FeatureFrame
    from .profile import Profiles
    from .scoring import Model
    from .segment import Segmentation

log = logging.getLogger("reportgen")


def series_name(cfg: Config) -> str:
    return cfg.series.name or DEFAULT_SERIES


def series_root(out_root: Path, cfg: Config) -> Path:
    """Where the series' run folders go: OUT/<series>/, or OUT/ for the root's own series."""
    return out_root / cfg.series.name if cfg.series.name else out_root


@dataclass(frozen=True)
class Previous:
    record: RunRecord
    assignments: compare.Assignments | None  # None: its folder or file is gone
    model: Model | None  # its fitted pipeline (model.skops); None when gone
    missing: str = ""  # what is gone, in words


def read_previous(history: History, series: str, period: str, out_root: Path, *,
                  run_id: str | None = None, fresh: bool = False,
                  customers: bool = True) -> Previous | None:
    """The run this one is compared with: --previous RUN_ID, else the latest run of the series
    with an earlier period; None on a first run or with --no-previous. customers=False: its
    customers are left where they are (the Spark engine reads them itself), only its record
    and model are read."""
    if fresh:
        return None
    if run_id:
        record = history.get(series, run_id)
        if record is None:
            raise HistoryError(f"series {series!r} has no run {run_id!r}", file=history.where,
                               hint="`reportgen history` lists its runs")
        if record.period >= period:
            raise HistoryError(f"run {run_id!r} is of {record.period_label}, not before this "
                               "run's period", file=history.where,
                               hint="--previous names an earlier run of the series")
    else:
        record = history.previous(series, period)
        if record is None:
            return None
    from .scoring import ModelError, load_model

    try:
        folder = record.folder(out_root)  # inside the output root, or a HistoryError
        if not folder.is_dir():
            raise HistoryError("the previous run's folder is missing", file=str(folder))
        assignments = read_assignments(folder) if customers else None
        model = load_model(folder)
    except (HistoryError, ModelError) as exc:
        if run_id:
            raise HistoryError(f"run {run_id!r} cannot be compared with: {exc}",
                               hint="--no-previous starts afresh") from None
        missing = (f"the files of the previous run {record.run_id} ({record.period_label}) are "
                   f"gone ({exc.message}): its segments were matched by their centres and "
                   "customers could not be followed")
        log.warning("%s", missing)
        return Previous(record=record, assignments=None, model=None, missing=missing)
    return Previous(record=record, assignments=assignments, model=model)


# keep and match ----------------------------------------------------------------------------

def keep_reason(model: Model, ff: FeatureFrame) -> str:
    """Why the previous run's model cannot assign this table ("" when it can): the model
    features this table and config give are not the ones it was fitted on."""
    features = list(model.scaling.features)
    if features == list(ff.model):
        return ""
    # as the report names them ("Months as a customer"); a feature gone from this table has
    # no label here any more: its name, spaced
    added = [ff.meta[f].label for f in ff.model if f not in features]
    removed = [ff.meta[f].label if f in ff.meta else f.replace("_", " ") for f in features
               if f not in ff.model]
    parts = []
    if added:
        parts.append(f"{', '.join(added)} added")
    if removed:
        parts.append(f"{', '.join(removed)} gone")
    if not parts:
        parts.append("their order changed")
    return (f"the model features changed since the previous run ({'; '.join(parts)}), so its "
            "segments could not be kept: new segments were fitted and matched to them")


def keep(model: Model, ff: FeatureFrame, labels: np.ndarray, cfg: Config,
         record: RunRecord) -> Segmentation:
    """The Segmentation of this period's customers in the previous run's segments: ff and
    labels come from ``model.apply`` (the previous run's cleaning and feature decisions, its
    scaling, estimator and segment ids). Segments nobody is assigned to any more have no
    customers."""
    from .segment import MAX_POINTS, NAMES, Segmentation, Silhouette

    scaler = model.scaling
    features = list(scaler.features)
    z = scaler.transform(ff.matrix(features))
    ids = list(model.segment_ids)
    n = len(z)
    s = cfg.segment
    silhouette = Silhouette(z, min(s.silhouette_sample, n), s.random_state)(labels) \
        if len(np.unique(labels)) > 1 else 0.0
    rng = np.random.default_rng(s.random_state)
    m = min(MAX_POINTS, n)
    pts_idx = np.sort(rng.choice(n, m, replace=False)) if n > m else np.arange(n)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=s.random_state).fit(z[pts_idx])
    xy = pca.transform(z[pts_idx])
    ev = pca.explained_variance_ratio_
    when = f"run {record.run_id} ({record.period_label})"
    algorithm = model.algorithm
    return Segmentation(
        labels=np.asarray(labels), k=len(ids), k_table=[], k_forced=False,
        k_rule=f"The segments of {when} were kept (series policy keep): this period's "
               "customers are cleaned, scaled and assigned with the model of then (its "
               "medians, fences and levels too), so a segment keeps its id, name and colour "
               "from month to month and a customer whose row did not change stays in it.",
        k_reason=f"k = {len(ids)} as in {when}, whose model was kept",
        k_disagreement="", silhouette=float(silhouette),
        scaling=scaler.describe({f: ff.meta[f].label for f in features if f in ff.meta}),
        log_features=scaler.logged, scaler=scaler, model=model.estimator,
        order=[int(c) for c in model.order],
        points=pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=ff.frame.index[pts_idx]),
        projection=f"PCA of the scaled model features: axes explain {ev[0]:.0%} and "
                   f"{ev[1]:.0%} of the variance",
        algorithm=algorithm,
        algorithm_text=f"{NAMES.get(algorithm, algorithm)} fitted in {when} and kept: this "
                       "period's customers assigned with it",
        categorical=tuple(model.categorical),
        stability=None,
        stability_text=f"not measured this period: the segments were kept from {when}",
        scaled=z,
    )


def relabel(seg: Segmentation, ids: dict[int, int]) -> Segmentation:
    """seg with its segment numbers replaced by series ids (label -> id)."""
    table = np.zeros(max(ids) + 1, dtype=np.int64)
    for label, new in ids.items():
        table[label] = new
    stability = seg.stability
    if stability is not None:
        stability = dataclasses.replace(stability, per_segment={
            ids[k]: v for k, v in stability.per_segment.items() if k in ids})
    return dataclasses.replace(seg, labels=table[seg.labels], stability=stability)


# the comparison ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """What the compare stage hands on: the segmentation with series ids, the names and
    colours kept, and what the comparison found."""

    seg: Segmentation
    policy: str  # first, keep or refit, as run
    names: dict[int, str]  # kept persona names by segment id (personas names the others)
    colors: dict[int, str]
    segment_ids: list[int]  # series id of each entry of seg.order (the model file keeps it)
    z: np.ndarray  # scaled model features, aligned with ff.frame
    distances: np.ndarray  # each customer's distance to its segment's centre
    bins: list[compare.Bins]  # this run's feature bins: the next run's drift reference
    previous: Previous | None = None
    flows: compare.Flows | None = None
    matching: compare.Matching | None = None
    drift: compare.Drift | None = None
    notes: list[str] = field(default_factory=list)


def _centres_of(record: RunRecord) -> tuple[list[int], np.ndarray | None]:
    ids = [s.segment_id for s in record.segments]
    if not record.segments or any(not s.centroid for s in record.segments):
        return ids, None
    return ids, np.array([s.centroid for s in record.segments], dtype="float64")


def assignments_of(keys: pd.Series | pd.Index, labels: np.ndarray, values: np.ndarray,
                   distances: np.ndarray | None) -> compare.Assignments:
    return compare.Assignments(keys=pd.Index(keys), segments=np.asarray(labels, dtype=np.int64),
                               values=np.asarray(values, dtype="float64"),
                               distances=distances)


def compare_stage(seg: Segmentation, ff: FeatureFrame, keys: pd.Index | None,
                  previous: Previous | None, cfg: Config, *, policy: str, next_id: int,
                  palette: list[str], notes: list[str] | None = None,
                  as_of: Any = None, counted: compare.Flows | None = None) -> Step:
    """Give seg the series' segment ids and compare it with the previous run.

    policy: keep (seg came from ``keep``), refit (seg is a new fit) or first. keys: the
    customer keys aligned with ff.frame (None when the table has no key column: customers
    cannot be followed). as_of: this run's date; under keep, features that age with the
    calendar (tenure, age) are compared with the previous run's after ageing those by the
    time between the two as_of dates. counted: the flows an engine counted itself, by seg's
    labels (the Spark engine joins the two runs' customers where they are; ff, seg and keys
    are then the driver's sample), used instead of following keys here."""
    notes = list(notes or ())
    features = list(seg.scaler.features)
    # The scaled matrix segment (or keep) made, taken over here: the Step holds it until
    # the report, the Segmentation handed on does not.
    z = seg.scaled if seg.scaled is not None else seg.scaler.transform(ff.matrix(features))
    seg = dataclasses.replace(seg, scaled=None)
    seed = cfg.segment.random_state
    # The bins and the drift read a sample of the customers' features: only it is gathered.
    rows = compare.sample_rows(len(z), seed)
    x = ff.matrix(features, rows=None if isinstance(rows, slice) else rows)
    bins = compare.reference_bins(x, features, seed=seed)
    value = ff.frame[ff.value].to_numpy(dtype="float64") if ff.value else np.ones(len(z))
    matching = None
    if previous is None or policy == "first":
        ids = {label: label for label in range(1, seg.k + 1)}
        colors = {i: palette[(i - 1) % len(palette)] for i in ids.values()}
        segment_ids = list(range(1, seg.k + 1))
        names: dict[int, str] = {}
    else:
        record = previous.record
        prev_refs = [compare.SegmentRef(id=s.segment_id, name=s.name, color=s.color,
                                        size=s.size, centroid=s.centroid)
                     for s in record.segments]
        sizes = pd.Series(seg.labels).value_counts()
        if policy == "keep":
            matching = compare.keep_matching(
                prev_refs, {int(k): int(v) for k, v in sizes.items()},
                previous.model.names if previous.model is not None else None)
            ids = {i.label: i.id for i in matching.current}
            segment_ids = list(previous.model.segment_ids) if previous.model is not None \
                else [s.segment_id for s in record.segments]
        else:
            cur_refs = [compare.SegmentRef(id=label) for label in range(1, seg.k + 1)]
            overlap = counted.overlap if counted is not None else None
            if counted is None and previous.assignments is not None and keys is not None:
                now = assignments_of(keys, seg.labels, value, None)
                overlap = compare.flows(previous.assignments, now,
                                        previous_ids=[r.id for r in prev_refs],
                                        current_ids=range(1, seg.k + 1)).overlap
            prev_ids, prev_centres = _centres_of(record)
            pc = cc = None
            if prev_centres is not None and record.scaling:
                from .scaling import Scaling

                own = compare.centroids_of(z, seg.labels)
                cur_centres = np.array([own.get(label, np.zeros(z.shape[1]))
                                        for label in range(1, seg.k + 1)])
                pc, cc, _ = compare.common_space(prev_centres, Scaling.from_dict(record.scaling),
                                                 cur_centres, seg.scaler)
            matching = compare.match_segments(prev_refs, cur_refs, overlap, next_id=next_id,
                                              previous_centroids=pc, current_centroids=cc)
            ids = matching.ids
            segment_ids = [ids[label] for label in range(1, seg.k + 1)]
            seg = relabel(seg, ids)
        by_label_color = compare.colors_for(matching, palette, prev_refs)
        colors = {ids[label]: color for label, color in by_label_color.items()}
        names = {c.id: c.kept.name for c in matching.current if c.kept is not None}
    if policy == "keep" and previous is not None:
        centres = {s.segment_id: np.asarray(s.centroid) for s in previous.record.segments
                   if s.centroid}
        missing = set(np.unique(seg.labels).tolist()) - set(centres)
        if missing:  # a previous run recorded without centres: this run's own
            centres.update({k: v for k, v in compare.centroids_of(z, seg.labels).items()
                            if k in missing})
    else:
        centres = compare.centroids_of(z, seg.labels)
    distances = compare.centroid_distances(z, seg.labels, centres)
    flows = drift = None
    if previous is not None and policy != "first":
        if counted is not None:
            flows = counted.relabeled(ids)
        elif previous.assignments is not None and keys is not None:
            now = assignments_of(keys, seg.labels, value, distances)
            flows = compare.flows(previous.assignments, now,
                                  previous_ids=[s.segment_id for s in previous.record.segments],
                                  current_ids=sorted(set(ids.values())))
        labels_ = {f: ff.meta[f].label for f in features if f in ff.meta}
        reference = [compare.Bins.from_dict(b) for b in previous.record.bins]
        shifts: dict[str, float] = {}
        aged = ""
        if policy == "keep":
            known = {b.feature for b in reference}
            clocks = {f: ff.meta[f].clock for f in features if f in ff.meta and f in known}
            before = previous.record.as_of_date
            shifts = compare.calendar_shifts(clocks, before, as_of)
            if shifts and before is not None:
                aged = compare.ageing_text([labels_.get(f, f) for f in features if f in shifts],
                                           before, as_of)
        # Customers aged back to the previous run's date: a month on everyone's tenure moves
        # them all off the kept centres without any change of behaviour.
        fit = distances if not shifts else compare.centroid_distances(
            seg.scaler.transform(compare.younger(ff.matrix(features), features, shifts)),
            seg.labels, centres)
        drift = compare.drift(reference, x, features, labels_,
                              distance_previous=previous.record.distance
                              if policy == "keep" else None,
                              distance_current=float(fit.mean()) if len(fit) else None,
                              seed=seed, shifts=shifts, aged=aged)
        if previous.missing:
            notes.append(previous.missing[0].upper() + previous.missing[1:] + ".")
    return Step(seg=seg, policy=policy, names=names, colors=colors, segment_ids=segment_ids,
                z=z, distances=distances, bins=bins, previous=previous, flows=flows,
                matching=matching, drift=drift, notes=notes)


# the report's changes and the history record -----------------------------------------------

def changes(step: Step, profiles: Profiles, names: dict[int, str], *, as_of: Any,
            currency: str, value_unit: str, value_label: str) -> Changes | None:
    """The Report's Changes (None on a first run)."""
    previous = step.previous
    if previous is None or step.policy == "first" or step.matching is None:
        return None
    record = previous.record
    now = [compare.SegmentNow(sp.id, names[sp.id], sp.size, sp.share, sp.value_share)
           for sp in profiles.segments]
    before = [compare.SegmentNow(s.segment_id, s.name, s.size, s.share, s.value_share)
              for s in record.segments]
    prev_names = {s.segment_id: s.name for s in record.segments}
    prev_colors = {s.segment_id: s.color for s in record.segments}
    rows = compare.segment_changes(_present(step.matching, {sp.id for sp in profiles.segments}),
                                   now, before)
    segments = [SegmentChange(
        id=r.id, name=r.name, color=step.colors.get(r.id, prev_colors.get(r.id, "#999999")),
        transition=r.transition, text=compare.transition_text(r, names, prev_names),
        customers=r.customers, previous_customers=r.previous_customers, share=r.share,
        previous_share=r.previous_share, share_delta=r.share_delta, value_share=r.value_share,
        previous_value_share=r.previous_value_share, value_share_delta=r.value_share_delta)
        for r in rows]
    flows = step.flows
    notes = list(step.notes)
    gap = compare.gap(record.as_of_date, as_of)
    if gap is not None:
        notes.insert(0, gap.text)
    drift = None
    if step.drift is not None:
        d = step.drift
        drift = Drift(
            features=[FeatureDrift(f.feature, f.label, f.psi, f.level) for f in d.features],
            distance_previous=_round(d.distance_previous),
            distance_current=_round(d.distance_current), distance_ratio=d.distance_ratio,
            exceeded=d.exceeded, reasons=list(d.reasons), psi_moderate=d.psi_moderate,
            psi_significant=d.psi_significant, distance_threshold=d.distance_threshold,
            aged=d.aged)
    movers = 0
    words: list[str] = []
    migration: list[dict[str, Any]] = []
    table = None
    if flows is not None:
        grey = "#999999"
        table = MigrationTable(
            columns=[names.get(i, f"Segment {i}") for i in flows.current_ids] + ["Lost"],
            colors=[step.colors.get(i, grey) for i in flows.current_ids] + [grey],
            rows=[MigrationRow(label=prev_names.get(i, f"Segment {i}"),
                               color=prev_colors.get(i, grey),
                               customers=[int(v) for v in flows.customers[1 + r]],
                               total=int(flows.customers[1 + r].sum()))
                  for r, i in enumerate(flows.previous_ids)]
            + [MigrationRow(label="New customers", color=grey,
                            customers=[int(v) for v in flows.customers[0]],
                            total=int(flows.customers[0].sum()))])
        migration = [f.to_dict() for f in flows.migration]
        words = compare.largest_flows(flows, prev_names, names, currency=currency,
                                      value_unit=value_unit, value_label=value_label)
        movers = movers_count(step, profiles)
    return Changes(
        previous_run_id=record.run_id, previous_period=record.period_label, policy=step.policy,
        new_customers=flows.new_customers if flows else None,
        lost_customers=flows.lost_customers if flows else None,
        returning_customers=flows.returning_customers if flows else None,
        migration=migration, segments=segments, drift=drift, largest_flows=words, notes=notes,
        movers=movers, table=table)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _present(matching: compare.Matching, present: set[int]) -> compare.Matching:
    """The matching without current segments that ended up with no customers (keep)."""
    return compare.Matching(current=tuple(c for c in matching.current if c.id in present),
                            previous=matching.previous)


def worth(profiles: Profiles) -> dict[int, float]:
    return {sp.id: sp.value_per_customer for sp in profiles.segments}


def previous_worth(record: RunRecord) -> dict[int, float]:
    return {s.segment_id: (s.value / s.size if s.size else 0.0) for s in record.segments}


def movement_codes(step: Step, profiles: Profiles) -> np.ndarray | None:
    """Per customer of this run: compare.MOVEMENTS codes (None without a comparison)."""
    if step.flows is None or step.previous is None or step.flows.previous_segment is None:
        return None
    return compare.movement(step.flows.previous_segment, step.seg.labels,
                            previous_worth(step.previous.record), worth(profiles))


def down_cells(step: Step, profiles: Profiles) -> np.ndarray:
    """Returning customers' cells of the migration matrix (previous × current segment)
    that are moves down (compare.movement): a movement depends only on the two segments, so
    counting cells gives what ``movement_codes`` marks customer by customer, also when the
    customers are not on the driver (Spark)."""
    flows, previous = step.flows, step.previous
    assert flows is not None and previous is not None
    prev = np.repeat(np.asarray(flows.previous_ids, dtype=np.int64), len(flows.current_ids))
    cur = np.tile(np.asarray(flows.current_ids, dtype=np.int64), len(flows.previous_ids))
    codes = compare.movement(prev, cur, previous_worth(previous.record), worth(profiles))
    down = codes == compare.MOVEMENTS.index("down")
    return down.reshape(len(flows.previous_ids), len(flows.current_ids))


def mover_cells(step: Step, profiles: Profiles) -> np.ndarray:
    """The cells of ``down_cells`` whose previous segment was valuable last period: the
    customers ``movers_mask`` marks (movers.csv)."""
    assert step.flows is not None and step.previous is not None
    before = [compare.SegmentNow(s.segment_id, s.name, s.size, s.share, s.value_share)
              for s in step.previous.record.segments]
    valuable = np.isin(step.flows.previous_ids, sorted(compare.valuable(before)))
    return down_cells(step, profiles) & valuable[:, None]


def movers_count(step: Step, profiles: Profiles) -> int:
    """How many customers moved down from a segment that was valuable last period (the
    count of ``movers_mask``, from the migration matrix)."""
    assert step.flows is not None
    return int(step.flows.overlap[mover_cells(step, profiles)].sum())


def movers_mask(step: Step, profiles: Profiles) -> np.ndarray:
    """Customers who moved down from a segment that was valuable last period."""
    codes = movement_codes(step, profiles)
    if codes is None or step.flows is None or step.previous is None:
        return np.zeros(len(step.seg.labels), dtype=bool)
    before = [compare.SegmentNow(s.segment_id, s.name, s.size, s.share, s.value_share)
              for s in step.previous.record.segments]
    valuable = sorted(compare.valuable(before))
    down = codes == compare.MOVEMENTS.index("down")
    assert step.flows.previous_segment is not None  # movement_codes has codes
    return down & np.isin(step.flows.previous_segment, valuable)


def customer_columns(step: Step, profiles: Profiles, index: pd.Index) -> pd.DataFrame | None:
    """segments.csv's previous_segment, previous_persona and movement for the kept rows;
    None when there is nothing to compare with (output.segments_table then writes the
    columns empty)."""
    codes = movement_codes(step, profiles)
    if codes is None or step.flows is None or step.previous is None:
        return None
    prev = step.flows.previous_segment
    assert prev is not None  # movement_codes has codes
    names = {s.segment_id: s.name for s in step.previous.record.segments}
    previous_segment = pd.array(np.where(prev >= 0, prev, 0), dtype="Int64")
    previous_segment[prev < 0] = pd.NA
    persona = pd.Series(previous_segment, index=index).map(names).astype("string")
    return pd.DataFrame({"previous_segment": pd.Series(previous_segment, index=index),
                         "previous_persona": persona,
                         "movement": pd.Series(compare.movement_words(codes), index=index
                                               ).astype("string")}, index=index)


def record(*, step: Step, profiles: Profiles, names: dict[int, str], cfg: Config, run_id: str,
           period: str, period_label: str, as_of: str, source: str, run_dir: str, k: int,
           gates: list[Any]) -> RunRecord:
    """The run's history entry (also written to its folder as series.json)."""
    centres = compare.centroids_of(step.z, step.seg.labels)
    if step.policy == "keep" and step.previous is not None:
        kept = {s.segment_id: s.centroid for s in step.previous.record.segments if s.centroid}
        centres = {i: np.asarray(kept[i]) if i in kept else c for i, c in centres.items()}
    transitions = {}
    if step.matching is not None:
        transitions = {c.id: c.transition for c in step.matching.current}
    segs = tuple(SegmentRecord(
        segment_id=sp.id, name=names[sp.id], color=step.colors[sp.id], size=sp.size,
        share=round(sp.share, 6), value=round(sp.value_share * profiles.total_value, 2),
        value_share=round(sp.value_share, 6),
        centroid=tuple(float(v) for v in centres[sp.id]),
        transition=transitions.get(sp.id, "")) for sp in profiles.segments)
    return RunRecord(
        series=series_name(cfg), period=period, run_id=run_id, as_of=as_of,
        period_label=period_label, source=source, run_dir=run_dir,
        customers=int(sum(sp.size for sp in profiles.segments)),
        total_value=round(float(profiles.total_value), 2), k=k, policy=step.policy,
        previous_run_id=step.previous.record.run_id if step.previous else None,
        features=tuple(step.seg.scaler.features),
        scaling={key: (v.tolist() if isinstance(v, np.ndarray) else v)
                 for key, v in step.seg.scaler.to_dict().items()},
        bins=tuple(b.to_dict() for b in step.bins),
        distance=round(float(step.distances.mean()), 6) if len(step.distances) else None,
        gates=tuple({"name": g.name, "passed": g.passed, "reason": g.reason} for g in gates),
        segments=segs)


def trend(history_runs: list[RunRecord], current: RunRecord, fresh: bool) -> list[TrendPoint]:
    """The last 12 periods of the series, this run included; a run started afresh
    (--no-previous) begins a new trend."""
    runs = [r for r in history_runs if r.period < current.period]
    if fresh:
        runs = []
    else:
        starts = [i for i, r in enumerate(runs) if r.policy == "first"]
        if starts:
            runs = runs[starts[-1]:]
    points = [compare.TrendPoint(r.period, r.period_label, r.run_id, s.segment_id, s.name,
                                 s.color, s.size, s.share, s.value, s.value_share)
              for r in [*runs, current] for s in r.segments]
    t = compare.trend(points)
    return [TrendPoint(period=p.period, period_label=p.period_label, run_id=p.run_id,
                       id=p.segment_id, name=p.name, color=p.color, customers=p.customers,
                       share=p.share, value_share=p.value_share) for p in t.points]


def drift_gate(changes_: Changes | None) -> Any:
    """The --fail-on-drift gate (a Gate), or None when there is nothing to check."""
    from .report import Gate

    if changes_ is None or changes_.drift is None:
        return Gate(name="fail_on_drift", threshold=compare.PSI_SIGNIFICANT, value=0.0,
                    passed=True, reason="no previous run to measure drift against")
    d = changes_.drift
    top = max((f.psi for f in d.features), default=0.0)
    reason = "; ".join(d.reasons) if d.exceeded else (
        f"no feature moved past a population stability index of {d.psi_significant:g} "
        f"(largest {top:.2f})")
    return Gate(name="fail_on_drift", threshold=d.psi_significant, value=round(top, 4),
                passed=not d.exceeded, reason=reason)


def movers_table(step: Step, profiles: Profiles, names: dict[int, str], keys: pd.Index,
                 key_name: str, value: np.ndarray) -> pd.DataFrame:
    """movers.csv: the customers who moved down from a segment that was valuable last period,
    most valuable last period first: ready for a CRM win-back list."""
    assert step.flows is not None and step.previous is not None
    mask = movers_mask(step, profiles)
    prev_names = {s.segment_id: s.name for s in step.previous.record.segments}
    assert step.flows.previous_segment is not None and step.flows.previous_value is not None
    before = step.flows.previous_value[mask]
    table = pd.DataFrame({
        key_name: keys[mask],
        "previous_segment": step.flows.previous_segment[mask],
        "previous_persona": pd.Series(step.flows.previous_segment[mask]).map(prev_names).values,
        "segment": step.seg.labels[mask],
        "persona": pd.Series(step.seg.labels[mask]).map(names).values,
        "previous_value": np.round(before, 2),
        "value": np.round(value[mask], 2),
        "value_change": np.round(value[mask] - before, 2),
    })
    table = table.sort_values(["previous_value", key_name], ascending=[False, True],
                              kind="stable")
    from .output import neutralise

    for column in (key_name, "previous_persona", "persona"):
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].map(neutralise, na_action="ignore")
    return table.reset_index(drop=True)


def deltas(step: Step, profiles: Profiles) -> dict[int, Any]:
    """Per segment that continues one of last period's (same id): what changed, for the
    playbook's rules on change."""
    from .playbook import SegmentDelta

    if step.previous is None or step.flows is None:
        return {}
    record = step.previous.record
    before = {s.segment_id: s for s in record.segments}
    flows = step.flows
    down = down_cells(step, profiles)
    out = {}
    for sp in profiles.segments:
        prev = before.get(sp.id)
        if prev is None or sp.id not in flows.previous_ids:
            continue
        row = 1 + flows.previous_ids.index(sp.id)
        moved_down = int(flows.overlap[row - 1][down[row - 1]].sum())
        out[sp.id] = SegmentDelta(
            share_delta=round(sp.share - prev.share, 6), share=sp.share,
            previous_share=prev.share, previous_customers=prev.size, moved_down=moved_down,
            lost=int(flows.customers[row, -1]))
    return out
