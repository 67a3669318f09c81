"""Order tables through a whole run, zero-config: one row per customer in segments.csv, RFM
columns and groups, no id or invoice number among the features or traits, nothing on the
last day "in the future", and the report says how the lines became customers."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import reportgen
from reportgen.cli import main
from reportgen.config import Config
from reportgen.pipeline import backfill
from tests.order_tables import (
    Facts,
    cdnow_text,
    invoice_lines,
    order_export,
    steady_orders,
    write_csv,
)
from tests.runs import run_folders
from tests.test_orders import ORDER_FEATURES

GROUPS = {"Champions", "Loyal", "Potential loyalist", "New", "Promising", "Need attention",
          "About to sleep", "At risk", "Can't lose them", "Hibernating", "Lost"}
KEYS = {"invoices": "CustomerID", "orders": "Customer ID", "cdnow": "customer_id"}


def _table(name: str, folder: Path) -> tuple[Path, Facts]:
    if name == "invoices":
        frame, facts = invoice_lines()
        return write_csv(frame, folder / "invoices.csv"), facts
    if name == "orders":
        frame, facts = order_export()
        return write_csv(frame, folder / "orders.csv"), facts
    text, facts = cdnow_text()
    path = folder / "cdnow.txt"
    path.write_text(text, newline="")
    return path, facts


@pytest.fixture(scope="module", params=["invoices", "orders", "cdnow"])
def run(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp(request.param)
    path, facts = _table(request.param, folder)
    cfg = Config().with_overrides(report__formats=["json"], segment__stability_runs=0)
    result = reportgen.run(path, cfg, folder / "out")
    segments = pd.read_csv(result.run_dir / "segments.csv",
                           dtype={KEYS[request.param]: str, "rfm_score": str})
    summary = json.loads((result.run_dir / "summary.json").read_text())
    return request.param, facts, segments, summary


def test_segments_csv_has_one_row_per_customer(run) -> None:  # type: ignore[no-untyped-def]
    name, facts, segments, summary = run
    key = KEYS[name]
    assert segments[key].is_unique
    assert set(segments[key]) == facts.customers | facts.only_returns
    kept = segments[segments["left_out"].isna()]
    assert set(kept[key]) == facts.customers
    assert summary["headline"]["customers"] == len(facts.customers)
    left = segments[segments["left_out"].notna()]
    assert set(left[key]) == facts.only_returns
    assert left["left_out"].astype(str).str.startswith("only returns").all()


def test_rfm_columns_and_groups(run) -> None:  # type: ignore[no-untyped-def]
    _, facts, segments, summary = run
    kept = segments[segments["left_out"].isna()]
    assert kept["rfm_score"].astype(str).str.fullmatch(r"[1-5]{3}").all()
    assert set(kept["rfm_group"]) <= GROUPS
    rfm = summary["rfm"]
    assert sum(g["customers"] for g in rfm["groups"]) == len(facts.customers)
    assert sum(c["customers"] for c in rfm["grid"]) == len(facts.customers)
    counted = {}
    for groups in rfm["by_segment"].values():
        for group, n in groups.items():
            counted[group] = counted.get(group, 0) + n
    assert counted == kept["rfm_group"].value_counts().to_dict()
    assert "rfm_grid" in summary["charts"]


def test_no_id_or_invoice_among_features_or_traits(run) -> None:  # type: ignore[no-untyped-def]
    _, _, _, summary = run
    words = ("customerid", "customer id", "customer_id", "invoice", "order id", "row id",
             "stock", "product id")
    for f in summary["features"]:
        assert not any(w in (f["name"] + " " + f["label"]).lower() for w in words), f
        assert f["name"] in ORDER_FEATURES or f["name"].startswith(("share_", "country_")), f
    for s in summary["segments"]:
        for t in s["traits"]:
            assert not any(w in t["text"].lower() for w in words), t
    assert not any(w in " ".join(summary["method"]["features"]) for w in ("id", "invoice"))


def test_the_last_day_is_not_in_the_future(run) -> None:  # type: ignore[no-untyped-def]
    _, facts, _, summary = run
    assert summary["as_of"] == facts.last_day.isoformat()  # type: ignore[union-attr]
    assert not any("future" in step["reason"] or "after as_of" in step["detail"]
                   for step in summary["cleaning"])
    assert summary["orders"]["after_as_of"] == 0


def test_the_report_says_how_lines_became_customers(run) -> None:  # type: ignore[no-untyped-def]
    _, facts, _, summary = run
    o = summary["orders"]
    assert o["method"] == (f"{o['lines_used']:,} order lines of {len(facts.customers):,} "
                           f"customers, aggregated to customers as of {summary['as_of']}")
    assert o["lines"] == facts.lines
    assert o["no_customer_lines"] == facts.no_customer_lines
    roles = {c["column"]: c["role"] for c in summary["columns"]}
    assert all(r.startswith("order ") or r == "ignore" for r in roles.values())


def test_invoice_lines_name_order_personas_and_actions(tmp_path: Path) -> None:
    path, facts = _table("invoices", tmp_path)
    cfg = Config().with_overrides(report__formats=["json"], segment__stability_runs=0)
    report = reportgen.run(path, cfg, tmp_path / "out").report
    segments = pd.read_csv(next((tmp_path / "out").glob("*/segments.csv")),
                           dtype={"CustomerID": str})
    kinds = segments.set_index("CustomerID")["persona"].dropna().groupby(
        pd.Series(facts.kinds)).agg(lambda s: s.value_counts().index[0])
    assert kinds["regular"] == "Loyal regulars"
    assert kinds["new"] == "New one-time buyers"
    rules = {s.name: {a.rule for a in s.actions} for s in report.segments}
    assert "regulars-rewards" in rules["Loyal regulars"]
    assert "second-purchase" in rules["New one-time buyers"]
    assert "lapsed-win-back" in rules[kinds["lapsed"]]
    lapsed = report.segment(next(s.id for s in report.segments if s.name == kinds["lapsed"]))
    assert lapsed.value_share > 0.5 and lapsed.zscores["recency"] > 1


def test_as_of_makes_a_snapshot(tmp_path: Path) -> None:
    path, _ = _table("invoices", tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--format", "json",
                                       "--as-of", "2011-06-30", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(next(out.glob("2011-06-*/summary.json")).read_text())
    assert summary["as_of"] == "2011-06-30" and summary["period"] == "June 2011"
    assert summary["orders"]["after_as_of"] > 0
    step = next(s for s in summary["cleaning"] if "after as_of 2011-06-30" in s["detail"])
    assert step["rows"] == summary["orders"]["after_as_of"]
    assert dt.date.fromisoformat(summary["as_of"]) < dt.date(2011, 12, 9)


def test_validate_and_init_say_it_is_an_order_table(tmp_path: Path) -> None:
    path, _ = _table("invoices", tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "Order lines: one row per order line, aggregated to one row per customer" in \
        result.output
    assert "aggregated to customers as of 2011-12-09" in result.output
    toml = tmp_path / "reportgen.toml"
    result = CliRunner().invoke(main, ["init", str(path), "--out", str(toml)])
    assert result.exit_code == 0, result.output
    text = toml.read_text()
    assert '[transactions]\nrows = "orders"' in text
    assert 'customer = "CustomerID"' in text and 'order = "InvoiceNo"' in text
    from reportgen.config import load_config

    cfg = load_config(toml)
    assert (cfg.transactions.customer, cfg.transactions.price) == ("CustomerID", "UnitPrice")
    assert cfg.columns == {}


def test_month_ends_cover_the_data_and_stop_at_its_last_day() -> None:
    from reportgen.pipeline import month_ends

    first, last = dt.date(2010, 12, 1), dt.date(2011, 12, 9)
    ends = month_ends(first, last)
    assert ends[0] == dt.date(2010, 12, 31) and ends[-1] == last and len(ends) == 13
    assert month_ends(first, last, dt.date(2011, 2, 1), dt.date(2011, 4, 1)) == \
        [dt.date(2011, 2, 28), dt.date(2011, 3, 31), dt.date(2011, 4, 30)]
    assert month_ends(first, last, dt.date(2012, 1, 1)) == []


def test_backfill_makes_one_run_per_month_into_one_root(tmp_path: Path) -> None:
    path, facts = _table("invoices", tmp_path)
    out = tmp_path / "series"
    result = CliRunner().invoke(main, ["backfill", str(path), "--from", "2011-09", "--to",
                                       "2011-12", "--out", str(out), "--format", "json", "-q"])
    assert result.exit_code == 0, result.output
    assert "4 monthly runs" in result.output
    runs = [p.name for p in run_folders(out)]  # beside them: the series' history
    assert [r[:7] for r in runs] == ["2011-09", "2011-10", "2011-11", "2011-12"]
    as_of = [json.loads((out / r / "summary.json").read_text())["as_of"] for r in runs]
    assert as_of == ["2011-09-30", "2011-10-31", "2011-11-30", "2011-12-09"]
    last = pd.read_csv(out / runs[-1] / "segments.csv", dtype={"CustomerID": str})
    assert set(last["CustomerID"]) == facts.customers | facts.only_returns
    first = pd.read_csv(out / runs[0] / "segments.csv", dtype={"CustomerID": str})
    assert len(first) < len(last)  # the new customers of November are not there yet


def test_a_backfill_of_unchanged_customers_ages_tenure_and_recommends_no_refit(
        tmp_path: Path) -> None:
    """Customers who keep buying as they did: only the calendar moves their months as a
    customer, which drift takes off before comparing (it used to read as drift every month)."""
    frame, _ = steady_orders()
    path = write_csv(frame, tmp_path / "orders.csv")
    cfg = Config().with_overrides(report__formats=["json"], segment__stability_runs=0,
                                  series__policy="keep")
    results = backfill(str(path), cfg, tmp_path / "series", dt.date(2011, 9, 1),
                       dt.date(2011, 12, 1))
    drifts = [json.loads((r.run_dir / "summary.json").read_text())["changes"]["drift"]
              for r in results[1:]]
    assert len(drifts) == 3
    for d in drifts:
        psi = {f["feature"]: f["psi"] for f in d["features"]}
        assert psi["tenure_months"] < 0.1, psi
        assert not d["exceeded"] and d["reasons"] == [], d
        assert d["aged"] == ("Months as a customer is compared after ageing last month's "
                             "customers by the month between the two reports.")
    first = json.loads((results[0].run_dir / "summary.json").read_text())
    assert first["changes"] is None  # a first run: nothing to compare, nothing aged


def test_backfill_refuses_a_customer_table_and_bad_months(tmp_path: Path) -> None:
    from tests.tables import marketing_table, write_tsv

    path = write_tsv(marketing_table(20), tmp_path / "customers.tsv")
    result = CliRunner().invoke(main, ["backfill", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "backfill needs order lines" in result.output
    orders, _ = _table("invoices", tmp_path)
    result = CliRunner().invoke(main, ["backfill", str(orders), "--from", "2011-13"])
    assert result.exit_code == 2 and "--from '2011-13' is not a month" in result.output
    result = CliRunner().invoke(main, ["backfill", str(orders), "--from", "2011-06", "--to",
                                       "2011-01"])
    assert result.exit_code == 2 and "before --from" in result.output


def test_limits_seconds_bounds_the_whole_backfill_not_each_month(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """Four months of 4 s each under seconds = 6: no month is over the limit, the backfill
    is, and it stops in its first or second month (depending on how long reading the table
    took) with the one line of the time limit."""
    import time

    from reportgen import pipeline

    path, _ = _table("invoices", tmp_path)
    months: list[dt.date] = []

    def slow_month(source, cfg, out_root, loaded=None):
        months.append(cfg.report.as_of)
        time.sleep(4)
        if len(months) > 2:
            raise AssertionError("the limit should have stopped the backfill by now")

    monkeypatch.setattr(pipeline, "run", slow_month)
    cfg = tmp_path / "limits.toml"
    cfg.write_text("[limits]\nseconds = 6\n")
    result = CliRunner().invoke(main, ["backfill", str(path), "--from", "2011-09", "--to",
                                       "2011-12", "--out", str(tmp_path / "series"),
                                       "--config", str(cfg), "-q"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("Error: the backfill took longer than limits.seconds = "
                                     "6 s (raise seconds under [limits] in the config, or give "
                                     "a smaller table)")
    assert months in ([dt.date(2011, 9, 30)], [dt.date(2011, 9, 30), dt.date(2011, 10, 31)])


def test_a_backfill_past_its_time_limit_leaves_only_whole_months(tmp_path: Path) -> None:
    path, _ = _table("invoices", tmp_path)
    out = tmp_path / "series"
    cfg = tmp_path / "slow.toml"
    cfg.write_text("[segment]\nstability_runs = 100\nn_init = 100\n[limits]\nseconds = 2\n")
    result = CliRunner().invoke(main, ["backfill", str(path), "--out", str(out), "--config",
                                       str(cfg), "--format", "json", "-q"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("Error: the backfill took longer than limits.seconds = "
                                     "2 s (raise seconds under [limits] in the config, or give "
                                     "a smaller table)")
    if out.exists():  # a month finished before the limit is whole; nothing half-written
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
        for run in run_folders(out):
            assert (run / "manifest.json").is_file() and (run / "series.json").is_file()


def test_backfill_is_one_series_each_month_compared_with_the_one_before(tmp_path: Path
                                                                        ) -> None:
    path, facts = _table("invoices", tmp_path)
    out = tmp_path / "series"
    result = CliRunner().invoke(main, ["backfill", str(path), "--from", "2011-06", "--to",
                                       "2011-12", "--out", str(out), "--format", "json", "-q"])
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(main, ["history", "--out", str(out), "--json"])
    assert listed.exit_code == 0, listed.output
    history = json.loads(listed.output)
    # one series, seven months in order, each run chained to the one before
    assert {h["series"] for h in history} == {"default"}
    assert [h["period"] for h in history] == [f"2011-{m:02d}" for m in range(6, 13)]
    assert history[0]["policy"] == "first" and history[0]["previous_run_id"] is None
    for before, after in zip(history, history[1:], strict=False):
        assert after["previous_run_id"] == before["run_id"]
        assert after["personas"] == before["personas"]  # the segments keep their names
    summaries = [json.loads((out / h["folder"] / "summary.json").read_text()) for h in history]
    assert summaries[0]["changes"] is None
    for before, after in zip(summaries, summaries[1:], strict=False):
        c = after["changes"]
        assert c["previous_period"] == before["period"]  # "What changed since June 2011"
        customers, previous = after["headline"]["customers"], before["headline"]["customers"]
        assert c["new_customers"] + c["returning_customers"] == customers
        assert c["returning_customers"] + c["lost_customers"] == previous
        assert c["lost_customers"] == 0  # an order history only grows: nobody leaves it
        then = {s["name"]: s["size"] for s in before["segments"]}
        for s in c["segments"]:
            assert s["previous_customers"] == then[s["name"]]
            assert s["text"] == "Continued"
        names = {s["name"] for s in after["segments"]}
        for line in c["largest_flows"]:  # "29 new customers, $1,306 of spend, joined …"
            assert re.fullmatch(r"(\d[\d,]* new customers?|1 of the .+|\d[\d,]* .+), "
                                r"\$[\d,.]+k? of spend, (joined|moved to) (.+)", line), line
            assert line.split(" joined " if " joined " in line else " moved to ")[1] in names
            assert "1 new customers" not in line and not line.startswith("1 Loyal")
    # the months add up to the whole table: the last one holds every customer
    assert summaries[-1]["headline"]["customers"] == len(facts.customers)
    assert sum(s["changes"]["new_customers"] for s in summaries[1:]) == \
        len(facts.customers) - summaries[0]["headline"]["customers"]


def test_the_pdf_explains_every_order_feature_and_keeps_the_rfm_groups_whole(
        tmp_path: Path) -> None:
    from markupsafe import escape

    from reportgen.render.environment import Assets, render_template
    from reportgen.render.pdf import PDF_TEMPLATE, chart_images, column_roles
    from tests.test_report_craft import layout, split_across_pages

    path, _ = _table("cdnow", tmp_path)
    cfg = Config().with_overrides(report__formats=["json"], segment__stability_runs=0)
    report = reportgen.run(path, cfg, tmp_path / "out").report
    html = render_template(PDF_TEMPLATE, report, Assets(images=chart_images(report),
                                                        column_roles=column_roles(report)))
    # every derived feature, in the model or not, with how it was made from the lines
    described = [f for f in report.features if not f.in_model]
    assert {f.name for f in described} >= {"one_time", "days_between_orders",
                                               "active_months", "spend_trend"}
    for f in report.features:
        assert str(escape(f.description)) in html, f.name
    assert "Also derived" not in html
    # each RFM group with what it means, and its table on one page
    for g in report.rfm.groups:  # type: ignore[union-attr]
        assert str(escape(g.description)) in html, g.name
    document = layout(report)
    pages = [i for i, page in enumerate(document.pages)
             for box in page._page_box.descendants()
             if getattr(box, "element", None) is not None and box.element.tag == "table"
             and "rfm" in (box.element.get("class") or "").split()]
    assert len(set(pages)) == 1
    assert split_across_pages(document) == []


def test_a_backfill_from_the_first_month_survives_a_segment_that_empties_and_fills_again(
        tmp_path: Path) -> None:
    """Kept month after month, a segment of the first month's model empties (its customers
    lapse into others) and later takes customers again: that month's run compares as usual,
    the segment emerged under its own id, no name is shared."""
    path, _ = _table("invoices", tmp_path)
    out = tmp_path / "series"
    result = CliRunner().invoke(main, ["backfill", str(path), "--from", "2010-12", "--to",
                                       "2011-09", "--out", str(out), "--format", "json", "-q"])
    assert result.exit_code == 0, result.output
    listed = json.loads(CliRunner().invoke(main, ["history", "--out", str(out), "--json"]).output)
    assert len(listed) == 10 and all(h["policy"] == "keep" for h in listed[1:])
    transitions = []
    for h in listed[1:]:
        summary = json.loads((out / h["folder"] / "summary.json").read_text())
        names = [s["name"] for s in summary["segments"]]
        assert len(set(names)) == len(names)
        transitions += [(h["period"], s["id"], s["transition"])
                        for s in summary["changes"]["segments"]]
    emptied = {i for _, i, t in transitions if t == "disappeared"}
    back = [(p, i) for p, i, t in transitions if t == "emerged"]
    assert back and all(i in emptied for _, i in back), transitions
