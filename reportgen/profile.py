"""Profile each segment: size, value, and how its customers differ from everyone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import stats
from .features import FeatureFrame
from .segment import Segmentation

if TYPE_CHECKING:
    from pandas.api.typing import DataFrameGroupBy


@dataclass(frozen=True)
class SegmentProfile:
    id: int
    size: int
    share: float  # of segmented customers
    value_share: float  # of total value
    value_per_customer: float
    means: dict[str, float]
    medians: dict[str, float]
    zscores: dict[str, float]  # (segment mean - overall mean) / overall std, per feature

    @property
    def value_index(self) -> float:
        """Value share over customer share: 2.0 = worth twice its headcount."""
        return self.value_share / self.share if self.share else 0.0


@dataclass(frozen=True)
class Profiles:
    segments: list[SegmentProfile]
    overall_mean: dict[str, float]
    overall_std: dict[str, float]
    total_value: float


def profile(ff: FeatureFrame, seg: Segmentation) -> Profiles:
    frame = ff.frame
    labels = pd.Series(seg.labels, index=frame.index, name="segment")
    # column by column: frame.mean() and frame.std() copy the whole frame at once (the gaps
    # of the shares filled, or every value squared); and through stats, as pandas' std was
    # 90 % of the time of these overall figures at 1 M customers
    mean = pd.Series([stats.series_mean(frame[c]) for c in frame.columns],
                     index=frame.columns, dtype="float64")
    std = pd.Series([stats.series_std(frame[c], ddof=0) for c in frame.columns],
                    index=frame.columns, dtype="float64").replace(0.0, np.nan)
    by_segment = frame.groupby(labels)
    means, medians = _by_segment(frame, by_segment)
    sizes = by_segment.size()
    value_by = by_segment[ff.value].sum() if ff.value else sizes.astype("float64")
    value = frame[ff.value] if ff.value else pd.Series(1.0, index=frame.index)
    total = float(value.sum())
    n = len(frame)
    out = []
    # Segment ids: 1..k, or a series' ids (a segment keeps last month's id; see series.py).
    for seg_id in sorted(int(i) for i in sizes.index):
        size = int(sizes.get(seg_id, 0))
        if size == 0:
            continue
        m = means.loc[seg_id]
        z = ((m - mean) / std).fillna(0.0)
        out.append(SegmentProfile(
            id=seg_id, size=size, share=size / n,
            value_share=float(value_by.get(seg_id, 0.0) / total) if total else size / n,
            value_per_customer=float(value_by.get(seg_id, 0.0) / size),
            means={k: float(v) for k, v in m.items()},
            medians={k: float(v) for k, v in medians.loc[seg_id].items()},
            zscores={k: float(v) for k, v in z.items()},
        ))
    return Profiles(
        segments=out,
        overall_mean={k: float(v) for k, v in mean.items()},
        overall_std={k: float(v) for k, v in std.fillna(0.0).items()},
        total_value=total,
    )


def _by_segment(frame: pd.DataFrame, by_segment: DataFrameGroupBy
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each feature's mean and median per segment (rows: segment id, columns: features).
    The means are one grouped reduction of the whole frame, which reads the frame where it
    lies; the medians one column at a time, because a grouped median first copies what it
    reduces in segment order (the whole frame, otherwise). The grouping (the labels
    factorised) is made once and shared by every column."""
    means = by_segment.mean()
    # The rows in segment order once; each column then gathered in that order and each
    # segment's median taken by a partition of its values, the median pandas takes (the
    # middle value, or the mean of the two middle ones, of the values that are there)
    # without sorting the labels again for every column.
    labels = np.asarray(by_segment.ngroup())
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=len(means))
    ends = np.cumsum(counts)
    starts = ends - counts
    medians = {}
    for column in frame.columns:
        values = frame[column].to_numpy(dtype="float64")[order]  # a copy: partitioned in place
        medians[column] = [stats.median(values[a:b], scratch=True)
                           for a, b in zip(starts, ends, strict=True)]
    return means, pd.DataFrame(medians, index=means.index)
