"""The Spark engine (``--engine spark``) against the default engine, for real: pyspark in local
mode, one session shared by the module (local[2], two shuffle partitions, no UI).

On 200,000 marketing-shaped customers the two engines agree: the same k, the same persona
names, adjusted Rand index ≥ 0.95 between the segments each wrote, sizes, value shares and
per-segment means within 0.5 %. On the bundled sample (smaller than the driver's sample, so the
decisions are learned on every row) Spark's cleaning expressions give exactly the default
engine's segments, and the same report in every format.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.metrics import adjusted_rand_score

from reportgen import pipeline
from reportgen.cli import main
from reportgen.config import Config
from tests import order_tables
from tests.order_tables import write_csv

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "marketing_campaign.csv"
N = 200_000
TOLERANCE = 0.005


def _required(what: str) -> None:
    """Skip without pyspark or Java on a developer's machine; fail in CI, which installs
    both (.ci/run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def spark() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _required("pyspark")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        _required("java")
    session = (SparkSession.builder.master("local[2]").appName("reportgen-tests")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# income, wines, fruits, meat, fish, sweets, gold, deals, web, catalog, store, visits,
# kids, teens, birth year, campaign acceptance, share of the customers
KINDS = {
    "affluent": (82_000, 700, 60, 450, 80, 60, 70, 1, 5, 6, 9, 2, 0.0, 0.1, 1958, 0.30, 0.15),
    "family": (36_000, 40, 5, 25, 8, 5, 15, 3, 2, 0.5, 3, 7, 1.3, 0.8, 1975, 0.02, 0.25),
    "young": (28_000, 30, 8, 30, 10, 8, 20, 2, 4, 0.3, 2, 8, 0.0, 0.0, 1993, 0.05, 0.20),
    "regular": (60_000, 380, 30, 160, 40, 30, 45, 2, 6, 3, 8, 4, 0.2, 1.0, 1966, 0.08, 0.25),
    "deals": (46_000, 200, 10, 80, 15, 10, 40, 8, 7, 1, 5, 7, 0.8, 1.0, 1971, 0.10, 0.15),
}


def marketing_customers(n: int, seed: int = 0) -> pd.DataFrame:
    """n customers with the bundled sample's columns, five kinds of them (KINDS) with ±25 %
    noise on every amount and count; text dates, 1 % blank incomes, a few wild ones (666,666),
    rare marital statuses pooled by cleaning and 20 repeated ids. A continuum (the sample
    resampled with noise) would not do: there, two samples of the same table give k-means
    solutions with an adjusted Rand index of 0.56-0.89 between them on either engine."""
    rng = np.random.default_rng(seed)
    params = np.array([v[:-1] for v in KINDS.values()])
    kind = rng.choice(len(KINDS), n, p=[v[-1] for v in KINDS.values()])
    p = params[kind]

    def noise() -> np.ndarray:
        return rng.lognormal(0.0, 0.25, n)

    def count(mean: np.ndarray) -> np.ndarray:
        return rng.poisson(mean * noise())

    income = np.round(p[:, 0] * noise())
    income[rng.random(n) < 0.01] = np.nan
    income[rng.random(n) < 0.0005] = 666_666
    days = rng.integers(0, 700, n)
    start = np.datetime64("2012-07-30")
    dates = pd.to_datetime(start + days.astype("timedelta64[D]")).strftime("%d-%m-%Y")
    marital = rng.choice(["Married", "Together", "Single", "Divorced", "Widow", "Alone", "YOLO"],
                         n, p=[0.38, 0.26, 0.21, 0.1, 0.0496, 0.0003, 0.0001])
    frame = pd.DataFrame({
        "ID": np.arange(n, dtype="int64") + 1,
        "Year_Birth": (p[:, 14] + rng.integers(-6, 7, n)).astype("int64"),
        "Education": rng.choice(["Graduation", "PhD", "Master", "2n Cycle", "Basic"], n,
                                p=[0.5, 0.22, 0.17, 0.09, 0.02]),
        "Marital_Status": marital, "Income": income,
        "Kidhome": rng.poisson(p[:, 12]), "Teenhome": rng.poisson(p[:, 13]),
        "Dt_Customer": dates, "Recency": rng.integers(0, 100, n),
        **{c: count(p[:, j]) for j, c in enumerate(
            ["MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts",
             "MntSweetProducts", "MntGoldProds", "NumDealsPurchases", "NumWebPurchases",
             "NumCatalogPurchases", "NumStorePurchases", "NumWebVisitsMonth"], start=1)},
        **{f"AcceptedCmp{i}": (rng.random(n) < p[:, 15]).astype("int64") for i in range(1, 6)},
        "Complain": (rng.random(n) < 0.01).astype("int64"),
        "Response": (rng.random(n) < p[:, 15] * 1.5).astype("int64"),
    })
    frame.loc[rng.choice(n, 20, replace=False), "ID"] = rng.choice(n, 20) + 1  # repeated ids
    return frame


def _config(engine: str, formats: list[str]) -> Config:
    return Config().with_overrides(engine__name=engine, report__formats=formats)


def _default_segments(run_dir: Path) -> pd.Series:
    table = pd.read_parquet(run_dir / "segments.parquet")
    table = table[table["segment"].notna() & table["ID"].notna()]
    return pd.Series(table["segment"].astype(int).to_numpy(), index=table["ID"].to_numpy())


def _spark_segments(uri: str) -> pd.Series:
    table = pq.read_table(uri).to_pandas()
    return pd.Series(table["segment"].to_numpy(), index=table["ID"].to_numpy())


@pytest.fixture(scope="module")
def big(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("spark-200k")
    source = folder / "customers.parquet"
    marketing_customers(N).to_parquet(source, index=False)
    default = pipeline.run(str(source), _config("default", ["json"]), folder / "default")
    on_spark = pipeline.run(str(source), _config("spark", ["json"]), folder / "spark")
    return {"source": source, "default": default, "spark": on_spark,
            "uri": str(folder / "customers.segments.parquet")}


def test_200k_customers_same_k_and_persona_names(big: dict[str, Any]) -> None:
    default, on_spark = big["default"].report, big["spark"].report
    assert on_spark.headline.k == default.headline.k
    assert [s.name for s in on_spark.segments] == [s.name for s in default.segments]
    assert on_spark.headline.customers_in == N
    assert on_spark.headline.customers == default.headline.customers


def test_200k_customers_same_segments_adjusted_rand_at_least_095(big: dict[str, Any]) -> None:
    default = _default_segments(big["default"].run_dir)
    on_spark = _spark_segments(big["uri"])
    assert len(on_spark) == len(default) and on_spark.index.is_unique
    on_spark = on_spark.reindex(default.index)
    assert on_spark.notna().all()
    assert adjusted_rand_score(default.to_numpy(), on_spark.to_numpy()) >= 0.95
    # what the report counts is what Spark wrote
    sizes = on_spark.value_counts()
    assert {s.id: s.size for s in big["spark"].report.segments} == \
        {int(i): int(n) for i, n in sizes.items()}


def test_200k_customers_profile_figures_within_half_a_percent(big: dict[str, Any]) -> None:
    default = {s.name: s for s in big["default"].report.segments}
    on_spark = {s.name: s for s in big["spark"].report.segments}
    d_head, s_head = big["default"].report.headline, big["spark"].report.headline
    assert s_head.total_value == pytest.approx(d_head.total_value, rel=1e-9)
    for name, d in default.items():
        s = on_spark[name]
        assert s.size == pytest.approx(d.size, rel=TOLERANCE)
        assert s.value_share == pytest.approx(d.value_share, rel=TOLERANCE)
        assert s.value_per_customer == pytest.approx(d.value_per_customer, rel=TOLERANCE)
        for feature, mean in d.means.items():
            assert s.means[feature] == pytest.approx(mean, rel=TOLERANCE, abs=1e-3), \
                (name, feature)


def test_200k_customers_report_says_the_cleaning_was_learned_on_a_sample(
        big: dict[str, Any]) -> None:
    report = big["spark"].report
    assert report.cleaning[0].action == "sampled"
    assert f"of {N:,} rows" in report.cleaning[0].detail
    run_dir = big["spark"].run_dir
    assert not (run_dir / "segments.csv").exists()  # the segments are Spark's Parquet
    manifest = (run_dir / "manifest.json").read_text()
    assert big["uri"] in manifest


def test_bundled_sample_cleaned_by_spark_gives_the_default_engines_report(
        spark: Any, tmp_path: Path) -> None:
    formats = ["html", "pdf", "email"]
    default = pipeline.run(str(SAMPLE), _config("default", formats), tmp_path / "default")
    cfg = _config("spark", formats).with_overrides(
        engine__segments=str(tmp_path / "segments.parquet"))
    on_spark = pipeline.run(str(SAMPLE), cfg, tmp_path / "spark")
    d, s = default.report, on_spark.report
    # every row reached the driver: the same decisions, so Spark's expressions must give
    # exactly the default engine's segments
    labels = _spark_segments(str(tmp_path / "segments.parquet"))
    expected = _default_segments(default.run_dir)
    assert labels.reindex(expected.index).astype(int).tolist() == expected.tolist()
    assert len(labels) == len(expected)
    assert [(x.name, x.size, [a.title for a in x.actions]) for x in s.segments] == \
        [(x.name, x.size, [a.title for a in x.actions]) for x in d.segments]
    for x, y in zip(s.segments, d.segments, strict=True):
        for feature, mean in y.means.items():
            assert x.means[feature] == pytest.approx(mean, rel=1e-9, abs=1e-9)
    assert s.headline == d.headline
    assert [c.missing for c in s.columns] == [c.missing for c in d.columns]
    assert list(s.charts) == list(d.charts)
    for name in ("report.html", "report.pdf", "email.html"):
        assert (on_spark.run_dir / name).stat().st_size > 10_000


def test_missing_pyspark_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    result = CliRunner().invoke(main, ["run", str(SAMPLE), "--engine", "spark", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == ("Error: --engine spark needs pyspark, which is not installed "
                             "(pip install 'reportgen[spark]')\n")


def test_missing_java_is_one_line_exit_2(spark: Any, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    from pyspark.sql import SparkSession

    import reportgen.spark as engine

    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    result = CliRunner().invoke(main, ["run", str(SAMPLE), "--engine", "spark", "--out",
                                       str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: --engine spark needs Java (17 or later)")


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "sprak"], "Invalid value for '--engine'"),
])
def test_conflicting_or_unknown_engine_options_exit_2(args: list[str], message: str,
                                                      tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(SAMPLE), *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(("toml", "message"), [
    ('[engine]\nname = "spak"\n', "'engine.name' is 'spak'; did you mean 'spark'?"),
    ("[engine]\nsample = 10\n", "engine.sample"),
    ('[engine]\nconf = {"spark.sql.shuffle.partitions" = 8}\n', "engine.conf"),
])
def test_engine_settings_are_checked(toml: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "reportgen.toml"
    path.write_text(toml)
    result = CliRunner().invoke(main, ["run", str(SAMPLE), "--config", str(path), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert message in result.output


# the monthly series -----------------------------------------------------------------------------

SERIES_N = 20_000


def _next_month(frame: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """The table a month on: 1,000 customers gone, 1,500 new ones who signed up in July 2014
    (so as_of moves a month on), a tenth of the others spending twice as much on wine and a
    twentieth a fifth of what they spent (movers down)."""
    rng = np.random.default_rng(seed)
    kept = frame.drop(index=rng.choice(len(frame), 1_000, replace=False))
    new = marketing_customers(1_500, seed=seed)
    new["ID"] = np.arange(1_500) + 10_000_000
    new["Dt_Customer"] = pd.to_datetime("2014-07-01") + pd.to_timedelta(
        rng.integers(0, 31, 1_500), unit="D")
    new["Dt_Customer"] = new["Dt_Customer"].dt.strftime("%d-%m-%Y")
    out = pd.concat([kept, new], ignore_index=True)
    richer = rng.random(len(out)) < 0.1
    out.loc[richer, "MntWines"] = out.loc[richer, "MntWines"] * 2
    poorer = ~richer & (rng.random(len(out)) < 0.05)
    spend = [c for c in out.columns if c.startswith("Mnt")]
    out.loc[poorer, spend] = (out.loc[poorer, spend] * 0.2).round()
    return out


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("spark-series")
    first = marketing_customers(SERIES_N, seed=3)
    # the comparison below is customer by customer
    first = first[~first["ID"].duplicated()].reset_index(drop=True)
    return {"folder": folder, "first": first, "second": _next_month(first)}


def _series(engines: tuple[str, str], policy: str, months: dict[str, Any], name: str,
            same_path: bool = False) -> list[Any]:
    """Two monthly runs of one series, one engine each; with same_path the second month's
    table replaces the first's file (a table refreshed in place), so Spark writes both
    months' segments to the same place."""
    folder = months["folder"] / name
    folder.mkdir()
    results = []
    for i, (engine, frame) in enumerate(zip(engines, (months["first"], months["second"]),
                                            strict=True)):
        source = folder / ("customers.parquet" if same_path else f"customers-{i}.parquet")
        frame.to_parquet(source, index=False)
        cfg = _config(engine, ["json"]).with_overrides(series__policy=policy)
        results.append(pipeline.run(str(source), cfg, folder / "out"))
    return results


def _history(out: Path) -> list[Any]:
    from reportgen.history import open_history

    history = open_history(out, create=False)
    assert history is not None
    with history:
        return history.runs("default")


@pytest.mark.parametrize("policy", ["keep", "refit"])
def test_spark_run_is_a_member_of_its_series_as_the_default_engines(
        spark: Any, months: dict[str, Any], policy: str) -> None:
    default = _series(("default", "default"), policy, months, f"default-{policy}")
    on_spark = _series(("spark", "spark"), policy, months, f"spark-{policy}", same_path=True)
    d, s = default[1].report, on_spark[1].report
    # recorded and chained as the default engine's runs are
    runs = _history(on_spark[1].run_dir.parent)
    assert [r.run_id for r in runs] == [on_spark[0].report.run_id, s.run_id]
    assert runs[1].previous_run_id == runs[0].run_id and runs[1].policy == policy
    assert [r.policy for r in _history(default[1].run_dir.parent)] == ["first", policy]
    # every row reached the driver: the same segments, so the same comparison, cell for cell
    assert s.changes is not None and d.changes is not None
    assert s.changes.new_customers == d.changes.new_customers == 1_500
    assert s.changes.lost_customers == d.changes.lost_customers == 1_000
    assert s.changes.returning_customers == len(months["first"]) - 1_000
    assert s.changes.migration == d.changes.migration
    assert s.changes.table == d.changes.table
    assert s.changes.segments == d.changes.segments
    assert s.changes.drift == d.changes.drift
    assert s.changes.movers == d.changes.movers
    assert s.changes.largest_flows == d.changes.largest_flows
    assert [(x.id, x.name, x.size) for x in s.segments] == \
        [(x.id, x.name, x.size) for x in d.segments]
    # the movers, listed by Spark where it writes the segments
    assert s.changes.movers > 0
    assert s.changes.movers_file == str(on_spark[1].run_dir.parent.parent /
                                        "customers.movers.parquet")
    movers = pd.read_parquet(s.changes.movers_file)
    expected = pd.read_csv(default[1].run_dir / "movers.csv")
    assert list(movers.columns) == list(expected.columns) and len(movers) == s.changes.movers
    pd.testing.assert_frame_equal(movers.astype({"ID": "int64"}), expected,
                                  check_dtype=False)
    # the run ids differ (they hash the source and engine); the periods' figures do not
    assert [dataclasses.replace(t, run_id="") for t in s.trend] == \
        [dataclasses.replace(t, run_id="") for t in d.trend]


def test_spark_run_follows_a_default_engine_run_of_its_series(
        spark: Any, months: dict[str, Any]) -> None:
    default = _series(("default", "default"), "refit", months, "mixed-default")
    mixed = _series(("default", "spark"), "refit", months, "mixed")
    d, s = default[1].report, mixed[1].report
    assert s.changes is not None and d.changes is not None
    assert s.changes.previous_run_id == default[0].report.run_id
    assert s.changes.migration == d.changes.migration
    assert [x.name for x in s.segments] == [x.name for x in d.segments]


def test_spark_rerun_whose_previous_customers_were_replaced_says_so(
        spark: Any, months: dict[str, Any]) -> None:
    """A table refreshed in place: the second month's first run wrote its segments where the
    first month's were, so a rerun of the second month cannot follow the first's customers."""
    runs = _series(("spark", "spark"), "refit", months, "rerun", same_path=True)
    source = runs[1].run_dir.parent.parent / "customers.parquet"
    again = pipeline.run(str(source), _config("spark", ["json"]).with_overrides(
        series__policy="refit"), runs[1].run_dir.parent).report
    assert again.changes is not None and again.changes.new_customers is None
    assert again.changes.previous_run_id == runs[0].report.run_id
    assert any(f"The customers of the previous run {runs[0].report.run_id} (June 2014) are "
               "no longer where it wrote them" in note for note in again.changes.notes)
    assert [x.name for x in again.segments] == [x.name for x in runs[1].report.segments]


def test_delta_folder_without_delta_spark_is_one_line_exit_2(spark: Any, tmp_path: Path
                                                            ) -> None:
    folder = tmp_path / "customers"
    (folder / "_delta_log").mkdir(parents=True)
    marketing_customers(100).to_parquet(folder / "part-0.parquet", index=False)
    (folder / "_delta_log" / "00000000000000000000.json").write_text("{}\n")
    result = CliRunner().invoke(main, ["run", str(folder), "--engine", "spark", "--out",
                                       str(tmp_path / "out"), "--format", "json"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert str(folder) in lines[0]
    assert "a Delta table, and this Spark has no Delta Lake (delta-spark) on its classpath" \
        in lines[0]
    assert not (tmp_path / "out").exists()


# order lines ------------------------------------------------------------------------------------

@pytest.mark.parametrize("builder", ["invoice_lines", "order_export"])
def test_order_lines_aggregated_by_spark_give_the_default_engines_segments(
        spark: Any, tmp_path: Path, builder: str) -> None:
    """Tens of thousands of lines (every customer reaches the driver, so the decisions are the
    same): Spark's aggregation gives the default engine's customers, k, names and figures."""
    frame, facts = getattr(order_tables, builder)(n_customers=1_500, seed=5)
    source = write_csv(frame, tmp_path / "lines.csv")
    default = pipeline.run(str(source), _config("default", ["json"]), tmp_path / "default")
    on_spark = pipeline.run(str(source), _config("spark", ["json"]), tmp_path / "spark")
    d, s = default.report, on_spark.report
    assert s.orders is not None and d.orders is not None
    assert s.orders.lines == d.orders.lines == facts.lines
    assert (s.orders.lines_used, s.orders.customers, s.orders.duplicate_lines,
            s.orders.no_customer_lines, s.orders.return_lines, s.orders.only_returns) == \
        (d.orders.lines_used, d.orders.customers, d.orders.duplicate_lines,
         d.orders.no_customer_lines, d.orders.return_lines, d.orders.only_returns)
    assert s.orders.revenue == pytest.approx(d.orders.revenue, rel=1e-9)
    assert s.as_of == d.as_of
    assert s.headline.k == d.headline.k and s.headline.customers == d.headline.customers
    assert [x.name for x in s.segments] == [x.name for x in d.segments]
    assert [f.name for f in s.features] == [f.name for f in d.features]
    key = "CustomerID" if builder == "invoice_lines" else "Customer ID"
    expected = pd.read_parquet(default.run_dir / "segments.parquet")
    expected = expected[expected["segment"].notna()]
    expected = pd.Series(expected["segment"].astype(int).to_numpy(),
                         index=expected[key].astype(str).to_numpy())
    labels = pq.read_table(tmp_path / "lines.segments.parquet").to_pandas()
    labels = pd.Series(labels["segment"].to_numpy(), index=labels[key].astype(str).to_numpy())
    assert len(labels) == len(expected) == len(facts.customers)
    assert adjusted_rand_score(expected.to_numpy(), labels.reindex(expected.index).to_numpy()) \
        >= 0.95
    for x, y in zip(s.segments, d.segments, strict=True):
        assert x.size == pytest.approx(y.size, rel=TOLERANCE)
        assert x.value_share == pytest.approx(y.value_share, rel=TOLERANCE)
        for feature, mean in y.means.items():
            assert x.means[feature] == pytest.approx(mean, rel=TOLERANCE, abs=1e-6), feature


@pytest.fixture(scope="module")
def sampled_lines(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """3,000 customers' invoice lines, run by both engines; Spark with a driver sample of
    1,000 customers."""
    folder = tmp_path_factory.mktemp("spark-sampled-lines")
    frame, facts = order_tables.invoice_lines(n_customers=3_000, seed=5)
    source = write_csv(frame, folder / "lines.csv")
    default = pipeline.run(str(source), _config("default", ["json"]), folder / "default")
    on_spark = pipeline.run(str(source), _config("spark", ["json"]).with_overrides(
        engine__sample=1_000), folder / "spark")
    return {"facts": facts, "default": default, "spark": on_spark,
            "uri": str(folder / "lines.segments.parquet")}


def test_order_lines_with_more_customers_than_the_driver_sample(sampled_lines: dict[str, Any]
                                                                ) -> None:
    """3,000 customers, a driver sample of 1,000: the features' decisions and the k search are
    the sample's, every customer is aggregated, assigned and profiled by Spark."""
    facts, default = sampled_lines["facts"], sampled_lines["default"]
    d, s = default.report, sampled_lines["spark"].report
    sampled = [c for c in s.cleaning if c.action == "sampled"]
    assert len(sampled) == 1 and sampled[0].rows == 1_000
    assert "a sample of 1,000 of 3,000 customers aggregated by Spark" in sampled[0].detail
    assert s.headline.customers == d.headline.customers == len(facts.customers)
    assert s.headline.k == d.headline.k
    assert [x.name for x in s.segments] == [x.name for x in d.segments]
    expected = pd.read_parquet(default.run_dir / "segments.parquet")
    expected = expected[expected["segment"].notna()]
    expected = pd.Series(expected["segment"].astype(int).to_numpy(),
                         index=expected["CustomerID"].astype(str).to_numpy())
    labels = pq.read_table(sampled_lines["uri"]).to_pandas()
    labels = pd.Series(labels["segment"].to_numpy(),
                       index=labels["CustomerID"].astype(str).to_numpy())
    assert adjusted_rand_score(expected.to_numpy(), labels.reindex(expected.index).to_numpy()) \
        >= 0.95
    for x, y in zip(s.segments, d.segments, strict=True):
        assert x.size == pytest.approx(y.size, rel=0.02)


def test_rfm_table_of_every_customer_when_the_driver_has_a_sample(
        sampled_lines: dict[str, Any]) -> None:
    """Spark scores all 3,000 customers, not the driver's 1,000: the groups, their figures and
    the grid are the default engine's (the scores exactly, the means to rounding), and each
    segment's groups are Spark's segments crossed with those scores."""
    d, s = sampled_lines["default"].report.rfm, sampled_lines["spark"].report.rfm
    assert d is not None and s is not None
    assert sum(g.customers for g in s.groups) == len(sampled_lines["facts"].customers) == 3_000
    assert s.grid == d.grid
    assert [(g.name, g.rule, g.customers) for g in s.groups] == \
        [(g.name, g.rule, g.customers) for g in d.groups]
    for x, y in zip(s.groups, d.groups, strict=True):
        for figure in ("share", "value_share", "recency", "frequency", "monetary"):
            assert getattr(x, figure) == pytest.approx(getattr(y, figure), rel=1e-9), figure
    groups = pd.read_csv(sampled_lines["default"].run_dir / "segments.csv",
                         dtype={"CustomerID": str}).set_index("CustomerID")["rfm_group"]
    labels = pq.read_table(sampled_lines["uri"]).to_pandas()
    crossed = pd.crosstab(labels["segment"].to_numpy(),
                          groups.reindex(labels["CustomerID"].astype(str)).to_numpy())
    assert s.by_segment == {str(sid): {str(g): int(c) for g, c in row.items() if c}
                            for sid, row in crossed.iterrows()}


def test_spark_segments_have_each_customers_rfm_score_and_group(
        sampled_lines: dict[str, Any]) -> None:
    """The Spark segments' Parquet has every customer's rfm_score and rfm_group (3,000, not
    the driver's 1,000), equal per key to the default engine's segments.csv."""
    csv = pd.read_csv(sampled_lines["default"].run_dir / "segments.csv",
                      dtype={"CustomerID": str, "rfm_score": str})
    expected = csv[csv["rfm_score"].notna()].set_index("CustomerID")[["rfm_score", "rfm_group"]]
    table = pq.read_table(sampled_lines["uri"])
    assert table.column_names == ["CustomerID", "segment", "persona", "total_spend",
                                  "rfm_score", "rfm_group", "run_id"]
    got = table.to_pandas().astype({"CustomerID": str}).set_index("CustomerID")
    assert len(got) == len(expected) == 3_000 and got.index.is_unique
    got = got.reindex(expected.index)[["rfm_score", "rfm_group"]]
    assert got["rfm_score"].tolist() == expected["rfm_score"].tolist()
    assert got["rfm_group"].tolist() == expected["rfm_group"].tolist()
    # the comparison means something: many codes and every kind of group
    assert expected["rfm_score"].nunique() >= 40
    assert expected["rfm_group"].nunique() >= 8


@pytest.mark.parametrize("kind", ["text", "native", "yyyymmdd"])
def test_spark_date_span_is_orders_date_span(spark: Any, tmp_path: Path, kind: str) -> None:
    """The first and last day of the lines by Spark, as orders.date_span gives them: the
    99th percentile interpolated between its two neighbours (2012-01-11 and 2013-01-01, so
    2013-01-12 is within a year of it and 2013-01-15 is not; either neighbour alone would
    give another last day), unreadable dates left out."""
    from reportgen import spark as spark_engine
    from reportgen.orders import OrderColumns, date_span
    from reportgen.sparkorders import date_span as spark_date_span

    rng = np.random.default_rng(7)
    when = [pd.Timestamp("2011-01-01 08:00") + pd.Timedelta(minutes=int(m))
            for m in rng.integers(0, 364 * 24 * 60, 392)]
    when += [pd.Timestamp(t) for t in ("2011-01-01 07:59", "2012-01-05 10:00", "2012-01-10",
                                       "2012-01-11", "2013-01-01", "2013-01-12 12:00",
                                       "2013-01-15", "2014-01-01")]
    dates: pd.Series = pd.Series(when)
    if kind == "text":
        dates = pd.Series([t.strftime("%d/%m/%Y %H:%M") for t in when] +
                          ["not a date", "31/02/2012 10:00", None], dtype="object")
    elif kind == "yyyymmdd":
        dates = pd.Series([int(t.strftime("%Y%m%d")) for t in when])
    frame = pd.DataFrame({"customer": [f"c{i % 40}" for i in range(len(dates))],
                          "date": dates, "amount": 1.0})
    frame.to_parquet(tmp_path / "lines.parquet", index=False)
    sdf = spark.read.parquet(str(tmp_path / "lines.parquet"))
    lines = spark_engine.sample(sdf, sdf.count(), 100_000, 0)
    cols = OrderColumns(customer="customer", date="date", amount="amount", notes={})
    expected = date_span(lines, cols, Config())
    assert expected == (dt.date(2011, 1, 1), dt.date(2013, 1, 12))
    assert spark_date_span(sdf, lines, cols, Config()) == expected


def test_exact_ranks_from_guesses_far_off(spark: Any) -> None:
    """The values at given ranks, ties and nulls included, even when the guess is the
    smallest or the largest value (the correction then takes the values in between)."""
    from reportgen.sparkorders import exact_ranks

    rng = np.random.default_rng(3)
    values = np.round(rng.normal(50, 20, 2_000), 1)  # many ties
    frame = pd.DataFrame({"x": np.where(rng.random(2_000) < 0.05, np.nan, values),
                          "n": rng.integers(0, 30, 2_000)})
    sdf = spark.createDataFrame(frame).selectExpr("nanvl(x, null) AS x", "n")
    xs, ns = np.sort(frame["x"].dropna().to_numpy()), np.sort(frame["n"].to_numpy())
    ranks = [0, 1, len(xs) // 2, len(xs) - 2, len(xs) - 1]
    found = exact_ranks(sdf, {"x": [(r, g) for r in ranks for g in (xs[0], xs[-1])],
                              "n": [(r, int(ns[len(ns) // 3])) for r in (0, 999, 1999)]})
    assert found["x"] == [xs[r] for r in ranks for _ in (0, 1)]
    assert found["n"] == [ns[0], ns[999], ns[1999]]



def test_spark_rfm_table_is_rfm_summarise(spark: Any, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """rfm_summary over a Spark table is rfm.rfm and rfm.summarise of the same customers:
    the scores exact (ties at the cuts included) though the cuts' first guesses are poor
    (percentile_approx at accuracy 10), the means to rounding."""
    from reportgen import sparkorders
    from reportgen.rfm import load_groups, rfm, summarise

    rng = np.random.default_rng(8)
    n = 1_003
    customers = pd.DataFrame({
        "segment": rng.integers(1, 5, n), "recency": rng.integers(0, 200, n).astype(float),
        "frequency": rng.choice([1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 6.0], n),
        "total_spend": np.round(rng.gamma(2.0, 90.0, n), 1)})
    groups = load_groups()
    scores = rfm(customers["recency"], customers["frequency"], customers["total_spend"], groups)
    expected = summarise(scores, customers["segment"], customers["recency"],
                         customers["frequency"], customers["total_spend"], groups)
    monkeypatch.setattr(sparkorders, "PERCENTILE_ACCURACY", 10)
    got = sparkorders.rfm_summary(spark.createDataFrame(customers), groups)
    assert got.grid == expected.grid and got.by_segment == expected.by_segment
    assert [(g.name, g.customers) for g in got.groups] == \
        [(g.name, g.customers) for g in expected.groups]
    for x, y in zip(got.groups, expected.groups, strict=True):
        for figure in ("share", "value_share", "recency", "frequency", "monetary"):
            assert getattr(x, figure) == pytest.approx(getattr(y, figure), rel=1e-12)

def test_spark_backfill_never_reads_the_table_into_pandas(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two months of invoice lines backfilled by Spark (pandas' reader is made to fail): the
    same month ends, customers, lines, k, names and RFM grid as the default engine's backfill,
    one series with the second month compared with the first."""
    import reportgen.load

    frame, _ = order_tables.invoice_lines(n_customers=400, seed=11)
    source = write_csv(frame, tmp_path / "lines.csv")
    start, end = dt.date(2011, 11, 1), dt.date(2011, 12, 1)
    default = pipeline.backfill(str(source), _config("default", ["json"]),
                                tmp_path / "default", start, end)

    def no_pandas(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the Spark backfill read the table with pandas")

    monkeypatch.setattr(reportgen.load, "load", no_pandas)
    on_spark = pipeline.backfill(str(source), _config("spark", ["json"]), tmp_path / "spark",
                                 start, end)
    assert [r.report.as_of for r in on_spark] == [r.report.as_of for r in default] == \
        ["2011-11-30", "2011-12-09"]
    for s, d in zip((r.report for r in on_spark), (r.report for r in default), strict=True):
        assert s.orders is not None and d.orders is not None
        assert (s.orders.lines, s.orders.lines_used, s.orders.customers) == \
            (d.orders.lines, d.orders.lines_used, d.orders.customers)
        assert s.headline.customers == d.headline.customers
        assert s.headline.k == d.headline.k
        assert [x.name for x in s.segments] == [x.name for x in d.segments]
        assert s.rfm is not None and d.rfm is not None and s.rfm.grid == d.rfm.grid
    assert on_spark[0].report.changes is None
    assert on_spark[1].report.changes is not None
    assert on_spark[1].report.changes.previous_run_id == on_spark[0].report.run_id


def test_spark_backfill_of_a_customer_table_is_one_line_exit_2(spark: Any, tmp_path: Path
                                                               ) -> None:
    source = tmp_path / "customers.parquet"
    marketing_customers(300).to_parquet(source, index=False)
    result = CliRunner().invoke(main, ["backfill", str(source), "--engine", "spark", "--out",
                                       str(tmp_path / "out"), "--format", "json", "-q"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {source}: backfill needs order lines: a customer key that repeats, a date "
        "and an amount on every row (name the columns in [transactions], or use `reportgen "
        "run`)"]
    assert not (tmp_path / "out").exists()
