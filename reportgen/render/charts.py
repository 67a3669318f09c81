"""Altair chart builders.

Every builder is a pure function: report data in, ``alt.Chart`` out, with the theme applied
as the chart's own ``config`` (never Altair's global theme registry). ``build_charts`` turns
them into ``ChartSpec`` objects once per run; ``vega`` exports them (SVG, PNG).

Personas are always coloured with ``Segment.color`` through an explicit scale
(domain = persona names, range = their colours), so a persona has one colour in every chart.
Chart data is aggregated per segment or capped at ``MAX_POINTS`` sampled customers, so a
spec stays small whatever the size of the customer table.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import altair as alt
import pandas as pd
from altair.utils.schemapi import debug_mode

from .. import fmt
from ..report import (
    ChartSpec,
    FeatureInfo,
    KRow,
    Method,
    MigrationTable,
    Rfm,
    Segment,
    TrendPoint,
)
from .pdf import page_rank

log = logging.getLogger(__name__)

FONT = "DejaVu Sans"  # installed everywhere we run; no web fonts
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#e4e7eb"
MAX_POINTS = 5_000  # Altair's own row limit; sampling beyond it adds ink, not insight
Z_CLIP = 2.5  # z-scores beyond this are clipped so one extreme cell does not wash out the rest
# The heatmap and the persona bars show an index (100 = the average customer), coloured on a
# log scale so that half (50) and twice (200) sit at the same distance from average; past a
# third or three times the average the colour saturates (the label keeps the real index).
INDEX_CLIP = 1.585  # log2(3)
INDEX_KEY = [33, 40, 50, 67, 80, 100, 125, 150, 200, 250, 300]
INDEX_TITLE = "Index: 100 = the average customer, 200 = twice the average, 50 = half"
WIDTH = 560  # fits the A4 text column of the PDF at 100% and the HTML column
# Grids (heatmap, migration): px per column, narrow enough to fit a phone at five segments,
# and px for the row names.
HEAT_COLUMN = 58
HEAT_LABELS = 118

# Okabe & Ito (2008), reordered so the first colours are the most distinct on white
# (yellow and black last: yellow has poor contrast, black reads as text).
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
# Paul Tol's "muted" scheme, used only past eight segments.
TOL_MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
             "#882255", "#AA4499"]
# Components of a mix (channels, products) are not personas, so they get a neutral ramp that
# cannot be mistaken for a persona colour.
MIX_DARK, MIX_LIGHT = (0x17, 0x2f, 0x4a), (0xdd, 0xe6, 0xef)
DIVERGING: Final = "blueorange"  # colour-blind-safe: blue below average, orange above
# "16k" for inertia, "0.24" for silhouette: SI prefixes would print 0.24 as "240m"
_SHORT_NUMBER = "abs(datum.value) >= 1000 ? format(datum.value, '~s') : format(datum.value, '~r')"
_INDEX_OR_AVERAGE = "datum.value === 100 ? 'average' : format(datum.value, 'd')"
_LOG_INDEX = "datum.value === 0 ? 'average' : format(100 * pow(2, datum.value), 'd')"

METRICS = [  # (KRow field, facet label): arrows say which direction is better
    ("silhouette", "Silhouette ↑"),
    ("calinski_harabasz", "Calinski–Harabasz ↑"),
    ("davies_bouldin", "Davies–Bouldin ↓"),
    ("inertia", "Inertia (elbow)"),
]


# ----------------------------------------------------------------------------- theme, palette

def theme() -> dict[str, Any]:
    """The Vega-Lite config every chart carries: one font, quiet axes, no chart border."""
    text = {"labelFont": FONT, "titleFont": FONT, "labelColor": MUTED, "titleColor": MUTED,
            "labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal"}
    return {
        "font": FONT,
        "background": "white",
        "padding": 6,
        "view": {"stroke": None, "continuousWidth": WIDTH, "continuousHeight": 300},
        "axis": {**text, "gridColor": GRID, "domainColor": "#9aa5b1", "tickColor": "#9aa5b1",
                 "labelLimit": 220},
        "legend": {**text, "orient": "bottom", "symbolType": "circle", "labelLimit": 260,
                   "columnPadding": 14},
        "header": {"labelFont": FONT, "titleFont": FONT, "labelColor": INK, "labelFontSize": 11,
                   "titleFontSize": 11},
        "title": {"font": FONT, "color": INK, "fontSize": 13, "anchor": "start"},
        "text": {"font": FONT, "fontSize": 10, "color": INK},
        "bar": {"cornerRadiusEnd": 1},
    }


def palette(k: int) -> list[str]:
    """k colour-blind-safe categorical colours (Okabe–Ito first, then Tol's muted)."""
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    colours = OKABE_ITO + TOL_MUTED
    if k > len(colours):
        log.warning("%d segments: persona colours repeat after %d", k, len(colours))
    return [colours[i % len(colours)] for i in range(k)]


def _persona_scale(segments: Sequence[Segment]) -> alt.Scale:
    return alt.Scale(domain=[s.name for s in segments], range=[s.color for s in segments])


def _names(segments: Sequence[Segment]) -> list[str]:
    return [s.name for s in segments]


def _legend(labels: Sequence[str], width: int = WIDTH, **options: Any) -> alt.Legend:
    """A bottom legend that wraps into columns rather than growing wider than the chart."""
    # ~7 px per character at 11 px, plus the symbol and padding
    needed = sum(7 * len(label) + 34 for label in labels)
    rows = max(1, -(-needed // width))
    return alt.Legend(title=None, columns=-(-len(labels) // rows), **options)


def _ramp(n: int) -> list[str]:
    """n evenly spaced shades from dark to light slate: mix components are ordered parts of a
    whole, not personas, so they must not borrow a persona hue."""
    out = []
    for i in range(n):
        t = i / (n - 1) if n > 1 else 0.0
        rgb = (round(a + (b - a) * t) for a, b in zip(MIX_DARK, MIX_LIGHT, strict=True))
        out.append("#" + "".join(f"{c:02x}" for c in rgb))
    return out


def _alternating(n: int) -> list[int]:
    """Ramp positions for n stacked parts, dark and light in turn (0, 3, 1, 4, 2, 5 for six):
    neighbouring parts then differ by about half the ramp in lightness, so they stay apart in
    grey scale and for any colour vision, where a plain dark-to-light ramp puts near-equal
    shades side by side."""
    half = (n + 1) // 2
    order = []
    for i in range(half):
        order.append(i)
        if half + i < n:
            order.append(half + i)
    return order


def _finish(chart: Any, description: str) -> Any:
    # description becomes the SVG/canvas aria-label in the HTML report. Set directly rather
    # than with .properties(), which validates the whole theme against the Vega-Lite schema
    # for every chart (30 ms each); every chart is rendered by vl-convert in the tests.
    finished = chart.copy(deep=False)
    finished.description = description
    finished.config = theme()
    return finished


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    # DataFrames, not alt.Data(values=...): Altair deep-copies inline values at every chained
    # call and validates them row by row (5,000 points: 0.34 s vs 0.03 s per chart)
    return pd.DataFrame(rows)


def _value(channel: Any, spec: Any) -> Any:
    """A channel's value (alt.value, alt.condition with a value otherwise) as that channel's
    object: handed a plain dict, encode finds its class by hashing every class of the
    Vega-Lite schema, ~10 ms a channel; the spec is the same."""
    return channel(**spec)


def _r(value: float, digits: int = 4) -> float:
    """Round for the spec: shorter JSON, and byte-stable across platforms."""
    return round(float(value), digits)


def _lines(text: str, width: int = 14) -> list[str]:
    """Greedy word wrap at ``width`` characters (a long single word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [text]


def _wrap_labels(labels: Sequence[str], width: int = 14) -> str:
    """A Vega labelExpr drawing each long label over several lines (Vega draws an array
    label as lines). Built here because Vega's expression language cannot wrap by width."""
    expr = "datum.label"
    for label in labels:
        lines = _lines(label, width)
        if len(lines) > 1:
            expr = f"datum.label === {json.dumps(label)} ? {json.dumps(lines)} : ({expr})"
    return expr


def _swatches(segments: Sequence[Segment], height: int) -> alt.Chart:
    """A column of persona-coloured squares carrying the segment names as its axis labels,
    set left of a chart whose rows are segments (its colour encodes something else)."""
    data = _frame([{"segment": s.name} for s in segments])
    return (
        alt.Chart(data)
        .mark_square(size=110, opacity=1)
        .encode(
            y=alt.Y("segment:N", sort=_names(segments), title=None,
                    axis=alt.Axis(domain=False, ticks=False, labelPadding=6, labelColor=INK,
                                  labelFontSize=11)),
            color=alt.Color("segment:N", scale=_persona_scale(segments), legend=None),
        )
        .properties(width=14, height=height)
    )


# ----------------------------------------------------------------------------- builders

def size_value(segments: Sequence[Segment], value_label: str = "spend") -> alt.Chart:
    """Per segment, its share of customers next to its share of value."""
    customers, value = "customers", value_label
    # planned only for a table with a value measure (_plan), so every share is there
    shares = {s.id: s.value_share or 0.0 for s in segments}
    rows = []
    for s in segments:
        rows.append({"segment": s.name, "measure": customers, "share": _r(s.share),
                     "label": f"{fmt.pct(s.share)} of {customers}"})
        rows.append({"segment": s.name, "measure": value, "share": _r(shares[s.id]),
                     "label": f"{fmt.pct(shares[s.id])} of {value}"})
    top = max([s.share for s in segments] + [shares[s.id] for s in segments] + [0.1])
    base = alt.Chart(_frame(rows)).encode(
        y=alt.Y("segment:N", sort=_names(segments), title=None,
                axis=alt.Axis(labelColor=INK, labelFontSize=11, ticks=False, domain=False,
                              labelExpr=_wrap_labels(_names(segments), 24))),
        yOffset=alt.YOffset("measure:N", sort=[customers, value]),
        # headroom on the right for the bar labels
        x=alt.X("share:Q", title=None, axis=alt.Axis(format="%", tickCount=5),
                scale=alt.Scale(domain=[0, min(1.0, top * 1.45)], nice=False)),
        tooltip=[alt.Tooltip("segment:N", title="Segment"), alt.Tooltip("label:N", title="Share")],
    )
    # the customer bar is a pale tint of the persona colour, the value bar the full colour
    bars = base.mark_bar(height={"band": 0.9}).encode(
        color=alt.Color("segment:N", scale=_persona_scale(segments), legend=None),
        opacity=alt.Opacity("measure:N", scale=alt.Scale(domain=[customers, value],
                                                         range=[0.4, 1.0]), legend=None,
                            sort=[customers, value]),
    )
    labels = base.mark_text(align="left", dx=4, fontSize=10).encode(text=alt.Text("label:N"))
    chart = alt.layer(bars, labels).properties(width=WIDTH - 170, height=46 * len(segments))
    parts = [f"{s.name} {fmt.pct(s.share)} of customers, {fmt.pct(shares[s.id])} of {value_label}"
             for s in segments]
    return _finish(chart, "Segment sizes: " + "; ".join(parts) + ".")


def trend(points: Sequence[TrendPoint]) -> alt.Chart:
    """Share of customers per segment, period by period (the last 12 of the series)."""
    rows = [{"period": p.period_label, "key": p.period, "segment": p.name, "share": _r(p.share),
             "value": _r(p.value_share), "label": f"{fmt.pct(p.share)} of customers, "
                                                  f"{fmt.pct(p.value_share)} of value"}
            for p in points]
    periods = [label for _, label in sorted({(p.period, p.period_label) for p in points})]
    latest: dict[int, TrendPoint] = {}
    for p in sorted(points, key=lambda p: p.period):
        latest[p.id] = p
    order = sorted(latest.values(), key=lambda p: p.id)
    scale = alt.Scale(domain=[p.name for p in order], range=[p.color for p in order])
    chart = alt.Chart(_frame(rows)).mark_line(point=True, strokeWidth=2).encode(
        # past six periods "September 1997" and "October 1997" would overlap: slanted
        x=alt.X("period:O", sort=periods, title=None,
                axis=alt.Axis(labelAngle=0 if len(periods) <= 6 else -35)),
        y=alt.Y("share:Q", title="Share of customers", axis=alt.Axis(format="%", tickCount=5)),
        color=alt.Color("segment:N", scale=scale, title=None,
                        legend=_legend([p.name for p in order])),
        tooltip=[alt.Tooltip("segment:N", title="Segment"),
                 alt.Tooltip("period:O", title="Period"),
                 alt.Tooltip("label:N", title="Share")],
    ).properties(width=WIDTH - 80, height=150)
    first, last = periods[0], periods[-1]
    parts = []
    for p in order:
        series_ = [q for q in points if q.id == p.id]
        start = min(series_, key=lambda q: q.period)
        end = max(series_, key=lambda q: q.period)
        parts.append(f"{p.name} {fmt.pct(start.share)} in {start.period_label}, "
                     f"{fmt.pct(end.share)} in {end.period_label}")
    return _finish(chart, f"Share of customers per segment from {first} to {last}: "
                          + "; ".join(parts) + ".")


def migration(table: MigrationTable, previous_period: str) -> alt.Chart:
    """Where last period's customers are now: previous segments and the new customers (rows)
    × this period's segments and "Lost" (columns), each cell its customers, shaded by the
    share of its row (a single-hue ramp: lightness alone carries it, so it reads in grey).
    The table is aggregated already: at most (k + 1)², whatever the number of customers."""
    columns, labels = list(table.columns), [r.label for r in table.rows]
    rows = [
        {"from": r.label, "to": col, "customers": n,
         "share": _r(n / r.total if r.total else 0.0), "count": fmt.num(n) if n else "·"}
        for r in table.rows for col, n in zip(columns, r.customers, strict=True)
    ]
    width = HEAT_COLUMN * len(columns)
    wrapped = [label for label in labels if len(_lines(label, 17)) > 1]
    two_lines = f"indexof({json.dumps(wrapped)}, datum.value) >= 0"
    col_scale = alt.Scale(domain=columns, range=list(table.colors))
    row_scale = alt.Scale(domain=labels, range=[r.color for r in table.rows])
    x = alt.X("to:N", sort=columns, title="Now")
    strip = (
        alt.Chart(_frame([{"to": c} for c in columns]))
        .mark_rect(height=6)
        .encode(
            x=x.axis(orient="top", labelAngle=0, labelExpr=_wrap_labels(columns, 9),
                     labelColor=INK, labelFontSize=10, domain=False, ticks=False,
                     labelLimit=HEAT_COLUMN + 4, labelLineHeight=12, titlePadding=4,
                     labelPadding=6 + 12 * (max(len(_lines(c, 9)) for c in columns) - 1)),
            color=alt.Color("to:N", scale=col_scale, legend=None),
        )
        .properties(width=width, height=6)
    )
    base = alt.Chart(_frame(rows)).encode(
        x=x.axis(None),
        y=alt.Y("from:N", sort=labels, title=f"In {previous_period}",
                axis=alt.Axis(ticks=False, domain=False, labelColor=INK, labelPadding=18,
                              labelFontSize=10, labelLimit=HEAT_LABELS,
                              labelExpr=_wrap_labels(labels, 17),
                              # Vega sets a label's first line on the row's middle: lift
                              # the two-line ones by half a line
                              labelOffset={"condition": {"test": two_lines, "value": -5},
                                           "value": 0})),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1.5).encode(
        color=alt.condition("datum.customers == 0", alt.value("#f5f7fa"), alt.Color(
            "share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=None)),
        tooltip=[alt.Tooltip("from:N", title=f"In {previous_period}"),
                 alt.Tooltip("to:N", title="Now"),
                 alt.Tooltip("customers:Q", format=",", title="Customers"),
                 alt.Tooltip("share:Q", format=".0%", title="Share of the row")],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("count:N"),
        color=_value(alt.ColorValue, alt.condition("datum.share > 0.55", alt.value("white"),
                                                   alt.value(INK))))
    # each row's persona colour, as a square between its label and the grid
    swatches = (
        alt.Chart(_frame([{"from": lab} for lab in labels]))
        .mark_square(size=90, opacity=1)
        .encode(x=_value(alt.XValue, alt.value(-9)), y=alt.Y("from:N", sort=labels),
                color=alt.Color("from:N", scale=row_scale, legend=None))
    )
    grid = alt.layer(cells, text, swatches).resolve_scale(color="independent").properties(
        width=width, height=30 * len(labels))  # room for a row name on two lines
    chart = alt.vconcat(strip, grid, spacing=2).resolve_scale(color="independent")
    parts = []
    for r in table.rows:
        moves = sorted(((n, c) for c, n in zip(columns, r.customers, strict=True) if n),
                       key=lambda t: -t[0])[:3]
        parts.append(f"{r.label} ({fmt.num(r.total)}): "
                     + ", ".join(f"{fmt.num(n)} {c}" for n, c in moves))
    return _finish(chart, f"Where the customers of {previous_period} are now (rows: "
                          f"{previous_period}'s segments and the new customers; columns: this "
                          "period's segments and the lost). " + "; ".join(parts) + ".")


def _model_features(features: Sequence[FeatureInfo]) -> list[FeatureInfo]:
    return [f for f in features if f.in_model]


# A chart shows at most this many rows, columns or stacked parts: past it a wide table (900
# spend columns × 8 segments) would pass Altair's 5,000-row limit (an exit-1 crash) and draw
# nothing a reader could use. The rest is left out (heatmap, campaigns) or pooled (mixes).
MAX_SHOWN = 40
MAX_PARTS = 12


def _strongest(features: Sequence[FeatureInfo], weight: Any, n: int) -> list[FeatureInfo]:
    """At most n features, the heaviest by ``weight`` (ties: as given), in their order."""
    if len(features) <= n:
        return list(features)
    keep = {f.name for f in sorted(features, key=lambda f: -weight(f))[:n]}
    return [f for f in features if f.name in keep]


def _z(segment: Segment, feature: str) -> float:
    return float(segment.zscores.get(feature, 0.0))


def _clip(z: float) -> float:
    return max(-Z_CLIP, min(Z_CLIP, z))


def index(segment: Segment, feature: FeatureInfo) -> float | None:
    """The segment's average as an index of everyone's (100 = the average customer), or None
    where a ratio means nothing (an average of zero or below, a negative segment average)."""
    mean = segment.means.get(feature.name)
    overall = feature.overall_mean
    if mean is None or not math.isfinite(mean) or not math.isfinite(overall) or overall <= 0 \
            or mean < 0:
        return None
    return 100.0 * mean / overall


def _position(segment: Segment, feature: FeatureInfo) -> tuple[float, str]:
    """Where a segment sits on a feature, for the colour or the bar (log2 of index/100,
    clipped), and the label a reader sees: the index, or "above"/"below" average when there
    is no index (then the position comes from the z-score, scaled onto the same range)."""
    idx = index(segment, feature)
    if idx is None:
        z = _z(segment, feature.name)
        word = "average" if abs(z) < 0.05 else ("above" if z > 0 else "below")
        return _clip(z) / Z_CLIP * INDEX_CLIP, word
    pos = math.log2(max(idx, 1.0) / 100.0)
    return max(-INDEX_CLIP, min(INDEX_CLIP, pos)), f"{idx:,.0f}"


def _extremes(segment: Segment, features: Sequence[FeatureInfo], n: int = 2) -> str:
    placed = sorted(((*_position(segment, f), f) for f in features), key=lambda t: -t[0])
    high = [f"{f.label} {label}" for pos, label, f in placed[:n] if pos > 0]
    low = [f"{f.label} {label}" for pos, label, f in placed[::-1][:1] if pos < 0]
    text = "highest " + ", ".join(high) if high else "nothing above average"
    return text + ("; lowest " + ", ".join(low) if low else "")


def _index_key(width: int = 260) -> alt.Chart:
    """The colour key of an index scale, drawn as a row of cells, not a gradient legend:
    WeasyPrint's SVG renderer drops Vega's gradient fill and would print an empty legend."""
    steps = [{"index": i, "pos": _r(math.log2(i / 100), 3)} for i in INDEX_KEY]
    return (
        alt.Chart(_frame(steps))
        .mark_rect()
        .encode(
            x=alt.X("index:O", title=_lines(INDEX_TITLE, 46), sort=INDEX_KEY,
                    axis=alt.Axis(values=[33, 50, 100, 200, 300], labelExpr=_INDEX_OR_AVERAGE,
                                  labelAngle=0, ticks=False, domain=False, titlePadding=6)),
            color=alt.Color("pos:Q", scale=_index_scale(), legend=None),
        )
        .properties(width=width, height=10)
    )


def _index_scale() -> alt.Scale:
    return alt.Scale(scheme=DIVERGING, domain=[-INDEX_CLIP, INDEX_CLIP], domainMid=0)


def zscore_heatmap(segments: Sequence[Segment], features: Sequence[FeatureInfo]) -> alt.Chart:
    """Segments (columns) × model features (rows): each segment's average as an index of
    everyone's (100 = the average customer). Named for the z-scores that pick the features."""
    model = _strongest(_model_features(features),
                       lambda f: max((abs(_z(s, f.name)) for s in segments), default=0.0),
                       MAX_SHOWN)
    labels = [f.label for f in model]
    rows = []
    for s in segments:
        for f in model:
            pos, label = _position(s, f)
            idx = index(s, f)
            rows.append({"segment": s.name, "feature": f.label, "pos": _r(pos, 3),
                         "label": label, "index": None if idx is None else _r(idx, 1)})
    names = _names(segments)
    col_width = HEAT_COLUMN
    x = alt.X("segment:N", sort=names, title=None)
    strip = (
        alt.Chart(_frame([{"segment": s.name} for s in segments]))
        .mark_rect(height=6)
        .encode(
            x=x.axis(orient="top", labelAngle=0, labelExpr=_wrap_labels(names, 9),
                     labelColor=INK, labelFontSize=10, domain=False, ticks=False,
                     labelLimit=col_width + 4, labelLineHeight=12,
                     # Vega hangs extra lines of a top label downwards: lift by their height
                     labelPadding=6 + 12 * (max(len(_lines(n, 9)) for n in names) - 1)),
            color=alt.Color("segment:N", scale=_persona_scale(segments), legend=None),
        )
        .properties(width=col_width * len(segments), height=6)
    )
    base = alt.Chart(_frame(rows)).encode(
        x=x.axis(None),
        y=alt.Y("feature:N", sort=labels, title=None,
                axis=alt.Axis(ticks=False, domain=False, labelLimit=HEAT_LABELS)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1.5).encode(
        color=alt.Color("pos:Q", scale=_index_scale(), legend=None),
        tooltip=[alt.Tooltip("segment:N", title="Segment"),
                 alt.Tooltip("feature:N", title="Feature"),
                 alt.Tooltip("label:N", title="Index (100 = average)")],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("label:N"),
        color=_value(alt.ColorValue, alt.condition(f"abs(datum.pos) > {INDEX_CLIP * 0.6:.3f}",
                                                   alt.value("white"), alt.value(INK))),
    )
    heat = alt.layer(cells, text).properties(width=col_width * len(segments),
                                             height=22 * len(model))
    key = _index_key(min(260, max(200, col_width * len(segments))))
    chart = alt.vconcat(strip, alt.vconcat(heat, key, spacing=10), spacing=2).resolve_scale(
        color="independent")
    parts = [f"{s.name}: {_extremes(s, model)}" for s in segments]
    return _finish(
        chart,
        f"How each segment differs from the average customer on {len(model)} model features, "
        "as an index where 100 is the average customer. " + "; ".join(parts) + ".",
    )


def _bounded(points: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Only the plotted columns, at most MAX_POINTS rows (an even stride: no randomness here,
    the caller's seeded sample decides which customers are shown)."""
    frame = points.loc[:, columns]
    if len(frame) > MAX_POINTS:
        step = -(-len(frame) // MAX_POINTS)
        log.debug("chart points capped: %d -> every %d-th row", len(frame), step)
        frame = frame.iloc[::step]
    return frame.reset_index(drop=True)


def _point_frame(frame: pd.DataFrame, numeric: list[str], digits: int) -> pd.DataFrame:
    out = frame.copy()
    for col in numeric:
        out[col] = out[col].astype(float).round(digits)  # shorter JSON, no false precision
    out["segment"] = out["segment"].astype(str)
    return out


def _sample_counts(frame: pd.DataFrame, segments: Sequence[Segment]) -> str:
    counts = frame["segment"].astype(str).value_counts()
    return ", ".join(f"{s.name} {fmt.num(int(counts.get(s.name, 0)))}" for s in segments)


def projection(points: pd.DataFrame, segments: Sequence[Segment], how: str = "") -> alt.Chart:
    """A sample of customers on the 2-D projection (columns x, y, segment), by persona."""
    frame = _bounded(points, ["x", "y", "segment"])
    rows = _point_frame(frame, ["x", "y"], 3)
    chart = (
        alt.Chart(rows)
        .mark_circle(size=16, opacity=0.6)
        .encode(
            # the projection's axes and units mean nothing to a reader: no titles, no tick
            # labels (how the map is made is in the appendix, "Customer map")
            x=alt.X("x:Q", title=None, axis=_BARE_AXIS),
            y=alt.Y("y:Q", title=None, axis=_BARE_AXIS),
            color=alt.Color("segment:N", scale=_persona_scale(segments),
                            sort=_names(segments), legend=_legend(_names(segments))),
            tooltip=[alt.Tooltip("segment:N", title="Segment")],
        )
        .properties(width=WIDTH, height=340)
    )
    what = f" ({how})" if how else ""
    return _finish(
        chart,
        f"{fmt.num(len(frame))} sampled customers on a two-dimensional view of the model "
        f"features{what}, coloured by segment: {_sample_counts(frame, segments)}. "
        "Customers close together have similar profiles.",
    )


_BARE_AXIS = alt.Axis(labels=False, ticks=False, grid=False)


def _money_axis(currency: str) -> str:
    # d3's "$" format is locale-bound; build the label in Vega so any symbol works
    return f"{json.dumps(currency)} + format(datum.value, '~s')"


def income_value(points: pd.DataFrame, segments: Sequence[Segment], *, currency: str = "$",
                 value_label: str = "spend", value_unit: str = "money") -> alt.Chart:
    """Income against value for the sampled customers (columns income, value, segment).
    ``value_unit``: "money" for spend; a score or count is labelled as a plain number."""
    money = value_unit == "money"
    frame = _bounded(points, ["income", "value", "segment"]).dropna()
    rows = _point_frame(frame, ["income", "value"], 0)
    chart = (
        alt.Chart(rows)
        .mark_circle(size=16, opacity=0.6)
        .encode(
            x=alt.X("income:Q", title="Income", axis=alt.Axis(labelExpr=_money_axis(currency))),
            y=alt.Y("value:Q", title=value_label.capitalize(),
                    axis=alt.Axis(labelExpr=_money_axis(currency)) if money else alt.Axis()),
            color=alt.Color("segment:N", scale=_persona_scale(segments),
                            sort=_names(segments), legend=_legend(_names(segments))),
            tooltip=[alt.Tooltip("segment:N", title="Segment"),
                     alt.Tooltip("income:Q", format=",.0f", title="Income"),
                     alt.Tooltip("value:Q", format=",.0f", title=value_label.capitalize())],
        )
        .properties(width=WIDTH, height=320)
    )
    medians = frame.groupby(frame["segment"].astype(str))[["income", "value"]].median()
    parts = [
        f"{s.name} median income {fmt.money(medians.loc[s.name, 'income'], currency)}, "
        f"{value_label} {fmt.by_unit(medians.loc[s.name, 'value'], value_unit, currency)}"
        for s in segments if s.name in medians.index
    ]
    return _finish(
        chart,
        f"Income against {value_label} for {fmt.num(len(frame))} sampled customers, coloured by "
        "segment. In the sample: " + "; ".join(parts) + ".",
    )


def _group(features: Sequence[FeatureInfo], group: str) -> list[FeatureInfo]:
    return [f for f in features if f.group == group]


def _mix(
    segments: Sequence[Segment], components: Sequence[FeatureInfo], noun: str
) -> tuple[Any, str]:
    """100% stacked bars: each segment's mean shares, normalised to sum to one.

    Stacking is done here rather than in Vega so the in-bar labels sit at known centres."""
    # "Wines share" -> "Wines": the axis already says these are shares
    def mean(s: Segment, f: FeatureInfo) -> float:
        return max(0.0, float(s.means.get(f.name, 0.0)))

    shown = _strongest(components, lambda f: sum(mean(s, f) for s in segments), MAX_PARTS - 1) \
        if len(components) > MAX_PARTS else list(components)
    rest = [f for f in components if f not in shown]  # pooled as "Other"
    names = {f.name: re.sub(r"\s+share$", "", f.label, flags=re.I) or f.label for f in shown}
    labels = [names[f.name] for f in shown] + (["Other"] if rest else [])
    rows: list[dict[str, Any]] = []
    parts = []
    for s in segments:
        values = [mean(s, f) for f in shown] + ([sum(mean(s, f) for f in rest)] if rest else [])
        total = sum(values) or 1.0
        start = 0.0
        mine = []
        for name, v in zip(labels, values, strict=True):
            share = v / total
            rows.append({"segment": s.name, "component": name, "share": _r(share),
                         "start": _r(start), "end": _r(start + share), "mid": _r(start + share / 2),
                         "label": fmt.pct(share) if share >= 0.07 else ""})
            mine.append((share, name))
            start += share
        top = sorted(mine, reverse=True)
        parts.append(f"{s.name}: " + ", ".join(f"{lab} {fmt.pct(sh)}" for sh, lab in top))
    shades = _ramp(len(labels))
    positions = _alternating(len(labels))
    ramp = [shades[p] for p in positions]
    # white text on the darker half of the ramp
    dark = {lab for lab, p in zip(labels, positions, strict=True) if p < (len(labels) + 1) // 2}
    height = 30 * len(segments)
    y = alt.Y("segment:N", sort=_names(segments), title=None, axis=None)
    base = alt.Chart(_frame(rows)).encode(y=y)
    bars = base.mark_bar(height={"band": 0.78}, stroke="white", strokeWidth=1).encode(
        x=alt.X("start:Q", title=f"Share of {noun}", axis=alt.Axis(format="%", tickCount=5),
                scale=alt.Scale(domain=[0, 1], nice=False)),
        x2=alt.X2("end:Q"),
        color=alt.Color("component:N", sort=labels, scale=alt.Scale(domain=labels, range=ramp),
                        legend=_legend(labels, WIDTH - 160, symbolType="square",
                                       symbolStrokeColor="#9aa5b1", symbolStrokeWidth=0.5)),
        tooltip=[alt.Tooltip("segment:N", title="Segment"),
                 alt.Tooltip("component:N", title=noun.capitalize()),
                 alt.Tooltip("share:Q", format=".0%", title="Share")],
    )
    text = base.mark_text(fontSize=10).encode(
        x=alt.X("mid:Q"),
        text=alt.Text("label:N"),
        color=_value(alt.ColorValue, alt.condition(
            alt.FieldOneOfPredicate(field="component", oneOf=sorted(dark)),
            alt.value("white"), alt.value(INK))),
    )
    chart = alt.hconcat(
        _swatches(segments, height),
        alt.layer(bars, text).properties(width=WIDTH - 200, height=height),
        spacing=4,
    ).resolve_scale(color="independent")  # persona colours and mix colours are different scales
    return chart, "; ".join(parts)


def channel_mix(segments: Sequence[Segment], features: Sequence[FeatureInfo]) -> alt.Chart:
    """Where each segment buys: mean channel shares (features of group "channel_mix")."""
    chart, text = _mix(segments, _group(features, "channel_mix"), "purchases")
    return _finish(chart, f"Share of purchases by channel. {text}.")


def product_mix(segments: Sequence[Segment], features: Sequence[FeatureInfo]) -> alt.Chart:
    """What each segment buys: mean product shares (features of group "product_mix")."""
    chart, text = _mix(segments, _group(features, "product_mix"), "spend")
    return _finish(chart, f"Share of spend by product category. {text}.")


def campaigns(segments: Sequence[Segment], features: Sequence[FeatureInfo]) -> alt.Chart:
    """Acceptance rate of each past campaign, per segment (features of group "campaigns")."""
    camp = _strongest(_group(features, "campaigns"),
                      lambda f: max((float(s.means.get(f.name, 0.0)) for s in segments),
                                    default=0.0), MAX_SHOWN // 2)
    labels = [f.label for f in camp]
    rows = [{"segment": s.name, "campaign": f.label, "rate": _r(float(s.means.get(f.name, 0.0)))}
            for f in camp for s in segments]
    chart = (
        alt.Chart(_frame(rows))
        .mark_bar()
        .encode(
            x=alt.X("campaign:N", sort=labels, title=None,
                    axis=alt.Axis(labelAngle=0, labelExpr=_wrap_labels(labels), ticks=False)),
            xOffset=alt.XOffset("segment:N", sort=_names(segments)),
            y=alt.Y("rate:Q", title="Accepted the offer", axis=alt.Axis(format="%", tickCount=5)),
            color=alt.Color("segment:N", scale=_persona_scale(segments),
                            sort=_names(segments), legend=_legend(_names(segments))),
            tooltip=[alt.Tooltip("segment:N", title="Segment"),
                     alt.Tooltip("campaign:N", title="Campaign"),
                     alt.Tooltip("rate:Q", format=".1%", title="Accepted")],
        )
        .properties(width=WIDTH, height=220)
    )
    parts = []
    for s in segments:
        best = sorted(camp, key=lambda f: float(s.means.get(f.name, 0.0)), reverse=True)[:2]
        parts.append(f"{s.name}: " + ", ".join(
            f"{f.label} {fmt.pct(float(s.means.get(f.name, 0.0)))}" for f in best))
    return _finish(
        chart,
        "Acceptance rate of each campaign by segment; the two best per segment: "
        + "; ".join(parts) + ".",
    )


def rfm_grid(rfm: Rfm) -> alt.Chart:
    """Recency score (rows, 5 on top) × frequency score (columns): customers per cell, each
    cell labelled with its count and the RFM group most of its customers are in."""
    top = max((c.customers for c in rfm.grid), default=0)
    rows = [{"r": c.r, "f": c.f, "customers": c.customers, "group": c.group,
             "count": f"{c.customers:,}" if c.customers else ""} for c in rfm.grid]
    base = alt.Chart(_frame(rows)).encode(
        x=alt.X("f:O", title="Frequency score (F): 5 = the most orders",
                axis=alt.Axis(labelAngle=0, ticks=False, domain=False)),
        y=alt.Y("r:O", sort="descending", title="Recency score (R): 5 = the most recent",
                axis=alt.Axis(ticks=False, domain=False)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.condition("datum.customers == 0", alt.value("#f5f7fa"), alt.Color(
            "customers:Q", scale=alt.Scale(scheme="blues", domainMin=0), legend=None)),
        tooltip=[alt.Tooltip("r:O", title="R"), alt.Tooltip("f:O", title="F"),
                 alt.Tooltip("customers:Q", format=",", title="Customers"),
                 alt.Tooltip("group:N", title="Mostly")],
    )
    ink = _value(alt.ColorValue, alt.condition(f"datum.customers > {0.55 * top}",
                                               alt.value("white"), alt.value(INK)))
    # Two one-line texts, not one two-line text: WeasyPrint draws a multi-line SVG text
    # left-aligned whatever its anchor.
    count = base.mark_text(fontSize=10, fontWeight="bold", dy=-6).encode(text=alt.Text("count:N"),
                                                                         color=ink)
    group = base.mark_text(fontSize=8, dy=7).encode(
        text=_value(alt.TextValue, alt.condition("datum.customers > 0", "group:N",
                                                 alt.value(""))), color=ink)
    text = alt.layer(count, group)
    chart = alt.layer(cells, text).properties(width=WIDTH - 120, height=5 * 46)
    biggest = sorted(rfm.grid, key=lambda c: (-c.customers, -c.r, -c.f))[:3]
    words = "; ".join(f"R {c.r} F {c.f}: {c.customers:,} ({c.group})" for c in biggest
                      if c.customers)
    return _finish(chart, "Customers by recency score (rows) and frequency score (columns), "
                          f"each cell named by its main RFM group. Largest cells: {words}.")


def k_metrics(method: Method) -> alt.Chart:
    """The k search as small multiples, one per metric, with the chosen k marked."""
    table: list[KRow] = method.k_table
    rows = [
        {"k": r.k, "metric": label, "value": _r(getattr(r, name), 4),
         "status": "chosen" if r.chosen else ("eligible" if r.eligible else "not eligible")}
        for name, label in METRICS for r in table
    ]
    order = [label for _, label in METRICS]
    base = alt.Chart().encode(
        x=alt.X("k:O", title="Number of segments (k)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False),
                axis=alt.Axis(tickCount=4, labelExpr=_SHORT_NUMBER)),
    )
    line = base.mark_line(color="#9aa5b1", strokeWidth=1.5)
    dots = base.mark_point(filled=True, size=55).encode(
        color=alt.Color("status:N", title=None,
                        scale=alt.Scale(domain=["chosen", "eligible", "not eligible"],
                                        range=["#D55E00", "#52606d", "#cbd2d9"])),
        tooltip=[alt.Tooltip("k:O"), alt.Tooltip("metric:N", title="Metric"),
                 alt.Tooltip("value:Q", format=",.3~f", title="Value")],
    )
    chart = (
        alt.layer(line, dots, data=_frame(rows))
        .properties(width=108, height=110)
        .facet(facet=alt.Facet("metric:N", sort=order, title=None,
                               header=alt.Header(labelFontWeight="bold", labelAnchor="start")),
               columns=4, spacing=18)
        .resolve_scale(y="independent")
    )
    chosen = next((r for r in table if r.chosen), None)
    ks = [r.k for r in table]
    summary = (
        f"chosen k = {chosen.k} (silhouette {chosen.silhouette:.2f}, Calinski–Harabasz "
        f"{fmt.num(chosen.calinski_harabasz)}, Davies–Bouldin {chosen.davies_bouldin:.2f})"
        if chosen else f"k = {method.k} was set in the configuration"
    )
    span = f"k = {min(ks)}–{max(ks)}" if ks else "no k"
    return _finish(chart, f"Clustering quality metrics for {span}; {summary}.")


def persona_traits(segment: Segment, features: Sequence[FeatureInfo]) -> alt.Chart:
    """One segment against the average customer on the model features: diverging bars of
    its index (100 = the average customer) on a log scale, highest first (its persona page)."""
    placed = sorted(((*_position(segment, f), f) for f in _model_features(features)),
                    key=lambda t: -t[0])
    rows = [
        {"feature": f.label, "pos": _r(pos, 3), "label": label,
         "side": "above" if pos >= 0 else "below"}
        for pos, label, f in placed
    ]
    order = [f.label for _, _, f in placed]
    base = alt.Chart(_frame(rows)).encode(
        y=alt.Y("feature:N", sort=order, title=None,
                axis=alt.Axis(ticks=False, domain=False, labelColor=INK, labelFontSize=11,
                              labelLimit=170)),
        x=alt.X("pos:Q", title=["Index: 100 = the average customer", "(200 = twice, 50 = half)"],
                # headroom past the clip for the labels at the bars' ends
                scale=alt.Scale(domain=[-INDEX_CLIP - 0.5, INDEX_CLIP + 0.5], nice=False),
                axis=alt.Axis(values=[-1, 0, 1], labelExpr=_LOG_INDEX)),
    )
    colour = alt.Color("segment:N", scale=_persona_scale([segment]), legend=None)
    bars = base.mark_bar(height={"band": 0.7}).transform_calculate(
        segment=json.dumps(segment.name)).encode(
        color=colour,
        opacity=alt.Opacity("side:N", scale=alt.Scale(domain=["above", "below"],
                                                      range=[1.0, 0.45]), legend=None,
                            sort=["above", "below"]),
        tooltip=[alt.Tooltip("feature:N", title="Feature"),
                 alt.Tooltip("label:N", title="Index (100 = average)")],
    )
    zero = alt.Chart(_frame([{"pos": 0}])).mark_rule(color="#9aa5b1").encode(x=alt.X("pos:Q"))
    above = (base.transform_filter("datum.pos >= 0")
             .mark_text(align="left", dx=3, fontSize=10).encode(text=alt.Text("label:N")))
    below = (base.transform_filter("datum.pos < 0")
             .mark_text(align="right", dx=-3, fontSize=10).encode(text=alt.Text("label:N")))
    # narrow: it sits in half of a persona page next to the traits, at close to 1:1 scale
    chart = alt.layer(bars, zero, above, below).properties(width=210, height=18 * len(rows))
    return _finish(
        chart,
        f"{segment.name} compared with the average customer, as an index where 100 is the "
        f"average: {_extremes(segment, _model_features(features), n=3)}.",
    )


# ----------------------------------------------------------------------------- assembly

def _spec(chart: Any) -> dict[str, Any]:
    spec: dict[str, Any] = chart.to_dict(validate=False)
    # The $schema URL is only a label (nothing fetches it) but it would be the one http(s)
    # string in the report's own markup; the HTML tells vega-embed the mode instead.
    spec.pop("$schema", None)
    return spec


def _plan(
    segments: Sequence[Segment],
    features: Sequence[FeatureInfo],
    method: Method,
    points: pd.DataFrame | None,
    *,
    value_label: str = "spend",
    rfm: Rfm | None = None,
    trend_points: Sequence[TrendPoint] = (),
    moves: MigrationTable | None = None,
) -> list[ChartSpec]:
    """The charts the data supports, in the order the PDF shows them (they are built and
    exported in this order while the PDF is laid out), with their titles but no spec yet
    (``build_charts`` fills them in): which charts a report has is decided here only."""
    # Without a value measure a share of value would only repeat the share of customers.
    plan = [("size_value", f"Share of customers vs share of {value_label}", False)] \
        if value_label else []
    if moves is not None and moves.rows and moves.columns:
        plan.append(("migration", "Who stayed, who moved, who left: darker cells hold more "
                                  "of their row", False))
    if len({p.period for p in trend_points}) >= 2:
        plan.append(("trend", "Share of customers per segment, period by period", False))
    if _model_features(features):
        plan.append(("zscore_heatmap", "What sets each segment apart", False))
    if points is not None and len(points):
        plan.append(("projection", "A map of the customers: the closer two dots, the more "
                                   "alike the customers", True))
        if {"income", "value"} <= set(points.columns):
            plan.append(("income_value", f"Income and {value_label}", True))
    for group, title in (("product_mix", "What they buy"), ("channel_mix", "Where they buy"),
                         ("campaigns", "Response to past campaigns")):
        if _group(features, group):
            plan.append((group, title, False))
    if rfm is not None:
        plan.append(("rfm_grid", "Customers by recency and frequency (RFM scores)", False))
    if _model_features(features):
        plan += [(f"persona_{s.id}", f"{s.name} against the average customer", False)
                 for s in segments]
    if method.k_table:
        plan.append(("k_metrics", "How the number of segments was chosen", False))
    return sorted((ChartSpec(name=name, title=title, description="", spec={}, dense=dense)
                   for name, title, dense in plan), key=lambda c: page_rank(c.name))


def build_charts(
    segments: Sequence[Segment],
    features: Sequence[FeatureInfo],
    method: Method,
    points: pd.DataFrame | None,
    *,
    value_label: str = "spend",
    value_unit: str = "money",
    currency: str = "$",
    rfm: Rfm | None = None,
    trend_points: Sequence[TrendPoint] = (),
    moves: MigrationTable | None = None,
    previous_period: str = "last period",
) -> dict[str, ChartSpec]:
    """Every chart the data supports (``_plan``), as specs keyed by name (persona
    charts: persona_<id>).

    ``points`` is the caller's seeded sample of customers (columns x, y, segment and
    optionally income, value); None skips the scatters. ``moves``: the migration table since
    ``previous_period`` (``Changes.table``; None on a first run or without customer keys).
    """
    by_id = {f"persona_{s.id}": s for s in segments}
    pts = points if points is not None else pd.DataFrame()  # the plan has no scatter then
    builders: dict[str, Callable[[], Any]] = {
        "size_value": lambda: size_value(segments, value_label),
        "zscore_heatmap": lambda: zscore_heatmap(segments, features),
        "projection": lambda: projection(pts, segments, method.projection),
        "income_value": lambda: income_value(pts, segments, currency=currency,
                                             value_unit=value_unit,
                                             value_label=value_label),
        "channel_mix": lambda: channel_mix(segments, features),
        "product_mix": lambda: product_mix(segments, features),
        "campaigns": lambda: campaigns(segments, features),
        "k_metrics": lambda: k_metrics(method),
        "trend": lambda: trend(trend_points),
        "rfm_grid": lambda: rfm_grid(rfm),  # type: ignore[arg-type]
        "migration": lambda: migration(moves, previous_period),  # type: ignore[arg-type]
    }
    charts: dict[str, ChartSpec] = {}
    for planned in _plan(segments, features, method, points, value_label=value_label,
                         rfm=rfm, trend_points=trend_points, moves=moves):
        name = planned.name
        # Altair's debug mode validates every object as it is made (~10% of the build);
        # the specs are checked where it matters, by vl-convert rendering them in the tests.
        with debug_mode(False):
            chart = builders[name]() if name in builders else \
                persona_traits(by_id[name], features)
        spec = _spec(chart)
        charts[name] = ChartSpec(name=name, title=planned.title,
                                 description=spec["description"], spec=spec,
                                 dense=planned.dense)
    return charts
