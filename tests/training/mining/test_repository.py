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


def test_start_points_by_refs_branches_tags_or_head(script: GitScript) -> None:
    script.write("a.py", "x = 1\n")
    main = script.commit("c", "a@x.org", 0)
    script.switch("side", create=True)
    script.write("a.py", "x = 2\n")
    side = script.commit("d", "a@x.org", 1)
    script.switch("tagged", create=True)
    script.write("a.py", "x = 3\n")
    tagged = script.commit("e", "a@x.org", 2)
    tagger = {"GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x.org"}
    script.git("tag", "-a", "v1", "-m", "annotated", env=tagger)  # peeled to its commit
    script.git("tag", "light", side)  # lightweight
    script.git("tag", "tree-tag", script.git("rev-parse", "HEAD^{tree}"))  # not a commit: ignored
    script.switch("main")
    script.git("branch", "-D", "tagged")
    script.git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/gone")  # dangling: ignored
    repo = open_repository(script.path)
    assert [str(o) for o in start_points(repo, "HEAD")] == [main]
    assert sorted(str(o) for o in start_points(repo, "branches")) == sorted([main, side])
    assert sorted(str(o) for o in start_points(repo, "tags")) == sorted([main, side, tagged])
    assert sorted(str(o) for o in start_points(repo, "all")) == sorted([main, side, tagged])
    with pytest.raises(MiningError, match=r"^--refs: expected one of all, branches, tags, HEAD, got 'some'$"):
        start_points(repo, "some")


def test_revisions_resolve_to_commits_or_fail_clearly(script: GitScript) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("c", "a@x.org", 0)
    repo = open_repository(script.path)
    assert str(resolve_commit(repo, "HEAD").id) == sha
    assert str(resolve_commit(repo, sha[:10]).id) == sha
    with pytest.raises(MiningError, match="names no commit"):
        resolve_commit(repo, "nope~3")
