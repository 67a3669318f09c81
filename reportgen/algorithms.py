"""The clustering algorithms behind ``segment.algorithm``, behind one fit / predict pair.

Every fitted model assigns any customer to a segment with ``predict_labels``, so the same code
labels the training table, the stability refits and new customers (``reportgen score``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SegmentationError

PREDICT_CHUNK = 100_000  # rows per predict call: bounds the distance matrix in memory


@dataclass(frozen=True)
class Fitted:
    model: Any  # a scikit-learn estimator, or kmodes' KPrototypes
    labels: np.ndarray  # cluster index 0..k-1 of each fitted row
    inertia: float  # within-segment sum of squares in the scaled space


def within_ss(z: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Sum of squared distances to the segment means: k-means' inertia for any partition."""
    total = 0.0
    for c in range(k):
        members = z[labels == c]
        if len(members):
            total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def _mixed(z: np.ndarray, cats: np.ndarray) -> np.ndarray:
    return np.concatenate([z.astype(object), cats.astype(object)], axis=1)


def _categorical(z: np.ndarray, cats: np.ndarray) -> list[int]:
    return list(range(z.shape[1], z.shape[1] + cats.shape[1]))


def fit(algorithm: str, z: np.ndarray, k: int, seed: int, n_init: int,
        cats: np.ndarray | None = None, init: np.ndarray | None = None) -> Fitted:
    """Fit ALGORITHM with k segments on the scaled rows z (and categories, for kprototypes)."""
    if algorithm == "kmeans":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, n_init=1 if init is not None else n_init,
                    init=init if init is not None else "k-means++", random_state=seed).fit(z)
        return Fitted(km, km.labels_, float(km.inertia_))
    if algorithm == "minibatch":
        from sklearn.cluster import MiniBatchKMeans

        mb = MiniBatchKMeans(n_clusters=k, n_init=1 if init is not None else n_init,
                             init=init if init is not None else "k-means++",
                             batch_size=4096, random_state=seed).fit(z)
        labels = mb.predict(z)
        return Fitted(mb, labels, within_ss(z, labels, k))
    if algorithm == "gmm":
        from sklearn.mixture import GaussianMixture

        # One start: each full-covariance fit costs ~25× a k-means fit; the k-means
        # initialisation already makes it stable.
        gm = GaussianMixture(n_components=k, covariance_type="full", n_init=1,
                             reg_covar=1e-4, random_state=seed).fit(z)
        labels = gm.predict(z)
        return Fitted(gm, labels, within_ss(z, labels, k))
    if algorithm == "ward":
        return ward_fits(z, [k])[k]
    if algorithm == "kprototypes":
        if cats is None or cats.shape[1] == 0:
            raise SegmentationError(
                "k-prototypes needs categorical columns and the table has none",
                hint="use --algorithm kmeans, or give a column the role 'categorical' in [columns]",
            )
        from kmodes.kprototypes import KPrototypes

        kp = KPrototypes(n_clusters=k, n_init=1, init=_kmeans_start(z, cats, k, seed, n_init),
                         random_state=seed, n_jobs=1)
        x = _mixed(z, cats)
        kp.fit(x, categorical=_categorical(z, cats))
        labels = np.asarray(kp.predict(x, categorical=_categorical(z, cats)), dtype=int)
        return Fitted(kp, labels, within_ss(z, labels, k))
    raise SegmentationError(f"unknown algorithm {algorithm!r}")


def _kmeans_start(z: np.ndarray, cats: np.ndarray, k: int, seed: int, n_init: int
                  ) -> list[np.ndarray]:
    """k-prototypes' starting point: k-means centres and each k-means cluster's modal categories.

    kmodes otherwise draws the numeric centres at random around the mean, and with one start it
    can miss even well-separated groups; k-means is cheap and finds them.
    """
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z).labels_
    centres = np.array([z[labels == c].mean(axis=0) for c in range(k)])
    # kmodes codes each category as its position among the column's sorted distinct values.
    modes = np.zeros((k, cats.shape[1]), dtype=np.uint16)
    for j in range(cats.shape[1]):
        levels, codes = np.unique(cats[:, j], return_inverse=True)
        for c in range(k):
            member_codes = codes[labels == c]
            modes[c, j] = np.bincount(member_codes, minlength=len(levels)).argmax() \
                if len(member_codes) else 0
    return [centres, modes]


def ward_fits(z: np.ndarray, ks: list[int]) -> dict[int, Fitted]:
    """Ward's hierarchy built once, cut at every k; each cut becomes a nearest-centroid model.

    scikit-learn's AgglomerativeClustering(linkage="ward") builds this same tree with SciPy;
    calling SciPy directly lets one tree serve every k of the search.
    """
    from scipy.cluster.hierarchy import cut_tree, linkage
    from sklearn.neighbors import NearestCentroid

    tree = linkage(z, method="ward")
    cuts = cut_tree(tree, n_clusters=ks)
    out = {}
    for j, k in enumerate(ks):
        model = NearestCentroid().fit(z, cuts[:, j])
        # Everyone, the fitted rows included, goes to the nearest centroid, so a customer
        # scored later lands where the report put them.
        labels = np.asarray(model.predict(z), dtype=int)
        out[k] = Fitted(model, labels, within_ss(z, labels, k))
    return out


def predict_labels(algorithm: str, model: Any, z: np.ndarray, cats: np.ndarray | None = None
                   ) -> np.ndarray:
    """Cluster index of each row of z, in chunks so memory stays flat on large tables."""
    parts = []
    for start in range(0, len(z), PREDICT_CHUNK):
        zc = z[start:start + PREDICT_CHUNK]
        if algorithm == "kprototypes":
            assert cats is not None
            cc = cats[start:start + PREDICT_CHUNK]
            parts.append(np.asarray(model.predict(_mixed(zc, cc), categorical=_categorical(zc, cc)),
                                    dtype=int))
        else:
            parts.append(np.asarray(model.predict(zc), dtype=int))
    return np.concatenate(parts) if parts else np.empty(0, dtype=int)


def segment_ids(raw: np.ndarray, order: list[int]) -> np.ndarray:
    """Segment id (1..k) of each row from the model's cluster index: ``order[i]`` is the
    cluster of segment i + 1 (segments are numbered by value, whatever the model called them)."""
    relabel = np.zeros(max(len(order), int(raw.max(initial=0)) + 1), dtype=int)
    for seg_id, cluster in enumerate(order, start=1):
        relabel[cluster] = seg_id
    return relabel[raw]
