"""Opening and validating the repository to mine, and choosing the commits the walk starts from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pygit2


class MiningError(Exception):
    """A problem the user must fix; the message is one line, shown as `error: <message>`."""


def tune_libgit2() -> None:
    """Process-wide libgit2 settings for read-only mining.

    Re-hashing every object read to verify it costs ~15% of the walk; mining only reads, and `git fsck`
    is the tool for checking a repository's integrity. The object cache (256 MiB by default) would fill up
    with trees the walk never reads twice: 32 MiB keeps the hits (parent trees) and bounds each process.
    """
    import pygit2

    pygit2.settings.enable_strict_hash_verification(False)
    pygit2.settings.cache_max_size(32 * 1024 * 1024)


def open_repository(path: Path) -> pygit2.Repository:
    """Open a work tree or bare repository; refuse non-repositories and shallow clones."""
    import pygit2

    tune_libgit2()

    if not path.exists():
        raise MiningError(f"{path}: no such directory")
    try:
        repo = pygit2.Repository(str(path))
    except pygit2.GitError as exc:
        raise MiningError(f"{path}: not a git repository") from exc
    if repo.is_shallow:
        raise MiningError(
            f"{path}: shallow clone, history metrics would be wrong; run `git fetch --unshallow` "
            "(in CI: actions/checkout with fetch-depth: 0)"
        )
    return repo


def repository_name(repo: pygit2.Repository) -> str:
    """A default repository id: the directory name (without `.git` for bare repositories)."""
    root = Path(repo.path.rstrip("/"))
    if root.name == ".git":
        root = root.parent
    name = root.name
    return name[:-4] if name.endswith(".git") and len(name) > 4 else name


REFS = ("all", "branches", "tags", "HEAD")
_PREFIXES = {
    "all": ("refs/heads/", "refs/remotes/", "refs/tags/"),
    "branches": ("refs/heads/", "refs/remotes/"),
    "tags": ("refs/tags/",),
    "HEAD": (),
}


def start_points(repo: pygit2.Repository, refs: str) -> list[pygit2.Oid]:
    """Commits the walk starts from: HEAD plus every local and remote branch and/or tag (`--refs`).

    Tags count by default: commits of deleted branches often survive only behind a release tag
    (METRICS.md "Which commits are rows"). Annotated tags are peeled; a tag of a tree or blob is ignored.
    """
    import pygit2

    if refs not in REFS:
        raise MiningError(f"--refs: expected one of {', '.join(REFS)}, got {refs!r}")
    if repo.is_empty or repo.head_is_unborn:
        return []
    points = [repo.head.peel(pygit2.Commit).id]
    seen = set(points)
    prefixes = _PREFIXES[refs]
    for name in sorted(repo.references) if prefixes else ():
        if not name.startswith(prefixes):
            continue
        try:
            target = repo.references[name].resolve().peel()
        except (KeyError, ValueError, pygit2.GitError):
            continue  # a dangling symbolic ref (e.g. a remote's HEAD to a deleted branch): nothing to walk
        if isinstance(target, pygit2.Commit) and target.id not in seen:
            seen.add(target.id)
            points.append(target.id)
    return points


def resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    """The commit a revision names (SHA, branch, HEAD~2, …)."""
    import pygit2

    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise MiningError(f"--rev: {rev!r} names no commit in the repository") from exc
