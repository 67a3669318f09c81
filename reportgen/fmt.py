"""Number formatting shared by the evidence sentences and the templates."""

from __future__ import annotations

import math


def money(value: float, currency: str = "$") -> str:
    """76234 -> '$76k', 1_234_567 -> '$1.2M', 1458 -> '$1,458', 54.2 -> '$54'."""
    if value is None or not math.isfinite(value):
        return "–"
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 1e6:
        return f"{sign}{currency}{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{sign}{currency}{v / 1e3:.0f}k"
    return f"{sign}{currency}{v:,.0f}"


def pct(value: float, digits: int = 0) -> str:
    """0.213 -> '21%'."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.{digits}f}%"


def share(value: float) -> str:
    """A share of a whole, as pct but "<1%" for a part too small to round to 1% ("0%" would
    say there is none): 0.003 -> '<1%', 0 -> '0%', 0.213 -> '21%'."""
    if value is not None and 0 < value < 0.005:
        return "<1%"
    return pct(value)


def num(value: float, digits: int = 1) -> str:
    """1.84 -> '1.8', 12 -> '12', 23456 -> '23,456'."""
    if value is None or not math.isfinite(value):
        return "–"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    text = f"{value:,.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"


def by_unit(value: float, unit: str, currency: str = "$") -> str:
    if unit == "money":
        return money(value, currency)
    if unit in ("share", "rate"):
        return pct(value)
    if unit in ("years", "months", "days"):
        return f"{value:.0f}"
    return num(value)


def ratio(value: float) -> str:
    """How many times: 2.34 -> '2.3×'; one that would round to 0.0× reads 'under 0.1×'."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.1f}×" if round(value, 1) > 0 else "under 0.1×"


MINUS = "\u2212"  # a real minus sign: a hyphen reads as a dash next to "+1.2"


def signed(value: float, digits: int = 1) -> str:
    """A z-score with its sign always shown: 1.23 -> "+1.2", -0.8 -> "−0.8", 0.01 -> "0.0"."""
    text = f"{value:+.{digits}f}"
    if float(text) == 0:
        text = f"{0:.{digits}f}"  # no "+0.0" / "-0.0": zero has no direction
    return text.replace("-", MINUS)
