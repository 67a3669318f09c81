"""Recommend marketing actions per persona from the rules in templates/playbook.toml."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import fmt
from .errors import ConfigError
from .features import FeatureFrame
from .personas import evidence, matching
from .profile import Profiles, SegmentProfile
from .report import Action
from .resources import templates_dir

MIN_ACTIONS = 3
MAX_ACTIONS = 5
_BOUNDS = {"z_above", "z_below", "above", "below"}
SEGMENT_METRICS = {"value_index", "share"}


@dataclass(frozen=True)
class Condition:
    feature: str | None
    segment: str | None
    bound: str  # one of _BOUNDS
    threshold: float


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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the playbook: {exc}", file=where) from None
    rules = []
    for i, raw in enumerate(data.get("rule", []), start=1):
        name = raw.get("id", f"rule {i}")
        missing = [k for k in ("id", "title", "channel", "kpi", "when") if k not in raw]
        if missing:
            raise ConfigError(f"rule {name!r} lacks {', '.join(missing)}", file=where)
        conditions = []
        for cond in raw["when"]:
            bounds = _BOUNDS & set(cond)
            target = cond.get("feature"), cond.get("segment")
            if len(bounds) != 1 or (target[0] is None) == (target[1] is None):
                raise ConfigError(
                    f"rule {name!r}: each condition needs a feature or a segment metric and one of "
                    f"{', '.join(sorted(_BOUNDS))}", file=where)
            if target[1] is not None and target[1] not in SEGMENT_METRICS:
                raise ConfigError(f"rule {name!r}: unknown segment metric {target[1]!r}",
                                  file=where, hint=f"known: {', '.join(sorted(SEGMENT_METRICS))}")
            bound = bounds.pop()
            conditions.append(Condition(target[0], target[1], bound, float(cond[bound])))
        rules.append(Rule(id=raw["id"], title=raw["title"], channel=raw["channel"],
                          kpi=raw["kpi"], when=conditions, weight=float(raw.get("weight", 1.0)),
                          fallback=bool(raw.get("fallback", False))))
    return rules


def _check(cond: Condition, sp: SegmentProfile, ff: FeatureFrame, profiles: Profiles,
           currency: str, value_label: str) -> tuple[bool, float, str] | None:
    """(holds, strength, evidence) or None when the table lacks the feature."""
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
        text = evidence(m.label, m.unit, sp.means[name], profiles.overall_mean[name], currency)
        if best is None or (holds, abs(z)) > (best[0], best[1]):
            best = (holds, abs(z), text)
    return best


def recommend(sp: SegmentProfile, rules: list[Rule], ff: FeatureFrame, profiles: Profiles,
              currency: str, value_label: str) -> list[Action]:
    fired: list[tuple[bool, Action]] = []
    for rule in rules:
        results = [_check(c, sp, ff, profiles, currency, value_label) for c in rule.when]
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
