"""Order lines in, customers out: detect a transaction-level table and aggregate it to one row
per customer as of a date.

A table is order lines when a customer key repeats, every row has a date (or timestamp) and an
amount (or a quantity and a unit price). `[transactions]` pins the columns; otherwise they are
found by name and checked against the values.

What the aggregation does, in order (each step that changes anything is logged):

1. exact duplicate lines (every column equal) are counted once;
2. lines without a customer are left out and counted with their share of revenue (never
   imputed: an order nobody placed cannot be given to a customer);
3. lines whose date or amount cannot be read, dates more than a year after nearly all
   others (typing errors) and lines dated after as_of are left out, with the reason;
4. a line is a return when its quantity or amount is negative, its invoice number is a
   cancelled one ("C536379": a C before the digits) or its status says cancelled, refunded or
   returned; a return counts against net spend (-|amount|) and never as an order;
5. per customer (one SQL query, see AGGREGATES): recency, orders, net spend, tenure, average
   order value, items per order, days between orders, active months, spend in the last
   window against the one before, return share, discounted share, and the revenue share of
   the top categories, channels, stores and countries (the rest pooled as "other");
6. a customer with only returns is left out with that reason; a net spend below zero (returns
   of purchases made before the data starts) is set to zero, and said so; a time span that
   barely varies (every customer joined in one quarter) is left out as a feature.

as_of defaults to the last day in the data; a line at any time of that day is in the data
("13:49 on the last day" is not in the future).

The line table is typed in SQL over the table's own columns (pandas reads only dates and
amounts written as text), then aggregated by a fixed list of SQL aggregates (AGGREGATES), and
the features are ratios of those (_features): an engine that runs SQL (DuckDB here; Spark SQL
at scale) runs it unchanged. DuckDB was measured against pyarrow's group-by on 10 M lines
(scripts/bench_orders.py): see the README for the figures.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import Config, TransactionsConfig
from .errors import ConfigError, InputError
from .report import CleaningStep, OrderLines
from .schema import Schema, as_numbers, normalise

if TYPE_CHECKING:
    import duckdb

# A key repeats when at least this share of the lines belong to a customer seen before.
MIN_REPEAT_SHARE = 0.2
# A column is the date when this share of its values reads as dates.
MIN_DATE_SHARE = 0.9
# A date this many days after nearly every other is a typing error (as in clean.py).
FUTURE_GAP_DAYS = 365
DAYS_PER_MONTH = 30.4375
# Below this many lines the date fence's percentile is computed exactly as pandas does.
EXACT_QUANTILE_BELOW = 100_000
# A time span whose standard deviation is below this share of its mean tells nobody apart.
MIN_SPREAD = 0.1
DETECT_SAMPLE = 5000

# Roles of the line table, in the order they are shown.
ROLES = ("customer", "order", "date", "amount", "quantity", "price", "discount", "status",
         "product", "category", "channel", "store", "country")
MIX_ROLES = ("category", "channel", "store", "country")
# What each role means (the report's data dictionary and `reportgen validate`).
ROLE_TEXT = {
    "customer": "customer key: the lines are aggregated per customer; never a feature",
    "order": "order or invoice number: counts orders, marks cancellations (C…); never a feature",
    "date": "when the order was placed: recency, tenure, gaps, active months, the cut at as_of",
    "amount": "amount of the line: spend, order value, returns",
    "quantity": "items of the line: items per order, returns (negative quantities)",
    "price": "unit price: amount = quantity × price",
    "discount": "discount of the line: the discounted share of spend",
    "status": "status of the line: cancelled, refunded and returned lines are returns",
    "product": "product of the line (not a feature)",
    "category": "product category: the category mix",
    "channel": "sales channel: the channel mix",
    "store": "store or branch: the store mix",
    "country": "country: the country mix",
}

_ID = r"(_?(id|no|nr|num|number|key|code|ref))?"
# Ordered candidates per role: normalised column names (schema.normalise) that may play it.
_NAMES: dict[str, list[str]] = {
    "customer": [rf"^(customer|cust|client|member|buyer|shopper|user|account|kunden|cliente)"
                 rf"{_ID}$", r"^customer_?(id|no|number|key|code)\w*$",
                 r"^(customer|cust|client)_\w+_(id|no|nr|number|key|code)$", r"^(cid|custid)$"],
    "order": [rf"^(order|invoice|transaction|txn|trx|receipt|basket|ticket|bill|sales_order)"
              rf"{_ID}$", r"^(order|invoice)_?\w*_(id|no|number)$"],
    "date": [r"^(order|invoice|purchase|transaction|txn|sale|sales|receipt)_?(date|time|"
             r"timestamp|datetime|dt|day|at)$", r"^(date|datetime|timestamp|time|day|datum|"
             r"fecha|dt)$", r"^(created|ordered|purchased|placed)(_at|_on|_date)?$",
             r"(^|_)(date|datetime|timestamp)($|_)"],
    "amount": [r"^(line_?)?(amount|total|value|revenue|sales|spend|turnover|net|gross|"
               r"subtotal|umsatz|betrag|importe)(_\w+)?$", r"(^|_)(amount|revenue|sales|"
               r"dollar_value|value|total)($|_)", r"^(price_?total|total_?price|line_?total)$"],
    "quantity": [r"^(quantity|qty|units|items|pieces|menge|anzahl|cantidad)(_\w+)?$",
                 r"(^|_)(quantity|qty)($|_)", r"^(number|num|no|count)_of_\w+$"],
    "price": [r"^(unit_?price|price_?(per_)?unit|price_?each|unit_?cost|price|preis|precio)$"],
    "discount": [r"(discount|rebate|markdown|coupon|promo|rabatt)"],
    "status": [r"^(order_?|line_?)?(status|state_of_order)$", r"(^|_)(refund|return|cancel)"],
    "product": [r"^(stock_?code|sku|product|article|item|artikel)" + _ID + "$",
                r"^(product|item)_?(name|title)$", r"^description$"],
    "category": [r"^(product_?|item_?)?(category|sub_?category|department|dept|family|"
                 r"genre|product_?line|product_?group|kategorie|categoria)$"],
    "channel": [r"^(sales_?)?(channel|platform|medium|source|kanal|canal)$"],
    "store": [r"^(store|shop|branch|outlet|location|filiale|tienda)" + _ID + "$",
              r"^(store|shop)_?name$"],
    "country": [r"^(country|nation|land|pais|country_?name|country_?code)$"],
}
# Date columns that are not when the order was placed.
_NOT_ORDER_DATE = re.compile(r"ship|deliver|due|return|refund|dispatch|birth|signup|sign_up|"
                             r"join|regist|expir|cancel")
# A cancelled invoice: a C right before the digits ("C536379"), as shop systems write them.
_CANCELLED = r"^[Cc]\d"
_RETURN_STATUS = r"(?i)cancel|refund|return|storn|void|rejected|annul"


@dataclass(frozen=True)
class OrderColumns:
    """Which column of the line table plays which role (None: the table has none)."""

    customer: str
    date: str
    order: str | None = None
    amount: str | None = None
    quantity: str | None = None
    price: str | None = None
    discount: str | None = None
    status: str | None = None
    product: str | None = None
    category: str | None = None
    channel: str | None = None
    store: str | None = None
    country: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # role -> why this column

    def roles(self) -> dict[str, str]:
        """role -> column, for the roles the table has."""
        return {r: getattr(self, r) for r in ROLES if getattr(self, r) is not None}

    @property
    def amount_text(self) -> str:
        return self.amount or f"{self.quantity} × {self.price}"


@dataclass(frozen=True)
class Derived:
    """A customer feature made from the lines, and how (for the report's dictionary)."""

    label: str
    unit: str  # money, share, count, days, months, number
    group: str  # value, engagement, product_mix, channel_mix, profile
    description: str
    level: str = ""  # for a mix share: the level's name
    clock: str = ""  # grows one-for-one with the calendar in this unit (FeatureMeta.clock)


@dataclass(frozen=True)
class LineStats:
    lines: int  # rows of the table
    used: int  # lines aggregated
    customers: int  # customers with at least one purchase, as of as_of
    revenue: float  # gross amount of the purchase lines used
    duplicates: int = 0
    no_customer: int = 0
    no_customer_revenue_share: float = 0.0  # of the gross revenue of all readable lines
    bad_dates: int = 0
    bad_amounts: int = 0
    wild_dates: int = 0
    after_as_of: int = 0
    returns: int = 0  # return / cancellation lines used
    only_returns: int = 0  # customers left out: nothing but returns
    negative_net: int = 0  # customers whose net spend was set to zero


@dataclass(frozen=True)
class Orders:
    """One row per customer, as of as_of, and what the aggregation did."""

    customers: pd.DataFrame  # index: customer key (text), sorted; columns: FEATURES + mix
    features: dict[str, Derived]  # column -> how it was derived
    dates: pd.DataFrame  # index as customers: first_order, last_order (datetime64)
    columns: OrderColumns
    as_of: dt.date
    date_format: str | None  # format the dates were read with (None: typed or yyyymmdd)
    stats: LineStats
    log: list[CleaningStep]
    excluded: pd.Series  # customer key -> reason, for customers left out

    def method_line(self) -> str:
        """'28,492 order lines of 1,051 customers, aggregated to customers as of 2010-12-13'."""
        s = self.stats
        return (f"{s.used:,} order lines of {s.customers:,} customers, aggregated to customers "
                f"as of {self.as_of.isoformat()}")

    def table(self) -> tuple[pd.DataFrame, Schema]:
        """The customer table the usual stages run on: the key (named as the table's customer
        column) and the features, one row per customer; with its schema."""
        key = self.columns.customer
        frame = self.customers.reset_index(names=key)
        roles = {key: "id", **{f: "numeric" for f in self.features}}
        notes = {key: "customer key of the order lines",
                 **{f: d.description for f, d in self.features.items()}}
        return frame, Schema(roles=roles, notes=notes)

    def left_out(self) -> pd.DataFrame:
        """The customers left out (only returns), keyed like table(), for segments.csv."""
        return pd.DataFrame({self.columns.customer: self.excluded.index.astype("string")})

    def summary(self) -> OrderLines:
        s = self.stats
        return OrderLines(
            method=self.method_line(), lines=s.lines, lines_used=s.used,
            customers=s.customers + s.only_returns,
            columns={**self.columns.roles(), "amount": self.columns.amount_text},
            revenue=s.revenue, no_customer_lines=s.no_customer,
            no_customer_revenue_share=s.no_customer_revenue_share,
            duplicate_lines=s.duplicates, return_lines=s.returns, after_as_of=s.after_as_of,
            only_returns=s.only_returns)


# detection -------------------------------------------------------------------------------

def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= DETECT_SAMPLE:
        return frame
    # Evenly spread rows, not the first ones: exports are often sorted by date or customer.
    step = len(frame) / DETECT_SAMPLE
    return frame.iloc[(np.arange(DETECT_SAMPLE) * step).astype(int)]


def _is_numeric(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return False
    if pd.api.types.is_numeric_dtype(s):
        return True
    values = s.dropna()
    return bool(len(values)) and as_numbers(values).notna().mean() >= 0.9


def _yyyymmdd(s: pd.Series) -> bool:
    """Integers like 19970101 (CDNOW's dates)."""
    v = pd.to_numeric(s.dropna(), errors="coerce")
    if not len(v) or v.isna().any() or (v != v.round()).any():
        return False
    return bool(v.between(19000101, 22001231).all())


def date_format_of(s: pd.Series, column: str, file: str | None, fmt: str | None = None
                   ) -> str | None:
    """How to read the column's dates: None for a datetime column, "%Y%m%d" for integers
    like 19970101, else the configured format or the one the values decide."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return None
    if pd.api.types.is_numeric_dtype(s):
        if _yyyymmdd(s):
            return "%Y%m%d"
        raise InputError("the order dates are numbers, not dates", column=column, file=file,
                         hint="set [transactions] date to the date column")
    if fmt:
        return fmt
    from .clean import infer_date_format

    return infer_date_format(s, column, file)


def _reads_as_dates(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.notna().mean() >= MIN_DATE_SHARE
    if pd.api.types.is_numeric_dtype(s):
        return _yyyymmdd(s) and s.notna().mean() >= MIN_DATE_SHARE
    text = s.dropna().astype(str).str.strip()
    if not len(text) or not text.str.match(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?$"
                                           ).mean() > 0.9:
        return False
    try:
        date_format_of(s, "", None)
    except InputError as exc:
        return "ambiguous" in exc.message  # dates all the same, the format is for the user
    return True


def _fits(role: str, s: pd.Series) -> bool:
    values = s.dropna()
    if not len(values):
        return False
    if role == "date":
        return _reads_as_dates(s)
    if role in ("amount", "quantity", "price", "discount"):
        return _is_numeric(s)
    if role in MIX_ROLES:
        return 2 <= values.nunique() <= max(50, int(0.01 * len(values)))
    return True


def _find(role: str, frame: pd.DataFrame, sample: pd.DataFrame, taken: set[str]
          ) -> tuple[str | None, str]:
    norms = {c: normalise(c) for c in frame.columns}
    for pattern in _NAMES[role]:
        found = [c for c in frame.columns if c not in taken and re.search(pattern, norms[c])]
        if role == "date":
            found.sort(key=lambda c: bool(_NOT_ORDER_DATE.search(norms[c])))
        for column in found:
            if role == "date" and _NOT_ORDER_DATE.search(norms[column]) and len(found) > 1:
                continue
            if _fits(role, sample[column]):
                return column, f"name matches {role}"
    return None, ""


def _repeat_share(s: pd.Series) -> float:
    """Share of the lines whose customer was seen on an earlier line."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:  # Arrow counts distinct text keys without making a Python object of each
        keys = pa.array(s, from_pandas=True)
        n, distinct = pc.count(keys).as_py(), pc.count_distinct(keys).as_py()
    except (pa.ArrowException, TypeError):
        values = s.dropna()
        n, distinct = len(values), values.nunique()
    return 1.0 - distinct / n if n else 0.0


def detect(frame: pd.DataFrame, tcfg: TransactionsConfig, file: str | None = None,
           repeat: Callable[[str], float] | None = None) -> OrderColumns | None:
    """The columns of an order-line table, or None when the rows are customers.

    With rows = "orders" a table that lacks a customer, a date or an amount is an error that
    says which; with rows = "customers" the table is never aggregated. repeat: the share of
    lines whose customer was seen before, of a column, measured on the whole table when
    frame is a sample of lines (the Spark engine's), where it would be understated.
    """
    if tcfg.rows == "customers":
        return None
    forced = tcfg.rows == "orders"
    pinned = {r: getattr(tcfg, r) for r in ROLES if getattr(tcfg, r) is not None}
    for role, column in pinned.items():
        if column not in frame.columns:
            close = difflib.get_close_matches(column, list(map(str, frame.columns)), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "check [transactions]"
            raise ConfigError(f"transactions.{role} names {column!r}, which is not a column",
                              file=file, hint=hint)
    sample = _sample(frame)
    chosen: dict[str, str] = {}
    notes: dict[str, str] = {}
    for role, column in pinned.items():
        chosen[role], notes[role] = column, "set in the config"
    taken = set(chosen.values())
    for role in ROLES:
        if role in chosen:
            continue
        if role == "price" and "amount" in chosen:
            continue  # an amount per line: a unit price adds nothing
        column, why = _find(role, frame, sample, taken)
        if column is not None:
            chosen[role], notes[role] = column, why
            taken.add(column)
    if "amount" in chosen and "price" in chosen and "amount" not in pinned:
        # "total_price" next to "unit_price": the amount is the line total, as named
        chosen.pop("price")
    missing = [r for r in ("customer", "date") if r not in chosen]
    if "amount" not in chosen and not ("quantity" in chosen and "price" in chosen):
        missing.append("amount (or quantity and price)")
    if missing:
        if forced or pinned:
            raise ConfigError(f"order lines need a customer, a date and an amount: no "
                              f"{' and no '.join(missing)} column found", file=file,
                              hint="name them in [transactions]")
        return None
    share = repeat(chosen["customer"]) if repeat is not None else \
        _repeat_share(frame[chosen["customer"]])
    if share < MIN_REPEAT_SHARE and not forced and "customer" not in pinned:
        return None  # every customer once (or nearly): a customer table with a date
    notes["customer"] = notes.get("customer", "") + \
        f"; {share:.0%} of lines belong to a customer seen before"
    return OrderColumns(**chosen, notes=notes)


def date_span(frame: pd.DataFrame, cols: OrderColumns, cfg: Config, file: str | None = None
              ) -> tuple[dt.date, dt.date]:
    """The first and last day of the order lines (of those with a readable date)."""
    raw = frame[cols.date]
    fmt = date_format_of(raw, cols.date, file, cfg.input.date_format)
    if fmt is None:
        when = pd.to_datetime(raw, errors="coerce")
    elif fmt == "%Y%m%d" and pd.api.types.is_numeric_dtype(raw):
        when = pd.to_datetime(raw.astype("Int64").astype("string"), format=fmt, errors="coerce")
    else:
        when = pd.to_datetime(raw.astype("string").str.strip(), format=fmt, errors="coerce")
    when = when.dropna()
    if when.empty:
        raise InputError("no order line has a readable date", column=cols.date, file=file)
    valid = when[when <= when.quantile(0.99) + pd.Timedelta(days=FUTURE_GAP_DAYS)]
    return valid.min().date(), valid.max().date()


# the line table ------------------------------------------------------------------------------

def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _exact_duplicates(frame: pd.DataFrame, candidates: np.ndarray) -> np.ndarray:
    """Of the rows whose hash repeats, the ones equal in every column to an earlier row."""
    if not len(candidates):
        return candidates
    candidates = np.sort(np.asarray(candidates, dtype=np.int64))
    return candidates[frame.iloc[candidates].duplicated(keep="first").to_numpy()]


def _key_sql(s: pd.Series, column: str) -> str:
    """SQL for a key column as text: trimmed, blank → NULL; whole floats (17850.0, as a
    column with blanks reads) lose the '.0'."""
    if pd.api.types.is_float_dtype(s):
        v = s.dropna()
        if bool((v == v.round()).all()) and bool((v.abs() < 2**53).all()):
            return f"CAST(CAST({column} AS BIGINT) AS VARCHAR)"
        return f"CAST({column} AS VARCHAR)"
    if pd.api.types.is_numeric_dtype(s):
        return f"CAST({column} AS VARCHAR)"
    return f"nullif(trim(CAST({column} AS VARCHAR)), '')"


def _source(frame: pd.DataFrame, cols: OrderColumns, cfg: Config, file: str | None,
            prefix: str = "_") -> tuple[dict[str, pd.Series | np.ndarray], dict[str, str],
                                        str | None]:
    """The columns the line table is made of (the table's own where their type is right,
    read by pandas where they are text: dates in a Python format, '$1,234.50'), named
    <prefix><role>, and the SQL that types each canonical column from them."""
    src: dict[str, pd.Series | np.ndarray] = {f"{prefix}row": np.arange(len(frame),
                                                                         dtype=np.int64)}
    sql: dict[str, str] = {}
    for role in ("customer", "order", *MIX_ROLES, "status"):
        column = getattr(cols, role)
        if column is not None:
            src[f"{prefix}{role}"] = frame[column]
            sql[role] = _key_sql(frame[column], _quote(f"{prefix}{role}"))
    raw_date = frame[cols.date]
    fmt = date_format_of(raw_date, cols.date, file, cfg.input.date_format)
    when = _quote(f"{prefix}when")
    if fmt is None:
        src[f"{prefix}when"] = raw_date.astype("datetime64[ns]")
        sql["when"] = when
    elif fmt == "%Y%m%d" and pd.api.types.is_numeric_dtype(raw_date):
        src[f"{prefix}when"] = raw_date
        sql["when"] = f"try_strptime(CAST(CAST({when} AS BIGINT) AS VARCHAR), '%Y%m%d')"
    else:
        src[f"{prefix}when"] = pd.to_datetime(raw_date.astype("string").str.strip(), format=fmt,
                                              errors="coerce").astype("datetime64[ns]")
        sql["when"] = when
    for role in ("amount", "quantity", "price", "discount"):
        column = getattr(cols, role)
        if column is not None:
            s = frame[column]
            numbers = s if pd.api.types.is_numeric_dtype(s) and not \
                pd.api.types.is_bool_dtype(s) else as_numbers(s)
            src[f"{prefix}{role}"] = numbers
            name = _quote(f"{prefix}{role}")
            sql[role] = f"CASE WHEN isfinite({name}) THEN CAST({name} AS DOUBLE) END"
    if cols.amount is None:
        sql["amount"] = f"({sql['quantity']}) * ({sql['price']})"
    return src, sql, fmt


def _arrow_source(columns: dict[str, pd.Series | np.ndarray]) -> object:
    """The columns as one Arrow table for DuckDB to scan: each column converted on its own
    (numbers and Arrow text without a copy, NaN and NaT as nulls, which the SQL reads as
    missing either way). A pandas frame of them would first copy every column of one type
    into one block: 1.4 s and ~0.5 GB more at 10 M lines. A column Arrow cannot type (an
    object column of mixed Python types, as Excel gives) falls back to that frame."""
    import pyarrow as pa

    try:
        return pa.table({name: pa.Array.from_pandas(values) for name, values in columns.items()})
    except (pa.ArrowException, TypeError, ValueError):
        return pd.DataFrame(columns, copy=False)


def _prefix(frame: pd.DataFrame) -> str:
    """A prefix no column of the table starts with, for the line table's own columns."""
    prefix = "_rg_"
    while any(str(c).startswith(prefix) for c in frame.columns):
        prefix = "_" + prefix
    return prefix


def _first_row(con: duckdb.DuckDBPyConnection, where: str,
               params: dict[str, object] | None = None, table: str = "typed") -> int:
    """Row number (as a spreadsheet shows it: header = 1) of the first line that matches."""
    found = con.execute(f"SELECT min(_row) FROM {table} WHERE {where}", params).fetchone()
    return int(found[0]) + 2 if found and found[0] is not None else 0


@dataclass
class _Lines:
    """The typed line table, as a DuckDB view `lines` over the registered source."""

    con: duckdb.DuckDBPyConnection
    fmt: str | None
    log: list[CleaningStep]
    stats: LineStats
    last_day: dt.date
    usable: int  # lines the snapshots may aggregate
    levels: dict[str, list[str]]  # mix role -> level names (<role>_level is an index into it)
    first_day: dt.date  # of the usable lines


def _level_codes(con: duckdb.DuckDBPyConnection, values: pd.Series | np.ndarray, sql: str,
                 column: str) -> tuple[np.ndarray, list[str]]:
    """Each line's level as a code into the sorted level names (the distinct values of
    coalesce(sql, 'Unknown'), sql typing the column named ``column``), and the names."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.DataFrame({"_i": np.arange(len(uniques)), column: uniques})
    con.register("distinct_levels", distinct)
    try:
        typed = [str(v) for (v,) in con.execute(
            f"SELECT coalesce({sql}, 'Unknown') FROM distinct_levels ORDER BY _i").fetchall()]
    finally:
        con.unregister("distinct_levels")
    names = sorted({*typed, "Unknown"})
    index = {name: i for i, name in enumerate(names)}
    # code -1 (a missing value) is the last entry: Unknown
    lookup = np.array([index[t] for t in typed] + [index["Unknown"]], dtype=np.int16)
    return lookup[codes], names


def line_table(frame: pd.DataFrame, cols: OrderColumns, cfg: Config, file: str | None = None,
               con: duckdb.DuckDBPyConnection | None = None) -> _Lines:
    """The typed lines in DuckDB: the view `usable` (customer, order_key, day, amount ≥ 0,
    qty ≥ 0, is_return, discounted, <role>_level, _row) holds the lines that can be
    aggregated, the view `typed` every row, both over one table the table's columns were
    typed into in one scan; with what reading left out and why. The as_of cut is the
    aggregation's."""
    import duckdb

    con = con or _connect()
    log: list[CleaningStep] = []
    n_lines = len(frame)
    prefix = _prefix(frame)
    src, sql, fmt = _source(frame, cols, cfg, file, prefix)
    # Mix levels as small integer codes (two bytes a line instead of the text): the level
    # names are the column's distinct trimmed texts, blanks "Unknown", in sorted order, so
    # a code orders as its name; the text is typed once per distinct value.
    names: dict[str, list[str]] = {}
    for r in MIX_ROLES:
        if r in sql:
            src[f"{prefix}{r}"], names[r] = _level_codes(con, src[f"{prefix}{r}"], sql[r],
                                                         f"{prefix}{r}")
    levels = "".join(f",\n  {_quote(f'{prefix}{r}')} AS {r}_level" for r in names)
    discount = f",\n  coalesce(abs({sql['discount']}) > 0, FALSE) AS discounted" \
        if cols.discount else ""
    returns = [f"coalesce({sql['amount']} < 0, FALSE)"]
    if cols.quantity:
        returns.append(f"coalesce({sql['quantity']} < 0, FALSE)")
    if cols.status:
        returns.append(f"coalesce(regexp_matches({sql['status']}, '{_RETURN_STATUS}'), FALSE)")
    if cols.order is not None:
        # the order number itself is not kept: its hash counts orders
        order = f"""hash({sql['order']}) AS order_key,
  regexp_matches({sql['order']}, '{_CANCELLED}') AS cancelled"""
    else:
        order = "NULL::UBIGINT AS order_key, NULL::BOOLEAN AS cancelled"
    # The lines typed once, in one scan of the table (every later query reads these typed
    # columns, not the text): with each row's hash over all of the table's columns for the
    # exact-duplicate search.
    typed = f"""CREATE OR REPLACE TEMP TABLE typed_lines AS SELECT {prefix}row AS _row,
  {{hash}} AS row_hash, FALSE AS _dup,
  {sql['customer']} AS customer,
  {order},
  CAST({sql['when']} AS TIMESTAMP) AS ts,
  {sql['amount']} AS signed_amount,
  {sql['quantity'] if cols.quantity else '1.0'} AS signed_qty,
  {' OR '.join(returns)} AS returned{discount}{levels}
FROM source"""
    everything = ", ".join(_quote(c) for c in frame.columns)
    try:
        con.register("source", _arrow_source({**{c: frame[c] for c in frame.columns}, **src}))
        con.execute(typed.format(hash=f"hash({everything})"))
    except duckdb.Error:  # e.g. an object column of mixed Python types (Excel): pandas hashes
        src[f"{prefix}hash"] = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        con.register("source", pd.DataFrame(src, copy=False))
        con.execute(typed.format(hash=_quote(f"{prefix}hash")))
    finally:
        con.unregister("source")
    # 1. exact duplicates: the rows whose hash repeats, compared in full
    # (numpy sorts the hashes: a group-by of as many groups as lines costs DuckDB 3× more)
    hashes = np.asarray(con.execute("SELECT row_hash FROM typed_lines").fetchnumpy()["row_hash"])
    hashes.sort()  # in place: the fetched array is ours (no second 80 MB copy at 10 M lines)
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    hashed = np.zeros(0, dtype=np.int64)
    if len(repeated):
        con.register("repeated_hashes", pd.DataFrame({"h": repeated}))
        hashed = np.asarray(con.execute(
            "SELECT _row FROM typed_lines WHERE row_hash IN (SELECT h FROM repeated_hashes)"
        ).fetchnumpy()["_row"])
        con.unregister("repeated_hashes")
    duplicates = _exact_duplicates(frame, hashed)
    if len(duplicates):
        con.register("duplicate_rows", pd.DataFrame({"r": duplicates}))
        con.execute("UPDATE typed_lines SET _dup = TRUE WHERE _row IN "
                    "(SELECT r FROM duplicate_rows)")
        con.unregister("duplicate_rows")
    cancelled = "FALSE"
    if cols.order is not None:
        share = con.execute("SELECT avg(CAST(cancelled AS DOUBLE)) FROM typed_lines").fetchone()
        if share and share[0] is not None and share[0] < 0.5:  # "CA-2016-…" is no C
            cancelled = "coalesce(cancelled, FALSE)"
    level_columns = "".join(f", {r}_level" for r in names)
    con.execute(f"""CREATE OR REPLACE TEMP VIEW typed AS SELECT _row, _dup, customer, order_key,
  ts, signed_amount, signed_qty, returned OR {cancelled} AS is_return
  {', discounted' if cols.discount else ''}{level_columns}
FROM typed_lines""")
    # 2. lines without a customer: counted with their revenue, never imputed; then what
    # cannot be read; then dates far after nearly every other (typing errors).
    base = "NOT _dup"
    readable = f"{base} AND customer IS NOT NULL AND signed_amount IS NOT NULL AND ts IS NOT NULL"
    # One scan of the typed lines for every count.
    counts = con.execute(f"""SELECT
  count(*) FILTER (WHERE _dup),
  count(*) FILTER (WHERE {base} AND customer IS NULL),
  coalesce(sum(abs(signed_amount)) FILTER (WHERE {base} AND NOT is_return), 0),
  coalesce(sum(abs(signed_amount)) FILTER (WHERE {base} AND NOT is_return AND customer IS NULL),
           0),
  count(*) FILTER (WHERE {base} AND customer IS NOT NULL AND ts IS NULL),
  count(*) FILTER (WHERE {base} AND customer IS NOT NULL AND ts IS NOT NULL
                   AND signed_amount IS NULL),
  count(*) FILTER (WHERE {readable}),
  quantile_disc(ts, 0.99) FILTER (WHERE {readable}),
  max(ts) FILTER (WHERE {readable}),
  min(ts) FILTER (WHERE {readable})
FROM typed""").fetchone()
    assert counts is not None
    (n_dup, n_none, gross_all, gross_none, n_bad_date, n_bad_amount, n_readable, p99, latest,
     earliest) = counts
    if n_readable and n_readable < EXACT_QUANTILE_BELOW:
        # The 99th percentile as pandas' quantile(0.99, interpolation="lower") (and clean.py):
        # the date at position floor(0.99 (n - 1)), where DuckDB takes floor(0.99 n); on a
        # large table the two are next to each other.
        q = 0.99 * (n_readable - 1) / n_readable
        found = con.execute(f"SELECT quantile_disc(ts, {q!r}) FROM typed WHERE {readable}"
                            ).fetchone()
        p99 = found[0] if found else p99
    wild_after = (pd.Timestamp(p99) + pd.Timedelta(days=FUTURE_GAP_DAYS)).to_pydatetime() \
        if p99 is not None else dt.datetime(9999, 12, 31)
    # The lines a snapshot may aggregate: only what the aggregates read; order numbers as
    # 64-bit hashes (a collision would have to fall within one customer's orders to change
    # a count).
    order_key = "order_key" if cols.order else "CAST(epoch(CAST(ts AS DATE)) AS UBIGINT)"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW usable AS SELECT _row, customer,
  {order_key} AS order_key, CAST(ts AS DATE) AS day, abs(signed_amount) AS amount,
  abs(signed_qty) AS qty, is_return{', discounted' if cols.discount else ''}{level_columns}
FROM typed WHERE {readable} AND ts <= TIMESTAMP '{wild_after:%Y-%m-%d %H:%M:%S}'""")
    if n_dup:
        log.append(CleaningStep("*", "excluded rows", n_dup,
                                f"exact duplicate lines, first at row {_first_row(con, '_dup')}",
                                "the same line twice is one purchase exported twice: counted "
                                "once"))
    none_share = _share(gross_none, gross_all)
    if n_none:
        first = _first_row(con, "NOT _dup AND customer IS NULL")
        log.append(CleaningStep(cols.customer, "excluded rows", n_none,
                                f"no customer on {n_none:,} lines ({none_share:.1%} of revenue),"
                                f" first at row {first}",
                                "a line without a customer cannot be given to one; it is not "
                                "imputed"))
    if n_bad_date:
        first = _first_row(con, "NOT _dup AND customer IS NOT NULL AND ts IS NULL")
        example = str(frame[cols.date].iloc[first - 2])[:30]
        log.append(CleaningStep(cols.date, "excluded rows", n_bad_date,
                                f"{example!r} is not a date" + (f" ({fmt})" if fmt else "")
                                + f", first at row {first}", "unreadable date"))
    if n_bad_amount:
        first = _first_row(con, "NOT _dup AND customer IS NOT NULL AND ts IS NOT NULL "
                                "AND signed_amount IS NULL")
        log.append(CleaningStep(cols.amount_text, "excluded rows", n_bad_amount,
                                f"no readable amount, first at row {first}",
                                "unreadable amount"))
    if latest is None or latest <= wild_after:  # no typo (the usual case): no scan
        n_wild, last = 0, latest
    else:
        found = con.execute("SELECT count(*), max(day) FROM usable").fetchone()
        assert found is not None
        n_wild, last = n_readable - int(found[0]), found[1]
    if n_wild:
        wild = f"{readable} AND ts > $wild"
        shown = con.execute(f"SELECT list(DISTINCT CAST(ts AS DATE) ORDER BY 1) FROM typed "
                            f"WHERE {wild}", {"wild": wild_after}).fetchone()
        days = ", ".join(d.isoformat() for d in (shown[0] if shown else [])[:4])
        log.append(CleaningStep(cols.date, "excluded rows", n_wild,
                                f"{days} (first at row "
                                f"{_first_row(con, wild, {'wild': wild_after})})",
                                "more than a year after nearly every other date: a typing "
                                "error"))
    if last is None:
        raise InputError("no order line has a customer, a readable date and an amount",
                         file=file, hint="see the cleaning log with `reportgen validate`")
    stats = LineStats(lines=n_lines, used=0, customers=0, revenue=0.0, duplicates=n_dup,
                      no_customer=n_none, no_customer_revenue_share=none_share,
                      bad_dates=n_bad_date, bad_amounts=n_bad_amount, wild_dates=n_wild)
    return _Lines(con=con, fmt=fmt, log=log, stats=stats, last_day=pd.Timestamp(last).date(),
                  usable=n_readable - n_wild, levels=names,
                  first_day=pd.Timestamp(earliest).date())


# aggregation -----------------------------------------------------------------------------

# The lines a snapshot aggregates: usable and dated on or before as_of, with the net amount
# of each line.
LINES_SQL = """SELECT *, CASE WHEN is_return THEN -amount ELSE amount END AS net
FROM usable WHERE day <= $as_of"""

# Aggregates per customer: name -> SQL aggregate over LINES_SQL. $recent and $before are the
# first days of the recent spend window and of the one before it.
AGGREGATES: dict[str, str] = {
    "orders": "count(DISTINCT order_key) FILTER (WHERE NOT is_return)",
    "net": "sum(net)",
    "gross": "coalesce(sum(amount) FILTER (WHERE NOT is_return), 0)",
    "returned": "coalesce(sum(amount) FILTER (WHERE is_return), 0)",
    "return_lines": "count(*) FILTER (WHERE is_return)",
    "lines": "count(*)",
    "items": "coalesce(sum(qty) FILTER (WHERE NOT is_return), 0)",
    "buy_lines": "count(*) FILTER (WHERE NOT is_return)",
    "first_day": "min(day) FILTER (WHERE NOT is_return)",
    "last_day": "max(day) FILTER (WHERE NOT is_return)",
    "active_months": "count(DISTINCT date_trunc('month', day)) FILTER (WHERE NOT is_return)",
    "spend_recent": "coalesce(sum(net) FILTER (WHERE day >= $recent), 0)",
    "spend_before": "coalesce(sum(net) FILTER (WHERE day >= $before AND day < $recent), 0)",
}
# active_months without a distinct count (DuckDB runs each distinct aggregate as a group-by of
# its own, joined back): a bit per month since $first_month, when the months fit in 64 bits.
ACTIVE_MONTHS_BITS = ("coalesce(bit_count(bit_or(CAST(1 AS UBIGINT) << CAST(12 * year(day) + "
                      "month(day) - $first_month AS INTEGER)) FILTER (WHERE NOT is_return)), 0)")
DISCOUNT_AGGREGATE = "coalesce(sum(amount) FILTER (WHERE NOT is_return AND discounted), 0)"
# The top levels of a mix role by purchase revenue as of $as_of ({role}: one of MIX_ROLES).
LEVELS_SQL = """SELECT {role}_level AS level, sum(amount) AS revenue
FROM usable WHERE day <= $as_of AND NOT is_return AND {role}_level <> $unknown
GROUP BY 1 HAVING sum(amount) > 0 ORDER BY 2 DESC, 1 LIMIT {top}"""


def _mix_aggregate(role: str, i: int | None, n: int) -> str:
    """Purchase revenue of level i of a mix role (its code: parameter $<role>_<i>); None:
    the rest."""
    test = f"{role}_level = ${role}_{i}" if i is not None else \
        " AND ".join(f"{role}_level <> ${role}_{j}" for j in range(n))
    return f"coalesce(sum(amount) FILTER (WHERE NOT is_return AND {test}), 0)"


def level_queries(cols: OrderColumns, top: int) -> list[tuple[str, str]]:
    """(role, LEVELS_SQL of it) for each mix role the table has."""
    return [(role, LEVELS_SQL.format(role=role, top=top)) for role in MIX_ROLES
            if getattr(cols, role) is not None]


def window_params(as_of: dt.date, days: int) -> dict[str, object]:
    """The aggregates' dates: as_of, and the first days of the recent spend window and of
    the one before it."""
    recent = as_of - dt.timedelta(days=days - 1)
    return {"as_of": as_of, "recent": recent, "before": recent - dt.timedelta(days=days)}


def add_mix(role: str, values: Sequence[object], params: dict[str, object],
            extra: dict[str, str]) -> None:
    """The aggregates of a mix role's top levels (and of the rest) into extra, the value
    that names each level in the lines (DuckDB's code, Spark's text) into params."""
    params.update({f"{role}_{i}": value for i, value in enumerate(values)})
    extra.update({f"{role}_{i}": _mix_aggregate(role, i, len(values))
                  for i in range(len(values))})
    extra[f"{role}_other"] = _mix_aggregate(role, None, len(values))


def _connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    # The connection reads only the frames handed to it (con.register): no file, URL or
    # extension can be reached from SQL (read_csv, COPY, ATTACH, INSTALL/LOAD, replacement
    # scans of file names), whatever a column name or value put into a query says, and the
    # configuration is locked so no statement can turn that back on.
    con = duckdb.connect(config={"preserve_insertion_order": False,
                                 "enable_external_access": False,
                                 "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    con.execute("SET enable_progress_bar = false")  # it draws on stderr, over our progress
    con.execute("SET lock_configuration = true")
    return con


def aggregate(frame: pd.DataFrame, cols: OrderColumns, cfg: Config, file: str | None = None
              ) -> Orders:
    """One row per customer as of cfg.report.as_of (default: the last day in the data)."""
    tcfg = cfg.transactions
    con = _connect()
    try:
        lines = line_table(frame, cols, cfg, file, con)
        log, stats = lines.log, lines.stats
        as_of = cfg.report.as_of or lines.last_day
        n_after = 0
        if as_of < lines.last_day:  # as_of is the last day unless set: nothing after it
            after = con.execute("SELECT count(*) FROM usable WHERE day > $as_of",
                                {"as_of": as_of}).fetchone()
            n_after = int(after[0]) if after else 0
        if n_after:
            first = _first_row(con, "day > $as_of", {"as_of": as_of}, table="usable")
            log.append(CleaningStep(cols.date, "excluded rows", n_after,
                                    f"dated after as_of {as_of.isoformat()}, first at row "
                                    f"{first}",
                                    "a snapshot as of that day cannot know later orders"))
        if n_after == lines.usable:
            raise InputError(f"no order line on or before as_of {as_of.isoformat()}",
                             file=file, hint="choose a later --as-of")
        params = window_params(as_of, tcfg.window_days)
        extra: dict[str, str] = {}
        mix: dict[str, list[str]] = {}
        for role, query in level_queries(cols, tcfg.top_levels):
            names = lines.levels[role]
            codes = [int(r[0]) for r in con.execute(
                query, {"as_of": as_of, "unknown": names.index("Unknown")}).fetchall()]
            if len(codes) < 2:
                continue  # one country for everyone says nothing about anyone
            levels = [names[c] for c in codes]
            mix[role] = levels
            add_mix(role, codes, params, extra)
        if cols.discount:
            extra["discounted"] = DISCOUNT_AGGREGATE
        aggregates = dict(AGGREGATES)
        first_month = 12 * lines.first_day.year + lines.first_day.month
        if 12 * as_of.year + as_of.month - first_month < 64:
            aggregates["active_months"] = ACTIVE_MONTHS_BITS
            params["first_month"] = first_month
        columns = ",\n  ".join(f"{sql} AS {name}"
                               for name, sql in {**aggregates, **extra}.items())
        query = f"SELECT customer,\n  {columns}\nFROM ({LINES_SQL})\nGROUP BY customer"
        # Arrow to pandas: keys stay Arrow text, dates datetime64 (no Python object a row).
        con.complete()  # the last fetchone() left its result open
        result = con.sql(query + "\nORDER BY customer", params=params).to_arrow_table()
    finally:
        con.close()
    # The keys (sorted by the query: binary order, as pandas sorts text) are set as the
    # index only at the end: every step before is on a plain row number, where a pandas
    # operation on Series indexed by 1 M Arrow strings would build a hash table of them
    # again and again (5 of the 8 s _features took at 10 M lines).
    agg = result.to_pandas(date_as_object=False)
    keys = pd.Index(agg.pop("customer").astype("string"), name="customer")

    only_returns = (agg["orders"] == 0).to_numpy()
    excluded = pd.Series(("only returns or cancellations: " +
                          agg.loc[only_returns, "return_lines"].astype(int).astype(str) +
                          " lines, no purchase").to_numpy(), index=keys[only_returns],
                         dtype="string")
    if only_returns.any():
        log.append(CleaningStep(cols.customer, "excluded customers", int(only_returns.sum()),
                                f"only returns or cancellations, e.g. "
                                f"{_example(keys[only_returns])}",
                                "nothing bought, as far as the data goes: no customer to "
                                "segment"))
    returns_used = int(agg.loc[~only_returns, "return_lines"].sum())
    if only_returns.any():
        agg = agg[~only_returns].reset_index(drop=True)
        keys = keys[~only_returns]
    negative = agg["net"] < 0
    if negative.any():
        log.append(CleaningStep(cols.customer, "set to zero", int(negative.sum()),
                                "net spend below zero → 0",
                                "returns of purchases made before the data starts"))
    customers, derived, dates = customer_table(agg, keys, cols, mix, as_of, tcfg.window_days,
                                               log)
    stats = LineStats(**{**{f.name: getattr(stats, f.name) for f in fields(stats)},
                         "used": int(agg["lines"].sum()), "customers": len(agg),
                         "revenue": float(agg["gross"].sum()),
                         "after_as_of": n_after, "returns": returns_used,
                         "only_returns": int(only_returns.sum()),
                         "negative_net": int(negative.sum())})
    return Orders(customers=customers, features=derived, dates=dates, columns=cols,
                  as_of=as_of, date_format=lines.fmt, stats=stats, log=log, excluded=excluded)


def customer_table(agg: pd.DataFrame, keys: pd.Index, cols: OrderColumns,
                   mix: dict[str, list[str]], as_of: dt.date, window: int,
                   log: list[CleaningStep]) -> tuple[pd.DataFrame, dict[str, Derived],
                                                     pd.DataFrame]:
    """The customers' features from their aggregates (row i of agg is keys[i]), without the
    time spans too narrow to tell anyone apart (logged), and their first and last order."""
    customers, derived = _features(agg, cols, mix, as_of, window)
    for name in _narrow(customers, derived):
        v = customers[name]
        log.append(CleaningStep(name, "ignored feature", 0,
                                f"{derived[name].label.lower()}: {v.min():,.0f} to {v.max():,.0f} "
                                f"{derived[name].unit} for every customer",
                                "too little spread to tell customers apart"))
        customers = customers.drop(columns=name)
        del derived[name]
    customers.index = keys
    dates = pd.DataFrame({"first_order": agg["first_day"].astype("datetime64[ns]").to_numpy(),
                          "last_order": agg["last_day"].astype("datetime64[ns]").to_numpy()},
                         index=keys)
    return customers, derived, dates


def _example(index: pd.Index) -> str:
    shown = [str(v) for v in index[:3]]
    return ", ".join(shown) + (" …" if len(index) > 3 else "")


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den != 0)).astype("float64")


def _slug(text: str) -> str:
    return normalise(text) or "x"


def _features(agg: pd.DataFrame, cols: OrderColumns, mix: dict[str, list[str]],
              as_of: dt.date, window: int) -> tuple[pd.DataFrame, dict[str, Derived]]:
    """Ratios of the aggregates: the customer table, and how each column was derived."""
    at = pd.Timestamp(as_of)
    amount = cols.amount_text
    orders_of = f"distinct {cols.order}" if cols.order else "distinct order days"
    ret = "returns and cancellations (negative quantities or amounts" + \
        (f", cancelled {cols.order}s" if cols.order else "") + \
        (f", {cols.status} cancelled/refunded" if cols.status else "") + ")"
    out: dict[str, pd.Series] = {}
    meta: dict[str, Derived] = {}

    def add(name: str, values: pd.Series, label: str, unit: str, group: str, how: str,
            level: str = "", clock: str = "") -> None:
        out[name] = values.astype("float64")
        meta[name] = Derived(label, unit, group, how, level, clock)

    recency = (at - agg["last_day"].astype("datetime64[ns]")).dt.days
    tenure = (at - agg["first_day"].astype("datetime64[ns]")).dt.days
    add("recency", recency, "Days since last order", "days", "engagement",
        f"days from the last purchase ({cols.date}) to {as_of.isoformat()}, the date the "
        "data is as of")
    add("frequency", agg["orders"], "Orders", "count", "value",
        f"{orders_of} with a purchase" + ("" if cols.order else
                                          " (the table has no order number)"))
    add("one_time", (agg["orders"] == 1).astype("float64"), "One-time buyers", "share",
        "engagement", f"1 for a customer with one order ({orders_of}), else 0: a segment's "
        "mean is its share of one-time buyers")
    add("total_spend", agg["net"].clip(lower=0), "Net spend", "money", "value",
        f"sum of {amount} over all lines, {ret} subtracted; below zero → 0")
    add("tenure_months", tenure / DAYS_PER_MONTH, "Months as a customer", "months",
        "engagement",
        f"months from the first purchase ({cols.date}) to {as_of.isoformat()}", clock="months")
    add("avg_basket", _ratio(agg["gross"], agg["orders"]), "Average order value", "money",
        "value", f"purchase {amount} per order ({orders_of})")
    if cols.quantity:
        add("items_per_order", _ratio(agg["items"], agg["orders"]), "Items per order", "count",
            "value", f"sum of {cols.quantity} of purchases per order")
    else:
        add("items_per_order", _ratio(agg["buy_lines"], agg["orders"]), "Lines per order",
            "count", "value", "purchase lines per order (the table has no quantity)")
    span = (agg["last_day"].astype("datetime64[ns]") -
            agg["first_day"].astype("datetime64[ns]")).dt.days
    gaps = _ratio(span, agg["orders"] - 1)
    add("days_between_orders", gaps.fillna(tenure.astype("float64")), "Days between orders",
        "days", "engagement", "days from the first to the last purchase / (orders − 1); "
        "a one-time buyer: days since that order (the shortest the gap can be)")
    add("active_months", agg["active_months"], "Active months", "count", "engagement",
        "calendar months with a purchase")
    add("spend_last_window", agg["spend_recent"], f"Spend last {window} days", "money", "value",
        f"net {amount} in the {window} days up to {as_of.isoformat()}")
    add("spend_prev_window", agg["spend_before"], f"Spend previous {window} days", "money",
        "value", f"net {amount} in the {window} days before those")
    both = agg["spend_recent"].abs() + agg["spend_before"].abs()
    add("spend_trend", _ratio(agg["spend_recent"] - agg["spend_before"], both).fillna(0.0),
        "Spend trend", "number", "engagement",
        f"(last {window} days − previous {window}) ÷ the two together: +1 all in the last "
        f"{window} days, −1 all before them, 0 level or no spend")
    if (agg["return_lines"] > 0).any():  # no return in the data: nothing to tell apart
        add("return_share", _ratio(agg["returned"], agg["gross"]).fillna(0.0).clip(0, 1),
            "Returned share", "share", "engagement",
            f"{ret}: their amount as a share of purchases")
    if "discounted" in agg:
        add("deal_share", _ratio(agg["discounted"], agg["gross"]).fillna(0.0).clip(0, 1),
            "Discounted share", "share", "engagement",
            f"purchases with {cols.discount} above 0, as a share of purchases")
    groups = {"category": "product_mix", "channel": "channel_mix", "store": "channel_mix",
              "country": "profile"}
    for role, levels in mix.items():
        column = getattr(cols, role)
        prefix = "share" if role in ("category", "channel") else role
        for i, level in enumerate(levels):
            add(f"{prefix}_{_slug(level)}", _ratio(agg[f"{role}_{i}"], agg["gross"]).fillna(0),
                f"{level} share" if role != "country" else f"In {level}", "share",
                groups[role], f"purchases with {column} = {level}, as a share of purchases",
                level)
        if (agg[f"{role}_other"] > 0).any():
            add(f"{prefix}_other_{role}", _ratio(agg[f"{role}_other"], agg["gross"]).fillna(0),
                f"Other {role} share", "share", groups[role],
                f"purchases of the other {column} levels (beyond the top {len(levels)} by "
                "revenue), as a share of purchases", "other")
    customers = pd.DataFrame(out, index=agg.index)
    return customers, meta


def _narrow(customers: pd.DataFrame, meta: dict[str, Derived]) -> list[str]:
    """Time spans that barely vary (every CDNOW customer joined in one quarter: months as
    a customer 15-18 for all): a segment a fraction of a month apart would earn "new" or
    "long-standing" from a z-score alone."""
    out = []
    for name, d in meta.items():
        if d.unit in ("days", "months"):
            v = customers[name]
            mean = float(v.mean())
            if mean > 0 and float(v.std()) < MIN_SPREAD * mean:
                out.append(name)
    return out


def describe_columns(cols: OrderColumns) -> list[str]:
    """One line per role, for `reportgen validate`."""
    lines = []
    for role, column in cols.roles().items():
        lines.append(f"  {role:<9} {column}  ({cols.notes.get(role, '')})")
    if not cols.amount:
        lines.append(f"  amount    {cols.quantity} × {cols.price}")
    return lines


__all__ = ["AGGREGATES", "Derived", "LineStats", "OrderColumns", "Orders", "aggregate",
           "date_format_of", "detect", "describe_columns", "line_table"]
