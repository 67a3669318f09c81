"""Cluster the customers: scale the model features, search k, fit k-means, project to 2-D."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from .config import SegmentConfig
from .errors import SegmentationError
from .features import FeatureFrame
from .report import KRow

SEARCH_FROM = 2  # the table always shows k=2, so a reader sees what the metrics alone would pick
STRUCTURE_SILHOUETTE = 0.35  # above this the data has real clusters, not a continuum
MAX_POINTS = 5000  # customers in the 2-D view

K_RULE = (
    "k-means is fitted for every k from {lo} to {hi}. A k is eligible when it lies in "
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
    scaling: str
    log_features: list[str]  # model features log1p-transformed before scaling
    scaler: StandardScaler
    model: KMeans
    order: list[int]  # model cluster index for segment id 1..k
    points: pd.DataFrame  # sampled customers: x, y (PCA) with the frame index
    projection: str


def _matrix(ff: FeatureFrame) -> tuple[np.ndarray, list[str], StandardScaler]:
    x = ff.frame[ff.model].to_numpy(dtype="float64", copy=True)
    logged = []
    for j, name in enumerate(ff.model):
        col = x[:, j]
        # Money and counts are right-skewed: without a log the biggest spenders would
        # become segments of their own.
        if ff.meta[name].unit in ("money", "count") and col.min() >= 0 and \
                pd.Series(col).skew() > 1:
            x[:, j] = np.log1p(col)
            logged.append(name)
    if not np.isfinite(x).all():
        raise SegmentationError("the model features contain infinite values")
    scaler = StandardScaler().fit(x)
    return scaler.transform(x), logged, scaler


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


def segment(ff: FeatureFrame, cfg: SegmentConfig) -> Segmentation:
    n = len(ff.frame)
    if len(ff.model) < 2:
        raise SegmentationError(
            "fewer than two model features vary across customers",
            hint="check [features] model or the column roles with `reportgen validate`",
        )
    z, logged, scaler = _matrix(ff)
    rng = np.random.default_rng(cfg.random_state)
    distinct = len(np.unique(z, axis=0)) if n <= 100_000 else n
    hi = min(cfg.k if cfg.k else cfg.k_max, distinct - 1)
    lo = min(SEARCH_FROM, cfg.k) if cfg.k else SEARCH_FROM
    if cfg.k and cfg.k > distinct - 1 or hi < 2:
        raise SegmentationError(
            f"only {distinct} distinct customers: too few for {cfg.k or cfg.k_min} segments",
            hint="use a larger table or a smaller --k",
        )

    search_idx = np.sort(rng.choice(n, cfg.search_sample, replace=False)) \
        if n > cfg.search_sample else np.arange(n)
    zs = z[search_idx]
    sil_n = min(cfg.silhouette_sample, len(zs))

    fits: dict[int, KMeans] = {}
    rows: list[dict[str, float]] = []
    for k in range(lo, hi + 1):
        km = KMeans(n_clusters=k, n_init=cfg.n_init, random_state=cfg.random_state).fit(zs)
        labels = km.labels_
        counts = np.bincount(labels, minlength=k)
        fits[k] = km
        single = len(np.unique(labels)) < 2
        rows.append({
            "k": k,
            "inertia": float(km.inertia_),
            "silhouette": 0.0 if single else float(silhouette_score(
                zs, labels, sample_size=sil_n, random_state=cfg.random_state)),
            "calinski_harabasz": 0.0 if single else float(calinski_harabasz_score(zs, labels)),
            "davies_bouldin": 0.0 if single else float(davies_bouldin_score(zs, labels)),
            "min_share": float(counts.min() / len(labels)),
        })
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

    model = fits[chosen]
    if len(search_idx) < n:
        model = KMeans(n_clusters=chosen, n_init=1, init=model.cluster_centers_,
                       random_state=cfg.random_state).fit(z)
    raw = model.predict(z) if len(search_idx) < n else model.labels_

    # Segment ids follow value: segment 1 brings the most, whatever k-means numbered it.
    if ff.value:
        worth = pd.Series(ff.frame[ff.value].to_numpy()).groupby(raw).sum()
    else:
        worth = pd.Series(raw).value_counts()
    order = [int(c) for c in worth.reindex(range(chosen), fill_value=0)
             .sort_values(ascending=False, kind="stable").index]
    relabel = np.empty(chosen, dtype=int)
    for seg_id, cluster in enumerate(order, start=1):
        relabel[cluster] = seg_id
    labels = relabel[raw]

    final_sil = next(r.silhouette for r in table if r.k == chosen)
    m = min(MAX_POINTS, n)
    pts_idx = np.sort(rng.choice(n, m, replace=False)) if n > m else np.arange(n)
    pca = PCA(n_components=2, random_state=cfg.random_state).fit(z[search_idx])
    xy = pca.transform(z[pts_idx])
    points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=ff.frame.index[pts_idx])
    ev = pca.explained_variance_ratio_
    scaling = "standardised (z-scores)" + (
        f" after log(1 + x) on {', '.join(ff.meta[f].label.lower() for f in logged)}"
        if logged else "")
    return Segmentation(
        labels=labels, k=chosen, k_table=table, k_forced=cfg.k is not None,
        k_rule=K_RULE.format(lo=lo, hi=hi, kmin=cfg.k_min, kmax=cfg.k_max,
                             share=cfg.min_segment_share, structure=STRUCTURE_SILHOUETTE),
        k_reason=reason, k_disagreement=disagreement, silhouette=final_sil, scaling=scaling,
        log_features=logged, scaler=scaler, model=model, order=order, points=points,
        projection=f"PCA of the scaled model features: axes explain {ev[0]:.0%} and "
                   f"{ev[1]:.0%} of the variance",
    )


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
