"""Per-commit facts: in this process or in worker processes, the same; a missing object is named, not a crash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import ALICE, T0, GitScript, blobless_clone, build_history
from training.mining.facts import commit_facts, facts_stream
from training.mining.language import Classifier
from training.mining.promisor import MissingObject
from training.mining.repository import open_repository


def shas(repo_path: Path) -> list[bytes]:
    out = subprocess.run(["git", "--git-dir", str(repo_path), "rev-list", "--reverse", "--topo-order", "--all"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [bytes.fromhex(line) for line in out.split()]


def test_facts_of_one_commit(script: GitScript) -> None:
    sha = build_history(script)
    repo = open_repository(script.path)
    facts = commit_facts(repo, Classifier(), bytes.fromhex(sha["c7"]))
    assert (facts.email, facts.time, facts.summary, facts.fix_rules) == (
        ALICE, T0 + 8 * 86400, "Fix wrong value in App", {"datasets", "keywords"},
    )  # fmt: skip
    (change,) = facts.changes
    assert (change.path, change.la, change.ld, change.deleted) == ("src/core/App.java", 0, 2, ((2, 2),))
    merge = commit_facts(repo, Classifier(), bytes.fromhex(sha["m12"]))
    assert [(c.path, c.source, c.la) for c in merge.changes] == [("src/core/App.java", True, 0)]  # no patch


def test_worker_processes_give_the_same_facts(script: GitScript) -> None:
    build_history(script)
    git_dir = script.path / ".git"
    order = shas(git_dir)
    repo = open_repository(script.path)
    assert list(facts_stream(repo, order, 2)) == list(facts_stream(repo, order, 1))


def test_a_partial_clone_fetches_what_it_lacks_one_object_at_a_time(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    clone = blobless_clone(script, tmp_path / "clone.git")
    order = shas(clone)
    full = list(facts_stream(open_repository(script.path), order, 1))
    assert list(facts_stream(open_repository(clone), order, 1)) == full


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_an_object_nobody_can_provide_is_named_with_its_commit(script: GitScript, tmp_path: Path, workers: int) -> None:
    script.write("a.py", "x = 1\n")
    first = script.commit("add", ALICE, 0)
    clone = blobless_clone(script, tmp_path / "clone.git")
    subprocess.run(["git", "--git-dir", str(clone), "remote", "set-url", "origin", str(tmp_path / "gone")],
                   check=True)  # fmt: skip
    blob = script.git("rev-parse", f"{first}:a.py")
    # Before this fix a worker died with "cannot pickle '_pygit2.Oid'": the error must cross processes.
    with pytest.raises(MissingObject) as caught:
        list(facts_stream(open_repository(clone), shas(clone), workers))
    assert (caught.value.commit, caught.value.oid) == (first, blob)
