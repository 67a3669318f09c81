"""Property-based: whatever table comes in, load + schema + clean (+ features) either work or
raise a ReportgenError (a message for the user) — never any other exception (a bug)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reportgen.clean import CleaningDecisions, clean, require_rows
from reportgen.config import Config, InputConfig
from reportgen.errors import ReportgenError
from reportgen.features import FeatureDecisions, build_features
from reportgen.load import load
from reportgen.schema import infer_schema

# More examples on demand: REPORTGEN_HYPOTHESIS_SCALE=20 python -m pytest tests/test_properties.py
SCALE = int(os.environ.get("REPORTGEN_HYPOTHESIS_SCALE", "1"))

# Names that steer the role inference into every branch, and some that mean nothing.
NAMES = ["ID", "customer_id", "Age", "Year_Birth", "Income", "Annual Income (k$)", "Genre",
         "Dt_Customer", "joined", "tenure", "Recency", "MntWines", "Fresh", "PURCHASES",
         "PURCHASES_TRX", "NumWebPurchases", "NumDealsPurchases", "BALANCE", "CREDIT_LIMIT",
         "CASH_ADVANCE", "PAYMENTS", "PRC_FULL_PAYMENT", "MonthlyCharges", "TotalCharges",
         "Churn", "Complain", "AcceptedCmp1", "Kidhome", "Dependents", "Spending Score",
         "Channel", "Region", "Contract", "Marital_Status", "Education", "row", "notes", "x",
         "", " ", "Ünïcödé", "a,b", 'q"uote', "=cmd", "<b>html</b>", "123"]

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 1e12, 5e-324]))
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
DATES = st.one_of(
    st.dates().map(lambda d: d.strftime("%d-%m-%Y")),
    st.dates().map(lambda d: d.strftime("%m/%d/%Y")),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["31-02-2013", "00-00-0000", "someday", "2099-12-31", "01-02-03"]))
CELL = st.one_of(st.none(), st.integers(-10**15, 10**15), FLOATS, TEXT, DATES,
                 st.sampled_from(["Yes", "No", "yes", "n", "TRUE", "maybe", "", " ", "NA",
                                  "$1,234.50", "12,5", "1.234,56", "inf", "-", "1e308"]))


@st.composite
def column(draw: st.DrawFn, n: int) -> list[object]:
    kind = draw(st.sampled_from(["ints", "floats", "text", "dates", "yesno", "mixed",
                                 "constant", "blank"]))
    if kind == "ints":
        return draw(st.lists(st.integers(-1000, 10**6), min_size=n, max_size=n))
    if kind == "floats":
        return draw(st.lists(FLOATS, min_size=n, max_size=n))
    if kind == "text":
        return draw(st.lists(st.sampled_from(["a", "b", "c", "North", "<script>", "=1+1"])
                             | TEXT, min_size=n, max_size=n))
    if kind == "dates":
        return draw(st.lists(DATES, min_size=n, max_size=n))
    if kind == "yesno":
        return draw(st.lists(st.sampled_from(["Yes", "No", "yes", None, "maybe"]),
                             min_size=n, max_size=n))
    if kind == "constant":
        return [draw(CELL)] * n
    if kind == "blank":
        return [None] * n
    return draw(st.lists(CELL, min_size=n, max_size=n))


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 30))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=7, unique=True))
    return pd.DataFrame({name: draw(column(n)) for name in names})


def stages(frame: pd.DataFrame, cfg: Config, file: str | None = None,
           notes: tuple = ()) -> None:
    schema = infer_schema(frame, cfg.columns, file=file, scale=cfg.scale)
    cleaned = clean(frame, schema, cfg, file=file, notes=notes)
    require_rows(cleaned, cfg, file=file)
    ff = build_features(cleaned, schema, cfg, file=file)
    # What the later stages rely on: one row per kept customer, no infinite number, and a
    # finite model matrix (a ratio of nothing, 0/0, stays missing in the frame, so means skip
    # it, and takes the feature's fill in the matrix segment clusters).
    assert len(ff.frame) == len(cleaned.frame)
    assert not np.isinf(ff.frame.to_numpy(dtype="float64")).any()
    assert np.isfinite(ff.matrix(list(ff.model))).all()
    assert set(ff.model) <= set(ff.frame.columns)


def _user_error_or_nothing(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except ReportgenError as exc:
        text = str(exc)
        assert text and "\n" not in text  # one line for the user
        assert "Traceback" not in text


@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_any_frame_through_schema_clean_and_features(frame):
    _user_error_or_nothing(lambda: stages(frame, Config(), "t.csv"))


def learn_then_apply(frame: pd.DataFrame, part: list[int]) -> None:
    """Decisions learned on frame, applied to frame (the same clean, exactly) and to some of its
    rows with the columns in another order (a batch: a clean result or a user error)."""
    cfg = Config()
    schema = infer_schema(frame, cfg.columns, file="t.csv")
    learned = clean(frame, schema, cfg, file="t.csv")
    text = json.dumps(learned.decisions.to_dict(), allow_nan=False)  # strict JSON
    decisions = CleaningDecisions.from_dict(json.loads(text))
    applied = clean(frame, schema, cfg, file="t.csv", decisions=decisions)
    pd.testing.assert_frame_equal(applied.frame, learned.frame)
    assert applied.log == learned.log and applied.decisions == learned.decisions
    ff = build_features(learned, schema, cfg, file="t.csv")
    batch = frame.iloc[sorted(set(part))][list(reversed(frame.columns))]
    batch_schema = schema.for_columns(batch.columns)
    cleaned = clean(batch, batch_schema, cfg, file="t.csv", decisions=decisions)
    assert cleaned.decisions == decisions
    featured = FeatureDecisions.from_dict(
        json.loads(json.dumps(ff.decisions().to_dict(), allow_nan=False)))
    again = build_features(cleaned, batch_schema, cfg, file="t.csv", decisions=featured)
    assert again.model == ff.model
    assert not np.isinf(again.frame.to_numpy(dtype="float64")).any()
    assert np.isfinite(again.matrix(list(again.model))).all()


@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.lists(st.integers(0, 29), min_size=1, max_size=8))
def test_decisions_learned_from_any_frame_apply_to_it_and_to_a_batch_of_it(frame, part):
    part = [i % len(frame) for i in part]
    _user_error_or_nothing(lambda: learn_then_apply(frame, part))


ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]


def _load_and_clean_bytes(data: bytes) -> None:
    """Write data as a file and take it through load+schema+clean+features."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        path.write_bytes(data)

        def run() -> None:
            loaded = load(path, InputConfig())
            stages(loaded.frame, Config(), loaded.where, loaded.notes)

        _user_error_or_nothing(run)


@settings(max_examples=120 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([",", ";", "\t", "|"]), st.sampled_from(ENCODINGS),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_any_table_written_as_text_through_load_schema_clean(frame, sep, encoding, newline,
                                                             header_only):
    text = (frame.head(0) if header_only else frame).to_csv(sep=sep, index=False,
                                                            lineterminator=newline)
    data = text.encode(encoding, errors="replace")
    _load_and_clean_bytes(data)


@settings(max_examples=80 * SCALE, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_through_load(data):
    _load_and_clean_bytes(data)


@settings(max_examples=60 * SCALE, deadline=None)
@given(tables(), st.dictionaries(st.sampled_from(NAMES), st.sampled_from(
    ["id", "income", "spend", "signup_date", "campaign", "rate", "categorical", "ignore",
     "churn", "tenure", "age", "score", "flag"]), max_size=3))
def test_config_roles_forced_onto_any_column(frame, roles):
    cfg = Config(columns=roles)
    _user_error_or_nothing(lambda: stages(frame, cfg, "t.csv"))


def test_property_helpers_cover_the_awkward_values():
    # A sanity check that the strategies include what the corpus worries about.
    assert math.isinf(1e308 * 10)
    assert "=cmd" in NAMES and "<b>html</b>" in NAMES
