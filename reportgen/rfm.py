"""RFM next to the clusters: recency, frequency and monetary scores 1-5, the RFM code ("545")
and the standard named groups (Champions, Loyal, … Lost) from templates/rfm.toml.

A score is a quintile with ties kept together: 1 + the number of whole fifths of customers
that do strictly worse (a longer recency, fewer orders, a lower net spend). Customers with the
same value share a score; a tied group takes the lowest of its places (see rfm.toml).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError
from .report import Rfm, RfmCell, RfmGroup
from .resources import read_toml, templates_dir

SCORES = (1, 2, 3, 4, 5)
METHOD = ("R, F and M are quintile scores 1-5 among the segmented customers: 5 = the fifth "
          "with the most recent order (R), the most orders (F), the highest net spend (M). A "
          "score is 1 + the whole fifths of customers that do strictly worse, so customers with "
          "the same value share a score and a tied group takes the lowest of its places (when "
          "most customers ordered once, they all score F 1). The named groups and their rules "
          "are in templates/rfm.toml.")


@dataclass(frozen=True)
class Group:
    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    description: str

    def holds(self, r: int, f: int, m: int) -> bool:
        return all(lo <= v <= hi for v, (lo, hi) in ((r, self.r), (f, self.f), (m, self.m)))

    @property
    def rule(self) -> str:
        """'R 5, F 4-5' (the scores the group needs, for the report)."""
        parts = []
        for letter, (lo, hi) in (("R", self.r), ("F", self.f), ("M", self.m)):
            if (lo, hi) != (1, 5):
                parts.append(f"{letter} {lo}" if lo == hi else f"{letter} {lo}-{hi}")
        return ", ".join(parts) or "any scores"


def score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Quintile scores 1-5: 1 + whole fifths of customers strictly worse; ties share one."""
    v = values.astype("float64")
    if v.isna().any():
        raise ValueError("RFM scores need a value for every customer")
    n = len(v)
    if n == 0:
        return pd.Series([], index=values.index, dtype="int8")
    ranked = (v if higher_is_better else -v).rank(method="min")  # 1 + customers strictly worse
    worse = ranked.to_numpy() - 1
    # Integers, not floats: 5 * worse // n is exact where 5 * worse / n could round up.
    scores = 1 + (5 * worse.astype(np.int64)) // n
    return pd.Series(np.minimum(scores, 5).astype("int8"), index=values.index)


def load_groups(path: Path | None = None) -> list[Group]:
    """The groups of rfm.toml, checked: ranges within 1-5, every code from 111 to 555 named."""
    path = path or templates_dir() / "rfm.toml"
    where = str(path)
    data = read_toml(path, "the RFM groups")
    groups = []
    for i, raw in enumerate(data.get("group", []), start=1):
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"[[group]] number {i} has no name", file=where)
        unknown = set(raw) - {"name", "r", "f", "m", "description"}
        if unknown:
            raise ConfigError(f"group {name!r}: unknown key {sorted(unknown)[0]!r}", file=where,
                              hint="keys: name, r, f, m, description")
        bounds = {}
        for letter in ("r", "f", "m"):
            value = raw.get(letter, [1, 5])
            if not (isinstance(value, list) and len(value) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
                    and 1 <= value[0] <= value[1] <= 5):
                raise ConfigError(f"group {name!r}: {letter} must be [low, high] with "
                                  f"1 <= low <= high <= 5, got {value!r}", file=where)
            bounds[letter] = (value[0], value[1])
        groups.append(Group(name=name.strip(), r=bounds["r"], f=bounds["f"], m=bounds["m"],
                            description=str(raw.get("description", ""))))
    if not groups:
        raise ConfigError("no [[group]] in the RFM groups", file=where)
    for r, f, m in itertools.product(SCORES, SCORES, SCORES):
        if not any(g.holds(r, f, m) for g in groups):
            raise ConfigError(f"no group for RFM code {r}{f}{m}", file=where,
                              hint="add a group for it, or widen a range")
    return groups


def group_table(groups: list[Group]) -> dict[str, str]:
    """RFM code ("545") -> group name: the first group that holds."""
    return {f"{r}{f}{m}": next(g.name for g in groups if g.holds(r, f, m))
            for r, f, m in itertools.product(SCORES, SCORES, SCORES)}


def rfm(recency: pd.Series, frequency: pd.Series, monetary: pd.Series,
        groups: list[Group] | None = None) -> pd.DataFrame:
    """r_score, f_score, m_score, rfm_score ("545") and rfm_group per customer."""
    groups = groups if groups is not None else load_groups()
    r = score(recency, higher_is_better=False)
    f = score(frequency)
    m = score(monetary)
    code = r.astype(str) + f.astype(str) + m.astype(str)
    names = code.map(group_table(groups))
    return pd.DataFrame({"r_score": r, "f_score": f, "m_score": m,
                         "rfm_score": code.astype("string"),
                         "rfm_group": names.astype("string")}, index=recency.index)


def summarise(scores: pd.DataFrame, segment: pd.Series, recency: pd.Series,
              frequency: pd.Series, monetary: pd.Series, groups: list[Group]) -> Rfm:
    """The groups with their size and value (in the order of ``groups``), the groups of each
    segment, the R × F grid.
    All series share scores' index; segment holds each customer's segment id."""
    n = len(scores)
    value = float(monetary.sum())
    rows = []
    for g in groups:
        members = (scores["rfm_group"] == g.name).to_numpy()
        count = int(members.sum())
        if not count:
            continue
        rows.append(_group(g, count, n, float(monetary[members].sum()), value,
                           float(recency[members].mean()), float(frequency[members].mean()),
                           float(monetary[members].mean())))
    names = scores["rfm_group"].astype(str).to_numpy()
    by_segment = scores.groupby([segment.to_numpy(), names]).size()
    grid = scores.groupby([scores["r_score"].to_numpy(), scores["f_score"].to_numpy(),
                           names]).size()
    return Rfm(method=METHOD, groups=rows, by_segment=_by_segment(by_segment),
               grid=_grid(grid))


def summarise_cells(cells: pd.DataFrame, groups: list[Group]) -> Rfm:
    """summarise from the customers counted by segment and R, F and M score (the Spark
    engine's aggregate: columns segment, r_score, f_score, m_score, customers and the sums
    recency, frequency, monetary of the cell's customers); a group's means are its sums over
    its customers."""
    code = (cells["r_score"].astype(str) + cells["f_score"].astype(str) +
            cells["m_score"].astype(str))
    named = cells.assign(rfm_group=code.map(group_table(groups)).astype(str))
    n = int(named["customers"].sum())
    value = float(named["monetary"].sum())
    totals = named.groupby("rfm_group")[["customers", "recency", "frequency", "monetary"]].sum()
    rows = []
    for g in groups:
        if g.name not in totals.index:
            continue
        t = totals.loc[g.name]
        count = int(t["customers"])
        rows.append(_group(g, count, n, float(t["monetary"]), value,
                           float(t["recency"]) / count, float(t["frequency"]) / count,
                           float(t["monetary"]) / count))
    by_segment = named.groupby(["segment", "rfm_group"])["customers"].sum()
    grid = named.groupby(["r_score", "f_score", "rfm_group"])["customers"].sum()
    return Rfm(method=METHOD, groups=rows, by_segment=_by_segment(by_segment),
               grid=_grid(grid))


def _group(g: Group, count: int, n: int, group_value: float, value: float, recency: float,
           frequency: float, monetary: float) -> RfmGroup:
    """One group's row (recency, frequency, monetary: its customers' means)."""
    return RfmGroup(name=g.name, rule=g.rule, description=g.description, customers=count,
                    share=count / n, value_share=group_value / value if value else 0.0,
                    recency=recency, frequency=frequency, monetary=monetary)


def _by_segment(counts: pd.Series) -> dict[str, dict[str, int]]:
    """Segment id (as text) -> group -> customers, segments by id and groups by name (counts:
    customers by segment id and group name)."""
    out: dict[str, dict[str, int]] = {}
    for (sid, grp), c in counts.sort_index().items():
        if c:
            out.setdefault(str(int(sid)), {})[str(grp)] = int(c)
    return out


def _grid(counts: pd.Series) -> list[RfmCell]:
    """The 25 cells R 5..1 × F 1..5 with their customers and the group most of them are in
    (a tie: the first name in alphabetical order), from customers by R, F and group name."""
    sizes: dict[tuple[int, int], int] = {}
    modes: dict[tuple[int, int], tuple[int, str]] = {}
    for (r, f, grp), c in counts.items():
        cell = (int(r), int(f))
        sizes[cell] = sizes.get(cell, 0) + int(c)
        best = modes.get(cell)
        if c and (best is None or (-int(c), str(grp)) < (-best[0], best[1])):
            modes[cell] = (int(c), str(grp))
    return [RfmCell(r=r, f=f, customers=sizes.get((r, f), 0),
                    group=modes[(r, f)][1] if (r, f) in modes else "")
            for r in reversed(SCORES) for f in SCORES]


__all__ = ["METHOD", "Group", "group_table", "load_groups", "rfm", "score", "summarise",
           "summarise_cells"]
