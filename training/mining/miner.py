"""The walk: every commit once, in topological order, feeding diffs to history, line origins, rows and SZZ."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from training.mining.diff import decode_path, printable, size_metrics
from training.mining.facts import CommitFacts, facts_stream
from training.mining.history import History
from training.mining.state import MiningState
from training.mining.szz import inducing, is_fix
from training.mining.writer import CommitRow

_PARALLEL_FROM = 2000  # fewer commits than this are diffed in-process

if TYPE_CHECKING:
    import pygit2
    from rich.progress import Progress, Task
    from rich.text import Text


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
    branches, moved tags), so that continuing a state gives what a full mine of today's refs gives."""
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
    if len(oids) == 2:
        # One walk answers both questions (repo.descendant_of cost as much again, ~1 ms a merge on jedis): the
        # commits the second parent brings in, and whether the first parent is a parent of one of them — then
        # the second descends from it (a merge git could have fast-forwarded) and the first brings nothing new.
        walker = repo.walk(oids[1])
        walker.hide(oids[0])
        brought = list(walker)
        if any(oids[0] in c.parent_ids for c in brought):
            return oids[1].raw, []
        return oids[0].raw, [decode_path(c.author.raw_email) for c in brought]
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


def walk(
    repo: pygit2.Repository,
    state: MiningState,
    commits: list[tuple[bytes, list[bytes]]],
    workers: int,
    keep_tips: bool,
    progress: bool = False,
    diff_workers: int | None = None,
    planned: bool = False,
) -> dict[str, CommitRow]:
    """Process `commits` (from pending_commits) into `state`; return the rows of the new commits.

    Diffs run in `diff_workers` processes (default: `workers` for long walks, none for short ones, where
    starting processes costs more than it saves); history, line origins and SZZ links are updated here, in
    topological order. `planned`: the history already counted these commits' children (a slice of a walk
    planned as a whole).
    """
    if not planned:
        state.history.plan(commits)
    if diff_workers is None:
        diff_workers = workers if len(commits) >= _PARALLEL_FROM else 1
    rows: dict[str, CommitRow] = {}
    with _progress(len(commits), progress) as bar:
        task = bar.add_task("mining", total=len(commits))
        facts = facts_stream(repo, [sha for sha, _ in commits], diff_workers, state.labels)
        for done, ((sha, parents), fact) in enumerate(zip(commits, facts, strict=True), 1):
            _commit(repo, state, sha, parents, fact, keep_tips, rows)
            if done % 512 == 0:
                bar.update(task, completed=done)
        bar.update(task, completed=len(commits))
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
) -> None:
    """Advance the history by one commit; add its row when it is one; link it to what it fixes if a fix."""
    changes = fact.changes
    merge = len(parents) > 1
    followed: bytes | None = parents[0] if parents else None
    merged: list[str] = []
    if merge:
        followed, merged = _followed_and_merged(repo, parents)
    size = size_metrics(changes) if not merge else {}
    row = not merge and size["nf"] >= 1
    hexsha = sha.hex()
    fix = row and is_fix(fact.fix_rules, size, merge, hexsha in state.listed_fixes, state.fix_rule)
    blamed: set[bytes] = set()
    if fix and state.labels and parents:
        # Blamed at the first parent, before this commit moves the origins on: every deleted line of a
        # counted file (whitespace-only changes are no deletion: METRICS.md's ld).
        blamed = state.history.blame(parents[0], [(ch.old_path, ch.deleted) for ch in changes if ch.counted])
    metrics = state.history.advance(
        sha, parents, followed, merged, fact.email, fact.time, changes, keep_tips, state.labels
    )
    if not row:
        return
    metrics.update(size)
    rows[hexsha] = CommitRow(
        hexsha, fact.time, printable(fact.name), printable(fact.email), printable(fact.summary), fix,
        [printable(ch.path) for ch in changes], metrics,
    )  # fmt: skip
    if blamed:
        times = _row_times(state, rows, (b.hex() for b in blamed))
        for inducer in inducing(fact.time, times, state.szz):
            state.fixed_by.setdefault(inducer, {})[hexsha] = fact.time


def _row_times(state: MiningState, rows: dict[str, CommitRow], blamed: Iterable[str]) -> dict[str, int]:
    """Author times of the blamed commits that are rows (only rows carry labels)."""
    times: dict[str, int] = {}
    for sha in blamed:
        row = rows.get(sha) or state.rows.get(sha)
        if row is not None:
            times[sha] = row.author_date
    return times
