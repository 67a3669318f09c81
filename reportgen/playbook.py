"""Recommend marketing actions per persona from the rules in templates/playbook.toml."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import fmt
from .errors import ConfigError
from .features import FeatureFrame
from .personas import evidence
from .profile import Profiles, SegmentProfile
from .report import Action
from .resources import templates_dir

MIN_ACTIONS = 3
MAX_ACTIONS = 5
_BOUNDS = {"z_above", "z_below", "above", "below"}
SEGMENT_METRICS = {"value_index"}


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
    assert cond.feature is not None
    if cond.feature not in sp.zscores or cond.feature not in ff.meta:
        return None
    z = sp.zscores[cond.feature]
    if cond.bound in ("z_above", "above"):
        holds = z > cond.threshold
    else:
        holds = z < cond.threshold
    m = ff.meta[cond.feature]
    text = evidence(m.label, m.unit, sp.means[cond.feature],
                    profiles.overall_mean[cond.feature], currency)
    return holds, abs(z), text


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
        actions += backups[:MIN_ACTIONS - len(actions)]
    return actions
