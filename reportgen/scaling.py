"""Per-feature scaling of the model features: standard, robust or log1p (then standard).

The fitted scaling is plain arrays, so it is saved with the model as data, not as code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, SegmentationError

SKEWED = 1.0  # skewness above which "auto" takes log(1 + x) of money and counts
AUTO_LOG_UNITS = ("money", "count")


@dataclass(frozen=True)
class Scaling:
    features: list[str]
    methods: list[str]  # per feature: standard, robust or log1p
    center: np.ndarray  # subtracted after the log (mean, or median for robust)
    scale: np.ndarray  # divided by (std, or interquartile range for robust)

    @property
    def log1p(self) -> np.ndarray:
        return np.array([m == "log1p" for m in self.methods], dtype=bool)

    @property
    def logged(self) -> list[str]:
        return [f for f, m in zip(self.features, self.methods, strict=True) if m == "log1p"]

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = np.array(x, dtype="float64", copy=True)
        log = self.log1p
        if log.any():
            # Money and counts can be 0 but not below; a negative here is a new customer's
            # refund or a data error: clip rather than produce NaN.
            z[:, log] = np.log1p(np.clip(z[:, log], 0.0, None))
        z -= self.center
        z /= self.scale
        return z

    def describe(self, labels: dict[str, str]) -> str:
        by_method: dict[str, list[str]] = {}
        for f, m in zip(self.features, self.methods, strict=True):
            by_method.setdefault(m, []).append(labels.get(f, f).lower())
        if set(by_method) <= {"standard", "log1p"}:
            text = "standardised (z-scores)"
            if by_method.get("log1p"):
                text += f" after log(1 + x) on {', '.join(by_method['log1p'])}"
            return text
        parts = []
        if by_method.get("standard"):
            parts.append(f"standardised: {', '.join(by_method['standard'])}")
        if by_method.get("log1p"):
            parts.append(f"log(1 + x) then standardised: {', '.join(by_method['log1p'])}")
        if by_method.get("robust"):
            parts.append("centred on the median and divided by the interquartile range: "
                         f"{', '.join(by_method['robust'])}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "methods": list(self.methods),
                "center": self.center, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaling:
        return cls(features=list(data["features"]), methods=list(data["methods"]),
                   center=np.asarray(data["center"], dtype="float64"),
                   scale=np.asarray(data["scale"], dtype="float64"))


def _method(name: str, col: np.ndarray, unit: str, default: str, overrides: dict[str, str]
            ) -> str:
    method = overrides.get(name, default)
    if method == "auto":
        # Without a log the biggest spenders would become segments of their own.
        skewed = unit in AUTO_LOG_UNITS and col.min() >= 0 and pd.Series(col).skew() > SKEWED
        return "log1p" if skewed else "standard"
    if method == "log1p" and col.min() < 0:
        raise ConfigError(f"segment.feature_scaling: {name!r} has negative values, so log1p "
                          "cannot be used", hint="use standard or robust for it")
    return method


def fit_scaling(x: np.ndarray, features: list[str], units: dict[str, str], default: str,
                overrides: dict[str, str]) -> Scaling:
    """Choose each feature's method and learn its centre and scale from x (rows × features)."""
    return _fit(x.astype("float64", copy=True), features, units, default, overrides)


def fit_transform(x: np.ndarray, features: list[str], units: dict[str, str], default: str,
                  overrides: dict[str, str]) -> tuple[Scaling, np.ndarray]:
    """fit_scaling(x) and its transform(x), in x's own memory: x (float64, rows × features,
    which the caller gives up) becomes the scaled matrix, so the model matrix exists once.
    The same numbers as ``fit_scaling(x, ...).transform(x)``, bit for bit: the same
    operations on the same values (the log is only chosen for columns without negatives,
    where transform's clip changes nothing)."""
    if x.dtype != np.float64:
        raise TypeError("fit_transform scales a float64 matrix in place")
    scaling = _fit(x, features, units, default, overrides)
    x -= scaling.center
    x /= scaling.scale
    return scaling, x


def _fit(z: np.ndarray, features: list[str], units: dict[str, str], default: str,
         overrides: dict[str, str]) -> Scaling:
    """The scaling learned from z, whose log columns are log1p-transformed in place."""
    x = z
    for name in overrides:
        if name not in features:
            close = difflib.get_close_matches(name, features, n=1)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"model features: {', '.join(features)}"
            raise ConfigError(f"segment.feature_scaling names {name!r}, which is not a model "
                              "feature", hint=hint)
    if not np.isfinite(x).all():
        raise SegmentationError("the model features contain infinite or missing values")
    methods = [_method(f, x[:, j], units.get(f, "number"), default, overrides)
               for j, f in enumerate(features)]
    # Column by column, in place: z.std(axis=0) holds (z - mean)² for the whole matrix at
    # once (96 MB at 1 M customers × 12 features, 12× slower). For the matrix the model is
    # scaled from (FeatureFrame.matrix: each column contiguous) numpy reduces each column
    # exactly as it reduces the whole matrix along its rows: the same numbers, bit for bit.
    for j, method in enumerate(methods):
        if method == "log1p":
            np.log1p(z[:, j], out=z[:, j])
    center = np.array([z[:, j].mean() for j in range(z.shape[1])], dtype="float64")
    scale = np.array([z[:, j].std() for j in range(z.shape[1])], dtype="float64")
    robust = np.array([m == "robust" for m in methods], dtype=bool)
    if robust.any():
        q1, med, q3 = np.percentile(z[:, robust], [25, 50, 75], axis=0)
        center[robust] = med
        iqr = q3 - q1
        # A feature that is mostly one value has no interquartile range: fall back to the std.
        scale[robust] = np.where(iqr > 0, iqr, scale[robust])
    scale = np.where(scale > 0, scale, 1.0)
    return Scaling(features=list(features), methods=methods, center=center, scale=scale)
