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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Config
from .errors import InputError, SegmentationError
from .report import CleaningStep
from .schema import (
    BINARY_ROLES,
    MONEY_ROLES,
    NUMERIC_ROLES,
    Schema,
    as_binary,
    as_numbers,
    value_kind,
)

DATE_FORMATS = ["%Y-%m-%d", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d",
                "%d.%m.%Y", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M",
                "%Y-%m-%dT%H:%M:%S"]
# Numeric roles whose missing values are filled with the median (and said so).
IMPUTED_ROLES = ("birth_year", "age", "income", "tenure", "recency", "spend", "monthly_spend",
                 "purchases", "deals", "visits", "balance", "credit_limit", "cash_advance",
                 "payments", "rate", "children", "score", "numeric")
# Roles where a wild high value is a typing error, not a customer (unlike spend: whales exist).
OUTLIER_ROLES = ("income",)
OUTLIER_IQR = 6.0
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
RARE_SHARE = 0.005
# A date format must read this share of a column's values to be chosen.
MIN_DATE_SHARE = 0.9
# Segmenting into k needs at least this many usable customers per segment.
MIN_ROWS_PER_SEGMENT = 2


@dataclass(frozen=True)
class Cleaned:
    frame: pd.DataFrame  # rows kept, original index = source row number (0-based data row)
    excluded: pd.Series  # source row -> reason, for rows left out
    log: list[CleaningStep]
    as_of: dt.date | None
    key: str  # the customer key column


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
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        rate = float(parsed.notna().mean()) if len(sample) else 0.0
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


def clean(frame: pd.DataFrame, schema: Schema, cfg: Config, file: str | None = None,
          notes: Sequence[CleaningStep] = ()) -> Cleaned:
    df = frame.copy()
    log: list[CleaningStep] = list(notes)
    excluded: dict[object, str] = {}

    for column in schema.cols("ignore"):
        log.append(CleaningStep(column, "ignored column", 0, schema.notes.get(column, ""),
                                "carries no information for segmentation"))

    # The key: given, or the row number.
    key = schema.col("id")
    if key is None:
        key = _key_name(df)
        df.insert(0, key, [_row(i) for i in df.index])
        log.append(CleaningStep(key, "added key", len(df), "row number in the file",
                                "no customer id column was found"))
    else:
        if df[key].dtype == object or pd.api.types.is_string_dtype(df[key]):
            stripped = df[key].astype("string").str.strip()
            df[key] = stripped.mask(stripped == "")
        missing = df[key].isna()
        for i in df.index[missing]:
            excluded[i] = f"no {key}"
        dup = df[key].duplicated(keep="first") & ~missing
        for i in df.index[dup]:
            excluded[i] = f"duplicate {key} {_short(df.at[i, key])!r} (first occurrence kept)"
        if missing.any():
            log.append(CleaningStep(key, "excluded rows", int(missing.sum()),
                                    f"blank key, first at row {_first(missing)}",
                                    "a customer without an id cannot be reported back"))
        if dup.any():
            log.append(CleaningStep(key, "excluded rows", int(dup.sum()),
                                    f"repeated ids, first at row {_first(dup)}",
                                    "the same customer twice would be counted twice"))
    kept = ~df.index.isin(list(excluded))

    as_of = _clean_dates(df, schema, cfg, file, log, kept, excluded)
    _clean_numbers(df, schema, as_of, log)
    kept = ~df.index.isin(list(excluded))
    _impute_numbers(df, schema, kept, log)
    _clean_categories(df, schema, kept, log)

    frame_kept = df.loc[kept]
    if frame_kept.empty:
        raise InputError("no usable rows left after cleaning", file=file,
                         hint="see the cleaning log with `reportgen validate`")
    return Cleaned(frame=frame_kept, excluded=pd.Series(excluded, dtype="string"), log=log,
                   as_of=as_of, key=key)


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


def _short(value: object, limit: int = 40) -> object:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def _clean_dates(df: pd.DataFrame, schema: Schema, cfg: Config, file: str | None,
                 log: list[CleaningStep], kept: np.ndarray,
                 excluded: dict[object, str] | None = None) -> dt.date | None:
    dates: list[pd.Series] = []
    for column in schema.date_columns:
        if pd.api.types.is_datetime64_any_dtype(df[column]):
            parsed = df[column]
            if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                parsed = parsed.dt.tz_localize(None)
            fmt = "date"
        else:
            fmt = cfg.input.date_format or infer_date_format(df[column], column, file)
            parsed = pd.to_datetime(df[column].astype("string").str.strip(), format=fmt,
                                    errors="coerce")
            bad = parsed.isna() & df[column].notna()
            if bad.any():
                log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                        f"not a {fmt} date, first at row {_first(bad)}",
                                        "unreadable date"))
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
        valid = parsed.dropna()
        if len(valid) >= 2:
            bulk = valid.quantile(0.99, interpolation="lower")
            wild = parsed > bulk + pd.Timedelta(days=FUTURE_GAP_DAYS)
            if wild.any():
                shown = ", ".join(sorted({d.date().isoformat() for d in parsed[wild]})[:4])
                log.append(CleaningStep(column, "set missing", int(wild.sum()),
                                        f"{shown} (first at row {_first(wild)})",
                                        "more than a year after nearly every other date: a "
                                        "typing error"))
                parsed = parsed.mask(wild)
        df[column] = parsed
        dates.append(parsed)

    as_of = cfg.report.as_of
    if as_of is None and dates:
        latest = max((d.max() for d in dates if d.notna().any()), default=pd.NaT)
        as_of = latest.date() if pd.notna(latest) else None

    signup = schema.col("signup_date")
    for column in schema.date_columns:
        if as_of is not None and column == signup and cfg.report.as_of is not None \
                and excluded is not None:
            # A snapshot at an earlier date (--as-of): who signed up later was no customer
            # yet. Their rows are left out, with the reason, not kept with a blank date.
            later = (df[column] > pd.Timestamp(as_of)) & kept
            if later.any():
                for i in df.index[later]:
                    excluded[i] = f"joined after as_of {as_of.isoformat()}"
                log.append(CleaningStep(column, "excluded rows", int(later.sum()),
                                        f"signed up after as_of {as_of.isoformat()}, first at "
                                        f"row {_first(later)}",
                                        "a snapshot at as_of: not a customer yet then"))
                kept = kept & ~later.to_numpy()
        if as_of is not None:
            future = df[column] > pd.Timestamp(as_of)
            if future.any():
                df.loc[future, column] = pd.NaT
                log.append(CleaningStep(column, "set missing", int(future.sum()),
                                        f"after as_of {as_of.isoformat()}, first at row "
                                        f"{_first(future)}", "date in the future"))
        s = df[column]
        gaps = s.isna() & kept
        if gaps.any() and s[kept].notna().any():
            fill = s[kept].dropna().sort_values().iloc[int(s[kept].notna().sum()) // 2]
            df[column] = s.fillna(fill)
            log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                    f"blank → median date {fill.date().isoformat()}",
                                    "keeps the customer; tenure is then typical"))
        elif gaps.any():
            log.append(CleaningStep(column, "ignored column", int(gaps.sum()),
                                    "no usable date left", "tenure is left out"))
    return as_of


def _clean_numbers(df: pd.DataFrame, schema: Schema, as_of: dt.date | None,
                   log: list[CleaningStep]) -> None:
    # Yes/no columns → 1/0.
    for column, role in schema.roles.items():
        if role in BINARY_ROLES or (role == "children" and not
                                    pd.api.types.is_numeric_dtype(df[column])):
            s = df[column]
            if role == "children" and value_kind(s) != "yesno":
                continue  # counts written as text: the numeric pass below reads them
            b = as_binary(s)
            if not pd.api.types.is_numeric_dtype(s):
                text = s.astype("string").str.strip()
                seen = pd.DataFrame({"t": text[b.notna()], "v": b[b.notna()]}) \
                    .drop_duplicates()
                pairs = sorted(((str(t), int(v)) for t, v in zip(seen["t"], seen["v"],
                                                                 strict=True)),
                               key=lambda p: (-p[1], p[0]))
                shown = ", ".join(f"{t} → {v}" for t, v in pairs[:4])
                log.append(CleaningStep(column, "recoded", int(b.notna().sum()), shown,
                                        "yes/no answers counted as 1/0"))
            other = b.isna() & s.notna()
            if other.any():
                log.append(CleaningStep(column, "set missing", int(other.sum()),
                                        f"{_short(str(s[other].iloc[0]))!r} is not yes/no, "
                                        f"first at row {_first(other)}", "unreadable answer"))
            fill = float(b.median()) if b.notna().any() else 0.0
            fill = 1.0 if fill >= 0.5 else 0.0
            if b.isna().any():
                log.append(CleaningStep(column, "imputed", int(b.isna().sum()),
                                        f"blank → {fill:.0f} (the most common answer)",
                                        "missing answer"))
            df[column] = b.fillna(fill)

    for role in IMPUTED_ROLES:
        for column in schema.cols(role):
            raw = df[column]
            s = as_numbers(raw)
            if not pd.api.types.is_numeric_dtype(raw):
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
            absurd = ~np.isfinite(s) & s.notna() | (s.abs() >= ABSURD)
            if absurd.any():
                log.append(CleaningStep(column, "set missing", int(absurd.sum()),
                                        f"{_fmt(s[absurd].iloc[0])}, first at row "
                                        f"{_first(absurd)}",
                                        "infinite or beyond 1e12: overflow or a filler value"))
                s = s.mask(absurd)
            factor = schema.scales.get(column, 1.0)
            if factor != 1.0:
                s = s * factor
                log.append(CleaningStep(column, "rescaled", int(s.notna().sum()),
                                        f"× {factor:,.0f}", "amounts given in "
                                        + ("thousands" if factor == 1000 else
                                           "millions" if factor == 1e6 else f"units of {factor:g}")
                                        + ": reported in currency units"))
            neg = s < 0
            if neg.any() and role not in SIGNED_ROLES:
                log.append(CleaningStep(column, "set missing", int(neg.sum()),
                                        f"negative values, first at row {_first(neg)}",
                                        f"a {role.replace('_', ' ')} cannot be negative"))
                s = s.mask(neg)
            if role == "rate":
                over = s > 1
                if over.any():
                    log.append(CleaningStep(column, "set missing", int(over.sum()),
                                            f"values above 1, first at row {_first(over)}",
                                            "a share or frequency lies between 0 and 1"))
                    s = s.mask(over)
            if role == "birth_year":
                year = as_of.year if as_of else (int(s.max()) if s.notna().any() else 2000)
                bad = (s < year - MAX_AGE) | (s > year - MIN_AGE)
                if bad.any():
                    values = ", ".join(str(int(v)) for v in sorted(s[bad].unique())[:6])
                    log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                            f"birth years {values}",
                                            f"implies an age outside {MIN_AGE}-{MAX_AGE}"))
                    s = s.mask(bad)
            if role == "age":
                bad = (s < MIN_AGE) | (s > MAX_AGE)
                if bad.any():
                    log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                            f"ages outside {MIN_AGE}-{MAX_AGE}", "implausible age"))
                    s = s.mask(bad)
            if role in OUTLIER_ROLES and s.notna().sum() >= 4:
                q1, q3 = s.quantile([0.25, 0.75])
                fence = q3 + OUTLIER_IQR * (q3 - q1)
                wild = s > fence
                if wild.any() and q3 > q1:
                    values = ", ".join(f"{v:,.0f}" for v in sorted(s[wild].unique())[:5])
                    log.append(CleaningStep(column, "set missing", int(wild.sum()),
                                            f"{values} (above {fence:,.0f})",
                                            f"more than {OUTLIER_IQR:g}× the interquartile range"
                                            " above the upper quartile: a typing error"))
                    s = s.mask(wild)
            df[column] = s


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return "infinite value" if value > 0 else "negative infinite value"
    return f"{value:.3g}"


def _impute_numbers(df: pd.DataFrame, schema: Schema, kept: np.ndarray,
                    log: list[CleaningStep]) -> None:
    for role in IMPUTED_ROLES:
        for column in schema.cols(role):
            s = df[column]
            gaps = s.isna() & kept
            if gaps.any():
                usable = s[kept].notna().any()
                fill = float(s[kept].median()) if usable else 0.0
                df[column] = s.fillna(fill)
                if usable:
                    log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                            f"blank → median {_median_text(fill, role)}",
                                            "keeps the customer; the median does not move the "
                                            "segments"))
                else:
                    log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                            "blank → 0 (no usable value at all)",
                                            "the column carries no information"))


def _median_text(value: float, role: str) -> str:
    if role == "birth_year":
        return f"{value:.0f}"
    if role in ("rate",) or abs(value) < 10 and not float(value).is_integer():
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _clean_categories(df: pd.DataFrame, schema: Schema, kept: np.ndarray,
                      log: list[CleaningStep]) -> None:
    # Categories: known synonyms, then rare levels pooled.
    for role in ("marital_status", "education", "gender", "categorical"):
        for column in schema.cols(role):
            raw = df[column]
            codes = raw.dropna()
            if pd.api.types.is_float_dtype(raw) and (codes == codes.round()).all() and \
                    (codes.abs() < 2**53).all():
                raw = raw.astype("Int64")  # region codes 1.0, 2.0 read as "1", "2"
            s = raw.astype("string").str.strip()
            s = s.mask(s == "")
            if role == "marital_status":
                mapped = s.str.lower().map(MARITAL_SYNONYMS)
                recoded = mapped.notna() & (mapped != s)
                changes = sorted(set(s[recoded & (s.str.lower() != mapped.str.lower())]
                                     .dropna()))
                if changes:
                    n = int(s.isin(changes).sum())
                    log.append(CleaningStep(column, "recoded", n,
                                            ", ".join(f"{c} → {MARITAL_SYNONYMS[c.lower()]}"
                                                      for c in changes),
                                            "synonyms of a standard status"))
                s = mapped.fillna(s)
            counts = s.value_counts()
            rare = counts[(counts < RARE_SHARE * len(s)) & (counts < 10)].index.tolist()
            if rare and len(counts) > len(rare):
                n = int(s.isin(rare).sum())
                shown = sorted(str(_short(r, 30)) for r in rare)
                more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
                log.append(CleaningStep(column, "recoded", n,
                                        f"{', '.join(shown[:8])}{more} → Other",
                                        f"levels used by fewer than {RARE_SHARE:.1%} of "
                                        "customers"))
                s = s.where(~s.isin(rare), "Other")
            blanks = s.isna() & kept
            if blanks.any():
                log.append(CleaningStep(column, "imputed", int(blanks.sum()), "blank → Unknown",
                                        "missing category"))
                s = s.fillna("Unknown")
            df[column] = s


__all__ = ["Cleaned", "clean", "infer_date_format", "MONEY_ROLES", "NUMERIC_ROLES"]
