"""Incremental history state without git: branch isolation, leaves kept for continuation, bad plans."""

from __future__ import annotations

import pytest

from training.mining.diff import FileChange
from training.mining.history import History, MissingParentState

DAY = 86400


def change(path: str, status: str = "M", la: int = 1) -> FileChange:
    return FileChange(status, path, path, True, la=la, ha=1, lines=1)


def test_two_branches_from_one_commit_do_not_see_each_other() -> None:
    h = History()
    commits = [(b"a", []), (b"b", [b"a"]), (b"c", [b"a"])]
    h.plan(commits)
    h.advance(b"a", [], None, [], "x@y", 0, [change("f.py", "A")], keep=False)
    b = h.advance(b"b", [b"a"], b"a", [], "x@y", DAY, [change("f.py")], keep=False)
    c = h.advance(b"c", [b"a"], b"a", [], "z@y", 2 * DAY, [change("f.py")], keep=False)
    assert (b["nuc"], b["exp"], b["age"]) == (1, 1, 1.0)
    assert (c["nuc"], c["ndev"], c["exp"], c["age"]) == (1, 1, 0, 2.0)  # b is not in c's history
    assert set(h.tips) == set()  # nothing kept without keep=True: no state file asked for


def test_leaves_are_kept_for_continuation_and_unknown_parents_are_refused() -> None:
    h = History()
    h.plan([(b"a", []), (b"b", [b"a"])])
    h.advance(b"a", [], None, [], "x@y", 0, [change("f.py", "A")], keep=True)
    h.advance(b"b", [b"a"], b"a", [], "x@y", DAY, [change("f.py")], keep=True)
    assert set(h.tips) == {b"b"}  # a was consumed by its only child
    with pytest.raises(MissingParentState):
        h.plan([(b"c", [b"a"])])  # a's state is gone: the caller must mine from scratch
    assert h.pending == {}  # a refused plan leaves no trace
    h.plan([(b"c", [b"b"])])
    c = h.advance(b"c", [b"b"], b"b", [], "x@y", 3 * DAY, [change("f.py")], keep=True)
    assert (c["nuc"], c["exp"], c["rexp"]) == (2, 2, 1 / 2 + 1 / 3)


def test_merged_branches_count_for_experience() -> None:
    h = History()
    h.plan([(b"a", []), (b"m", [b"a"])])
    h.advance(b"a", [], None, [], "x@y", 0, [], keep=False)
    m = h.advance(b"m", [b"a"], b"a", ["x@y", "x@y"], "x@y", DAY, [], keep=False)
    assert m["exp"] == 3  # a, plus two commits brought in by a merge


def test_an_author_date_before_the_files_last_change_gives_age_zero_not_negative() -> None:
    h = History()
    h.plan([(b"a", []), (b"b", [b"a"])])
    h.advance(b"a", [], None, [], "x@y", 5 * DAY, [change("f.py", "A")], keep=False)
    b = h.advance(b"b", [b"a"], b"a", [], "x@y", 2 * DAY, [change("f.py")], keep=False)  # rebased: older date
    assert (b["age"], b["rexp"]) == (0.0, 1.0)


def test_a_re_added_path_continues_into_its_deleted_incarnation() -> None:
    h = History()
    h.plan([(b"a", []), (b"b", [b"a"]), (b"c", [b"b"])])
    h.advance(b"a", [], None, [], "x@y", 0, [change("f.py", "A")], keep=False)
    h.advance(b"b", [b"a"], b"a", [], "z@y", DAY, [FileChange("D", "f.py", "f.py", True, ld=1, hd=1)], keep=False)
    c = h.advance(b"c", [b"b"], b"b", [], "x@y", 2 * DAY, [change("f.py", "A")], keep=False)
    assert (c["nuc"], c["ndev"], c["age"], c["rexp"]) == (2, 2, 0.0, 1 / 2)  # b (deletion) and a; age: added


def test_touches_of_a_path_while_it_was_no_counted_type_are_not_history() -> None:
    h = History()
    h.plan([(b"a", []), (b"b", [b"a"]), (b"c", [b"b"])])
    h.advance(b"a", [], None, [], "x@y", 0, [FileChange("A", "tool", "tool", False)], keep=False)
    h.advance(b"b", [b"a"], b"a", [], "x@y", DAY, [change("tool")], keep=False)  # now a counted type
    c = h.advance(b"c", [b"b"], b"b", [], "x@y", 2 * DAY, [change("tool")], keep=False)
    assert (c["nuc"], c["age"]) == (1, 1.0)


def test_an_addition_at_a_merge_ends_the_history_there() -> None:
    h = History()
    commits = [(b"a", []), (b"t", [b"a"]), (b"m", [b"a", b"t"]), (b"c", [b"m"])]
    h.plan(commits)
    h.advance(b"a", [], None, [], "x@y", 0, [], keep=False)
    h.advance(b"t", [b"a"], b"a", [], "z@y", DAY, [change("f.py", "A")], keep=False)
    h.advance(b"m", [b"a", b"t"], b"t", [], "x@y", 2 * DAY, [change("f.py", "A")], keep=False)  # follows t
    c = h.advance(b"c", [b"m"], b"m", [], "x@y", 3 * DAY, [change("f.py")], keep=False)
    assert (c["nuc"], c["ndev"]) == (1, 1)  # m only, not t


def test_sexp_counts_chain_commits_in_the_subsystems_once_each() -> None:
    h = History()
    h.plan([(b"a", []), (b"b", [b"a"]), (b"c", [b"b"])])
    h.advance(b"a", [], None, [], "x@y", 0, [change("lib/a.py", "A"), change("src/b.py", "A")], keep=False)
    h.advance(b"b", [b"a"], b"a", [], "x@y", DAY, [change("lib/other.py", "A")], keep=False)
    c = h.advance(b"c", [b"b"], b"b", [], "x@y", 2 * DAY, [change("lib/a.py"), change("src/b.py")], keep=False)
    assert (c["sexp"], c["nuc"]) == (2, 1)  # a (once, though it touched both) and b (another file of lib/)


def test_line_origins_follow_each_branch_and_a_fix_blames_its_parents_lines() -> None:
    h = History()
    commits = [(b"a", []), (b"b", [b"a"]), (b"c", [b"a"])]
    h.plan(commits)
    added = FileChange("A", "f.py", "f.py", True, la=3, hunks=((0, 0, 1, 3),))
    h.advance(b"a", [], None, [], "x@y", 0, [added], keep=False, lines=True)
    edit = FileChange("M", "f.py", "f.py", True, la=1, ld=1, deleted=((2, 1),), hunks=((2, 1, 2, 1),))
    h.advance(b"b", [b"a"], b"a", [], "x@y", DAY, [edit], keep=True, lines=True)
    assert h.blame(b"b", [("f.py", ((1, 2),))]) == {b"a", b"b"}  # line 1 from a, line 2 rewritten by b
    assert h.blame(b"b", [("g.py", ((1, 1),))]) == set()  # no such file: nothing blamed
    h.advance(b"c", [b"a"], b"a", [], "z@y", 2 * DAY, [], keep=True, lines=True)
    assert h.blame(b"c", [("f.py", ((1, 3),))]) == {b"a"}  # b's edit is on another branch


def test_without_lines_no_origins_are_kept() -> None:
    h = History()
    h.plan([(b"a", [])])
    h.advance(b"a", [], None, [], "x@y", 0, [FileChange("A", "f.py", "f.py", True, la=3, hunks=((0, 0, 1, 3),))],
              keep=True)  # fmt: skip
    assert h.tips[b"a"].lines == {}
