"""How a factor is worded: each metric's phrase, numbers formatted for people, and the rules that speak plainly."""

from __future__ import annotations

from app.contract import FEATURES

# Each metric (and relative-churn term) as a phrase around its value.
PHRASES: dict[str, str] = {
    "ns": "{v} subsystems touched",
    "nd": "{v} directories touched",
    "nf": "{v} files changed",
    "entropy": "change spread over files (entropy {v})",
    "la": "{v} lines added",
    "ld": "{v} lines deleted",
    "ha": "{v} hunks with added lines",
    "hd": "{v} hunks with deleted lines",
    "lt": "changed files average {v} lines",
    "ndev": "{v} developers changed these files before",
    "age": "{v} days since these files last changed",
    "nuc": "{v} earlier changes to these files",
    "exp": "the author has {v} earlier commits",
    "rexp": "recent author experience {v}",
    "sexp": "the author has {v} earlier commits in these subsystems",
    "la/lt": "lines added per line of the changed files {v}",
    "ld/lt": "lines deleted per line of the changed files {v}",
    "lt/nf": "{v} lines per changed file",
    "nuc/nf": "{v} earlier changes per changed file",
    "la+ld/nf": "{v} lines changed per file",
}
_EXP, _AGE = FEATURES.index("exp"), FEATURES.index("age")
RULED = (_EXP, _AGE)  # the metrics `rule_reason` can fire for


def format_number(value: float) -> str:
    """Human formatting: thousands separators for counts, few decimals for small fractions, and two significant
    digits in scientific notation from 10^15 on (3.4e+38, not a 39-digit number)."""
    if abs(value) >= 1e15:
        return f"{value:.2g}"
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def rule_reason(index: int, value: float) -> str | None:
    """A plain-language rule that fires for this metric value, if any."""
    if index == _EXP and value == 0:
        return "the author's first commit"
    if index == _AGE and 0 < value < 2:
        return "files changed in the last 2 days"
    return None
