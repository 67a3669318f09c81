"""Segmentation you can trust: every algorithm recovers known clusters, results are reproducible
and do not depend on row order, stability tells sharp clusters from a continuum, gates fail."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from reportgen.cli import main
from reportgen.config import Config, SegmentConfig
from reportgen.errors import ConfigError, SegmentationError
from reportgen.features import FeatureFrame, FeatureMeta
from reportgen.personas import load_vocabulary, name_personas
from reportgen.profile import profile
from reportgen.segment import PARALLEL_FROM, default_workers, fit_pool, segment
from reportgen.stability import best_match_jaccard

from .runs import only_run
from .tables import marketing_table, write_tsv
from .test_stages import stages

ALGORITHMS = ["kmeans", "minibatch", "gmm", "ward", "kprototypes"]


def blobs(n: int = 480, k: int = 4, seed: int = 0) -> tuple[FeatureFrame, pd.DataFrame, np.ndarray]:
    """k well-separated blobs in 5 features, and a category column that follows the blobs."""
    x, truth = make_blobs(n_samples=n, centers=k, n_features=5, cluster_std=1.0,
                          center_box=(-20, 20), random_state=seed)
    names = [f"f{j}" for j in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=names, index=pd.RangeIndex(100, 100 + n))
    meta = {f: FeatureMeta(f.upper(), "number", "value", f"feature {f}") for f in names}
    cats = pd.DataFrame({"colour": np.array(["red", "green", "blue", "grey", "pink"])[truth]},
                        index=frame.index)
    return FeatureFrame(frame=frame, meta=meta, model=names, value=None), cats, truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return adjusted_rand_score(a, b) == 1.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_recovers_the_number_and_members_of_known_blobs(algorithm):
    ff, cats, truth = blobs()
    seg = segment(ff, SegmentConfig(algorithm=algorithm), cats)
    assert seg.k == 4
    assert same_partition(seg.labels, truth)
    assert seg.algorithm == algorithm
    assert sorted(np.unique(seg.labels)) == [1, 2, 3, 4]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_gives_identical_labels_stability_and_persona_names(algorithm):
    frame = marketing_table(30)
    _, schema, cleaned, ff = stages(frame)
    cats = cleaned.frame[["Education", "Marital_Status"]]
    runs = []
    for _ in range(2):
        seg = segment(ff, SegmentConfig(algorithm=algorithm, random_state=11), cats)
        personas = name_personas(profile(ff, seg), ff, "$", "spend", load_vocabulary())
        names = [p.name for p in personas]
        runs.append((seg, names))
    (a, names_a), (b, names_b) = runs
    assert np.array_equal(a.labels, b.labels)
    assert names_a == names_b
    assert a.stability == b.stability
    assert same_partition(a.labels, frame["kind"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_labels_do_not_depend_on_row_order(algorithm):
    ff, cats, _ = blobs(seed=3)
    order = np.random.default_rng(5).permutation(len(ff.frame))
    shuffled = FeatureFrame(frame=ff.frame.iloc[order], meta=ff.meta, model=ff.model,
                            value=None)
    a = segment(ff, SegmentConfig(algorithm=algorithm), cats)
    b = segment(shuffled, SegmentConfig(algorithm=algorithm), cats.iloc[order])
    back = pd.Series(b.labels, index=shuffled.frame.index).reindex(ff.frame.index).to_numpy()
    assert a.k == b.k
    assert same_partition(a.labels, back)


def test_large_tables_fit_kmeans_on_a_sample_and_assign_the_rest_and_say_so():
    ff, _, truth = blobs(n=1200)
    cfg = SegmentConfig(large_table=1000, search_sample=300)
    seg = segment(ff, cfg)
    assert seg.algorithm == "kmeans-sample"
    assert same_partition(seg.labels, truth)
    assert "300 sampled customers" in seg.algorithm_text
    assert "nearest centre" in seg.algorithm_text


def overlapping(n: int, seed: int = 7) -> FeatureFrame:
    """Blobs that run into each other: a fit's every last bit shows in its inertia."""
    x, _ = make_blobs(n_samples=n, centers=6, n_features=6, cluster_std=4.0,
                      center_box=(-10, 10), random_state=seed)
    names = [f"f{j}" for j in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=names)
    meta = {f: FeatureMeta(f, "number", "value", f) for f in names}
    return FeatureFrame(frame=frame, meta=meta, model=names, value=None)


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch", "gmm", "ward"])
@pytest.mark.parametrize("large_table", [1_000_000, 2_000])
def test_fits_in_two_threads_give_the_one_thread_segmentation_bit_for_bit(algorithm, large_table):
    ff = overlapping(3000)
    # search_sample below the rows: the search, the final model and the silhouette's sample
    # each take their own path (sampled, then refined on everyone or assigned).
    cfg = SegmentConfig(algorithm=algorithm, large_table=large_table, search_sample=2400,
                        silhouette_sample=500, stability_runs=4, stability_sample=1500)
    one = segment(ff, cfg, workers=1)
    two = segment(ff, cfg, workers=2)
    assert len(one.k_table) == 9 and one.k_table == two.k_table  # every float, exactly
    assert one.k == two.k and np.array_equal(one.labels, two.labels)
    assert one.silhouette == two.silhouette and one.stability == two.stability
    assert one.stability is not None and one.stability.runs == 4
    assert one.points.equals(two.points) and one.projection == two.projection


def test_each_fit_thread_runs_one_openmp_thread_whatever_the_default():
    from threadpoolctl import threadpool_info

    def openmp_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"]

    before = openmp_threads()
    assert before  # scikit-learn's k-means loads OpenMP
    with fit_pool(2) as pool:
        seen = [f.result() for f in [pool.submit(openmp_threads) for _ in range(6)]]
    assert seen == [[1] * len(before)] * 6
    assert openmp_threads() == before  # the caller's own setting is left alone


def test_the_fits_take_two_threads_only_for_a_large_search_and_two_cpus():
    from joblib import cpu_count

    assert default_workers(2240) == 1  # the sample: fits too short to share
    assert default_workers(PARALLEL_FROM - 1) == 1
    assert default_workers(50_000) == min(2, cpu_count())


def test_sharp_clusters_are_stable_and_a_continuum_is_not():
    ff, _, _ = blobs()
    sharp = segment(ff, SegmentConfig())
    assert sharp.stability is not None and sharp.stability.runs == 10
    assert min(sharp.stability.per_segment.values()) > 0.95
    assert sharp.stability.ari > 0.95

    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.uniform(size=(600, 4)), columns=["a", "b", "c", "d"])
    meta = {c: FeatureMeta(c, "number", "value", c) for c in noise}
    flat = segment(FeatureFrame(noise, meta, list(noise), None), SegmentConfig(k=8))
    assert flat.stability is not None
    assert min(flat.stability.per_segment.values()) < 0.9
    assert flat.stability.ari < sharp.stability.ari


def test_stability_can_be_switched_off():
    ff, _, _ = blobs()
    seg = segment(ff, SegmentConfig(stability_runs=0))
    assert seg.stability is None and "not measured" in seg.stability_text


def test_best_match_jaccard_counts_overlap_over_union():
    labels = np.array([1, 1, 1, 1, 2, 2])
    other = np.array([0, 0, 0, 1, 1, 1])
    # segment 1: best match group 0 → 3 shared / 4 in the union; segment 2: group 1 → 2 / 3
    assert best_match_jaccard(labels, other) == {1: 0.75, 2: pytest.approx(2 / 3)}


def test_scaling_choices_per_feature_are_applied_and_described():
    frame = marketing_table(30)
    _, _, _, ff = stages(frame)
    seg = segment(ff, SegmentConfig(scaling="standard",
                                    feature_scaling={"total_spend": "log1p", "income": "robust"}))
    methods = dict(zip(seg.scaler.features, seg.scaler.methods, strict=True))
    assert methods["total_spend"] == "log1p" and methods["income"] == "robust"
    assert methods["age"] == "standard"
    assert seg.log_features == ["total_spend"]
    assert "interquartile range: income" in seg.scaling


def test_scaling_refuses_unknown_features_and_log_of_negatives():
    ff, _, _ = blobs()
    with pytest.raises(ConfigError, match="'f9', which is not a model feature"):
        segment(ff, SegmentConfig(feature_scaling={"f9": "robust"}))
    with pytest.raises(ConfigError, match="negative values"):
        segment(ff, SegmentConfig(feature_scaling={"f0": "log1p"}))


def test_config_refuses_an_unknown_algorithm_or_scaling_with_the_nearest_name():
    with pytest.raises(ConfigError, match="unknown algorithm 'kmean'.*did you mean 'kmeans'"):
        Config().with_overrides(segment__algorithm="kmean")
    with pytest.raises(ConfigError, match="'segment.scaling' is 'robst'.*did you mean 'robust'"):
        Config().with_overrides(segment__scaling="robst")


def test_kprototypes_without_categories_is_a_clear_error():
    ff, _, _ = blobs()
    with pytest.raises(SegmentationError, match="k-prototypes needs categorical columns"):
        segment(ff, SegmentConfig(algorithm="kprototypes"), None)


# gates -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_tsv(marketing_table(40), tmp_path_factory.mktemp("in") / "customers.tsv")


@pytest.fixture(scope="module")
def continuum(tmp_path_factory):
    """Customers shaped like the sample, with every behaviour column shuffled: no clusters."""
    frame = marketing_table(60)
    rng = np.random.default_rng(0)
    for column in ["Income", "MntWines", "MntFruits", "MntMeatProducts", "NumDealsPurchases",
                   "NumWebPurchases", "NumCatalogPurchases", "NumStorePurchases",
                   "NumWebVisitsMonth", "Kidhome", "Year_Birth"]:
        frame[column] = rng.permutation(frame[column].to_numpy())
    return write_tsv(frame, tmp_path_factory.mktemp("in") / "continuum.tsv")


def run(table, out, *extra):
    result = CliRunner().invoke(main, ["run", str(table), "--out", str(out), "--format", "html",
                                       *extra])
    run_dir = only_run(out)
    return result, run_dir, json.loads((run_dir / "summary.json").read_text())


def test_gates_that_pass_exit_0_and_are_recorded(table, tmp_path):
    result, _, summary = run(table, tmp_path, "--fail-under-silhouette", "0.3",
                             "--min-segment-share", "0.2", "--min-stability", "0.9")
    assert result.exit_code == 0, result.output
    assert [(g["name"], g["passed"]) for g in summary["gates"]] == [
        ("fail_under_silhouette", True), ("min_segment_share", True), ("min_stability", True)]


def test_a_failed_silhouette_or_share_gate_exits_3_and_still_writes_the_report(table, tmp_path):
    result, run_dir, summary = run(table, tmp_path, "--fail-under-silhouette", "0.99",
                                   "--min-segment-share", "0.4")
    assert result.exit_code == 3
    assert {p.name for p in run_dir.iterdir()} >= {"report.html", "summary.json",
                                                    "segments.csv", "model.skops"}
    gates = {g["name"]: g for g in summary["gates"]}
    assert not gates["fail_under_silhouette"]["passed"]
    assert gates["fail_under_silhouette"]["threshold"] == 0.99
    assert gates["fail_under_silhouette"]["value"] == pytest.approx(
        summary["method"]["silhouette"], abs=1e-4)
    assert not gates["min_segment_share"]["passed"]
    assert gates["min_segment_share"]["value"] == pytest.approx(
        min(s["share"] for s in summary["segments"]), abs=1e-4)
    assert "Gate failed: fail_under_silhouette: silhouette" in result.stderr
    assert "is below 0.99" in result.stderr


def test_the_stability_gate_fails_on_a_continuum(continuum, tmp_path):
    result, _, summary = run(continuum, tmp_path, "--min-stability", "0.95")
    assert result.exit_code == 3
    (gate,) = summary["gates"]
    assert gate["name"] == "min_stability" and not gate["passed"]
    assert gate["value"] == min(s["stability"] for s in summary["segments"]) < 0.95
    assert "least stable segment" in gate["reason"]


def test_gates_from_the_config_file_work_like_the_options(table, tmp_path):
    config = tmp_path / "reportgen.toml"
    config.write_text("[gates]\nfail_under_silhouette = 0.99\n")
    out = tmp_path / "out"
    result, _, summary = run(table, out, "--config", str(config))
    assert result.exit_code == 3
    assert summary["gates"][0]["name"] == "fail_under_silhouette"


def test_summary_carries_stability_per_segment_and_for_the_method(table, tmp_path):
    result, _, summary = run(table, tmp_path)
    assert result.exit_code == 0
    method = summary["method"]
    assert method["stability_runs"] == 10 and 0 <= method["stability_ari"] <= 1
    assert method["algorithm_id"] == "kmeans"
    for s in summary["segments"]:
        assert 0 <= s["stability"] <= 1
        assert s["tentative"] == (s["stability"] < 0.6)
    assert "stable 1.00" in result.stdout


@pytest.mark.parametrize("bin_sample", [100, 200_000])  # the bins on a sample, on everyone
def test_compare_takes_over_the_scaled_matrix_segment_made_and_hands_it_on_no_further(
        bin_sample, monkeypatch):
    import dataclasses

    import sklearn

    from reportgen import compare
    from reportgen.series import compare_stage

    monkeypatch.setattr(compare, "BIN_SAMPLE", bin_sample)

    ff, _, _ = blobs(n=600)
    ff.frame.loc[ff.frame.index[::7], "f2"] = np.nan  # gaps: the matrix fills them
    ff = dataclasses.replace(ff, fills={"f2": 0.5})
    before = sklearn.get_config()
    seg = segment(ff, SegmentConfig(k=4))
    assert sklearn.get_config() == before  # segment's own checks-off setting is undone
    assert seg.scaled is not None
    assert np.array_equal(seg.scaled, seg.scaler.transform(ff.matrix(seg.scaler.features)))
    cfg = Config()
    palette = ["#000000", "#111111", "#222222", "#333333"]
    taken = compare_stage(seg, ff, None, None, cfg, policy="first", next_id=1, palette=palette)
    scaled_again = compare_stage(dataclasses.replace(seg, scaled=None), ff, None, None, cfg,
                                 policy="first", next_id=1, palette=palette)
    assert taken.z is seg.scaled  # the very matrix, not a copy
    assert taken.seg.scaled is None and scaled_again.seg.scaled is None
    assert np.array_equal(taken.z, scaled_again.z)
    assert np.array_equal(taken.distances, scaled_again.distances)
    assert taken.bins == scaled_again.bins
    x = ff.matrix(seg.scaler.features)  # what the stage gathered whole before
    assert taken.bins == compare.reference_bins(x, seg.scaler.features,
                                                seed=cfg.segment.random_state)
