"""Clean the table and say what was done: every fix, exclusion and ignored column is logged."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Config
from .errors import InputError
from .report import CleaningStep
from .schema import Schema

DATE_FORMATS = ["%Y-%m-%d", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d",
                "%d.%m.%Y", "%Y%m%d"]
# Numeric roles whose missing values are filled with the median (and said so).
IMPUTED_ROLES = ("birth_year", "age", "income", "recency", "spend", "purchases", "deals",
                 "visits", "children", "score", "numeric")
# Roles where a wild high value is a typing error, not a customer (unlike spend: whales exist).
OUTLIER_ROLES = ("income",)
OUTLIER_IQR = 6.0
MIN_AGE, MAX_AGE = 16, 100
MARITAL_SYNONYMS = {"alone": "Single", "single": "Single", "married": "Married",
                    "together": "Together", "divorced": "Divorced", "widow": "Widow",
                    "widowed": "Widow", "separated": "Divorced"}
RARE_SHARE = 0.005


@dataclass(frozen=True)
class Cleaned:
    frame: pd.DataFrame  # rows kept, original index = source row number (0-based data row)
    excluded: pd.Series  # source row -> reason, for rows left out
    log: list[CleaningStep]
    as_of: dt.date | None
    key: str  # the customer key column


def infer_date_format(values: pd.Series, column: str, file: str | None) -> str:
    """The one format that parses every value; dd-mm vs mm-dd is decided by the data."""
    sample = values.dropna().astype(str).str.strip()
    sample = sample[sample != ""]
    fits = []
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        if parsed.notna().mean() > 0.98:
            fits.append(fmt)
    if not fits:
        raise InputError(
            f"cannot read the dates (e.g. {sample.iloc[0]!r})" if len(sample) else "no dates",
            column=column, file=file, hint="set [input] date_format, e.g. '%d-%m-%Y'",
        )
    if len(fits) > 1:
        raise InputError(
            f"dates are ambiguous: {' or '.join(fits)} both fit every value",
            column=column, file=file, hint="set [input] date_format in the config",
        )
    return fits[0]


def _row(index: object) -> int:
    # Source row numbers as a spreadsheet shows them: header is row 1.
    return int(index) + 2  # type: ignore[call-overload]


def clean(frame: pd.DataFrame, schema: Schema, cfg: Config, file: str | None = None) -> Cleaned:
    df = frame.copy()
    log: list[CleaningStep] = []
    excluded: dict[object, str] = {}

    for column in schema.cols("ignore"):
        log.append(CleaningStep(column, "ignored column", 0, schema.notes.get(column, ""),
                                "carries no information for segmentation"))

    # The key: given, or the row number.
    key = schema.col("id")
    if key is None:
        key = "row"
        df.insert(0, key, [_row(i) for i in df.index])
        log.append(CleaningStep("row", "added key", len(df), "row number in the file",
                                "no customer id column was found"))
    else:
        missing = df[key].isna()
        for i in df.index[missing]:
            excluded[i] = f"no {key}"
        dup = df[key].duplicated(keep="first") & ~missing
        for i in df.index[dup]:
            excluded[i] = f"duplicate {key} {df.at[i, key]!r} (first occurrence kept)"
        if missing.any():
            log.append(CleaningStep(key, "excluded rows", int(missing.sum()), "blank key",
                                    "a customer without an id cannot be reported back"))
        if dup.any():
            first = _row(df.index[dup][0])
            log.append(CleaningStep(key, "excluded rows", int(dup.sum()),
                                    f"repeated ids, first at row {first}",
                                    "the same customer twice would be counted twice"))

    # Dates: one format per column, decided by the data unless configured.
    dates: list[pd.Series] = []
    for column in schema.date_columns:
        fmt = cfg.input.date_format or infer_date_format(df[column], column, file)
        parsed = pd.to_datetime(df[column].astype("string").str.strip(), format=fmt,
                                errors="coerce")
        bad = parsed.isna() & df[column].notna()
        if bad.any():
            log.append(CleaningStep(column, "set missing", int(bad.sum()),
                                    f"not a {fmt} date, first at row {_row(df.index[bad][0])}",
                                    "unreadable date"))
        df[column] = parsed
        dates.append(parsed)

    as_of = cfg.report.as_of
    if as_of is None and dates:
        latest = max(d.max() for d in dates)
        as_of = latest.date() if pd.notna(latest) else None

    if as_of is not None:
        for column in schema.date_columns:
            future = df[column] > pd.Timestamp(as_of)
            if future.any():
                df.loc[future, column] = pd.NaT
                log.append(CleaningStep(column, "set missing", int(future.sum()),
                                        f"after as_of {as_of.isoformat()}", "date in the future"))

    # Numbers that cannot be right.
    by = schema.col("birth_year")
    if by is not None:
        year = as_of.year if as_of else int(df[by].max())
        bad = (df[by] < year - MAX_AGE) | (df[by] > year - MIN_AGE)
        if bad.any():
            values = ", ".join(str(int(v)) for v in sorted(df.loc[bad, by].unique())[:6])
            log.append(CleaningStep(by, "set missing", int(bad.sum()), f"birth years {values}",
                                    f"implies an age outside {MIN_AGE}-{MAX_AGE}"))
            df.loc[bad, by] = np.nan
    age = schema.col("age")
    if age is not None:
        bad = (df[age] < MIN_AGE) | (df[age] > MAX_AGE)
        if bad.any():
            log.append(CleaningStep(age, "set missing", int(bad.sum()),
                                    f"ages outside {MIN_AGE}-{MAX_AGE}", "implausible age"))
            df.loc[bad, age] = np.nan

    for role in IMPUTED_ROLES:
        for column in schema.cols(role):
            s = pd.to_numeric(df[column], errors="coerce")
            neg = s < 0
            if neg.any() and role != "numeric":
                log.append(CleaningStep(column, "set missing", int(neg.sum()),
                                        f"negative values, first at row {_row(s.index[neg][0])}",
                                        f"a {role.replace('_', ' ')} cannot be negative"))
                s = s.mask(neg)
            if role in OUTLIER_ROLES:
                q1, q3 = s.quantile([0.25, 0.75])
                fence = q3 + OUTLIER_IQR * (q3 - q1)
                wild = s > fence
                if wild.any():
                    values = ", ".join(f"{v:,.0f}" for v in sorted(s[wild].unique())[:5])
                    log.append(CleaningStep(column, "set missing", int(wild.sum()),
                                            f"{values} (above {fence:,.0f})",
                                            f"more than {OUTLIER_IQR:g}× the interquartile range"
                                            " above the upper quartile: a typing error"))
                    s = s.mask(wild)
            df[column] = s

    kept = ~df.index.isin(list(excluded))
    for role in IMPUTED_ROLES:
        for column in schema.cols(role):
            s = df[column]
            gaps = s.isna() & kept
            if gaps.any():
                fill = float(s[kept].median()) if s[kept].notna().any() else 0.0
                df[column] = s.fillna(fill)
                log.append(CleaningStep(column, "imputed", int(gaps.sum()),
                                        f"blank → median {fill:,.0f}",
                                        "keeps the customer; the median does not move the segments"))

    # Categories: known synonyms, then rare levels pooled.
    for column in schema.cols("marital_status") + schema.cols("education") + \
            schema.cols("gender") + schema.cols("categorical"):
        s = df[column].astype("string").str.strip()
        if column in schema.cols("marital_status"):
            mapped = s.str.lower().map(MARITAL_SYNONYMS)
            recoded = mapped.notna() & (mapped != s)
            changes = sorted(set(s[recoded & (s.str.lower() != mapped.str.lower())].dropna()))
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
            log.append(CleaningStep(column, "recoded", n,
                                    f"{', '.join(sorted(map(str, rare)))} → Other",
                                    f"levels used by fewer than {RARE_SHARE:.1%} of customers"))
            s = s.where(~s.isin(rare), "Other")
        blanks = s.isna() & kept
        if blanks.any():
            log.append(CleaningStep(column, "imputed", int(blanks.sum()), "blank → Unknown",
                                    "missing category"))
            s = s.fillna("Unknown")
        df[column] = s

    frame_kept = df.loc[kept]
    if frame_kept.empty:
        raise InputError("no usable rows left after cleaning", file=file,
                         hint="see the cleaning log with `reportgen validate`")
    return Cleaned(frame=frame_kept, excluded=pd.Series(excluded, dtype="string"), log=log,
                   as_of=as_of, key=key)
