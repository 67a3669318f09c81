"""Look at a table without clustering it: the roles, the cleaning a run would do, any problem.

`reportgen validate` prints `describe(check(...))`; `reportgen init` writes `config_text(...)`,
a commented reportgen.toml holding what was inferred, for an analyst to pin down and edit.
Neither imports scikit-learn: both answer in the time it takes to read the table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clean import (
    NATIVE_DATES,
    OTHER,
    UNKNOWN,
    Cleaned,
    CleaningDecisions,
    clean,
    number_text,
    require_rows,
)
from .config import Config, toml_value
from .errors import ReportgenError, SegmentationError, printable
from .features import FeatureFrame, build_features, order_features
from .load import Loaded, load
from .orders import ROLE_TEXT, OrderColumns, Orders, aggregate, describe_columns, detect
from .schema import ROLES, Schema, infer_schema


@dataclass(frozen=True)
class Check:
    cfg: Config
    loaded: Loaded
    schema: Schema
    cleaned: Cleaned | None  # None when cleaning found a problem
    features: FeatureFrame | None
    problem: ReportgenError | None  # what would stop `reportgen run`, if anything
    order_columns: OrderColumns | None = None  # the table is order lines: their columns
    orders: Orders | None = None  # ... aggregated to customers (None if that failed)

    @property
    def date_formats(self) -> dict[str, str]:
        """Date column -> the format clean decided (or the config's), for text dates; for
        order lines, the format their dates were read with."""
        formats = dict(self.cleaned.decisions.date_formats) if self.cleaned is not None else {}
        if self.orders is not None and self.orders.date_format:
            formats[self.orders.columns.date] = self.orders.date_format
        return formats


def check(source: str | Path | None, cfg: Config) -> Check:
    """Load, infer roles, clean and build features as a run would; stop before clustering.

    Errors reading the table or matching the config to it are raised; a problem found while
    cleaning (ambiguous dates, too few rows, nothing to cluster on) is returned, so the roles
    can still be shown next to it.
    """
    loaded = load(source, cfg.input, cfg.limits)
    file = loaded.where
    schema = infer_schema(loaded.frame, cfg.columns, file=file, scale=cfg.scale)
    order_columns = detect(loaded.frame, cfg.transactions, file)
    cleaned = ff = orders = None
    problem: ReportgenError | None = None
    try:
        if order_columns is not None:
            orders = aggregate(loaded.frame, order_columns, cfg, file)
            table, table_schema = orders.table()
            cleaned = clean(table, table_schema, cfg, file=file,
                            notes=[*loaded.notes, *orders.log])
            cleaned = dataclasses.replace(cleaned, as_of=orders.as_of)
            require_rows(cleaned, cfg, file=file)
            ff = order_features(cleaned, orders.features, cfg, file)
        else:
            cleaned = clean(loaded.frame, schema, cfg, file=file, notes=loaded.notes)
            require_rows(cleaned, cfg, file=file)
            ff = build_features(cleaned, schema, cfg, file=file)
        if len(ff.model) < 2:
            raise SegmentationError(
                "fewer than two model features vary across customers", file=file,
                hint="check [features] model or the column roles in [columns]")
    except ReportgenError as exc:
        problem = exc
    return Check(cfg=cfg, loaded=loaded, schema=schema, cleaned=cleaned, features=ff,
                 problem=problem, order_columns=order_columns, orders=orders)


def _source_line(c: Check) -> str:
    ld = c.loaded
    how = {"text": ("whitespace-aligned text" if ld.delimiter == " " else
                    f"delimited text, {ld.delimiter!r} delimiter") + f", {ld.encoding}",
           "parquet": "Parquet", "excel": "Excel workbook", "sql": "database"}.get(ld.kind,
                                                                                 ld.kind)
    return (f"Source: {ld.where}: {len(ld.frame):,} rows × {ld.frame.shape[1]} columns "
            f"({how})")


def describe(c: Check) -> str:
    """What `reportgen validate` prints."""
    lines = [_source_line(c), ""]
    if c.order_columns is not None:
        lines.append("Order lines: one row per order line, aggregated to one row per customer"
                     + (f": {c.orders.method_line()}" if c.orders else ""))
        lines += ["", "Columns of the order lines ([transactions]):"]
        lines += describe_columns(c.order_columns)
        used = set(c.order_columns.roles().values())
        unused = [str(col) for col in c.loaded.frame.columns if col not in used]
        if unused:
            lines.append(f"  not used: {', '.join(unused)}")
    else:
        lines.append("Columns and roles:")
        width = min(32, max(len(str(col)) for col in c.schema.roles))
        for column, role in c.schema.roles.items():
            shown = str(column) if len(str(column)) <= width else str(column)[:width - 1] + "…"
            note = c.schema.notes.get(column, "")
            lines.append(f"  {shown:<{width}}  {role:<14} {note}")
    if c.orders is not None and c.orders.date_format:
        lines += ["", f"Dates in {c.orders.columns.date!r}: {c.orders.date_format}"]
    if c.cleaned is not None:
        as_of = c.cleaned.as_of
        lines.append("")
        lines.append(f"As of: {as_of.isoformat() if as_of else 'none (the table has no dates)'}"
                     + (" (latest date in the data)" if as_of and not c.cfg.report.as_of
                        else ""))
        lines += ["", "Decisions a run stores with its model (`reportgen score` applies them to "
                  "new customers):"]
        lines += decision_lines(c.cleaned.decisions)
    if c.features is not None:
        ff = c.features
        shown_features = [("*" if f in ff.model else "") + f for f in ff.meta]
        lines += ["", "Features (* = used for clustering):"]
        lines += _wrap(", ".join(shown_features), "  ")
        if ff.business is not None:
            lines += ["", *_wrap(f"Business type: {ff.business.text}", "")]
    lines += ["", "Cleaning a run would do:"]
    if c.cleaned is not None:
        steps = c.cleaned.log
        lines += [f"  {s.column}: {s.action}{_rows(s.rows)}: {s.detail}"
                  + (f" — {s.reason}" if s.reason else "") for s in steps]
        if not steps:
            lines.append("  nothing to fix")
        left_out = len(c.cleaned.excluded) + (len(c.orders.excluded) if c.orders else 0)
        what = ("customer" if left_out == 1 else "customers") if c.orders else \
            ("row" if left_out == 1 else "rows")
        lines.append(f"  {len(c.cleaned.frame):,} customers to segment, {left_out:,} {what} "
                     "left out")
    else:
        lines.append("  (stopped by the problem below)")
    s = c.cfg.segment
    lines += ["", f"Segments: k = {s.k}" if s.k else
              f"Segments: k searched in {s.k_min}..{s.k_max}, seed {s.random_state}"]
    lines.append(f"Problem: {c.problem}" if c.problem else "OK: ready for `reportgen run`.")
    return "\n".join(lines)


def decision_lines(d: CleaningDecisions) -> list[str]:
    """What clean decided from the values, one line per column that has more than a fill."""
    lines = [f"  key: {d.key}" + (" (row number: the table has no id column)"
                                  if d.key_from == "row number" else "")]
    for column, date in d.dates.items():
        parts = ["dates " + ("as stored" if date.format == NATIVE_DATES else date.format)]
        if date.latest:
            parts.append(f"after {date.latest[:10]} is a typing error")
        parts.append(f"blank → {date.fill[:10]}" if date.fill else "no usable date")
        lines.append(f"  {column}: {'; '.join(parts)}")
    plain = []
    for column, n in d.numbers.items():
        parts = []
        if n.scale != 1.0:
            parts.append(f"× {n.scale:,.0f}")
        if n.plausible is not None:
            lo, hi = (number_text(v, n.role) for v in n.plausible)
            parts.append(f"outside {lo}-{hi} is a typing error")
        if n.at_most is not None:
            parts.append(f"above {n.at_most:g} is an error")
        if n.outlier_above is not None:
            parts.append(f"above {n.outlier_above:,.0f} is a typing error")
        fill = f"blank → {number_text(n.fill, n.role)}" if n.fill_median else "blank → 0"
        if parts:
            lines.append(f"  {column}: {'; '.join(parts)}; {fill}")
        else:
            plain.append(f"{column} {number_text(n.fill, n.role)}")
    for column, yn in d.yes_no.items():
        plain.append(f"{column} {yn.fill:.0f}")
    for column, cat in d.categories.items():
        shown = ", ".join(cat.levels[:6]) + (f" and {len(cat.levels) - 6} more"
                                            if len(cat.levels) > 6 else "")
        parts = [f"levels {shown}" if cat.levels else "no levels"]
        if cat.pooled:
            parts.append(f"{', '.join(cat.pooled[:6])}{' …' if len(cat.pooled) > 6 else ''} "
                         f"and unseen levels → {OTHER}")
        else:
            parts.append(f"unseen levels → {OTHER}")
        parts.append(f"blank → {UNKNOWN}")
        lines.append(f"  {column}: {'; '.join(parts)}")
    if plain:
        lines += _wrap("other blanks → the median (yes/no: the most common answer): "
                       + ", ".join(plain), "  ")
    return lines


def _rows(n: int) -> str:
    return f" ({n:,} row{'s' if n != 1 else ''})" if n else ""


def _wrap(text: str, indent: str, width: int = 96) -> list[str]:
    out, line = [], indent
    for word in text.split(" "):
        if len(line) + len(word) + 1 > width and line.strip():
            out.append(line.rstrip())
            line = indent
        line += word + " "
    if line.strip():
        out.append(line.rstrip())
    return out


# reportgen.toml ----------------------------------------------------------------------------

def _toml(value: Any) -> str:
    if value is None or not isinstance(value, (bool, int, float, dt.date, str, list)):
        raise TypeError(f"no TOML for {value!r}")
    return toml_value(value)


def _line(key: str, value: Any, comment: str = "", commented: bool = False) -> str:
    text = f"{'# ' if commented else ''}{_toml(key) if not key.isidentifier() else key} = " \
           f"{_toml(value)}"
    return f"{text:<40} # {comment}" if comment else text


def _help(section: Any, name: str) -> str:
    f = {f.name: f for f in dataclasses.fields(section)}[name]
    return str(f.metadata.get("help", ""))


# Settings init writes uncommented: what an analyst pins. Everything else is listed commented.
_PINNED = {"input": {"delimiter", "encoding", "date_format", "sheet", "table", "query"},
           "segment": {"k_min", "k_max", "random_state"},
           "report": {"title", "company", "currency", "formats"}}


def config_text(c: Check) -> str:
    """A commented reportgen.toml with what was inferred from the table."""
    cfg, ld, schema = c.cfg, c.loaded, c.schema
    out = [
        f"# reportgen configuration for {_comment(ld.name)}, written by `reportgen init` from "
        "what it",
        "# inferred. Every setting is optional: delete a line to go back to inference or the",
        "# default. Check it against the table with:",
        f"#   reportgen validate {_comment(_shell(_source_arg(ld)))} --config reportgen.toml",
        "# Database passwords do not belong here: use the environment (PGPASSWORD, or ${VAR} in",
        "# the URL).",
        "",
    ]
    inferred_input = {
        "delimiter": cfg.input.delimiter or (ld.delimiter if ld.kind == "text" else None),
        "encoding": cfg.input.encoding or (ld.encoding.replace("-sig", "")
                                           if ld.kind == "text" else None),
        "date_format": cfg.input.date_format or (
            next(iter(set(c.date_formats.values()))) if len(set(c.date_formats.values())) == 1
            else None),
        "sheet": cfg.input.sheet, "table": cfg.input.table, "query": cfg.input.query,
    }
    out += ["[input]"] + _section(cfg.input, "input", inferred_input)
    if c.problem and "date" in str(c.problem):
        out.append(f"# PROBLEM: {c.problem}")
    out += ["", "# What a row is and, for order lines, which column plays which part: auto,",
            "# orders or customers. Order lines are aggregated to one row per customer as of",
            "# report.as_of (features: recency, orders, net spend, basket, returns, mix...)."]
    out.append("[transactions]")
    if c.order_columns is not None:
        out.append(_line("rows", "orders", _help(cfg.transactions, "rows").split(":")[0]))
        for role, column in c.order_columns.roles().items():
            out.append(_line(role, str(column), ROLE_TEXT[role]))
        pinned = {"rows", *c.order_columns.roles()}
        out += [line for f, line in zip(dataclasses.fields(cfg.transactions),
                                        _section(cfg.transactions, "transactions", {}),
                                        strict=True) if f.name not in pinned]
    else:
        out += _section(cfg.transactions, "transactions", {})
    out += ["", "# Column roles, inferred from names and values: correct a role here, or set",
            "# \"ignore\" to leave a column out. Roles:"]
    out += _wrap(", ".join(ROLES), "#   ")
    out.append("[columns]")
    if c.order_columns is not None:
        out.append("# (order lines: [transactions] above names their columns; the customer table "
                   "they are aggregated to has its own roles)")
    width = max(len(_toml(str(col))) for col in schema.roles) + 3
    for column, role in schema.roles.items() if c.order_columns is None else ():
        text = f"{_toml(str(column))} = {_toml(role)}"
        out.append(f"{text:<{max(width + 16, 40)}} # {_comment(schema.notes.get(column, ''))}")
    out += ["", "# Multiply a column by a factor (amounts in thousands = 1000); 1 switches it off.",
            "[scale]"]
    if schema.scales:
        out += [_line(str(col), float(f), "inferred from the column name")
                for col, f in schema.scales.items()]
    else:
        out.append('# "Annual Income (k$)" = 1000.0')
    out += ["", "[features]"]
    if c.features is not None:
        ff = c.features
        out.append("# Features the clustering uses. Available for this table:")
        out += _wrap(", ".join(ff.meta), "#   ")
        out.append(_line("model", list(cfg.features.model or ff.model)))
    else:
        out.append("# model = []  # (features could not be built: see the problem above)")
    out += ["", "[segment]"] + _section(cfg.segment, "segment", {})
    as_of = c.cleaned.as_of if c.cleaned is not None else None
    report_values: dict[str, Any] = {"as_of": cfg.report.as_of or as_of}
    out += ["", "# Branding and period. as_of is where ages and tenures are measured: unset, it is",
            "# the latest date in the data" + (f" ({as_of.isoformat()} for this table)."
                                               if as_of and not cfg.report.as_of else ".")]
    out += ["[report]"] + _section(cfg.report, "report", report_values)
    if any(f.name == "gates" for f in dataclasses.fields(cfg)):
        out += ["", "[gates]"] + _section(cfg.gates, "gates", {})
    out += ["", "# How much input a run accepts; past a limit it stops with a line naming it.",
            "[limits]"] + _section(cfg.limits, "limits", {})
    return "\n".join(out) + "\n"


def _section(section: Any, name: str, values: dict[str, Any]) -> list[str]:
    lines = []
    for f in dataclasses.fields(section):
        value = values.get(f.name, getattr(section, f.name))
        help_text = _help(section, f.name)
        pinned = f.name in _PINNED.get(name, set())
        if value is None or value == {} or (value == [] and not pinned):
            lines.append(f"# {f.name} = ...".ljust(40) + f" # {help_text}")
        elif isinstance(value, dict):
            lines.append(f"# {f.name}: {help_text}")
            lines += [f"# [{name}.{f.name}]"] + [f"# {_toml(k)} = {_toml(v)}"
                                                 for k, v in value.items()]
        else:
            lines.append(_line(f.name, value, help_text, commented=not pinned))
    return lines


def _source_arg(ld: Loaded) -> str:
    if ld.kind != "sql":
        return ld.where
    # "postgresql://user:***@host/db table customers": the URL; the table is in [input]
    return ld.where.rsplit(" table ", 1)[0].removesuffix(" query")


def _comment(text: str) -> str:
    """text safe in a TOML comment: a newline in a file name would end the comment and
    break the file, a control character is not allowed in TOML at all."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")


def _shell(text: str) -> str:
    import shlex

    return shlex.quote(text)
