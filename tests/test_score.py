"""`reportgen score`: the run's fitted pipeline, saved with skops, labels new customers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.errors import ModelError
from reportgen.scoring import MODEL_FILE, load_bundle

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
        (run_dir,) = list(out.iterdir())
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


def test_blanks_in_new_customers_get_the_runs_median_not_the_batchs(frame, trained, tmp_path):
    _, runs = trained
    bundle = load_bundle(runs["kmeans"])
    few = frame[frame["kind"] == "affluent"].head(5).copy()  # their median is far from the run's
    few.loc[few.index[0], "Income"] = None
    path = write_tsv(few, tmp_path / "new.tsv")
    result = invoke("score", str(path), "--model", str(runs["kmeans"]), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    scored = read_segments(tmp_path / "segments.csv")
    assert scored.loc[few["ID"].iloc[0], "income"] == pytest.approx(bundle["medians"]["Income"])


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
    assert bundle["date_formats"] == {"Dt_Customer": "%d-%m-%Y"}
    latest = pd.to_datetime(frame["Dt_Customer"], format="%d-%m-%Y").max()
    assert bundle["as_of"] == latest.date().isoformat()
    assert set(bundle["scaling"]) == {"features", "methods", "center", "scale"}
    assert bundle["features"] == bundle["scaling"]["features"]
    assert sorted(bundle["order"]) == list(range(len(bundle["names"])))
    summary = json.loads((runs["kmeans"] / "summary.json").read_text())
    assert bundle["names"] == {str(s["id"]): s["name"] for s in summary["segments"]}
