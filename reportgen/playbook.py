"""Recommend marketing actions per persona from the rules in templates/playbook.toml."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from . import fmt
from .errors import ConfigError
from .features import FeatureFrame
from .personas import evidence, matching
from .profile import Profiles, SegmentProfile
from .report import Action
from .resources import read_toml, templates_dir

MIN_ACTIONS = 3
MAX_ACTIONS = 5
_BOUNDS = {"z_above", "z_below", "above", "below"}
SEGMENT_METRICS = {"value_index", "share"}
# What changed since the previous run of the series (rules on them fire from the second run):
# share_delta: change of the segment's share of customers (0.01 = 1 point); moved_down and
# lost: shares of the segment's previous customers who moved to a less valuable segment, or
# are not in this run's table.
CHANGE_METRICS = {"share_delta", "moved_down", "lost"}


@dataclass(frozen=True)
class SegmentDelta:
    """A segment against the previous run of its series, for the rules on change."""

    share_delta: float
    share: float
    previous_share: float
    previous_customers: int
    moved_down: int
    lost: int


@dataclass(frozen=True)
class Condition:
    feature: str | None
    segment: str | None
    bound: str  # one of _BOUNDS
    threshold: float
    change: str | None = None  # one of CHANGE_METRICS


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    channel: str
    kpi: str
    when: list[Condition]
    weight: float = 1.0
    fallback: bool = False


def load_playbook(path: Path | None = None) -> list[Rule]:
    path = path or templates_dir() / "playbook.toml"
    where = str(path)
    data = read_toml(path, "the playbook")
    rules = []
    for i, raw in enumerate(data.get("rule", []), start=1):
        name = raw.get("id", f"rule {i}")
        missing = [k for k in ("id", "title", "channel", "kpi", "when") if k not in raw]
        if missing:
            raise ConfigError(f"rule {name!r} lacks {', '.join(missing)}", file=where)
        conditions = []
        for cond in raw["when"]:
            bounds = _BOUNDS & set(cond)
            target = cond.get("feature"), cond.get("segment"), cond.get("change")
            if len(bounds) != 1 or sum(t is not None for t in target) != 1:
                raise ConfigError(
                    f"rule {name!r}: each condition needs a feature, a segment metric or a "
                    f"change, and one of {', '.join(sorted(_BOUNDS))}", file=where)
            if target[1] is not None and target[1] not in SEGMENT_METRICS:
                raise ConfigError(f"rule {name!r}: unknown segment metric {target[1]!r}",
                                  file=where, hint=f"known: {', '.join(sorted(SEGMENT_METRICS))}")
            if target[2] is not None and target[2] not in CHANGE_METRICS:
                raise ConfigError(f"rule {name!r}: unknown change {target[2]!r}", file=where,
                                  hint=f"known: {', '.join(sorted(CHANGE_METRICS))}")
            bound = bounds.pop()
            conditions.append(Condition(target[0], target[1], bound, float(cond[bound]),
                                        change=target[2]))
        rules.append(Rule(id=raw["id"], title=raw["title"], channel=raw["channel"],
                          kpi=raw["kpi"], when=conditions, weight=float(raw.get("weight", 1.0)),
                          fallback=bool(raw.get("fallback", False))))
    return rules


def _check_change(cond: Condition, delta: SegmentDelta | None) -> tuple[bool, float, str] | None:
    if delta is None or delta.previous_customers == 0:
        return None  # a first run, or a segment new this period: nothing to compare
    if cond.change == "share_delta":
        v = delta.share_delta
        text = (f"share of customers {fmt.pct(delta.previous_share, 1)} → "
                f"{fmt.pct(delta.share, 1)} ({v * 100:+.1f} points) since last period")
    elif cond.change == "moved_down":
        v = delta.moved_down / delta.previous_customers
        text = (f"{delta.moved_down:,} of last period's {delta.previous_customers:,} customers "
                f"({fmt.pct(v, 1)}) moved to a less valuable segment (movers.csv)")
    else:
        v = delta.lost / delta.previous_customers
        text = (f"{delta.lost:,} of last period's {delta.previous_customers:,} customers "
                f"({fmt.pct(v, 1)}) are not in this period's table")
    holds = v > cond.threshold if cond.bound == "above" else v < cond.threshold
    return holds, min(abs(v) * 20, 3.0), text


def _check(cond: Condition, sp: SegmentProfile, ff: FeatureFrame, profiles: Profiles,
           currency: str, value_label: str, delta: SegmentDelta | None = None
           ) -> tuple[bool, float, str] | None:
    """(holds, strength, evidence) or None when the table lacks the feature (or, for a
    change, when there is no previous run to compare with)."""
    if cond.change is not None:
        return _check_change(cond, delta)
    if cond.segment == "value_index":
        v = sp.value_index
        holds = v > cond.threshold if cond.bound == "above" else v < cond.threshold
        text = (f"{fmt.pct(sp.value_share)} of {value_label} from {fmt.pct(sp.share)} of "
                f"customers ({v:.1f}× its share)")
        return holds, abs(math.log2(v)) if v > 0 else 1.0, text
    if cond.segment == "share":
        holds = sp.share > cond.threshold if cond.bound == "above" else sp.share < cond.threshold
        text = f"{fmt.pct(sp.share)} of customers ({sp.size:,} people)"
        return holds, 0.1, text
    assert cond.feature is not None
    # A glob ("cat_contract_month*") names every feature it matches; the strongest one that
    # meets the condition counts.
    names = [f for f in matching(cond.feature, ff.meta) if f in sp.zscores]
    if not names:
        return None
    best: tuple[bool, float, str] | None = None
    for name in names:
        z = sp.zscores[name]
        holds = z > cond.threshold if cond.bound in ("z_above", "above") else z < cond.threshold
        m = ff.meta[name]
        text = evidence(m.label, m.unit, sp.means[name], profiles.overall_mean[name], currency,
                        m.level)
        if best is None or (holds, abs(z)) > (best[0], best[1]):
            best = (holds, abs(z), text)
    return best


def recommend(sp: SegmentProfile, rules: list[Rule], ff: FeatureFrame, profiles: Profiles,
              currency: str, value_label: str, delta: SegmentDelta | None = None
              ) -> list[Action]:
    """3-5 actions for a segment. delta: the segment against the previous run of its series
    (None on a first run: rules on change do not fire)."""
    fired: list[tuple[bool, Action]] = []
    for rule in rules:
        results = [_check(c, sp, ff, profiles, currency, value_label, delta) for c in rule.when]
        if any(r is None for r in results) or not all(r[0] for r in results if r):
            continue
        checked = [r for r in results if r]
        strength = rule.weight * sum(r[1] for r in checked) / len(checked)
        fired.append((rule.fallback, Action(
            rule=rule.id, title=rule.title, channel=rule.channel, kpi=rule.kpi,
            evidence="; ".join(r[2] for r in checked), strength=round(strength, 4))))
    specific = sorted((a for fb, a in fired if not fb), key=lambda a: (-a.strength, a.rule))
    actions = specific[:MAX_ACTIONS]
    if len(actions) < MIN_ACTIONS:
        backups = sorted((a for fb, a in fired if fb), key=lambda a: (-a.strength, a.rule))
        # Prefer backups that bring new evidence over a second action on the same numbers.
        fresh = [a for a in backups if a.evidence not in {b.evidence for b in actions}]
        for a in fresh + [a for a in backups if a not in fresh]:
            if len(actions) >= MIN_ACTIONS:
                break
            if a.evidence not in {b.evidence for b in actions} or a not in fresh:
                actions.append(a)
    return actions
