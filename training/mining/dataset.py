"""A repository mined into dataset rows: every commit into a CSV (continuing a state file), or one commit's row.

Both raise `MiningError` (one line, naming the file or option) for anything the user must fix; notes on
how the run went (a state that cannot be continued, a re-mine) go to the `note` callable, in order.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from training.mining.history import History, MissingParentState
from training.mining.miner import forget_unreachable, pending_commits, walk
from training.mining.promisor import MissingObject, prefetch
from training.mining.repository import (
    MiningError,
    open_repository,
    repository_name,
    resolve_commit,
    start_points,
)
from training.mining.state import MiningState, previous_state, save_state
from training.mining.szz import FIX_RULES, SZZ_RULES, read_fix_shas
from training.mining.writer import CommitRow, write_rows

if TYPE_CHECKING:
    import pygit2

Note = Callable[[str], None]
Checkpoint = Callable[[MiningState], None]


def _quiet(_message: str) -> None:
    """The default `note`: say nothing."""


@dataclass(frozen=True, slots=True)
class MineResult:
    """What one `mine` did: commits walked this time, rows written, seconds spent walking."""

    walked: int
    written: int
    seconds: float
    empty: bool  # the repository has no commits: the CSV holds the header only

    @property
    def rate(self) -> float:
        """Commits walked per second (0 when nothing took measurable time)."""
        return self.walked / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class MinedCommit:
    """One commit to score: its row (None for a merge or a commit changing no counted file) and identity."""

    sha: str
    row: CommitRow | None
    repository_id: str
    merge: bool


def parse_since(value: str) -> int:
    """An ISO date or date-time (UTC unless it carries an offset) as Unix seconds."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MiningError(f"--since: {value!r} is not an ISO date (YYYY-MM-DD[THH:MM[:SS]])") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def mine(
    repo_path: Path,
    out: Path,
    *,
    since: str | None = None,
    refs: str = "all",
    state_path: Path | None = None,
    labels: bool = True,
    fix_shas: Path | None = None,
    fix_rule: str = "datasets",
    szz: str = "strict",
    repository_id: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    note: Note = _quiet,
    checkpoint: int | None = None,
    checkpointed: Callable[[Path], None] | None = None,
) -> MineResult:
    """Mine `repo_path` into the CSV `out`, continuing from `state_path` when it holds a compatible state.

    `checkpoint`: also save the state every that many commits, so a killed run continues from the last one;
    `checkpointed` hears the state file's path after each of those saves (fleet mining copies it to a bucket).
    """
    try:
        since_ts = parse_since(since) if since else None
        listed: frozenset[str] = frozenset()
        if fix_rule not in FIX_RULES:
            raise MiningError(f"--fix-rule: expected one of {', '.join(FIX_RULES)}, got {fix_rule!r}")
        if szz not in SZZ_RULES:
            raise MiningError(f"--szz: expected one of {', '.join(SZZ_RULES)}, got {szz!r}")
        if fix_rule == "listed" and fix_shas is None:
            raise MiningError("--fix-rule: 'listed' marks only the fixes of --fix-shas FILE; give that file")
        if fix_shas is not None:
            try:
                listed = frozenset(read_fix_shas(fix_shas.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise MiningError(f"{fix_shas}: {exc}") from exc
        for path, option in ((out, "--out"), (state_path, "--state")):
            if path is not None and path.is_dir():
                raise MiningError(f"{path}: is a directory ({option} names the file to write)")
        repo = open_repository(repo_path)
        starts = start_points(repo, refs)
        fresh = MiningState(refs, labels, listed, fix_rule, szz)
        state = previous_state(state_path, note)
        if state is not None and not state.compatible(fresh):
            note(f"{state_path}: mined with other options; mining from scratch")
            state = None
        state = state or fresh
        began = time.perf_counter()
        save: Checkpoint | None = None
        if checkpoint is not None and state_path is not None:
            save = functools.partial(_checkpoint, state_path, checkpointed)
        walked = walk_all(repo, state, starts, workers, state_path is not None, progress, note, save, checkpoint)
        seconds = time.perf_counter() - began
        repo_id = repository_id or repository_name(repo)
        rows = [r for r in state.rows.values() if since_ts is None or r.author_date >= since_ts]
        written = write_rows(out, rows, repo_id, state.labels_of())
        if state_path is not None:
            save_state(state_path, state)
    except MissingObject as exc:
        raise MiningError(f"{repo_path}: {exc}") from None
    except OSError as exc:  # unwritable output or state file, full disk, …
        raise MiningError(f"{exc.filename or out}: {exc.strerror or exc}") from exc
    return MineResult(walked, written, seconds, empty=not starts)


def _checkpoint(path: Path, checkpointed: Callable[[Path], None] | None, state: MiningState) -> None:
    save_state(path, state)
    if checkpointed is not None:
        checkpointed(path)


def walk_all(
    repo: pygit2.Repository,
    state: MiningState,
    starts: list[pygit2.Oid],
    workers: int | None,
    keep: bool,
    progress: bool,
    note: Note = _quiet,
    save: Checkpoint | None = None,
    every: int | None = None,
) -> int:
    """Walk what is new since the state into it; when the state cannot continue exactly, start from scratch.

    With `save` and `every`, the walk goes in slices of `every` commits and `save` gets the state after each.
    Returns the number of commits walked.
    """
    workers = workers or os.cpu_count() or 1
    # Children counted by a checkpointed walk that was killed: the walk below counts what is left again.
    state.history.pending.clear()
    if state.history.shas:
        forget_unreachable(repo, state, starts)
    fetched, error = prefetch(repo.path, [str(o) for o in starts], [sha.hex() for sha in state.history.tips])
    if fetched:
        note(f"partial clone: fetched {fetched:,} missing objects from its promisor remote")
    if error is not None:
        note(f"partial clone: fetching missing objects failed ({error}); each one will be asked for again")
    commits = pending_commits(repo, starts, state.history)
    try:
        state.history.plan(commits)
    except MissingParentState:
        note("the state cannot continue this history exactly (new branch off an old commit); re-mining")
        state.history, state.rows, state.fixed_by = History(), {}, {}
        commits = pending_commits(repo, starts, state.history)
        state.history.plan(commits)
    size = every if save is not None and every else len(commits) or 1
    for start in range(0, len(commits), size):
        # A slice of a reverse topological order holds every parent of its commits that is new: each slice
        # continues the state exactly as a later incremental run would.
        walk(repo, state, commits[start : start + size], workers, keep, progress, planned=True)
        if save is not None:
            save(state)
    return len(commits)


def commit_row(repo: pygit2.Repository, sha: str, state_path: Path | None) -> CommitRow | None:
    """The commit's metrics, from the state when it has them, else by walking only what is missing."""
    import pygit2

    state = previous_state(state_path, lambda _: None)  # an outdated state only saves less of the walk
    if state is not None and sha in state.rows:
        return state.rows[sha]
    state = state or MiningState("HEAD", labels=False)
    state.labels = False  # scoring needs metrics only; no blame
    walk_all(repo, state, [pygit2.Oid(hex=sha)], None, False, False)
    return state.rows.get(sha)


def mine_commit(
    repo_path: Path, rev: str = "HEAD", state_path: Path | None = None, repository_id: str | None = None
) -> MinedCommit:
    """The row of the commit `rev` names, for `commitrisk score` (the state file, when given, saves the walk)."""
    repo = open_repository(repo_path)
    if repo.is_empty or repo.head_is_unborn:
        raise MiningError(f"{repo_path}: no commits yet")
    commit = resolve_commit(repo, rev)
    sha = str(commit.id)
    try:
        row = commit_row(repo, sha, state_path)
    except MissingObject as exc:
        raise MiningError(f"{repo_path}: {exc}") from None
    return MinedCommit(sha, row, repository_id or repository_name(repo), len(commit.parent_ids) > 1)
