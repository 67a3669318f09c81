"""Order lines in, customers out: detection, the aggregation (hand-computed), RFM, loading."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reportgen.config import Config, TransactionsConfig, load_config
from reportgen.errors import ConfigError
from reportgen.load import load
from reportgen.orders import aggregate, detect
from reportgen.rfm import group_table, load_groups, rfm, score, summarise, summarise_cells
from tests import customer_tables, tables
from tests.order_tables import cdnow_text, invoice_lines, order_export, write_csv

# ../shared/data beside the checkout (a worktree sits one folder deeper); not bundled.
CDNOW = next((p / "shared" / "data" / "transactions" / "CDNOW_master.txt"
              for p in Path(__file__).resolve().parents[2:4]
              if (p / "shared" / "data" / "transactions").is_dir()), Path("CDNOW_master.txt"))
# Derived features an order table may give; ids and invoice numbers are never among them.
ORDER_FEATURES = {"recency", "frequency", "total_spend", "tenure_months", "avg_basket",
                  "items_per_order", "days_between_orders", "active_months",
                  "spend_last_window", "spend_prev_window", "spend_trend", "return_share",
                  "deal_share", "one_time"}


def tiny() -> pd.DataFrame:
    """Six orders, hand-computed below. Customer A: two orders and a cancellation; B: one
    order late on the last day; C: only a cancellation; one order without a customer; one
    line exported twice."""
    rows = [
        ("1", "A", "1/1/20 9:00", 2, 5.0),
        ("1", "A", "1/1/20 9:00", 1, 10.0),
        ("2", "A", "3/15/20 10:30", 3, 10.0),
        ("2", "A", "3/15/20 10:30", 3, 10.0),  # exact duplicate
        ("C3", "A", "3/16/20 11:00", -1, 10.0),
        ("4", "B", "3/31/20 23:10", 1, 100.0),
        ("C5", "C", "2/1/20 12:00", -2, 5.0),
        ("6", "", "2/2/20 13:00", 1, 50.0),
    ]
    return pd.DataFrame(rows, columns=["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity",
                                       "UnitPrice"])


def _cfg(**report: object) -> Config:
    cfg = Config()
    return dataclasses.replace(cfg, report=dataclasses.replace(cfg.report, **report))


def _aggregate(frame: pd.DataFrame, cfg: Config | None = None):  # type: ignore[no-untyped-def]
    cfg = cfg or Config()
    cols = detect(frame, cfg.transactions)
    assert cols is not None
    return aggregate(frame, cols, cfg)


# the aggregation, by hand ----------------------------------------------------------------

def test_tiny_table_aggregates_to_hand_computed_features() -> None:
    o = _aggregate(tiny())
    assert o.as_of == dt.date(2020, 3, 31)  # B's order at 23:10 on the last day counts
    assert list(o.customers.index) == ["A", "B"]
    a, b = o.customers.loc["A"], o.customers.loc["B"]
    # A: orders 1 (2×5 + 1×10 = 20) and 2 (3×10 = 30); C3 takes back 10.
    assert a["frequency"] == 2
    assert a["total_spend"] == pytest.approx(40.0)
    assert a["avg_basket"] == pytest.approx(25.0)  # 50 bought / 2 orders
    assert a["items_per_order"] == pytest.approx(3.0)  # (2 + 1 + 3) / 2
    assert a["recency"] == 16  # 15 March → 31 March
    assert a["tenure_months"] == pytest.approx(90 / 30.4375)  # 1 January → 31 March 2020
    assert a["days_between_orders"] == 74  # 1 January → 15 March, one gap
    assert a["active_months"] == 2
    assert a["return_share"] == pytest.approx(0.2)  # 10 returned of 50 bought
    # Window of 90 days up to 31 March: from 2 January. Order 2 and C3 inside (30 - 10),
    # order 1 in the 90 days before.
    assert a["spend_last_window"] == pytest.approx(20.0)
    assert a["spend_prev_window"] == pytest.approx(20.0)
    assert a["spend_trend"] == pytest.approx(0.0)
    assert (b["frequency"], b["total_spend"], b["recency"], b["spend_trend"]) == (1, 100, 0, 1)
    assert b["days_between_orders"] == 0  # one order, today: the gap is at least 0 days
    s = o.stats
    assert (s.lines, s.duplicates, s.no_customer, s.used, s.customers) == (8, 1, 1, 5, 2)
    assert s.no_customer_revenue_share == pytest.approx(50 / 200)
    assert s.after_as_of == 0
    assert o.excluded.to_dict() == {"C": "only returns or cancellations: 1 lines, no purchase"}
    assert o.method_line() == ("5 order lines of 2 customers, aggregated to customers as of "
                               "2020-03-31")
    actions = [(step.column, step.action, step.rows) for step in o.log]
    assert ("*", "excluded rows", 1) in actions
    assert ("CustomerID", "excluded rows", 1) in actions
    assert ("CustomerID", "excluded customers", 1) in actions
    assert o.date_format == "%m/%d/%y %H:%M"


def test_active_months_are_counted_alike_over_short_and_long_spans() -> None:
    # Up to 64 months the months are bits of one integer; beyond, a distinct count.
    def lines(first: str) -> pd.DataFrame:
        days = [first, "2020-01-03", "2020-01-20", "2020-03-05", "2020-03-06", "2020-06-30"]
        return pd.DataFrame({"customer": ["A", "A", "A", "B", "A", "B"],
                             "order_date": pd.to_datetime(days),
                             "amount": [5.0, 10.0, 20.0, 30.0, 40.0, 50.0]})

    short, long_ = _aggregate(lines("2019-12-31")), _aggregate(lines("2014-01-02"))
    assert short.customers.loc["A", "active_months"] == 3  # Dec 2019, Jan and Mar 2020
    assert long_.customers.loc["A", "active_months"] == 3  # Jan 2014, Jan and Mar 2020
    assert short.customers.loc["B", "active_months"] == long_.customers.loc["B", "active_months"]
    assert short.customers.loc["B", "active_months"] == 2


def test_as_of_cuts_the_lines_and_says_why() -> None:
    o = _aggregate(tiny(), _cfg(as_of=dt.date(2020, 3, 15)))
    assert list(o.customers.index) == ["A"]  # B ordered later; C3 (16 March) is left out too
    a = o.customers.loc["A"]
    assert (a["frequency"], a["total_spend"], a["recency"]) == (2, 50.0, 0)
    assert "return_share" not in o.customers  # no return left before as_of
    assert o.stats.after_as_of == 2
    step = next(s for s in o.log if "after as_of" in s.detail)
    assert step.rows == 2 and "2020-03-15" in step.detail and step.column == "InvoiceDate"


def test_without_an_order_number_orders_are_distinct_days() -> None:
    frame = tiny().drop(columns="InvoiceNo")
    frame = frame[frame["Quantity"] > 0]
    frame = pd.concat([frame, pd.DataFrame([("A", "3/15/20 18:00", 1, 2.0)],
                                           columns=frame.columns)], ignore_index=True)
    o = _aggregate(frame)
    assert o.customers.loc["A", "frequency"] == 2  # two lines on 15 March are one order day
    assert "distinct order days" in o.features["frequency"].description


def test_negative_net_spend_is_set_to_zero_and_logged() -> None:
    rows = [("1", "A", "1/1/20 9:00", 1, 10.0), ("C2", "A", "1/13/20 9:00", -3, 10.0),
            ("3", "B", "1/14/20 9:00", 2, 10.0)]
    frame = pd.DataFrame(rows, columns=["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity",
                                        "UnitPrice"])
    o = _aggregate(frame)
    assert o.customers.loc["A", "total_spend"] == 0
    assert o.stats.negative_net == 1
    assert any(s.action == "set to zero" and s.rows == 1 for s in o.log)


# the three shapes and CDNOW ----------------------------------------------------------------

def test_invoice_lines_zero_config(tmp_path: Path) -> None:
    frame, facts = invoice_lines()
    loaded = load(write_csv(frame, tmp_path / "invoices.csv"), Config().input)
    cols = detect(loaded.frame, TransactionsConfig())
    assert cols is not None
    assert (cols.customer, cols.order, cols.date, cols.quantity, cols.price, cols.country) == \
        ("CustomerID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "Country")
    assert cols.amount is None  # Quantity × UnitPrice
    o = aggregate(loaded.frame, cols, Config())
    assert set(o.customers.index) == facts.customers  # one row per customer, none imputed
    assert o.stats.customers == len(facts.customers)
    assert o.stats.no_customer == facts.no_customer_lines
    assert o.stats.duplicates == facts.duplicate_lines
    assert set(o.excluded.index) == facts.only_returns
    assert o.as_of == facts.last_day and o.stats.after_as_of == 0  # 23:59 is not the future
    assert o.customers.loc["12346", "recency"] == 0
    assert o.stats.returns > 0 and o.customers["return_share"].max() > 0
    names = set(o.customers.columns)
    assert names - {c for c in names if c.startswith("country_")} <= ORDER_FEATURES
    for name in names:  # no id, invoice or stock code ever becomes a feature
        assert not any(w in name for w in ("customer", "invoice", "stock", "id"))
    countries = [c for c in names if c.startswith("country_")]
    assert o.customers[countries].sum(axis=1).round(6).eq(1).all()


def test_order_export_zero_config(tmp_path: Path) -> None:
    frame, facts = order_export()
    loaded = load(write_csv(frame, tmp_path / "orders.csv"), Config().input)
    cols = detect(loaded.frame, TransactionsConfig())
    assert cols is not None
    assert (cols.customer, cols.order, cols.date, cols.amount, cols.discount, cols.category) \
        == ("Customer ID", "Order ID", "Order Date", "Sales", "Discount", "Category")
    o = aggregate(loaded.frame, cols, Config())
    assert set(o.customers.index) == facts.customers
    assert o.stats.returns == 0  # "CA-2016-…" is Canada, not a cancelled invoice
    assert "return_share" not in o.customers  # no return in the data: no feature
    shares = [c for c in o.customers if o.features[c].group == "product_mix"]
    assert sorted(shares) == ["share_furniture", "share_office_supplies", "share_technology"]
    assert o.customers[shares].sum(axis=1).round(6).eq(1).all()
    kinds = pd.Series(facts.kinds)
    deal = o.customers["deal_share"].groupby(kinds).mean()
    assert deal["deal_hunter"] > 0.5 and deal.drop("deal_hunter").max() == 0
    tech = o.customers["share_technology"].groupby(kinds).mean()
    assert tech["tech_regular"] == 1.0


def test_cdnow_shaped_text_loads_zero_config(tmp_path: Path) -> None:
    text, facts = cdnow_text()
    path = tmp_path / "CDNOW_sample.txt"
    path.write_text(text, newline="")
    loaded = load(path, Config().input)
    assert list(loaded.frame.columns) == ["customer_id", "date", "number_of_cds",
                                          "dollar_value"]
    assert loaded.delimiter == " "
    assert loaded.frame["customer_id"].iloc[0] == "00001"  # zero-padded id kept as text
    o = _aggregate(loaded.frame)
    assert set(o.customers.index) == facts.customers
    assert o.as_of == facts.last_day and o.date_format == "%Y%m%d"
    assert o.stats.used == facts.lines


@pytest.mark.skipif(not CDNOW.exists(), reason="CDNOW_master.txt is not on this machine")
def test_cdnow_master_zero_config() -> None:
    loaded = load(CDNOW, Config().input)
    assert loaded.frame.shape == (69659, 4)
    o = _aggregate(loaded.frame)
    assert len(o.customers) == 23570 == loaded.frame["customer_id"].nunique()
    assert o.as_of == dt.date(1998, 6, 30)
    assert o.stats.duplicates == 255 and o.stats.used == 69659 - 255
    assert o.method_line() == ("69,404 order lines of 23,570 customers, aggregated to "
                               "customers as of 1998-06-30")


# detection --------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [tables.marketing_table, customer_tables.credit_card_table,
                                  customer_tables.telecom_table, customer_tables.mall_table,
                                  customer_tables.wholesale_table])
def test_customer_tables_are_not_order_lines(make) -> None:  # type: ignore[no-untyped-def]
    assert detect(make(), TransactionsConfig()) is None


def test_rows_setting_forces_or_forbids_aggregation() -> None:
    frame, _ = invoice_lines(40)
    assert detect(frame, TransactionsConfig(rows="customers")) is None
    with pytest.raises(ConfigError, match="no amount"):
        detect(tables.marketing_table().drop(columns=[c for c in tables.marketing_table()
                                                       if c.startswith(("Mnt", "Num"))]),
               TransactionsConfig(rows="orders"))


def test_pinned_columns_are_checked() -> None:
    frame, _ = invoice_lines(40)
    with pytest.raises(ConfigError, match="'CustomerNo'.*did you mean 'CustomerID'"):
        detect(frame, TransactionsConfig(customer="CustomerNo"))
    renamed = frame.rename(columns={"CustomerID": "Kunde", "InvoiceDate": "Wann"})
    assert detect(renamed, TransactionsConfig()) is None  # names say nothing: not guessed
    cols = detect(renamed, TransactionsConfig(customer="Kunde", date="Wann"))
    assert cols is not None and (cols.customer, cols.date) == ("Kunde", "Wann")
    assert cols.notes["customer"].startswith("set in the config")


def test_transactions_config_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "reportgen.toml"
    path.write_text('[transactions]\ncustomr = "CustomerID"\n')
    with pytest.raises(ConfigError, match="did you mean 'customer'"):
        load_config(path)
    path.write_text('[transactions]\nrows = "lines"\n')
    with pytest.raises(ConfigError, match="transactions.rows"):
        load_config(path)
    path.write_text('[transactions]\nprice = "UnitPrice"\n')
    with pytest.raises(ConfigError, match="needs 'transactions.quantity'"):
        load_config(path)
    path.write_text('[transactions]\ncustomer = "CustomerID"\norder = "InvoiceNo"\n')
    assert load_config(path).transactions.order == "InvoiceNo"


# loading ------------------------------------------------------------------------------------

def test_zero_padded_codes_stay_text_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,zip,n\n1,01234,5\n2,10115,0\n3,00501,7\n")
    frame = load(path, Config().input).frame
    assert frame["zip"].tolist() == ["01234", "10115", "00501"]
    assert frame["n"].dtype.kind == "i" and frame["id"].dtype.kind == "i"


def test_whitespace_aligned_text_needs_no_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("  name   score  when\n  ann      1.5  20200101\n  bob     12.0  20200102\n")
    loaded = load(path, Config().input)
    assert loaded.delimiter == " "
    assert loaded.frame.to_dict("list") == {"name": ["ann", "bob"], "score": [1.5, 12.0],
                                            "when": [20200101, 20200102]}


# RFM ------------------------------------------------------------------------------------------

def test_scores_are_quintiles_with_ties_kept_together() -> None:
    assert score(pd.Series(range(10))).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # six customers tied at the bottom all score 1; two orders beat 60% of customers: 4
    assert score(pd.Series([1, 1, 1, 1, 1, 1, 2, 2, 3, 4])).tolist() == \
        [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    # recency: fewer days is better
    assert score(pd.Series([0, 10, 20, 30, 40]), higher_is_better=False).tolist() == \
        [5, 4, 3, 2, 1]
    assert score(pd.Series([7.0] * 4)).tolist() == [1, 1, 1, 1]


def test_rfm_codes_and_groups() -> None:
    recency = pd.Series([1, 400, 3, 200, 500], index=list("abcde"))
    frequency = pd.Series([9, 8, 1, 3, 1], index=list("abcde"))
    monetary = pd.Series([900, 800, 20, 300, 10], index=list("abcde"))
    t = rfm(recency, frequency, monetary)
    # R: a does better than 4 of 5 (→ 5), b than 1 (→ 2), c 3, d 2, e none; F and M alike.
    assert t["r_score"].tolist() == [5, 2, 4, 3, 1]
    assert t["m_score"].tolist() == [5, 4, 2, 3, 1]
    assert t["rfm_score"].tolist() == ["555", "244", "412", "333", "111"]
    assert t["rfm_group"].tolist() == ["Champions", "Can't lose them", "Promising",
                                       "Need attention", "Lost"]



def test_rfm_table_from_cells_is_the_table_from_customers() -> None:
    """summarise_cells (the Spark engine's: customers counted with their sums per segment and
    score) gives summarise's table: the same groups, counts, grid and segments' groups, the
    means to rounding."""
    rng = np.random.default_rng(4)
    n = 700
    recency = pd.Series(rng.integers(0, 365, n).astype(float))
    frequency = pd.Series(rng.choice([1.0, 1.0, 1.0, 2.0, 3.0, 5.0, 9.0], n))
    monetary = pd.Series(np.round(rng.gamma(2.0, 80.0, n), 2))
    segment = pd.Series(rng.integers(1, 5, n))
    groups = load_groups()
    scores = rfm(recency, frequency, monetary, groups)
    expected = summarise(scores, segment, recency, frequency, monetary, groups)
    cells = pd.DataFrame({"segment": segment, "r_score": scores["r_score"],
                          "f_score": scores["f_score"], "m_score": scores["m_score"],
                          "recency": recency, "frequency": frequency, "monetary": monetary}) \
        .groupby(["segment", "r_score", "f_score", "m_score"]) \
        .agg(customers=("recency", "size"), recency=("recency", "sum"),
             frequency=("frequency", "sum"), monetary=("monetary", "sum")).reset_index()
    got = summarise_cells(cells, groups)
    assert got.grid == expected.grid and got.by_segment == expected.by_segment
    assert sum(c.customers for c in got.grid) == n
    assert list(got.by_segment) == sorted(got.by_segment, key=int)
    assert [(g.name, g.customers) for g in got.groups] == \
        [(g.name, g.customers) for g in expected.groups]
    for x, y in zip(got.groups, expected.groups, strict=True):
        for figure in ("share", "value_share", "recency", "frequency", "monetary"):
            assert getattr(x, figure) == pytest.approx(getattr(y, figure), rel=1e-12)

def test_default_groups_follow_the_standard_grid() -> None:
    table = group_table(load_groups())
    expected = {"555": "Champions", "545": "Champions", "455": "Loyal", "343": "Loyal",
                "522": "Potential loyalist", "431": "Potential loyalist", "511": "New",
                "415": "Promising", "333": "Need attention", "321": "About to sleep",
                "155": "Can't lose them", "153": "At risk", "243": "At risk",
                "111": "Lost", "122": "Lost", "115": "Hibernating", "211": "Hibernating"}
    assert {code: table[code] for code in expected} == expected
    assert len(table) == 125 and len(set(table.values())) == 11


def test_groups_must_cover_every_code(tmp_path: Path) -> None:
    path = tmp_path / "rfm.toml"
    path.write_text('[[group]]\nname = "Recent"\nr = [3, 5]\n')
    with pytest.raises(ConfigError, match="no group for RFM code 111"):
        load_groups(path)
    path.write_text('[[group]]\nname = "All"\nr = [0, 5]\n')
    with pytest.raises(ConfigError, match="r must be \\[low, high\\]"):
        load_groups(path)
    path.write_text('[[group]]\nname = "All"\n')
    assert group_table(load_groups(path))["345"] == "All"


def test_unreadable_and_wild_lines_are_left_out_with_reasons() -> None:
    rows = [("1", "A", "1/13/20 9:00", "2", "5.0", "shipped"),
            ("2", "A", "2/14/20 9:00", "1", "n/a", "shipped"),  # no amount
            ("3", "B", "someday", "1", "10", "shipped"),  # no date
            ("4", "B", "2/15/20 9:00", "1", "$1,000.00", "shipped"),
            ("5", "B", "2/16/29 9:00", "1", "10", "shipped"),  # 2029 among 2020: a typo
            ("6", "B", "2/17/20 9:00", "1", "10", "Refunded")]
    rows += [(str(10 + i), "C", f"1/{i + 1}/20 9:00", "1", "3", "shipped") for i in range(20)]
    frame = pd.DataFrame(rows, columns=["Order", "Customer", "Order Date", "Qty", "Price",
                                        "Status"])
    o = _aggregate(frame)
    assert (o.stats.bad_amounts, o.stats.bad_dates, o.stats.wild_dates) == (1, 1, 1)
    details = {s.detail.split(",")[0]: s.rows for s in o.log}
    assert details["'someday' is not a date (%m/%d/%y %H:%M)"] == 1
    assert details["no readable amount"] == 1
    assert details["2029-02-16 (first at row 6)"] == 1
    assert o.as_of == dt.date(2020, 2, 17)  # the typo does not become the snapshot date
    b = o.customers.loc["B"]
    assert b["total_spend"] == pytest.approx(990.0)  # $1,000.00 read; the refund of 10 is off
    assert b["frequency"] == 1 and b["return_share"] == pytest.approx(0.01)


@pytest.mark.parametrize("names", [
    {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"},  # Online Retail II
    {"InvoiceNo": "order_id", "InvoiceDate": "order_purchase_timestamp",
     "CustomerID": "customer_unique_id", "UnitPrice": "price", "Quantity": "quantity"},
])
def test_other_spellings_of_the_columns_are_found(names: dict[str, str]) -> None:
    frame, facts = invoice_lines(40)
    frame = frame.rename(columns=names)
    o = _aggregate(frame)
    assert set(o.customers.index) == facts.customers


def test_exact_duplicates_are_found_in_a_table_many_threads_read() -> None:
    from reportgen.orders import OrderColumns, _connect, line_table

    rng = np.random.default_rng(3)
    n = 300_000
    frame = pd.DataFrame({"customer": rng.integers(0, 50_000, n).astype(str),
                          "amount": rng.integers(1, 10_000, n) / 100,
                          "day": pd.Timestamp("2020-01-01")
                          + pd.to_timedelta(rng.integers(0, 400, n), unit="D")})
    copies = rng.choice(n, size=40, replace=False)
    frame = pd.concat([frame, frame.iloc[copies]], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=4).reset_index(drop=True)  # copies anywhere
    con = _connect()
    try:
        lines = line_table(frame, OrderColumns(customer="customer", date="day", amount="amount"),
                           Config(), con=con)
        found = con.execute("SELECT _row FROM typed WHERE _dup ORDER BY 1").fetchnumpy()["_row"]
    finally:
        con.close()
    expected = np.flatnonzero(frame.duplicated(keep="first").to_numpy())
    assert len(expected) >= 40
    assert lines.stats.duplicates == len(expected)
    assert (np.asarray(found) == expected).all()


@pytest.mark.parametrize("statement, refusal", [
    ("SELECT * FROM read_csv('{secret}')", "file system operations are disabled"),
    ("SELECT * FROM read_text('{secret}')", "file system operations are disabled"),
    ("COPY (SELECT 42) TO '{made}'", "file system operations are disabled"),
    ("ATTACH '{made}' AS other", "file system operations are disabled"),
    ("INSTALL httpfs", "Permission Error"),
    ("LOAD httpfs", "Loading external extensions is disabled"),
    ("SET enable_external_access = true", "Cannot change configuration option"),
    ("SET lock_configuration = false", "Cannot change configuration option"),
])
def test_the_duckdb_connection_reaches_no_file_and_cannot_be_opened_up(
        tmp_path: Path, statement: str, refusal: str) -> None:
    import duckdb

    from reportgen.orders import _connect

    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    made = tmp_path / "made.out"
    con = _connect()
    try:
        con.register("lines", pd.DataFrame({"a": [1, 2]}))  # frames handed in still work
        assert con.execute("SELECT sum(a) FROM lines").fetchone() == (3,)
        with pytest.raises(duckdb.Error, match=refusal):
            con.execute(statement.format(secret=secret, made=made))
    finally:
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv"]


def test_hostile_column_names_reach_no_file(tmp_path: Path) -> None:
    """Column names are quoted into DuckDB's SQL; one that tried to close the quote and run a
    statement of its own is only a name, and could reach no file if it were not."""
    frame, facts = invoice_lines(40)
    made = tmp_path / "made.csv"
    hostile = f"x\"); COPY (SELECT 1) TO '{made}'; --"
    frame[hostile] = "note"
    frame[f"y'; ATTACH '{tmp_path / 'other.db'}'; --"] = 1
    o = _aggregate(frame)
    assert set(o.customers.index) == facts.customers
    assert list(tmp_path.iterdir()) == []


def test_small_words_of_order_reports() -> None:
    from reportgen import fmt
    from reportgen.personas import evidence

    # a category level written as a name keeps its case; a plain word is lower-cased
    assert evidence("Office Supplies share", "share", 1.0, 0.31, "$", "Office Supplies") == \
        "Office Supplies share 100% vs 31% overall"
    assert evidence("Technology share", "share", 1.0, 0.31, "$", "Technology") == \
        "technology share 100% vs 31% overall"
    assert evidence("Days since last order", "days", 277, 91, "$") == \
        "days since last order 277 vs 91 overall"
    # a money ratio when it says something: not "(0.0×)" next to $0
    assert evidence("Net spend", "money", 3189, 1013, "$").endswith("(3.1×)")
    assert evidence("Spend last 90 days", "money", 0.0, 98, "$") == \
        "spend last 90 days $0 vs $98 overall"
    # 76 of 23,570 customers is not "0%"; a spend trend of -0.01 is not "-0.0"
    assert (fmt.share(76 / 23570), fmt.share(0.0), fmt.share(0.213)) == ("<1%", "0%", "21%")
    assert (fmt.num(-0.01), fmt.num(-0.3), fmt.num(2.0)) == ("0.0", "-0.3", "2")
