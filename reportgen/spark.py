"""The Spark engine (``reportgen run --engine spark``): the same Report from a table that
lives past one machine.

Who does what:

- Spark reads the source (a Parquet or CSV path, folder or glob; a Delta folder when the
  cluster has delta-spark; a catalog table ``spark:db.customers``) and counts its rows and
  blanks in one pass.
- A bounded sample (``[engine] sample`` rows, drawn with the seed) reaches the driver as
  Arrow batches. On it the default engine's own stages decide: schema, the cleaning
  decisions (formats, fences, medians, levels), the features, the k search, the centres,
  stability and the 2-D view. Nothing is decided twice and nothing is decided differently.
- Spark applies those decisions to every row as column expressions (``clean_columns``,
  ``feature_columns``), scales the model features and assigns each customer to the nearest
  centre (``assign_column``): plain SQL expressions, no Python function runs per row.
- Profiles (sizes, value, means, medians, spread) come from one grouped aggregation; the
  segments (key, segment, persona) are written by Spark as Parquet beside the source or to
  ``[engine] segments``. Only the sample and the aggregates are collected.
- Personas, actions, charts and the HTML/PDF/email are the default engine's stages, run on
  the profiles of the whole table.
- A run is a period of its series as a default-engine run is (``pipeline.series_run``,
  the same function, given ``SparkEngine``'s ways of assigning, profiling and writing):
  the previous run's model kept (its decisions and centres applied by Spark) or a refit
  matched to its segments; recorded in the history. The customers are followed by one full
  outer join of this run's segments with the previous run's (its segments.parquet, or the
  Parquet/table a Spark run's segments.json points to) and one grouped count: only the
  migration matrix reaches the driver (``count_flows``). Drift and the centres are measured
  on the driver's sample, as the default engine measures them on a sample past 200,000.

Order lines are aggregated to customers by Spark (sparkorders.py: orders.py's decisions and
SQL), then follow the customer path. A backfill of order lines (``backfill``) reads the source
once for all its months, in one session.

Not supported (each refused with one line): a table without a customer key,
k-prototypes/GMM/Ward (only centroid models assign as expressions).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .clean import NATIVE_DATES, OTHER, UNKNOWN, CleaningDecisions, DateDecision
from .config import Config, EngineConfig
from .errors import ConfigError, HistoryError, InputError
from .features import FeatureFrame
from .profile import Profiles, SegmentProfile
from .schema import NO, YES, Schema, normalise
from .segment import Segmentation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from . import compare
    from .assemble import Totals
    from .clean import Cleaned
    from .load import Loaded
    from .orders import OrderColumns, Orders
    from .pipeline import Inputs, RunResult, _Clock
    from .report import Changes, ColumnInfo, Rfm
    from .rfm import Group
    from .series import Previous, Step

log = logging.getLogger("reportgen")

TABLE_PREFIX = "spark:"
# In a Spark run's folder: where its segments are (they are not in the folder), with their key
# and value columns, for the next run of the series
SEGMENTS_POINTER = "segments.json"
# Relative error of the per-segment medians (percentile_approx's accuracy 1 / this): a median
# within 0.01 % of the rank, at a few KB of state per segment and feature.
MEDIAN_ACCURACY = 10_000
# The features that are a ratio of nothing (0/0) for some customers: missing, not 0
UNDEFINED = ("deal_share", "avg_basket")
# Set before [engine] conf (which wins): no progress bars on the report's stderr, and ANSI
# SQL as Spark 4 has it (the expressions below never divide by zero or cast text unguarded).
DEFAULT_CONF = {"spark.ui.showConsoleProgress": "false", "spark.sql.ansi.enabled": "true"}
# strftime → Spark (Java DateTimeFormatter) patterns, for the formats clean.DATE_FORMATS uses;
# one letter reads one or two digits, as strptime's %m and %d read "7" and "07" (MM would
# not read "12/1/10 8:26")
_PATTERNS = {"%Y": "yyyy", "%y": "yy", "%m": "M", "%d": "d", "%H": "H", "%M": "m",
             "%S": "s"}
_CURRENCY = (r"(?i)^(?:[$€£¥₹]|usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk)\s*|"
             r"\s*(?:[$€£¥₹%]|usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk)$")


# the session and the source ------------------------------------------------------------------

@contextmanager
def session(engine: EngineConfig) -> Iterator[SparkSession]:
    """The Spark session of the run: the active one (a notebook's, spark-submit's, a test's)
    or a new one from [engine] master and conf, stopped at the end only if made here."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("--engine spark needs pyspark, which is not installed",
                          hint="pip install 'reportgen[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise ConfigError("--engine spark needs Java (17 or later), which is not installed",
                          hint="apt-get install openjdk-17-jre-headless, or set JAVA_HOME")
    from pyspark import SparkConf

    try:
        builder = SparkSession.builder.appName("reportgen")
        # spark-submit's --master arrives as spark.master in the JVM's defaults: keep it
        if engine.master or not SparkConf().contains("spark.master"):
            builder = builder.master(engine.master or "local[*]")
        for key, value in {**DEFAULT_CONF, **engine.conf}.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")  # Spark's warnings are not the report's
    except Exception as exc:  # py4j/JVM start-up: a missing or too old Java, a bad setting
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ConfigError(f"Spark did not start ({first})",
                          hint="check Java 17+ and [engine] master / conf") from None
    try:
        yield spark
    finally:
        spark.stop()


def read(spark: SparkSession, source: str, cfg: Config) -> DataFrame:
    """The source as a Spark DataFrame (nothing is read yet: Spark reads lazily)."""
    from pyspark.errors import AnalysisException

    try:
        if source.startswith(TABLE_PREFIX):
            return spark.table(source[len(TABLE_PREFIX):])
        path = Path(source)
        if "://" not in source and not any(c in source for c in "*?[") and not path.exists():
            raise InputError("no such file or folder", file=source)
        if path.is_dir() and (path / "_delta_log").is_dir():
            return _delta(spark, source)
        name = path.name.lower()
        if name.endswith((".csv", ".txt", ".tsv", ".csv.gz", ".tsv.gz")):
            delimiter = cfg.input.delimiter or _sniff(path, name)
            return spark.read.csv(source, header=True, inferSchema=True, sep=delimiter,
                                  encoding=cfg.input.encoding or "UTF-8")
        return spark.read.parquet(source)
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0][:160]
        hint = "Delta tables need delta-spark on the cluster (spark.jars.packages)" \
            if "delta" in first.lower() else None
        raise InputError(f"Spark cannot read it ({first})", file=source, hint=hint) from None


def _delta(spark: SparkSession, source: str) -> DataFrame:
    """A Delta table's folder read by Delta Lake, which Spark does not ship: without
    delta-spark on the classpath the folder is refused (its Parquet files read as plain
    Parquet would bring back rows the table has deleted or replaced)."""
    try:
        return spark.read.format("delta").load(source)
    except Exception as exc:  # py4j's Java error: the data source class is not there
        if "DATA_SOURCE_NOT_FOUND" not in str(exc) and "delta.DefaultSource" not in str(exc):
            raise
        raise InputError("a Delta table, and this Spark has no Delta Lake (delta-spark) on its "
                         "classpath", file=source,
                         hint="Databricks has it; elsewhere set spark.jars.packages = "
                              "io.delta:delta-spark_2.13:<version> and Delta's SQL extension "
                              "and catalog in [engine] conf, as the README shows") from None


def _sniff(path: Path, name: str) -> str:
    """The delimiter of a local text file, sniffed from its start as load does."""
    from .load import sniff_delimiter

    if not path.is_file() or name.endswith(".gz"):
        return "\t" if ".tsv" in name else ","
    with path.open("rb") as f:
        head = f.read(65_536).decode("utf-8", "replace")
    return sniff_delimiter(head)


def source_digest(source: str) -> str:
    """What the run id hashes for a Spark source: the path and the size and modification
    time of each file under it (the content itself is never read on the driver)."""
    h = hashlib.sha256(source.encode())
    path = Path(source)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else \
        [path] if path.is_file() else []
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(path) if path.is_dir() else p.name}:{st.st_size}:"
                 f"{st.st_mtime_ns}".encode())
    return h.hexdigest()


def sample(sdf: DataFrame, rows: int, size: int, seed: int) -> pd.DataFrame:
    """At most ``size`` rows drawn with the seed, to the driver as Arrow batches."""
    part = sdf if rows <= size else \
        sdf.sample(fraction=min(1.0, 1.1 * size / rows), seed=seed).limit(size)
    return part.toArrow().to_pandas()


# cleaning as expressions ---------------------------------------------------------------------

def _java_pattern(fmt: str) -> str:
    out = fmt
    for code, pattern in _PATTERNS.items():
        out = out.replace(code, pattern)
    return out.replace("T", "'T'")


def _number(c: Column, text: bool) -> Column:
    """A column's values as doubles; text read as clean.as_numbers reads the common cases
    ('1,234.5', '$12', '67k'): what is not a number is null."""
    from pyspark.sql import functions as F

    if not text:
        return c.cast("double")
    t = F.trim(c.cast("string"))
    plain = t.try_cast("double")
    stripped = F.regexp_replace(t, _CURRENCY, "")
    thousands = F.when(stripped.rlike(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$"),
                       F.regexp_replace(stripped, ",", "")).otherwise(stripped)
    suffix = F.regexp_extract(thousands, r"^([-+]?\d+(?:\.\d+)?)\s*([kKmM])$", 1)
    unit = F.lower(F.regexp_extract(thousands, r"^([-+]?\d+(?:\.\d+)?)\s*([kKmM])$", 2))
    scaled = suffix.try_cast("double") * F.when(unit == "k", 1e3).when(unit == "m", 1e6)
    return F.coalesce(plain, thousands.try_cast("double"), scaled)


def _date(column: str, dd: DateDecision, kind: str) -> Column:
    """A date column read in its decided format, without the impossible years and the
    dates past the decided cut-off (clean._clean_dates)."""
    from pyspark.sql import functions as F

    raw = F.col(column)
    if dd.format == NATIVE_DATES:
        parsed = F.try_to_timestamp(F.trim(raw)) if kind == "string" else \
            raw.cast("timestamp")
    else:
        parsed = F.try_to_timestamp(F.trim(raw.cast("string")), F.lit(_java_pattern(dd.format)))
    parsed = F.when(F.year(parsed).between(1900, 2200), parsed)
    if dd.latest:
        parsed = F.when(parsed <= F.lit(dd.latest).cast("timestamp"), parsed)
    return parsed


def table_facts(sdf: DataFrame, d: CleaningDecisions) -> tuple[dict[str, int], dt.date | None]:
    """One pass over the whole table: the blanks of each source column (the report's data
    dictionary) and its latest date after the cut-offs (as_of, when the config sets none:
    the sample's latest date may be earlier)."""
    from pyspark.sql import functions as F

    kinds = dict(sdf.dtypes)
    latest = F.greatest(*[F.max(_date(c, dd, kinds[c])) for c, dd in d.dates.items()],
                        F.lit(None).cast("timestamp"))
    row = sdf.select(*[F.count_if(F.col(c).isNull()).alias(f"m{i}")
                       for i, c in enumerate(sdf.columns)], latest.alias("latest")).first()
    assert row is not None
    when = row["latest"]
    return ({c: int(row[f"m{i}"]) for i, c in enumerate(sdf.columns)},
            when.date() if when is not None else None)


def clean_columns(sdf: DataFrame, schema: Schema, d: CleaningDecisions,
                  snapshot: bool = False) -> DataFrame:
    """sdf cleaned as clean.clean applies the decisions d: the same values, row by row; rows
    without a key or repeating one are left out (first occurrence kept, in the source's
    order), and with ``snapshot`` (--as-of) the customers who signed up after as_of. The
    decided columns are replaced by their clean values, the others pass through."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = d.key
    cols: dict[str, Column] = {}
    for column, dd in d.dates.items():
        parsed = _date(column, dd, dict(sdf.dtypes)[column])
        if d.as_of is not None:
            parsed = F.when(parsed < F.lit((d.as_of + dt.timedelta(days=1)).isoformat())
                            .cast("timestamp"), parsed)
        if dd.fill:
            parsed = F.coalesce(parsed, F.lit(dd.fill).cast("timestamp"))
        cols[column] = parsed
    for column, yn in d.yes_no.items():
        raw = F.col(column)
        if yn.answers or dict(sdf.dtypes)[column] == "string":
            t = F.lower(F.trim(raw.cast("string")))
            b = F.when(t.isin(*sorted(YES)), 1.0).when(t.isin(*sorted(NO)), 0.0)
        else:
            v = raw.cast("double")
            b = F.when(v.isin(0.0, 1.0), v)
        cols[column] = F.coalesce(b, F.lit(yn.fill))
    unfilled: dict[str, Column] = {}
    for column, nd in d.numbers.items():
        s = _number(F.col(column), dict(sdf.dtypes)[column] == "string")
        s = F.when(~F.isnan(s) & (F.abs(s) < 1e12), s)
        if nd.scale != 1.0:
            s = s * nd.scale
        if nd.nonnegative:
            s = F.when(s >= 0, s)
        if nd.at_most is not None:
            s = F.when(s <= nd.at_most, s)
        if nd.plausible is not None:
            s = F.when(s.between(nd.plausible[0], nd.plausible[1]), s)
        if nd.outlier_above is not None:
            s = F.when(s <= nd.outlier_above, s)
        unfilled[column] = s
        cols[column] = F.coalesce(s, F.lit(nd.fill))
    for column, cd in d.categories.items():
        raw = F.col(column)
        kind = dict(sdf.dtypes)[column]
        # region codes 1.0, 2.0 read as "1", "2" (clean's Int64 step)
        t = F.trim(raw.cast("bigint").cast("string") if kind in ("double", "float") and
                   all(str(v).lstrip("-").isdigit() for v in cd.levels) else raw.cast("string"))
        t = F.when(t != "", t)
        if schema.roles.get(column) == "marital_status":
            from .clean import MARITAL_SYNONYMS

            mapping = F.create_map(*[F.lit(x) for kv in MARITAL_SYNONYMS.items() for x in kv])
            t = F.coalesce(mapping[F.lower(t)], t)
        t = F.when(t.isNull(), F.lit(UNKNOWN)) \
            .when(t.isin(*cd.levels, OTHER, UNKNOWN) & ~t.isin(*cd.pooled), t) \
            .otherwise(F.lit(OTHER))
        cols[column] = t
    if key not in sdf.columns:
        raise ConfigError("--engine spark needs a customer key column (the table has none; "
                          "the default engine numbers the rows instead)",
                          hint="name it in [columns]: <column> = \"id\"")
    keyed = sdf.withColumn(key, F.when(F.trim(F.col(key)) != "", F.trim(F.col(key)))
                           if dict(sdf.dtypes)[key] == "string" else F.col(key))
    keyed = keyed.where(F.col(key).isNotNull())
    # first occurrence in the source's order: the row's position, then one row per key
    order = F.monotonically_increasing_id()
    first = Window.partitionBy(key).orderBy("_rg_order")
    deduped = keyed.withColumn("_rg_order", order) \
        .withColumn("_rg_n", F.row_number().over(first)).where(F.col("_rg_n") == 1)
    # customers with an amount beyond its fence are set aside as outliers (clean._set_aside)
    beyond = [unfilled[c] > nd.set_aside_above for c, nd in d.numbers.items()
              if nd.set_aside_above is not None]
    parts = [c for c in schema.cols("spend") if c != schema.totals.get("spend")]
    if d.total_set_aside_above is not None and parts:
        total = F.coalesce(unfilled[parts[0]], F.lit(0.0))
        for c in parts[1:]:
            total = total + F.coalesce(unfilled[c], F.lit(0.0))
        beyond.append(total > d.total_set_aside_above)
    for over in beyond:
        deduped = deduped.where(F.coalesce(~over, F.lit(True)))
    signup = schema.col("signup_date")
    if snapshot and d.as_of is not None and signup in d.dates:
        # a snapshot at as_of (--as-of): who signed up later was no customer yet
        joined = _date(signup, d.dates[signup], dict(sdf.dtypes)[signup])
        deduped = deduped.where(joined.isNull() |
                                (joined <= F.lit(d.as_of.isoformat()).cast("timestamp")))
    rest = [F.col(c) for c in sdf.columns if c not in cols and c != key]
    return deduped.select(F.col(key), "_rg_order", *[c.alias(name) for name, c in cols.items()],
                          *rest)


# features as expressions ---------------------------------------------------------------------

def feature_columns(schema: Schema, cleaned: CleaningDecisions, ff: FeatureFrame
                    ) -> dict[str, Column]:
    """The features of ff (decided on the sample by features.build_features) as Spark
    expressions of the clean columns: the same definitions, name for name. A feature this
    engine cannot express is refused, never left out silently."""
    from pyspark.sql import functions as F

    def clip(x: Column, low: float | None, high: float) -> Column:
        # not F.least/greatest: they skip nulls, and a null (0 / 0) must stay one until the
        # gap is filled
        x = F.when(x > high, F.lit(high)).otherwise(x)
        return x if low is None else F.when(x < low, F.lit(low)).otherwise(x)

    def share(part: Column, whole: Column, low: float | None = 0.0) -> Column:
        # null where the whole is 0: a ratio of nothing (features.add(undefined=True))
        return clip(F.when(whole != 0, part / whole), low, 1.0)

    def total(columns: list[str]) -> Column:
        out = F.col(columns[0])
        for c in columns[1:]:
            out = out + F.col(c)
        return out

    out: dict[str, Column] = {}
    as_of = cleaned.as_of
    if (by := schema.col("birth_year")) and as_of is not None:
        out["age"] = F.lit(float(as_of.year)) - F.col(by)
    elif age := schema.col("age"):
        out["age"] = F.col(age)
    signup = schema.col("signup_date")
    if signup and as_of is not None and "tenure_months" in ff.frame:
        days = F.datediff(F.lit(as_of.isoformat()).cast("date"), F.to_date(F.col(signup)))
        months = days / 30.4375
        fill = ff.fills.get("tenure_months")
        out["tenure_months"] = F.coalesce(months, F.lit(fill)) if fill is not None else months
    elif tenure := schema.col("tenure"):
        norm = normalise(tenure)
        factor = 12.0 if "year" in norm else 1 / 30.4375 if "day" in norm else 1.0
        out["tenure_months"] = F.col(tenure) * factor
    if income := schema.col("income"):
        out["income"] = F.col(income)
    spend_cols = schema.cols("spend")
    total_col = schema.totals.get("spend")
    parts = [c for c in spend_cols if c != total_col]
    spend = F.col(total_col) if total_col else total(spend_cols) if spend_cols else None
    if spend is not None:
        out["total_spend"] = spend
        if len(parts) > 1 or (total_col and parts):
            for c in parts:
                out[f"share_{schema.tags.get(c, c.lower())}"] = share(F.col(c), spend)
    if monthly := schema.col("monthly_spend"):
        out["monthly_spend"] = F.col(monthly)
    purchase_cols = schema.cols("purchases")
    total_purchases = schema.totals.get("purchases")
    if purchase_cols:
        channels = [c for c in purchase_cols if c != total_purchases]
        purchases = F.col(total_purchases) if total_purchases else total(purchase_cols)
        out["purchases_total"] = purchases
        if len(channels) > 1 or (total_purchases and channels):
            for c in channels:
                out[f"share_{schema.tags.get(c, c.lower())}"] = share(F.col(c), purchases)
        if deals := schema.col("deals"):
            out["deal_share"] = share(F.col(deals), purchases, low=None)
        if spend is not None:
            out["avg_basket"] = F.when(purchases != 0, spend / purchases)
    for role, name in (("balance", "balance"), ("credit_limit", "credit_limit"),
                       ("cash_advance", "cash_advance"), ("payments", "payments"),
                       ("visits", "web_visits"), ("recency", "recency")):
        if column := schema.col(role):
            out[name] = F.col(column)
    if (balance := schema.col("balance")) and (limit := schema.col("credit_limit")):
        util = clip(F.when(F.col(limit) != 0, F.col(balance) / F.col(limit)), 0.0, 2.0)
        fill = ff.fills.get("utilisation")
        out["utilisation"] = F.coalesce(util, F.lit(fill)) if fill is not None else util
    child_cols = schema.cols("children")
    if child_cols:
        out["children"] = total(child_cols)
        if marital := schema.col("marital_status"):
            partnered = F.col(marital).isin("Married", "Together").cast("double")
            out["household_size"] = 1 + partnered + total(child_cols)
    campaign_cols = schema.cols("campaign")
    for c in campaign_cols:
        out[f"cmp_{c.lower()}"] = F.col(c)
    if campaign_cols:
        out["campaigns_accepted"] = total(campaign_cols)
    for role, name in (("complaint", "complained"), ("churn", "churned")):
        if column := schema.col(role):
            out[name] = F.col(column)
    # The rest (rates, scores, generic numbers, flags, category levels) are one column each,
    # which the feature's description names.
    for name, meta in ff.meta.items():
        if name in out:
            continue
        if meta.level:
            column = meta.description.removeprefix("share with ").rsplit(" = ", 1)[0]
            out[name] = (F.col(column) == F.lit(meta.level)).cast("double")
            continue
        column = meta.description.removeprefix("from ") \
            .removeprefix("share answering yes (").removesuffix(")") \
            if meta.description.startswith("share answering yes (") else \
            meta.description.removeprefix("from ")
        if column in schema.roles:
            out[name] = F.col(column)
    missing = [f for f in ff.frame.columns if f not in out]
    if missing:
        raise ConfigError(f"--engine spark cannot compute the features {', '.join(missing)}",
                          hint="run it with the default engine")
    return _as_features(out, ff)


def order_feature_columns(ff: FeatureFrame) -> dict[str, Column]:
    """The features of customers aggregated from order lines (features.order_features):
    their clean columns as they are."""
    from pyspark.sql import functions as F

    return _as_features({name: F.col(name) for name in ff.frame.columns}, ff)


def _as_features(out: Mapping[str, Column], ff: FeatureFrame) -> dict[str, Column]:
    """The expressions as doubles, gaps as in ff's frame."""
    from pyspark.sql import functions as F

    # features.add: a gap (a blank date) is 0 in the frame, a ratio of nothing (0/0) stays
    # missing (the means skip it; the model matrix fills it, see assign_column)
    undefined = set(ff.frame.columns[ff.frame.isna().any()]) | set(UNDEFINED)
    exprs = {}
    for name in ff.frame.columns:
        value = F.nanvl(out[name].cast("double"), F.lit(None).cast("double"))
        exprs[name] = value if name in undefined or name.startswith("share_") else \
            F.coalesce(value, F.lit(0.0))
    return exprs


def assign_column(seg: Segmentation, fills: Mapping[str, float]) -> Column:
    """The segment id (1..k) of each customer: the nearest centre of seg's model to the
    scaled model features (columns named as the features; a missing ratio takes its fill, as
    in FeatureFrame.matrix), as a SQL expression."""
    from pyspark.sql import functions as F

    centers = getattr(seg.model, "cluster_centers_", None)
    if centers is None:
        raise ConfigError(f"--engine spark assigns with centroid models (kmeans, minibatch); "
                          f"{seg.algorithm} has none", hint="use --algorithm kmeans")
    scaler = seg.scaler
    z = []
    for j, (name, method) in enumerate(zip(scaler.features, scaler.methods, strict=True)):
        x = F.coalesce(F.col(name), F.lit(fills.get(name, 0.0)))  # FeatureFrame.matrix
        if method == "log1p":
            x = F.log1p(F.greatest(x, F.lit(0.0)))
        z.append((x - float(scaler.center[j])) / float(scaler.scale[j]))
    distances = []
    for center in np.asarray(centers, dtype="float64"):
        terms = [(zj - float(cj)) * (zj - float(cj)) for zj, cj in zip(z, center, strict=True)]
        d = terms[0]
        for t in terms[1:]:
            d = d + t
        distances.append(d)
    # argmin as a struct minimum: (distance, cluster) compares by distance, then by index,
    # which is the lowest index on a tie, as numpy's argmin
    nearest = F.least(*[F.struct(d.alias("d"), F.lit(i).alias("i"))
                        for i, d in enumerate(distances)])["i"]
    relabel = F.create_map(*[F.lit(x) for seg_id, cluster in enumerate(seg.order, start=1)
                             for x in (cluster, seg_id)])
    return relabel[nearest]


# profiles by grouped aggregation ---------------------------------------------------------------

def profiles(scored: DataFrame, features: list[str], value: str | None) -> Profiles:
    """profile.profile of the whole table from one grouped aggregation: per segment its
    size, value, means, population variances and medians; everyone's mean and spread are
    combined from the segments' (the pooled mean and variance are exact, no second pass)."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("_n"),
            F.sum(F.col(value) if value else F.lit(1.0)).alias("_value")]
    for i, f in enumerate(features):
        aggs += [F.count(f).alias(f"c{i}"), F.avg(f).alias(f"m{i}"), F.var_pop(f).alias(f"v{i}"),
                 F.percentile_approx(f, 0.5, MEDIAN_ACCURACY).alias(f"q{i}")]
    rows = sorted(scored.groupBy("segment").agg(*aggs).toArrow().to_pylist(),
                  key=lambda r: r["segment"])
    sizes = np.array([r["_n"] for r in rows], dtype="float64")
    n = float(sizes.sum())
    total = float(sum(r["_value"] for r in rows))
    mean, std = {}, {}
    for i, f in enumerate(features):
        # weighted by the values each segment has (a missing ratio is skipped, as pandas does)
        c = np.array([r[f"c{i}"] for r in rows], dtype="float64")
        m = np.nan_to_num(np.array([r[f"m{i}"] for r in rows], dtype="float64"))
        v = np.nan_to_num(np.array([r[f"v{i}"] for r in rows], dtype="float64"))
        have = float(c.sum())
        mean[f] = float(c @ m / have) if have else 0.0
        std[f] = float(np.sqrt(max(float(c @ (v + (m - mean[f]) ** 2)) / have, 0.0))) \
            if have else 0.0
    out = []
    for r in rows:
        size = int(r["_n"])
        means = {f: _float(r[f"m{i}"]) for i, f in enumerate(features)}
        out.append(SegmentProfile(
            id=int(r["segment"]), size=size, share=size / n,
            value_share=float(r["_value"]) / total if total else size / n,
            value_per_customer=float(r["_value"]) / size,
            means=means,
            medians={f: _float(r[f"q{i}"]) for i, f in enumerate(features)},
            zscores={f: (means[f] - mean[f]) / std[f] if std[f] and np.isfinite(means[f])
                     else 0.0 for f in features},
        ))
    return Profiles(segments=out, overall_mean=mean, overall_std=std, total_value=total)


def _float(value: float | None) -> float:
    """A segment's statistic of a feature it has no value of (all ratios of nothing): NaN,
    as pandas gives it."""
    return float("nan") if value is None else float(value)


# the run ----------------------------------------------------------------------------------------

def segments_uri(source: str, engine: EngineConfig) -> str:
    """Where the segments go: [engine] segments, else beside the source."""
    if engine.segments:
        return engine.segments
    if source.startswith(TABLE_PREFIX):
        return f"{TABLE_PREFIX}{source[len(TABLE_PREFIX):]}_segments"
    base = source.rstrip("/")
    for suffix in (".parquet", ".csv.gz", ".tsv.gz", ".csv", ".tsv", ".txt"):
        base = base.removesuffix(suffix)
    return f"{base}.segments.parquet"


def run(source: str, cfg: Config, out_root: Path, inputs: Inputs,
        previous_id: str | None = None, fresh: bool = False) -> RunResult:
    """``reportgen run --engine spark SOURCE``: see the module's docstring. previous_id and
    fresh: --previous RUN_ID and --no-previous, as for the default engine."""
    with _session(cfg) as spark:
        return _run(spark, source, cfg, out_root, inputs, previous_id, fresh)


def backfill(source: str, cfg: Config, out_root: Path, start: dt.date | None,
             end: dt.date | None) -> list[RunResult]:
    """pipeline.backfill on Spark: one session and one read of the source for every month
    (the table persisted on the executors, memory then disk, until the last month is done).
    The order-line columns are detected on the driver's sample of lines as a run detects
    them, the first and last days come from Spark (sparkorders.date_span, orders.date_span's
    rules over every line) and each month is a Spark run of the same lines cut at its as_of.
    The table never reaches the driver: only the sample and aggregates."""
    from pyspark import StorageLevel

    from .pipeline import backfill_months, order_lines_only, read_inputs
    from .sparkorders import date_span

    inputs = read_inputs(cfg)
    with _session(cfg) as spark:
        sdf = read(spark, source, cfg).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            src = open_source(sdf, source, cfg)
            columns = order_lines_only(detect_lines(src, cfg), source)
            first, last = date_span(sdf, src.loaded.frame, columns, cfg, source)
            return [_run(spark, source, cfg.with_overrides(report__as_of=as_of), out_root,
                         inputs, None, False, opened=(src, columns))
                    for as_of in backfill_months(first, last, start, end)]
        finally:
            sdf.unpersist()


@contextmanager
def _session(cfg: Config) -> Iterator[SparkSession]:
    """The run's session (``session``), pyspark's warning about pandas 3 silenced: no pandas
    runs inside Spark here (Arrow batches come back, pandas only holds the driver's sample),
    so it says nothing about this run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        with session(cfg.engine) as spark:
            yield spark


@dataclasses.dataclass(frozen=True)
class Source:
    """A source as Spark reads it: the DataFrame, its rows and the driver's sample of them
    (as load gives a table: ``loaded.frame`` is the sample)."""

    sdf: DataFrame
    rows: int
    loaded: Loaded


def open_source(sdf: DataFrame, source: str, cfg: Config) -> Source:
    """The source's rows counted and the driver's sample drawn (a table without rows is
    refused)."""
    from .load import finish

    rows = sdf.count()
    if rows == 0:
        raise InputError("the table has a header but no rows", file=source)
    table = sample(sdf, rows, cfg.engine.sample, cfg.segment.random_state)
    name = source[len(TABLE_PREFIX):] if source.startswith(TABLE_PREFIX) else Path(source).name
    return Source(sdf=sdf, rows=rows, loaded=finish(table, None, source, source_digest(source),
                                                    kind="spark", notes=[], name=name))


def detect_lines(src: Source, cfg: Config) -> OrderColumns | None:
    """Order lines or customers: the roles decided on the sample, the repeat of the key
    counted over the whole table (a sample of lines splits each customer's)."""
    from .orders import detect
    from .sparkorders import repeat_share

    return detect(src.loaded.frame, cfg.transactions, src.loaded.where,
                  repeat=lambda column: repeat_share(src.sdf, column))


def _run(spark: SparkSession, source: str, cfg: Config, out_root: Path, inputs: Inputs,
         previous_id: str | None, fresh: bool,
         opened: tuple[Source, OrderColumns | None] | None = None) -> RunResult:
    """One run on spark; opened: the source already read and its order-line columns detected
    (a backfill's months share them)."""
    from .clean import clean, require_rows
    from .features import build_features, order_features
    from .pipeline import _Clock, run_id_for, series_context, series_run
    from .report import CleaningStep
    from .schema import infer_schema
    from .sparkorders import aggregate

    clock = _Clock()
    where = source
    if opened is None:
        with clock.stage("load"):
            src = open_source(read(spark, source, cfg), source, cfg)
        with clock.stage("schema"):
            order_columns = detect_lines(src, cfg)
    else:
        src, order_columns = opened
    sdf, rows, loaded = src.sdf, src.rows, src.loaded
    table = loaded.frame
    if order_columns is not None:
        with clock.stage("orders"):
            aggregated = aggregate(spark, sdf, rows, loaded.frame, order_columns, cfg,
                                   cfg.engine.sample, where)
        try:
            orders = aggregated.orders
            customers, schema = orders.table()
            learned_on = (f"decisions learned on a sample of {len(customers):,} of "
                          f"{aggregated.sample_of:,} customers aggregated by Spark from "
                          f"{rows:,} order lines, and applied by Spark to every customer")
            notes = [*orders.log, *([CleaningStep(
                "*", "sampled", len(customers), learned_on,
                "there are more customers than the driver's sample")]
                if len(customers) < aggregated.sample_of else [])]
            with clock.stage("clean"):
                cleaned = dataclasses.replace(
                    clean(customers, schema, cfg, file=where, notes=notes), as_of=orders.as_of)
                require_rows(cleaned, cfg, file=where)
            with clock.stage("features"):
                ff = order_features(cleaned, orders.features, cfg, where)
            period_key = orders.as_of.strftime("%Y-%m")
            run_id = run_id_for(period_key, loaded.sha256, cfg)
            with series_context(out_root, cfg, period_key, previous_id, fresh,
                                customers=False) as (history, previous):
                engine = SparkEngine(spark, aggregated.customers, source, rows, loaded, {},
                                     cfg, out_root, orders)
                return series_run(
                    engine=engine, loaded=loaded, table=loaded.frame, notes=notes,
                    schema=schema, cleaned=cleaned, ff=ff, categories=None, orders=orders,
                    cfg=cfg, out_root=out_root, inputs=inputs, clock=clock,
                    run_id=run_id, period_key=period_key, history=history,
                    previous=previous, fresh=fresh)
        finally:
            aggregated.customers.unpersist()
    schema = infer_schema(loaded.frame, cfg.columns, file=where, scale=cfg.scale)
    learned_on = (f"decisions learned on a sample of {len(table):,} of {rows:,} rows and "
                  "applied by Spark to every row; the counts in this log are the sample's")
    notes = [CleaningStep("*", "sampled", len(table), learned_on,
                          "the table is larger than the driver's sample")] \
        if len(table) < rows else []
    with clock.stage("clean"):
        cleaned = clean(loaded.frame, schema, cfg, file=where, notes=notes)
        missing, latest = table_facts(sdf, cleaned.decisions)
        if cfg.report.as_of is None and latest is not None and latest != cleaned.as_of:
            # as_of is the latest date of the whole table, as the default engine takes it
            cleaned = clean(loaded.frame, schema, cfg, file=where, notes=notes, as_of=latest)
        require_rows(cleaned, cfg, file=where)
    with clock.stage("features"):
        ff = build_features(cleaned, schema, cfg, file=where)
    period_key = cleaned.as_of.strftime("%Y-%m") if cleaned.as_of else "undated"
    run_id = run_id_for(period_key, loaded.sha256, cfg)
    with series_context(out_root, cfg, period_key, previous_id, fresh, customers=False
                        ) as (history, previous):
        engine = SparkEngine(spark, sdf, source, rows, loaded, missing, cfg, out_root, None)
        return series_run(
            engine=engine, loaded=loaded, table=loaded.frame, notes=notes, schema=schema,
            cleaned=cleaned, ff=ff, categories=None, orders=None, cfg=cfg,
            out_root=out_root, inputs=inputs, clock=clock, run_id=run_id,
            period_key=period_key, history=history, previous=previous, fresh=fresh)


class SparkEngine:
    """series_run's Spark ways (pipeline.Engine): ff and seg are the driver's sample; Spark
    applies the decisions and assigns every customer where the table is
    (``assigned``), follows them to the previous run by a join (``count_flows``), profiles
    them by a grouped aggregation and writes their segments (and the movers) as Parquet
    beside the source or at [engine] segments; the run folder gets a pointer to them."""

    columns: list[ColumnInfo] | None = None  # the report lists the sample's columns

    def __init__(self, spark: SparkSession, sdf: DataFrame, source: str, rows: int,
                 loaded: Loaded, missing: dict[str, int], cfg: Config, out_root: Path,
                 orders: Orders | None) -> None:
        self.spark, self.sdf, self.rows, self.loaded = spark, sdf, rows, loaded
        self.missing, self.cfg, self.out_root, self.orders = missing, cfg, out_root, orders
        self.raw = loaded.frame
        self.uri = segments_uri(source, cfg.engine)
        self.movers_file = movers_uri(self.uri)
        self.scored: DataFrame | None = None  # every customer's features and label
        self.before: DataFrame | None = None  # the previous run's customers (count_flows)

    @contextmanager
    def assigned(self, seg: Segmentation, ff: FeatureFrame, cleaned: Cleaned, schema: Schema,
                 clock: _Clock) -> Iterator[None]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        label = assign_column(seg, ff.fills)  # refuses a model without centres before Spark works
        with clock.stage("spark"):
            clean_sdf = clean_columns(self.sdf, schema, cleaned.decisions,
                                      snapshot=self.cfg.report.as_of is not None)
            exprs = feature_columns(schema, cleaned.decisions, ff) if self.orders is None \
                else order_feature_columns(ff)
            feats = clean_sdf.select(F.col(cleaned.key), "_rg_order",
                                     *[e.alias(f) for f, e in exprs.items()])
            persisted = feats.withColumn("_rg_label", label).persist(
                StorageLevel.MEMORY_AND_DISK)
        self.scored = persisted
        try:
            yield
        finally:
            persisted.unpersist()

    def flows(self, seg: Segmentation, ff: FeatureFrame, cleaned: Cleaned, policy: str,
              previous: Previous | None
              ) -> tuple[pd.Index | None, compare.Flows | None, Previous | None]:
        from pyspark.sql import functions as F

        if previous is None or policy == "first":
            return None, None, previous
        assert self.scored is not None
        # under keep the labels are the series' ids already; a refit's are matched
        ids = list(previous.model.segment_ids) \
            if policy == "keep" and previous.model is not None else list(range(1, seg.k + 1))
        counted, gone, self.before = count_flows(
            self.spark, self.scored, cleaned.key, ff.value, _relabel(F.col("_rg_label"), ids),
            previous, self.out_root, self.uri, ids)
        if gone:
            previous = dataclasses.replace(previous, missing=gone)
            log.warning("%s", gone)
        return None, counted, previous

    def profile(self, ff: FeatureFrame, seg: Segmentation, step: Step) -> Profiles:
        from pyspark.sql import functions as F

        assert self.scored is not None
        self.scored = self.scored.withColumn("segment", _relabel(F.col("_rg_label"),
                                                                 step.segment_ids))
        return profiles(self.scored, list(ff.frame.columns), ff.value)

    def rfm(self, ff: FeatureFrame, seg: Segmentation, groups: list[Group]) -> Rfm | None:
        from .sparkorders import rfm_columns, rfm_scores, rfm_summary

        if self.orders is None:
            return None
        assert self.scored is not None
        scores = rfm_scores(self.scored)
        table = rfm_summary(self.scored, groups, scores)
        # each customer's code and group, written with its segment (_write_segments)
        self.scored = self.scored.withColumns(rfm_columns(scores, groups))
        return table

    def write_segments(self, *, step: Step, profiles: Profiles, names: dict[int, str],
                       previous: Previous | None, cleaned: Cleaned, ff: FeatureFrame,
                       run_id: str, clock: _Clock) -> str | None:
        from . import series as series_

        assert self.scored is not None
        with clock.stage("write"):
            _write_segments(self.scored, cleaned.key, ff.value, names, self.uri, run_id)
            if self.before is None or step.flows is None or previous is None:
                return None
            cells = series_.mover_cells(step, profiles)
            pairs = [(step.flows.previous_ids[i], step.flows.current_ids[j])
                     for i, j in zip(*np.nonzero(cells), strict=True)]
            if not pairs or not step.flows.overlap[cells].sum():
                return None
            write_movers(self.scored, cleaned.key, ff.value, self.before, pairs, names,
                         {s.segment_id: s.name for s in previous.record.segments},
                         self.movers_file)
            return self.movers_file

    def totals(self, profiles: Profiles) -> Totals:
        from .assemble import Totals

        return Totals(customers_in=self.rows, customers=_segmented(profiles),
                      missing=self.missing)

    def manifest(self, clock: _Clock) -> dict[str, Any]:
        from .pipeline import _manifest

        manifest = _manifest(self.loaded, self.cfg, clock.timings)
        manifest["input"]["rows"] = self.rows
        manifest["engine"] = {"name": "spark", "spark": self.spark.version,
                              "master": self.spark.sparkContext.master,
                              "sample_rows": len(self.loaded.frame), "segments": self.uri}
        return manifest

    def files(self, *, step: Step, profiles: Profiles, names: dict[int, str],
              cleaned: Cleaned, ff: FeatureFrame, seg: Segmentation, changes: Changes | None,
              run_id: str) -> dict[str, Any]:
        pointer = {"segments": self.uri, "rows": _segmented(profiles), "run_id": run_id,
                   "key": cleaned.key, "value": ff.value}
        return {
            "frame": self.loaded.frame, "key": cleaned.key, "kept_index": ff.frame.index,
            "labels": seg.labels, "excluded": cleaned.excluded, "features": ff.frame[[]],
            "segments": False,
            "extra": {SEGMENTS_POINTER: lambda path: path.write_text(
                json.dumps(pointer, indent=2) + "\n", encoding="utf-8")},
        }


def _segmented(profiles: Profiles) -> int:
    """Customers in a segment, in the whole table."""
    return sum(sp.size for sp in profiles.segments)


def _relabel(label: Column, ids: Sequence[int]) -> Column:
    """label (1..k, the position in seg.order) as the series id of that segment."""
    from pyspark.sql import functions as F

    if list(ids) == list(range(1, len(ids) + 1)):
        return label
    return F.create_map(*[F.lit(x) for pos, i in enumerate(ids, start=1)
                          for x in (pos, int(i))])[label]


def previous_customers(spark: SparkSession, previous: Previous, out_root: Path,
                       current_uri: str) -> DataFrame | None:
    """The previous run's customers as (_rg_pkey, _rg_pseg, _rg_pvalue), read by Spark where
    they are: its folder's segments.parquet (a default-engine run) or the Parquet/table its
    segments.json points to (a Spark run; only the rows of that run). None: it had no key.
    When they are where this run writes its own (a table refreshed in place every month),
    they are checkpointed on the executors first, so overwriting them cannot lose them.
    OSError/ValueError/KeyError/AnalysisException when they cannot be read."""
    from pyspark.sql import functions as F

    from .history import SEGMENTS_FILE, segments_columns

    record = previous.record
    folder = record.folder(out_root)
    parquet = folder / SEGMENTS_FILE
    if parquet.is_file():  # a run of the default engine
        key, value = segments_columns(parquet)
        uri = str(parquet)
        table = spark.read.parquet(uri)
    else:
        pointer = json.loads((folder / SEGMENTS_POINTER).read_text(encoding="utf-8"))
        if "key" not in pointer:
            raise ValueError("it was written before Spark runs named their key and value "
                             "columns")
        uri, key, value = pointer["segments"], pointer["key"], pointer.get("value")
        table = spark.table(uri[len(TABLE_PREFIX):]) if uri.startswith(TABLE_PREFIX) else \
            spark.read.parquet(uri)
        table = table.where(F.col("run_id") == F.lit(record.run_id))
    if key is None:
        return None
    out = table.where(F.col("segment").isNotNull()).select(
        F.col(key).alias("_rg_pkey"), F.col("segment").cast("long").alias("_rg_pseg"),
        (F.col(value) if value else F.lit(1.0)).cast("double").alias("_rg_pvalue"))
    return out.localCheckpoint(eager=True) if uri == current_uri else out


def count_flows(spark: SparkSession, scored: DataFrame, key: str, value: str | None,
                label: Column, previous: Previous, out_root: Path, current_uri: str,
                current_ids: Iterable[int]
                ) -> tuple[compare.Flows | None, str, DataFrame | None]:
    """The migration matrix of the previous run's customers and this run's (label: this
    run's segment of each row of scored) from one full outer join on the key and one
    grouped count: only (k + 1)² cells reach the driver; with the previous run's customers
    (``previous_customers``) for the movers. (None, "", None) when the previous run had no
    key; (None, why, None) when its customers cannot be read or are gone (overwritten by a
    later run writing to the same place): the comparison then matches segments by their
    centres, as the default engine does when a previous run's files are gone."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    from .compare import counted_flows

    record = previous.record
    gone = (f"the customers of the previous run {record.run_id} ({record.period_label}) "
            "{}: its segments were matched by their centres and customers could not be "
            "followed")
    try:
        before = previous_customers(spark, previous, out_root, current_uri)
    except (OSError, ValueError, KeyError, AnalysisException, HistoryError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return None, gone.format(f"cannot be read ({first})"), None
    if before is None:
        return None, "", None
    now, before = _keyed(scored, key, value, label, before)
    joined = now.join(before, now["_rg_key"] == before["_rg_pkey"], "full_outer")
    lost = F.col("_rg_seg").isNull()
    cells = joined.groupBy(F.coalesce(F.col("_rg_pseg"), F.lit(-1)).alias("source"),
                           F.coalesce(F.col("_rg_seg").cast("long"), F.lit(-1)).alias("target")
                           ).agg(F.count(F.lit(1)).alias("n"),
                                 F.sum(F.when(lost, F.col("_rg_pvalue"))
                                       .otherwise(F.col("_rg_value"))).alias("v"))
    found = [(int(r["source"]), int(r["target"]), int(r["n"]), float(r["v"] or 0.0))
             for r in cells.toArrow().to_pylist()]
    if record.customers and not any(source != -1 for source, _, _, _ in found):
        return None, gone.format("are no longer where it wrote them (a later run replaced "
                                 "them)"), None
    flows = counted_flows(found, [s.segment_id for s in record.segments], current_ids)
    return flows, "", before


def _keyed(scored: DataFrame, key: str, value: str | None, label: Column, before: DataFrame
           ) -> tuple[DataFrame, DataFrame]:
    """This run's customers as (_rg_key, _rg_seg, _rg_value) beside the previous run's, the
    keys of one type: an id read as numbers one month and as text the next is compared as
    text (compare._comparable)."""
    from pyspark.sql import functions as F

    now = scored.select(F.col(key).alias("_rg_key"), label.alias("_rg_seg"),
                        (F.col(value) if value else F.lit(1.0)).cast("double")
                        .alias("_rg_value"))
    if dict(now.dtypes)["_rg_key"] != dict(before.dtypes)["_rg_pkey"]:
        now = now.withColumn("_rg_key", F.col("_rg_key").cast("string"))
        before = before.withColumn("_rg_pkey", F.col("_rg_pkey").cast("string"))
    return now, before


def write_movers(scored: DataFrame, key: str, value: str | None, before: DataFrame,
                 pairs: Sequence[tuple[int, int]], names: Mapping[int, str],
                 previous_names: Mapping[int, str], uri: str) -> None:
    """movers.csv's table (series.movers_table) written by Spark at uri: the customers who
    moved down from a segment that was valuable last period (pairs: (previous segment,
    segment) of such moves), most valuable last period first."""
    from pyspark.sql import functions as F

    def names_of(mapping: Mapping[int, str]) -> Column:
        return F.create_map(*[F.lit(x) for i, n in sorted(mapping.items()) for x in (i, n)])

    now, before = _keyed(scored, key, value, F.col("segment"), before)
    moved = F.lit(False)
    for source, target in pairs:
        moved = moved | ((F.col("_rg_pseg") == source) & (F.col("_rg_seg") == target))
    out = now.join(before, now["_rg_key"] == before["_rg_pkey"], "inner").where(moved).select(
        F.col("_rg_key").alias(key), F.col("_rg_pseg").alias("previous_segment"),
        names_of(previous_names)[F.col("_rg_pseg")].alias("previous_persona"),
        F.col("_rg_seg").cast("long").alias("segment"),
        names_of(names)[F.col("_rg_seg")].alias("persona"),
        F.round("_rg_pvalue", 2).alias("previous_value"), F.round("_rg_value", 2).alias("value"),
        F.round(F.col("_rg_value") - F.col("_rg_pvalue"), 2).alias("value_change"),
    ).orderBy(F.desc("previous_value"), F.asc(key))
    if uri.startswith(TABLE_PREFIX):
        out.write.mode("overwrite").format("parquet").saveAsTable(uri[len(TABLE_PREFIX):])
    else:
        out.write.mode("overwrite").parquet(uri)


def movers_uri(segments: str) -> str:
    """Where the movers go: beside the segments (X.segments.parquet → X.movers.parquet,
    a table db.t_segments → db.t_segments_movers)."""
    if segments.startswith(TABLE_PREFIX):
        return f"{segments}_movers"
    base = segments.rstrip("/").removesuffix(".parquet").removesuffix(".segments")
    return f"{base}.movers.parquet"


def _write_segments(scored: DataFrame, key: str, value: str | None, names: Mapping[int, str],
                    uri: str, run_id: str) -> None:
    """key, segment, persona, the value measure (what the next run of the series compares),
    rfm_score and rfm_group on order lines (SparkEngine.rfm adds them to scored) and the run
    id as Parquet at uri (a catalog table for spark:db.table); in no particular
    order (sorting would cost a shuffle)."""
    from pyspark.sql import functions as F

    persona = F.create_map(*[F.lit(x) for seg_id, n in sorted(names.items())
                             for x in (seg_id, n)])
    out = scored.select(F.col(key), F.col("segment").cast("int").alias("segment"),
                        persona[F.col("segment")].alias("persona"),
                        *([F.col(value)] if value and value != key else []),
                        *[F.col(c) for c in ("rfm_score", "rfm_group") if c in scored.columns],
                        F.lit(run_id).alias("run_id"))
    if uri.startswith(TABLE_PREFIX):
        out.write.mode("overwrite").format("parquet").saveAsTable(uri[len(TABLE_PREFIX):])
    else:
        out.write.mode("overwrite").parquet(uri)


__all__ = ["assign_column", "clean_columns", "feature_columns", "profiles", "read", "run",
           "sample", "session", "segments_uri"]
