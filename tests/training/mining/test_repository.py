"""Opening repositories: clear one-line errors for what cannot be mined; bare and empty ones work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import GitScript
from training.mining.repository import (
    MiningError,
    open_repository,
    repository_name,
    resolve_commit,
    start_points,
)


def test_a_directory_that_is_not_a_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MiningError, match="not a git repository"):
        open_repository(tmp_path)
    with pytest.raises(MiningError, match="no such directory"):
        open_repository(tmp_path / "missing")


def test_a_shallow_clone_is_refused_with_the_fix(script: GitScript, tmp_path: Path) -> None:
    for day in range(3):
        script.write("a.py", f"x = {day}\n")
        script.commit(f"c{day}", "a@x.org", day)
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{script.path}", str(clone)], check=True)
    with pytest.raises(MiningError, match=r"shallow clone.*--unshallow") as info:
        open_repository(clone)
    assert "\n" not in str(info.value)


def test_a_bare_repository_opens_and_is_named_without_dot_git(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("c", "a@x.org", 0)
    bare = tmp_path / "project.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(script.path), str(bare)], check=True)
    repo = open_repository(bare)
    assert repository_name(repo) == "project"
    assert [str(oid) for oid in start_points(repo, "all")] == [sha]


def test_a_repository_without_commits_has_no_start_points(script: GitScript) -> None:
    repo = open_repository(script.path)
    assert repository_name(repo) == "repo"
    assert start_points(repo, "all") == []


def test_all_branches_or_only_head(script: GitScript) -> None:
    script.write("a.py", "x = 1\n")
    main = script.commit("c", "a@x.org", 0)
    script.switch("side", create=True)
    script.write("a.py", "x = 2\n")
    side = script.commit("d", "a@x.org", 1)
    script.switch("main")
    repo = open_repository(script.path)
    assert [str(o) for o in start_points(repo, "HEAD")] == [main]
    assert sorted(str(o) for o in start_points(repo, "all")) == sorted([main, side])
    with pytest.raises(MiningError, match="--branches"):
        start_points(repo, "some")


def test_revisions_resolve_to_commits_or_fail_clearly(script: GitScript) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("c", "a@x.org", 0)
    repo = open_repository(script.path)
    assert str(resolve_commit(repo, "HEAD").id) == sha
    assert str(resolve_commit(repo, sha[:10]).id) == sha
    with pytest.raises(MiningError, match="names no commit"):
        resolve_commit(repo, "nope~3")
