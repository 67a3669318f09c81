"""A realistic small Report built in code, for the chart and render tests.

Numbers are shaped like the bundled sample (a food and wine retailer, four segments) so the
rendered outputs look like a real run; they are not computed from data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from reportgen import fmt
from reportgen.render import charts
from reportgen.report import (
    TENTATIVE_BELOW,
    Action,
    CleaningStep,
    ColumnInfo,
    FeatureInfo,
    Gate,
    Headline,
    KRow,
    Method,
    Report,
    Segment,
    TopAction,
    Trait,
)

# name, label, unit, group, in_model, overall mean, overall std, description
FEATURES: list[tuple[str, str, str, str, bool, float, float, str]] = [
    ("income", "Income", "money", "demographics", True, 52_000, 21_000, "Yearly household income"),
    ("age", "Age", "years", "demographics", True, 45, 11.7, "Age at the as-of date"),
    ("children", "Children at home", "count", "demographics", True, 0.95, 0.75,
     "Kids plus teenagers at home"),
    ("total_spend", "Total spend", "money", "value", True, 606, 602, "Spend over the last 2 years"),
    ("purchases", "Purchases", "count", "value", True, 14.9, 7.7,
     "Purchases over the last 2 years"),
    ("recency", "Days since last purchase", "days", "engagement", True, 49, 29, "Recency"),
    ("web_visits", "Web visits per month", "count", "engagement", True, 5.3, 2.4,
     "Visits to the web shop last month"),
    ("deal_share", "Purchases on deal", "share", "engagement", True, 0.19, 0.13,
     "Share of purchases made with a discount"),
    ("tenure", "Months as customer", "months", "engagement", False, 17.6, 6.9, "Since enrolment"),
    ("share_wine", "Wine", "share", "product_mix", True, 0.46, 0.23, "Share of spend on wine"),
    ("share_meat", "Meat", "share", "product_mix", True, 0.25, 0.12, "Share of spend on meat"),
    ("share_fish", "Fish", "share", "product_mix", False, 0.08, 0.06, "Share of spend on fish"),
    ("share_fruit", "Fruit", "share", "product_mix", False, 0.05, 0.05, "Share of spend on fruit"),
    ("share_sweets", "Sweets", "share", "product_mix", False, 0.05, 0.05,
     "Share of spend on sweets"),
    ("share_gold", "Gold", "share", "product_mix", False, 0.11, 0.10,
     "Share of spend on gold products"),
    ("share_web", "Web", "share", "channel_mix", True, 0.33, 0.11, "Share of purchases online"),
    ("share_catalog", "Catalogue", "share", "channel_mix", True, 0.16, 0.11,
     "Share of purchases by catalogue"),
    ("share_store", "Store", "share", "channel_mix", True, 0.51, 0.12,
     "Share of purchases in store"),
    ("cmp1", "Campaign 1", "rate", "campaigns", False, 0.064, 0.24, "Accepted campaign 1"),
    ("cmp2", "Campaign 2", "rate", "campaigns", False, 0.013, 0.11, "Accepted campaign 2"),
    ("cmp3", "Campaign 3", "rate", "campaigns", False, 0.073, 0.26, "Accepted campaign 3"),
    ("cmp4", "Campaign 4", "rate", "campaigns", False, 0.075, 0.26, "Accepted campaign 4"),
    ("cmp5", "Campaign 5", "rate", "campaigns", False, 0.073, 0.26, "Accepted campaign 5"),
    ("response", "Last campaign", "rate", "campaigns", False, 0.149, 0.36,
     "Accepted the last campaign"),
]

# per segment: name, story, size, value share, means (the rest of the features sit at the mean)
SEGMENTS = [
    ("Affluent wine lovers",
     "High earners without children at home who spend most on wine and buy by catalogue.",
     470, 0.452,
     {"income": 76_200, "age": 48, "recency": 47, "children": 0.2,
      "total_spend": 1_390, "purchases": 20.8,
      "web_visits": 2.9, "deal_share": 0.07, "share_wine": 0.55, "share_meat": 0.31,
      "share_fish": 0.05, "share_fruit": 0.03, "share_sweets": 0.03, "share_gold": 0.03,
      "share_web": 0.24, "share_catalog": 0.29, "share_store": 0.47, "cmp1": 0.24, "cmp2": 0.03,
      "cmp3": 0.08, "cmp4": 0.15, "cmp5": 0.26, "response": 0.32}),
    ("Established families",
     "Middle-income parents of teenagers, loyal store shoppers who buy across the range.",
     582, 0.281,
     {"income": 58_900, "age": 52, "recency": 44, "children": 1.3,
      "total_spend": 650, "purchases": 19.1,
      "web_visits": 5.6, "deal_share": 0.2, "share_wine": 0.62, "share_meat": 0.2,
      "share_fish": 0.04, "share_fruit": 0.03, "share_sweets": 0.03, "share_gold": 0.08,
      "share_web": 0.36, "share_catalog": 0.14, "share_store": 0.5, "cmp1": 0.03, "cmp2": 0.02,
      "cmp3": 0.05, "cmp4": 0.12, "cmp5": 0.02, "response": 0.11}),
    ("Deal-seeking web shoppers",
     "Younger, price-sensitive customers who browse often online and wait for discounts.",
     538, 0.179,
     {"income": 44_100, "age": 41, "recency": 51, "children": 1.1,
      "total_spend": 410, "purchases": 13.2,
      "web_visits": 7.1, "deal_share": 0.36, "share_wine": 0.41, "share_meat": 0.2,
      "share_fish": 0.09, "share_fruit": 0.07, "share_sweets": 0.07, "share_gold": 0.16,
      "share_web": 0.45, "share_catalog": 0.1, "share_store": 0.45, "cmp1": 0.01, "cmp2": 0.0,
      "cmp3": 0.11, "cmp4": 0.04, "cmp5": 0.01, "response": 0.16}),
    ("Budget young parents",
     "Lower-income young parents with small baskets who rarely respond to campaigns.",
     646, 0.088,
     {"income": 31_500, "age": 39, "recency": 62, "children": 1.2,
      "total_spend": 115, "purchases": 7.8,
      "web_visits": 6.6, "deal_share": 0.3, "share_wine": 0.34, "share_meat": 0.25,
      "share_fish": 0.11, "share_fruit": 0.07, "share_sweets": 0.07, "share_gold": 0.16,
      "share_web": 0.31, "share_catalog": 0.07, "share_store": 0.62, "cmp1": 0.0, "cmp2": 0.0,
      "cmp3": 0.07, "cmp4": 0.01, "cmp5": 0.0, "response": 0.09}),
]

# segment 1 has the most the layout must hold: five actions with long titles, five traits
ACTIONS = {
    0: [
        Action("premium_wine_club",
               "Invite to a premium wine club with early access to new vintages",
               "Catalogue + email", "Club sign-up rate; spend per member",
               "wine is 55% of their spend; spend 2.3× the average", 0.92),
        Action("catalog_first", "Send the seasonal catalogue first to this group",
               "Catalogue", "Catalogue orders per mailing",
               "29% of purchases by catalogue vs 16% overall", 0.71),
        Action("vip", "Enrol in a VIP programme: a named contact, early access to new ranges, "
               "no discounts needed", "Personal email and direct mail",
               "12-month retention and spend per customer",
               "45% of spend from 21% of customers (2.2× its share)", 0.66),
        Action("upsell", "Upsell premium ranges: gift boxes, gold selections, limited editions",
               "Catalogue and personal email", "Average basket value",
               "income $76k vs $52k overall; average basket $82 vs $38 overall (2.1×)", 0.52),
        Action("frequency", "Reward their frequency: a points multiplier and a subscription for "
               "the items they rebuy", "Loyalty programme and email",
               "Purchases per customer and subscription take-up",
               "purchases 20.8 vs 14.9 overall", 0.41),
    ],
    1: [
        Action("family_bundles", "Offer family-size meat and wine bundles in store",
               "Store", "Basket size in store", "50% of purchases in store; 1.3 children at home",
               0.64),
        Action("loyalty_points", "Double loyalty points on teen-friendly products for a month",
               "Store + app", "Repeat visits within 30 days", "19 purchases in 2 years vs 15",
               0.48),
    ],
    2: [
        Action("flash_sales", "Run targeted web flash sales instead of blanket discounts",
               "Web + email", "Margin per order", "36% of purchases on deal vs 19% overall", 0.81),
        Action("browse_abandon", "Trigger browse-abandonment emails",
               "Email", "Visit-to-order conversion", "7.1 web visits a month vs 5.3", 0.55),
    ],
    3: [
        Action("starter_pack", "Send a low-cost starter pack with a next-order voucher",
               "Direct mail", "Second purchase within 60 days", "spend $115 vs $606 average",
               0.58),
        Action("stop_campaigns", "Stop including them in premium campaigns",
               "All", "Campaign cost per acceptance", "9% accepted the last campaign vs 15%",
               0.44),
    ],
}


STABILITY = [0.93, 0.86, 0.78, 0.55]  # the last segment is tentative


def _std(name: str) -> float:
    return next(f[6] for f in FEATURES if f[0] == name)


def _overall(name: str) -> float:
    return next(f[5] for f in FEATURES if f[0] == name)


def make_features() -> list[FeatureInfo]:
    return [FeatureInfo(name=n, label=lab, unit=u, group=g, description=d, in_model=m,
                        overall_mean=float(mean))
            for n, lab, u, g, m, mean, _sd, d in FEATURES]


def _traits(
    means: dict[str, float], zs: dict[str, float], features: list[FeatureInfo]
) -> list[Trait]:
    ranked = sorted((f for f in features if f.in_model), key=lambda f: -abs(zs[f.name]))[:5]
    out = []
    for f in ranked:
        direction = "high" if zs[f.name] > 0 else "low"
        if f.unit == "money":
            text = (f"{f.label.lower()} {fmt.money(means[f.name])} "
                    f"vs {fmt.money(f.overall_mean)} overall")
        elif f.unit == "share":
            text = f"{f.label.lower()} {means[f.name]:.0%} vs {f.overall_mean:.0%} overall"
        else:
            text = f"{f.label.lower()} {means[f.name]:.1f} vs {f.overall_mean:.1f} overall"
        out.append(Trait(feature=f.name, label=f.label, direction=direction, z=zs[f.name],
                         value=means[f.name], overall=f.overall_mean, text=text))
    return out


def make_segments(names: list[str] | None = None) -> list[Segment]:
    features = make_features()
    colours = charts.palette(len(SEGMENTS))
    total = sum(s[2] for s in SEGMENTS)
    total_value = 606.0 * total
    segments = []
    for i, (name, story, size, value_share, given) in enumerate(SEGMENTS):
        means = {f.name: float(given.get(f.name, f.overall_mean)) for f in features}
        zs = {f.name: round((means[f.name] - f.overall_mean) / _std(f.name), 3) for f in features}
        segments.append(Segment(
            id=i + 1, name=names[i] if names else name, story=story, color=colours[i], size=size,
            share=size / total, value_share=value_share,
            value_per_customer=value_share * total_value / size,
            traits=_traits(means, zs, features), actions=ACTIONS[i], means=means,
            medians={k: v * 0.9 for k, v in means.items()}, zscores=zs,
            stability=STABILITY[i], tentative=STABILITY[i] < TENTATIVE_BELOW,
        ))
    return segments


def make_method(k: int = 4) -> Method:
    rows = []
    metrics = {  # k: inertia, silhouette, CH, DB, knee, min_share, eligible, score
        3: (16_400.0, 0.231, 612.0, 1.62, 0.55, 0.21, True, 2.5),
        4: (14_100.0, 0.244, 598.0, 1.48, 0.81, 0.19, True, 1.5),
        5: (12_900.0, 0.198, 540.0, 1.71, 0.62, 0.11, True, 3.0),
        6: (11_950.0, 0.182, 497.0, 1.69, 0.41, 0.08, True, 3.5),
        7: (11_200.0, 0.171, 455.0, 1.77, 0.22, 0.04, False, 4.8),
        8: (10_600.0, 0.165, 421.0, 1.81, 0.0, 0.03, False, 5.5),
    }
    for kk, (inertia, sil, ch, db, knee, ms, el, score) in metrics.items():
        rows.append(KRow(k=kk, inertia=inertia, silhouette=sil, calinski_harabasz=ch,
                         davies_bouldin=db, knee_distance=knee, min_share=ms, eligible=el,
                         score=score, chosen=kk == k))
    return Method(
        algorithm="k-means (n_init=4)", scaling="standardised (z-scores)",
        features=[f.name for f in make_features() if f.in_model], random_state=42, k=k,
        k_forced=False,
        k_rule="Among k = 3–8 whose smallest segment holds at least 5% of customers, the k with "
               "the best mean rank across silhouette, Calinski–Harabasz, Davies–Bouldin and the "
               "inertia elbow.",
        k_reason="k = 4 has the best silhouette (0.24) and Davies–Bouldin (1.48) and sits at the "
                 "elbow of the inertia curve.",
        k_disagreement="Calinski–Harabasz prefers k = 3 (612 vs 598).",
        k_table=rows, silhouette=0.244, projection="PCA: 41% + 17% of variance",
        stability_ari=0.81, stability_runs=20,
        stability="k-means refitted on 20 bootstrap samples; each segment's best-match Jaccard "
                  "overlap with its refits",
    )


def make_points(segments: list[Segment], n: int = 300, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = [(2.2, 0.6), (0.4, 1.4), (-0.6, -1.2), (-1.9, 0.1)]
    sizes = np.array([s.size for s in segments], dtype=float)
    counts = np.floor(sizes / sizes.sum() * n).astype(int)
    counts[-1] += n - counts.sum()
    parts = []
    for s, (cx, cy), c in zip(segments, centres, counts, strict=True):
        income = rng.normal(s.means["income"], 9_000, c).clip(5_000)
        value = (rng.lognormal(np.log(s.means["total_spend"]), 0.45, c)).clip(5)
        parts.append(pd.DataFrame({
            "x": rng.normal(cx, 0.7, c), "y": rng.normal(cy, 0.7, c), "segment": s.name,
            "income": income, "value": value,
            # columns a chart must not plot: they should never reach a spec
            "customer_id": rng.integers(1_000, 9_999, c), "email": "someone@example.com",
        }))
    return pd.concat(parts, ignore_index=True)


def make_cleaning() -> list[CleaningStep]:
    return [
        CleaningStep("Income", "imputed", 24, "blank → median 51,382", "income missing"),
        CleaningStep("Year_Birth", "excluded rows", 3, "1893, 1899, 1900",
                     "implausible birth year (age over 110)"),
        CleaningStep("Income", "excluded rows", 1, "666,666", "income beyond 10× the median"),
        CleaningStep("Marital_Status", "recoded", 7, "Alone → Single; Absurd, YOLO → Other",
                     "rare or unclear labels"),
        CleaningStep("Z_CostContact", "ignored column", 0, "always 3", "constant column"),
        CleaningStep("Z_Revenue", "ignored column", 0, "always 11", "constant column"),
        CleaningStep("ID", "ignored column", 0, "unique per row", "identifier"),
    ]


def make_columns() -> list[ColumnInfo]:
    roles = [
        ("ID", "id", "int64", 0, "customer identifier"),
        ("Year_Birth", "birth_year", "int64", 0, "age at the as-of date"),
        ("Education", "category", "str", 0, ""), ("Marital_Status", "category", "str", 0, ""),
        ("Income", "income", "float64", 24, "yearly household income"),
        ("Kidhome", "children", "int64", 0, ""), ("Teenhome", "children", "int64", 0, ""),
        ("Dt_Customer", "signup_date", "str", 0, "dd-mm-yyyy"),
        ("Recency", "recency_days", "int64", 0, ""),
        ("MntWines", "spend", "int64", 0, "wine"), ("MntFruits", "spend", "int64", 0, "fruit"),
        ("MntMeatProducts", "spend", "int64", 0, "meat"),
        ("MntFishProducts", "spend", "int64", 0, "fish"),
        ("MntSweetProducts", "spend", "int64", 0, "sweets"),
        ("MntGoldProds", "spend", "int64", 0, "gold"),
        ("NumDealsPurchases", "deal_purchases", "int64", 0, ""),
        ("NumWebPurchases", "channel_purchases", "int64", 0, "web"),
        ("NumCatalogPurchases", "channel_purchases", "int64", 0, "catalogue"),
        ("NumStorePurchases", "channel_purchases", "int64", 0, "store"),
        ("NumWebVisitsMonth", "web_visits", "int64", 0, ""),
    ] + [(f"AcceptedCmp{i}", "campaign", "int64", 0, f"campaign {i}") for i in range(1, 6)] + [
        ("Complain", "flag", "int64", 0, ""),
        ("Z_CostContact", "ignored", "int64", 0, "constant"),
        ("Z_Revenue", "ignored", "int64", 0, "constant"),
        ("Response", "campaign", "int64", 0, "last campaign"),
    ]
    return [ColumnInfo(*r) for r in roles]


def make_report(*, names: list[str] | None = None, with_charts: bool = True,
                points: pd.DataFrame | None = None) -> Report:
    """A four-segment report like a run on the bundled sample; ``names`` renames the personas."""
    segments = make_segments(names)
    features = make_features()
    method = make_method()
    customers = sum(s.size for s in segments)
    top = [TopAction(s.id, s.name, s.actions[0]) for s in segments[:3]]
    report = Report(
        title="Customer segmentation", company="Northwind Food & Wine", period="June 2014",
        as_of="2014-06-29", run_id="20140629-abc123", source="marketing_campaign.csv",
        currency="$", value_label="spend",
        headline=Headline(customers_in=2_240, customers=customers, excluded=2_240 - customers,
                          total_value=606.0 * customers, value_per_customer=606.0, k=4),
        segments=segments, top_actions=top,
        attention=[
            f"{segments[0].name} are 21% of customers but 45% of spend: losing a few costs a lot.",
            "Campaign 2 reached almost no one (1% acceptance): review before re-running it.",
            "Segments are a partition of a continuum (silhouette 0.24), not clearly separated "
            "groups: customers near a boundary could sit in either.",
        ],
        method=method, cleaning=make_cleaning(), columns=make_columns(), features=features,
        gates=[
            Gate("fail_under_silhouette", 0.2, 0.244, True, "silhouette 0.24 is at least 0.20"),
            Gate("min_stability", 0.6, 0.55, False,
                 f"{segments[3].name} stability 0.55 is below 0.60"),
        ],
    )
    if not with_charts:
        return report
    pts = make_points(segments) if points is None else points
    built = charts.build_charts(segments, features, method, pts, value_label=report.value_label,
                                currency=report.currency)
    return dataclasses.replace(report, charts=built)


def walk_dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a chart spec (or any JSON-like value), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_dicts(value)
