"""Cluster the customers: scale the model features, search k, fit the chosen algorithm, measure
stability, project to 2-D."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.decomposition import PCA
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
    silhouette_score,
)
from threadpoolctl import ThreadpoolController, threadpool_limits

from . import algorithms, fmt, progress
from .config import SegmentConfig
from .errors import SegmentationError
from .features import FeatureFrame
from .report import TENTATIVE_BELOW, KRow
from .scaling import Scaling, fit_transform
from .stability import Refitted, Stability, agreement, start_refits

SEARCH_FROM = 2  # the table always shows k=2, so a reader sees what the metrics alone would pick
STRUCTURE_SILHOUETTE = 0.35  # above this the data has real clusters, not a continuum
# Customers in the 2-D view (and the income/value scatter): every one up to this, else a seeded
# sample. 5,000 doubled the charts' cost for print (vl-convert SVG + WeasyPrint: ~20 s of a
# 1 M-customer run's output stage under load) for no more shape than 2,500 dots show; every
# table of scripts/golden.py (the sample's 2,240 customers included) stays below it.
MAX_POINTS = 2500
# One BLAS/OpenMP thread: on this 2-core machine, with anything else running, two threads made
# the sample's k search 5-10× slower (OpenMP spin-waits; 3-5 s instead of 0.6 s) and never more
# than 2× faster at 1M rows, where only a 50k-row sample is fitted anyway.
THREADS = 1
# The fits that do not depend on each other (one per k in the search, one per stability refit)
# run in this many Python threads, each with THREADS OpenMP threads: every fit is then the very
# fit a single thread makes, so the results do not depend on the number of threads, and no
# thread spin-waits for another (scikit-learn's k-means releases the GIL in its loops). 9 fits of
# k=2..10, n_init=4 on 50k×12: 1.74× faster than one thread on a quiet machine, where OpenMP's
# own two threads were 1.6× slower and changed the results. More than 2 is untried.
MAX_WORKERS = 2
# Fewer customers searched than this: one thread. The sample's fits (2,240 customers) last
# milliseconds each and hold the GIL for much of it (scikit-learn's checks, silhouette's loop
# over rows): with other sessions' jobs loading the 2 cores (load 5-7) two threads made its
# segment stage 17-33 % slower (a thread holding the GIL waits for a core; Linux shares the
# CPU between sessions first, so the second thread adds no share), while at 10,000 and 30,000
# customers they were even and at 50,000 12 % faster. With a busy loop in the same session
# both gained (the sample 29 %, 1 M 25 %): a second thread there does get a share.
PARALLEL_FROM = 10_000
# scikit-learn's own checks, repeated in every fit, measure and prediction (~200 calls at 1 M
# customers), are skipped: the scaled matrix is checked finite once (scaling.fit_transform)
# and every estimator's parameters come from the validated config. 5 % of the stage's CPU at
# 1 M customers (3.16 → 3.00 s, the same results). A setting of each thread (sklearn's
# config is thread-local): segment sets it for its own, fit_pool's workers for theirs.
TRUSTED_INPUT = {"assume_finite": True, "skip_parameter_validation": True}
# Largest silhouette sample whose distance matrix is kept for every k (4,000² doubles = 128 MB).
SHARED_DISTANCES_UP_TO = 4000

NAMES = {
    "kmeans": "k-means",
    "kmeans-sample": "k-means",
    "minibatch": "mini-batch k-means",
    "gmm": "a Gaussian mixture",
    "ward": "Ward hierarchical clustering",
    "kprototypes": "k-prototypes",
}

K_RULE = (
    "{fitted} is fitted for every k from {lo} to {hi}. A k is eligible when it lies in "
    "{kmin}..{kmax} and its smallest segment holds at least {share:.0%} of customers. "
    "Each metric ranks the eligible k: silhouette (higher is better), Calinski-Harabasz (higher), "
    "Davies-Bouldin (lower) and the knee of the inertia curve (largest distance below the chord "
    "from the first to the last k, i.e. where another segment stops paying). When the data has "
    "clear clusters (best silhouette ≥ {structure}) all four metrics vote and the best mean rank "
    "wins; otherwise the table is a continuum, the separation metrics mostly reward the coarsest "
    "split, and the knee alone decides. Ties go to the smaller k."
)


@dataclass(frozen=True)
class Segmentation:
    labels: np.ndarray  # segment id 1..k per customer, aligned with FeatureFrame.frame
    k: int
    k_table: list[KRow]
    k_forced: bool
    k_rule: str
    k_reason: str
    k_disagreement: str
    silhouette: float
    scaling: str  # in words, for the appendix
    log_features: list[str]  # model features log1p-transformed before scaling
    scaler: Scaling
    model: Any  # predicts the cluster index of scaled rows (see algorithms.predict_labels)
    order: list[int]  # model cluster index for segment id 1..k
    points: pd.DataFrame  # sampled customers: x, y (PCA) with the frame index
    projection: str
    algorithm: str = "kmeans"  # as run: kmeans, kmeans-sample, minibatch, gmm, ward, kprototypes
    algorithm_text: str = ""  # in words, for the appendix
    categorical: tuple[str, ...] = ()  # category columns k-prototypes used
    stability: Stability | None = None  # per segment id, after relabelling
    stability_text: str = ""
    # The scaled model matrix (scaler.transform of ff.matrix(scaler.features), rows of
    # ff.frame), made once here and handed to the compare stage, which takes it over and
    # returns the Segmentation without it (series.compare_stage): ~0.1 GB at 1 M customers
    # that would otherwise be scaled again there, and must not outlive the report.
    scaled: np.ndarray | None = field(default=None, repr=False, compare=False)


def _cats(categories: pd.DataFrame | None, algorithm: str) -> np.ndarray | None:
    if algorithm != "kprototypes" or categories is None:
        return None
    return categories.astype("string").fillna("Unknown").to_numpy(dtype=object)


class Silhouette:
    """Silhouette of a labelling, on a fixed random sample of the rows of x: what
    ``silhouette_score(x, labels, sample_size=sample, random_state=seed)`` gives, with the
    sample's distances computed once and shared by every k (the k search asks for ten
    labellings of the same rows; recomputing the distances was half its time)."""

    def __init__(self, x: np.ndarray, sample: int, seed: int) -> None:
        self._x, self._sample, self._seed = x, sample, seed
        # The rows silhouette_score samples for this seed.
        self._rows = np.random.RandomState(seed).permutation(len(x))[:sample]
        self._distances = pairwise_distances(x[self._rows]) \
            if sample <= SHARED_DISTANCES_UP_TO else None

    def __call__(self, labels: np.ndarray) -> float:
        if self._distances is None:
            return float(silhouette_score(self._x, labels, sample_size=self._sample,
                                          random_state=self._seed))
        sampled = labels[self._rows]
        if not 2 <= len(np.unique(sampled)) < len(sampled):
            return 0.0
        return float(silhouette_score(self._distances, sampled, metric="precomputed"))


def _capped(rows: int, algorithm: str, cfg: SegmentConfig) -> int:
    """ROWS customers for a fit of algorithm: Ward and k-prototypes do not scale, so they take
    at most their fit sample size (segment.fit_sample)."""
    return min(rows, cfg.fit_sample) if algorithm in ("ward", "kprototypes") else rows


def _search_rows(algorithm: str, n: int, cfg: SegmentConfig, rng: np.random.Generator
                 ) -> np.ndarray:
    cap = _capped(cfg.search_sample, algorithm, cfg)
    return np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)


def default_workers(searched: int) -> int:
    """Threads for the fits when the k search fits SEARCHED customers: the CPUs this process
    may use (its affinity and any container quota, as joblib counts them), at most
    MAX_WORKERS; one below PARALLEL_FROM."""
    from joblib import cpu_count

    if searched < PARALLEL_FROM:
        return 1
    return max(1, min(MAX_WORKERS, cpu_count()))


@contextmanager
def fit_pool(workers: int) -> Iterator[Executor]:
    """WORKERS threads for independent fits, each limited to THREADS OpenMP threads.

    OpenMP's thread count is a setting of each thread, and a new thread starts from the
    default (every core): the caller's limit does not reach it, so each worker sets its own.
    BLAS's limit is one for the whole process: the caller's (``segment``) holds it."""
    controller = ThreadpoolController()
    held = []  # the workers' limits, never restored: the threads end with the pool

    def limit() -> None:
        held.append(controller.limit(limits=THREADS, user_api="openmp"))
        sklearn.set_config(**TRUSTED_INPUT)  # this worker thread's, ending with it

    pool = ThreadPoolExecutor(workers, thread_name_prefix="reportgen-fit", initializer=limit)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _search_fits(algorithm: str, zs: np.ndarray, ks: list[int], cfg: SegmentConfig,
                 pool: Executor) -> dict[int, Future[algorithms.Fitted]]:
    progress.update("segment", 0, len(ks), "k searched")
    if algorithm == "ward":
        fitted = algorithms.ward_fits(zs, ks)
        return {k: _done(fitted[k]) for k in ks}
    # k-prototypes is too slow to fit at every k (~0.7 s per fit on 2,240 customers): the
    # search uses k-means on the numbers, and k-prototypes fits the chosen k with the categories.
    family = "kmeans" if algorithm == "kprototypes" else algorithm
    # A larger k takes longer: submitted first, the last fits to start are the short ones.
    return {k: pool.submit(algorithms.fit, family, zs, k, cfg.random_state, cfg.n_init)
            for k in sorted(ks, reverse=True)}


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _k_row(k: int, fitted: algorithms.Fitted, zs: np.ndarray, silhouette: Silhouette
           ) -> dict[str, float]:
    """The k table's measures of one fit of the search (min_share: its smallest segment)."""
    labels = fitted.labels
    counts = np.bincount(labels, minlength=k)
    single = np.count_nonzero(counts) < 2
    return {
        "k": k,
        "inertia": fitted.inertia,
        "silhouette": 0.0 if single else silhouette(labels),
        "calinski_harabasz": 0.0 if single else float(calinski_harabasz_score(zs, labels)),
        "davies_bouldin": 0.0 if single else float(davies_bouldin_score(zs, labels)),
        "min_share": float(counts.min() / len(labels)),
    }


def _search(algorithm: str, zs: np.ndarray, ks: list[int], cfg: SegmentConfig,
            silhouette: Future[Silhouette], pool: Executor
            ) -> tuple[dict[int, algorithms.Fitted], list[dict[str, float]]]:
    """Fit every k on the search rows zs and measure each fit, in the pool's threads; the
    fits and the table in the order of ks."""
    fits = _search_fits(algorithm, zs, ks, cfg, pool)
    measured: dict[int, Future[dict[str, float]]] = {}
    k_of = {f: k for k, f in fits.items()}
    for i, future in enumerate(as_completed(fits.values()), start=1):
        progress.update("segment", i, len(ks), "k searched")
        k = k_of[future]
        measured[k] = pool.submit(_k_row, k, future.result(), zs, silhouette.result())
    return {k: fits[k].result() for k in ks}, [measured[k].result() for k in ks]


def segment(ff: FeatureFrame, cfg: SegmentConfig, categories: pd.DataFrame | None = None,
            *, workers: int | None = None) -> Segmentation:
    """Segment the customers of ff. categories: the category columns (for kprototypes).
    workers: threads for the fits (default: ``default_workers`` of the customers searched);
    the result is the same for any number."""
    if workers is None:
        workers = default_workers(min(len(ff.frame),
                                      _capped(cfg.search_sample, cfg.algorithm, cfg)))
    with threadpool_limits(limits=THREADS), sklearn.config_context(**TRUSTED_INPUT), \
            fit_pool(workers) as pool:
        return _segment(ff, cfg, categories, pool)


def _segment(ff: FeatureFrame, cfg: SegmentConfig, categories: pd.DataFrame | None,
             pool: Executor) -> Segmentation:
    n = len(ff.frame)
    if len(ff.model) < 2:
        raise SegmentationError(
            "fewer than two model features vary across customers",
            hint="check [features] model or the column roles with `reportgen validate`",
        )
    # The one copy of the model matrix: scaled in place.
    scaler, z = fit_transform(ff.matrix(ff.model),
                              ff.model, {f: ff.meta[f].unit for f in ff.model}, cfg.scaling,
                              cfg.feature_scaling)
    rng = np.random.default_rng(cfg.random_state)
    distinct = len(np.unique(z, axis=0)) if n <= 100_000 else n
    hi = min(cfg.k if cfg.k else cfg.k_max, distinct - 1)
    lo = min(SEARCH_FROM, cfg.k) if cfg.k else SEARCH_FROM
    if cfg.k and cfg.k > distinct - 1 or hi < 2:
        raise SegmentationError(
            f"only {distinct} distinct customers: too few for {cfg.k or cfg.k_min} segments",
            hint="use a larger table or a smaller --k",
        )
    algorithm = cfg.algorithm
    if algorithm == "kmeans" and n > cfg.large_table:
        algorithm = "kmeans-sample"
    family = "kmeans" if algorithm == "kmeans-sample" else algorithm
    cats = _cats(categories, algorithm)
    if algorithm == "kprototypes" and (cats is None or cats.shape[1] == 0):
        raise SegmentationError(
            "k-prototypes needs categorical columns and the table has none",
            hint="use --algorithm kmeans, or give a column the role 'categorical' in [columns]",
        )

    search_idx = _search_rows(algorithm, n, cfg, rng)
    m = min(MAX_POINTS, n)
    pts_idx = np.sort(rng.choice(n, m, replace=False)) if n > m else np.arange(n)
    zs = z[search_idx]
    sil_n = min(cfg.silhouette_sample, len(zs))

    ks = list(range(lo, hi + 1))
    # Neither needs the fits: they take the threads between and after them.
    silhouette = pool.submit(Silhouette, zs, sil_n, cfg.random_state)
    # Searched on everyone: the same sample of customers, so the same distances.
    final = silhouette if len(search_idx) == n else \
        pool.submit(Silhouette, z, min(cfg.silhouette_sample, n), cfg.random_state)
    fits, rows = _search(family, zs, ks, cfg, silhouette, pool)
    projected = pool.submit(_project, zs, z[pts_idx], cfg.random_state)
    knee = _knee([r["inertia"] for r in rows])
    for r, d in zip(rows, knee, strict=True):
        r["knee_distance"] = d

    chosen, reason, disagreement, eligible, scores = _choose(rows, cfg)
    table = [
        KRow(k=int(r["k"]), inertia=r["inertia"], silhouette=r["silhouette"],
             calinski_harabasz=r["calinski_harabasz"], davies_bouldin=r["davies_bouldin"],
             knee_distance=r["knee_distance"], min_share=r["min_share"],
             eligible=int(r["k"]) in eligible, score=scores.get(int(r["k"]), 0.0),
             chosen=int(r["k"]) == chosen)
        for r in rows
    ]

    refits = _start_stability(z, cats, family, chosen, cfg, pool)
    fit_idx = search_idx
    if algorithm == "kprototypes":
        model = algorithms.fit("kprototypes", zs, chosen, cfg.random_state, cfg.n_init,
                               cats=cats[search_idx] if cats is not None else None).model
    elif family in ("kmeans", "minibatch") and len(search_idx) < n <= cfg.large_table:
        # A medium table: polish the sample's centres on everyone (a few passes from a good start).
        model = algorithms.fit(family, z, chosen, cfg.random_state, 1,
                               init=fits[chosen].model.cluster_centers_).model
        fit_idx = np.arange(n)
    else:
        model = fits[chosen].model
    if len(search_idx) == n and algorithm != "kprototypes":
        raw = fits[chosen].labels  # the fit's own labels: what predict gives for these rows
    else:
        raw = algorithms.predict_labels(family, model, z, cats)

    # Segment ids follow value: segment 1 brings the most, whatever the model numbered it.
    if ff.value:
        worth = pd.Series(ff.frame[ff.value].to_numpy()).groupby(raw).sum()
    else:
        worth = pd.Series(raw).value_counts()
    order = [int(c) for c in worth.reindex(range(chosen), fill_value=0)
             .sort_values(ascending=False, kind="stable").index]
    labels = algorithms.segment_ids(raw, order)

    # bincount, not np.unique: 1 ms instead of 30 on a million labels
    final_sil = final.result()(labels) if np.count_nonzero(np.bincount(labels)) > 1 else 0.0
    stability, stability_text = _stability(labels, refits, family, cfg)
    xy, ev = projected.result()
    points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=ff.frame.index[pts_idx])
    fitted = ("k-means on the numeric features (k-prototypes is then fitted at the chosen k "
              "with the categories)") if algorithm == "kprototypes" else NAMES[algorithm]
    return Segmentation(
        labels=labels, k=chosen, k_table=table, k_forced=cfg.k is not None,
        k_rule=K_RULE.format(fitted=fitted[0].upper() + fitted[1:], lo=lo, hi=hi,
                             kmin=cfg.k_min, kmax=cfg.k_max, share=cfg.min_segment_share,
                             structure=STRUCTURE_SILHOUETTE),
        k_reason=reason, k_disagreement=disagreement, silhouette=final_sil,
        scaling=scaler.describe({f: ff.meta[f].label for f in ff.model}),
        log_features=scaler.logged, scaler=scaler, model=model, order=order, points=points,
        projection=f"PCA of the scaled model features: axes explain {ev[0]:.0%} and "
                   f"{ev[1]:.0%} of the variance",
        algorithm=algorithm,
        algorithm_text=_describe(algorithm, cfg, n, len(search_idx), len(fit_idx),
                                 tuple(categories.columns) if cats is not None and
                                 categories is not None else ()),
        categorical=tuple(categories.columns) if cats is not None and categories is not None
        else (),
        stability=stability, stability_text=stability_text, scaled=z,
    )


def _describe(algorithm: str, cfg: SegmentConfig, n: int, searched: int, fitted: int,
              categorical: tuple[str, ...]) -> str:
    restarts = f"{cfg.n_init} restart{'s' if cfg.n_init > 1 else ''}"
    if algorithm == "kmeans":
        text = f"k-means (scikit-learn, k-means++ initialisation, {restarts} per k)"
        if searched < n:
            text += (f"; k searched on {fmt.num(searched)} sampled customers, the final centres "
                     f"refined on all {fmt.num(n)}")
        return text
    if algorithm == "kmeans-sample":
        return (f"k-means (scikit-learn, k-means++ initialisation, {restarts} per k) fitted on "
                f"{fmt.num(searched)} sampled customers; the other {fmt.num(n - searched)} are "
                "assigned to the nearest centre. The table is above segment.large_table "
                f"({fmt.num(cfg.large_table)} customers): this was measured faster than "
                "mini-batch k-means and closer to a k-means fit on everyone")
    if algorithm == "minibatch":
        return (f"mini-batch k-means (scikit-learn, batches of 4,096, {restarts} per k)"
                + (f", fitted on {fmt.num(fitted)} customers" if fitted < n else ""))
    if algorithm == "gmm":
        text = "Gaussian mixture (scikit-learn, full covariance, k-means initialisation)"
        if searched < n:
            text += f" fitted on {fmt.num(searched)} sampled customers, the rest assigned"
        return text + "; each customer goes to the most probable component"
    if algorithm == "ward":
        return (f"Ward hierarchical clustering (SciPy, as in scikit-learn) on "
                f"{'all ' if searched == n else ''}{fmt.num(searched)}"
                f"{'' if searched == n else ' sampled'} customers; every customer is then "
                "assigned to the nearest segment centre")
    return (f"k-prototypes (kmodes, started from the k-means centres) on the scaled numbers and "
            f"{', '.join(categorical)}, fitted on "
            f"{'all ' if searched == n else ''}{fmt.num(searched)} customers; k chosen by "
            "k-means on the numbers")


def _project(zs: np.ndarray, shown: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D view: PCA fitted on the search rows, the shown customers' coordinates and the
    variance each axis explains."""
    pca = PCA(n_components=2, random_state=seed).fit(zs)
    return pca.transform(shown), pca.explained_variance_ratio_


def _start_stability(z: np.ndarray, cats: np.ndarray | None, family: str, k: int,
                     cfg: SegmentConfig, pool: Executor) -> list[Future[Refitted]] | None:
    """The stability refits at k, started in the pool (they need k, not the final labels)."""
    if cfg.stability_runs == 0:
        return None

    def refit(rows: np.ndarray, seed: int) -> np.ndarray:
        sub_cats = cats[rows] if cats is not None else None
        model = algorithms.fit(family, z[rows], k, seed, cfg.n_init, cats=sub_cats).model
        evaluated = np.unique(rows)
        return algorithms.predict_labels(family, model, z[evaluated],
                                         cats[evaluated] if cats is not None else None)

    return start_refits(len(z), refit, cfg.stability_runs,
                        _capped(cfg.stability_sample, family, cfg),
                        cfg.random_state, pool)


def _stability(labels: np.ndarray, refits: list[Future[Refitted]] | None, family: str,
               cfg: SegmentConfig) -> tuple[Stability | None, str]:
    if refits is None:
        return None, "not measured (segment.stability_runs = 0)"
    result = agreement(labels, (f.result() for f in refits),
                       _capped(cfg.stability_sample, family, cfg))
    text = (f"{result.runs} refits, each on {fmt.num(result.sample)} customers drawn with "
            f"replacement and a new seed; a segment's stability is its mean best-match Jaccard "
            f"index with the refit's segments (1 = it came back whole); under "
            f"{TENTATIVE_BELOW:.1f} it is marked tentative. Overall agreement (adjusted Rand "
            f"index): {result.ari:.2f}")
    return result, text


def _knee(inertia: list[float]) -> list[float]:
    """Distance of each point below the chord of the normalised inertia curve (0..1)."""
    y = np.asarray(inertia, dtype=float)
    if len(y) < 3 or y[0] == y[-1]:
        return [0.0] * len(y)
    x = np.linspace(0.0, 1.0, len(y))
    yn = (y - y[-1]) / (y[0] - y[-1])
    return [float(max(v, 0.0)) for v in (1.0 - x) - yn]


def _ranks(values: list[float], higher_is_better: bool) -> np.ndarray:
    s = pd.Series(values)
    return s.rank(ascending=not higher_is_better, method="min").to_numpy()


def _choose(
    rows: list[dict[str, float]], cfg: SegmentConfig
) -> tuple[int, str, str, set[int], dict[int, float]]:
    ks = [int(r["k"]) for r in rows]
    best = {
        "silhouette": ks[int(np.argmax([r["silhouette"] for r in rows]))],
        "Calinski-Harabasz": ks[int(np.argmax([r["calinski_harabasz"] for r in rows]))],
        "Davies-Bouldin": ks[int(np.argmin([r["davies_bouldin"] for r in rows]))],
        "inertia knee": ks[int(np.argmax([r["knee_distance"] for r in rows]))],
    }
    if cfg.k is not None:
        return cfg.k, f"k = {cfg.k} was set by the user (--k or segment.k)", \
            _disagreement(best, cfg.k), {cfg.k}, {}

    eligible_rows = [r for r in rows if cfg.k_min <= r["k"] <= cfg.k_max
                     and r["min_share"] >= cfg.min_segment_share]
    if not eligible_rows:
        # Nothing passes the size test: take the k with the largest smallest segment.
        fallback = max(rows, key=lambda r: (r["min_share"], -r["k"]))
        k = int(fallback["k"])
        return k, (f"no k in {cfg.k_min}..{cfg.k_max} keeps every segment above "
                   f"{cfg.min_segment_share:.0%} of customers; k = {k} has the largest smallest "
                   f"segment ({fallback['min_share']:.1%})"), _disagreement(best, k), {k}, {}

    structured = max(r["silhouette"] for r in eligible_rows) >= STRUCTURE_SILHOUETTE
    metrics = [("knee_distance", True)]
    if structured:
        metrics += [("silhouette", True), ("calinski_harabasz", True), ("davies_bouldin", False)]
    ranks = np.mean([_ranks([r[m] for r in eligible_rows], hib) for m, hib in metrics], axis=0)
    scores = {int(r["k"]): float(s) for r, s in zip(eligible_rows, ranks, strict=True)}
    k = min(scores, key=lambda kk: (scores[kk], kk))
    row = next(r for r in eligible_rows if r["k"] == k)
    if structured:
        reason = (f"k = {k} has the best mean rank over the four metrics among eligible k "
                  f"(silhouette {row['silhouette']:.2f}: the data has clear clusters)")
    else:
        best_sil = max(r["silhouette"] for r in eligible_rows)
        reason = (f"k = {k} is the knee of the inertia curve among eligible k: beyond it another "
                  f"segment explains little more. The best silhouette is only {best_sil:.2f}, so "
                  "the customers form a continuum rather than clear clusters, and the segments are "
                  "a partition for action rather than natural groups")
    return k, reason, _disagreement(best, k), {int(r["k"]) for r in eligible_rows}, scores


def _disagreement(best: dict[str, int], chosen: int) -> str:
    others = {m: k for m, k in best.items() if k != chosen}
    if not others:
        return ""
    parts = [f"{m} alone would pick k = {k}" for m, k in others.items()]
    note = "; ".join(parts)
    if any(k < chosen and k == SEARCH_FROM for k in others.values()):
        note += (f". k = {SEARCH_FROM} splits customers into high and low value only, which a "
                 "marketer cannot act on beyond what total spend already says")
    return note[0].upper() + note[1:] + "."
