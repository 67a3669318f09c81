"""Clean the table and say what was done: every fix, exclusion and ignored column is logged.

What the cleaning does, in order (each step that changes anything adds a line to the log):

1. columns the schema ignores are named with the reason;
2. the key: rows with a blank or repeated id are left out (first occurrence kept), or a row
   number is added when the table has no id;
3. dates: one format per column, decided by the values (ambiguous → error asking for
   [input] date_format); dates more than a year after nearly all others are typing errors;
   dates after as_of are set missing; blanks get the median date;
4. numbers: text in a numeric column is read as a number where it is one ('1,234', '$12')
   and set missing where not; yes/no columns become 1/0; money counted in thousands is
   multiplied out (see [scale]); infinite or astronomically large values (≥ 1e12), negative
   amounts, rates outside 0..1, ages outside 16-100 and wild incomes are set missing; every
   missing number is then filled with the column's median;
5. categories: known synonyms recoded, rare levels pooled as "Other", blanks → "Unknown".

Learn or apply. Everything in that list that depends on the values — the key and how it was
found, each date column's format, its future-date cut-off and fill date, as_of, each number
column's scale, fences and fill, each yes/no column's fill, each category's levels and pooled
levels — is a decision, returned as data with the clean table (``Cleaned.decisions``, a
``CleaningDecisions``: frozen, typed, ``to_dict``/``from_dict`` for JSON and the model file).

- ``clean(frame, schema, cfg)`` *learns* the decisions from this table (``[input]
  date_format`` and ``report.as_of`` from the config win over the values) and applies them.
- ``clean(frame, schema, cfg, decisions=d)`` *applies* d and learns nothing: a batch scored
  later, or next month's table under a kept model, is cleaned exactly as the table d was
  learned from (its medians, its income fence, its date formats, its levels). The config's
  date_format and as_of are not consulted: d holds them. Applying the decisions learned from
  a table to that same table gives the same frame, exclusions and log as learning did.
  Row by row, so a table can be cleaned in chunks; only the duplicate-id rule looks across
  rows. What d cannot handle has a rule, and the log says each time it is used:

  - a date that does not read in the stored format → missing → the stored fill date (a
    column whose dates are in another format altogether is refused earlier, by
    ``scoring.check_columns``); a column stored as "date" (the source held dates) that now
    holds text is read as ISO 8601;
  - a number beyond a stored fence (the income fence, plausible birth years, 0..1 for a
    rate) → missing → the stored fill;
  - an answer that is not yes/no → missing → the stored most common answer;
  - a category level the decisions never saw → the pooled level "Other" (a level pooled
    when learning is pooled again); blanks → "Unknown";
  - a column the schema gives a role but d has no decision for → ModelError (d was learned
    on another table: refit instead).

  as_of is d's unless ``as_of`` is given: a date, or "data" for the latest date of this table
  after the stored cut-offs (a new period of a series measured with a kept model).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import stats
from .config import Config
from .errors import InputError, ModelError, SegmentationError
from .report import CleaningStep
from .schema import (
    BINARY_ROLES,
    MONEY_ROLES,
    NUMERIC_ROLES,
    Schema,
    as_binary,
    as_numbers,
    basket_note,
    value_kind,
)

DATE_FORMATS = ["%Y-%m-%d", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d",
                "%d.%m.%Y", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M",
                "%Y-%m-%dT%H:%M:%S",
                # Order exports: two-digit years, times without seconds, seconds without T
                # ("12/2/10 13:49" from a shop system; month first when a 12/13/10 occurs).
                "%m/%d/%y %H:%M", "%d/%m/%y %H:%M", "%m/%d/%y", "%d/%m/%y", "%d.%m.%y",
                "%Y-%m-%d %H:%M", "%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S",
                "%d.%m.%Y %H:%M"]
# The "format" of a date column whose source held dates already (Parquet, a database).
NATIVE_DATES = "date"
# Numeric roles whose missing values are filled with the median (and said so).
IMPUTED_ROLES = ("birth_year", "age", "income", "tenure", "recency", "spend", "monthly_spend",
                 "purchases", "deals", "visits", "balance", "credit_limit", "cash_advance",
                 "payments", "rate", "children", "score", "rating", "duration", "numeric")
# Roles where a wild high value is a typing error, not a customer (unlike spend: whales exist).
OUTLIER_ROLES = ("income",)
OUTLIER_IQR = 6.0
# Amounts where a customer far beyond the others is real but extreme (a wholesale account of
# 23 million among accounts of at most 112,151): set aside as a listed outlier, never imputed,
# never allowed to form a segment of its own. The fence is on a log scale, because amounts
# spread multiplicatively: the upper quartile plus AMOUNT_LOG_IQR interquartile ranges of the
# logs of the positive amounts, i.e. Q3 × (Q3/Q1)^3.
AMOUNT_ROLES = ("spend", "monthly_spend", "balance", "credit_limit", "cash_advance", "payments")
AMOUNT_LOG_IQR = 3.0
FENCE_RULE = "upper quartile × (upper quartile / lower quartile)³ of the positive amounts"
# Fewer positive amounts than this: no fence (too little to tell an extreme from the spread).
FENCE_MIN_VALUES = 20
# More customers than this share above the fence: a long tail, not a few extreme accounts.
FENCE_MAX_SHARE = 0.05
# The name set_aside gives the row total of several spend columns in the log and the reasons.
TOTAL_SPEND = "total spend"
# Roles of money billed over time: blank for a customer of tenure 0 means nothing billed yet.
BILLED_ROLES = ("spend", "monthly_spend")
# A rate above its limit (1) and at most this many times it is capped, beyond it set missing.
RATE_CAP_UPTO = 2.0
# Roles that may be negative: a balance in credit, a generic measure.
SIGNED_ROLES = ("balance", "numeric")
# No customer measure reaches this; values beyond it are overflow or filler (1e308, 9e99).
ABSURD = 1e12
MIN_AGE, MAX_AGE = 16, 100
# A date this many days after nearly every other date in its column is a typing error.
FUTURE_GAP_DAYS = 365
MIN_YEAR, MAX_YEAR = 1900, 2200
MARITAL_SYNONYMS = {"alone": "Single", "single": "Single", "married": "Married",
                    "together": "Together", "divorced": "Divorced", "widow": "Widow",
                    "widowed": "Widow", "separated": "Divorced"}
# The category roles (schema.CATEGORY_ROLES) in the order their cleaning is logged.
CATEGORY_ORDER = ("marital_status", "education", "gender", "categorical")
RARE_SHARE = 0.005
OTHER, UNKNOWN = "Other", "Unknown"  # the pooled level and the fill of a blank category
# A date format must read this share of a column's values to be chosen.
MIN_DATE_SHARE = 0.9
# Segmenting into k needs at least this many usable customers per segment.
MIN_ROWS_PER_SEGMENT = 2
DECISIONS_VERSION = 1


# decisions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DateDecision:
    """How one date column is read and repaired."""

    format: str  # strftime format of the text, or NATIVE_DATES when the source held dates
    latest: str | None = None  # ISO timestamp: a later date is a typing error (None: no cut-off)
    fill: str | None = None  # ISO timestamp that fills a blank, the median date (None: no date)


@dataclass(frozen=True)
class YesNoDecision:
    """A yes/no column: the answers seen (as read, with the fixed yes/no vocabulary) and the
    answer that fills a blank or unreadable one."""

    answers: dict[str, int]  # "Yes" -> 1, "No" -> 0; empty when the column held 0/1 already
    fill: float  # 1.0 or 0.0: the most common answer


@dataclass(frozen=True)
class NumberDecision:
    """One numeric column: its scale, the fences beyond which a value is an error, its fill."""

    role: str
    text: bool = False  # the column held text read as numbers ('1,234', '$12')
    scale: float = 1.0  # multiplier applied (1000 for amounts in thousands)
    nonnegative: bool = True  # a negative value is an error
    at_most: float | None = None  # above this is an error (1 for a rate)
    plausible: tuple[float, float] | None = None  # outside is an error (birth years, ages)
    outlier_above: float | None = None  # above this is a typing error (income: Q3 + 6 IQR)
    set_aside_above: float | None = None  # above this the customer is a listed outlier
    fill: float = 0.0  # what fills a blank or an error
    fill_median: bool = True  # fill is the median (False: no usable value, 0)


@dataclass(frozen=True)
class CategoryDecision:
    """One category column: its levels, the rare levels pooled, the synonyms recoded."""

    levels: tuple[str, ...]  # levels kept as they are (after synonyms), sorted
    pooled: tuple[str, ...] = ()  # rare levels recoded as OTHER
    recoded: dict[str, str] = field(default_factory=dict)  # synonym -> standard level


@dataclass(frozen=True)
class CleaningDecisions:
    """Everything clean decided from the values of a table: apply it to clean another."""

    key: str  # the customer key column
    key_from: str  # "column" (the schema's id) or "row number" (added: the table has no id)
    as_of: dt.date | None  # date at which ages and tenures are measured
    as_of_from: str  # "config", "data" (latest date), "given" (a caller's) or "none"
    dates: dict[str, DateDecision] = field(default_factory=dict)
    yes_no: dict[str, YesNoDecision] = field(default_factory=dict)
    numbers: dict[str, NumberDecision] = field(default_factory=dict)
    categories: dict[str, CategoryDecision] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # columns left out (the schema's "ignore" role)
    version: int = DECISIONS_VERSION
    # The fence on the row total of several spend columns (None: no such total, or no fence)
    total_set_aside_above: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (dates as ISO text, tuples as lists)."""
        from dataclasses import asdict

        from .config import jsonable

        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningDecisions:
        if data.get("version") != DECISIONS_VERSION:
            raise ModelError(f"cleaning decisions of version {data.get('version')!r}; this "
                             f"reportgen reads version {DECISIONS_VERSION}")
        return cls(
            key=data["key"], key_from=data["key_from"],
            as_of=dt.date.fromisoformat(data["as_of"]) if data["as_of"] else None,
            as_of_from=data["as_of_from"],
            dates={c: DateDecision(**d) for c, d in data["dates"].items()},
            yes_no={c: YesNoDecision(answers=dict(d["answers"]), fill=float(d["fill"]))
                    for c, d in data["yes_no"].items()},
            numbers={c: NumberDecision(**{**d, "plausible": tuple(d["plausible"])
                                          if d["plausible"] is not None else None})
                     for c, d in data["numbers"].items()},
            categories={c: CategoryDecision(levels=tuple(d["levels"]), pooled=tuple(d["pooled"]),
                                            recoded=dict(d["recoded"]))
                        for c, d in data["categories"].items()},
            ignored=tuple(data["ignored"]), version=int(data["version"]),
            total_set_aside_above=data.get("total_set_aside_above"),
        )

    @property
    def date_formats(self) -> dict[str, str]:
        """Date column -> strftime format, for the columns read from text."""
        return {c: d.format for c, d in self.dates.items() if d.format != NATIVE_DATES}


@dataclass(frozen=True)
class Cleaned:
    frame: pd.DataFrame  # rows kept, original index = source row number (0-based data row)
    excluded: pd.Series  # source row -> reason, for rows left out
    log: list[CleaningStep]
    as_of: dt.date | None
    key: str  # the customer key column
    decisions: CleaningDecisions  # what was learned (or applied): hand it to the next batch
    # The customers set aside as outliers, cleaned like the others (also in excluded, with
    # their reason): the report lists them and shows totals with and without them.
    outliers: pd.DataFrame | None = None


def infer_date_format(values: pd.Series, column: str, file: str | None) -> str:
    """The format that reads the most values; dd-mm vs mm-dd is decided by the data.

    A format must read at least 90% of the values (the rest become missing, and the cleaning
    log says so). When two formats read exactly as many (every day is 12 or less), the data
    cannot decide: the user is asked for [input] date_format.
    """
    sample = values.dropna().astype(str).str.strip()
    sample = sample[sample != ""]
    if len(sample) > 20000:
        sample = sample.sample(20000, random_state=0)
    rates: dict[str, float] = {}
    # Each distinct text is tried once, counted as often as it occurs.
    counts = sample.value_counts(sort=False)
    distinct = pd.Series(counts.index, dtype=sample.dtype)
    times = counts.to_numpy()
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(distinct, format=fmt, errors="coerce")
        rate = float(times[parsed.notna().to_numpy()].sum() / len(sample)) if len(sample) \
            else 0.0
        if rate >= MIN_DATE_SHARE:
            rates[fmt] = rate
    if not rates:
        example = sample.iloc[0] if len(sample) else ""
        raise InputError(
            f"cannot read the dates (e.g. {example[:40]!r})" if len(sample) else "no dates",
            column=column, file=file, hint="set [input] date_format, e.g. '%d-%m-%Y'",
        )
    best = max(rates.values())
    fits = [fmt for fmt, rate in rates.items() if rate == best]
    if len(fits) > 1:
        raise InputError(
            f"dates are ambiguous: {' or '.join(fits)} both fit "
            + ("every value" if best == 1.0 else "the same values"),
            column=column, file=file, hint="set [input] date_format in the config",
        )
    return fits[0]


def _per_value(s: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """fn(s) for an fn that maps each value on its own (a missing value to a missing one),
    computed once per distinct value: a column of a million rows often holds a few hundred
    texts (dates, statuses), and parsing or recoding each row again costs 10-100× more."""
    if not isinstance(s.dtype, pd.StringDtype | pd.CategoricalDtype):
        return fn(s)  # objects: 1, 1.0 and True are one value to factorize, three to fn
    codes, distinct = pd.factorize(s)
    if len(distinct) > len(s) // 4:
        return fn(s)
    done = fn(pd.Series(distinct, dtype=s.dtype))
    return pd.Series(done.array.take(codes, allow_fill=True), index=s.index, name=s.name)


def _read_dates(text: pd.Series, format: str) -> pd.Series:
    """The dates text holds in format (stripped), missing where it holds none."""
    return pd.to_datetime(text.astype("string").str.strip(), format=format, errors="coerce")


def _row(index: object) -> int:
    # Source row numbers as a spreadsheet shows them: header is row 1.
    return int(index) + 2  # type: ignore[call-overload]


def _first(mask: pd.Series) -> int:
    return _row(mask.index[mask.to_numpy()][0])


def _key_name(frame: pd.DataFrame) -> str:
    for name in ("row", "row_number", "source_row", "_row"):
        if name not in frame.columns:
            return name
    return f"_row_{len(frame.columns)}"


def _missing_decision(column: str, what: str, file: str | None) -> ModelError:
    return ModelError(f"the cleaning decisions have no {what} for column {column!r}: they were "
                      "learned on a table with other columns", file=file,
                      hint="clean this table without them (a new run), or with the same columns")


def clean(frame: pd.DataFrame, schema: Schema, cfg: Config, file: str | None = None,
          notes: Sequence[CleaningStep] = (), decisions: CleaningDecisions | None = None,
          as_of: dt.date | Literal["data"] | None = None,
          snapshot: bool | None = None) -> Cleaned:
    """Clean frame: learn the decisions from it (decisions=None) or apply the ones given.

    as_of: None = the config's or the latest date (learning), the decisions' (applying); a
    date; or "data" = the latest date in this table.
    snapshot: the table as it was at as_of: customers who signed up after it are left out,
    with the reason (None = when learning at the config's as_of, ``--as-of``).
    """
    # Columns are replaced, never written into: a shallow copy (copy-on-write) keeps the
    # caller's frame as it was without a second copy of every column.
    df = frame.copy(deep=False)
    log: list[CleaningStep] = list(notes)
    excluded: dict[object, str] = {}
    d = decisions

    for column in schema.cols("ignore"):
        note = schema.notes.get(column, "")
        log.append(CleaningStep(column, "ignored column", 0, note,
                                "not a trait of the customer: never a feature or a trait"
                                if "left out" in note else
                                "carries no information for segmentation"))
    if basket := basket_note(schema):
        log.append(CleaningStep(", ".join(schema.cols("spend")), "not divided", 0, basket,
                                "an average basket needs the total spent over the purchases "
                                "counted"))

    # The key: given, or the row number.
    key = schema.col("id")
    if d is not None and d.key_from == "column" and key is None:
        raise ModelError(f"no customer key: the decisions were learned with {d.key!r} as the "
                         "key column", file=file, hint=f"give the table its {d.key!r} column")
    if d is not None and d.key_from == "row number" and key is not None:
        raise ModelError(f"the decisions were learned on a table without a customer key, this "
                         f"schema has {key!r}", file=file)
    key_from = "column"
    if key is None:
        key_from = "row number"
        key = _key_name(df) if d is None else d.key
        if key in df.columns:
            raise InputError(f"a column is named {key!r}, the name the decisions give the row "
                             "number", file=file, hint="rename the column")
        df.insert(0, key, [_row(i) for i in df.index])
        log.append(CleaningStep(key, "added key", len(df), "row number in the file",
                                "no customer id column was found"))
    else:
        if d is not None and key != d.key:
            raise _missing_decision(key, "key", file)
        original = df[key]
        column, missing, dup, reasons = key_exclusions(original, key)
        if column is not original:
            df[key] = column
        excluded.update(reasons)
        if missing.any():
            log.append(CleaningStep(key, "excluded rows", int(missing.sum()),
                                    f"blank key, first at row {_first(missing)}",
                                    "a customer without an id cannot be reported back"))
        if dup.any():
            log.append(CleaningStep(key, "excluded rows", int(dup.sum()),
                                    f"repeated ids, first at row {_first(dup)}",
                                    "the same customer twice would be counted twice"))
    kept = ~df.index.isin(list(excluded))

    if as_of is None and d is not None:
        chosen: dt.date | Literal["data"] | None = d.as_of
        as_of_from = d.as_of_from
    elif as_of is None:
        chosen = cfg.report.as_of or "data"
        as_of_from = "config" if cfg.report.as_of else "data"
    else:
        chosen, as_of_from = as_of, "data" if as_of == "data" else "given"
    if snapshot is None:  # learning at the config's as_of (--as-of) makes a snapshot
        snapshot = d is None and as_of_from == "config"
    date_decisions, when = _clean_dates(df, schema, cfg, file, log, kept, chosen,
                                        d.dates if d else None,
                                        excluded if snapshot else None)
    kept = ~df.index.isin(list(excluded))
    if when is None:
        as_of_from = "none"
    yes_no, numbers = _clean_numbers(df, schema, when, log, d, file)
    numbers, total_fence, outliers = _set_aside(df, schema, kept, log, numbers, excluded,
                                                d)
    kept = ~df.index.isin(list(excluded))
    numbers = _impute_numbers(df, schema, kept, log, numbers, d is not None, yes_no)
    categories = _clean_categories(df, schema, kept, log, d.categories if d else None, file)

    frame_kept = df if kept.all() else df.loc[kept]
    if frame_kept.empty:
        raise InputError("no usable rows left after cleaning", file=file,
                         hint="see the cleaning log with `reportgen validate`")
    if d is not None:  # applied: the same decisions, measured at this table's as_of
        learned = replace(d, as_of=when, as_of_from=as_of_from)
    else:
        learned = CleaningDecisions(
            key=key, key_from=key_from, as_of=when, as_of_from=as_of_from,
            dates=date_decisions, yes_no=yes_no, numbers=numbers, categories=categories,
            ignored=tuple(schema.cols("ignore")), total_set_aside_above=total_fence)
    return Cleaned(frame=frame_kept, excluded=pd.Series(excluded, dtype="string"), log=log,
                   as_of=when, key=key, decisions=learned,
                   outliers=df.loc[outliers] if len(outliers) else None)


def require_rows(cleaned: Cleaned, cfg: Config, file: str | None = None) -> None:
    """Refuse a table too small for the segments asked for, before any clustering."""
    k = cfg.segment.k or cfg.segment.k_min
    needed = MIN_ROWS_PER_SEGMENT * k
    n = len(cleaned.frame)
    if n < needed:
        rows = "row" if n == 1 else "rows"
        left = f" ({len(cleaned.excluded)} left out, see the cleaning log)" \
            if len(cleaned.excluded) else ""
        raise SegmentationError(
            f"only {n} usable {rows}{left}: {k} segments need at least {needed}",
            file=file, hint="use a larger table, or a smaller --k / segment.k_min")


def key_exclusions(key: pd.Series, name: str
                   ) -> tuple[pd.Series, pd.Series, pd.Series, dict[Any, str]]:
    """clean's rule for the key column ``name``: the key with text stripped and blanks made
    missing, which rows are blank, which repeat an earlier row's id (the first occurrence is
    kept), and why each of those rows is left out (row label -> reason). The streamed
    assignment (batchscore) applies it to each batch."""
    if key.dtype == object or pd.api.types.is_string_dtype(key):
        stripped = key.astype("string").str.strip()
        key = stripped.mask(stripped == "")
    missing = key.isna()
    dup = key.duplicated(keep="first") & ~missing
    reasons: dict[Any, str] = {i: f"no {name}" for i in key.index[missing]}
    for i in key.index[dup]:
        reasons[i] = f"duplicate {name} {_short(key.at[i])!r} (first occurrence kept)"
    return key, missing, dup, reasons


def _short(value: object, limit: int = 40) -> object:
    """A key as a reader should see it in a reason: 7446, not np.int64(7446); long text cut."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def _clean_dates(df: pd.DataFrame, schema: Schema, cfg: Config, file: str | None,
                 log: list[CleaningStep], kept: np.ndarray,
                 as_of: dt.date | Literal["data"] | None,
                 stored: dict[str, DateDecision] | None,
                 excluded: dict[object, str] | None = None,
                 ) -> tuple[dict[str, DateDecision], dt.date | None]:
    dates: list[pd.Series] = []
    formats: dict[str, str] = {}
    cutoffs: dict[str, str | None] = {}
    for column in schema.date_columns:
        d = stored.get(column) if stored is not None else None
        if stored is not None and d is None:
            raise _missing_decision(column, "date format", file)
        if pd.api.types.is_datetime64_any_dtype(df[column]):
            parsed = df[column]
            if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                parsed = parsed.dt.tz_localize(None)
            fmt = d.format if d else NATIVE_DATES
        else:
            fmt = d.format if d else cfg.input.date_format or \
                infer_date_format(df[column], column, file)
            # Dates stored natively when learned, as text now: the ISO text a database or
            # pandas writes them as.
            read = "ISO8601" if fmt == NATIVE_DATES else fmt
            parsed = _per_value(df[column], partial(_read_dates, format=read))
            bad = parsed.isna() & df[column].notna()
            if bad.any():
                shown = "ISO 8601" if fmt == NATIVE_DATES else fmt
                log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                        f"not a {shown} date, first at row {_first(bad)}",
                                        "unreadable date"))
        formats[column] = fmt
        # Years outside 1900-2200 are typing errors (0213, 2913); they also overflow the
        # nanosecond timestamps the later stages use.
        odd = parsed.notna() & ~parsed.dt.year.between(MIN_YEAR, MAX_YEAR)
        if odd.any():
            shown = ", ".join(sorted({str(v)[:10] for v in parsed[odd]})[:4])
            log.append(CleaningStep(column, "set missing", int(odd.sum()),
                                    f"{shown} (first at row {_first(odd)})",
                                    f"a year outside {MIN_YEAR}-{MAX_YEAR}: a typing error"))
            parsed = parsed.mask(odd)
        parsed = parsed.astype("datetime64[ns]")
        # A date far beyond nearly all others (2099 among 2012-2014) is a typing error; left
        # in, it would become as_of and age everyone by decades.
        cutoff: pd.Timestamp | None = None
        if d is not None:
            cutoff = pd.Timestamp(d.latest) if d.latest else None
        else:
            valid = parsed.dropna()
            if len(valid) >= 2:
                bulk = valid.quantile(0.99, interpolation="lower")
                cutoff = bulk + pd.Timedelta(days=FUTURE_GAP_DAYS)
        cutoffs[column] = cutoff.isoformat() if cutoff is not None else None
        if cutoff is not None:
            wild = parsed > cutoff
            if wild.any():
                shown = ", ".join(sorted({t.date().isoformat() for t in parsed[wild]})[:4])
                log.append(CleaningStep(column, "set missing", int(wild.sum()),
                                        f"{shown} (first at row {_first(wild)})",
                                        "more than a year after nearly every other date: a "
                                        "typing error"))
                parsed = parsed.mask(wild)
        df[column] = parsed
        dates.append(parsed)

    when: dt.date | None
    if as_of == "data":
        latest = max((d.max() for d in dates if d.notna().any()), default=pd.NaT)
        when = latest.date() if pd.notna(latest) else None
    else:
        when = as_of

    decided: dict[str, DateDecision] = {}
    signup = schema.col("signup_date")
    for column in schema.date_columns:
        if when is not None and column == signup and excluded is not None:
            # A snapshot at an earlier date (--as-of): who signed up later was no customer
            # yet. Their rows are left out, with the reason, not kept with a blank date.
            later = (df[column] > pd.Timestamp(when)) & kept
            if later.any():
                for i in df.index[later]:
                    excluded[i] = f"joined after as_of {when.isoformat()}"
                log.append(CleaningStep(column, "excluded rows", int(later.sum()),
                                        f"signed up after as_of {when.isoformat()}, first at "
                                        f"row {_first(later)}",
                                        "a snapshot at as_of: not a customer yet then"))
                kept = kept & ~later.to_numpy()
        if when is not None:
            # as_of is a day: a timestamp during that day (13:49 on the last day) is not
            # in the future, only one from the next midnight on.
            future = df[column] >= pd.Timestamp(when) + pd.Timedelta(days=1)
            if future.any():
                df.loc[future, column] = pd.NaT
                log.append(CleaningStep(column, "set missing", int(future.sum()),
                                        f"after as_of {when.isoformat()}, first at row "
                                        f"{_first(future)}", "date in the future"))
        s = df[column]
        gaps = s.isna() & kept
        fill: pd.Timestamp | None
        if stored is not None:
            stored_fill = stored[column].fill
            fill = pd.Timestamp(stored_fill) if stored_fill else None
        else:
            # the middle of the sorted dates: one partition of their nanoseconds, no sort
            usable = s.to_numpy()[kept]
            usable = usable[~np.isnat(usable)]
            middle = len(usable) // 2
            fill = pd.Timestamp(np.partition(usable.view("i8"), middle)[middle:middle + 1]
                                .view(usable.dtype)[0]) if len(usable) else None
        decided[column] = DateDecision(format=formats[column], latest=cutoffs[column],
                                       fill=fill.isoformat() if fill is not None else None)
        if gaps.any() and fill is not None:
            df[column] = s.fillna(fill)
            log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                    f"blank → median date {fill.date().isoformat()}",
                                    "keeps the customer; tenure is then typical"))
        elif gaps.any():
            log.append(CleaningStep(column, "ignored column", int(gaps.sum()),
                                    "no usable date left", "tenure is left out"))
    return decided, when


def _clean_numbers(df: pd.DataFrame, schema: Schema, as_of: dt.date | None,
                   log: list[CleaningStep], stored: CleaningDecisions | None,
                   file: str | None) -> tuple[dict[str, YesNoDecision], dict[str, NumberDecision]]:
    # Yes/no columns → 1/0.
    yes_no: dict[str, YesNoDecision] = {}
    for column, role in schema.roles.items():
        if stored is not None:
            if role in BINARY_ROLES and column not in stored.yes_no:
                raise _missing_decision(column, "yes/no answer", file)
            if column not in stored.yes_no:
                continue
        elif role in BINARY_ROLES or (role == "children" and not
                                      pd.api.types.is_numeric_dtype(df[column])):
            if role == "children" and value_kind(df[column]) != "yesno":
                continue  # counts written as text: the numeric pass below reads them
        else:
            continue
        s = df[column]
        b = as_binary(s)
        answers: dict[str, int] = {}
        if not pd.api.types.is_numeric_dtype(s):
            text = s.astype("string").str.strip()
            seen = pd.DataFrame({"t": text[b.notna()], "v": b[b.notna()]}) \
                .drop_duplicates()
            pairs = sorted(((str(t), int(v)) for t, v in zip(seen["t"], seen["v"],
                                                             strict=True)),
                           key=lambda p: (-p[1], p[0]))
            answers = dict(pairs)
            shown = ", ".join(f"{t} → {v}" for t, v in pairs[:4])
            log.append(CleaningStep(column, "recoded", int(b.notna().sum()), shown,
                                    "yes/no answers counted as 1/0"))
        other = b.isna() & s.notna()
        if other.any():
            log.append(CleaningStep(column, "set missing", int(other.sum()),
                                    f"{_short(str(s[other].iloc[0]))!r} is not yes/no, "
                                    f"first at row {_first(other)}", "unreadable answer"))
        if stored is not None:
            fill = stored.yes_no[column].fill
        else:
            # the median answer, 1 on a tie (a median of 0.5): the more common answer
            yes, no = int((b == 1.0).sum()), int((b == 0.0).sum())
            fill = 1.0 if yes + no and yes >= no else 0.0
        df[column] = b  # blanks are filled with the others (_impute_numbers), kept rows counted
        yes_no[column] = YesNoDecision(answers=answers, fill=fill)

    numbers: dict[str, NumberDecision] = {}
    for role in IMPUTED_ROLES:
        for column in schema.cols(role):
            d = stored.numbers.get(column) if stored is not None else None
            if stored is not None and d is None:
                raise _missing_decision(column, "number rule", file)
            raw = df[column]
            s = as_numbers(raw)
            text_read = not pd.api.types.is_numeric_dtype(raw)
            if text_read:
                text = raw.astype("string").str.strip()
                unread = s.isna() & text.notna() & (text != "")
                plain = pd.to_numeric(text, errors="coerce").notna()
                reformatted = s.notna() & ~plain
                if reformatted.any():
                    example = _short(str(text[reformatted].iloc[0]))
                    log.append(CleaningStep(column, "converted", int(reformatted.sum()),
                                            f"{example!r} → {s[reformatted].iloc[0]:g}, first at "
                                            f"row {_first(reformatted)}",
                                            "numbers written with separators or a currency sign"))
                if unread.any():
                    log.append(CleaningStep(column, "set missing", int(unread.sum()),
                                            f"{_short(str(text[unread].iloc[0]))!r} is not a "
                                            f"number, first at row {_first(unread)}",
                                            "text in a numeric column"))
            # infinite or beyond ABSURD, not missing: one pass over the floats (as_numbers)
            floats = s.to_numpy()
            beyond = (floats >= ABSURD) | (floats <= -ABSURD)  # NaN compares False
            if beyond.any():
                absurd = pd.Series(beyond, index=s.index)
                log.append(CleaningStep(column, "set missing", int(absurd.sum()),
                                        f"{_fmt(s[absurd].iloc[0])}, first at row "
                                        f"{_first(absurd)}",
                                        "infinite or beyond 1e12: overflow or a filler value"))
                s = s.mask(absurd)
            factor = d.scale if d else schema.scales.get(column, 1.0)
            if factor != 1.0:
                s = s * factor
                log.append(CleaningStep(column, "rescaled", int(s.notna().sum()),
                                        f"× {factor:,.0f}", "amounts given in "
                                        + ("thousands" if factor == 1000 else
                                           "millions" if factor == 1e6 else f"units of {factor:g}")
                                        + ": reported in currency units"))
            nonnegative = d.nonnegative if d else role not in SIGNED_ROLES
            neg = s < 0
            if neg.any() and nonnegative:
                log.append(CleaningStep(column, "set missing", int(neg.sum()),
                                        f"negative values, first at row {_first(neg)}",
                                        f"a {role.replace('_', ' ')} cannot be negative"))
                s = s.mask(neg)
            at_most = d.at_most if d else (1.0 if role == "rate" else None)
            if at_most is not None:
                # A frequency of 1.2 is a count rounded up or a month counted twice: capped at
                # 1. Beyond twice the limit it is no frequency at all: missing.
                over = s > at_most
                capped = over & (s <= RATE_CAP_UPTO * at_most)
                if capped.any():
                    log.append(CleaningStep(column, "capped", int(capped.sum()),
                                            f"values up to {s[capped].max():.2f} → {at_most:g}, "
                                            f"first at row {_first(capped)}",
                                            "a share or frequency cannot exceed 1: rounding "
                                            "in the source"))
                    s = s.mask(capped, at_most)
                wrong = over & ~capped
                if wrong.any():
                    log.append(CleaningStep(column, "set missing", int(wrong.sum()),
                                            f"values above {RATE_CAP_UPTO * at_most:g}, first "
                                            f"at row {_first(wrong)}",
                                            "a share or frequency lies between 0 and 1"))
                    s = s.mask(wrong)
            plausible = d.plausible if d else None
            if role == "birth_year":
                reason = (f"implies an age outside {MIN_AGE}-{MAX_AGE}" if as_of else
                          f"more than {MAX_AGE - MIN_AGE} years before the youngest customers, "
                          "or after them (the table has no date to measure ages at)")
                if plausible is None and as_of:
                    plausible = (float(as_of.year - MAX_AGE), float(as_of.year - MIN_AGE))
                elif plausible is None:
                    # No date says when the table was taken: the youngest customers (the
                    # 99th percentile, so one typo like 2095 does not move it) are taken as
                    # MIN_AGE. Checking against the largest year instead made everyone born
                    # in the last MIN_AGE years of the table "too young".
                    year = float(s.quantile(0.99)) + MIN_AGE if s.notna().any() else 2000.0
                    plausible = (year - MAX_AGE, year)
                bad = (s < plausible[0]) | (s > plausible[1])
                if bad.any():
                    values = ", ".join(str(int(v)) for v in sorted(s[bad].unique())[:6])
                    log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                            f"birth years {values}", reason))
                    s = s.mask(bad)
            if role == "age":
                plausible = plausible or (float(MIN_AGE), float(MAX_AGE))
                bad = (s < plausible[0]) | (s > plausible[1])
                if bad.any():
                    log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                            f"ages outside {plausible[0]:g}-{plausible[1]:g}",
                                            "implausible age"))
                    s = s.mask(bad)
            fence = d.outlier_above if d else _outlier_fence(s, role)
            if fence is not None:
                wild = s > fence
                if wild.any():
                    values = ", ".join(f"{v:,.0f}" for v in sorted(s[wild].unique())[:5])
                    log.append(CleaningStep(column, "set missing", int(wild.sum()),
                                            f"{values} (above {fence:,.0f})",
                                            f"more than {OUTLIER_IQR:g}× the interquartile range"
                                            " above the upper quartile: a typing error"))
                    s = s.mask(wild)
            df[column] = s
            numbers[column] = NumberDecision(
                role=role, text=d.text if d else text_read, scale=float(factor),
                nonnegative=nonnegative, at_most=at_most, plausible=plausible,
                outlier_above=fence, set_aside_above=d.set_aside_above if d else None,
                fill=d.fill if d else 0.0,
                fill_median=d.fill_median if d else True)
    return yes_no, numbers


def _outlier_fence(s: pd.Series, role: str) -> float | None:
    """Upper quartile + 6 IQR for the roles where a wild value is a typing error; None when
    there is too little to tell (fewer than 4 values, or no spread between the quartiles)."""
    if role not in OUTLIER_ROLES or s.notna().sum() < 4:
        return None
    q1, q3 = s.quantile([0.25, 0.75])
    if not q3 > q1:
        return None
    return float(q3 + OUTLIER_IQR * (q3 - q1))


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return "infinite value" if value > 0 else "negative infinite value"
    return f"{value:.3g}"


def _set_aside(df: pd.DataFrame, schema: Schema, kept: np.ndarray, log: list[CleaningStep],
               numbers: dict[str, NumberDecision], excluded: dict[object, str],
               stored: CleaningDecisions | None
               ) -> tuple[dict[str, NumberDecision], float | None, pd.Index]:
    """Customers with an amount beyond its fence (FENCE_RULE) are set aside: left out with
    the reason, listed as outliers. Returns the decisions with the fences, the fence on the
    row total of several spend columns, and the rows set aside."""
    reasons: dict[object, list[str]] = {}
    decided = dict(numbers)
    checks: list[tuple[str, pd.Series, float | None, str]] = []
    for role in AMOUNT_ROLES:
        for column in schema.cols(role):
            d = numbers[column]
            s = df[column]
            fence = d.set_aside_above if stored is not None else \
                _amount_fence(_kept_rows(s, kept))
            decided[column] = replace(d, set_aside_above=fence)
            checks.append((column, s, fence, ""))
    parts = [c for c in schema.cols("spend") if c != schema.totals.get("spend")]
    total_fence = None
    if len(parts) > 1 and "spend" not in schema.totals:
        total = df[parts].sum(axis=1, min_count=1)
        total_fence = stored.total_set_aside_above if stored is not None else \
            _amount_fence(_kept_rows(total, kept))
        checks.append((TOTAL_SPEND, total, total_fence, f" (sum of {', '.join(parts)})"))
    for column, s, fence, how in checks:
        if fence is None:
            continue
        over = (s > fence) & kept
        if not over.any():
            continue
        if stored is None and over.sum() > FENCE_MAX_SHARE * kept.sum():
            log.append(CleaningStep(column, "kept", int(over.sum()),
                                    f"{int(over.sum()):,} amounts above {fence:,.0f}",
                                    "a long tail rather than a few extreme accounts: kept"))
            if column in decided:
                decided[column] = replace(decided[column], set_aside_above=None)
            else:
                total_fence = None
            continue
        values = ", ".join(f"{v:,.0f}" for v in sorted(s[over].unique(), reverse=True)[:5])
        log.append(CleaningStep(column, "set aside", int(over.sum()),
                                f"{values}{how} above the fence {fence:,.0f}",
                                f"an extreme amount (fence: {FENCE_RULE}): listed as an "
                                "outlier, left out of the segments and their totals"))
        for i in s.index[over.to_numpy()]:
            if column != TOTAL_SPEND or i not in reasons:  # one amount says it: not the total
                reasons.setdefault(i, []).append(
                    f"{column} {s[i]:,.0f} above the fence {fence:,.0f}")
    for i, why in reasons.items():
        excluded[i] = "outlier: " + "; ".join(why)
    return decided, total_fence, pd.Index(list(reasons), dtype=df.index.dtype)


def _kept_rows(s: pd.Series, kept: np.ndarray) -> pd.Series:
    """s[kept], without a copy of the column when every row is kept."""
    return s if kept.all() else s[kept]


def _amount_fence(s: pd.Series) -> float | None:
    """FENCE_RULE on these amounts; None with too few positive amounts or no spread."""
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    positive = values[values > 0]  # a copy, without the index a Series selection builds
    if len(positive) < FENCE_MIN_VALUES:
        return None
    logs = np.log(positive, out=positive)
    q1, q3 = np.quantile(logs, [0.25, 0.75], overwrite_input=True)
    if not q3 > q1:
        return None
    return float(np.exp(q3 + AMOUNT_LOG_IQR * (q3 - q1)))


def _impute_numbers(df: pd.DataFrame, schema: Schema, kept: np.ndarray,
                    log: list[CleaningStep], numbers: dict[str, NumberDecision],
                    applying: bool, yes_no: dict[str, YesNoDecision]
                    ) -> dict[str, NumberDecision]:
    for column, answer in yes_no.items():
        gaps = df[column].isna()
        if gaps.any():
            if (gaps & kept).any():
                log.append(CleaningStep(column, "imputed", int((gaps & kept).sum()),
                                        f"blank → {answer.fill:.0f} (the most common answer)",
                                        "missing answer"))
            df[column] = df[column].fillna(answer.fill)
    tenure = schema.col("tenure")
    new = (df[tenure] == 0) if tenure else pd.Series(False, index=df.index)
    decided: dict[str, NumberDecision] = {}
    for role in IMPUTED_ROLES:
        for column in schema.cols(role):
            d = numbers[column]
            s = df[column]
            if not applying:
                values = _kept_rows(s, kept)
                usable = bool(values.notna().any())
                fill = stats.series_median(values) if usable else 0.0
                d = replace(d, fill=fill, fill_median=usable)
            decided[column] = d
            if role in BILLED_ROLES and tenure:
                # A subscriber of tenure 0 has not been billed yet: blank charges are 0.
                unbilled = s.isna() & new
                if (unbilled & kept).any():
                    log.append(CleaningStep(column, "imputed", int((unbilled & kept).sum()),
                                            f"blank → 0 where {tenure} is 0",
                                            "a brand-new customer has not been billed yet"))
                if unbilled.any():
                    s = s.mask(unbilled, 0.0)
                    df[column] = s
            if s.isna().any():  # rows left out too: an outlier is listed with its features
                df[column] = s.fillna(d.fill)
            gaps = s.isna() & kept
            if gaps.any():
                if d.fill_median:
                    log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                            f"blank → median {number_text(d.fill, role)}",
                                            "keeps the customer; the median does not move the "
                                            "segments"))
                else:
                    log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                            "blank → 0 (no usable value at all)",
                                            "the column carries no information"))
    return decided


def number_text(value: float, role: str) -> str:
    """A fill value or fence as the cleaning log writes it: 1970, 51,373, 0.25."""
    if role == "birth_year":
        return f"{value:.0f}"
    if role in ("rate",) or abs(value) < 10 and not float(value).is_integer():
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _clean_categories(df: pd.DataFrame, schema: Schema, kept: np.ndarray,
                      log: list[CleaningStep], stored: dict[str, CategoryDecision] | None,
                      file: str | None) -> dict[str, CategoryDecision]:
    # Categories: known synonyms, then rare levels pooled.
    decided: dict[str, CategoryDecision] = {}
    for role in CATEGORY_ORDER:
        for column in schema.cols(role):
            d = stored.get(column) if stored is not None else None
            if stored is not None and d is None:
                raise _missing_decision(column, "levels", file)
            raw = df[column]
            codes = raw.dropna()
            if pd.api.types.is_float_dtype(raw) and (codes == codes.round()).all() and \
                    (codes.abs() < 2**53).all():
                raw = raw.astype("Int64")  # region codes 1.0, 2.0 read as "1", "2"
            s = raw.astype("string").str.strip()
            s = s.mask(s == "")
            recoded: dict[str, str] = {}
            if role == "marital_status":
                # the statuses written otherwise than their standard level, found among the
                # distinct values (every one of them occurs in s)
                written = pd.Series(s.dropna().unique(), dtype=s.dtype)
                standard = written.str.lower().map(MARITAL_SYNONYMS)
                changes = sorted(set(written[standard.notna() & (standard != written) &
                                             (written.str.lower() != standard.str.lower())]))
                recoded = {c: MARITAL_SYNONYMS[c.lower()] for c in changes}
                if changes:
                    n = int(s.isin(changes).sum())
                    log.append(CleaningStep(column, "recoded", n,
                                            ", ".join(f"{c} → {MARITAL_SYNONYMS[c.lower()]}"
                                                      for c in changes),
                                            "synonyms of a standard status"))
                s = _per_value(s, lambda text: text.str.lower().map(MARITAL_SYNONYMS)
                               .fillna(text))
            if d is None:
                counts = s.value_counts()
                rare = counts[(counts < RARE_SHARE * len(s)) & (counts < 10)].index.tolist()
                if not (rare and len(counts) > len(rare)):
                    rare = []
                pooled = [str(r) for r in rare]
                levels = sorted(str(v) for v in counts.index if v not in set(rare))
            else:
                pooled = [p for p in d.pooled if p in set(s.dropna())]
                levels = list(d.levels)
            if pooled:
                n = int(s.isin(pooled).sum())
                shown = sorted(str(_short(r, 30)) for r in pooled)
                more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
                log.append(CleaningStep(column, "recoded", n,
                                        f"{', '.join(shown[:8])}{more} → {OTHER}",
                                        f"levels used by fewer than {RARE_SHARE:.1%} of "
                                        "customers"))
                s = s.where(~s.isin(pooled), OTHER)
            if d is not None:
                unseen = s.notna() & ~s.isin([*levels, OTHER, UNKNOWN])
                if unseen.any():
                    shown = sorted(str(_short(v, 30)) for v in set(s[unseen]))
                    more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
                    log.append(CleaningStep(column, "recoded", int(unseen.sum()),
                                            f"{', '.join(shown[:8])}{more} → {OTHER}, first at "
                                            f"row {_first(unseen)}",
                                            "levels not seen when the decisions were learned"))
                    s = s.where(~unseen, OTHER)
            blanks = s.isna() & kept
            if blanks.any():
                log.append(CleaningStep(column, "imputed", int(blanks.sum()),
                                        f"blank → {UNKNOWN}", "missing category"))
                s = s.fillna(UNKNOWN)
            df[column] = s
            decided[column] = d if d is not None else CategoryDecision(
                levels=tuple(levels), pooled=tuple(sorted(pooled)), recoded=recoded)
    return decided


__all__ = ["Cleaned", "CleaningDecisions", "CategoryDecision", "DateDecision",
           "NumberDecision", "YesNoDecision", "clean", "infer_date_format", "MONEY_ROLES",
           "NUMERIC_ROLES"]
