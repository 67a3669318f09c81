"""CI gates: thresholds a run must meet, checked while the Report is assembled.

A failed gate does not stop the report from being written: the CLI exits with code 3 and
summary.json says which gate failed and why (``Report.gates``; ``RunResult.failed_gates``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import GatesConfig
from .report import Gate, Segment

EXIT_GATE_FAILED = 3


def evaluate(silhouette: float, segments: Sequence[Segment], gates: GatesConfig) -> list[Gate]:
    """One Gate per threshold that is set, in a fixed order, from the segmentation's
    silhouette and the report's segments (their shares and stabilities)."""
    out = []
    if gates.fail_under_silhouette is not None:
        value = round(silhouette, 4)
        limit = gates.fail_under_silhouette
        out.append(Gate(
            name="fail_under_silhouette", threshold=limit, value=value, passed=value >= limit,
            reason=f"silhouette {value:.3f} is {'at least' if value >= limit else 'below'} "
                   f"{limit:g}",
        ))
    if gates.min_segment_share is not None:
        smallest = min(segments, key=lambda s: (s.share, s.id))
        value = round(smallest.share, 4)
        limit = gates.min_segment_share
        out.append(Gate(
            name="min_segment_share", threshold=limit, value=value, passed=value >= limit,
            reason=f"the smallest segment ({smallest.name}) holds {value:.1%} of customers, "
                   f"{'at least' if value >= limit else 'below'} {limit:.1%}",
        ))
    if gates.min_stability is not None:
        measured = [s for s in segments if s.stability is not None]
        limit = gates.min_stability
        if not measured:
            out.append(Gate(name="min_stability", threshold=limit, value=0.0, passed=False,
                            reason="stability was not measured (segment.stability_runs = 0)"))
        else:
            weakest = min(measured, key=lambda s: (s.stability or 0.0, s.id))
            value = round(weakest.stability or 0.0, 4)
            out.append(Gate(
                name="min_stability", threshold=limit, value=value, passed=value >= limit,
                reason=f"the least stable segment ({weakest.name}) has stability {value:.2f}, "
                       f"{'at least' if value >= limit else 'below'} {limit:g}",
            ))
    return out

