"""Monthly tables for the series tests: what changes from one month to the next is known.

- ``sample_months``: the bundled sample as June 2014, then months in which some customers'
  spend and recency change, some customers leave and new ones join (dated in the new month,
  so as_of moves a month each time).
- ``group_months``: three well-separated kinds of customer (tests/tables.py); from one month
  to the next some customers of one kind take on another kind's behaviour, some leave and new
  ones join, so the right migration matrix is known exactly.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reportgen.resources import sample_path

from .tables import KINDS, marketing_table

SPEND = ["MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts", "MntSweetProducts",
         "MntGoldProds"]


@dataclass
class Month:
    frame: pd.DataFrame
    as_of: dt.date
    changed: set[int] = field(default_factory=set)  # keys whose rows changed since last month
    new: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)
    moved: dict[int, tuple[str, str]] = field(default_factory=dict)  # key -> (from, to) kind

    @property
    def period(self) -> str:
        return self.as_of.strftime("%Y-%m")


def _month_end(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _next_month(day: dt.date) -> dt.date:
    return _month_end(dt.date(day.year + day.month // 12, day.month % 12 + 1, 1))


def read_sample() -> pd.DataFrame:
    return pd.read_csv(sample_path(), sep="\t")


def sample_months(months: int = 3, *, changed: int = 300, new: int = 200, gone: int = 100,
                  seed: int = 10) -> list[Month]:
    """The sample as June 2014, then months-1 perturbed months."""
    rng = np.random.default_rng(seed)
    frame = read_sample()
    first = pd.to_datetime(frame["Dt_Customer"], format="%d-%m-%Y").max().date()
    out = [Month(frame=frame, as_of=first)]
    for _ in range(months - 1):
        prev = out[-1]
        frame = prev.frame.copy()
        ids = frame["ID"].to_numpy()
        leaving = set(rng.choice(ids, gone, replace=False).tolist())
        frame = frame[~frame["ID"].isin(leaving)].reset_index(drop=True)
        touched = rng.choice(frame.index.to_numpy(), changed, replace=False)
        factor = rng.uniform(0.6, 1.4, size=(changed, len(SPEND)))
        frame.loc[touched, SPEND] = np.round(frame.loc[touched, SPEND].to_numpy() * factor
                                             ).astype(int)
        frame.loc[touched, "Recency"] = rng.integers(0, 100, changed)
        as_of = _next_month(prev.as_of)
        donors = frame.iloc[rng.choice(len(frame), new, replace=True)].copy()
        start = int(max(ids.max(), frame["ID"].max())) + 1
        donors["ID"] = np.arange(start, start + new)
        donors[SPEND] = np.round(donors[SPEND].to_numpy() *
                                 rng.uniform(0.8, 1.2, size=(new, len(SPEND)))).astype(int)
        donors["Income"] = np.round(donors["Income"] * rng.uniform(0.95, 1.05, new))
        days = rng.integers(1, as_of.day + 1, new)
        days[-1] = as_of.day  # the newest customer joined on the last day: as_of moves
        donors["Dt_Customer"] = [f"{d:02d}-{as_of.month:02d}-{as_of.year}" for d in days]
        donors["Recency"] = rng.integers(0, 30, new)
        frame = pd.concat([frame, donors], ignore_index=True)
        out.append(Month(frame=frame, as_of=as_of,
                         changed=set(frame.loc[touched, "ID"].tolist()),
                         new=set(donors["ID"].tolist()), gone=leaving))
    return out


def _behave_as(frame: pd.DataFrame, rows: np.ndarray, kind: str, rng: np.random.Generator
               ) -> None:
    inc, wine, meat, fruit, web, cat, store, deals, kids, visits, year = KINDS[kind]
    n = len(rows)
    frame.loc[rows, "Income"] = inc * rng.uniform(0.9, 1.1, n)
    frame.loc[rows, "MntWines"] = (wine * rng.uniform(0.8, 1.2, n)).astype(int)
    frame.loc[rows, "MntFruits"] = (fruit * rng.uniform(0.8, 1.2, n)).astype(int)
    frame.loc[rows, "MntMeatProducts"] = (meat * rng.uniform(0.8, 1.2, n)).astype(int)
    frame.loc[rows, "NumDealsPurchases"] = deals
    frame.loc[rows, "NumWebPurchases"] = web + rng.integers(0, 2, n)
    frame.loc[rows, "NumCatalogPurchases"] = cat + rng.integers(0, 2, n)
    frame.loc[rows, "NumStorePurchases"] = store + rng.integers(0, 2, n)
    frame.loc[rows, "NumWebVisitsMonth"] = visits
    frame.loc[rows, "Kidhome"] = kids
    frame.loc[rows, "Year_Birth"] = year + rng.integers(-4, 5, n)
    frame.loc[rows, "kind"] = kind


# Month to month: (from kind, to kind, customers) that change behaviour, customers who leave
# (per kind) and new customers (per kind).
GROUP_PLAN = [
    {"move": [("affluent", "family", 12), ("young", "affluent", 6)],
     "gone": {"family": 5, "young": 3}, "new": {"young": 10, "affluent": 4}},
    {"move": [("family", "young", 9)],
     "gone": {"affluent": 7}, "new": {"family": 8}},
]


def group_months(n_per_kind: int = 60, seed: int = 0) -> list[Month]:
    """Three months of the three-kinds table. Signup dates are in 2013 except the new
    customers', dated in their month (the last of them on its last day, so as_of is the
    month's end); in the first month one customer joined on 2014-06-30."""
    rng = np.random.default_rng(seed + 100)
    frame = marketing_table(n_per_kind, seed)
    frame.loc[0, "Dt_Customer"] = "30-06-2014"
    out = [Month(frame=frame, as_of=dt.date(2014, 6, 30))]
    for plan in GROUP_PLAN:
        prev = out[-1]
        frame = prev.frame.copy()
        as_of = _next_month(prev.as_of)
        gone: set[int] = set()
        for kind, count in plan["gone"].items():
            pool = frame.index[frame["kind"] == kind].to_numpy()
            gone |= set(frame.loc[rng.choice(pool, count, replace=False), "ID"].tolist())
        frame = frame[~frame["ID"].isin(gone)].reset_index(drop=True)
        moved: dict[int, tuple[str, str]] = {}
        for source, target, count in plan["move"]:
            pool = frame.index[(frame["kind"] == source) & ~frame["ID"].isin(moved)].to_numpy()
            rows = rng.choice(pool, count, replace=False)
            _behave_as(frame, rows, target, rng)
            moved.update({int(k): (source, target) for k in frame.loc[rows, "ID"]})
        new_rows = []
        start = int(max(prev.frame["ID"].max(), frame["ID"].max())) + 1
        for kind, count in plan["new"].items():
            block = marketing_table(count, int(rng.integers(1_000_000)))
            new_rows.append(block[block["kind"] == kind])
        fresh = pd.concat(new_rows, ignore_index=True)
        fresh["ID"] = np.arange(start, start + len(fresh))
        fresh["Dt_Customer"] = [f"{int(d):02d}-{as_of.month:02d}-{as_of.year}"
                                for d in rng.integers(1, as_of.day, len(fresh))]
        fresh.loc[len(fresh) - 1, "Dt_Customer"] = f"{as_of.day:02d}-{as_of.month:02d}-" \
                                                   f"{as_of.year}"
        frame = pd.concat([frame, fresh], ignore_index=True)
        out.append(Month(frame=frame, as_of=as_of, changed=set(moved), new=set(fresh["ID"]),
                         gone=gone, moved=moved))
    return out
