"""Derived features: age, tenure, spend, RFM, product and channel mix... from the roles present."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clean import Cleaned
from .config import Config
from .errors import ConfigError
from .report import FeatureInfo
from .schema import Schema

# Default model features, in order of preference; those the table can give are used.
# Behaviour and value first; demographics that drive buying (income, children, age);
# recency is left out because in most exports it is a snapshot of the last few weeks,
# not a trait of the customer.
DEFAULT_MODEL = ["income", "total_spend", "avg_basket", "purchases_total", "deal_share",
                 "share_web", "share_catalog", "share_store", "web_visits", "children",
                 "age", "campaigns_accepted", "score",
                 "share_wines", "share_meat"]


@dataclass(frozen=True)
class FeatureMeta:
    label: str
    unit: str
    group: str
    description: str


@dataclass(frozen=True)
class FeatureFrame:
    frame: pd.DataFrame  # one row per kept customer, derived features as columns
    meta: dict[str, FeatureMeta]
    model: list[str]  # features the clustering uses
    value: str | None  # the feature that measures customer value (total spend)

    def info(self) -> list[FeatureInfo]:
        return [
            FeatureInfo(name=name, label=m.label, unit=m.unit, group=m.group,
                        description=m.description, in_model=name in self.model,
                        overall_mean=float(self.frame[name].mean()))
            for name, m in self.meta.items()
        ]


def _title(tag: str) -> str:
    return tag.replace("_", " ").strip().capitalize()


def _campaign_label(column: str) -> str:
    m = re.search(r"(\d+)", column)
    if m:
        return f"Campaign {m.group(1)}"
    return "Last campaign" if "response" in column.lower() else _title(column)


def build_features(cleaned: Cleaned, schema: Schema, cfg: Config) -> FeatureFrame:
    df = cleaned.frame
    out = pd.DataFrame(index=df.index)
    meta: dict[str, FeatureMeta] = {}

    def add(name: str, values: pd.Series | np.ndarray, label: str, unit: str, group: str,
            description: str) -> None:
        out[name] = pd.Series(values, index=df.index).astype("float64")
        meta[name] = FeatureMeta(label, unit, group, description)

    as_of = cleaned.as_of
    if (by := schema.col("birth_year")) and as_of is not None:
        add("age", as_of.year - df[by], "Age", "years", "demographics",
            f"years between {by} and {as_of.isoformat()}")
    elif age := schema.col("age"):
        add("age", df[age], "Age", "years", "demographics", f"from {age}")
    if (signup := schema.col("signup_date")) and as_of is not None:
        days = (pd.Timestamp(as_of) - df[signup]).dt.days
        months = (days / 30.4375).fillna((days / 30.4375).median())
        add("tenure_months", months, "Tenure", "months", "engagement",
            f"months between {signup} and {as_of.isoformat()}")
    if income := schema.col("income"):
        add("income", df[income], "Income", "money", "demographics", f"from {income}")

    spend_cols = schema.cols("spend")
    if spend_cols:
        total = df[spend_cols].sum(axis=1)
        add("total_spend", total, "Total spend", "money", "value",
            f"sum of {', '.join(spend_cols)}" if len(spend_cols) > 1 else f"from {spend_cols[0]}")
        if len(spend_cols) > 1:
            safe = total.replace(0, np.nan)
            for column in spend_cols:
                tag = schema.tags.get(column, column.lower())
                add(f"share_{tag}", (df[column] / safe).fillna(0.0), f"{_title(tag)} share",
                    "share", "product_mix", f"{column} as a share of total spend")

    purchase_cols = schema.cols("purchases")
    if purchase_cols:
        purchases = df[purchase_cols].sum(axis=1)
        add("purchases_total", purchases, "Purchases", "count", "value",
            f"sum of {', '.join(purchase_cols)}" if len(purchase_cols) > 1
            else f"from {purchase_cols[0]}")
        safe = purchases.replace(0, np.nan)
        if len(purchase_cols) > 1:
            for column in purchase_cols:
                tag = schema.tags.get(column, column.lower())
                add(f"share_{tag}", (df[column] / safe).fillna(0.0), f"{_title(tag)} share",
                    "share", "channel_mix", f"{column} as a share of all purchases")
        if deals := schema.col("deals"):
            add("deal_share", (df[deals] / safe).clip(upper=1.0).fillna(0.0), "Deal share",
                "share", "engagement", f"{deals} as a share of all purchases")
        if "total_spend" in out:
            add("avg_basket", (out["total_spend"] / safe).fillna(0.0), "Average basket", "money",
                "value", "total spend per purchase")
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
    for column in schema.cols("score"):
        name = "score" if "score" not in out else f"score_{column.lower()}"
        add(name, df[column], _title(column), "number", "value", f"from {column}")
    for column in schema.cols("numeric"):
        add(f"num_{re.sub(r'[^a-z0-9]+', '_', column.lower())}", df[column], _title(column),
            "number", "engagement", f"from {column}")

    model = _model_features(cfg, out, meta)
    value = "total_spend" if "total_spend" in out else ("score" if "score" in out else None)
    return FeatureFrame(frame=out, meta=meta, model=model, value=value)


def _model_features(cfg: Config, out: pd.DataFrame, meta: dict[str, FeatureMeta]) -> list[str]:
    if cfg.features.model:
        for name in cfg.features.model:
            if name not in out:
                close = difflib.get_close_matches(name, list(out.columns), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"available: {', '.join(out.columns)}"
                raise ConfigError(f"features.model names {name!r}, which this table does not have",
                                  hint=hint)
        chosen = list(cfg.features.model)
    else:
        chosen = [f for f in DEFAULT_MODEL if f in out]
        if len(chosen) < 2:
            # A table with little we know: cluster on whatever numbers it has.
            chosen = [f for f, m in meta.items() if m.group != "campaigns"]
    # A feature with no spread cannot separate anyone.
    return [f for f in chosen if out[f].std() > 0]

