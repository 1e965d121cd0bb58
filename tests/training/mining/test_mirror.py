"""Clones of URL entries in the fleet's cache: cloned once, fetched and pruned afterwards, failures one line."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from tests.support import GitScript
from training.mining.mirror import MirrorError, is_url, local_copy


@pytest.mark.parametrize(
    ("source", "url"),
    [("https://github.com/o/r.git", True), ("ssh://git@host/o/r", True), ("file:///srv/r", True),
     ("git@github.com:o/r.git", True), ("/srv/repos/r", False), ("repos/r", False), ("C", False),
     ("./a:b", False)],
)  # fmt: skip
def test_urls_and_paths_are_told_apart(source: str, url: bool) -> None:
    assert is_url(source) is url


def test_a_url_is_cloned_bare_once_then_fetched_and_pruned(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    first = script.commit("first", "a@x.org", 0)
    script.switch("topic", create=True)
    script.write("b.py", "y = 1\n")
    script.commit("topic work", "a@x.org", 1)
    script.switch("main")
    script.git("tag", "v1", first)
    cache, url = tmp_path / "cache", f"file://{script.path}"
    copy = local_copy(url, cache, "demo")
    assert copy == cache / "demo.git" and [p.name for p in cache.iterdir()] == ["demo.git"]  # no temp left
    repo = pygit2.Repository(str(copy))
    assert repo.is_bare and {"refs/heads/main", "refs/heads/topic", "refs/tags/v1"} <= set(repo.references)
    script.write("a.py", "x = 2\n")
    second = script.commit("second", "a@x.org", 2)
    script.git("branch", "-D", "topic")
    assert local_copy(url, cache, "demo") == copy
    repo = pygit2.Repository(str(copy))
    assert str(repo.references["refs/heads/main"].target) == second
    assert "refs/heads/topic" not in repo.references  # deleted on the remote: pruned here


def test_an_unreachable_url_is_one_mirror_error_and_leaves_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(MirrorError, match=rf"^file://{tmp_path}/missing: clone: .+") as caught:
        local_copy(f"file://{tmp_path}/missing", cache, "gone")
    assert "\n" not in str(caught.value)
    assert list(cache.iterdir()) == []  # the half-made clone is removed


def test_a_fetch_that_fails_is_a_mirror_error(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("first", "a@x.org", 0)
    cache = tmp_path / "cache"
    local_copy(f"file://{script.path}", cache, "demo")
    with pytest.raises(MirrorError, match=rf"^file://{tmp_path}/elsewhere: fetch: "):
        local_copy(f"file://{tmp_path}/elsewhere", cache, "demo")
