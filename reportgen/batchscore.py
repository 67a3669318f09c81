"""A saved model applied to Arrow record batches column by column (issue 14's streamed
assignment): NumPy arrays, no pandas frame of the batch.

``Model.apply`` cleans a pandas frame of the whole batch, builds every feature and then takes
the model's. Out of core that was ~30 s per million customers. ``BatchScorer`` reads only the
columns the model needs and computes, with the run's decisions, only what segments.csv and
the assignment use: the key's blanks and repeats, the numeric columns' cleaning (unreadable,
absurd, rescaled, negative, capped, implausible, wild values set missing), the customers set
aside beyond an amount fence, the fills, the CSV's features, the scaling and the nearest
segment. The steps are clean's and build_features' with decisions given, in the same order,
so a batch gets the same segments, features and reasons for leaving a customer out as
``reportgen score`` gives it (tests/test_batchscore.py holds them to it).

It covers the models whose features it knows (the spend, purchase, channel, deal, basket,
demographic, visit, recency, children and campaign features of a marketing table, and the
amounts passed through as they are) with numeric source columns and a key column;
``BatchScorer.build`` returns None for any other model, and ``score`` returns None for a batch
it cannot do the same way (a feature blank for the whole batch, a value that is not finite,
every customer left out): the caller then uses ``Model.apply``, which also says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .clean import (
    ABSURD,
    AMOUNT_ROLES,
    BILLED_ROLES,
    IMPUTED_ROLES,
    MAX_AGE,
    MIN_AGE,
    RATE_CAP_UPTO,
    TOTAL_SPEND,
    key_exclusions,
)
from .schema import Schema, basket_note

if TYPE_CHECKING:
    import pyarrow as pa

    from .scoring import Model

Array = np.ndarray
# Features that are a source column as it is, after cleaning: feature -> role
PASSED = {"income": "income", "monthly_spend": "monthly_spend", "web_visits": "visits",
          "recency": "recency", "balance": "balance", "credit_limit": "credit_limit",
          "cash_advance": "cash_advance", "payments": "payments", "complained": "complaint"}


@dataclass(frozen=True)
class BatchScores:
    """One batch scored: rows are the batch's positions."""

    key: pd.Series  # the key column as load reads it
    kept: Array  # bool per row: in a segment
    labels: Array  # segment id per kept row
    features: dict[str, Array]  # CSV feature -> values of the kept rows (NaN: a 0/0 share)
    excluded: dict[int, str]  # position -> why the row was left out


class BatchScorer:
    """The run's cleaning decisions, features, scaling and model, applied to record batches
    (see the module's docstring)."""

    def __init__(self, model: Model, schema: Schema,
                 features: dict[str, tuple[Callable[[dict[str, Array]], Array], bool]],
                 numbers: list[str]) -> None:
        self.model = model
        self.schema = schema
        self.key = model.cleaning.key
        self._features = features  # name -> (values from the clean columns, undefined)
        self._numbers = numbers  # the numeric columns cleaned, in clean's order
        self.columns = [self.key, *numbers]

    @classmethod
    def build(cls, model: Model, names: list[str], types: list[pa.DataType]
              ) -> BatchScorer | None:
        """A scorer for batches of these columns, or None when this model or these columns
        need Model.apply (see the module's docstring)."""
        import pyarrow as pa

        d = model.cleaning
        kinds = dict(zip(names, types, strict=True))
        if model.algorithm == "kprototypes" or d.key_from != "column" or d.key not in kinds \
                or len(set(names)) != len(names) \
                or any(" ".join(n.split()) != n or not n for n in names) \
                or any(c not in kinds for c in model.columns):
            return None
        schema = model.schema.for_columns(names)
        numbers = [c for role in IMPUTED_ROLES for c in schema.cols(role)]
        numbers += [c for c in d.yes_no if c in kinds and c not in numbers]
        for column in numbers:
            kind = kinds[column]
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                return None
            if column not in d.yes_no and column not in d.numbers:
                return None
        if any(c not in d.numbers for role in IMPUTED_ROLES for c in schema.cols(role)):
            return None
            rule = d.numbers.get(column)
            if rule is not None and rule.role == "birth_year" and rule.plausible is None \
                    and d.as_of is None:
                return None  # the batch's own quantile would decide: only clean does that
        features = _features(schema, model)
        wanted = list(dict.fromkeys([*model.csv_features, *model.scaling.features]))
        if features is None or any(f not in features for f in wanted):
            return None
        return cls(model, schema, {f: features[f] for f in wanted}, numbers)

    def score(self, batch: pa.RecordBatch, earlier: dict[int, str] | None = None
              ) -> BatchScores | None:
        """The batch's segments, CSV features and left-out rows; None when this batch needs
        Model.apply. earlier: rows left out because a batch before held their key
        (RepeatedKeys.earlier)."""
        n = batch.num_rows
        key = _key_column(batch, self.key)
        excluded = {int(i): why for i, why in key_exclusions(key, self.key)[3].items()}
        excluded.update(earlier or {})
        kept = np.ones(n, dtype=bool)
        kept[list(excluded)] = False
        cols = {c: self._clean(c, _floats(batch.column(c))) for c in self._numbers}
        for position, why in self._set_aside(cols, kept).items():
            excluded[position] = why
        kept[list(excluded)] = False
        if not kept.any():
            return None
        self._impute(cols)
        if not kept.all():
            cols = {c: v[kept] for c, v in cols.items()}
        features: dict[str, Array] = {}
        for name, (compute, undefined) in self._features.items():
            values = compute(cols)
            if np.isnan(values).all():
                return None  # build_features leaves the feature out of this batch
            features[name] = values if undefined else np.where(np.isnan(values), 0.0, values)
        fills = self.model.features.fills
        x = np.column_stack([np.where(np.isnan(v), fills.get(f, 0.0), v)
                             if self._features[f][1] else v
                             for f, v in ((f, features[f]) for f in self.model.scaling.features)])
        if not np.isfinite(x).all():
            return None
        labels = self.model.assign_matrix(x)
        return BatchScores(key=key, kept=kept, labels=labels,
                           features={f: features[f] for f in self.model.csv_features},
                           excluded=excluded)

    def _clean(self, column: str, s: Array) -> Array:
        """clean._clean_numbers on one column, with the decisions given."""
        d = self.model.cleaning
        answer = d.yes_no.get(column)
        if answer is not None:  # numbers: 0 and 1 are the answers, anything else is blank
            s = np.where((s == 0.0) | (s == 1.0), s, np.nan)
        rule = d.numbers.get(column)
        if rule is None:
            return s
        absurd = (~np.isfinite(s) & ~np.isnan(s)) | (np.abs(s) >= ABSURD)
        if absurd.any():
            s = np.where(absurd, np.nan, s)
        if rule.scale != 1.0:
            s = s * rule.scale
        if rule.nonnegative:
            s = np.where(s < 0, np.nan, s)
        if rule.at_most is not None:
            over = s > rule.at_most
            capped = over & (s <= RATE_CAP_UPTO * rule.at_most)
            s = np.where(capped, rule.at_most, np.where(over & ~capped, np.nan, s))
        plausible = rule.plausible
        if rule.role == "birth_year" and plausible is None and d.as_of is not None:
            plausible = (float(d.as_of.year - MAX_AGE), float(d.as_of.year - MIN_AGE))
        if rule.role == "age":
            plausible = plausible or (float(MIN_AGE), float(MAX_AGE))
        if rule.role in ("birth_year", "age") and plausible is not None:
            s = np.where((s < plausible[0]) | (s > plausible[1]), np.nan, s)
        if rule.outlier_above is not None:
            s = np.where(s > rule.outlier_above, np.nan, s)
        return s

    def _set_aside(self, cols: dict[str, Array], kept: Array) -> dict[int, str]:
        """clean._set_aside with the fences given: position -> reason."""
        d, schema = self.model.cleaning, self.schema
        checks: list[tuple[str, Array, float | None]] = [
            (c, cols[c], d.numbers[c].set_aside_above)
            for role in AMOUNT_ROLES for c in schema.cols(role)]
        parts = [c for c in schema.cols("spend") if c != schema.totals.get("spend")]
        if len(parts) > 1 and "spend" not in schema.totals:
            blank = np.logical_and.reduce([np.isnan(cols[c]) for c in parts])
            total = np.where(blank, np.nan, _sum([np.nan_to_num(cols[c]) for c in parts]))
            checks.append((TOTAL_SPEND, total, d.total_set_aside_above))
        reasons: dict[int, list[str]] = {}
        for column, s, fence in checks:
            if fence is None:
                continue
            over = np.flatnonzero((s > fence) & kept)
            for i in over.tolist():
                if column != TOTAL_SPEND or i not in reasons:
                    reasons.setdefault(i, []).append(
                        f"{column} {s[i]:,.0f} above the fence {fence:,.0f}")
        return {i: "outlier: " + "; ".join(why) for i, why in reasons.items()}

    def _impute(self, cols: dict[str, Array]) -> None:
        """clean._impute_numbers with the fills given."""
        d, schema = self.model.cleaning, self.schema
        for column, answer in d.yes_no.items():
            if column in cols:
                cols[column] = np.where(np.isnan(cols[column]), answer.fill, cols[column])
        tenure = schema.col("tenure")
        new = cols[tenure] == 0 if tenure else None
        for role in IMPUTED_ROLES:
            for column in schema.cols(role):
                s = cols[column]
                if role in BILLED_ROLES and new is not None:
                    s = np.where(np.isnan(s) & new, 0.0, s)
                cols[column] = np.where(np.isnan(s), d.numbers[column].fill, s)


def _floats(column: pa.Array | pa.ChunkedArray) -> Array:
    """A numeric column as float64 with NaN for nulls (as pandas converts it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False),
                      dtype="float64")


def _sum(arrays: list[Array]) -> Array:
    out = arrays[0].copy()
    for a in arrays[1:]:
        out += a
    return out


def _key_column(batch: pa.RecordBatch, column: str) -> pd.Series:
    """The key column (named as the batch names it) as load gives it (frame_from_arrow)."""
    from .load import frame_from_arrow

    return frame_from_arrow(batch.select([column])).iloc[:, 0]


class RepeatedKeys:
    """The keys a table holds more than once, and which of them the batches met so far held:
    clean keeps a repeated key's first occurrence and leaves every later one out
    (clean.key_exclusions). Within one batch key_exclusions does that; across batches this
    does.

    ``find`` reads the key column alone, batch by batch, and keeps one 8-byte identity per
    key (a number's float64 bits, a hash of anything else: equal keys, equal identities), so
    50 M keys take 400 MB while they are sorted; then only the repeated identities are kept.
    While the batches are assigned, ``earlier`` names the rows of the next one whose key a
    batch before it held. It compares the keys themselves, not only their identities, so two
    different keys that share a hash are each kept."""

    def __init__(self, column: str, name: str, identities: Array) -> None:
        self.column = column  # as the files name it
        self.name = name  # as clean names it (load tidies the spaces in names)
        self._ids = identities  # sorted, unique: the identities held more than once
        self._met = np.zeros(len(identities), dtype=bool)  # by a batch before
        self._first = np.empty(len(identities), dtype=object)  # the key that met it first
        self._more: dict[int, set[Any]] = {}  # other keys of one identity (a collision)

    @classmethod
    def find(cls, batches: Iterable[pa.RecordBatch], column: str, name: str, rows: int
             ) -> RepeatedKeys:
        """The repeated keys of column (the key name) in batches (rows in all)."""
        ids = np.empty(rows, dtype=np.uint64)
        n = 0
        for batch in batches:
            found = _identities(batch, column, name)[1]
            ids[n:n + len(found)] = found
            n += len(found)
        ids = ids[:n]
        if _distinct(ids):
            return cls(column, name, ids[:0].copy())
        ids.sort()
        return cls(column, name, np.unique(ids[1:][ids[1:] == ids[:-1]]))

    def earlier(self, batch: pa.RecordBatch) -> dict[int, str]:
        """The rows of the next batch whose key a batch before it held: position -> clean's
        reason. Counts this batch's keys as met."""
        if not len(self._ids):
            return {}
        rows, ids = _identities(batch, self.column, self.name)
        slot = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        hit = self._ids[slot] == ids
        rows, slot = rows[hit], slot[hit]
        if not len(rows):
            return {}
        key = _key_column(batch, self.column)
        if not pd.api.types.is_numeric_dtype(key):
            key = key_exclusions(key, self.name)[0]  # text as clean compares it
        values = key.iloc[rows].to_numpy(dtype=object)
        met = self._met[slot]
        fresh = np.flatnonzero(~met)
        # the keys met first in this batch, by identity: two different ones share a hash?
        order = fresh[np.argsort(slot[fresh], kind="stable")]
        pairs = slot[order][1:] == slot[order][:-1]
        if (self._more and not self._more.keys().isdisjoint(slot.tolist())) \
                or not (values[order][1:][pairs] == values[order][:-1][pairs]).all() \
                or not (self._first[slot[met]] == values[met]).all():
            later = self._one_by_one(rows, slot, values)
        else:
            self._met[slot[fresh]] = True
            self._first[slot[fresh]] = values[fresh]
            later = rows[met]
        if not len(later):
            return {}
        # clean's words for them: each key given twice, the second time a repeat
        again = key.iloc[later]
        twice = pd.concat([again.set_axis(pd.RangeIndex(-len(again), 0)), again])
        return {int(i): why for i, why in key_exclusions(twice, self.name)[3].items()
                if i >= 0}

    def _one_by_one(self, rows: Array, slot: Array, values: Array) -> Array:
        """earlier's rows, a key at a time, for a batch with keys that share an identity."""
        later = []
        for row, s, value in zip(rows.tolist(), slot.tolist(), values, strict=True):
            if not self._met[s]:
                self._met[s] = True
                self._first[s] = value
            elif self._first[s] == value or value in self._more.get(s, ()):
                later.append(row)
            else:
                self._more.setdefault(s, set()).add(value)
        return np.array(later, dtype=np.int64)


def _identities(batch: pa.RecordBatch, column: str, name: str) -> tuple[Array, Array]:
    """The positions of the batch's keys that are not blank, and a uint64 identity for each,
    equal for keys that clean holds equal: a number's float64 bits (5 and 5.0 are one key,
    as in a column with blanks), read from Arrow, or a hash of anything else (text stripped
    as clean strips it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = batch.column(batch.schema.get_field_index(column))
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False))
    else:
        key = key_exclusions(_key_column(batch, column), name)[0]
        if not pd.api.types.is_numeric_dtype(key):
            rows = np.flatnonzero(key.notna().to_numpy())
            return rows, pd.util.hash_pandas_object(key.iloc[rows], index=False).to_numpy(
                dtype=np.uint64)
        numbers = key.to_numpy(dtype=np.float64, na_value=np.nan)
    rows = np.flatnonzero(~np.isnan(numbers))
    return rows, (numbers[rows] + 0.0).view(np.uint64)  # + 0.0: -0.0 is 0.0


def _distinct(ids: Array, block: int = 1 << 20) -> bool:
    """Whether the identities are all different, shown without sorting them when they are
    the float bits of whole numbers close together (customer ids 1..n, the usual kind): one
    pass over a bitmap of their range, a byte a number. False: not shown (sort them)."""
    numbers = ids.view(np.float64)
    if not len(numbers):
        return True
    low, high = float(numbers.min()), float(numbers.max())
    if not (np.isfinite(low) and np.isfinite(high)) or high - low >= 4 * len(numbers):
        return False
    seen = np.zeros(int(high - low) + 1, dtype=bool)
    for start in range(0, len(numbers), block):
        part = numbers[start:start + block] - low
        at = part.astype(np.int64)
        if (at != part).any():
            return False  # not whole numbers
        seen[at] = True
    return int(np.count_nonzero(seen)) == len(numbers)


def _features(schema: Schema, model: Model
              ) -> dict[str, tuple[Callable[[dict[str, Array]], Array], bool]] | None:
    """build_features' formulas for the features this module knows, named as it names them:
    feature -> (values from the clean columns, undefined: a 0/0 stays blank). None when
    two features would take the same name (build_features then numbers them)."""
    out: dict[str, tuple[Callable[[dict[str, Array]], Array], bool]] = {}
    as_of = model.cleaning.as_of

    def column(c: str) -> Callable[[dict[str, Array]], Array]:
        return lambda cols: cols[c]

    def total_of(columns: list[str], total: str | None) -> Callable[[dict[str, Array]], Array]:
        if total:
            return column(total)
        memo = "\0" + "\0".join(columns)  # summed once per batch, left to right as pandas

        def compute(cols: dict[str, Array]) -> Array:
            if memo not in cols:
                cols[memo] = _sum([cols[c] for c in columns])
            return cols[memo]
        return compute

    def share(c: str, whole: Callable[[dict[str, Array]], Array], lower: float | None
              ) -> Callable[[dict[str, Array]], Array]:
        def compute(cols: dict[str, Array]) -> Array:
            w = whole(cols)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = cols[c] / np.where(w == 0, np.nan, w)
            return np.clip(ratio, lower, 1.0)
        return compute

    if (by := schema.col("birth_year")) and as_of is not None:
        year = float(as_of.year)
        out["age"] = (lambda cols: year - cols[by]), False
    elif age := schema.col("age"):
        out["age"] = column(age), False
    for feature, role in PASSED.items():
        if c := schema.col(role):
            out[feature] = column(c), False
    shares: list[str] = []

    def mix(role: str, feature: str) -> Callable[[dict[str, Array]], Array] | None:
        """The total of a role's columns (or its total column) as feature, and each part's
        share of it: build_features' total_spend and product mix, purchases and channels."""
        columns = schema.cols(role)
        if not columns:
            return None
        total_col = schema.totals.get(role)
        whole = total_of(columns, total_col)
        out[feature] = whole, False
        parts = [c for c in columns if c != total_col]
        if len(parts) > 1 or (total_col and parts):
            for c in parts:
                name = f"share_{schema.tags.get(c, c.lower())}"
                shares.append(name)
                out[name] = share(c, whole, 0.0), True
        return whole

    total_spend = mix("spend", "total_spend")
    purchases = mix("purchases", "purchases_total")
    if purchases is not None:
        if deals := schema.col("deals"):
            out["deal_share"] = share(deals, purchases, None), True
        if total_spend is not None and basket_note(schema) is None:
            def basket(cols: dict[str, Array], spent: Any = total_spend,
                       bought: Any = purchases) -> Array:
                b = bought(cols)
                with np.errstate(divide="ignore", invalid="ignore"):
                    return spent(cols) / np.where(b == 0, np.nan, b)
            out["avg_basket"] = basket, True
    if len(set(shares)) != len(shares):
        return None
    if children := schema.cols("children"):
        out["children"] = total_of(children, None), False
    if campaigns := schema.cols("campaign"):
        out["campaigns_accepted"] = total_of(campaigns, None), False
        for c in campaigns:
            out[f"cmp_{c.lower()}"] = column(c), False
    return out
