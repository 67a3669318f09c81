"""Columns read with the meaning they have (issue 12): extreme amounts set aside as listed
outliers, ratings, durations, one-purchase amounts, coded categories, earlier labels and bank
contact columns in their roles, rates capped, shares of nothing left missing, brand-new
subscribers' charges 0. The tables are built in code (tests/meaning_tables.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reportgen import pipeline
from reportgen.clean import clean
from reportgen.config import Config
from reportgen.features import build_features
from reportgen.personas import evidence
from reportgen.schema import CONTACT_NOTE, infer_schema

from . import meaning_tables as mt
from .runs import only_run


def _config(formats: tuple[str, ...] = ("json",)) -> Config:
    cfg = Config()
    return dataclasses.replace(
        cfg, report=dataclasses.replace(cfg.report, formats=list(formats)),
        segment=dataclasses.replace(cfg.segment, stability_runs=0))


def run(frame: pd.DataFrame, tmp_path: Path, formats: tuple[str, ...] = ("json",)
        ) -> pipeline.RunResult:
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return pipeline.run(str(path), _config(formats), tmp_path / "out")


def prepared(frame: pd.DataFrame):
    schema = infer_schema(frame, {})
    cleaned = clean(frame, schema, Config())
    return schema, cleaned, build_features(cleaned, schema, Config())


def traits(report) -> str:
    return " | ".join(t.text for s in report.segments for t in s.traits)


# outliers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wholesale_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wholesale")
    frame = mt.wholesale()
    return frame, run(frame, tmp, formats=("html",))


def test_extreme_wholesale_accounts_are_listed_as_outliers_with_their_reason(wholesale_run):
    frame, result = wholesale_run
    report = result.report
    extreme_rows = sorted(int(i) + 2 for i in frame.index[frame["Frozen"] >= 1_000_000])
    assert report.outliers is not None
    listed = report.outliers.customers
    assert sorted(o.row for o in listed) == extreme_rows
    fence = re.compile(r"^Frozen [\d,]+ above the fence ([\d,]+)$")
    for o in listed:
        m = fence.match(o.reason)
        assert m, o.reason
        assert 100_000 < float(m.group(1).replace(",", "")) < 1_000_000
    assert [o.value for o in listed] == sorted((o.value for o in listed), reverse=True)
    assert listed[0].value == pytest.approx(frame.iloc[:, 2:].sum(axis=1).max())
    steps = [s for s in report.cleaning if s.action == "set aside"]
    assert [s.column for s in steps] == ["Frozen", "total spend"]
    assert steps[0].rows == 12 and "23,000,000" in steps[0].detail
    assert "quartile" in steps[0].reason
    # with and without them
    rest = frame.drop(index=[r - 2 for r in extreme_rows]).iloc[:, 2:].sum(axis=1)
    assert report.headline.customers == len(frame) - 12
    assert report.headline.total_value == pytest.approx(rest.sum())
    assert report.outliers.total_value_with == pytest.approx(frame.iloc[:, 2:].sum().sum())
    assert report.headline.value_per_customer == pytest.approx(rest.mean())
    assert report.headline.value_per_customer < 2 * rest.median()
    assert any("set aside as outliers" in a and "without them" in a and "with them" in a
               for a in report.attention)


def test_outliers_form_no_segment_and_k_is_chosen_on_the_rest(wholesale_run):
    _, result = wholesale_run
    report = result.report
    assert report.method.k > 2
    chosen = next(r for r in report.method.k_table if r.chosen)
    assert chosen.min_share >= 0.05
    assert sum(s.size for s in report.segments) == report.headline.customers
    # every k of 3..5 was eligible: no micro-segment of outliers blocked it
    assert all(r.eligible for r in report.method.k_table if 3 <= r.k <= 5)


def test_outliers_are_in_segments_csv_and_summary_json_left_out_with_the_reason(wholesale_run):
    frame, result = wholesale_run
    run_dir = result.run_dir
    csv = pd.read_csv(run_dir / "segments.csv", keep_default_na=False, dtype=str)
    aside = csv[csv["left_out"].str.startswith("outlier: ")]
    assert len(aside) == 12
    assert (aside["segment"] == "").all() and (aside["persona"] == "").all()
    assert aside["left_out"].str.contains("above the fence").all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["outliers"]["customers"]) == 12
    assert summary["outliers"]["rule"].startswith("upper quartile")


def test_the_report_lists_the_outliers_and_gives_totals_with_and_without(wholesale_run):
    import html

    _, result = wholesale_run
    page = html.unescape(re.sub(r"<[^>]+>|\s+", " ", (result.run_dir / "report.html")
                                .read_text(encoding="utf-8")))
    page = re.sub(r"\s+", " ", page)
    o = result.report.outliers
    assert "Customers set aside as outliers" in page
    for c in o.customers:
        assert c.reason in page
    # a wholesaler's value measure is its revenue (issue 12: the value measure per business)
    assert re.search(r"Total revenue \$11\.\dM without the 12 outliers, \$1\d\d\.\dM with "
                     r"them", page), re.findall(r"Total revenue [^.]*\.", page)[:3]


def test_a_coded_category_reads_as_a_category(wholesale_run):
    _, result = wholesale_run
    text = traits(result.report)
    assert not re.search(r"channel: \d", text, re.I), text
    assert not re.search(r"region: \d", text, re.I), text
    labels = {f.label for f in result.report.features if f.name.startswith("cat_")}
    assert "Channel 1" in labels
    assert evidence("Channel 1", "share", 0.96, 0.68, "$", level="1") == \
        "Channel 1: 96% of the segment vs 68% overall"


def test_scoring_with_the_learned_decisions_sets_the_same_accounts_aside():
    frame = mt.wholesale()
    schema, cleaned, _ = prepared(frame)
    again = clean(frame, schema, Config(), decisions=cleaned.decisions)
    assert list(again.outliers.index) == list(cleaned.outliers.index)
    fence = cleaned.decisions.numbers["Frozen"].set_aside_above
    assert fence is not None
    batch = frame.head(5).copy()
    batch.loc[0, "Frozen"] = fence * 2
    scored = clean(batch, schema, Config(), decisions=cleaned.decisions)
    assert scored.excluded[0].startswith("outlier: Frozen")
    assert len(scored.frame) == 4


def test_a_long_tail_is_not_a_list_of_outliers():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": range(400), "age": rng.integers(20, 70, 400),
                          "spend": np.exp(rng.normal(5, 1, 400)).round(2)})
    frame.loc[:39, "spend"] = 10_000_000.0  # a tenth of the table: a tail, not a few accounts
    _, cleaned, _ = prepared(frame)
    assert cleaned.outliers is None and len(cleaned.excluded) == 0
    (step,) = [s for s in cleaned.log if s.column == "spend" and s.action == "kept"]
    assert step.rows == 40


def test_the_sample_sets_nobody_aside():
    from reportgen.load import load

    frame = load(None, Config().input).frame
    schema, cleaned, _ = prepared(frame)
    assert cleaned.outliers is None
    assert not [s for s in cleaned.log if s.action in ("set aside", "kept")]


# meaning checks ---------------------------------------------------------------------------

def test_session_minutes_are_durations_not_web_visits(tmp_path):
    frame = mt.ecommerce()
    schema, cleaned, ff = prepared(frame)
    assert schema.roles["Avg. Session Length"] == "duration"
    assert schema.roles["Time on App"] == "duration"
    assert schema.roles["Time on Website"] == "duration"
    assert schema.roles["Email"] == schema.roles["Address"] == "ignore"
    assert "web_visits" not in ff.frame
    session = ff.meta["time_avg_session_length"]
    assert session.unit == "minutes" and "not a count of visits" in session.description
    # Length of Membership: fractions up to 6.9 are years, shown as months
    assert schema.roles["Length of Membership"] == "tenure"
    assert "years" in ff.meta["tenure_months"].description
    assert ff.frame["tenure_months"].max() == pytest.approx(frame["Length of Membership"].max()
                                                            * 12)
    report = run(frame, tmp_path).report
    text = traits(report)
    assert "visits" not in text.lower()
    for found in re.finditer(r"(session length|time on (app|website)) ([\d.]+)( \w+)?", text,
                             re.I):
        assert found.group(4) == " minutes", text
    assert not any("Offline" in s.name or "Online" in s.name for s in report.segments)


def test_a_review_rating_is_no_spending_score_and_one_purchase_is_no_basket(tmp_path):
    frame = mt.survey()
    schema, cleaned, ff = prepared(frame)
    assert schema.roles["Review Rating"] == "rating"
    assert schema.roles["Purchase Amount (USD)"] == "spend"
    assert "avg_basket" not in ff.frame
    assert ff.value == "total_spend"
    rating = ff.meta["rating_review_rating"]
    assert rating.group == "satisfaction" and "rating_review_rating" not in ff.model
    (step,) = [s for s in cleaned.log if s.action == "not divided"]
    assert "Purchase Amount (USD)" in step.detail and "Previous Purchases" in step.detail
    report = run(frame, tmp_path).report
    assert report.value_label == "spend"
    text = traits(report).lower()
    assert "spending score" not in text and "average basket" not in text
    assert not any("score" in s.name.lower() for s in report.segments)


def test_an_earlier_segmentation_is_left_out_of_features_and_traits(tmp_path):
    frame = mt.earlier_segments()
    schema, cleaned, ff = prepared(frame)
    earlier = ["Cluster", "R", "F", "M", "RFM_Score", "RFM_Segment"]
    assert {c: schema.roles[c] for c in earlier} == dict.fromkeys(earlier, "ignore")
    logged = {s.column: s for s in cleaned.log if s.action == "ignored column"}
    assert "earlier segmentation" in logged["Cluster"].detail
    for column in ["R", "F", "M", "RFM_Score", "RFM_Segment"]:
        assert "RFM" in logged[column].detail
    assert all(logged[c].reason.startswith("not a trait of the customer") for c in earlier)
    described = " ".join(m.description for m in ff.meta.values())
    assert not any(re.search(rf"\b{c}\b", described) for c in earlier), described
    report = run(frame, tmp_path).report
    text = traits(report)
    assert not re.search(r"\b(cluster|rfm|[rfm]) \d", text, re.I), text
    # a key spelled CLIENTNUM is the key, not a number to cluster on
    keyed = frame.rename(columns={"CustomerID": "CLIENTNUM"})
    assert infer_schema(keyed, {}).roles["CLIENTNUM"] == "id"


def test_bank_contact_columns_never_feed_the_model():
    frame = mt.bank()
    schema, cleaned, ff = prepared(frame)
    contact = ["contact", "day", "month", "duration", "campaign", "pdays", "previous",
               "poutcome"]
    assert {c: schema.roles[c] for c in contact} == dict.fromkeys(contact, "ignore")
    assert all(schema.notes[c] == CONTACT_NOTE for c in contact)
    described = " ".join(m.description for m in ff.meta.values())
    assert not any(re.search(rf"\b{c}\b", described) for c in contact)
    assert schema.roles["balance"] == "balance" and "balance" in ff.model
    # without the telling columns a "duration" is time spent, not a call
    assert infer_schema(frame[["age", "balance", "duration"]], {}).roles["duration"] == "duration"


# arithmetic -------------------------------------------------------------------------------

def test_a_frequency_above_one_is_capped_not_imputed():
    frame = mt.cards()
    schema, cleaned, ff = prepared(frame)
    over = frame["CASH_ADVANCE_FREQUENCY"] > 1
    steps = [s for s in cleaned.log if s.column == "CASH_ADVANCE_FREQUENCY"]
    assert [(s.action, s.rows) for s in steps] == [("capped", int(over.sum()))]
    assert "1.50 → 1" in steps[0].detail
    rate = ff.frame["rate_cash_advance_frequency"]
    assert (rate[over.to_numpy()] == 1.0).all()
    assert rate.max() == 1.0


def test_shares_of_nothing_are_missing_and_means_skip_them(tmp_path):
    frame = mt.cards()
    _, _, ff = prepared(frame)
    nothing = (frame["PURCHASES"] == 0).to_numpy()
    assert ff.frame.loc[nothing, "share_one_off"].isna().all()
    assert ff.frame.loc[~nothing, "share_one_off"].notna().all()
    bought = ff.frame.loc[~nothing]
    assert ff.frame["share_one_off"].mean() == pytest.approx(bought["share_one_off"].mean())
    # the model still sees a number: the median of those who bought
    x = ff.matrix(["share_one_off", "share_instalments"])
    assert np.isfinite(x).all()
    assert x[nothing, 0] == pytest.approx(np.full(nothing.sum(), bought["share_one_off"].median()))
    report = run(frame, tmp_path).report
    for s in report.segments:
        if "share_one_off" in s.means:  # absent: nobody in the segment bought anything
            # the text (mean of shares) and the mix chart (the same means) agree: the two
            # shares of those who bought add up to the whole
            assert s.means["share_one_off"] + s.means["share_instalments"] == pytest.approx(1.0)
    csv = pd.read_csv(only_run(tmp_path / "out") / "segments.csv", keep_default_na=False,
                      dtype=str)
    if "share_one_off" in csv:
        ids = frame["CUST_ID"][nothing]
        assert (csv.set_index("CUST_ID").loc[ids, "share_one_off"] == "").all()


def test_blank_charges_of_brand_new_subscribers_are_zero():
    frame = mt.telecom()
    schema, cleaned, ff = prepared(frame)
    steps = [s for s in cleaned.log if s.column == "TotalCharges" and s.action == "imputed"]
    assert [(s.rows, s.detail) for s in steps] == [(mt.NEW_SUBSCRIBERS,
                                                    "blank → 0 where tenure is 0")]
    new = (frame["tenure"] == 0).to_numpy()
    assert (cleaned.frame.loc[new, "TotalCharges"] == 0).all()
    assert evidence("Tenure", "months", 32, 29.4, "$") == "tenure 32 months vs 29 overall"


def test_the_cleaning_log_counts_only_the_rows_it_keeps():
    frame = mt.telecom()
    blank = pd.DataFrame([[None] * frame.shape[1]] * 40, columns=frame.columns)
    _, cleaned, _ = prepared(pd.concat([frame, blank], ignore_index=True))
    assert len(cleaned.excluded) == 40
    imputed = [s for s in cleaned.log if s.action == "imputed"]
    assert all(s.rows <= mt.NEW_SUBSCRIBERS for s in imputed), imputed
    assert not [s for s in imputed if s.column in ("Churn", "gender", "Contract")]


def test_segments_without_a_vocabulary_word_get_distinct_names_without_numbers():
    from types import SimpleNamespace

    from reportgen.personas import name_personas
    from reportgen.profile import profile

    _, _, ff = prepared(mt.ecommerce())
    labels = (ff.frame["tenure_months"].rank(method="first") * 3 // (len(ff.frame) + 1)) + 1
    profiles = profile(ff, SimpleNamespace(labels=labels.astype(int).to_numpy()))
    personas = name_personas(profiles, ff, "$", "spend", vocab={})
    names = [p.name for p in personas]
    assert len(set(names)) == 3
    assert not any(re.search(r"\(\d+\)$", n) for n in names), names
    assert "Mainstream customers" in names
    assert "Mainstream customers, higher tenure" in names or \
        "Mainstream customers, lower tenure" in names
