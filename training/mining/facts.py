"""What one commit contributes without history — diff, classification, metadata — in worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.mining.diff import FileChange, PatchCache, decode_path, file_changes
from training.mining.language import Classifier
from training.mining.promisor import MissingObject, fetch_object, missing_oid
from training.mining.szz import message_rules
from training.mining.writer import first_line

_CHUNK = 128  # commits per worker task: large enough to amortise pickling, small enough to stream

if TYPE_CHECKING:
    import pygit2


def _decode(raw: bytes, encoding: str | None = None) -> str:
    try:
        return raw.decode(encoding or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class CommitFacts:
    """What one commit contributes, computed without history (so it can run in a worker process)."""

    changes: list[FileChange]
    email: str
    name: str
    time: int
    summary: str  # the message's first line, cut
    fix_rules: frozenset[str]  # the message rules (szz.MESSAGE_RULES) the message satisfies


def commit_facts(
    repo: pygit2.Repository, classifier: Classifier, sha: bytes, cache: PatchCache | None = None, origins: bool = False
) -> CommitFacts:
    """Diff, classification and metadata of one commit (with `origins`, the hunks line origins need); an object
    a partial clone still lacks is fetched (one at a time, through git), one that cannot be had is a
    MissingObject naming it and the commit."""
    import pygit2

    fetched: set[str] = set()
    while True:
        try:
            return _facts(repo, classifier, sha, cache, origins)
        except (KeyError, pygit2.GitError) as exc:
            oid = missing_oid(exc)
            if oid is None:
                raise
            if oid in fetched or not fetch_object(repo.path, oid):
                raise MissingObject(sha.hex(), oid) from None  # plain strings: the Oid cannot be pickled
            fetched.add(oid)


def _facts(
    repo: pygit2.Repository, classifier: Classifier, sha: bytes, cache: PatchCache | None, origins: bool
) -> CommitFacts:
    import pygit2

    commit = repo[pygit2.Oid(raw=sha)]
    assert isinstance(commit, pygit2.Commit)
    message = _decode(commit.raw_message, commit.message_encoding)
    author = commit.author
    return CommitFacts(
        file_changes(repo, commit, classifier, len(commit.parent_ids) < 2, cache, origins),
        decode_path(author.raw_email),
        _decode(author.raw_name, commit.message_encoding),
        author.time, first_line(message), message_rules(message),
    )  # fmt: skip


@dataclass
class _Worker:
    """A diff worker's repository handle and classifier (one per worker process)."""

    path: str
    repo: pygit2.Repository
    classifier: Classifier
    cache: PatchCache
    origins: bool
    since_open: int = 0


_worker: _Worker | None = None
# libgit2 keeps per-repository state that grows with every tree diff (~8 KB a commit) and is only freed
# with the Repository: reopening every few thousand commits keeps a worker's memory flat.
_REOPEN_EVERY = 2048


def _open_worker(path: str, origins: bool) -> None:
    global _worker
    import pygit2

    from training.mining.repository import tune_libgit2

    tune_libgit2()
    _worker = _Worker(path, pygit2.Repository(path), Classifier(), PatchCache(), origins)


def _facts_in_worker(shas: list[bytes]) -> list[CommitFacts]:
    assert _worker is not None
    if _worker.since_open >= _REOPEN_EVERY:
        import pygit2

        _worker.repo.free()
        _worker.repo, _worker.since_open = pygit2.Repository(_worker.path), 0
    _worker.since_open += len(shas)
    worker = _worker
    return [commit_facts(worker.repo, worker.classifier, sha, worker.cache, worker.origins) for sha in shas]


def facts_stream(
    repo: pygit2.Repository, shas: list[bytes], workers: int, origins: bool = False
) -> Iterator[CommitFacts]:
    """CommitFacts in `shas` order (see commit_facts): in this process, or from worker processes in bounded chunks."""
    if workers <= 1:
        classifier, cache = Classifier(), PatchCache()
        for sha in shas:
            yield commit_facts(repo, classifier, sha, cache, origins)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    chunks = [shas[i : i + _CHUNK] for i in range(0, len(shas), _CHUNK)]
    context = multiprocessing.get_context("spawn")  # no fork of libgit2 handles or threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_open_worker,
                             initargs=(str(Path(repo.path)), origins)) as pool:  # fmt: skip
        queue: deque[Future[list[CommitFacts]]] = deque()
        for chunk in chunks:
            queue.append(pool.submit(_facts_in_worker, chunk))
            # Bounded read-ahead: memory stays flat however long the history is.
            if len(queue) > 2 * workers:
                yield from queue.popleft().result()
        while queue:
            yield from queue.popleft().result()
