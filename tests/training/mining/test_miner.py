"""The walk on a scripted history: every metric and label of every row, computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.contract import FEATURES
from tests.support import ALICE, ALICE_CAPS, BOB, GitScript, build_history
from training.mining.miner import pending_commits, walk
from training.mining.repository import open_repository, start_points
from training.mining.state import MiningState
from training.mining.writer import CommitRow

METRICS = FEATURES


def entropy(*churns: int) -> float:
    total = sum(churns)
    return -sum(c / total * math.log2(c / total) for c in churns)


# name: (author email, day, message, fix, files, metrics in METRICS order, fixing commits)
EXPECTED: dict[str, tuple[str, int, str, bool, list[str], tuple[float, ...], list[str]]] = {
    "c1": (ALICE, 0, "Initial import", False, ["README.md", "pom.xml", "src/main/App.java"],
           (1, 1, 1, 0, 10, 0, 1, 0, 10, 0, 0, 0, 0, 0, 0), ["c7"]),
    "c2": (BOB, 1, "Add util and tests", False,
           ["lib/Util.py", "logo.png", "src/main/App.java", "src/test/java/com/x/FooTest.java"],
           (2, 2, 2, entropy(4, 20), 23, 1, 3, 1, 16, 1, 1.0, 1, 0, 0, 0), ["c7"]),
    "c3": (ALICE_CAPS, 3, "Tidy util", False, ["lib/Util.py", "src/main/App.java"],
           (1, 1, 1, 0, 0, 1, 0, 1, 19, 1, 2.0, 1, 0, 0, 0), []),
    "c5": (ALICE, 6, "Rename util to helpers", False, ["lib/Helpers.py", "src/core/App.java"],
           (2, 2, 2, entropy(2, 1), 2, 1, 2, 1, 16, 3, 2.5, 4, 2, 1 / 2 + 1 / 6, 2), []),
    "c6": (BOB, 7, "Remove helpers, add run script", False, ["lib/Helpers.py", "scripts/run"],
           (2, 2, 2, entropy(20, 2), 2, 20, 1, 1, 11, 3, 1.0, 3, 1, 1 / 6, 1), []),
    "c7": (ALICE, 8, "Fix wrong value in App", True, ["src/core/App.java"],
           (1, 1, 1, 0, 0, 2, 0, 1, 10, 3, 2.0, 5, 3, 1 / 2 + 1 / 4 + 1 / 8, 3), []),
    "c8": (BOB, 9, "Re-add helpers", False, ["README.md", "lib/Helpers.py"],
           (1, 1, 1, 0, 5, 0, 1, 0, 5, 3, 0, 4, 2, 1 / 2 + 1 / 8, 2), []),  # re-added: continues into c6, c5, c3, c2
    # Not a fix by the default rule (the datasets'): "Correct" is capitalised; METRICS.md's keywords take it.
    "c9": (ALICE, 10, "Correct the helper", False, ["lib/Helpers.py"],
           (1, 1, 1, 0, 1, 0, 1, 0, 6, 1, 1.0, 1, 4, 0, 1), []),  # sexp: c5 touched lib/ (chain, not history)
    "c10": (BOB, 11, "Extend app on feature", False, ["src/core/App.java"],
            (1, 1, 1, 0, 1, 0, 1, 0, 11, 3, 3.0, 6, 3, 1 / 10, 1), []),
    "c11": (ALICE, 12, "Extend helpers", False, ["lib/Helpers.py"],
            (1, 1, 1, 0, 1, 0, 1, 0, 7, 2, 2.0, 2, 5, 1 / 2, 2), []),
    "c13": (BOB, 14, "Extend app again", False, ["src/core/App.java"],
            (1, 1, 1, 0, 1, 0, 1, 0, 12, 3, 1.0, 7, 4, 1 / 13, 1), []),
    "c14": (ALICE, 15, "Helpers on ff", False, ["lib/Helpers.py"],
            (1, 1, 1, 0, 1, 0, 1, 0, 8, 2, 3.0, 3, 7, 1 / 3 + 1 / 5, 3), []),
    "c16": (ALICE, 17, "Improve the helpers so that every single helper handles all of the co…", False,
            ["lib/Helpers.py"], (1, 1, 1, 0, 1, 0, 1, 0, 9, 2, 1.0, 5, 8, 1 / 2 + 1 / 5 + 1 / 7, 4), []),
    "c17": (BOB, 18, "Caf\ufffd support", False, ["src/caf\ufffd.py"],
            (1, 1, 1, 0, 2, 0, 1, 0, 2, 0, 0, 0, 6, 0, 2), []),  # sexp: c13 and c2 touched src/
}  # fmt: skip


def mine(path: Path, diff_workers: int | None = None) -> tuple[dict[str, CommitRow], dict[str, list[str]]]:
    repo = open_repository(path)
    state = MiningState("all", labels=True)
    walk(repo, state, pending_commits(repo, start_points(repo, "all"), state.history), 2, False,
         diff_workers=diff_workers)  # fmt: skip
    return state.rows, state.labels_of()


@pytest.mark.parametrize("diff_workers", [1, 2], ids=["in-process", "worker-processes"])
def test_every_row_metric_and_label_matches_the_hand_computed_values(script: GitScript, diff_workers: int) -> None:
    sha = build_history(script)
    rows, labels = mine(script.path, diff_workers)

    assert sorted(rows) == sorted(sha[name] for name in EXPECTED)  # c4 (no counted file), merges: no rows
    for name, (email, day, message, fix, files, metrics, fixes) in EXPECTED.items():
        row = rows[sha[name]]
        assert (row.author_email, row.author_date, row.message, row.is_fix, row.files) == (
            email, 1_600_000_000 + day * 86400, message, fix, files,
        ), name  # fmt: skip
        got = tuple(row.metrics[m] for m in METRICS)
        assert got == pytest.approx(metrics, rel=1e-12, abs=1e-12), f"{name}: {dict(zip(METRICS, got, strict=True))}"
        assert labels.get(sha[name], []) == [sha[f] for f in fixes], name


def test_a_fix_blames_only_earlier_commits(script: GitScript) -> None:
    """A fix authored before the commit that introduced the lines (clock skew) does not label it."""
    script.write("a.py", "a = 1\nb = 2\n")
    first = script.commit("add a", ALICE, 5)
    script.write("a.py", "a = 1\n")
    script.commit("fix b", BOB, 4)  # authored earlier than the line it deletes
    rows, labels = mine(script.path)
    assert rows[first].metrics["la"] == 2
    assert labels == {}


CAROL = "carol@x.org"


def build_rules_history(s: GitScript) -> dict[str, str]:
    """One commit per rule METRICS.md tightened in issue 15 (what a commit touched, a file's history, sexp,
    tags); returns the SHAs by name."""
    sha: dict[str, str] = {}
    s.write("a.py", "a = 1\nb = 2\nc = 3\n")
    s.write("scripts/tool", "echo 1\n")  # no shebang, no extension: not a counted type yet
    sha["r1"] = s.commit("Start", ALICE, 0)
    s.write("a.py", "a = 1\nb = 20\nc = 3\n")
    s.write("scripts/tool", "echo 1\necho 2\n")
    sha["r2"] = s.commit("Tweak", BOB, 1)
    s.write("scripts/tool", "#!/bin/sh\necho 1\necho 2\n")  # a shell script from here on
    sha["r3"] = s.commit("Make tool a script", ALICE, 2)
    s.switch("topic", create=True)
    s.write("new.py", "x = 1\n")
    sha["t1"] = s.commit("New module", CAROL, 3)
    s.move("a.py", "b.py")  # a pure rename
    s.write("new.py", "x = 1\ny = 2\n")
    sha["t2"] = s.commit("Rename a to b", CAROL, 4)
    s.switch("main")
    # Fast-forwardable: the chain follows topic, but what the merge touched is its first-parent diff:
    # new.py added, a.py renamed to b.py.
    sha["m"] = s.merge("topic", "Merge topic", BOB, 5)
    s.write("new.py", "x = 1\ny = 2\nz = 3\n")
    s.write("b.py", "a = 1\nb = 20\nc = 30\n")
    s.write("scripts/tool", "#!/bin/sh\necho 1\necho 2\necho 3\n")
    sha["r4"] = s.commit("Extend everything", ALICE, 6)
    s.switch("dropped", create=True)
    s.write("c.py", "q = 1\n")
    sha["o1"] = s.commit("Work on a branch deleted later", BOB, 7)
    tagger = {"GIT_COMMITTER_NAME": "bob", "GIT_COMMITTER_EMAIL": BOB}
    s.git("tag", "-a", "v0.1", "-m", "release", env=tagger)  # annotated: peeled to the commit
    s.switch("main")
    s.git("branch", "-D", "dropped")  # o1 survives only behind the tag
    return sha


def test_the_tightened_history_rules_hand_computed(script: GitScript) -> None:
    sha = build_rules_history(script)
    repo = open_repository(script.path)
    state = MiningState("all", labels=False)
    walk(repo, state, pending_commits(repo, start_points(repo, "all"), state.history), 1, False)
    got = {name: tuple(state.rows[sha[name]].metrics[m] for m in METRICS) for name in ("r3", "r4", "o1")}
    # r3: the touches of scripts/tool before its shebang were not of a counted type: no history, no age.
    assert got["r3"] == (1, 1, 1, 0, 1, 0, 1, 0, 3, 0, 0, 0, 1, 0, 0)
    # r4 (new.py, b.py, scripts/tool): new.py's history ends at the merge that added it (not t2, t1);
    # b.py's goes through the merge's rename to a.py (r2, r1), which t2 never touched; scripts/tool's is
    # r3 only. nuc {m, r2, r1, r3}, ndev {bob, alice}; age (1 + 1 + 4) / 3; rexp r1, r3 by alice;
    # sexp: alice's chain commits touching '' or scripts/ — r3 (scripts/tool) and r1 (a.py).
    assert got["r4"] == pytest.approx(
        (2, 2, 3, entropy(1, 2, 1), 3, 1, 3, 1, 10 / 3, 2, 2.0, 4, 2, 1 / 6 + 1 / 4, 2), rel=1e-12
    )
    # o1, reachable only from a tag, is a row: exp counts bob's r2 and m; sexp bob's chain commits touching
    # '' — m (new.py, b.py) and r2 (a.py).
    assert got["o1"] == (1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 2, 0, 2)


@pytest.mark.parametrize(("refs", "has_tag_only_commit"), [("all", True), ("tags", True), ("branches", False)])
def test_commits_only_a_tag_reaches_are_rows_unless_refs_excludes_tags(
    script: GitScript, refs: str, has_tag_only_commit: bool
) -> None:
    sha = build_rules_history(script)
    repo = open_repository(script.path)
    state = MiningState(refs, labels=False)
    walk(repo, state, pending_commits(repo, start_points(repo, refs), state.history), 1, False)
    assert (sha["o1"] in state.rows) is has_tag_only_commit
    assert sha["r4"] in state.rows  # HEAD is always a start point
