"""Partial clones: missing objects listed, fetched from the promisor remote like git does, or named."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import pygit2
import pytest

from tests.support import GitScript, blobless_clone, build_history
from training.mining.promisor import (
    MissingObject,
    fetch_object,
    missing_objects,
    missing_oid,
    prefetch,
    promisor_remote,
)


def head(repo: Path) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def test_a_blobless_clone_is_filled_in_one_fetch(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    assert promisor_remote(str(script.path / ".git")) is None  # a complete clone: nothing to fetch
    clone = blobless_clone(script, tmp_path / "clone.git")
    assert promisor_remote(str(clone)) == "origin"
    missing = missing_objects(str(clone), [head(clone)], [])
    assert len(missing) > 10  # every blob of the history
    assert prefetch(str(clone), [head(clone)], []) == (len(missing), None)
    assert missing_objects(str(clone), [head(clone)], []) == []
    assert prefetch(str(clone), [head(clone)], []) == (0, None)  # nothing left to do


def test_only_objects_of_the_new_commits_are_listed(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    old = script.commit("old", "a@x.org", 0)
    script.write("b.py", "y = 2\n")
    new = script.commit("new", "a@x.org", 1)
    clone = blobless_clone(script, tmp_path / "clone.git")
    wanted = {script.git("rev-parse", f"{new}:b.py")}
    assert set(missing_objects(str(clone), [new], [old])) == wanted  # a.py's blob belongs to the old commit


def test_an_unreachable_promisor_remote_gives_git_s_error_line(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("c", "a@x.org", 0)
    clone = blobless_clone(script, tmp_path / "clone.git")
    subprocess.run(["git", "--git-dir", str(clone), "remote", "set-url", "origin", str(tmp_path / "gone")],
                   check=True)  # fmt: skip
    fetched, error = prefetch(str(clone), [sha], [])
    assert fetched == 0 and error is not None and error.startswith("fatal:") and "\n" not in error
    blob = script.git("rev-parse", f"{sha}:a.py")
    assert not fetch_object(str(clone), blob)


def test_one_object_is_fetched_on_demand(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("c", "a@x.org", 0)
    clone = blobless_clone(script, tmp_path / "clone.git")
    blob = script.git("rev-parse", f"{sha}:a.py")
    repo = pygit2.Repository(str(clone))
    with pytest.raises(KeyError) as lookup:
        repo[blob]
    assert missing_oid(lookup.value) == blob
    assert fetch_object(str(clone), blob)
    assert repo[blob].read_raw() == b"x = 1\n"  # libgit2 sees the fetched pack


def test_missing_object_errors_name_the_object_and_cross_processes() -> None:
    oid = "ab" * 20
    assert missing_oid(KeyError(pygit2.Oid(hex=oid))) == oid
    assert missing_oid(pygit2.GitError(f"object not found - no match for id ({oid})")) == oid
    assert missing_oid(KeyError(f"object not found - cannot read header for ({oid})")) == oid
    assert missing_oid(KeyError("some other key")) is None
    assert missing_oid(ValueError("unrelated")) is None
    error = pickle.loads(pickle.dumps(MissingObject("c" * 40, oid)))
    assert (error.commit, error.oid) == ("c" * 40, oid)
    assert str(error) == f"commit {'c' * 40}: object {oid} is missing and no promisor remote could provide it"
