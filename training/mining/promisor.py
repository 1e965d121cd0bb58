"""Objects a partial clone lacks: fetched from its promisor remote the way git does, or named when they cannot be.

libgit2 (pygit2) cannot fetch the blobs a `git clone --filter=blob:none` left out, so before the walk the
missing objects of the commits to mine are listed (`git rev-list --objects --missing=print`) and fetched in
one request with the command git itself runs for a lazy fetch; an object still missing during the walk is
asked for once more through `git cat-file` (which asks the promisor remote), and only then is an error that
names the object and the commit. Fetched objects land in the repository, as with any git command reading it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable

_OID = re.compile(r"\b[0-9a-f]{40}\b")
_GIT = ("git", "-c", "core.quotePath=false")


class MissingObject(Exception):
    """An object a commit needs is not in the repository and could not be fetched.

    Holds plain strings only: it crosses the boundary of the diff worker processes.
    """

    def __init__(self, commit: str, oid: str) -> None:
        super().__init__(commit, oid)
        self.commit = commit
        self.oid = oid

    def __str__(self) -> str:
        return f"commit {self.commit}: object {self.oid} is missing and no promisor remote could provide it"


def promisor_remote(git_dir: str) -> str | None:
    """The remote a partial clone fetches missing objects from (None for a complete clone)."""
    done = subprocess.run(
        [*_GIT, "--git-dir", git_dir, "config", "--get-regexp", r"^(extensions\.partialclone|remote\..*\.promisor)$"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "extensions.partialclone" and value:
            return value
        if key.endswith(".promisor") and value.lower() in ("true", "yes", "on", "1"):
            return key[len("remote.") : -len(".promisor")]
    return None


def missing_objects(git_dir: str, starts: Iterable[str], hide: Iterable[str]) -> list[str]:
    """Objects reachable from `starts` but not from `hide` that the repository lacks (none are fetched)."""
    stdin = "".join(f"{sha}\n" for sha in starts) + "".join(f"^{sha}\n" for sha in hide)
    done = subprocess.run(  # bytes: the object names that follow the ids are paths, not always UTF-8
        [*_GIT, "--git-dir", git_dir, "rev-list", "--objects", "--no-object-names", "--missing=print", "--stdin"],
        input=stdin.encode(), capture_output=True, check=False,
    )  # fmt: skip
    return [line[1:41].decode("ascii") for line in done.stdout.splitlines() if line.startswith(b"?")]


def fetch_objects(git_dir: str, remote: str, oids: list[str]) -> str | None:
    """Fetch `oids` from the promisor remote in one request, exactly as git's own lazy fetch does
    (promisor-remote.c); None on success, else git's first error line."""
    command = [*_GIT, "--git-dir", git_dir, "-c", "fetch.negotiationAlgorithm=noop", "fetch", remote, "--no-tags",
               "--no-write-fetch-head", "--recurse-submodules=no", "--filter=blob:none", "--stdin"]  # fmt: skip
    done = subprocess.run(command, input="".join(f"{oid}\n" for oid in oids), capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or [f"git fetch exited with {done.returncode}"])[0]


def prefetch(git_dir: str, starts: list[str], hide: list[str]) -> tuple[int, str | None]:
    """Fetch what a partial clone lacks for the commits to mine: (objects fetched, git's error or None).

    Trees first when a tree filter left them out: their blobs only show once the trees are there.
    """
    remote = promisor_remote(git_dir)
    if remote is None:
        return 0, None
    fetched = 0
    for _ in range(8):  # blob:none needs one round; tree filters a few more
        missing = missing_objects(git_dir, starts, hide)
        if not missing:
            return fetched, None
        error = fetch_objects(git_dir, remote, missing)
        if error is not None:
            return fetched, error
        fetched += len(missing)
    return fetched, None


def fetch_object(git_dir: str, oid: str) -> bool:
    """Ask git for one object (a partial clone fetches it from its promisor remote); True once it is there."""
    done = subprocess.run([*_GIT, "--git-dir", git_dir, "cat-file", "-e", oid], capture_output=True, check=False)
    return done.returncode == 0


def missing_oid(exc: BaseException) -> str | None:
    """The object id a libgit2 lookup failed on (KeyError(Oid) or "object not found … (oid)"), else None."""
    if isinstance(exc, KeyError) and exc.args and _OID.fullmatch(str(exc.args[0])):
        return str(exc.args[0])
    if "not found" in str(exc):  # libgit2's NotFoundError (a KeyError too) names the object in its message
        found = _OID.search(str(exc))
        return found.group(0) if found else None
    return None
