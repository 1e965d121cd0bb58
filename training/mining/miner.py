"""The walk: every commit once, in topological order, feeding diffs to history, rows and SZZ jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.mining.diff import FileChange, decode_path, file_changes, printable, size_metrics
from training.mining.history import History
from training.mining.language import Classifier
from training.mining.state import MiningState
from training.mining.szz import BlameJob, Blamer, has_fix_keyword, is_fix
from training.mining.writer import CommitRow, first_line

_CHUNK = 128  # commits per worker task: large enough to amortise pickling, small enough to stream
_PARALLEL_FROM = 2000  # fewer commits than this are diffed in-process

if TYPE_CHECKING:
    import pygit2
    from rich.progress import Progress, Task
    from rich.text import Text


def _decode(raw: bytes, encoding: str | None = None) -> str:
    try:
        return raw.decode(encoding or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def pending_commits(
    repo: pygit2.Repository, starts: list[pygit2.Oid], history: History
) -> list[tuple[bytes, list[bytes]]]:
    """Commits reachable from `starts` and not yet processed, parents first: (SHA, parent SHAs)."""
    import pygit2
    from pygit2.enums import SortMode

    if not starts:
        return []
    walker = repo.walk(starts[0], SortMode.TOPOLOGICAL | SortMode.REVERSE)
    for oid in starts[1:]:
        walker.push(oid)
    for sha in history.tips:
        walker.hide(pygit2.Oid(raw=sha))
    return [(c.id.raw, [p.raw for p in c.parent_ids]) for c in walker]


def forget_unreachable(repo: pygit2.Repository, state: MiningState, starts: list[pygit2.Oid]) -> None:
    """Drop rows, SZZ links and kept states of commits no branch reaches any more (deleted or rewritten
    branches), so that continuing a state gives what a full mine of today's branches gives."""
    reachable: set[bytes] = set()
    if starts:
        walker = repo.walk(starts[0])
        for oid in starts[1:]:
            walker.push(oid)
        reachable = {c.id.raw for c in walker}
    state.rows = {sha: row for sha, row in state.rows.items() if bytes.fromhex(sha) in reachable}
    links: dict[str, dict[str, int]] = {}
    for sha, fixes in state.fixed_by.items():
        kept = {fix: when for fix, when in fixes.items() if bytes.fromhex(fix) in reachable}
        if kept and bytes.fromhex(sha) in reachable:
            links[sha] = kept
    state.fixed_by = links
    for tip in [t for t in state.history.tips if t not in reachable]:
        del state.history.tips[tip]
        state.history.pending.pop(tip, None)


def _followed_and_merged(repo: pygit2.Repository, parents: list[bytes]) -> tuple[bytes, list[str]]:
    """METRICS.md's merge rule: follow the first parent unless another descends from it; and the emails of
    the commits the merge brings in (ancestors of the other parents that the followed one lacks)."""
    import pygit2

    oids = [pygit2.Oid(raw=p) for p in parents]
    followed = oids[0]
    for other in oids[1:]:
        if repo.descendant_of(other, followed):
            followed = other
            break
    others = [o for o in oids if o != followed]
    walker = repo.walk(others[0])
    for oid in others[1:]:
        walker.push(oid)
    walker.hide(followed)
    return followed.raw, [decode_path(c.author.raw_email) for c in walker]


def _progress(total: int, enabled: bool) -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeElapsedColumn

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            from rich.text import Text

            return Text(f"{task.speed or 0:,.0f} {task.fields.get('unit', 'commits')}/s")

    return Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), Rate(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not enabled, transient=False,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CommitFacts:
    """What one commit contributes, computed without history (so it can run in a worker process)."""

    changes: list[FileChange]
    email: str
    name: str
    time: int
    summary: str  # the message's first line, cut
    keyword_fix: bool  # METRICS.md's keywords appear in the message


def commit_facts(repo: pygit2.Repository, classifier: Classifier, sha: bytes) -> CommitFacts:
    """Diff, classification and metadata of one commit."""
    import pygit2

    commit = repo[pygit2.Oid(raw=sha)]
    assert isinstance(commit, pygit2.Commit)
    message = _decode(commit.raw_message, commit.message_encoding)
    author = commit.author
    return CommitFacts(
        file_changes(repo, commit, classifier), decode_path(author.raw_email),
        _decode(author.raw_name, commit.message_encoding),
        author.time, first_line(message), has_fix_keyword(message),
    )  # fmt: skip


@dataclass
class _Worker:
    """A diff worker's repository handle and classifier (one per worker process)."""

    path: str
    repo: pygit2.Repository
    classifier: Classifier
    since_open: int = 0


_worker: _Worker | None = None
# libgit2 keeps per-repository state that grows with every tree diff (~8 KB a commit) and is only freed
# with the Repository: reopening every few thousand commits keeps a worker's memory flat.
_REOPEN_EVERY = 2048


def _open_worker(path: str) -> None:
    global _worker
    import pygit2

    from training.mining.repository import tune_libgit2

    tune_libgit2()
    _worker = _Worker(path, pygit2.Repository(path), Classifier())


def _facts_in_worker(shas: list[bytes]) -> list[CommitFacts]:
    assert _worker is not None
    if _worker.since_open >= _REOPEN_EVERY:
        import pygit2

        _worker.repo.free()
        _worker.repo, _worker.since_open = pygit2.Repository(_worker.path), 0
    _worker.since_open += len(shas)
    return [commit_facts(_worker.repo, _worker.classifier, sha) for sha in shas]


def _facts_stream(repo: pygit2.Repository, shas: list[bytes], workers: int) -> Iterator[CommitFacts]:
    """CommitFacts in `shas` order: in this process, or from worker processes in bounded chunks."""
    if workers <= 1:
        classifier = Classifier()
        for sha in shas:
            yield commit_facts(repo, classifier, sha)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    chunks = [shas[i : i + _CHUNK] for i in range(0, len(shas), _CHUNK)]
    context = multiprocessing.get_context("spawn")  # no fork of libgit2 handles or threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_open_worker,
                             initargs=(str(Path(repo.path)),)) as pool:  # fmt: skip
        queue: deque[Future[list[CommitFacts]]] = deque()
        for chunk in chunks:
            queue.append(pool.submit(_facts_in_worker, chunk))
            # Bounded read-ahead: memory stays flat however long the history is.
            if len(queue) > 2 * workers:
                yield from queue.popleft().result()
        while queue:
            yield from queue.popleft().result()


def walk(
    repo: pygit2.Repository,
    state: MiningState,
    commits: list[tuple[bytes, list[bytes]]],
    workers: int,
    keep_tips: bool,
    progress: bool = False,
    diff_workers: int | None = None,
) -> dict[str, CommitRow]:
    """Process `commits` (from pending_commits) into `state`; return the rows of the new commits.

    Diffs run in `diff_workers` processes (default: `workers` for long walks, none for short ones, where
    starting processes costs more than it saves); history is updated here, in topological order.
    """
    state.history.plan(commits)
    if diff_workers is None:
        diff_workers = workers if len(commits) >= _PARALLEL_FROM else 1
    rows: dict[str, CommitRow] = {}
    blamer: Blamer | None = None  # started at the first fix: no process start-up when there is none
    fix_times: dict[str, int] = {}
    try:
        with _progress(len(commits), progress) as bar:
            task = bar.add_task("mining", total=len(commits))
            facts = _facts_stream(repo, [sha for sha, _ in commits], diff_workers)
            for done, ((sha, parents), fact) in enumerate(zip(commits, facts, strict=True), 1):
                job = _commit(repo, state, sha, parents, fact, keep_tips, rows)
                if job is not None:
                    if blamer is None:
                        blamer = Blamer(str(Path(repo.path)), workers)
                    blamer.submit(job)
                    fix_times[job[0]] = rows[job[0]].author_date
                if done % 512 == 0:
                    bar.update(task, completed=done)
            bar.update(task, completed=len(commits))
            if blamer is not None:
                blamed = bar.add_task("SZZ blame", total=len(fix_times), unit="fixes")
                _link(state, blamer, fix_times, lambda: bar.advance(blamed))
    finally:
        if blamer is not None:
            blamer.close()
    state.rows.update(rows)
    return rows


def _commit(
    repo: pygit2.Repository,
    state: MiningState,
    sha: bytes,
    parents: list[bytes],
    fact: CommitFacts,
    keep_tips: bool,
    rows: dict[str, CommitRow],
) -> BlameJob | None:
    """Advance the history by one commit; add its row when it is one; return its blame job if a fix."""
    changes = fact.changes
    merge = len(parents) > 1
    followed: bytes | None = parents[0] if parents else None
    merged: list[str] = []
    if merge:
        followed, merged = _followed_and_merged(repo, parents)
    metrics = state.history.advance(sha, parents, followed, merged, fact.email, fact.time, changes, keep_tips)
    if merge:
        return None
    metrics.update(size_metrics(changes))
    if metrics["nf"] < 1:
        return None
    hexsha = sha.hex()
    fix = is_fix(fact.keyword_fix, metrics, merge, hexsha in state.listed_fixes)
    rows[hexsha] = CommitRow(
        hexsha, fact.time, printable(fact.name), printable(fact.email), printable(fact.summary), fix,
        [printable(ch.path) for ch in changes], metrics,
    )  # fmt: skip
    if not (fix and state.labels and parents):
        return None
    files = [(ch.old_path.encode("utf-8", "surrogateescape"), list(ch.deleted))
             for ch in changes if ch.counted and ch.deleted]  # fmt: skip
    return (hexsha, parents[0].hex(), files) if files else None


def _link(state: MiningState, blamer: Blamer, fix_times: dict[str, int], tick: Callable[[], None]) -> None:
    """Link each blamed commit earlier than its fix to that fix (SZZ: only later fixes count)."""
    for fix, blamed in blamer.results():
        tick()
        fix_time = fix_times[fix]
        for sha in blamed:
            when = state.history.time_of(bytes.fromhex(sha))
            if when is not None and when < fix_time:
                state.fixed_by.setdefault(sha, {})[fix] = fix_time
