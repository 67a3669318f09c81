"""Compare a run with the previous run of its series: who is new, lost or returning, who moved
where, which segments survived, split, merged, disappeared or emerged, how far the features
drifted, and the trend over the last periods.

Pure functions on arrays and small records, no I/O: the pipeline reads the previous run's
assignments and history rows, and hands them in.

- **Customers** are followed by their key. New = in this run, not in the previous one; lost = in
  the previous run, not in this one; returning = in both. The **migration matrix** counts them
  previous segment × this segment, with a "new" row and a "lost" column. A cell's value is this
  run's value of its customers, except the "lost" column, which has their value in the previous
  run (the value that left).
- **Segment identity after a refit** follows MONIC (Spiliopoulou, Ntoutsi, Theodoridis and
  Schult, "MONIC: modeling and monitoring cluster transitions", KDD 2006), on the returning
  customers: a previous segment *survives* as the current segment that holds at least ``TAU``
  (half) of its returning customers, when no other previous segment does; several previous
  segments matched to one current segment *merged* (it keeps the identity of the one that
  brought most customers); a previous segment whose returning customers are spread over several
  current segments, each holding at least ``TAU_SPLIT`` of them and together ``TAU``, *split*
  (its largest part keeps its identity); one that is neither *disappeared*; a current segment
  that takes no identity *emerged*. One extension: a matched segment also counts as split when
  another current segment holds ``TAU_SPLIT`` of its customers and is itself made at least
  ``TAU`` of them (a 60/40 split would otherwise read as a survival and an emergence).
  Segments with fewer than ``MIN_SHARED`` returning customers (a table without customer keys,
  a segment of new customers) are matched by centroid distance instead.
- **Drift**: the population stability index (PSI) of every model feature against bins learned
  on the previous run (deciles, or the values themselves for a feature with few of them), with
  the thresholds used in credit scoring (Siddiqi, "Credit Risk Scorecards", 2006): below 0.1
  stable, 0.1-0.25 moderate, above 0.25 significant; and the mean distance of customers to
  their segment's centre, this run against the previous one (``DISTANCE_RATIO``). A feature
  that grows one-for-one with the calendar (tenure, age: its ``clock``) is compared after
  ageing the previous run's bins by the time between the two runs' as_of dates
  (``calendar_shifts``): a month on every customer's tenure is the calendar, not a change of
  customers. Recency has no clock: a customer who did not buy is lapsing, which is behaviour.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import fmt

if TYPE_CHECKING:
    from .scaling import Scaling

NEW = "new"  # the migration matrix's row of customers not in the previous run
LOST = "lost"  # ... and its column of customers not in this run

TAU = 0.5  # MONIC's match threshold: the share of a segment's returning customers in its match
TAU_SPLIT = 0.2  # the smallest share of a segment's returning customers that makes a split part
MIN_SHARED = 30  # fewer returning customers than this: the segment is matched by its centre
# A centre matches a previous one when it lies within this fraction of the distance from that
# previous centre to its nearest neighbour among the previous centres.
CENTROID_MATCH = 0.5

PSI_MODERATE = 0.1  # PSI at or above this: the feature moved (worth a look)
PSI_SIGNIFICANT = 0.25  # PSI at or above this: the feature changed; the kept model is out of date
PSI_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin, so the logarithm stays finite
BIN_SAMPLE = 200_000  # customers the bin edges are learned on (quantiles of 10 M rows cost seconds)
# Customers sitting this much further from their segment's centre than last period (on average)
# no longer fit the kept segments well.
DISTANCE_RATIO = 1.2
VALUABLE_INDEX = 1.0  # a segment is valuable when its customers are worth more than the average
TREND_PERIODS = 12

TRANSITIONS = ("survived", "split", "merged", "disappeared", "emerged")
MOVEMENTS = ("same", "up", "down", "new")


# customers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Assignments:
    """One run's customers: key, segment id and value, aligned. ``distances``: how far each
    customer sits from its segment's centre in the model space (None when not measured)."""

    keys: pd.Index
    segments: np.ndarray
    values: np.ndarray
    distances: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.keys)
        if len(self.segments) != n or len(self.values) != n or (
                self.distances is not None and len(self.distances) != n):
            raise ValueError("keys, segments, values and distances must have the same length")

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Flow:
    """One cell of the migration matrix. source: a previous segment id or "new"; target: a
    current segment id or "lost"."""

    source: int | str
    target: int | str
    customers: int
    value: float

    def to_dict(self) -> dict[str, int | str | float]:
        return {"from": self.source, "to": self.target, "customers": self.customers,
                "value": self.value}


@dataclass(frozen=True)
class Flows:
    """Customers followed from the previous run to this one."""

    previous_ids: tuple[int, ...]  # rows after "new"
    current_ids: tuple[int, ...]  # columns before "lost"
    customers: np.ndarray  # (1 + previous) × (current + 1): row 0 = new, last column = lost
    value: np.ndarray  # the same cells' value
    # per current customer: its previous segment id (-1 = new) and its value then (NaN = new);
    # None when the engine counted the cells without the customers on the driver (Spark)
    previous_segment: np.ndarray | None = None
    previous_value: np.ndarray | None = None

    @property
    def new_customers(self) -> int:
        return int(self.customers[0, :-1].sum())

    @property
    def lost_customers(self) -> int:
        return int(self.customers[1:, -1].sum())

    @property
    def returning_customers(self) -> int:
        return int(self.customers[1:, :-1].sum())

    @property
    def overlap(self) -> np.ndarray:
        """Returning customers, previous segment × current segment."""
        return self.customers[1:, :-1]

    def cell(self, source: int | str, target: int | str) -> Flow:
        i = 0 if source == NEW else 1 + self.previous_ids.index(int(source))
        j = len(self.current_ids) if target == LOST else self.current_ids.index(int(target))
        return Flow(source, target, int(self.customers[i, j]), float(self.value[i, j]))

    def relabeled(self, ids: dict[int, int]) -> Flows:
        """The same cells with each current label given its series id (label -> id)."""
        targets = tuple(sorted(set(ids.values())))
        width = len(targets) + 1
        customers = np.zeros((len(self.previous_ids) + 1, width), dtype=np.int64)
        value = np.zeros(customers.shape)
        columns = [targets.index(ids[label]) for label in self.current_ids] + [width - 1]
        np.add.at(customers.T, columns, self.customers.T)
        np.add.at(value.T, columns, self.value.T)
        return Flows(previous_ids=self.previous_ids, current_ids=targets, customers=customers,
                     value=value)

    @property
    def migration(self) -> list[Flow]:
        """Every non-empty cell: previous segments in id order, then "new"; targets in id
        order, then "lost"."""
        sources: list[int | str] = [NEW, *self.previous_ids]
        targets: list[int | str] = [*self.current_ids, LOST]
        cells = [Flow(sources[i], targets[j], int(self.customers[i, j]),
                      round(float(self.value[i, j]), 2))
                 for i in [*range(1, len(sources)), 0] for j in range(len(targets))
                 if self.customers[i, j] > 0]
        return cells


def _comparable(previous: pd.Index, current: pd.Index) -> tuple[pd.Index, pd.Index]:
    """Keys of two runs as one kind: an id read as numbers one month and as text the next
    (a leading zero, a letter added) is compared as text."""
    if previous.dtype == current.dtype or (pd.api.types.is_integer_dtype(previous.dtype)
                                           and pd.api.types.is_integer_dtype(current.dtype)):
        return previous, current
    return previous.astype("string"), current.astype("string")


def _positions(ids: Sequence[int], labels: np.ndarray, what: str) -> np.ndarray:
    order = np.asarray(ids, dtype=np.int64)
    pos = np.searchsorted(order, labels)
    pos = np.clip(pos, 0, max(len(order) - 1, 0))
    if len(labels) and (len(order) == 0 or (order[pos] != labels).any()):
        raise ValueError(f"{what} segment ids {sorted(set(labels.tolist()) - set(ids))} are not "
                         f"among {list(ids)}")
    return pos


def flows(previous: Assignments, current: Assignments,
          previous_ids: Iterable[int] | None = None,
          current_ids: Iterable[int] | None = None) -> Flows:
    """New, lost and returning customers and the migration matrix. The id lists name every
    segment of each run (one may have no customers); by default the ids that occur."""
    if not previous.keys.is_unique or not current.keys.is_unique:
        raise ValueError("customer keys must be unique within a run")
    prev_ids = tuple(sorted(set(previous_ids) if previous_ids is not None
                            else set(np.unique(previous.segments).tolist())))
    cur_ids = tuple(sorted(set(current_ids) if current_ids is not None
                           else set(np.unique(current.segments).tolist())))
    pk, ck = _comparable(previous.keys, current.keys)
    pos = pk.get_indexer(ck)
    back = pos >= 0
    rows = np.zeros(len(current), dtype=np.int64)  # 0 = new
    prev_seg = previous.segments.astype(np.int64, copy=False)
    rows[back] = 1 + _positions(prev_ids, prev_seg[pos[back]], "previous")
    cols = _positions(cur_ids, current.segments.astype(np.int64, copy=False), "current")
    width = len(cur_ids) + 1
    size = (len(prev_ids) + 1) * width
    code = rows * width + cols
    counts = np.bincount(code, minlength=size)
    value = np.bincount(code, weights=current.values.astype("float64", copy=False),
                        minlength=size)
    stayed = np.zeros(len(previous), dtype=bool)
    stayed[pos[back]] = True
    gone = ~stayed
    if gone.any():
        lost_rows = 1 + _positions(prev_ids, prev_seg[gone], "previous")
        lost_code = lost_rows * width + (width - 1)
        counts = counts + np.bincount(lost_code, minlength=size)
        value = value + np.bincount(lost_code, minlength=size,
                                    weights=previous.values[gone].astype("float64", copy=False))
    previous_segment = np.full(len(current), -1, dtype=np.int64)
    previous_segment[back] = prev_seg[pos[back]]
    previous_value = np.full(len(current), np.nan)
    previous_value[back] = previous.values[pos[back]]
    shape = (len(prev_ids) + 1, width)
    return Flows(previous_ids=prev_ids, current_ids=cur_ids,
                 customers=counts.reshape(shape).astype(np.int64),
                 value=value.reshape(shape), previous_segment=previous_segment,
                 previous_value=previous_value)


def counted_flows(cells: Iterable[tuple[int, int, int, float]], previous_ids: Iterable[int],
                  current_ids: Iterable[int]) -> Flows:
    """Flows from cells counted elsewhere (the Spark engine's join of the two runs'
    customers): (previous segment id or -1 for new, current segment id or -1 for lost,
    customers, value), the value being this run's, or the previous run's for the lost. The
    same matrix ``flows`` builds, without the per-customer columns."""
    prev_ids = tuple(sorted(set(previous_ids)))
    cur_ids = tuple(sorted(set(current_ids)))
    width = len(cur_ids) + 1
    customers = np.zeros((len(prev_ids) + 1, width), dtype=np.int64)
    value = np.zeros(customers.shape)
    for source, target, n, v in cells:
        if source == -1 and target == -1:
            continue  # neither run's customer (cannot happen in a join; nothing to count)
        i = 0 if source == -1 else 1 + int(_positions(prev_ids, np.array([source]),
                                                      "previous")[0])
        j = width - 1 if target == -1 else int(_positions(cur_ids, np.array([target]),
                                                          "current")[0])
        customers[i, j] += int(n)
        value[i, j] += float(v)
    return Flows(previous_ids=prev_ids, current_ids=cur_ids, customers=customers, value=value)


# segment identity --------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentRef:
    """A segment as the comparison sees it: id, persona, colour, size, value per customer and
    its centre in the model space."""

    id: int
    name: str = ""
    color: str = ""
    size: int = 0
    value_per_customer: float = 0.0
    centroid: tuple[float, ...] = ()


@dataclass(frozen=True)
class Identity:
    """What a current segment is, against the previous run."""

    label: int  # the segment's number in this run's fit
    id: int  # its id in the series: the previous segment's when it kept one, else a new id
    transition: str  # survived, split, merged or emerged
    kept: SegmentRef | None  # the previous segment whose id, name and colour it keeps
    sources: tuple[int, ...] = ()  # previous ids it came from (split from, merged from)
    by: str = ""  # how it was matched: customers, centroid, model (kept), or "" (emerged)


@dataclass(frozen=True)
class Fate:
    """What became of a previous segment."""

    id: int
    transition: str  # survived, split, merged or disappeared
    into: tuple[int, ...] = ()  # current labels it went to


@dataclass(frozen=True)
class Matching:
    current: tuple[Identity, ...]  # one per current segment, in label order
    previous: tuple[Fate, ...]  # one per previous segment, in id order

    def of(self, label: int) -> Identity:
        return next(c for c in self.current if c.label == label)

    def fate(self, previous_id: int) -> Fate:
        return next(p for p in self.previous if p.id == previous_id)

    @property
    def ids(self) -> dict[int, int]:
        return {c.label: c.id for c in self.current}

    @property
    def unnamed(self) -> tuple[int, ...]:
        """Current labels that keep no identity: only they get a new persona name."""
        return tuple(c.label for c in self.current if c.kept is None)


def keep_matching(previous: Sequence[SegmentRef], current_sizes: dict[int, int],
                  model_names: dict[int, str] | None = None) -> Matching:
    """Under the keep policy the model is last period's: segment i is segment i. One that
    nobody is assigned to any more disappeared. One of the model's segments that had nobody
    last period (so is not among ``previous``) and has customers again emerged, under its id
    and, from ``model_names``, the name it had when it last had customers."""
    refs = {p.id: p for p in previous}
    names = model_names or {}
    current = tuple(
        Identity(label=i, id=i, transition="survived", kept=refs[i], by="model") if i in refs
        else Identity(label=i, id=i, transition="emerged",
                      kept=SegmentRef(id=i, name=names[i]) if names.get(i) else None,
                      by="model")
        for i in sorted(set(refs) | {j for j, n in current_sizes.items() if n > 0})
        if current_sizes.get(i, 0) > 0)
    fates = tuple(Fate(i, "survived", (i,)) if current_sizes.get(i, 0) > 0
                  else Fate(i, "disappeared") for i in sorted(refs))
    return Matching(current=current, previous=fates)


def _shares(m: np.ndarray, axis: int) -> np.ndarray:
    total = m.sum(axis=axis, keepdims=True).astype("float64")
    return np.divide(m, total, out=np.zeros(m.shape, dtype="float64"), where=total > 0)


def match_segments(previous: Sequence[SegmentRef], current: Sequence[SegmentRef],
                   overlap: np.ndarray | None, *, next_id: int,
                   previous_centroids: np.ndarray | None = None,
                   current_centroids: np.ndarray | None = None) -> Matching:
    """Match a refit's segments (``current``, by label) to the previous run's.

    overlap: returning customers, previous × current in the order given (None: no customer
    keys to follow). The centroids, when given, are both in one space (``common_space``); they
    match segments that share too few customers. next_id: the first id an emerged segment may
    take (one above every id the series has used, so an id never comes back with another
    meaning)."""
    prev_ids = [p.id for p in previous]
    labels = [c.id for c in current]
    n_p, n_c = len(prev_ids), len(labels)
    o = np.zeros((n_p, n_c), dtype=np.int64) if overlap is None else np.asarray(overlap)
    if o.shape != (n_p, n_c):
        raise ValueError(f"overlap is {o.shape}, expected {(n_p, n_c)}")
    r = _shares(o, axis=1)  # share of previous i's returning customers now in j
    c = _shares(o, axis=0)  # share of current j's returning customers that were in i
    shared = o.sum(axis=1) >= MIN_SHARED
    kept: dict[int, tuple[int, str]] = {}  # current column -> (previous row, how)
    cur_kind: dict[int, tuple[str, tuple[int, ...]]] = {}
    prev_kind: dict[int, tuple[str, tuple[int, ...]]] = {}

    # 1. MONIC matches: previous i -> the current segment that holds at least TAU of it.
    match = {i: int(np.argmax(r[i])) for i in range(n_p)
             if shared[i] and n_c and r[i].max() >= TAU}
    targets: dict[int, list[int]] = {}
    for i, j in match.items():
        targets.setdefault(j, []).append(i)
    for j, matched in sorted(targets.items()):
        keeper = max(matched, key=lambda i: (o[i, j], -prev_ids[i]))
        kept[j] = (keeper, "customers")
        if len(matched) == 1:
            cur_kind[j] = ("survived", (prev_ids[keeper],))
            prev_kind[keeper] = ("survived", (j,))
        else:
            ordered = tuple(prev_ids[i] for i in sorted(matched, key=lambda i: -o[i, j]))
            cur_kind[j] = ("merged", ordered)
            for i in matched:
                prev_kind[i] = ("merged", (j,))

    # 2. Splits. The largest segments first, so a part is claimed by the segment it came from.
    def claimable(i: int, j: int) -> bool:
        return j not in kept and j not in cur_kind and r[i, j] >= TAU_SPLIT and c[i, j] >= TAU

    for i in sorted(range(n_p), key=lambda i: (-o[i].sum(), prev_ids[i])):
        if not shared[i]:
            continue
        if i in match:
            j0 = match[i]
            if cur_kind.get(j0, ("",))[0] != "survived":
                continue  # merged: its customers went mostly into a segment shared with others
            extra = [j for j in range(n_c) if j != j0 and claimable(i, j)]
            if extra:
                parts = (j0, *sorted(extra, key=lambda j: -o[i, j]))
                prev_kind[i] = ("split", parts)
                cur_kind[j0] = ("split", (prev_ids[i],))
                for j in extra:
                    cur_kind[j] = ("split", (prev_ids[i],))
        elif i not in prev_kind:
            parts_ = [j for j in range(n_c) if claimable(i, j)]
            if len(parts_) >= 2 and r[i, parts_].sum() >= TAU:
                parts_.sort(key=lambda j: -o[i, j])
                kept[parts_[0]] = (i, "customers")
                prev_kind[i] = ("split", tuple(parts_))
                for j in parts_:
                    cur_kind[j] = ("split", (prev_ids[i],))

    # 3. Segments too few customers tell about: the nearest centre, within CENTROID_MATCH of
    #    the previous centre's distance to its nearest neighbour.
    if previous_centroids is not None and current_centroids is not None and n_p and n_c:
        open_prev = [i for i in range(n_p) if i not in prev_kind and not shared[i]]
        open_cur = [j for j in range(n_c) if j not in kept and j not in cur_kind]
        if open_prev and open_cur:
            from scipy.optimize import linear_sum_assignment

            pc = np.asarray(previous_centroids, dtype="float64")
            cc = np.asarray(current_centroids, dtype="float64")
            between = np.linalg.norm(pc[:, None, :] - pc[None, :, :], axis=2)
            np.fill_diagonal(between, np.inf)
            reach = CENTROID_MATCH * between.min(axis=1)  # inf with one previous segment
            d = np.linalg.norm(pc[open_prev][:, None, :] - cc[open_cur][None, :, :], axis=2)
            rows, cols = linear_sum_assignment(d)
            for a, b in zip(rows, cols, strict=True):
                i, j = open_prev[a], open_cur[b]
                if d[a, b] <= reach[i]:
                    kept[j] = (i, "centroid")
                    cur_kind[j] = ("survived", (prev_ids[i],))
                    prev_kind[i] = ("survived", (j,))

    identities = []
    new_id = next_id
    for j, label in enumerate(labels):
        if j in kept:
            i, how = kept[j]
            kind, sources = cur_kind[j]
            identities.append(Identity(label=label, id=prev_ids[i], transition=kind,
                                       kept=previous[i], sources=sources, by=how))
        else:
            kind, sources = cur_kind.get(j, ("emerged", ()))
            identities.append(Identity(label=label, id=new_id, transition=kind, kept=None,
                                       sources=sources, by="customers" if sources else ""))
            new_id += 1
    fates = []
    for i, pid in enumerate(prev_ids):
        kind, into = prev_kind.get(i, ("disappeared", ()))
        fates.append(Fate(id=pid, transition=kind, into=tuple(labels[j] for j in into)))
    return Matching(current=tuple(identities), previous=tuple(sorted(fates, key=lambda f: f.id)))


def colors_for(matching: Matching, palette: Sequence[str],
               previous: Sequence[SegmentRef] = ()) -> dict[int, str]:
    """A colour per current label: a kept segment keeps its colour, a new one takes the first
    palette colour no kept segment uses (and, while there are such, none the previous run
    used either), so two segments never share a colour a reader would confuse."""
    out = {c.label: c.kept.color for c in matching.current if c.kept is not None and c.kept.color}
    taken = {col.lower() for col in out.values()}
    recent = {p.color.lower() for p in previous if p.color}
    free = [col for col in palette if col.lower() not in taken | recent] + \
        [col for col in palette if col.lower() in recent - taken]
    for c in matching.current:
        if c.label in out:
            continue
        if free:
            out[c.label] = free.pop(0)
        else:  # more segments than colours: repeat, as charts.palette does
            out[c.label] = palette[len(out) % len(palette)]
    return out


def common_space(previous_centroids: np.ndarray, previous_scaling: Scaling,
                 current_centroids: np.ndarray, current_scaling: Scaling
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Both runs' centres in the current run's model space, on the features both models use.

    A centre is a point of its run's scaled space: undo that run's scaling (and log), then
    apply the current one. Returns the two arrays and the features kept."""
    common = [f for f in current_scaling.features if f in previous_scaling.features]
    pj = [previous_scaling.features.index(f) for f in common]
    cj = [current_scaling.features.index(f) for f in common]
    prev = np.asarray(previous_centroids, dtype="float64")
    raw = prev * previous_scaling.scale + previous_scaling.center
    logged = previous_scaling.log1p
    raw[:, logged] = np.expm1(raw[:, logged])
    z = np.zeros((len(prev), len(current_scaling.features)))
    z[:, cj] = raw[:, pj]
    moved = current_scaling.transform(z)[:, cj]
    cur = np.asarray(current_centroids, dtype="float64")[:, cj]
    return moved, cur, common


# drift -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bins:
    """A feature's bins learned on a run: interior edges and each bin's share of customers."""

    feature: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "edges": list(self.edges), "shares": list(self.shares)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Bins:
        edges = data["edges"]
        shares = data["shares"]
        assert isinstance(edges, list) and isinstance(shares, list)
        return cls(feature=str(data["feature"]), edges=tuple(float(e) for e in edges),
                   shares=tuple(float(s) for s in shares))

    def aged(self, by: float) -> Bins:
        """The bins of the same customers ``by`` (in the feature's unit) later. Each edge sits a
        hair below its moved place, so a value the calendar moved exactly onto it (a tenure of
        d + e days / 30.4375) stays on its side despite rounding."""
        if by == 0:
            return self
        moved = [e + by for e in self.edges]
        return Bins(self.feature, tuple(m - 1e-9 * max(1.0, abs(m)) for m in moved),
                    self.shares)


DAYS_PER = {"days": 1.0, "months": 30.4375, "years": 365.25}
CLOCKS = (*DAYS_PER, "calendar years")  # units a feature can age in (FeatureMeta.clock)


def elapsed(previous_as_of: dt.date, current_as_of: dt.date, clock: str) -> float:
    """The time between two as_of dates in a feature's clock: days, months or years (a month
    of 30.4375 days, as tenure is computed), or "calendar years" (an age from a birth year
    moves on 1 January)."""
    if clock == "calendar years":
        return float(current_as_of.year - previous_as_of.year)
    return (current_as_of - previous_as_of).days / DAYS_PER[clock]


def whole_shift(values: np.ndarray, by: float) -> float:
    """The calendar's shift of a feature of whole numbers (an age in years, a tenure column in
    months) is the nearest whole number: a month ages an age in years by 0."""
    finite_ = values[np.isfinite(values)]
    return float(round(by)) if by and np.array_equal(finite_, np.round(finite_)) else by


def calendar_shifts(clocks: dict[str, str], previous_as_of: dt.date | None,
                    current_as_of: dt.date | None) -> dict[str, float]:
    """feature -> how far the calendar moved it between the two runs (features with a clock
    only; nothing when a run is undated or the dates do not move forward)."""
    if previous_as_of is None or current_as_of is None or current_as_of <= previous_as_of:
        return {}
    return {f: elapsed(previous_as_of, current_as_of, c) for f, c in clocks.items() if c}


def ageing_text(labels: Sequence[str], previous_as_of: dt.date, current_as_of: dt.date) -> str:
    """One sentence: which features were aged, and by how much time."""
    if not labels:
        return ""
    months = months_between(previous_as_of, current_as_of)
    days = (current_as_of - previous_as_of).days
    span = "the month" if months == 1 else f"the {months} months" if months > 1 else \
        f"the {days} day{'s' if days != 1 else ''}"
    who = "last month's" if months == 1 else "the previous report's"
    words = [labels[0]] + [w[:1].lower() + w[1:] for w in labels[1:]]
    names = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return (f"{names} {'is' if len(words) == 1 else 'are'} compared after ageing {who} "
            f"customers by {span} between the two reports.")


def sample_rows(n: int, seed: int) -> np.ndarray | slice:
    """The rows of n customers that reference_bins and drift read (all up to BIN_SAMPLE,
    else a seeded sample of BIN_SAMPLE, in order): given only those rows, they read them all."""
    if n <= BIN_SAMPLE:
        return slice(None)
    return np.sort(np.random.default_rng(seed).choice(n, BIN_SAMPLE, replace=False))


def reference_bins(x: np.ndarray, features: Sequence[str], seed: int = 0,
                   n_bins: int = PSI_BINS) -> list[Bins]:
    """Per column of x (customers × features): decile edges, or the midpoints between the
    values for a feature with at most n_bins of them (children 0-3, a yes/no share), and each
    bin's share, on a seeded sample of at most BIN_SAMPLE customers (a PSI's sampling noise on
    200,000 customers is about (bins - 1) / 200,000 = 0.00005, far below any threshold)."""
    x = np.asarray(x, dtype="float64")[sample_rows(len(x), seed)]
    out = []
    for j, name in enumerate(features):
        # One sort per column serves the distinct values, the quantiles (order statistics,
        # whatever the order of the values) and the count in each bin.
        col = np.sort(x[:, j])  # NaN last, like searchsorted places it: the last bin
        finite = col[np.isfinite(col)]
        distinct = np.empty(len(finite), dtype=bool)
        distinct[:1] = True
        np.not_equal(finite[1:], finite[:-1], out=distinct[1:])
        values = finite[distinct]
        if len(values) <= n_bins:
            edges = (values[:-1] + values[1:]) / 2
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1]))
        # bin i holds edges[i-1] <= v < edges[i]: the values below each edge, differenced
        below = np.searchsorted(col, edges, side="left")
        counts = np.diff(below, prepend=0, append=len(col))
        shares = counts / max(len(col), 1)
        out.append(Bins(name, tuple(float(e) for e in edges), tuple(float(s) for s in shares)))
    return out


def psi(bins: Bins, values: np.ndarray) -> float:
    """Population stability index of values against bins: Σ (a - e) · ln(a / e)."""
    edges = np.asarray(bins.edges, dtype="float64")
    counts = np.bincount(np.searchsorted(edges, np.asarray(values, dtype="float64"),
                                         side="right"), minlength=len(edges) + 1)
    actual = np.maximum(counts / max(len(values), 1), PSI_FLOOR)
    expected = np.maximum(np.asarray(bins.shares, dtype="float64"), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_level(value: float) -> str:
    if value >= PSI_SIGNIFICANT:
        return "significant"
    return "moderate" if value >= PSI_MODERATE else "stable"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    label: str
    psi: float
    level: str  # stable, moderate, significant


@dataclass(frozen=True)
class Drift:
    features: list[FeatureDrift]  # largest PSI first
    distance_previous: float | None  # mean distance of customers to their centre, last period
    distance_current: float | None
    distance_ratio: float | None
    exceeded: bool  # a feature's PSI or the distance ratio passed its threshold: refit
    reasons: list[str]  # one sentence per threshold passed
    psi_moderate: float = PSI_MODERATE
    psi_significant: float = PSI_SIGNIFICANT
    distance_threshold: float = DISTANCE_RATIO
    aged: str = ""  # the sentence saying which features were aged by the calendar, or ""


def drift(reference: Sequence[Bins], x: np.ndarray, features: Sequence[str],
          labels: dict[str, str] | None = None, distance_previous: float | None = None,
          distance_current: float | None = None, seed: int = 0,
          shifts: dict[str, float] | None = None, aged: str = "") -> Drift:
    """How far this run's features (columns of x, named by features) moved from the bins of
    the previous run (on a seeded sample of at most BIN_SAMPLE customers), and how far
    customers now sit from the kept centres. A feature the previous run has no bins for is
    left out. shifts: feature -> the time the calendar moved it (``calendar_shifts``): its
    previous bins are aged by that much first (``whole_shift``). distance_current should
    then be measured on this run's customers aged back as much (``younger``)."""
    labels = labels or {}
    shifts = shifts or {}
    ref = {b.feature: b for b in reference}
    found = []
    x = np.asarray(x, dtype="float64")[sample_rows(len(x), seed)]
    for j, name in enumerate(features):
        if name in ref:
            col = np.ascontiguousarray(x[:, j])
            value = round(psi(ref[name].aged(whole_shift(col, shifts.get(name, 0.0))), col), 4)
            found.append(FeatureDrift(name, labels.get(name, name), value, psi_level(value)))
    found.sort(key=lambda f: (-f.psi, f.feature))
    reasons = [f"{f.label} moved (population stability index {f.psi:.2f} ≥ "
               f"{PSI_SIGNIFICANT:g})" for f in found if f.level == "significant"]
    ratio = None
    if distance_previous and distance_current is not None and distance_previous > 0:
        ratio = round(distance_current / distance_previous, 4)
        if ratio >= DISTANCE_RATIO:
            reasons.append(f"customers sit {ratio - 1:.0%} further from their segment's centre "
                           f"than last period (threshold {DISTANCE_RATIO - 1:.0%})")
    return Drift(features=found, distance_previous=distance_previous,
                 distance_current=distance_current, distance_ratio=ratio,
                 exceeded=bool(reasons), reasons=reasons, aged=aged)


def younger(x: np.ndarray, features: Sequence[str], shifts: dict[str, float]) -> np.ndarray:
    """x with the calendar's shift taken off each aged feature: this run's customers as they
    were at the previous run's date, for the distance to the kept centres."""
    out = np.array(x, dtype="float64", copy=True)
    for j, name in enumerate(features):
        if shifts.get(name):
            out[:, j] -= whole_shift(out[:, j], shifts[name])
    return out


def centroid_distances(z: np.ndarray, labels: np.ndarray, centroids: dict[int, np.ndarray]
                       ) -> np.ndarray:
    """Euclidean distance of each row of z (the scaled model features) to its segment's
    centre, in chunks so 10 M customers need no 10 M × features temporary."""
    ids = sorted(centroids)
    table = np.vstack([np.asarray(centroids[i], dtype="float64") for i in ids])
    pos = _positions(ids, np.asarray(labels, dtype=np.int64), "assigned")
    out = np.empty(len(z), dtype="float64")
    # 65,536 rows a chunk: their temporaries (7 MB at 14 features) are reused from chunk to
    # chunk, where 262,144 rows' (29 MB) were mapped afresh each time: 1.5× faster at 1 M
    # customers, and each row's distance is the same einsum of the same differences.
    step = 1 << 16
    for start in range(0, len(z), step):
        stop = start + step
        diff = z[start:stop] - table[pos[start:stop]]
        out[start:stop] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def centroids_of(z: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Mean of the scaled model features per segment id."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and labels.min() >= 0 and labels.max() < max(len(labels), 1 << 16):
        # Segment ids are small: counted by id directly, with no sort (np.unique sorts the
        # labels); the sums add each id's rows in the same order either way.
        offsets = labels
        counts = np.bincount(offsets)
        ids = np.flatnonzero(counts)
    else:
        ids, offsets = np.unique(labels, return_inverse=True)
        counts = np.bincount(offsets, minlength=len(ids))
    rows = ids if offsets is labels else np.arange(len(ids))
    # One weighted bincount per feature: np.add.at on 10 M rows is ~20× slower.
    sums = np.column_stack([np.bincount(offsets, weights=z[:, j], minlength=len(counts))
                            for j in range(z.shape[1])]) if z.shape[1] else \
        np.zeros((len(counts), 0))
    return {int(i): sums[r] / counts[r] for r, i in zip(rows, ids, strict=True)}


# per segment and per customer --------------------------------------------------------------

@dataclass(frozen=True)
class SegmentChange:
    """A segment this period against last: customers and shares (fractions), with deltas."""

    id: int
    name: str
    transition: str  # survived, split, merged, emerged, disappeared
    customers: int
    previous_customers: int
    share: float
    previous_share: float
    value_share: float
    previous_value_share: float
    sources: tuple[int, ...] = ()  # previous ids it came from (split, merged)
    into: tuple[int, ...] = ()  # for a disappeared/merged/split previous segment: current ids

    @property
    def share_delta(self) -> float:
        return round(self.share - self.previous_share, 6)

    @property
    def value_share_delta(self) -> float:
        return round(self.value_share - self.previous_value_share, 6)


@dataclass(frozen=True)
class SegmentNow:
    """A segment of one run, as the change table needs it."""

    id: int
    name: str
    customers: int
    share: float
    value_share: float


def segment_changes(matching: Matching, current: Sequence[SegmentNow],
                    previous: Sequence[SegmentNow]) -> list[SegmentChange]:
    """One row per current segment (by id), then one per previous segment that no current
    segment continues (disappeared, merged into another, the parts of a split that kept no
    name are already rows of their own)."""
    by_label = {c.label: c for c in matching.current}
    cur = {s.id: s for s in current}
    prev = {s.id: s for s in previous}
    rows = []
    continued = set()
    for ident in sorted(matching.current, key=lambda c: c.id):
        s = cur[ident.id]
        before = prev.get(ident.kept.id) if ident.kept is not None else None
        if before is not None:
            continued.add(before.id)
        rows.append(SegmentChange(
            id=s.id, name=s.name, transition=ident.transition, customers=s.customers,
            previous_customers=before.customers if before else 0, share=s.share,
            previous_share=before.share if before else 0.0, value_share=s.value_share,
            previous_value_share=before.value_share if before else 0.0,
            sources=ident.sources))
    for fate in matching.previous:
        if fate.id in continued or fate.id not in prev:
            continue
        p = prev[fate.id]
        rows.append(SegmentChange(
            id=p.id, name=p.name, transition=fate.transition, customers=0,
            previous_customers=p.customers, share=0.0, previous_share=p.share, value_share=0.0,
            previous_value_share=p.value_share,
            into=tuple(by_label[label].id for label in fate.into if label in by_label)))
    return rows


def movement(previous_segment: np.ndarray, current_segment: np.ndarray,
             previous_worth: dict[int, float], current_worth: dict[int, float]) -> np.ndarray:
    """Per current customer, as codes into MOVEMENTS: same (the same segment id), up or down
    (to a segment whose customers are worth more or less each, as measured in each run), new
    (not in the previous run). previous_segment: -1 for a new customer. Codes (int8), not
    strings: ten million Python strings would cost more than the whole comparison."""
    prev = np.asarray(previous_segment, dtype=np.int64)
    cur = np.asarray(current_segment, dtype=np.int64)
    ids = sorted(set(previous_worth) | set(current_worth) | set(np.unique(cur).tolist())
                 | set(np.unique(prev[prev >= 0]).tolist()))
    before = np.array([previous_worth.get(i, current_worth.get(i, 0.0)) for i in ids])
    after = np.array([current_worth.get(i, previous_worth.get(i, 0.0)) for i in ids])
    back = prev >= 0
    worth_before = np.zeros(len(prev))
    worth_before[back] = before[_positions(ids, prev[back], "previous")]
    worth_now = after[_positions(ids, cur, "current")]
    out = np.full(len(cur), MOVEMENTS.index("new"), dtype=np.int8)
    moved = back & (prev != cur)
    out[back & ~moved] = MOVEMENTS.index("same")
    out[moved & (worth_now >= worth_before)] = MOVEMENTS.index("up")
    out[moved & (worth_now < worth_before)] = MOVEMENTS.index("down")
    return out


def movement_words(codes: np.ndarray) -> pd.Categorical:
    """The codes of ``movement`` as a column of words (categorical: no string per row)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int8), categories=MOVEMENTS)


def valuable(segments: Iterable[SegmentNow]) -> set[int]:
    """Ids of the segments whose customers are worth more than the average customer."""
    return {s.id for s in segments
            if s.share > 0 and s.value_share / s.share > VALUABLE_INDEX}


# words -------------------------------------------------------------------------------------

def largest_flows(flows_: Flows, previous_names: dict[int, str], current_names: dict[int, str],
                  *, currency: str = "$", value_unit: str = "money", value_label: str = "spend",
                  n: int = 3) -> list[str]:
    """The n largest movements in words: new customers, lost ones and moves between segments
    (staying put is not a movement). With a money value the largest value comes first and is
    said ("312 Affluent regulars, $410k of spend, moved to Budget shoppers"); a score's sum
    means nothing to a reader, so then the most customers come first and no value is said."""
    money = value_unit == "money"
    cells = [f for f in flows_.migration
             if not (f.source != NEW and f.target != LOST and f.source == f.target)]
    cells.sort(key=lambda f: ((-f.value if money else 0.0), -f.customers, str(f.source),
                              str(f.target)))

    def name(table: dict[int, str], segment: int | str) -> str:
        return table.get(int(segment), f"segment {segment}")

    out = []
    for f in cells[:n]:
        count = f"{f.customers:,}"
        worth = f", {fmt.money(f.value, currency)} of {value_label}" if money else ""
        if f.source == NEW:
            people = "new customer" if f.customers == 1 else "new customers"
            out.append(f"{count} {people}{worth}{',' if money else ''} joined "
                       f"{name(current_names, f.target)}")
            continue
        # a segment's name is a plural: one customer is "1 of the Loyal regulars"
        who = f"{count} {name(previous_names, f.source)}" if f.customers != 1 else \
            f"1 of the {name(previous_names, f.source)}"
        if f.target == LOST:
            last = f"{worth} last period," if money else ""
            verb = "is" if f.customers == 1 else "are"
            out.append(f"{who}{last} {verb} not in this period's table")
        else:
            out.append(f"{who}{worth}{',' if money else ''} moved to "
                       f"{name(current_names, f.target)}")
    return out


def transition_text(change: SegmentChange, names: dict[int, str],
                    previous_names: dict[int, str]) -> str:
    """One line for the change table: 'Split from Affluent regulars', 'Merged into …'."""
    def join(ids: Iterable[int], table: dict[int, str]) -> str:
        parts = [table.get(i, f"segment {i}") for i in ids]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    if change.transition == "emerged":
        return "New this period"
    if change.transition == "survived":
        return "Continued"
    if change.customers == 0:  # a previous segment no current one continues
        if change.transition == "disappeared":
            return "Disappeared: its customers spread over the other segments or left"
        return f"{'Merged into' if change.transition == 'merged' else 'Split into'} " \
               f"{join(change.into, names)}"
    if change.transition == "merged":
        return f"Merged from {join(change.sources, previous_names)}"
    return f"Split from {join(change.sources, previous_names)}"


# time --------------------------------------------------------------------------------------

def months_between(earlier: dt.date, later: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


@dataclass(frozen=True)
class Gap:
    missing: int  # whole periods (months) without a run between the two
    text: str


def gap(previous_as_of: dt.date | None, current_as_of: dt.date | None) -> Gap | None:
    """A gap of a month or more between the previous run and this one, in words; None when
    the runs are of consecutive months (or undated)."""
    if previous_as_of is None or current_as_of is None:
        return None
    missing = months_between(previous_as_of, current_as_of) - 1
    if missing < 1:
        return None
    first = _add_months(previous_as_of, 1)
    last = _add_months(current_as_of, -1)
    span = first.strftime("%B %Y") if missing == 1 else \
        f"{first.strftime('%B %Y')} to {last.strftime('%B %Y')}"
    return Gap(missing, f"No run for {span}: changes are measured against "
                        f"{previous_as_of.strftime('%B %Y')}, {missing + 1} months back.")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class TrendPoint:
    """One segment in one period of the series."""

    period: str  # period key, e.g. 2014-06
    period_label: str  # e.g. June 2014
    run_id: str
    segment_id: int
    name: str
    color: str
    customers: int
    share: float
    value: float
    value_share: float


@dataclass(frozen=True)
class Trend:
    periods: list[str]  # period keys, oldest first
    points: list[TrendPoint] = field(default_factory=list)  # period, then segment id

    def series_of(self, segment_id: int) -> list[TrendPoint]:
        return [p for p in self.points if p.segment_id == segment_id]


def trend(points: Iterable[TrendPoint], periods: int = TREND_PERIODS) -> Trend:
    """The last ``periods`` periods of the series. A segment is shown under its latest name
    and colour (a kept segment's name never changes; this only matters after a rename)."""
    rows = list(points)
    keys = sorted({p.period for p in rows})[-periods:]
    keep = set(keys)
    rows = [p for p in rows if p.period in keep]
    latest: dict[int, TrendPoint] = {}
    for p in sorted(rows, key=lambda p: p.period):
        latest[p.segment_id] = p
    out = [TrendPoint(p.period, p.period_label, p.run_id, p.segment_id,
                      latest[p.segment_id].name, latest[p.segment_id].color, p.customers,
                      p.share, p.value, p.value_share)
           for p in sorted(rows, key=lambda p: (p.period, p.segment_id))]
    return Trend(periods=keys, points=out)


def finite(value: float | None) -> float | None:
    """JSON has no NaN: a missing measure is None."""
    if value is None or not math.isfinite(value):
        return None
    return value
