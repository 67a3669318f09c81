"""Order lines on the Spark engine: orders.aggregate's work, done where the lines are.

- The columns' roles and the date format are decided on the driver's sample of lines by
  orders.detect and orders.date_format_of; only the repeat share of the customer key (which
  a sample of lines understates: a customer's other lines are mostly not in it) is counted
  by Spark over the whole table (``repeat_share``).
- Spark types the lines as orders.line_table does (the key as text, the order number,
  the timestamp, signed amount and quantity, returns and cancellations, discounts, the mix
  levels), counts exact duplicate lines once, counts what it leaves out and why (no
  customer, an unreadable date or amount, a date more than a year after the 99th percentile,
  a line after as_of), picks each mix's top levels by revenue, and aggregates per customer
  with orders.AGGREGATES and LINES_SQL: the SQL DuckDB runs, run by Spark SQL with named
  parameters.
- A bounded sample of those customers reaches the driver, where orders._features makes the
  features and orders._narrow drops a time span too narrow to tell anyone apart; Spark
  computes the same features for every customer (``customer_features``). The Spark
  customer path then cleans, assigns and profiles them, and makes the RFM table of every
  customer (``rfm_summary``: rfm.score's exact cuts by ``exact_ranks``, then counts and sums
  per segment and score) and each customer's rfm_score and rfm_group as column expressions
  (``rfm_scores``, ``rfm_columns``) for the segments' Parquet.
- A backfill's first and last day (``date_span``): orders.date_span's rules over every line.

What differs from the default engine, and why: the cleaning log does not say at which row a
left-out line first occurs (rows have no order in a distributed table), the 99th percentile
of the dates is Spark's approximate one (within 0.001 % of the rank), the customers left
out for having only returns are counted, not listed, and whether a mix has an "other" share
is decided on the sample.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import InputError
from .orders import (
    _CANCELLED,
    _RETURN_STATUS,
    AGGREGATES,
    DAYS_PER_MONTH,
    DISCOUNT_AGGREGATE,
    FUTURE_GAP_DAYS,
    LINES_SQL,
    MIX_ROLES,
    LineStats,
    OrderColumns,
    Orders,
    _share,
    _slug,
    add_mix,
    customer_table,
    date_format_of,
    level_queries,
    window_params,
)
from .report import CleaningStep
from .rfm import SCORES, summarise_cells

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from .config import Config
    from .report import Rfm
    from .rfm import Group

# Accuracy of the dates' 99th percentile (percentile_approx: rank within 1 / this); the
# first guess of the exact ranks (exact_ranks) too.
PERCENTILE_ACCURACY = 100_000
_DAY_US = 86_400_000_000
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


@dataclasses.dataclass
class SparkOrders:
    """The aggregation: Orders as the default engine's stages take it (its customers are the
    driver's sample; its counts and log are the whole table's) and every customer's features
    in Spark (the customer column named as the lines' key), persisted: unpersist it after the
    run."""

    orders: Orders
    customers: DataFrame
    sample_of: int  # customers in the whole table (the sample's size is len(orders.customers))


def repeat_share(sdf: DataFrame, column: str) -> float:
    """Share of the lines whose customer was seen on an earlier line, over the whole table
    (orders._repeat_share; distinct keys counted within 1 %)."""
    from pyspark.sql import functions as F

    row = sdf.select(F.count(column).alias("n"),
                     F.approx_count_distinct(column, 0.01).alias("d")).first()
    assert row is not None
    n, distinct = int(row["n"]), int(row["d"])
    return 1.0 - min(distinct, n) / n if n else 0.0


def exact_ranks(sdf: DataFrame, wanted: Mapping[str, Sequence[tuple[int, Any]]]
                ) -> dict[str, list[Any]]:
    """The values at given ranks of sdf's columns, exactly: wanted maps a column to (rank,
    guess) pairs, rank 0-based in ascending order (nulls are not ranked), guess a value of the
    column near it (percentile_approx's). One pass counts the values below and up to each
    guess; a guess off its rank is corrected by an ordered limit of the values between it and
    the rank (Spark's top-k: as many rows as the guess was ranks off reach the driver)."""
    from pyspark.sql import functions as F

    counts = sdf.select(*[
        F.count_if(F.col(column) < F.lit(guess)).alias(f"b{i}_{j}")
        for i, (column, pairs) in enumerate(wanted.items())
        for j, (_, guess) in enumerate(pairs)] + [
        F.count_if(F.col(column) <= F.lit(guess)).alias(f"u{i}_{j}")
        for i, (column, pairs) in enumerate(wanted.items())
        for j, (_, guess) in enumerate(pairs)]).first()
    assert counts is not None
    out: dict[str, list[Any]] = {}
    for i, (column, pairs) in enumerate(wanted.items()):
        values = []
        for j, (rank, guess) in enumerate(pairs):
            below, upto = int(counts[f"b{i}_{j}"]), int(counts[f"u{i}_{j}"])
            if below <= rank < upto:  # the guess holds the rank (ties included)
                values.append(guess)
                continue
            c = F.col(column)
            part = sdf.where(c > F.lit(guess)).select(c).orderBy(c.asc()).limit(
                rank - upto + 1) if rank >= upto else \
                sdf.where(c < F.lit(guess)).select(c).orderBy(c.desc()).limit(below - rank)
            values.append(part.collect()[-1][0])
        out[column] = values
    return out


def _wall_us(ts: Column) -> Column:
    """A timestamp as microseconds of its wall-clock time since 1970-01-01 (pandas holds a
    date without a time zone; Spark's timestamps are instants, read in the session's zone)."""
    from pyspark.sql import functions as F

    seconds = F.unix_date(F.to_date(ts)).cast("long") * 86_400 + F.hour(ts) * 3_600 + \
        F.minute(ts) * 60 + F.second(ts)
    return seconds * 1_000_000 + F.pmod(F.unix_micros(ts.cast("timestamp")), F.lit(1_000_000))


def date_span(sdf: DataFrame, sample_lines: pd.DataFrame, cols: OrderColumns, cfg: Config,
              file: str | None = None) -> tuple[dt.date, dt.date]:
    """orders.date_span over every line of sdf, by Spark (the date format decided on the
    driver's sample of lines, as aggregate decides it): the first and last day of the lines
    with a readable date, leaving out the dates more than FUTURE_GAP_DAYS after the 99th
    percentile. The percentile is exact and interpolated as pandas does (numpy's linear
    method on microseconds, truncated to the microsecond): its two neighbouring dates are
    found by exact_ranks; only counts and those dates reach the driver."""
    from pyspark.sql import functions as F

    fmt = date_format_of(sample_lines[cols.date], cols.date, file, cfg.input.date_format)
    ts = _timestamp(F.col(cols.date), dict(sdf.dtypes)[cols.date], fmt)
    dated = sdf.select(_wall_us(ts).alias("us")).where(F.col("us").isNotNull())
    head = dated.select(F.count(F.lit(1)).alias("n"), F.min("us").alias("first"),
                        F.percentile_approx("us", 0.99, PERCENTILE_ACCURACY).alias("guess")
                        ).first()
    assert head is not None
    n = int(head["n"])
    if not n:
        raise InputError("no order line has a readable date", column=cols.date, file=file)
    # numpy's quantile, method "linear": the virtual index (n - 1) q, then _lerp
    virtual = (n - 1) * 0.99
    lo = math.floor(virtual)
    hi = min(lo + 1, n - 1)
    a, b = exact_ranks(dated, {"us": [(lo, head["guess"]), (hi, head["guess"])]})["us"]
    t = virtual - lo
    q99 = a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)
    fence = int(q99) + FUTURE_GAP_DAYS * _DAY_US  # astype(datetime64[us]) truncates
    last = dated.where(F.col("us") <= F.lit(fence)).select(F.max("us").alias("us")).first()
    assert last is not None
    epoch = dt.date(1970, 1, 1)
    return (epoch + dt.timedelta(days=int(head["first"]) // _DAY_US),
            epoch + dt.timedelta(days=int(last["us"]) // _DAY_US))


def rfm_scores(scored: DataFrame) -> dict[str, Column]:
    """r_score, f_score and m_score of every customer of scored (columns recency, frequency,
    total_spend) as column expressions, exact as rfm.score defines them: a customer scores 1 +
    the number of the four cut values, the values of rank ceil(k n / 5) for k = 1..4, that it
    beats; exact_ranks finds the cuts (one pass for the guesses, one for their ranks)."""
    from pyspark.sql import functions as F

    # higher is better for each: a shorter recency is -recency larger
    measures = {"r_score": (-F.col("recency")).cast("double"),
                "f_score": F.col("frequency").cast("double"),
                "m_score": F.col("total_spend").cast("double")}
    values = scored.select(*[m.alias(f"_{name}") for name, m in measures.items()])
    cut_at = SCORES[:-1]  # the k of the four cuts: 1..4
    head = values.select(
        F.count(F.lit(1)).alias("n"),
        *[F.count(f"_{name}").alias(f"c_{name}") for name in measures],
        *[F.percentile_approx(f"_{name}", [k / 5 for k in cut_at],
                              PERCENTILE_ACCURACY).alias(f"q_{name}")
          for name in measures]).first()
    assert head is not None
    n = int(head["n"])
    if any(int(head[f"c_{name}"]) != n for name in measures):
        raise ValueError("RFM scores need a value for every customer")
    if not n:
        return {name: F.lit(1) for name in measures}
    ranks = [(k * n + 4) // 5 - 1 for k in cut_at]  # ceil(k n / 5), 0-based
    cuts = exact_ranks(values, {f"_{name}": list(zip(ranks, head[f"q_{name}"], strict=True))
                                for name in measures})
    score: dict[str, Column] = {}
    for name, m in measures.items():
        beaten = [F.when(m > F.lit(cut), 1).otherwise(0) for cut in cuts[f"_{name}"]]
        score[name] = F.lit(1) + beaten[0] + beaten[1] + beaten[2] + beaten[3]
    return score


def rfm_columns(scores: Mapping[str, Column], groups: list[Group]) -> dict[str, Column]:
    """rfm_score ("545") and rfm_group of rfm.rfm as column expressions over the scores of
    rfm_scores: the group is the first of groups that holds the three scores (one CASE WHEN;
    load_groups makes sure one always does)."""
    from pyspark.sql import functions as F

    r, f, m = (scores[name] for name in ("r_score", "f_score", "m_score"))
    rules = [(functools.reduce(lambda a, b: a & b, [
        s.between(lo, hi) for s, (lo, hi) in ((r, g.r), (f, g.f), (m, g.m))]), F.lit(g.name))
        for g in groups]
    group = F.when(*rules[0])
    for holds, name in rules[1:]:
        group = group.when(holds, name)
    return {"rfm_score": F.concat(*[s.cast("string") for s in (r, f, m)]),
            "rfm_group": group}


def rfm_summary(scored: DataFrame, groups: list[Group],
                scores: Mapping[str, Column] | None = None) -> Rfm:
    """rfm.rfm and rfm.summarise over every customer of scored (columns segment, recency,
    frequency, total_spend), by Spark: the scores of rfm_scores (given, or found), the
    customers counted with their sums per segment and R, F, M score (at most k × 125 rows
    reach the driver), and the table made from those by rfm.summarise_cells."""
    from pyspark.sql import functions as F

    scores = scores if scores is not None else rfm_scores(scored)
    cells = scored.groupBy(F.col("segment"), *[s.alias(name) for name, s in scores.items()]).agg(
        F.count(F.lit(1)).alias("customers"), F.sum("recency").alias("recency"),
        F.sum("frequency").alias("frequency"), F.sum("total_spend").alias("monetary"))
    return summarise_cells(cells.toArrow().to_pandas(), groups)


def _key(c: Column, kind: str) -> Column:
    """orders._key_sql: a key column as text, trimmed, blank → null; whole floats (17850.0,
    as a column with blanks reads) without the '.0'."""
    from pyspark.sql import functions as F

    if kind in ("float", "double"):
        whole = ~F.isnan(c) & (c == F.floor(c)) & (F.abs(c) < 2.0 ** 53)
        return F.when(whole, c.cast("bigint").cast("string")).when(~F.isnan(c),
                                                                    c.cast("string"))
    if kind in _NUMERIC or kind.startswith("decimal"):
        return c.cast("string")
    t = F.trim(c.cast("string"))
    return F.when(t != "", t)


def _timestamp(c: Column, kind: str, fmt: str | None) -> Column:
    """orders._source's reading of the date column in its decided format."""
    from pyspark.sql import functions as F

    from .spark import _java_pattern

    if fmt is None:
        return c.cast("timestamp")
    if fmt == "%Y%m%d" and (kind in _NUMERIC or kind.startswith("decimal")):
        return F.try_to_timestamp(c.cast("bigint").cast("string"), F.lit("yyyyMMdd"))
    return F.try_to_timestamp(F.trim(c.cast("string")), F.lit(_java_pattern(fmt)))


def _amount(c: Column, kind: str) -> Column:
    """A number of the line (orders._source: read as clean reads text), null unless finite."""
    from pyspark.sql import functions as F

    from .spark import _number

    x = _number(c, kind == "string")
    return F.when(~F.isnan(x) & (F.abs(x) < float("inf")), x)


def typed_lines(sdf: DataFrame, cols: OrderColumns, fmt: str | None) -> DataFrame:
    """Every line typed (orders.line_table's typed_lines): customer, order (text),
    cancelled, ts, signed_amount, signed_qty, returned, discounted and <role>_level."""
    from pyspark.sql import functions as F

    kinds = dict(sdf.dtypes)

    def col(role: str) -> Column:
        return F.col(getattr(cols, role))

    out: dict[str, Column] = {"customer": _key(col("customer"), kinds[cols.customer])}
    if cols.order is not None:
        order = _key(col("order"), kinds[cols.order])
        out["order"] = order
        out["cancelled"] = order.rlike(_CANCELLED)
    else:
        out["order"] = F.lit(None).cast("string")
        out["cancelled"] = F.lit(None).cast("boolean")
    out["ts"] = _timestamp(col("date"), kinds[cols.date], fmt)
    numbers = {role: _amount(col(role), kinds[getattr(cols, role)])
               for role in ("amount", "quantity", "price", "discount")
               if getattr(cols, role) is not None}
    amount = numbers["amount"] if "amount" in numbers else \
        numbers["quantity"] * numbers["price"]
    out["signed_amount"] = amount
    out["signed_qty"] = numbers["quantity"] if "quantity" in numbers else F.lit(1.0)
    returned = F.coalesce(amount < 0, F.lit(False))
    if "quantity" in numbers:
        returned = returned | F.coalesce(numbers["quantity"] < 0, F.lit(False))
    if cols.status is not None:
        status = _key(col("status"), kinds[cols.status])
        returned = returned | F.coalesce(status.rlike(_RETURN_STATUS), F.lit(False))
    out["returned"] = returned
    if "discount" in numbers:
        out["discounted"] = F.coalesce(F.abs(numbers["discount"]) > 0, F.lit(False))
    for role in MIX_ROLES:
        if getattr(cols, role) is not None:
            out[f"{role}_level"] = F.coalesce(_key(col(role), kinds[getattr(cols, role)]),
                                              F.lit("Unknown"))
    # exact duplicate lines (every column equal) are one purchase exported twice
    return sdf.dropDuplicates().select(*[c.alias(name) for name, c in out.items()])


def _sql(text: str, view: str) -> str:
    """orders' DuckDB SQL for Spark SQL: the lines' view named, $name parameters as :name."""
    return re.sub(r"\$(\w+)", r":\1", text.replace("FROM usable", f"FROM {view}"))


def aggregate(spark: SparkSession, sdf: DataFrame, lines: int, sample_lines: pd.DataFrame,
              cols: OrderColumns, cfg: Config, size: int, file: str | None = None
              ) -> SparkOrders:
    """One row per customer as of cfg.report.as_of (default: the last day in the data), from
    the lines of sdf (``lines`` of them; sample_lines: the driver's sample of them, where the
    date format is decided)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    log: list[CleaningStep] = []
    fmt = date_format_of(sample_lines[cols.date], cols.date, file, cfg.input.date_format)
    typed = typed_lines(sdf, cols, fmt).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        readable = F.col("customer").isNotNull() & F.col("signed_amount").isNotNull() & \
            F.col("ts").isNotNull()
        plain = ~F.col("returned")
        counts = typed.select(
            F.count(F.lit(1)).alias("distinct"),
            F.avg(F.col("cancelled").cast("double")).alias("cancelled"),
            F.count_if(F.col("customer").isNull()).alias("none"),
            F.count_if(F.col("customer").isNotNull() & F.col("ts").isNull()).alias("bad_date"),
            F.count_if(F.col("customer").isNotNull() & F.col("ts").isNotNull() &
                       F.col("signed_amount").isNull()).alias("bad_amount"),
            F.count_if(readable).alias("readable"),
            F.percentile_approx(F.when(readable, F.unix_date(F.to_date("ts"))), 0.99,
                                PERCENTILE_ACCURACY).alias("p99"),
            # the gross revenue with and without cancelled orders as returns (which one
            # holds is decided by the share of cancelled order numbers, as orders does)
            *[F.coalesce(F.sum(F.when(keep, F.abs(F.col("signed_amount")))), F.lit(0.0))
              .alias(name) for name, keep in (
                  ("gross_all", plain), ("gross_none", plain & F.col("customer").isNull()),
                  ("gross_all_c", plain & ~F.coalesce(F.col("cancelled"), F.lit(False))),
                  ("gross_none_c", plain & ~F.coalesce(F.col("cancelled"), F.lit(False)) &
                   F.col("customer").isNull()))],
        ).first()
        assert counts is not None
        n_dup = lines - int(counts["distinct"])
        share = counts["cancelled"]
        with_cancelled = cols.order is not None and share is not None and share < 0.5
        suffix = "_c" if with_cancelled else ""
        gross_all, gross_none = counts[f"gross_all{suffix}"], counts[f"gross_none{suffix}"]
        n_none, n_bad_date = int(counts["none"]), int(counts["bad_date"])
        n_bad_amount, n_readable = int(counts["bad_amount"]), int(counts["readable"])
        if not n_readable:
            raise InputError("no order line has a customer, a readable date and an amount",
                             file=file, hint="see the cleaning log with `reportgen validate`")
        # by day (orders' fence is the 99th percentile's time + 365 days: the same but for a
        # line on the fence's day itself)
        wild_after = dt.date(1970, 1, 1) + dt.timedelta(days=int(counts["p99"]) +
                                                         FUTURE_GAP_DAYS)
        is_return = F.col("returned") | F.coalesce(F.col("cancelled"), F.lit(False)) \
            if with_cancelled else F.col("returned")
        levels = [f"{r}_level" for r in MIX_ROLES if getattr(cols, r) is not None]
        usable = typed.where(readable & (F.to_date("ts") <= F.lit(wild_after))).select(
            F.col("customer"),
            (F.col("order") if cols.order else F.to_date("ts").cast("string")).alias(
                "order_key"),
            F.to_date("ts").alias("day"), F.abs("signed_amount").alias("amount"),
            F.abs("signed_qty").alias("qty"), is_return.alias("is_return"),
            *(["discounted"] if cols.discount else []), *levels)
        span = usable.select(F.count(F.lit(1)).alias("n"), F.max("day").alias("last")).first()
        assert span is not None
        n_wild = n_readable - int(span["n"])
        last_day = span["last"]
        for rows, column, what, why in (
                (n_dup, "*", "exact duplicate lines",
                 "the same line twice is one purchase exported twice: counted once"),
                (n_none, cols.customer, f"no customer on {n_none:,} lines "
                 f"({_share(gross_none, gross_all):.1%} of revenue)",
                 "a line without a customer cannot be given to one; it is not imputed"),
                (n_bad_date, cols.date, "not a date" + (f" ({fmt})" if fmt else ""),
                 "unreadable date"),
                (n_bad_amount, cols.amount_text, "no readable amount", "unreadable amount"),
                (n_wild, cols.date, f"after {wild_after:%Y-%m-%d}",
                 "more than a year after nearly every other date: a typing error")):
            if rows:
                log.append(CleaningStep(column, "excluded rows", rows, what, why))
        as_of = cfg.report.as_of or last_day
        n_after = 0
        if as_of < last_day:
            n_after = usable.where(F.col("day") > F.lit(as_of)).count()
        if n_after == int(span["n"]):
            raise InputError(f"no order line on or before as_of {as_of.isoformat()}",
                             file=file, hint="choose a later --as-of")
        if n_after:
            log.append(CleaningStep(cols.date, "excluded rows", n_after,
                                    f"dated after as_of {as_of.isoformat()}",
                                    "a snapshot as of that day cannot know later orders"))
        view = f"rg_usable_{uuid.uuid4().hex[:12]}"
        usable.createOrReplaceTempView(view)
        try:
            customers, orders = _per_customer(spark, view, cols, cfg, as_of, log, size)
        finally:
            spark.catalog.dropTempView(view)
    finally:
        typed.unpersist()
    stats = dataclasses.replace(
        orders.stats, lines=lines, duplicates=n_dup, no_customer=n_none,
        no_customer_revenue_share=_share(gross_none, gross_all), bad_dates=n_bad_date,
        bad_amounts=n_bad_amount, wild_dates=n_wild, after_as_of=n_after)
    return SparkOrders(orders=dataclasses.replace(orders, stats=stats, log=log,
                                                  date_format=fmt),
                       customers=customers, sample_of=stats.customers)


def _per_customer(spark: SparkSession, view: str, cols: OrderColumns, cfg: Config,
                  as_of: dt.date, log: list[CleaningStep], size: int
                  ) -> tuple[DataFrame, Orders]:
    """Every customer's features in Spark and the driver's sample of them, made into
    features by orders._features, as Orders (its stats the whole table's counts of customers;
    the lines' are the caller's), from the aggregates per customer (orders.aggregate's
    query)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    tcfg = cfg.transactions
    params = window_params(as_of, tcfg.window_days)
    extra: dict[str, str] = {}
    mix: dict[str, list[str]] = {}
    for role, query in level_queries(cols, tcfg.top_levels):
        found = spark.sql(_sql(query, view), args={"as_of": as_of, "unknown": "Unknown"})
        levels = [str(r["level"]) for r in found.collect()]
        if len(levels) < 2:
            continue  # one country for everyone says nothing about anyone
        mix[role] = levels
        add_mix(role, levels, params, extra)
    if cols.discount:
        extra["discounted"] = DISCOUNT_AGGREGATE
    columns = ",\n  ".join(f"{sql} AS {name}" for name, sql in {**AGGREGATES, **extra}.items())
    query = f"SELECT customer,\n  {columns}\nFROM ({LINES_SQL})\nGROUP BY customer"
    agg = spark.sql(_sql(query, view), args=params).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        totals = agg.select(
            F.count_if(F.col("orders") == 0).alias("only_returns"),
            F.count_if(F.col("orders") > 0).alias("customers"),
            F.sum(F.when(F.col("orders") > 0, F.col("lines"))).alias("used"),
            F.sum(F.when(F.col("orders") > 0, F.col("gross"))).alias("revenue"),
            F.sum(F.when(F.col("orders") > 0, F.col("return_lines"))).alias("returns"),
            F.count_if((F.col("orders") > 0) & (F.col("net") < 0)).alias("negative_net"),
        ).first()
        assert totals is not None
        n = int(totals["customers"])
        if not n:
            raise InputError("no customer has a purchase on or before as_of "
                             f"{as_of.isoformat()}", hint="choose a later --as-of")
        if totals["only_returns"]:
            log.append(CleaningStep(cols.customer, "excluded customers",
                                    int(totals["only_returns"]),
                                    "only returns or cancellations",
                                    "nothing bought, as far as the data goes: no customer to "
                                    "segment"))
        if totals["negative_net"]:
            log.append(CleaningStep(cols.customer, "set to zero", int(totals["negative_net"]),
                                    "net spend below zero → 0",
                                    "returns of purchases made before the data starts"))
        bought = agg.where(F.col("orders") > 0)
        part = bought if n <= size else \
            bought.sample(fraction=min(1.0, 1.1 * size / n), seed=cfg.segment.random_state) \
            .limit(size)
        drawn = part.orderBy("customer").toArrow().to_pandas(date_as_object=False)
        keys = pd.Index(drawn.pop("customer").astype("string"), name="customer")
        frame, derived, dates = customer_table(drawn, keys, cols, mix, as_of,
                                               tcfg.window_days, log)
        expressions = customer_features(cols, mix, as_of)
        customers = bought.select(F.col("customer").alias(cols.customer),
                                  *[expressions[name].alias(name) for name in derived]) \
            .persist(StorageLevel.MEMORY_AND_DISK)
    finally:
        agg.unpersist()
    stats = LineStats(lines=0, used=int(totals["used"] or 0), customers=n,
                      revenue=float(totals["revenue"] or 0.0),
                      returns=int(totals["returns"] or 0),
                      only_returns=int(totals["only_returns"]),
                      negative_net=int(totals["negative_net"]))
    return customers, Orders(customers=frame, features=derived, dates=dates, columns=cols,
                             as_of=as_of, date_format=None, stats=stats, log=[],
                             excluded=pd.Series([], dtype="string"))


def customer_features(cols: OrderColumns, mix: dict[str, list[str]], as_of: dt.date
                      ) -> dict[str, Column]:
    """orders._features as Spark expressions of the aggregates: the same names and values."""
    from pyspark.sql import functions as F

    at = F.lit(as_of)

    def ratio(num: Column, den: Column) -> Column:
        return num.cast("double") / F.when(den != 0, den.cast("double"))

    def clip01(x: Column) -> Column:
        return F.least(F.greatest(x, F.lit(0.0)), F.lit(1.0))

    orders, gross = F.col("orders"), F.col("gross")
    tenure = F.datediff(at, F.col("first_day")).cast("double")
    recent, before = F.col("spend_recent"), F.col("spend_before")
    out: dict[str, Column] = {
        "recency": F.datediff(at, F.col("last_day")).cast("double"),
        "frequency": orders.cast("double"),
        "one_time": (orders == 1).cast("double"),
        "total_spend": F.greatest(F.col("net"), F.lit(0.0)),
        "tenure_months": tenure / DAYS_PER_MONTH,
        "avg_basket": ratio(gross, orders),
        "items_per_order": ratio(F.col("items") if cols.quantity else F.col("buy_lines"),
                                 orders),
        "days_between_orders": F.coalesce(
            ratio(F.datediff(F.col("last_day"), F.col("first_day")), orders - 1), tenure),
        "active_months": F.col("active_months").cast("double"),
        "spend_last_window": recent.cast("double"),
        "spend_prev_window": before.cast("double"),
        "spend_trend": F.coalesce(ratio(recent - before, F.abs(recent) + F.abs(before)),
                                  F.lit(0.0)),
        "return_share": clip01(F.coalesce(ratio(F.col("returned"), gross), F.lit(0.0))),
    }
    if cols.discount:
        out["deal_share"] = clip01(F.coalesce(ratio(F.col("discounted"), gross), F.lit(0.0)))
    for role, levels in mix.items():
        prefix = "share" if role in ("category", "channel") else role
        for i, level in enumerate(levels):
            out[f"{prefix}_{_slug(level)}"] = F.coalesce(ratio(F.col(f"{role}_{i}"), gross),
                                                         F.lit(0.0))
        out[f"{prefix}_other_{role}"] = F.coalesce(ratio(F.col(f"{role}_other"), gross),
                                                   F.lit(0.0))
    return out


__all__ = ["SparkOrders", "aggregate", "customer_features", "date_span", "exact_ranks",
           "repeat_share", "rfm_columns", "rfm_scores", "rfm_summary", "typed_lines"]
