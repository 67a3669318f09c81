"""Assemble the Report: the one object every output is rendered from.

``build_report`` returns it complete — segments, method, gates, branding and chart specs — so
``output`` only writes it and no stage reads it back to patch it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import fmt, gates
from .clean import FENCE_RULE, Cleaned
from .config import Config
from .features import OUTCOMES, FeatureFrame
from .orders import ROLE_TEXT, Orders
from .personas import Persona
from .profile import Profiles
from .render import charts
from .report import (
    OVERLAP_BELOW,
    SAMPLED,
    TENTATIVE_BELOW,
    Action,
    Changes,
    ColumnInfo,
    Gate,
    Headline,
    Method,
    Outlier,
    Outliers,
    Report,
    Rfm,
    Segment,
    TopAction,
    TrendPoint,
)
from .schema import ROLES, Schema
from .segment import Segmentation

RECENCY_ALERT_Z = 0.4
CONCENTRATION_ALERT = 1.8  # value index above which losing a segment would hurt


def period_label(cfg: Config, as_of: dt.date | None, undated: str = "undated") -> str:
    """The period in words ("June 2014"): [report] period, else the month of ``as_of``. A table
    without dates has no period: ``undated`` (the series history's label; the Report's
    is "" so that no page header says "undated")."""
    if cfg.report.period:
        return cfg.report.period
    return as_of.strftime("%B %Y") if as_of else undated


@dataclass(frozen=True)
class Totals:
    """The counts of the whole table when the frames given are a sample of it (the Spark
    engine): rows read, customers segmented, blanks per source column."""

    customers_in: int
    customers: int
    missing: dict[str, int]


def build_report(
    *, cfg: Config, run_id: str, source: str, raw: pd.DataFrame, schema: Schema,
    cleaned: Cleaned, ff: FeatureFrame, seg: Segmentation, profiles: Profiles,
    personas: list[Persona], actions: dict[int, list[Action]], logo: str = "",
    orders: Orders | None = None, rfm: Rfm | None = None,
    colors: dict[int, str] | None = None, series: str = "default",
    changes: Changes | None = None, trend: Sequence[TrendPoint] = (),
    extra_gates: Sequence[Gate] = (),
    outlier_values: pd.Series | None = None,
    totals: Totals | None = None,
    columns: list[ColumnInfo] | None = None,
) -> Report:
    """The complete Report of one run.

    ``logo``: the brand logo as a data: URI ("" for none), read before the run started
    (``render.branding.logo_data_uri``). ``orders``: the aggregation when the table was order
    lines (raw is then the lines, and the customers are cleaned.frame); ``rfm``: its customers'
    RFM table (rfm.summarise, made by the engine). ``colors``: segment id -> colour (a
    series keeps a segment's colour; default: the palette by id). ``series``, ``changes``,
    ``trend``: the run as a period of its series (``series.changes``, ``series.trend``).
    ``extra_gates``: gates measured outside the segmentation (the series' drift gate), after
    the others. ``outlier_values``: the value of each customer cleaning set aside as an
    outlier (index: cleaned.outliers'), for the outlier list and the totals with them.
    ``totals``: the whole table's counts when raw, cleaned and ff are a sample of it (the
    profiles are then the whole table's). ``columns``: column_infos(raw, schema) measured
    before raw was let go (raw is then only its rows' keys).
    """
    currency = cfg.report.currency
    value_label = ff.value_label
    value_unit = ff.meta[ff.value].unit if ff.value else "number"
    if colors is None:
        palette = charts.palette(seg.k)
        colors = {sp.id: palette[(sp.id - 1) % len(palette)] for sp in profiles.segments}
    by_id = {p.segment_id: p for p in personas}
    valued = bool(ff.value)
    segments = [
        Segment(
            id=sp.id, name=by_id[sp.id].name, story=by_id[sp.id].story,
            color=colors[sp.id], size=sp.size, share=sp.share,
            value_share=sp.value_share if valued else None,
            value_per_customer=sp.value_per_customer if valued else None,
            traits=by_id[sp.id].traits, actions=actions[sp.id],
            # a share of nothing for the whole segment (nobody in it bought) has no mean
            means=_defined(sp.means), medians=_defined(sp.medians), zscores=sp.zscores,
            stability=seg.stability.per_segment.get(sp.id) if seg.stability else None,
            tentative=bool(seg.stability and
                           seg.stability.per_segment.get(sp.id, 1.0) < TENTATIVE_BELOW),
        )
        for sp in profiles.segments
    ]
    method = Method(
        algorithm=seg.algorithm_text,
        scaling=seg.scaling, features=list(ff.model), random_state=cfg.segment.random_state,
        k=seg.k, k_forced=seg.k_forced, k_rule=seg.k_rule, k_reason=seg.k_reason,
        k_disagreement=seg.k_disagreement, k_table=seg.k_table, silhouette=seg.silhouette,
        projection=seg.projection, algorithm_id=seg.algorithm,
        stability_ari=seg.stability.ari if seg.stability else None,
        stability_runs=seg.stability.runs if seg.stability else 0,
        stability=seg.stability_text,
        business=ff.business.text if ff.business else "",
    )
    n = len(ff.frame) if totals is None else totals.customers
    customers_in = orders.stats.customers + orders.stats.only_returns if orders else \
        len(raw) if totals is None else totals.customers_in
    headline = Headline(
        customers_in=customers_in, customers=n, excluded=customers_in - n,
        total_value=profiles.total_value if valued else None,
        value_per_customer=(profiles.total_value / n if n else 0.0) if valued else None,
        k=seg.k,
        sampled_from=next((customers_in + step.rows for step in cleaned.log
                           if step.action == SAMPLED and step.rows), None),
    )
    if columns is None:
        columns = column_infos(raw, schema, totals) if orders is None else \
            order_columns(raw, orders)
    features = ff.info(profiles.overall_mean)  # the means profile took of the same frame
    summary = rfm if orders is not None else None
    report_charts = charts.build_charts(
        segments, features, method, chart_points(seg, ff, {s.id: s.name for s in segments}),
        value_label=value_label, value_unit=value_unit, currency=currency, rfm=summary,
        trend_points=trend, moves=changes.table if changes is not None else None,
        previous_period=changes.previous_period if changes is not None else "last period",
    )
    as_of = cleaned.as_of
    outliers = outlier_list(cleaned, outlier_values, headline)
    notes = attention(segments, seg, cleaned, ff, profiles, currency,
                      None if totals is None else customers_in - n)
    if outliers is not None:
        notes.append(outlier_note(outliers, value_label, value_unit, currency))
    return Report(
        title=cfg.report.title, company=cfg.report.company,
        period=period_label(cfg, as_of, undated=""), as_of=as_of.isoformat() if as_of else "",
        run_id=run_id, source=source, currency=currency, value_label=value_label,
        value_unit=value_unit,
        headline=headline, segments=segments,
        top_actions=top_actions(segments), attention=notes,
        business=ff.business.type if ff.business else "generic",
        overall_basis=overall_basis(n, valued),
        method=method, cleaning=cleaned.log, columns=columns, features=features,
        charts=report_charts,
        gates=[*gates.evaluate(seg.silhouette, segments, cfg.gates), *extra_gates],
        primary_color=cfg.report.primary_color, logo=logo,
        orders=orders.summary() if orders is not None else None, rfm=summary,
        series=series, changes=changes, trend=list(trend), outliers=outliers,
    )


def outlier_list(cleaned: Cleaned, values: pd.Series | None, headline: Headline
                 ) -> Outliers | None:
    """The customers cleaning set aside as outliers, largest value first, with the totals
    the headline would show with them."""
    frame = cleaned.outliers
    if frame is None or frame.empty:
        return None
    by_row = cleaned.decisions.key_from == "row number"  # the key would repeat the row
    valued = values is not None and headline.total_value is not None
    rows = [
        Outlier(row=int(i) + 2, customer="" if by_row else str(frame.at[i, cleaned.key]),
                reason=str(cleaned.excluded[i]).removeprefix("outlier: "),
                value=float(values.get(i, 0.0)) if valued and values is not None else None)
        for i in frame.index
    ]
    if not valued:  # no value measure: the list and its reasons, no totals to compare
        return Outliers(rule=FENCE_RULE, customers=sorted(rows, key=lambda o: o.row),
                        value=None, total_value_with=None, value_per_customer_with=None)
    rows.sort(key=lambda o: (-(o.value or 0.0), o.row))
    value = float(sum(o.value or 0.0 for o in rows))
    with_them = (headline.total_value or 0.0) + value
    n = headline.customers + len(rows)
    return Outliers(rule=FENCE_RULE, customers=rows, value=value, total_value_with=with_them,
                    value_per_customer_with=with_them / n if n else 0.0)


def outlier_note(outliers: Outliers, value_label: str, value_unit: str, currency: str) -> str:
    """The sentence for "Needs attention": who was set aside and what they weigh."""
    n = len(outliers.customers)
    said = (f"{n:,} {'customer was' if n == 1 else 'customers were'} set aside as outliers "
            f"(amounts far beyond everyone else's, listed with the reason)")
    if outliers.total_value_with is None or outliers.value is None:
        return said + "."
    def worth(v: float) -> str:
        return fmt.money(v, currency) if value_unit == "money" else fmt.num(v)
    return (f"{said}: {value_label} "
            f"{worth(outliers.total_value_with - outliers.value)} without them, "
            f"{worth(outliers.total_value_with)} with them.")


def _defined(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if np.isfinite(v)}


def column_infos(raw: pd.DataFrame, schema: Schema, totals: Totals | None = None
                 ) -> list[ColumnInfo]:
    """The report's list of a customer table's columns: role, type and blanks of each."""
    return [
        ColumnInfo(column=str(c), role=schema.roles[c], dtype=str(raw[c].dtype),
                   missing=totals.missing[c] if totals is not None and c in totals.missing
                   else int(raw[c].isna().sum()),
                   note=f"{ROLES[schema.roles[c]]}; {schema.notes.get(c, '')}".rstrip("; "))
        for c in raw.columns
    ]


def order_columns(raw: pd.DataFrame, orders: Orders) -> list[ColumnInfo]:
    """The data dictionary of an order-line table: each column's part in the aggregation."""
    by_column = {column: role for role, column in orders.columns.roles().items()}
    return [
        ColumnInfo(column=str(c), role=f"order {by_column[c]}" if c in by_column else "ignore",
                   dtype=str(raw[c].dtype), missing=int(raw[c].isna().sum()),
                   note=ROLE_TEXT[by_column[c]] if c in by_column else
                   "not used by the aggregation to customers")
        for c in raw.columns
    ]


def chart_points(seg: Segmentation, ff: FeatureFrame, names: dict[int, str]) -> pd.DataFrame:
    """The scatter charts' customers: the segmentation's seeded sample of the 2-D projection,
    with each customer's persona and, when the table has both, income and value."""
    pts = seg.points.copy()
    pos = ff.frame.index.get_indexer(pts.index)
    pts["segment"] = [names[int(label)] for label in np.asarray(seg.labels)[pos]]
    if "income" in ff.frame and ff.value:
        pts["income"] = ff.frame["income"].to_numpy()[pos]
        pts["value"] = ff.frame[ff.value].to_numpy()[pos]
    return pts.reset_index(drop=True)


def overall_basis(customers: int, valued: bool) -> str:
    """What "overall" means beside a segment's figure, said once where the figures are."""
    text = (f"“Overall” is the average over all {customers:,} segmented customers, each "
            "counted once (a share is each customer's own share, averaged)")
    if valued:
        text += "; a segment's share of value is its part of the total"
    return text + "."


def top_actions(segments: list[Segment], n: int = 3) -> list[TopAction]:
    """The strongest action of the segments with the most at stake, one rule each. A
    tentative segment's action comes only when the firm segments have too few, and says so."""
    scored = []
    for s in segments:
        # A segment's action on an outcome (retention for churners) is the one it brings.
        candidates = s.actions[:1] if s.actions and s.actions[0].first else s.actions
        for rank, a in enumerate(candidates):
            # What is at stake: the segment's value and headcount; how sure: the rule's strength.
            value = s.value_share if s.value_share is not None else s.share
            stake = (value + s.share) / 2
            scored.append((a.strength * stake / (1 + rank), s, a))
    scored.sort(key=lambda t: (t[1].tentative, -t[0], t[1].id, t[2].rule))
    picked: list[TopAction] = []
    seen_rules: set[str] = set()
    seen_segments: set[int] = set()
    for _, s, a in scored:
        if a.rule in seen_rules or s.id in seen_segments:
            continue
        picked.append(TopAction(segment_id=s.id, segment_name=s.name, action=a,
                                tentative=s.tentative))
        seen_rules.add(a.rule)
        seen_segments.add(s.id)
        if len(picked) == n:
            break
    return picked


def attention(segments: list[Segment], seg: Segmentation, cleaned: Cleaned, ff: FeatureFrame,
              profiles: Profiles, currency: str, excluded: int | None = None) -> list[str]:
    notes = outcome_notes(segments, ff, profiles)
    for s in segments:
        if s.value_share is None:
            break
        index = s.value_share / s.share if s.share else 0
        if index >= CONCENTRATION_ALERT:
            notes.append(f"{s.name} bring {fmt.pct(s.value_share)} of {ff.value_label} from "
                         f"{fmt.pct(s.share)} of customers: losing a few of them costs more than "
                         "losing many others.")
    if "recency" in ff.frame:
        overall = profiles.overall_mean["recency"]
        for s in segments:
            if s.zscores.get("recency", 0) >= RECENCY_ALERT_Z:
                notes.append(f"{s.name} last bought {s.means['recency']:.0f} days ago on average "
                             f"(everyone: {overall:.0f}): they are drifting away.")
    if "complained" in ff.frame and "complained" not in OUTCOMES:
        for s in segments:
            if s.zscores.get("complained", 0) >= 0.3 and s.means["complained"] > 0.01:
                notes.append(f"{s.name} complain more than others "
                             f"({fmt.pct(s.means['complained'], 1)} vs "
                             f"{fmt.pct(profiles.overall_mean['complained'], 1)}).")
    for s in segments:
        if s.tentative and s.stability is not None:
            notes.append(f"{s.name} is tentative: when the model is refitted on other customers "
                         f"only {fmt.pct(s.stability)} of it is found again; test on a small "
                         "group before building a campaign on it alone.")
    if seg.silhouette < OVERLAP_BELOW:  # the silhouette itself is in the appendix
        notes.append("The segments overlap: customers shade from one segment into the next, so "
                     "treat the boundaries as soft; a customer near one could sit in either.")
    if not ff.value:
        notes.append("The table has no column that measures value (spend, charges, revenue): "
                     "segments are compared by headcount and traits, not by value.")
    per_row = "segments.csv gives the reason per row" if excluded is None else \
        "rows without a customer key or repeating one, and outliers"
    if excluded is None:
        excluded = len(cleaned.excluded)
    if excluded:
        notes.append(f"{excluded:,} rows were left out of the segmentation (see the cleaning log; "
                     f"{per_row}).")
    return notes


# Far from everyone: half as much again as the overall rate, and 5 points above it.
OUTCOME_RATIO = 1.5
OUTCOME_POINTS = 0.05
# outcome -> (what a customer did, what everyone who did it is called)
_OUTCOME_WORDS = {
    "churned": ("churned", "churners"),
    "complained": ("complained", "customers who complained"),
    "defaulted": ("are in default", "customers in default"),
    "subscribed": ("subscribed", "subscribers"),
    "converted": ("converted", "conversions"),
}


def outcome_segments(segments: list[Segment], ff: FeatureFrame, profiles: Profiles
                     ) -> list[tuple[str, Segment, float]]:
    """(outcome, segment, its share of everyone with that outcome) for each segment whose
    outcome rate is far above everyone's, the largest share first."""
    found = []
    for feature, meta in ff.meta.items():
        if (meta.group != "outcome" and feature not in OUTCOMES) or \
                feature not in profiles.overall_mean:
            continue
        overall = profiles.overall_mean[feature]
        total = sum(s.means[feature] * s.size for s in segments)
        if overall <= 0 or total <= 0:
            continue
        for s in segments:
            rate = s.means[feature]
            if rate >= OUTCOME_RATIO * overall and rate - overall >= OUTCOME_POINTS:
                found.append((feature, s, rate * s.size / total))
    return sorted(found, key=lambda t: (-t[2], t[0], t[1].id))


def outcome_notes(segments: list[Segment], ff: FeatureFrame, profiles: Profiles) -> list[str]:
    """The "Needs attention" lines of the outcomes: a segment far above everyone's rate and
    the share of all such customers it holds."""
    notes = []
    for feature, s, held in outcome_segments(segments, ff, profiles):
        did, who = _OUTCOME_WORDS.get(feature, (f"answered yes to "
                                                f"{ff.meta[feature].label.lower()}",
                                                f"customers answering yes to "
                                                f"{ff.meta[feature].label.lower()}"))
        count = round(s.means[feature] * s.size)
        bad = OUTCOMES.get(feature, ("", True))[1]
        then = ("act on them first" if bad else
                "offer to them, and to customers like them, first")
        notes.append(f"{s.name}: {fmt.pct(s.means[feature])} {did}, against "
                     f"{fmt.pct(profiles.overall_mean[feature])} of all customers; they are "
                     f"{fmt.pct(held)} of all {who} ({count:,} customers): {then}.")
    return notes
