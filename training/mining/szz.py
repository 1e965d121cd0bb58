"""Labels: fix commits by a message rule (or an issue tracker's list), and which blamed commits a fix labels
bug-inducing (the blame itself: line origins, origins.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_FIX_WORDS = re.compile(
    r"\b(?:fix|fixes|fixed|bug|bugs|defect|fault|error|wrong|fail|fails|failure|problem|correct|resolve"
    r"|npe|crash|regression)\b",
    re.IGNORECASE,
)
# The rule behind the published datasets' is_fix_commit, reconstructed from them (docs/mining.md#labels): one of
# these lower-case strings anywhere in the whole message — case-sensitive and inside words ("bugfix", "failing",
# "incorrect" and "prefix" match; "Fix #12: leak" alone does not). It reproduces their flag on every HikariCP and
# jedis row `mine` shares with them, where METRICS.md's keywords agree on 81 % / 88 % (bench/fidelity.py).
_DATASET_WORDS = ("bug", "fix", "wrong", "fail", "problem", "correct", "resolve")

# --fix-rule: the datasets' message rule or METRICS.md's keywords (each plus the listed SHAs), or the listed only.
FIX_RULES = ("datasets", "keywords", "listed")
SZZ_RULES = ("strict", "plain")  # --szz: see inducing()
WINDOW_DAYS = 730  # strict: a fix links commits at most this much older than itself (docs/mining.md#labels)
TANGLED = 8  # strict: a fix whose blame reaches more earlier commits than this links none


def has_fix_keyword(message: str) -> bool:
    """The message (case-insensitively, on word boundaries) contains one of METRICS.md's fix keywords."""
    return _FIX_WORDS.search(message) is not None


def has_dataset_word(message: str) -> bool:
    """The message contains one of the datasets' fix strings (case-sensitively, anywhere)."""
    return any(word in message for word in _DATASET_WORDS)


_MESSAGE_MATCHERS: dict[str, Callable[[str], bool]] = {"datasets": has_dataset_word, "keywords": has_fix_keyword}
MESSAGE_RULES = tuple(_MESSAGE_MATCHERS)  # the rules a message alone can satisfy


def message_rules(message: str) -> frozenset[str]:
    """The message rules (MESSAGE_RULES) this message satisfies."""
    return frozenset(rule for rule, matches in _MESSAGE_MATCHERS.items() if matches(message))


def is_fix(
    matched: frozenset[str], metrics: Mapping[str, float], merge: bool, listed: bool = False, rule: str = "datasets"
) -> bool:
    """A fix: the message satisfies `rule` (`matched`: message_rules) or the SHA is user-listed (the only way with
    rule "listed"); never a merge or a very large change (METRICS.md)."""
    if merge or metrics["ld"] >= 5000 or metrics["hd"] >= 100 or metrics["nf"] >= 50:
        return False
    return listed or rule in matched


def linkable(fix_time: int, blamed: Mapping[str, int], rule: str = "strict") -> list[str]:
    """The blamed rows (SHA → author time) a fix may link: earlier than the fix (METRICS.md) and, with the
    strict rule, at most WINDOW_DAYS older than it."""
    earliest = fix_time - WINDOW_DAYS * 86400 if rule == "strict" else None
    return sorted(sha for sha, when in blamed.items() if when < fix_time and (earliest is None or when >= earliest))


def inducing(fix_time: int, blamed: Mapping[str, int], rule: str = "strict") -> list[str]:
    """The commits a fix labels bug-inducing, from its blamed rows and their author times.

    plain (METRICS.md): every blamed commit earlier than the fix. strict: only those at most WINDOW_DAYS
    older than the fix, and none at all when more than TANGLED remain — a fix whose deleted lines come from
    many commits is usually tangled with other work (a rewrite, a sweeping clean-up), and its blame labels
    mostly innocent commits. docs/mining.md has the evaluation against the published datasets.
    """
    found = linkable(fix_time, blamed, rule)
    return found if rule == "plain" or len(found) <= TANGLED else []


def read_fix_shas(text: str) -> set[str]:
    """Issue-tracker fix SHAs, one per line ('#' comments and blank lines ignored); raises on a bad line."""
    shas: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip().lower()
        if not value:
            continue
        if not re.fullmatch(r"[0-9a-f]{40}", value):
            raise ValueError(f"line {number}: not a 40-hex commit SHA: {value[:50]!r}")
        shas.add(value)
    return shas
