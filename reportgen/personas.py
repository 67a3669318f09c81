"""Name a persona for each segment from the traits that set it apart, with the numbers."""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import fmt
from .business import check_types
from .errors import ConfigError
from .features import FeatureFrame
from .profile import Profiles, SegmentProfile
from .report import Trait
from .resources import read_toml, templates_dir

MIN_Z = 0.5  # a word is earned half a standard deviation away from everyone
MAX_TRAITS = 5
MIN_TRAITS = 3
OUTCOME_Z = 0.2  # an outcome is a trait from a fifth of a standard deviation (the playbook's)
TRAIT_GROUPS = ("demographics", "value", "product_mix", "channel_mix", "engagement", "profile",
                "outcome", "satisfaction")


@dataclass(frozen=True)
class Words:
    feature: str
    high: dict[str, str]
    low: dict[str, str]
    # The business types these words are for (business.BUSINESS_TYPES); empty: every type.
    # For a feature, an entry of the report's business replaces the entry for every type.
    business: tuple[str, ...] = ()


@dataclass(frozen=True)
class Persona:
    segment_id: int
    name: str
    story: str
    traits: list[Trait]


def load_vocabulary(path: Path | None = None) -> dict[str, Words]:
    path = path or templates_dir() / "personas.toml"
    data = read_toml(path, "the persona vocabulary")
    vocab = {}
    for i, entry in enumerate(data.get("trait", []), start=1):
        if "feature" not in entry:
            raise ConfigError(f"[[trait]] number {i} has no 'feature'", file=str(path))
        kinds = tuple(entry.get("business", ()))
        check_types(kinds, f"[[trait]] {entry['feature']!r}", str(path))
        key = entry["feature"] if not kinds else f"{entry['feature']} [{', '.join(kinds)}]"
        vocab[key] = Words(entry["feature"], entry.get("high", {}), entry.get("low", {}), kinds)
    return vocab


def for_business(vocab: dict[str, Words], business: str | None) -> list[Words]:
    """The vocabulary of a business type: its own entries, and the entries for every type
    of the features it has none for."""
    own = [w for w in vocab.values() if business in w.business]
    mine = {w.feature for w in own}
    return own + [w for w in vocab.values() if not w.business and w.feature not in mine]


# Units said after the number: "tenure 32 months", never a bare "tenure 32" (unless the
# label says it already: "days since last order 277").
_UNIT_WORDS = ("months", "days", "minutes", "seconds")


def evidence(label: str, unit: str, value: float, overall: float, currency: str,
             level: str = "") -> str:
    """'income $78k vs $52k overall', with the ratio for money when it is large; a coded
    category level as the category it is: 'Channel 1: 96% of the segment vs 68% overall'.
    A label that starts with a level's name written as a proper name keeps its case
    ("Office Supplies share 100% vs 31% overall", not "office Supplies")."""
    if level and re.fullmatch(r"-?\d+", level.strip()):
        return f"{label}: {fmt.pct(value)} of the segment vs {fmt.pct(overall)} overall"
    shown = fmt.by_unit(value, unit, currency)
    if unit in _UNIT_WORDS and unit not in label.lower():
        shown += f" {unit}"
    if not (level and label.startswith(level) and level[1:] != level[1:].lower()):
        label = label[0].lower() + label[1:]
    text = f"{label} {shown} vs " \
           f"{fmt.by_unit(overall, unit, currency)} overall"
    # the ratio when it is large; none for a value near zero ("$0 … (0.0×)" says it twice)
    if unit == "money" and overall > 0 and (value / overall >= 1.5
                                            or 0.05 <= value / overall <= 0.5):
        text += f" ({fmt.ratio(value / overall)})"
    return text


def traits_of(sp: SegmentProfile, ff: FeatureFrame, profiles: Profiles, currency: str
              ) -> list[Trait]:
    candidates = [
        f for f in ff.meta
        if ff.meta[f].group in TRAIT_GROUPS and f != "household_size" and f in sp.zscores
        and math.isfinite(sp.means.get(f, math.nan))  # a share of nothing says nothing
    ]
    ranked = sorted(candidates, key=lambda f: (-abs(sp.zscores[f]), f))
    # An outcome (churn, a deposit taken up) far from everyone's rate is always shown, first.
    outcomes = [f for f in ranked if ff.meta[f].group == "outcome" and
                abs(sp.zscores[f]) >= OUTCOME_Z]
    ranked = outcomes + [f for f in ranked if f not in outcomes]
    chosen = [f for f in ranked if abs(sp.zscores[f]) >= MIN_Z or f in outcomes][:MAX_TRAITS]
    if len(chosen) < MIN_TRAITS:
        chosen = ranked[:MIN_TRAITS]
    out = []
    for f in chosen:
        m = ff.meta[f]
        out.append(Trait(
            feature=f, label=m.label, direction="high" if sp.zscores[f] >= 0 else "low",
            z=round(sp.zscores[f], 4), value=sp.means[f], overall=profiles.overall_mean[f],
            text=evidence(m.label, m.unit, sp.means[f], profiles.overall_mean[f], currency,
                          m.level),
        ))
    return out


_LEVEL_WORD = re.compile(r"[A-Za-z][A-Za-z0-9 '&/.-]{1,29}")
_NOT_A_NAME = {"no", "yes", "none", "other", "unknown", "n/a", "true", "false"}


def matching(pattern: str, features: Iterable[str]) -> list[str]:
    """The features a vocabulary or playbook entry names: itself, or those its glob matches
    ("rate_*full_pay*" matches the credit-card table's rate_prc_full_payment)."""
    if not any(ch in pattern for ch in "*?["):
        return [pattern] if pattern in set(features) else []
    return sorted(f for f in features if fnmatch.fnmatchcase(f, pattern))


def _word(text: str, level: str) -> str | None:
    """A word, with {level} filled in for a category level; None when the level is a bare
    code (Region 3) that would make no sense in a name."""
    if "{level}" not in text:
        return text
    # Only a plain word or two from the data lends a name ("Month-to-month", "Fiber optic"):
    # not a code ("3"), a yes/no, a long label, or markup and formulas ("<b>", "=cmd").
    if not _LEVEL_WORD.fullmatch(level.strip()) or level.strip().lower() in _NOT_A_NAME:
        return None
    return text.replace("{level}", level)


# Features whose "high" words say a segment is worth more than others ("High-spending",
# "big spenders", "Big-basket"): a segment worth less than its headcount never takes them.
VALUE_FEATURES = ("total_spend", "avg_basket", "monthly_spend", "score", "payments")


def _candidates(sp: SegmentProfile, entries: list[Words], ff: FeatureFrame | None = None
                ) -> list[tuple[float, str]]:
    adjectives: list[tuple[float, str, str]] = []
    nouns: list[tuple[float, str, str]] = []
    priced = ff is not None and bool(ff.value)
    for words in entries:
        for feature in matching(words.feature, sp.zscores):
            if priced and feature in VALUE_FEATURES and sp.zscores.get(feature, 0) > 0 and \
                    sp.value_index < 1.0:
                continue
            z = sp.zscores.get(feature)
            if z is None or abs(z) < MIN_Z:
                continue
            side = words.high if z > 0 else words.low
            level = ff.meta[feature].level if ff is not None and feature in ff.meta else ""
            for part, found in (("adjective", adjectives), ("noun", nouns)):
                if part in side and (word := _word(side[part], level)):
                    found.append((abs(z), feature, word))
    names: list[tuple[float, str]] = []
    for za, fa, adj in adjectives:
        for zn, fn, noun in nouns:
            if fa != fn:
                names.append((za + zn, f"{adj} {noun}"))
    for za, _, adj in adjectives:
        names.append((za, f"{adj} customers"))
    for zn, _, noun in nouns:
        names.append((zn, noun[0].upper() + noun[1:]))
    names.sort(key=lambda t: (-t[0], t[1]))
    return names


def _leaning(sp: SegmentProfile, ff: FeatureFrame) -> list[str]:
    """Names for a second segment without a strong trait, from the way it leans: "Mainstream
    customers, lower tenure" rather than "Mainstream customers (4)"."""
    features = sorted((f for f in ff.meta if ff.meta[f].group in TRAIT_GROUPS
                       and not ff.meta[f].level and sp.zscores.get(f)
                       and math.isfinite(sp.means.get(f, math.nan))),
                      key=lambda f: (-abs(sp.zscores[f]), f))
    return [f"Mainstream customers, {'higher' if sp.zscores[f] > 0 else 'lower'} "
            f"{ff.meta[f].label[0].lower()}{ff.meta[f].label[1:]}" for f in features]


def name_personas(profiles: Profiles, ff: FeatureFrame, currency: str, value_label: str,
                  vocab: dict[str, Words],
                  fixed: dict[int, str] | None = None,
                  reserved: Iterable[str] = ()) -> list[Persona]:
    """A persona per segment. fixed: names a segment keeps from the previous run of its
    series (by id); only the others are named, never with a name already taken nor with a
    reserved one (the previous run's: a new segment never takes a gone one's name)."""
    fixed = {i: n for i, n in (fixed or {}).items() if any(sp.id == i for sp in
                                                            profiles.segments)}
    taken: set[str] = {n.lower() for n in fixed.values()} | {n.lower() for n in reserved}
    words = for_business(vocab, ff.business.type if ff.business else None)
    top = _top_value(profiles, ff)
    personas = []
    # The most distinctive segments choose first, so they get their best name.
    order = sorted(profiles.segments,
                   key=lambda sp: (-max((abs(z) for z in sp.zscores.values()), default=0), sp.id))
    named: dict[int, str] = dict(fixed)
    for sp in order:
        if sp.id in fixed:
            continue
        options = [n for _, n in _candidates(sp, words, ff)]
        if sp.id == top:
            # The segment that brings the most value is named for it first.
            options = [n for n in options if _says_value(n, words)] + \
                [f"{_value_adjective(words)} {n[0].lower()}{n[1:]}" for n in options[:2]
                 if not _says_value(n, words)] + options
        options += ["Mainstream customers"] + _leaning(sp, ff)
        name = next((n for n in options if n.lower() not in taken), None)
        if name is None:  # every name the traits give is taken: the id makes it unique
            name = f"Segment {sp.id} customers"
        taken.add(name.lower())
        named[sp.id] = name
    for sp in profiles.segments:
        traits = traits_of(sp, ff, profiles, currency)
        lead = ", ".join(t.text for t in traits[:2])
        story = (f"{fmt.pct(sp.share)} of customers bringing {fmt.pct(sp.value_share)} of "
                 f"{value_label}: {lead}." if value_label else
                 f"{fmt.pct(sp.share)} of customers: {lead}.")
        personas.append(Persona(segment_id=sp.id, name=named[sp.id], story=story, traits=traits))
    return personas


# How far above its headcount a segment's value must be for it to be named for its value.
VALUE_NAME_INDEX = 1.5


def _top_value(profiles: Profiles, ff: FeatureFrame) -> int | None:
    """The segment with the largest share of value, when it is worth clearly more than its
    headcount (None without a value measure)."""
    if not ff.value or not profiles.segments:
        return None
    top = max(profiles.segments, key=lambda sp: (sp.value_share, -sp.id))
    return top.id if top.value_index >= VALUE_NAME_INDEX else None


def _value_words(words: list[Words]) -> list[str]:
    return [w.high[part] for w in words if w.feature in VALUE_FEATURES
            for part in ("adjective", "noun") if part in w.high]


def _says_value(name: str, words: list[Words]) -> bool:
    lowered = name.lower()
    return any(word.lower() in lowered for word in _value_words(words))


def _value_adjective(words: list[Words]) -> str:
    """The adjective the value measure lends a name: "High-spending", "High-value"."""
    for w in words:
        if w.feature in VALUE_FEATURES and "adjective" in w.high:
            return w.high["adjective"]
    return "High-value"


