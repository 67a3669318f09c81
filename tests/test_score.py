"""`reportgen score`: the run's fitted pipeline, saved with skops, labels new customers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner

from reportgen.check import check, describe
from reportgen.clean import clean
from reportgen.cli import main
from reportgen.config import Config
from reportgen.errors import ModelError
from reportgen.features import build_features
from reportgen.load import load
from reportgen.schema import infer_schema
from reportgen.scoring import FORMAT, MODEL_FILE, load_bundle, load_model

from .runs import only_run
from .tables import marketing_table, write_tsv


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def frame():
    return marketing_table(40)


@pytest.fixture(scope="module")
def trained(frame, tmp_path_factory):
    """A run per algorithm on the same table: algorithm -> (input file, run dir)."""
    root = tmp_path_factory.mktemp("runs")
    table = write_tsv(frame, root / "customers.tsv")
    runs = {}
    for algorithm in ("kmeans", "gmm", "ward", "kprototypes", "minibatch"):
        out = root / algorithm
        result = invoke("run", str(table), "--out", str(out), "--format", "html", "-q",
                        "--algorithm", algorithm)
        assert result.exit_code == 0, result.output
        run_dir = only_run(out)
        runs[algorithm] = run_dir
    return table, runs


def read_segments(path):
    return pd.read_csv(path, dtype={"ID": "int64"}).set_index("ID")


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "ward", "kprototypes", "minibatch"])
def test_scoring_the_training_table_reproduces_its_segments_csv(trained, tmp_path, algorithm):
    table, runs = trained
    run_dir = runs[algorithm]
    result = invoke("score", str(table), "--model", str(run_dir), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "segments.csv").read_bytes() == (run_dir / "segments.csv").read_bytes()
    summary = json.loads((tmp_path / "score.json").read_text())
    assert summary["model_run"] == run_dir.name and summary["customers"] == 120


def test_a_few_new_customers_in_any_order_land_in_the_runs_segments(frame, trained, tmp_path):
    _, runs = trained
    few = frame.sample(9, random_state=3)
    path = write_tsv(few, tmp_path / "new.tsv")
    result = invoke("score", str(path), "--model", str(runs["kmeans"]), "--out",
                    str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    scored = read_segments(tmp_path / "out" / "segments.csv")
    original = read_segments(runs["kmeans"] / "segments.csv")
    assert list(scored.index) == list(few["ID"])
    assert scored["segment"].tolist() == original.loc[scored.index, "segment"].tolist()
    assert scored["persona"].tolist() == original.loc[scored.index, "persona"].tolist()
    assert "Scored 9 of 9 customers" in result.stdout


def test_a_small_batch_is_cleaned_with_the_runs_medians_and_fence_not_its_own(frame, trained,
                                                                             tmp_path):
    table, runs = trained
    few = frame[frame["kind"] == "affluent"].head(5).copy()  # their median is far from the run's
    ids = few["ID"].tolist()
    few.loc[few.index[0], "Income"] = None
    # 500,000 is above the run's fence (Q3 + 6 IQR of its incomes, ~400k) but not above this
    # batch's own fence (its four incomes would put the fence far higher): a typing error.
    few.loc[few.index[1], "Income"] = 500_000.0
    few.loc[few.index[2], "Year_Birth"] = None
    path = write_tsv(few, tmp_path / "new.tsv")
    model = load_model(runs["kmeans"])
    run_median = float(frame["Income"].median())  # the training table has no blank nor error
    assert model.cleaning.numbers["Income"].fill == run_median
    assert model.cleaning.numbers["Income"].outlier_above < 500_000
    assert model.cleaning.numbers["Year_Birth"].fill == float(frame["Year_Birth"].median())

    applied = model.apply(few, str(path))
    income = applied.cleaned.frame["Income"]
    assert income.loc[few.index[0]] == run_median
    assert income.loc[few.index[1]] == run_median
    assert income.loc[few.index[2:]].tolist() == few["Income"].iloc[2:].tolist()
    born = frame["Year_Birth"].median()
    assert applied.features.frame.loc[few.index[2], "age"] == model.cleaning.as_of.year - born
    (wild,) = [s for s in applied.cleaned.log if s.column == "Income" and
               s.action == "set missing"]
    assert wild.rows == 1 and "500,000" in wild.detail

    result = invoke("score", str(path), "--model", str(runs["kmeans"]), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    scored = read_segments(tmp_path / "segments.csv")
    assert scored.loc[ids[:2], "income"].tolist() == [round(run_median, 4)] * 2


def test_a_batch_with_its_dates_in_another_format_is_refused_in_one_line(frame, trained,
                                                                         tmp_path):
    _, runs = trained
    other = frame.head(6).copy()
    other["Dt_Customer"] = pd.to_datetime(other["Dt_Customer"], format="%d-%m-%Y") \
        .dt.strftime("%m/%d/%Y")
    path = write_tsv(other, tmp_path / "new.tsv")
    result = invoke("score", str(path), "--model", str(runs["kmeans"]), "--out",
                    str(tmp_path / "out"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {path}: the table does not match the model of run ")
    assert "changed Dt_Customer (dates are no longer %d-%m-%Y, e.g. " in line
    assert not (tmp_path / "out").exists()


def test_applied_decisions_handle_an_odd_date_and_an_unseen_level_by_the_documented_rule(
        frame, trained):
    _, runs = trained
    model = load_model(runs["kmeans"])
    batch = frame.head(12).copy()
    batch.loc[batch.index[0], "Dt_Customer"] = "2013/31/12"  # not the stored %d-%m-%Y
    batch.loc[batch.index[1], "Education"] = "Doctorate"  # a level the run never saw
    applied = model.apply(batch, "new.tsv")
    cleaned = applied.cleaned
    fill = pd.Timestamp(model.cleaning.dates["Dt_Customer"].fill)
    assert cleaned.frame.loc[batch.index[0], "Dt_Customer"] == fill
    assert cleaned.frame.loc[batch.index[1], "Education"] == "Other"
    details = {(s.column, s.action): s.detail for s in cleaned.log}
    assert details[("Dt_Customer", "set missing")] == "not a %d-%m-%Y date, first at row 2"
    assert details[("Dt_Customer", "imputed")] == f"blank → median date {fill.date()}"
    assert details[("Education", "recoded")] == "Doctorate → Other, first at row 3"
    # Nothing was learned from the batch: the decisions are the run's.
    assert cleaned.decisions == model.cleaning


def test_a_model_file_of_the_previous_format_asks_for_a_new_run(trained, tmp_path):
    table, _ = trained
    skops.io.dump({"format": 1, "reportgen": "0.9.0", "run_id": "2014-06-29324931"},
                  tmp_path / MODEL_FILE)
    result = invoke("score", str(table), "--model", str(tmp_path), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {tmp_path / MODEL_FILE}: the model file was written by reportgen 0.9.0 (model "
        f"format 1); this reportgen reads format {FORMAT} (run `reportgen run` again on the "
        "table of that run to write a current model)")


def test_a_table_whose_columns_do_not_match_is_refused_naming_them(frame, trained, tmp_path):
    _, runs = trained
    bad = frame.drop(columns=["MntWines"]).copy()
    bad["Income"] = "n/a yet"
    path = write_tsv(bad, tmp_path / "bad.tsv")
    result = invoke("score", str(path), "--model", str(runs["kmeans"]), "--out",
                    str(tmp_path / "out"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "does not match the model" in lines[0]
    assert "missing MntWines" in lines[0]
    assert "changed Income (was numbers, now text such as 'n/a yet')" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_model_is_refused(trained, tmp_path):
    table, _ = trained
    result = invoke("score", str(table), "--model", str(tmp_path))
    assert result.exit_code == 2
    assert "no model file here" in result.stderr


class Payload:
    """Not a type a reportgen model may contain."""


def test_a_model_file_with_untrusted_types_is_not_loaded(tmp_path):
    skops.io.dump({"format": 1, "x": Payload()}, tmp_path / MODEL_FILE)
    with pytest.raises(ModelError, match="does not trust: .*Payload"):
        load_bundle(tmp_path)


def test_the_model_file_holds_the_fitted_pipeline_as_data(frame, trained):
    _, runs = trained
    bundle = load_bundle(runs["kmeans"])
    assert bundle["algorithm"] == "kmeans"
    assert bundle["schema"]["roles"]["Income"] == "income"
    assert bundle["cleaning"]["dates"]["Dt_Customer"]["format"] == "%d-%m-%Y"
    latest = pd.to_datetime(frame["Dt_Customer"], format="%d-%m-%Y").max()
    assert bundle["cleaning"]["as_of"] == latest.date().isoformat()
    assert set(bundle["scaling"]) == {"features", "methods", "center", "scale"}
    assert bundle["features"]["model"] == bundle["scaling"]["features"]
    assert sorted(bundle["order"]) == list(range(len(bundle["names"])))
    summary = json.loads((runs["kmeans"] / "summary.json").read_text())
    assert bundle["names"] == {str(s["id"]): s["name"] for s in summary["segments"]}


def test_the_decisions_in_the_model_are_the_ones_the_run_and_validate_made(trained):
    table, runs = trained
    cfg = Config()
    loaded = load(table, cfg.input)
    schema = infer_schema(loaded.frame, cfg.columns)
    cleaned = clean(loaded.frame, schema, cfg, file=loaded.where)
    ff = build_features(cleaned, schema, cfg)
    model = load_model(runs["kmeans"])
    assert model.schema == schema
    assert model.cleaning == cleaned.decisions
    assert model.features == ff.decisions()
    checked = check(table, cfg)
    assert checked.cleaned.decisions == model.cleaning
    text = describe(checked)
    fence = model.cleaning.numbers["Income"].outlier_above
    assert f"  Income: above {fence:,.0f} is a typing error; blank → " \
           f"{model.cleaning.numbers['Income'].fill:,.0f}" in text
    assert "  Dt_Customer: dates %d-%m-%Y" in text
