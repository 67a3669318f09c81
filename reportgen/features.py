"""Derived features: age, tenure, spend, RFM, product and channel mix, credit use, contract...
from the roles present. A feature whose inputs the table lacks is simply not there: no channel
mix without purchase channels, no tenure without a signup date or a tenure column.

Like clean, it learns or applies. What it decides from the values — which features the model
uses, which one measures value, which category levels get a share feature, the medians that
fill a gap (tenure, credit utilisation) — is ``FeatureFrame.decisions()``; given back as
``build_features(..., decisions=d)`` it is applied, not decided again: the same model features
and levels on a batch of five customers as on the table they were learned from. Everything
else comes from the schema (which shares exist) and from clean's decisions (as_of)."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .business import Business, decide
from .clean import Cleaned
from .config import Config
from .errors import ConfigError, InputError, ModelError
from .orders import Derived
from .report import FeatureInfo
from .schema import PRIOR, Schema, basket_note, normalise

# Default model features, in order of preference; those the table can give are used.
# Behaviour and value first; demographics that drive buying (income, children, age);
# recency is left out because in most exports it is a snapshot of the last few weeks,
# not a trait of the customer.
DEFAULT_MODEL = ["income", "total_spend", "avg_basket", "purchases_total", "deal_share",
                 "share_web", "share_catalog", "share_store", "web_visits", "children",
                 "age", "campaigns_accepted", "score",
                 "share_wines", "share_meat"]
# What other kinds of customer table carry: credit cards (balance, cash advance, limit,
# payments), subscriptions and telecom (monthly bill, tenure as a number).
EXTRA_MODEL = ["monthly_spend", "balance", "cash_advance", "credit_limit", "payments",
               "loans_held"]
# Outcome columns and what they are called: a feature of the group "outcome" is profiled and
# named in "Needs attention" when a segment's rate is far from everyone's; never a model
# feature. bad: a high rate is a problem (churn), not an opportunity (a deposit taken up).
OUTCOMES: dict[str, tuple[str, bool]] = {
    "churned": ("Churned", True), "complained": ("Complained", True),
    "defaulted": ("In default", True), "subscribed": ("Subscribed", False),
    "converted": ("Converted", False),
}
_OUTCOME_NAMES = {"y": "subscribed", "subscribed": "subscribed", "subscription": "subscribed",
                  "deposit": "subscribed", "term_deposit": "subscribed",
                  "termdeposit": "subscribed", "converted": "converted",
                  "conversion": "converted"}
# Product shares: the two above are the sample's; a table without them (a wholesale table
# with Fresh, Milk, Grocery...) clusters on all its product shares, up to this many.
MAX_PRODUCT_SHARES = 8
# Categories with more levels than this are described by their largest levels only.
MAX_LEVELS = 6
# Rows _more_than_two looks at first.
HEAD_ROWS = 1000
# Groups that describe a segment but never make it: outcomes and one-hot profile columns.
DESCRIPTIVE_GROUPS = ("campaigns", "profile", "outcome", "satisfaction")


@dataclass(frozen=True)
class FeatureMeta:
    label: str
    unit: str
    group: str
    description: str
    level: str = ""  # for a category level feature ("Month-to-month"): the level's name
    # The unit in which the feature grows one-for-one with the calendar (compare.CLOCKS:
    # tenure, age), or "": drift ages last period's customers by it before comparing.
    clock: str = ""


@dataclass(frozen=True)
class FeatureDecisions:
    """What build_features decided from the values: apply it to build another table's."""

    model: tuple[str, ...]  # the features the clustering uses, in order
    value: str | None  # the feature that measures customer value
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> levels shared
    fills: dict[str, float] = field(default_factory=dict)  # feature -> what fills its gaps

    def to_dict(self) -> dict[str, Any]:
        return {"model": list(self.model), "value": self.value,
                "levels": {c: list(v) for c, v in self.levels.items()},
                "fills": dict(self.fills)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureDecisions:
        return cls(model=tuple(data["model"]), value=data["value"],
                   levels={c: tuple(v) for c, v in data["levels"].items()},
                   fills={f: float(v) for f, v in data["fills"].items()})


@dataclass(frozen=True)
class FeatureFrame:
    frame: pd.DataFrame  # one row per kept customer, derived features as columns
    meta: dict[str, FeatureMeta]
    model: list[str]  # features the clustering uses
    value: str | None  # the feature that measures customer value (total spend)
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # category -> levels
    fills: dict[str, float] = field(default_factory=dict)  # feature -> median filling gaps
    # The business type and its value measure (business.decide); None: decided from value.
    business: Business | None = None

    def matrix(self, features: list[str], rows: np.ndarray | None = None) -> np.ndarray:
        """These features as a float matrix for the model: a share that is 0/0 (a customer
        with no purchases has no channel mix) is missing in the frame, and here takes the
        feature's fill (its median), so it pulls the customer to no side. rows: only these
        rows (positions in the frame), as ``matrix(features)[rows]`` gives them."""
        # Column by column into one new matrix, laid out as pandas lays out the columns it
        # stacks (each column contiguous): selecting the columns first and then converting
        # them copied every value twice and took ~10× longer at 1 M customers.
        n = len(self.frame) if rows is None else len(rows)
        x = np.empty((len(features), n), dtype="float64").T
        for j, name in enumerate(features):
            column = x[:, j]
            values = self.frame[name].to_numpy(dtype="float64")
            column[:] = values if rows is None else values[rows]
            gaps = np.isnan(column)
            if gaps.any():
                column[gaps] = self.fills.get(name, 0.0)
        return x

    def decisions(self) -> FeatureDecisions:
        return FeatureDecisions(model=tuple(self.model), value=self.value,
                                levels=dict(self.levels), fills=dict(self.fills))

    @property
    def value_label(self) -> str:
        """What "value" means in the report: "spend", "total charges"...; "" when the table
        has nothing that measures value."""
        if self.business is not None and self.business.value == self.value:
            return self.business.value_label
        if self.value == "total_spend":
            return "spend"
        return self.meta[self.value].label.lower() if self.value else ""

    def info(self, means: Mapping[str, float] | None = None) -> list[FeatureInfo]:
        """Each feature's description and mean over everyone; means: the means computed
        already (``Profiles.overall_mean``), the others are computed here."""
        means = means or {}
        return [
            FeatureInfo(name=name, label=m.label, unit=m.unit, group=m.group,
                        description=m.description, in_model=name in self.model,
                        overall_mean=float(means[name]) if name in means else
                        float(self.frame[name].mean()))
            for name, m in self.meta.items()
        ]


def _title(tag: str) -> str:
    # "Spending Score (1-100)" → "Spending score": units in brackets are for the reader of
    # the raw table, not for a label.
    text = re.sub(r"\s*[\(\[][^\)\]]*[\)\]]", "", tag).replace("_", " ").strip() or tag
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return text[:1].upper() + text[1:].lower()


def _rate_label(column: str) -> str:
    norm = normalise(column)
    if "full_pay" in norm:
        return "Paid in full"  # PRC_FULL_PAYMENT: share of months the bill was paid in full
    label = _title(re.sub(r"(?i)^(prc|pct)_", "", column))
    return label.replace("Oneoff", "One-off").replace("oneoff", "one-off")


def _campaign_label(column: str) -> str:
    m = re.search(r"(\d+)", column)
    if m:
        return f"Campaign {m.group(1)}"
    return "Last campaign" if "response" in column.lower() else _title(column)


def _slug(text: str) -> str:
    return normalise(text) or "x"


def build_features(cleaned: Cleaned, schema: Schema, cfg: Config, file: str | None = None,
                   decisions: FeatureDecisions | None = None) -> FeatureFrame:
    """The features of the clean table: decided from it (decisions=None) or as decided before."""
    df = cleaned.frame
    out = pd.DataFrame(index=df.index)
    meta: dict[str, FeatureMeta] = {}
    columns: dict[str, pd.Series] = {}
    fills: dict[str, float] = {}
    levels: dict[str, tuple[str, ...]] = {}

    def fill(name: str, values: pd.Series) -> pd.Series:
        """values with gaps filled by their median, or by the median decided before."""
        if decisions is not None:
            if name in decisions.fills:
                return values.fillna(decisions.fills[name])
            return values
        median = stats.series_median(values)
        if np.isfinite(median):
            fills[name] = median
            return values.fillna(median)
        return values

    def add(name: str, values: pd.Series | np.ndarray, label: str, unit: str, group: str,
            description: str, level: str = "", undefined: bool = False,
            clock: str = "") -> None:
        """undefined: a blank is a ratio of nothing (0/0): kept missing, so means skip it,
        and filled with the median only in the model matrix (FeatureFrame.matrix)."""
        s = pd.Series(values, index=df.index).astype("float64")
        if s.isna().all():
            return
        base, n = name, 2
        while name in columns:
            name = f"{base}_{n}"
            n += 1
        if undefined:
            median = stats.series_median(s) if decisions is None else np.nan
            if np.isfinite(median):
                fills[name] = float(median)
            columns[name] = s
        else:
            columns[name] = s.fillna(0.0) if s.isna().any() else s
        meta[name] = FeatureMeta(label, unit, group, description, level, clock)

    def add_shares(columns: list[str], whole: pd.Series, group: str, of: str) -> None:
        """share_<tag> = column / whole for each column (missing where the whole is 0)."""
        safe = whole.replace(0, np.nan)
        for column in columns:
            tag = schema.tags.get(column, column.lower())
            add(f"share_{tag}", (df[column] / safe).clip(0, 1),
                f"{_title(tag)} share", "share", group, f"{column} as a share of {of}",
                undefined=True)

    as_of = cleaned.as_of
    if (by := schema.col("birth_year")) and as_of is not None:
        add("age", as_of.year - df[by], "Age", "years", "demographics",
            f"years between {by} and {as_of.isoformat()}", clock="calendar years")
    elif age := schema.col("age"):
        add("age", df[age], "Age", "years", "demographics", f"from {age}", clock="years")
    signup = schema.col("signup_date")
    if signup and as_of is not None and df[signup].notna().any():
        days = (pd.Timestamp(as_of) - df[signup]).dt.days
        months = fill("tenure_months", days / 30.4375)
        add("tenure_months", months, "Tenure", "months", "engagement",
            f"months between {signup} and {as_of.isoformat()}", clock="months")
    elif tenure := schema.col("tenure"):
        factor, unit_word = _tenure_unit(tenure, df[tenure])
        add("tenure_months", df[tenure] * factor, "Tenure", "months", "engagement",
            f"from {tenure} ({unit_word})", clock="months")
    if income := schema.col("income"):
        add("income", df[income], "Income", "money", "demographics", f"from {income}")

    spend_cols = schema.cols("spend")
    total_col = schema.totals.get("spend")
    parts = [c for c in spend_cols if c != total_col]
    if spend_cols:
        if total_col:
            total = df[total_col]
            how = f"from {total_col}"
        else:
            total = df[spend_cols].sum(axis=1)
            how = f"sum of {', '.join(spend_cols)}" if len(spend_cols) > 1 else \
                f"from {spend_cols[0]}"
        add("total_spend", total, "Total spend", "money", "value", how)
        if len(parts) > 1 or (total_col and parts):
            add_shares(parts, total, "product_mix", "total spend")
    if monthly := schema.col("monthly_spend"):
        add("monthly_spend", df[monthly], "Monthly bill", "money", "value", f"from {monthly}")

    purchase_cols = schema.cols("purchases")
    total_purchases = schema.totals.get("purchases")
    if purchase_cols:
        channels = [c for c in purchase_cols if c != total_purchases]
        purchases = df[total_purchases] if total_purchases else df[purchase_cols].sum(axis=1)
        # "Previous Purchases" says which purchases it counts: its own name is the label
        label = _title(purchase_cols[0]) if len(purchase_cols) == 1 and \
            re.search(PRIOR, normalise(purchase_cols[0])) else "Purchases"
        add("purchases_total", purchases, label, "count", "value",
            f"from {total_purchases}" if total_purchases else
            f"sum of {', '.join(purchase_cols)}" if len(purchase_cols) > 1
            else f"from {purchase_cols[0]}")
        safe = purchases.replace(0, np.nan)
        if len(channels) > 1 or (total_purchases and channels):
            add_shares(channels, purchases, "channel_mix", "all purchases")
        if deals := schema.col("deals"):
            add("deal_share", (df[deals] / safe).clip(upper=1.0), "Deal share",
                "share", "engagement", f"{deals} as a share of all purchases", undefined=True)
        if "total_spend" in columns and basket_note(schema) is None:
            add("avg_basket", columns["total_spend"] / safe, "Average basket",
                "money", "value", "total spend per purchase", undefined=True)

    if balance := schema.col("balance"):
        add("balance", df[balance], "Balance", "money", "value", f"from {balance}")
    if limit := schema.col("credit_limit"):
        add("credit_limit", df[limit], "Credit limit", "money", "value", f"from {limit}")
        if balance:
            util = (df[balance] / df[limit].replace(0, np.nan)).clip(0, 2)
            add("utilisation", fill("utilisation", util), "Credit utilisation", "share",
                "engagement", f"{balance} / {limit}")
    if cash := schema.col("cash_advance"):
        add("cash_advance", df[cash], "Cash advance", "money", "value", f"from {cash}")
    if paid := schema.col("payments"):
        add("payments", df[paid], "Payments", "money", "value", f"from {paid}")
    for column in schema.cols("rate"):
        add(f"rate_{_slug(column)}", df[column], _rate_label(column), "share", "engagement",
            f"from {column}")

    if visits := schema.col("visits"):
        add("web_visits", df[visits], "Web visits", "count", "engagement", f"from {visits}")
    if recency := schema.col("recency"):
        add("recency", df[recency], "Recency", "days", "engagement",
            f"days since last purchase ({recency})")

    child_cols = schema.cols("children")
    if child_cols:
        children = df[child_cols].sum(axis=1)
        add("children", children, "Children at home", "count", "demographics",
            f"sum of {', '.join(child_cols)}")
        if marital := schema.col("marital_status"):
            partnered = df[marital].astype("string").isin(["Married", "Together"])
            add("household_size", 1 + partnered.astype(int) + children, "Household size",
                "count", "demographics", f"1 + partner ({marital}) + children")

    campaign_cols = schema.cols("campaign")
    if campaign_cols:
        for column in sorted(campaign_cols, key=_campaign_label):
            add(f"cmp_{column.lower()}", df[column], _campaign_label(column), "rate", "campaigns",
                f"accepted the offer ({column})")
        add("campaigns_accepted", df[campaign_cols].sum(axis=1), "Campaigns accepted", "count",
            "engagement", f"sum of {', '.join(campaign_cols)}")
    if complaint := schema.col("complaint"):
        add("complained", df[complaint], "Complained", "rate", "engagement", f"from {complaint}")
    if churn := schema.col("churn"):
        add("churned", df[churn], "Churned", "rate", "outcome", f"share who left ({churn})")
    for column in schema.cols("outcome"):
        name = _OUTCOME_NAMES.get(normalise(column), "defaulted"
                                  if "default" in normalise(column) else f"outcome_{_slug(column)}")
        label = OUTCOMES[name][0] if name in OUTCOMES else _title(column)
        add(name, df[column], label, "rate", "outcome", f"share answering yes ({column})")
    loans = schema.cols("loan")
    for column in loans:
        add(f"loan_{_slug(column)}", df[column], f"{_title(column)} loan"
            if "loan" not in normalise(column) else _title(column), "rate", "profile",
            f"share holding one ({column})")
    if len(loans) > 1:
        add("loans_held", df[loans].sum(axis=1), "Loans held", "count", "value",
            f"sum of {', '.join(loans)}")
    for column in schema.cols("score"):
        name = "score" if "score" not in columns else f"score_{_slug(column)}"
        add(name, df[column], _title(column), "number", "value", f"from {column}")
    for column in schema.cols("rating"):
        # How the customer rated us: describes a segment, never its value or its spending.
        add(f"rating_{_slug(column)}", df[column], _title(column), "number", "satisfaction",
            f"a rating given by the customer ({column})")
    for column in schema.cols("duration"):
        unit = "seconds" if re.search(r"sec", normalise(column)) else "minutes"
        add(f"time_{_slug(column)}", df[column], _title(column), unit, "engagement",
            f"time spent, in {unit} ({column}); not a count of visits")
    for column in schema.cols("numeric"):
        add(f"num_{_slug(column)}", df[column], _title(column), "number", "engagement",
            f"from {column}")
    for column in schema.cols("flag"):
        add(f"flag_{_slug(column)}", df[column], _title(column), "rate", "profile",
            f"share answering yes ({column})")
    for column in schema.cols("gender") + schema.cols("categorical"):
        if decisions is not None and column not in decisions.levels:
            raise ModelError(f"the feature decisions have no levels for column {column!r}: "
                             "they were made for a table with other columns", file=file)
        levels[column] = _add_levels(add, df[column], column, "gender" if column in
                                     schema.cols("gender") else "cat",
                                     decisions.levels[column] if decisions else None)

    out = _frame(columns, df.index) if columns else out
    if not meta:
        ignored = len(schema.cols("ignore"))
        raise InputError(f"no column to measure customers by ({ignored} of "
                         f"{len(schema.roles)} columns are constant, empty or free text)",
                         file=file, hint="see the roles with `reportgen validate` and give "
                                         "numeric columns a role in [columns]")
    if decisions is None:
        business = decide(schema, list(out.columns), cfg.report.business,
                          {f: m.label for f, m in meta.items()})
        model = _model_features(cfg, out, meta, schema)
        value = business.value
        if value == "total_spend" and business.value_label != "spend":
            # TotalCharges of a telecom table, PURCHASES of a card table: named as such.
            meta[value] = dataclasses.replace(meta[value], label=business.value_label.capitalize())
    else:
        business = decide(schema, list(out.columns), cfg.report.business,
                          {f: m.label for f, m in meta.items()})
        model, value = list(decisions.model), decisions.value
        lacking = [f for f in [*model, *([value] if value else [])] if f not in out]
        if lacking:
            raise ModelError(f"the table does not give the model's features "
                             f"{', '.join(dict.fromkeys(lacking))}", file=file,
                             hint="use a table with the same columns as the one the model "
                                  "was fitted on")
    return FeatureFrame(frame=out, meta=meta, model=model, value=value, levels=levels,
                        fills=fills if decisions is None else dict(decisions.fills),
                        business=business)


def _tenure_unit(column: str, values: pd.Series) -> tuple[float, str]:
    """Months per unit of a tenure column, and the unit: the name says it (tenure_years), or
    fractional values that stay small (3.5 for 'Length of Membership') are years."""
    norm = normalise(column)
    if "year" in norm:
        return 12.0, "years"
    if "day" in norm:
        return 1 / 30.4375, "days"
    if "month" not in norm:
        v = values.dropna()
        if len(v) and (v != v.round()).mean() > 0.5 and v.quantile(0.95) <= 12:
            return 12.0, "years: the name gives no unit, and the values are fractions up to " \
                f"{v.max():.1f}"
    return 1.0, "months"


def _frame(columns: dict[str, pd.Series], index: pd.Index) -> pd.DataFrame:
    """The float64 columns as one DataFrame block, each column moved into it and let go at
    once: the features exist once (``pd.DataFrame(columns)`` held them twice). The block is
    laid out as pandas lays out the columns it stacks (one contiguous row per column)."""
    names = list(columns)
    block = np.empty((len(names), len(index)), dtype="float64")
    for j, name in enumerate(names):
        block[j] = columns.pop(name).to_numpy(dtype="float64")
    return pd.DataFrame(block.T, index=index, columns=names, copy=False)


# Default model features of a table aggregated from order lines: RFM, tenure and basket,
# then behaviour (returns, discounts) and the category and channel mix. The spend windows,
# gaps and active months describe segments; they mostly restate recency and frequency.
ORDER_MODEL = ["recency", "frequency", "total_spend", "avg_basket", "tenure_months",
               "items_per_order", "return_share", "deal_share"]


def order_features(cleaned: Cleaned, derived: Mapping[str, Derived], cfg: Config,
                   file: str | None = None) -> FeatureFrame:
    """The features of customers aggregated from order lines (orders.aggregate): its
    columns as they are, each with how it was derived."""
    out = cleaned.frame[list(derived)].astype("float64")
    meta = {name: FeatureMeta(d.label, d.unit, d.group, d.description, d.level, d.clock)
            for name, d in derived.items()}
    if cfg.features.model:
        model = _model_features(cfg, out, meta)
    else:
        mix = [f for f, m in meta.items() if m.group in ("product_mix", "channel_mix")]
        chosen = [f for f in ORDER_MODEL if f in out] + mix[:MAX_PRODUCT_SHARES]
        model = [f for f in chosen if out[f].std() > 0]
    kind = cfg.report.business if cfg.report.business != "auto" else "shop"
    business = Business(kind, "set in the config" if kind != "shop" else
                        "order lines: customers' purchases", "total_spend",
                        "revenue" if kind == "wholesale" else "spend")
    return FeatureFrame(frame=out, meta=meta, model=model, value="total_spend",
                        business=business)


def _add_levels(add: object, s: pd.Series, column: str, prefix: str,
                given: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """One share feature per level of a category: 'Contract: Month-to-month'. The levels
    shared: the largest (one of two), or the ones given (decided before)."""
    if given is None:
        counts = s.value_counts()
        found = [lv for lv in counts.index if str(lv) not in ("Unknown", "Other")]
        if len(found) < 2:
            return ()
        # Two levels: one share says it all (the other is its complement).
        chosen = found[:1] if len(found) == 2 and len(counts) == 2 else found[:MAX_LEVELS]
        given = tuple(str(lv) for lv in chosen)
    for level in given:
        text = str(level)
        name = f"gender_{_slug(text)}" if prefix == "gender" else \
            f"cat_{_slug(column)}_{_slug(text)}"
        # A coded level (Channel 1, Region 3) reads as the category it is, not as a number.
        label = text if prefix == "gender" else f"{_title(column)} {text}" \
            if re.fullmatch(r"-?\d+", text) else f"{_title(column)}: {text}"
        add(name, (s == level).astype(float), label, "share",  # type: ignore[operator]
            "profile", f"share with {column} = {text}", text)
    return given


def _more_than_two(s: pd.Series) -> bool:
    """Whether s holds more than two distinct values (missing ones not counted): the answer
    of ``s.nunique() > 2`` without hashing every value of a float column."""
    if s.dtype != np.float64:
        return bool(s.nunique() > 2)
    v = s.to_numpy()
    # Most columns show three values within their first rows: the whole column is read only
    # when they do not.
    head = v[:HEAD_ROWS]
    if len(v) > HEAD_ROWS and len(np.unique(head[~np.isnan(head)])) > 2:
        return True
    values = ~np.isnan(v)
    if not values.any():
        return False
    first = v[np.argmax(values)]
    other = values & (v != first)
    if not other.any():
        return False
    return bool((other & (v != v[np.argmax(other)])).any())


def _model_features(cfg: Config, out: pd.DataFrame, meta: dict[str, FeatureMeta],
                    schema: Schema | None = None) -> list[str]:
    if cfg.features.model:
        for name in cfg.features.model:
            if name in OUTCOMES or (name in meta and meta[name].group == "outcome"):
                raise ConfigError(f"features.model names {name!r}, an outcome: outcomes are "
                                  "profiled per segment, never used to make segments",
                                  hint=f"remove {name!r} from features.model")
            if name not in out:
                close = difflib.get_close_matches(name, list(out.columns), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"available: {', '.join(out.columns)}"
                raise ConfigError(f"features.model names {name!r}, which this table does not have",
                                  hint=hint)
        chosen = list(cfg.features.model)
    else:
        chosen = [f for f in DEFAULT_MODEL if f in out]
        chosen += [f for f in EXTRA_MODEL if f in out]
        if schema is not None and schema.col("tenure") and "tenure_months" in out:
            chosen.append("tenure_months")  # a tenure column is behaviour, not an enrolment date
        chosen += [f for f, m in meta.items() if f.startswith("rate_")]
        chosen += [f for f, m in meta.items() if f.startswith("time_")]  # minutes on app/site
        products = [f for f, m in meta.items() if m.group == "product_mix"]
        if not any(f in chosen for f in products) and len(products) <= MAX_PRODUCT_SHARES:
            chosen += products
        # A yes/no feature (Dependents in a telecom table) splits k-means in two along
        # itself and nothing else: describe segments with it, do not build them from it.
        chosen = [f for f in chosen if _more_than_two(out[f])]
        if len(chosen) < 2:
            # A table with little we know: cluster on whatever numbers it has.
            chosen = [f for f, m in meta.items()
                      if m.group not in DESCRIPTIVE_GROUPS and f not in OUTCOMES]
    # A feature with no spread cannot separate anyone.
    return [f for f in dict.fromkeys(chosen) if stats.series_std(out[f]) > 0]
