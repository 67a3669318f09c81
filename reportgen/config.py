"""The configuration: one typed object, loaded from one TOML file, every setting with its help.

CLI options override the file (``Config.with_overrides``). Unknown keys and wrong types are
ConfigErrors naming the key and, for a typo, the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import re
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


def _setting(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        factory = default.copy
        return field(default_factory=factory, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class InputConfig:
    delimiter: str | None = _setting(
        None, "Field delimiter; empty = sniffed (comma, tab, semicolon, pipe, or whitespace-"
        "aligned columns); \" \" = fields separated by runs of spaces."
    )
    encoding: str | None = _setting(None, "Text encoding; empty = UTF-8, falling back to CP1252.")
    date_format: str | None = _setting(
        None, "strftime format of date columns, e.g. '%d-%m-%Y'; empty = inferred from the values."
    )
    sheet: str | None = _setting(None, "Worksheet of an .xlsx workbook; empty = the first sheet.")
    table: str | None = _setting(
        None, "Database table (or schema.table) when SOURCE is a SQLAlchemy URL (or --table)."
    )
    query: str | None = _setting(
        None, "SQL query when SOURCE is a SQLAlchemy URL, instead of a table (or --query)."
    )
    source: str | None = _setting(
        None, "The customer table (a file or a database URL) `reportgen run` reads when it is "
        "given no SOURCE; a relative path is read from the config file's folder."
    )


@dataclass(frozen=True)
class SegmentConfig:
    k: int | None = _setting(None, "Force the number of segments; empty = chosen by the k search.",
                             range=(2, 30))
    k_min: int = _setting(
        3, "Smallest k the search considers (2 segments is a value split, not a segmentation).",
        range=(2, 30))
    k_max: int = _setting(10, "Largest k the search considers.", range=(2, 30))
    random_state: int = _setting(42, "Seed for every random choice: k-means, samples, projections.",
                                 range=(0, 2**32 - 1))
    min_segment_share: float = _setting(
        0.05, "A k whose smallest segment holds less than this share of customers is not eligible.",
        range=(0.0, 0.5))
    silhouette_sample: int = _setting(
        2000, "Customers sampled to compute silhouette per k (exact silhouette is quadratic;"
        " 2,000 lands within 0.01 of the exact score on the sample; the distances of every pair"
        " are held in memory, 800 MB at 10,000).", range=(100, 10_000))
    search_sample: int = _setting(
        50000, "Customers sampled for the k search on large tables; the final model uses everyone.",
        range=(100, 1_000_000))
    n_init: int = _setting(4, "k-means restarts per k (the best of them is kept).",
                           range=(1, 100))
    algorithm: str = _setting(
        "kmeans",
        "kmeans, minibatch (MiniBatchKMeans), gmm (Gaussian mixture), ward (hierarchical, on a "
        "sample) or kprototypes (numbers and categories; needs the kmodes package).",
    )
    large_table: int = _setting(
        200000,
        "Above this many customers kmeans is fitted on search_sample customers and the rest are "
        "assigned to the nearest centre (measured faster and closer to a full fit than minibatch).",
        range=(1_000, 1_000_000_000))
    fit_sample: int = _setting(
        5000, "Customers ward and kprototypes are fitted on (they do not scale to large tables: "
        "Ward's memory grows with the square); the rest go to the nearest segment.",
        range=(100, 20_000))
    scaling: str = _setting(
        "auto",
        "Scaling of every model feature: auto (log1p on skewed money and counts, then standard), "
        "standard, robust (median and interquartile range) or log1p (then standard).",
    )
    feature_scaling: dict[str, str] = _setting(
        {}, "Per-feature scaling that overrides 'scaling': feature name = standard, robust, log1p."
    )
    stability_runs: int = _setting(
        10, "Refits on bootstrap samples to measure how stable each segment is; 0 = skip.",
        range=(0, 100))
    stability_sample: int = _setting(
        20000, "Customers drawn (with replacement) for each stability refit.",
        range=(100, 1_000_000))


@dataclass(frozen=True)
class GatesConfig:
    fail_under_silhouette: float | None = _setting(
        None, "CI gate: exit code 3 when the segmentation's silhouette is below this.",
        range=(-1.0, 1.0))
    min_segment_share: float | None = _setting(
        None, "CI gate: exit code 3 when the smallest segment holds less than this share.",
        range=(0.0, 1.0))
    min_stability: float | None = _setting(
        None, "CI gate: exit code 3 when any segment's stability (Jaccard, 0-1) is below this.",
        range=(0.0, 1.0))


SERIES_POLICIES = ("keep", "refit")


@dataclass(frozen=True)
class SeriesConfig:
    name: str = _setting(
        "", "The series the runs belong to (or --series): its runs go in OUT/<name>/ and each is "
        "compared with the series' previous run; empty = the output root's own series.")
    policy: str = _setting(
        "keep", "keep: assign this period's customers with the previous run's model (its "
        "cleaning, scaling and centres), so segment ids, names and colours stay and drift is "
        "measured; refit (or --refit): fit new segments and match them to the previous ones. "
        "The first run of a series always fits.")
    fail_on_drift: bool = _setting(
        False, "CI gate (or --fail-on-drift): exit code 3 when the model features drifted past "
        "the thresholds (a population stability index of 0.25, or customers 20% further from "
        "their segment's centre than last period).")


@dataclass(frozen=True)
class HistoryConfig:
    url: str | None = _setting(
        None, "Database of the series' history as a SQLAlchemy URL (PostgreSQL for a team; or "
        "--history); empty = OUT/history.sqlite. Passwords come from the environment: ${VAR} in "
        "the URL or PGPASSWORD.")


@dataclass(frozen=True)
class EmailConfig:
    sender: str | None = _setting(
        None, "From address of `reportgen email` (or --from); empty = $REPORTGEN_MAIL_FROM, "
        "else reportgen@localhost.")
    to: list[str] = _setting(
        [], "Recipients `reportgen email` sends to when it is given no --to.")


@dataclass(frozen=True)
class FeaturesConfig:
    model: list[str] = _setting(
        [], "Features the clustering uses; empty = sensible defaults for the column roles present."
    )


@dataclass(frozen=True)
class ReportConfig:
    title: str = _setting("Customer segmentation", "Report title.")
    company: str = _setting("", "Company name shown on the cover and in the email.")
    as_of: dt.date | None = _setting(
        None, "Date at which ages and tenures are computed; empty = latest date in the data.",
        range=(dt.date(1900, 1, 1), dt.date(2199, 12, 31)))
    period: str | None = _setting(None, "Period label, e.g. 'June 2014'; empty = month of as_of.")
    currency: str = _setting("$", "Currency symbol for money amounts.")
    business: str = _setting(
        "auto", "Business type: auto (inferred from the columns), shop, grocery, cards, "
        "deposits, telecom, wholesale or generic. It chooses the value measure, the persona "
        "words and the playbook rules that may fire.")
    formats: list[str] = _setting(
        ["html", "pdf", "email"], "Outputs to render: html, pdf, email (email.html, email.txt and "
        "their chart images, for `reportgen email`); json = the data files only (summary.json "
        "and segments.csv are always written).")
    logo: str | None = _setting(
        None, "Logo file (PNG, JPEG or SVG) for the cover of the HTML and PDF reports and the head "
        "of the email; a relative path is read from the config file's folder.")
    primary_color: str = _setting(
        "#1d3557", "Brand colour (hex, e.g. '#0b5394') of the cover band and the email header; "
        "text on it is white or black, whichever reads better.")
    template_dir: str | None = _setting(
        None, "Folder of templates searched before the built-in ones (or --template-dir): a "
        "report.html.j2, report_pdf.html.j2, email.html.j2 there replaces the built-in one.")


@dataclass(frozen=True)
class LimitsConfig:
    """How much input a run accepts. Past a limit the run stops with one line naming it."""

    bytes: int = _setting(
        1_000_000_000, "Largest table read, in bytes after decompression (a 1 GB CSV is ~10 "
        "million customers).", range=(1_000, 100_000_000_000))
    rows: int = _setting(10_000_000, "Most rows read from a table into memory (a Parquet table "
                         "past it is streamed instead: see out_of_core).",
                         range=(10, 1_000_000_000))
    columns: int = _setting(1_000, "Most columns a table may have.", range=(2, 100_000))
    cell_chars: int = _setting(1_000_000, "Longest text cell, in characters.",
                               range=(100, 100_000_000))
    header_chars: int = _setting(1_000, "Longest column name, in characters.",
                                 range=(10, 100_000))
    excel_cells: int = _setting(
        20_000_000, "Most cells read from an .xlsx sheet (rows × columns as stored; openpyxl "
        "reads about a million a second).", range=(100, 1_000_000_000))
    seconds: int = _setting(
        3600, "Longest a command may run, in seconds (then it stops; a backfill keeps the months "
        "it finished).",
        range=(1, 7 * 24 * 3600))
    out_of_core: str = _setting(
        "auto", "Tables larger than memory: auto (a Parquet file of more than `stream_rows` "
        "rows or past `bytes`, or a folder or glob of Parquet files, is streamed: fitted and "
        "reported on a sample of `sample_rows` customers, every customer assigned in "
        "batches), always (stream any Parquet source), never (refuse past `rows` or `bytes`).")
    stream_rows: int = _setting(
        2_000_000, "With out_of_core = auto, a Parquet file of more rows than this is streamed "
        "(from here the streamed run is faster than the in-memory one and a fraction of its "
        "memory: ~1.1 GB a million customers in memory). At most `rows`.",
        range=(1_000, 1_000_000_000))
    sample_rows: int = _setting(
        500_000, "Customers a streamed (out-of-core) run is fitted and profiled on, drawn at "
        "random with the seed (at most `rows`).", range=(1_000, 10_000_000))


@dataclass(frozen=True)
class TransactionsConfig:
    rows: str = _setting(
        "auto", "What a row of the table is: auto (order lines when a customer key repeats and "
        "every row has a date and an amount), orders (order lines: aggregated to one row per "
        "customer), customers (one row per customer: never aggregated).")
    customer: str | None = _setting(None, "Column of the customer key; empty = inferred.")
    order: str | None = _setting(
        None, "Column of the order or invoice number; empty = inferred (without one, the orders "
        "of a customer are its distinct order days).")
    date: str | None = _setting(None, "Column of the order date or timestamp; empty = inferred.")
    amount: str | None = _setting(
        None, "Column of the line amount (net of discounts); empty = inferred, or quantity × "
        "price.")
    quantity: str | None = _setting(None, "Column of the quantity (items) of a line.")
    price: str | None = _setting(None, "Column of the unit price (amount = quantity × price).")
    discount: str | None = _setting(
        None, "Column of the discount of a line (a rate or an amount: a line above 0 counts as "
        "discounted).")
    status: str | None = _setting(
        None, "Column of the line or order status: cancelled, refunded and returned lines count "
        "as returns.")
    product: str | None = _setting(None, "Column of the product (code or name).")
    category: str | None = _setting(None, "Column of the product category: the category mix.")
    channel: str | None = _setting(None, "Column of the sales channel (web, store, app…).")
    store: str | None = _setting(None, "Column of the store or branch.")
    country: str | None = _setting(None, "Column of the customer's or order's country.")
    top_levels: int = _setting(
        5, "Categories, channels, stores and countries kept by revenue in the mix features; "
        "the rest are pooled as 'other'.")
    window_days: int = _setting(
        90, "Days of the recent-spend window (spend in the last N days against the N before).")


@dataclass(frozen=True)
class EngineConfig:
    """Where the heavy work runs: this process (default) or Spark (``--engine spark``)."""

    name: str = _setting(
        "default", "default (pandas and scikit-learn in this process) or spark (pyspark: Spark "
        "reads, aggregates order lines, cleans, assigns, profiles and follows the customers "
        "from the previous run; the k search runs on a sample; or --engine).")
    master: str | None = _setting(
        None, "Spark master URL (local[*], spark://host:7077, yarn); empty = what spark-submit "
        "or the cluster gives, else local[*].")
    conf: dict[str, str] = _setting(
        {}, "Spark settings for the session, e.g. \"spark.sql.shuffle.partitions\" = \"64\".")
    sample: int = _setting(
        100_000, "Customers read to the driver to learn the cleaning decisions, search k and "
        "draw the charts (the whole table is cleaned, assigned and profiled by Spark).",
        range=(1_000, 2_000_000))
    segments: str | None = _setting(
        None, "Where Spark writes the segments (Parquet: key, segment, persona, value, "
        "rfm_score and rfm_group on order lines, run id; the movers beside them): a path or "
        "URI; empty = <source>.segments.parquet beside a file source, <table>_segments for a "
        "table.")


@dataclass(frozen=True)
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    columns: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "Column roles that override inference: column name = role."},
    )
    scale: dict[str, float] = field(
        default_factory=dict,
        metadata={"help": "Multiply a column by a factor: column name = 1000 for amounts in "
                          "thousands. Inferred from names like 'Income (k$)'; 1 switches it off."},
    )
    transactions: TransactionsConfig = field(default_factory=TransactionsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    series: SeriesConfig = field(default_factory=SeriesConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def with_overrides(self, **dotted: Any) -> Config:
        """Return a copy with ``section__key=value`` overrides applied (None = leave as is)."""
        cfg = self
        for key, value in dotted.items():
            if value is None:
                continue
            section, name = key.split("__", 1)
            sub = dataclasses.replace(getattr(cfg, section), **{name: value})
            cfg = dataclasses.replace(cfg, **{section: sub})
        validate(cfg)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The settings that decide what a run writes (the run id hashes them). [limits] is
        left out: a limit decides only whether a run goes ahead, never what it writes."""
        data = dataclasses.asdict(self)
        data.pop("limits")
        return jsonable(data)

    def run_key(self) -> dict[str, Any]:
        """The settings that shape a run's analysis, for its run id: not where the table and
        the history live or who gets the email (the table's content is hashed on its own),
        and a file a setting names by its content, not its path, so the id is the same from
        any working folder. Settings of the series left at their defaults are left out, so a
        config that does not use them keeps the run id it had before series existed; the same
        for [transactions], so a customer table keeps the run id it had before order tables."""
        data = self.to_dict()
        for section in ("history", "email", "engine"):
            data.pop(section)
        data["input"].pop("source")
        series = {k: v for k, v in data.pop("series").items()
                  if k == "policy" and v != SeriesConfig().policy}
        if series:
            data["series"] = series
        default = jsonable(dataclasses.asdict(TransactionsConfig()))
        transactions = {k: v for k, v in data.pop("transactions").items() if v != default[k]}
        if transactions:
            data["transactions"] = transactions
        if self.report.logo is not None:
            data["report"]["logo"] = _file_digest(self.report.logo)
        if self.report.business == "auto":
            data["report"].pop("business")  # run ids of before the setting existed
        return data


# "json": the data files only (summary.json, segments.csv and manifest.json are always
# written; nothing is rendered) — for pipelines, and for tests about the input.
VALID_FORMATS = ("html", "pdf", "email", "json")
LOGO_TYPES = (".png", ".jpg", ".jpeg", ".svg")
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
ENGINES = ("default", "spark")
ALGORITHMS = ("kmeans", "minibatch", "gmm", "ward", "kprototypes")
SCALINGS = ("auto", "standard", "robust", "log1p")
CONFIG_BYTES = 1_000_000  # a reportgen.toml is a few kilobytes


def _file_digest(path: str) -> str:
    import hashlib

    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return path  # unreadable: branding says so when it reads the logo


def jsonable(value: Any) -> Any:
    """Plain JSON data from nested dicts, lists, tuples and dates (dataclasses.asdict output)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.isoformat()
    return value


def _nearest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(options)}"


def _coerce(value: Any, hint: Any, where: str, file: str | None) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "":
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, where, file)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(
            f"{where} must be a date like 2014-06-30, got {value!r}", file=file
        )
    elif origin is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where} must be a list of strings, got {value!r}", file=file)
    elif origin is dict:
        if args and args[1] is float:
            if isinstance(value, dict) and all(isinstance(v, (int, float))
                                               and not isinstance(v, bool) for v in value.values()):
                return {k: float(v) for k, v in value.items()}
            raise ConfigError(f"{where} must be a table of name = number pairs", file=file)
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return dict(value)
        raise ConfigError(f"{where} must be a table of name = \"text\" pairs", file=file)
    name = getattr(hint, "__name__", str(hint))
    article = "an" if name[0] in "aeiou" else "a"
    raise ConfigError(f"{where} must be {article} {name}, got {value!r}", file=file)


def _build(cls: type, data: dict[str, Any], prefix: str, file: str | None) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown key {where!r}{_nearest(key, list(fields))}", file=file)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where!r} must be a [{key}] table", file=file)
            kwargs[key] = _build(hint, value, f"{where}.", file)  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, hint, repr(where), file)
    return cls(**kwargs)


def validate(cfg: Config, file: str | None = None) -> Config:
    """Check the range of every number and the relations between settings."""
    _validate_ranges(cfg, file)
    _validate_input(cfg, file)
    _validate_text(cfg, file)
    s = cfg.segment
    if s.k_max < s.k_min:
        raise ConfigError(
            f"'segment.k_max' ({s.k_max}) must not be below 'segment.k_min' ({s.k_min})", file=file
        )
    if s.algorithm not in ALGORITHMS:
        raise ConfigError(
            f"unknown algorithm {s.algorithm!r}{_nearest(s.algorithm, list(ALGORITHMS))}",
            file=file)
    for where, method in [("segment.scaling", s.scaling)] + [
            (f"segment.feature_scaling.{f}", m) for f, m in s.feature_scaling.items()]:
        options = list(SCALINGS) if where == "segment.scaling" else list(SCALINGS[1:])
        if method not in options:
            raise ConfigError(f"{where!r} is {method!r}{_nearest(method, options)}", file=file)
    for fmt in cfg.report.formats:
        if fmt not in VALID_FORMATS:
            raise ConfigError(
                f"unknown format {fmt!r}{_nearest(fmt, list(VALID_FORMATS))}", file=file
            )
    _validate_branding(cfg, file)
    _validate_transactions(cfg, file)
    _validate_business(cfg, file)
    if cfg.engine.name not in ENGINES:
        raise ConfigError(f"'engine.name' is {cfg.engine.name!r}"
                          f"{_nearest(cfg.engine.name, list(ENGINES))}", file=file)
    if cfg.limits.out_of_core not in OUT_OF_CORE:
        raise ConfigError(f"'limits.out_of_core' is {cfg.limits.out_of_core!r}"
                          f"{_nearest(cfg.limits.out_of_core, list(OUT_OF_CORE))}", file=file)
    if cfg.series.policy not in SERIES_POLICIES:
        raise ConfigError(f"'series.policy' is {cfg.series.policy!r}"
                          f"{_nearest(cfg.series.policy, list(SERIES_POLICIES))}", file=file)
    if cfg.series.name:
        from .history import check_series

        try:
            check_series(cfg.series.name)
        except ConfigError as exc:
            raise ConfigError(f"'series.name': {exc.message}", file=file, hint=exc.hint) from None
    if cfg.history.url:
        from .history import check_history_url

        check_history_url(cfg.history.url)
    return cfg


def _ranges(cfg: Config) -> typing.Iterator[tuple[str, Any, Any, Any]]:
    """(key, value, low, high) of every setting that has a range."""
    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        for f in dataclasses.fields(value):
            if "range" in f.metadata:
                low, high = f.metadata["range"]
                yield f"{section.name}.{f.name}", getattr(value, f.name), low, high


def _shown(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int) and abs(value) >= 1_000:
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _validate_ranges(cfg: Config, file: str | None) -> None:
    for key, value, low, high in _ranges(cfg):
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{key!r} must be between {_shown(low)} and {_shown(high)}, "
                              f"got {_shown(value)}", file=file)


# Settings shown on one line: in a subject, a header, a cover. A line break in a company name
# would split an email header, so control characters are refused.
_ONE_LINE = ("title", "company", "period", "currency")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _validate_text(cfg: Config, file: str | None) -> None:
    for name in _ONE_LINE:
        value = getattr(cfg.report, name)
        if value is not None and _CONTROL.search(value):
            raise ConfigError(f"'report.{name}' must be one line without control characters, "
                              f"got {value!r}", file=file)
        if value is not None and len(value) > 200:
            raise ConfigError(f"'report.{name}' is {len(value):,} characters long (at most "
                              "200)", file=file)


TRANSACTION_ROWS = ("auto", "orders", "customers")
OUT_OF_CORE = ("auto", "always", "never")


def _validate_transactions(cfg: Config, file: str | None) -> None:
    t = cfg.transactions
    if t.rows not in TRANSACTION_ROWS:
        raise ConfigError(f"'transactions.rows' is {t.rows!r}"
                          f"{_nearest(t.rows, list(TRANSACTION_ROWS))}", file=file)
    if not 1 <= t.top_levels <= 20:
        raise ConfigError("'transactions.top_levels' must be between 1 and 20", file=file)
    if not 7 <= t.window_days <= 366:
        raise ConfigError("'transactions.window_days' must be between 7 and 366", file=file)
    if t.amount is not None and t.price is not None:
        raise ConfigError("give 'transactions.amount' or 'transactions.price' (amount = "
                          "quantity × price), not both", file=file)
    if t.price is not None and t.quantity is None:
        raise ConfigError("'transactions.price' needs 'transactions.quantity' (amount = "
                          "quantity × price)", file=file)


def _validate_business(cfg: Config, file: str | None) -> None:
    from .business import BUSINESS_SETTINGS

    if cfg.report.business not in BUSINESS_SETTINGS:
        raise ConfigError(f"'report.business' is {cfg.report.business!r}"
                          f"{_nearest(cfg.report.business, list(BUSINESS_SETTINGS))}", file=file)


def _validate_branding(cfg: Config, file: str | None) -> None:
    r = cfg.report
    if not _HEX_COLOR.fullmatch(r.primary_color):
        raise ConfigError(f"'report.primary_color' must be a hex colour like \"#1d3557\", got "
                          f"{r.primary_color!r}", file=file)
    if r.logo is not None:
        logo = Path(r.logo)
        if logo.suffix.lower() not in LOGO_TYPES:
            raise ConfigError(f"'report.logo' must be a PNG, JPEG or SVG file, got {r.logo!r}",
                              file=file)
        if not logo.is_file():
            raise ConfigError(f"'report.logo' file not found: {r.logo}", file=file,
                              hint="a relative path is read from the config file's folder")
    if r.template_dir is not None and not Path(r.template_dir).is_dir():
        raise ConfigError(f"'report.template_dir' is not a folder: {r.template_dir}", file=file)


def _validate_input(cfg: Config, file: str | None) -> None:
    i = cfg.input
    if i.delimiter is not None and len(i.delimiter) != 1:
        raise ConfigError(f"'input.delimiter' must be one character, got {i.delimiter!r}",
                          file=file, hint='e.g. ";" or "\\t"')
    if i.encoding is not None:
        try:
            # str.encode accepts only text encodings: rot13 or base64 are codecs too, but
            # not encodings a table can be written in.
            "a".encode(i.encoding)
        except LookupError:
            import codecs

            try:
                codecs.lookup(i.encoding)
                what = f"{i.encoding!r}, which is not a text encoding"
            except LookupError:
                what = f"an unknown encoding {i.encoding!r}"
            raise ConfigError(f"'input.encoding' names {what}", file=file,
                              hint="e.g. utf-8, cp1252, latin-1") from None
        except UnicodeError:
            pass  # a text encoding without an 'a' (rare) is still a text encoding
    if i.date_format is not None:
        _check_date_format(i.date_format, file)
    if i.table is not None and i.query is not None:
        raise ConfigError("'input.table' and 'input.query' cannot both be set", file=file)
    for column, factor in cfg.scale.items():
        if not 0 < factor < 1e9:
            raise ConfigError(f"'scale.{column}' must be a positive factor such as 1000, got "
                              f"{factor:g}", file=file)


def _is_url(text: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", text) is not None
def _check_date_format(fmt: str, file: str | None) -> None:
    """A format that can write a date and read it back: '%Q%' or '%d-%m' without a year
    cannot."""
    sample = dt.datetime(2014, 6, 30, 13, 45, 10)
    try:
        parsed = dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise ConfigError(f"'input.date_format' {fmt!r} is not a date format ({exc})",
                          file=file, hint="e.g. \"%d-%m-%Y\" or \"%Y-%m-%d\"") from None
    if parsed.date() != sample.date():
        raise ConfigError(f"'input.date_format' {fmt!r} does not hold a whole date (day, "
                          "month and year)", file=file, hint="e.g. \"%d-%m-%Y\"")


def load_config(path: str | Path | None) -> Config:
    """Read a reportgen TOML file; None gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file ({exc.strerror})", file=str(p)) from None
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device or a pipe)"
        raise ConfigError(f"the config file is {what}", file=str(p))
    if p.stat().st_size > CONFIG_BYTES:
        raise ConfigError(f"the config file is larger than {CONFIG_BYTES:,} bytes",
                          file=str(p))
    try:
        # utf-8-sig: Windows editors save UTF-8 with a byte-order mark
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file ({exc.__class__.__name__})",
                          file=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(p)) from None
    cfg = _build(Config, data, "", str(p))
    # files named in the config are found next to it, wherever reportgen is run from
    paths = {key: str(p.parent / value) for key in ("logo", "template_dir")
             if (value := getattr(cfg.report, key)) is not None and not Path(value).is_absolute()}
    if paths:
        cfg = dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, **paths))
    source = cfg.input.source
    if source and not _is_url(source) and not Path(source).is_absolute():
        cfg = dataclasses.replace(cfg, input=dataclasses.replace(cfg.input,
                                                                 source=str(p.parent / source)))
    return validate(cfg, str(p))


def toml_value(value: Any) -> str:
    """A value as TOML writes it; an unset (None) setting as "(not set)"."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    # A JSON string is a valid TOML basic string, once DEL is escaped too.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007F")


def describe() -> list[tuple[str, str, str]]:
    """(key, default as TOML, help) for every setting, for docs and `reportgen init`."""
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(Config):
        value = getattr(Config(), f.name)
        if dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                help_text = sub.metadata["help"]
                if "range" in sub.metadata:
                    low, high = sub.metadata["range"]
                    help_text += f" Range {_shown(low)} to {_shown(high)}."
                rows.append((f"{f.name}.{sub.name}", toml_value(getattr(value, sub.name)),
                             help_text))
        else:
            rows.append((f.name, toml_value(value), f.metadata["help"]))
    return rows
