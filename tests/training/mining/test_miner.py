"""The walk on a scripted history: every metric and label of every row, computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.contract import FEATURES
from tests.training.mining.conftest import GitScript
from training.mining.miner import pending_commits, walk
from training.mining.repository import open_repository, start_points
from training.mining.state import MiningState
from training.mining.writer import CommitRow

ALICE, ALICE_CAPS, BOB = "alice@x.org", "Alice@X.org", "bob@x.org"
METRICS = FEATURES


def entropy(*churns: int) -> float:
    total = sum(churns)
    return -sum(c / total * math.log2(c / total) for c in churns)


def app(lines: dict[int, str], count: int) -> str:
    """App.java: `int aN = N;` per line unless overridden."""
    return "".join(lines.get(i, f"int a{i} = {i};") + "\n" for i in range(1, count + 1))


def build_history(s: GitScript) -> dict[str, str]:
    """The scripted history of issue 6; returns the SHAs by name."""
    sha: dict[str, str] = {}
    s.write("src/main/App.java", app({}, 10))
    s.write("README.md", "# demo\n")
    s.write("pom.xml", "<project/>\n")
    sha["c1"] = s.commit("Initial import", ALICE, 0)

    s.write("src/main/App.java", app({3: "int a3 = 30;"}, 12))
    s.write("lib/Util.py", "".join(f"u{i} = {i}\n" for i in range(1, 21)))
    s.write("src/test/java/com/x/FooTest.java", "class FooTest {\n}\n")
    s.write("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    sha["c2"] = s.commit("Add util and tests", BOB, 1)

    s.write("src/main/App.java", app({3: "int a3 = 30;", 5: "int  a5 =  5;"}, 12))  # whitespace only
    s.write("lib/Util.py", "".join(f"u{i} = {i}\n" for i in range(1, 21) if i != 2))
    sha["c3"] = s.commit("Tidy util", ALICE_CAPS, 3)

    s.move("src/main/App.java", "src/core/App.java")  # pure rename
    s.write("docs/guide.md", "guide\n")
    sha["c4"] = s.commit("Move app to core", ALICE, 4)

    s.move("lib/Util.py", "lib/Helpers.py")  # rename with an edit
    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "u21 = 21\n")
    s.write("src/core/App.java", app({1: "int a1 = 100;", 3: "int a3 = 30;", 5: "int  a5 =  5;"}, 12))
    sha["c5"] = s.commit("Rename util to helpers", ALICE, 6)

    s.remove("lib/Helpers.py")
    s.write("scripts/run", "#!/bin/sh\necho hi\n")
    sha["c6"] = s.commit("Remove helpers, add run script", BOB, 7)

    text = s.read("src/core/App.java").splitlines(keepends=True)
    s.write("src/core/App.java", "".join(text[:1] + text[3:]))  # deletes line 2 (c1) and line 3 (c2)
    sha["c7"] = s.commit("Fix wrong value in App", ALICE, 8)

    s.write("lib/Helpers.py", "".join(f"h{i} = {i}\n" for i in range(1, 6)))  # re-added
    s.write("README.md", "# demo\nmore\n")
    sha["c8"] = s.commit("Re-add helpers", BOB, 9)

    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h6 = 6\n")
    sha["c9"] = s.commit("Correct the helper", ALICE, 10)

    s.switch("feature", create=True)
    s.write("src/core/App.java", s.read("src/core/App.java") + "int a13 = 13;\n")
    sha["c10"] = s.commit("Extend app on feature", BOB, 11)
    s.switch("main")
    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h7 = 7\n")
    sha["c11"] = s.commit("Extend helpers", ALICE, 12)
    sha["m12"] = s.merge("feature", "Merge branch feature", ALICE, 13)

    s.write("src/core/App.java", s.read("src/core/App.java") + "int a14 = 14;\n")
    sha["c13"] = s.commit("Extend app again", BOB, 14)

    s.switch("ff", create=True)
    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h8 = 8\n")
    sha["c14"] = s.commit("Helpers on ff", ALICE, 15)
    s.switch("main")
    sha["m15"] = s.merge("ff", "Merge branch ff", BOB, 16)  # fast-forwardable: history follows ff

    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h9 = 9\n")
    long = "Improve the helpers so that every single helper handles all of the corner cases nicely"
    sha["c16"] = s.commit(long + "\n\nBody text.", ALICE, 17)

    s.write(b"src/caf\xe9.py", "x = 1\ny = 2\n")  # a path that is not UTF-8
    s.commit("placeholder", BOB, 18)
    sha["c17"] = s.rewrite_message(b"Caf\xe9 support\n")  # a message that is not UTF-8 either
    return sha


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
