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
           (1, 1, 1, 0, 5, 0, 1, 0, 5, 0, 0, 0, 2, 0, 0), []),
    "c9": (ALICE, 10, "Correct the helper", True, ["lib/Helpers.py"],
           (1, 1, 1, 0, 1, 0, 1, 0, 6, 1, 1.0, 1, 4, 0, 0), []),
    "c10": (BOB, 11, "Extend app on feature", False, ["src/core/App.java"],
            (1, 1, 1, 0, 1, 0, 1, 0, 11, 3, 3.0, 6, 3, 1 / 10, 1), []),
    "c11": (ALICE, 12, "Extend helpers", False, ["lib/Helpers.py"],
            (1, 1, 1, 0, 1, 0, 1, 0, 7, 2, 2.0, 2, 5, 1 / 2, 1), []),
    "c13": (BOB, 14, "Extend app again", False, ["src/core/App.java"],
            (1, 1, 1, 0, 1, 0, 1, 0, 12, 3, 1.0, 7, 4, 1 / 13, 1), []),
    "c14": (ALICE, 15, "Helpers on ff", False, ["lib/Helpers.py"],
            (1, 1, 1, 0, 1, 0, 1, 0, 8, 2, 3.0, 3, 7, 1 / 3 + 1 / 5, 2), []),
    "c16": (ALICE, 17, "Improve the helpers so that every single helper handles all of the co…", False,
            ["lib/Helpers.py"], (1, 1, 1, 0, 1, 0, 1, 0, 9, 2, 1.0, 5, 8, 1 / 2 + 1 / 5 + 1 / 7, 3), []),
    "c17": (BOB, 18, "Caf\ufffd support", False, ["src/caf\ufffd.py"],
            (1, 1, 1, 0, 2, 0, 1, 0, 2, 0, 0, 0, 6, 0, 0), []),
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
