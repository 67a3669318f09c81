"""The Report: one plain, JSON-serialisable object holding everything the outputs show.

Templates only lay it out; summary.json is this object serialised. Numbers are stored raw
(shares as fractions 0..1, money in the table's currency units); templates format them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

TENTATIVE_BELOW = 0.6  # a segment whose stability is below this is flagged as tentative
OVERLAP_BELOW = 0.25  # a silhouette below this: the segments overlap (said plainly up front)


@dataclass(frozen=True)
class Trait:
    """A way a segment differs from everyone, with its evidence."""

    feature: str  # derived feature name, e.g. "income"
    label: str  # human label, e.g. "Income"
    direction: str  # "high" or "low"
    z: float  # (segment mean - overall mean) / overall std
    value: float  # segment mean
    overall: float  # mean over all segmented customers
    text: str  # evidence sentence, e.g. "income $76k vs $52k overall"


@dataclass(frozen=True)
class Action:
    """A recommended marketing action and the evidence that triggered its rule."""

    rule: str  # rule id in the playbook
    title: str  # what to do
    channel: str
    kpi: str
    evidence: str
    strength: float  # how strongly the rule's conditions hold (for ranking)
    first: bool = False  # answers an outcome of the segment (churn...): its action to take first


@dataclass(frozen=True)
class Segment:
    """One segment and its persona."""

    id: int  # 1..k, ordered by value share, largest first
    name: str  # persona name, distinct across segments
    story: str  # one line
    color: str  # hex colour used for this persona in every chart
    size: int
    share: float  # share of segmented customers
    value_share: float | None  # share of total value (spend); None: the table has no value
    value_per_customer: float | None
    traits: list[Trait]
    actions: list[Action]
    means: dict[str, float]  # feature -> segment mean
    medians: dict[str, float]  # feature -> segment median
    zscores: dict[str, float]  # feature -> z vs everyone
    # Mean best-match Jaccard of this segment over bootstrap refits (0..1); None = not measured.
    stability: float | None = None
    tentative: bool = False  # stability under TENTATIVE_BELOW: do not build a campaign on it alone


@dataclass(frozen=True)
class KRow:
    """One row of the k search table."""

    k: int
    inertia: float
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    knee_distance: float  # distance of the inertia curve from its chord, normalised 0..1
    min_share: float  # smallest segment's share of customers
    eligible: bool
    score: float  # consensus score (mean rank across metrics; lower is better)
    chosen: bool


@dataclass(frozen=True)
class FeatureInfo:
    """A derived feature: what it means and whether the clustering uses it."""

    name: str
    label: str
    unit: str  # money, share, rate, count, years, months, days, number
    group: str  # demographics, value, product_mix, channel_mix, campaigns, engagement
    description: str
    in_model: bool
    overall_mean: float


@dataclass(frozen=True)
class Method:
    """How the segments were made, for the appendix."""

    algorithm: str
    scaling: str
    features: list[str]  # model features (names; labels are in Report.features)
    random_state: int
    k: int
    k_forced: bool
    k_rule: str  # the rule, in words
    k_reason: str  # why this k won, in words
    k_disagreement: str  # where the metrics disagree, in words ("" if they agree)
    k_table: list[KRow]
    silhouette: float  # of the final segmentation (sampled)
    projection: str  # how the 2-D view was made, e.g. "PCA: 41% + 17% of variance"
    algorithm_id: str = "kmeans"  # segment.algorithm as run: kmeans, kmeans-sample, minibatch…
    stability_ari: float | None = None  # mean adjusted Rand index of refits vs the final labels
    stability_runs: int = 0  # bootstrap refits behind the stability numbers
    stability: str = ""  # how stability was measured, in words
    business: str = ""  # the business type, why, and the value measure, in words


# The cleaning-log action of the rows a table read out of core left out of its sample.
SAMPLED = "sampled rows"


@dataclass(frozen=True)
class CleaningStep:
    """One thing the cleaning stage did."""

    column: str  # column name, or "*" for whole rows
    action: str  # e.g. "imputed", "excluded rows", "recoded", "ignored column"
    rows: int  # rows affected
    detail: str  # what exactly, e.g. "blank → median 51,382"
    reason: str  # why


@dataclass(frozen=True)
class ColumnInfo:
    """An input column and the role reportgen gave it (the data dictionary)."""

    column: str
    role: str
    dtype: str
    missing: int
    note: str


@dataclass(frozen=True)
class ChartSpec:
    """A chart built once as a Vega-Lite spec and exported per output."""

    name: str
    title: str
    description: str  # alt text with the numbers
    spec: dict[str, Any]
    dense: bool = False  # many marks: PNG rather than SVG in the PDF


@dataclass(frozen=True)
class TopAction:
    """One of the things to do this month, on the executive summary."""

    segment_id: int
    segment_name: str
    action: Action
    tentative: bool = False  # the segment is tentative: test the action on a small group first


@dataclass(frozen=True)
class OrderLines:
    """How a table of order lines became one row per customer (None for a customer table)."""

    method: str  # "28,492 order lines of 1,051 customers, aggregated to customers as of …"
    lines: int  # rows of the table
    lines_used: int  # lines aggregated
    customers: int  # customers segmented or left out with a reason
    columns: dict[str, str]  # role -> column: customer, order, date, amount ("Qty × Price")…
    revenue: float  # gross amount of the purchases aggregated
    no_customer_lines: int  # lines without a customer: counted, never imputed
    no_customer_revenue_share: float  # their share of the revenue of all lines
    duplicate_lines: int  # exact duplicates, counted once
    return_lines: int  # returns and cancellations netted against spend
    after_as_of: int  # lines dated after as_of, left out of this snapshot
    only_returns: int  # customers left out: nothing but returns


@dataclass(frozen=True)
class RfmGroup:
    """One of the named RFM groups (templates/rfm.toml) and who is in it."""

    name: str
    rule: str  # the scores it needs, e.g. "R 5, F 4-5"
    description: str
    customers: int
    share: float  # of segmented customers
    value_share: float  # of their total value
    recency: float  # mean days since the last order
    frequency: float  # mean orders
    monetary: float  # mean net spend


@dataclass(frozen=True)
class RfmCell:
    """One cell of the recency × frequency grid (scores 1-5)."""

    r: int
    f: int
    customers: int
    group: str  # the RFM group most of the cell's customers are in ("" for an empty cell)


@dataclass(frozen=True)
class Rfm:
    """RFM next to the clusters: the groups, which groups each segment holds, the grid."""

    method: str  # how the scores were made, in words
    groups: list[RfmGroup]  # largest first; groups nobody is in are left out
    by_segment: dict[str, dict[str, int]]  # segment id (as text) -> group -> customers
    grid: list[RfmCell]  # 25 cells, R 5..1 × F 1..5


@dataclass(frozen=True)
class Headline:
    customers_in: int  # rows in the source table
    customers: int  # customers segmented
    excluded: int  # rows left out (with reasons in the cleaning log)
    total_value: float | None  # None: the table has nothing that measures value
    value_per_customer: float | None
    k: int
    # The whole table's rows when the figures are measured on a random sample of it (a table
    # read out of core); None when every row was read.
    sampled_from: int | None = None


@dataclass(frozen=True)
class Outlier:
    """A customer set aside: an amount far beyond everyone else's (cleaning's fences)."""

    row: int  # row in the source table, as a spreadsheet shows it (header = row 1)
    customer: str  # the customer key
    reason: str  # e.g. "Frozen 23,000,000 above the fence 342,581"
    value: float | None  # the customer's value (the report's value measure; None: none)


@dataclass(frozen=True)
class Outliers:
    """The customers set aside as outliers, and the totals with and without them."""

    rule: str  # the fence, in words
    customers: list[Outlier]  # largest value first
    # their total value, everyone's with them, and per customer (None: no value measure)
    value: float | None
    total_value_with: float | None
    value_per_customer_with: float | None


@dataclass(frozen=True)
class Gate:
    """A CI gate from the config or the command line, and whether the run passed it."""

    name: str  # fail_under_silhouette, min_segment_share, min_stability
    threshold: float
    value: float  # what the run measured
    passed: bool
    reason: str  # one line, e.g. "silhouette 0.19 is below 0.25"


@dataclass(frozen=True)
class SegmentChange:
    """A segment this period against the previous run of the series (shares are fractions;
    a delta of 0.03 is 3 points). A previous segment no current one continues has a row too,
    with no customers now."""

    id: int
    name: str
    color: str
    transition: str  # survived, split, merged, emerged, disappeared
    text: str  # the transition in words: "Continued", "Split from Affluent regulars", ...
    customers: int
    previous_customers: int
    share: float
    previous_share: float
    share_delta: float
    value_share: float
    previous_value_share: float
    value_share_delta: float


@dataclass(frozen=True)
class FeatureDrift:
    """How far a model feature moved since the previous run: population stability index."""

    feature: str
    label: str
    psi: float
    level: str  # stable (< 0.1), moderate (0.1-0.25), significant (>= 0.25)


@dataclass(frozen=True)
class Drift:
    features: list[FeatureDrift]  # largest PSI first
    distance_previous: float | None  # mean distance of customers to their segment's centre
    distance_current: float | None
    distance_ratio: float | None
    exceeded: bool  # a threshold was passed: refit recommended (--fail-on-drift: exit 3)
    reasons: list[str]
    psi_moderate: float
    psi_significant: float
    distance_threshold: float
    aged: str = ""  # "Tenure is compared after ageing last month's customers by the month..."


@dataclass(frozen=True)
class MigrationRow:
    """A row of the migration table: a previous segment (or the new customers)."""

    label: str
    color: str
    customers: list[int]  # one per column of MigrationTable
    total: int


@dataclass(frozen=True)
class MigrationTable:
    """The migration matrix laid out for reading: previous segments (then "New customers")
    down, this period's segments (then "Lost") across."""

    columns: list[str]
    colors: list[str]
    rows: list[MigrationRow]


@dataclass(frozen=True)
class Changes:
    """What changed since the previous run of the series (summary.json ``changes``)."""

    previous_run_id: str
    previous_period: str  # e.g. "June 2014"
    policy: str  # keep or refit, as run
    new_customers: int | None  # None: customers cannot be followed (no key, no assignments)
    lost_customers: int | None
    returning_customers: int | None
    # previous segment id or "new" × this segment id or "lost": {from, to, customers, value};
    # value is this run's, except for the lost, whose value is the previous run's.
    migration: list[dict[str, Any]]
    segments: list[SegmentChange]
    drift: Drift | None
    largest_flows: list[str] = field(default_factory=list)  # the three largest, in words
    notes: list[str] = field(default_factory=list)  # a gap, why a kept model was refitted...
    movers: int = 0  # customers in movers.csv: moved down from a valuable segment
    # where they are listed: movers.csv in the run folder, or the Parquet the Spark engine
    # wrote them to
    movers_file: str = "movers.csv"
    table: MigrationTable | None = None  # the migration as a table (None without customers)


@dataclass(frozen=True)
class TrendPoint:
    """One segment in one period of the series (summary.json ``trend``)."""

    period: str  # period key, e.g. 2014-06
    period_label: str
    run_id: str
    id: int
    name: str
    color: str
    customers: int
    share: float
    value_share: float


@dataclass(frozen=True)
class Report:
    title: str
    company: str
    period: str
    as_of: str  # ISO date
    run_id: str
    source: str  # file name of the input
    currency: str
    value_label: str  # what "value" means, e.g. "spend"; "" when the table has no measure
    headline: Headline
    segments: list[Segment]
    top_actions: list[TopAction]
    attention: list[str]  # things that need attention, one sentence each
    method: Method
    cleaning: list[CleaningStep]
    columns: list[ColumnInfo]
    features: list[FeatureInfo]
    charts: dict[str, ChartSpec] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    primary_color: str = "#1d3557"  # brand colour: cover band, email header (report.primary_color)
    logo: str = ""  # brand logo as a data: URI, "" for none (the email sends it by Content-ID)
    # Unit of the value measure: "money" for spend, "number" for a score (the Mall table's
    # spending score is no amount of money); format value figures with it, not as money.
    value_unit: str = "money"
    orders: OrderLines | None = None  # the table was order lines: how they became customers
    rfm: Rfm | None = None  # RFM scores and groups (order tables)
    series: str = "default"  # the series the run belongs to
    # What changed since the previous run of the series; None on its first run.
    changes: Changes | None = None
    trend: list[TrendPoint] = field(default_factory=list)  # the last 12 periods, oldest first
    # Customers set aside by the amount fences (None: nobody); headline totals are without them.
    outliers: Outliers | None = None
    business: str = "generic"  # business type (business.BUSINESS_TYPES): shop, cards, telecom…
    # What every "overall" figure is: the mean over all segmented customers, each counted once.
    overall_basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """``to_dict()`` as JSON (summary.json): the same text, without asdict's deep copy of
        every chart's data (each dataclass becomes its fields as the encoder meets it)."""
        return json.dumps(self, default=_fields, indent=2, sort_keys=True,
                          allow_nan=False) + "\n"

    def segment(self, segment_id: int) -> Segment:
        return next(s for s in self.segments if s.id == segment_id)


def _fields(value: Any) -> dict[str, Any]:
    """A dataclass instance as its fields, for json.dumps(default=...)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
