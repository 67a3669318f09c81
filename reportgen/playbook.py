"""Recommend marketing actions per persona from the rules in templates/playbook.toml."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from . import fmt
from .business import BUSINESS_TYPES, check_types
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
    # The business types the rule fits (business.BUSINESS_TYPES); it never fires outside them.
    business: tuple[str, ...] = tuple(BUSINESS_TYPES)
    # The rule answers an outcome (churn, default, a deposit taken up): when it fires it comes
    # before the segment's other actions, and another segment with the outcome may get it too.
    first: bool = False


def load_playbook(path: Path | None = None) -> list[Rule]:
    path = path or templates_dir() / "playbook.toml"
    where = str(path)
    data = read_toml(path, "the playbook")
    rules = []
    for i, raw in enumerate(data.get("rule", []), start=1):
        name = raw.get("id", f"rule {i}")
        missing = [k for k in ("id", "title", "channel", "kpi", "when", "business")
                   if k not in raw]
        if missing:
            raise ConfigError(f"rule {name!r} lacks {', '.join(missing)}", file=where,
                              hint="business: the business types it fits, e.g. "
                                   "business = [\"shop\", \"grocery\"]" if "business" in missing
                              else None)
        kinds = raw["business"]
        if not isinstance(kinds, list) or not kinds or not all(
                isinstance(k, str) for k in kinds):
            raise ConfigError(f"rule {name!r}: business must be a list of business types",
                              file=where, hint=f"known: {', '.join(BUSINESS_TYPES)}")
        check_types(kinds, f"rule {name!r}", where)
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
                          fallback=bool(raw.get("fallback", False)),
                          business=tuple(kinds), first=bool(raw.get("first", False))))
    return rules


def _check_change(cond: Condition, delta: SegmentDelta | None, movers_file: str = "movers.csv"
                  ) -> tuple[bool, float, str] | None:
    if delta is None or delta.previous_customers == 0:
        return None  # a first run, or a segment new this period: nothing to compare
    if cond.change == "share_delta":
        v = delta.share_delta
        text = (f"share of customers {fmt.pct(delta.previous_share, 1)} → "
                f"{fmt.pct(delta.share, 1)} ({v * 100:+.1f} points) since last period")
    elif cond.change == "moved_down":
        v = delta.moved_down / delta.previous_customers
        text = (f"{delta.moved_down:,} of last period's {delta.previous_customers:,} customers "
                f"({fmt.pct(v, 1)}) moved to a less valuable segment ({movers_file})")
    else:
        v = delta.lost / delta.previous_customers
        text = (f"{delta.lost:,} of last period's {delta.previous_customers:,} customers "
                f"({fmt.pct(v, 1)}) are not in this period's table")
    holds = v > cond.threshold if cond.bound == "above" else v < cond.threshold
    return holds, min(abs(v) * 20, 3.0), text


def _check(cond: Condition, sp: SegmentProfile, ff: FeatureFrame, profiles: Profiles,
           currency: str, value_label: str, delta: SegmentDelta | None = None,
           movers_file: str = "movers.csv") -> tuple[bool, float, str] | None:
    """(holds, strength, evidence) or None when the table lacks the feature (or, for a
    change, when there is no previous run to compare with). movers_file: where the customers
    who moved down are listed, named in that evidence."""
    if cond.change is not None:
        return _check_change(cond, delta, movers_file)
    if cond.segment == "value_index":
        if not value_label:
            return None  # the table has nothing that measures value
        v = sp.value_index
        holds = v > cond.threshold if cond.bound == "above" else v < cond.threshold
        text = (f"{fmt.pct(sp.value_share)} of {value_label} from {fmt.pct(sp.share)} of "
                f"customers ({fmt.ratio(v)} its share)")
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


def _fired(sp: SegmentProfile, rules: list[Rule], ff: FeatureFrame, profiles: Profiles,
           currency: str, value_label: str, business: str | None, delta: SegmentDelta | None,
           movers_file: str = "movers.csv") -> list[tuple[Rule, Action]]:
    """Every rule of the business whose conditions hold for the segment, with its action."""
    fired = []
    for rule in rules:
        if business is not None and business not in rule.business:
            continue
        results = [_check(c, sp, ff, profiles, currency, value_label, delta, movers_file)
                   for c in rule.when]
        if any(r is None for r in results) or not all(r[0] for r in results if r):
            continue
        checked = [r for r in results if r]
        strength = rule.weight * sum(r[1] for r in checked) / len(checked)
        fired.append((rule, Action(
            rule=rule.id, title=rule.title, channel=rule.channel, kpi=rule.kpi,
            evidence="; ".join(r[2] for r in checked), strength=round(strength, 4),
            first=rule.first)))
    return fired


def _rank(pair: tuple[Rule, Action]) -> tuple[bool, float, str]:
    return (not pair[0].first, -pair[1].strength, pair[1].rule)


def recommend_all(segments: list[SegmentProfile], rules: list[Rule], ff: FeatureFrame,
                  profiles: Profiles, currency: str, value_label: str, business: str | None,
                  deltas: dict[int, SegmentDelta] | None = None,
                  movers_file: str = "movers.csv") -> dict[int, list[Action]]:
    """Up to five actions per segment, each action for one segment only: a rule that fires
    for several goes to the segment where it holds most strongly (a rule that answers an
    outcome, marked first, goes to every segment it fits, before its other actions). Too few
    specific actions are topped up to three with fallbacks no other segment has; a segment
    no rule fits unshared gets its best fallback all the same. movers_file: where the
    customers who moved down are listed (the Spark engine writes them beside its segments)."""
    fired = {sp.id: _fired(sp, rules, ff, profiles, currency, value_label, business,
                           (deltas or {}).get(sp.id), movers_file) for sp in segments}
    owner: dict[str, tuple[float, int]] = {}
    for seg_id, pairs in fired.items():
        for rule, action in pairs:
            if rule.fallback or rule.first:
                continue
            key = (action.strength, -seg_id)
            if rule.id not in owner or key > owner[rule.id]:
                owner[rule.id] = key
    chosen: dict[int, list[Action]] = {}
    for seg_id, pairs in fired.items():
        specific = sorted((p for p in pairs if not p[0].fallback and (
            p[0].first or -owner[p[0].id][1] == seg_id)), key=_rank)
        chosen[seg_id] = [a for _, a in specific[:MAX_ACTIONS]]
    used = {a.rule for actions in chosen.values() for a in actions}
    # Fallbacks in turns, the segments with fewest actions first, so none takes them all.
    while True:
        needy = sorted((len(chosen[i]), i) for i in chosen if len(chosen[i]) < MIN_ACTIONS)
        added = False
        for _, seg_id in needy:
            have = {a.evidence for a in chosen[seg_id]}
            backups = sorted((p for p in fired[seg_id] if p[0].fallback and
                              p[0].id not in used), key=lambda p: (
                p[1].evidence in have, -p[1].strength, p[1].rule))
            if backups:
                chosen[seg_id].append(backups[0][1])
                used.add(backups[0][0].id)
                added = True
        if not added:
            break
    for seg_id, actions in chosen.items():
        if not actions:
            backups = sorted((p for p in fired[seg_id] if p[0].fallback), key=_rank)
            actions.extend(a for _, a in backups[:1])
    return chosen


def recommend(sp: SegmentProfile, rules: list[Rule], ff: FeatureFrame, profiles: Profiles,
              currency: str, value_label: str, delta: SegmentDelta | None = None,
              business: str | None = None) -> list[Action]:
    """3-5 actions for one segment (recommend_all for every segment of a report). delta: the
    segment against the previous run of its series (None on a first run: rules on change do
    not fire); business: only the rules of this business type (None: every rule)."""
    deltas = {sp.id: delta} if delta is not None else None
    return recommend_all([sp], rules, ff, profiles, currency, value_label, business,
                         deltas)[sp.id]
