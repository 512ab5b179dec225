"""Numbers written the way papers and axes show them: "1.3B", "720M", "2.5", "6e21" — never "10^21"
or "6e+21". One formatter for the leaderboard's tables and scatter and for `slmeval fit` figures and
console.

Two notations, each used for one kind of quantity everywhere:
* counts (parameters, tokens): K / M / B / T suffixes, scientific beyond T ("1.3B", "720B", "2e15");
* training compute (FLOPs): always scientific with a bare exponent ("6e21", "1.2e20", "1e17"), so a
  compute axis never mixes "10T" with "1e15".
"""
from __future__ import annotations

import math


def _scientific(value: float, digits: int) -> str:
    mantissa, exponent = f"{value:.{max(digits, 1) - 1}e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _fixed(value: float, digits: int) -> str:
    """`digits` significant digits, never an exponent: 100 at 1 digit is "100", not "1e+02"."""
    whole = math.floor(math.log10(abs(value))) + 1 if abs(value) >= 1 else 1
    return f"{value:.{max(digits, whole)}g}"


def format_count(value: float | None, digits: int = 3) -> str:
    """1.3e9 -> "1.3B"; 358e6 -> "358M"; 2.5 -> "2.5"; 6e21 -> "6e21" (beyond T, scientific).
    `digits` significant digits (axes ask for more when 3 would make two ticks read alike)."""
    if value is None:
        return ""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    value = float(f"{value:.{digits}g}")   # rounded first: 999.7 reads "1K", never "1e+03"
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if scale <= abs(value) < 1000 * scale:
            return f"{_fixed(value / scale, digits)}{suffix}"
    if 1e-3 <= abs(value) < 1e3:
        return _fixed(value, digits)
    return _scientific(value, digits)


def format_compute(value: float | None, digits: int = 2) -> str:
    """Training compute in FLOPs: 6e21 -> "6e21", 1.23e20 -> "1.2e20" (`digits` significant digits)."""
    if value is None:
        return ""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return _scientific(value, digits)
