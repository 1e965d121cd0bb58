"""Fix detection and which blamed commits a fix labels."""

from __future__ import annotations

import pytest

from training.mining.szz import (
    TANGLED,
    WINDOW_DAYS,
    has_dataset_word,
    has_fix_keyword,
    inducing,
    is_fix,
    linkable,
    message_rules,
    read_fix_shas,
)

SMALL = {"ld": 10, "hd": 2, "nf": 3}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Fixes #12: pool leak", True),
        ("NPE in pool", True),
        ("fix-up of the parser", True),
        ("Handle the ERROR case", True),
        ("Corrects nothing\n\nbut the body says: regression", True),
        ("prefix handling", False),
        ("bugfix", False),  # no word boundary between 'bug' and 'fix'
        ("errors are logged", False),  # 'errors' is not in the list
        ("Add feature", False),
    ],
)
def test_keywords_match_whole_words_case_insensitively(message: str, expected: bool) -> None:
    assert has_fix_keyword(message) is expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Fix #12: pool leak", False),  # the datasets' rule is case-sensitive: a capitalised "Fix" alone is not a fix
        ("Fixes #791 fix interrupted thread handling", True),
        ("bugfix", True),  # inside words too
        ("Timeout when the connection is failing", True),
        ("Incorrect pool size", True),
        ("prefix handling", True),  # …which is what the datasets did
        ("Resolves a race\n\nthe body: a problem with close()", True),  # the whole message counts
        ("NPE in pool", False),
        ("Handle the error case", False),  # 'error' is not one of the datasets' strings
        ("Add feature", False),
    ],
)
def test_the_datasets_rule_matches_lower_case_strings_anywhere(message: str, expected: bool) -> None:
    assert has_dataset_word(message) is expected


def test_message_rules_names_each_rule_a_message_satisfies() -> None:
    assert message_rules("Fix #12: pool leak") == {"keywords"}
    assert message_rules("prefix handling") == {"datasets"}
    assert message_rules("fix the leak") == {"datasets", "keywords"}
    assert message_rules("Add feature") == frozenset()


BOTH = frozenset({"datasets", "keywords"})


def test_very_large_changes_and_merges_are_never_fixes() -> None:
    assert is_fix(BOTH, SMALL, merge=False)
    assert not is_fix(BOTH, SMALL, merge=True)
    assert not is_fix(BOTH, {**SMALL, "ld": 5000}, merge=False)
    assert not is_fix(BOTH, {**SMALL, "hd": 100}, merge=False)
    assert not is_fix(BOTH, {**SMALL, "nf": 50}, merge=False)
    assert is_fix(BOTH, {"ld": 4999, "hd": 99, "nf": 49}, merge=False)
    assert is_fix(frozenset(), SMALL, merge=False, listed=True)  # issue-tracker label
    assert not is_fix(frozenset(), SMALL, merge=False)


def test_each_rule_takes_its_own_message_match() -> None:
    assert is_fix(frozenset({"datasets"}), SMALL, merge=False)  # the default rule
    assert not is_fix(frozenset({"keywords"}), SMALL, merge=False)
    assert is_fix(frozenset({"keywords"}), SMALL, merge=False, rule="keywords")
    assert not is_fix(frozenset({"datasets"}), SMALL, merge=False, rule="keywords")


def test_the_listed_rule_takes_only_issue_tracker_fixes() -> None:
    assert is_fix(frozenset(), SMALL, merge=False, listed=True, rule="listed")
    assert not is_fix(BOTH, SMALL, merge=False, listed=False, rule="listed")  # a keyword alone is not enough
    assert not is_fix(frozenset(), {**SMALL, "nf": 50}, merge=False, listed=True, rule="listed")  # no huge change


DAY = 86400


def test_plain_links_every_earlier_row_and_strict_a_recent_untangled_few() -> None:
    fix = 1000 * DAY
    blamed = {"a": fix - 10 * DAY, "b": fix - WINDOW_DAYS * DAY, "c": fix - (WINDOW_DAYS + 1) * DAY, "d": fix + DAY}
    assert inducing(fix, blamed, "plain") == ["a", "b", "c"]  # d is later than the fix (clock skew)
    assert linkable(fix, blamed) == ["a", "b"]  # c is more than a year older
    assert inducing(fix, blamed, "strict") == ["a", "b"]
    many = {f"x{i}": fix - i * DAY for i in range(1, TANGLED + 2)}  # one more than TANGLED recent commits
    assert inducing(fix, many, "plain") == sorted(many)
    assert inducing(fix, many, "strict") == []  # a tangled fix links none
    assert inducing(fix, dict(list(many.items())[:TANGLED]), "strict") == sorted(list(many)[:TANGLED])


def test_fix_sha_files_are_validated() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert read_fix_shas(f"# from JIRA\n\n{sha.upper()}  # PROJ-1\n") == {sha}
    with pytest.raises(ValueError, match="line 2: not a 40-hex commit SHA"):
        read_fix_shas(f"{sha}\nPROJ-12\n")
