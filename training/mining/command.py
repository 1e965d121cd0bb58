"""Entry points of `commitrisk mine` and `commitrisk score`: options in, one-line errors, exit codes out."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from training.clients.score import ScoreError, describe, fails_gate, post_predict, predict_payload
from training.mining.history import History, MissingParentState
from training.mining.miner import forget_unreachable, pending_commits, walk
from training.mining.repository import (
    MiningError,
    open_repository,
    repository_name,
    resolve_commit,
    start_points,
)
from training.mining.state import MiningState, load_state, save_state
from training.mining.szz import BlameError, read_fix_shas
from training.mining.writer import CommitRow, write_rows

if TYPE_CHECKING:
    import pygit2


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def parse_since(value: str) -> int:
    """An ISO date or date-time (UTC unless it carries an offset) as Unix seconds."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MiningError(f"--since: {value!r} is not an ISO date (YYYY-MM-DD[THH:MM[:SS]])") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def run_mine(
    repo_path: Path,
    out: Path,
    *,
    since: str | None = None,
    branches: str = "all",
    state_path: Path | None = None,
    labels: bool = True,
    fix_shas: Path | None = None,
    repository_id: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> int:
    """Mine `repo_path` into `out` (continuing from `state_path` when it holds a compatible state)."""
    try:
        since_ts = parse_since(since) if since else None
        listed: frozenset[str] = frozenset()
        if fix_shas is not None:
            try:
                listed = frozenset(read_fix_shas(fix_shas.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise MiningError(f"{fix_shas}: {exc}") from exc
        repo = open_repository(repo_path)
        starts = start_points(repo, branches)
        state = None
        if state_path is not None and state_path.exists():
            state = load_state(state_path)
            if not state.compatible(branches, labels, listed):
                _note(f"{state_path}: mined with other options; mining from scratch")
                state = None
        state = state or MiningState(branches, labels, listed)
        began = time.perf_counter()
        count = _walk_all(repo, state, starts, workers, state_path is not None, progress)
        elapsed = time.perf_counter() - began
        repo_id = repository_id or repository_name(repo)
        rows = [r for r in state.rows.values() if since_ts is None or r.author_date >= since_ts]
        written = write_rows(out, rows, repo_id, state.labels_of())
        if state_path is not None:
            save_state(state_path, state)
    except (MiningError, BlameError) as exc:
        return _fail(str(exc))
    except OSError as exc:  # unwritable output or state file, full disk, …
        return _fail(f"{exc.filename or out}: {exc.strerror or exc}")
    rate = count / elapsed if elapsed > 0 else 0.0
    if not starts:
        _note(f"{repo_path}: no commits yet; wrote the header only to {out}")
    else:
        _note(f"walked {count} new commits in {elapsed:.1f}s ({rate:,.0f} commits/s); {written} rows → {out}")
    return 0


def _walk_all(
    repo: pygit2.Repository,
    state: MiningState,
    starts: list[pygit2.Oid],
    workers: int | None,
    keep: bool,
    progress: bool,
) -> int:
    """Walk what is new since the state; when the state cannot continue exactly, start from scratch."""
    workers = workers or os.cpu_count() or 1
    if state.history.shas:
        forget_unreachable(repo, state, starts)
    commits = pending_commits(repo, starts, state.history)
    try:
        walk(repo, state, commits, workers, keep, progress)
    except MissingParentState:
        _note("the state cannot continue this history exactly (new branch off an old commit); re-mining")
        state.history, state.rows, state.fixed_by = History(), {}, {}
        commits = pending_commits(repo, starts, state.history)
        walk(repo, state, commits, workers, keep, progress)
    return len(commits)


def _row_for(repo: pygit2.Repository, sha: str, state_path: Path | None) -> CommitRow | None:
    """The commit's metrics, from the state when it has them, else by walking only what is missing."""
    import pygit2

    state = load_state(state_path) if state_path is not None and state_path.exists() else None
    if state is not None and sha in state.rows:
        return state.rows[sha]
    state = state or MiningState("HEAD", labels=False)
    state.labels = False  # scoring needs metrics only; no blame
    _walk_all(repo, state, [pygit2.Oid(hex=sha)], None, False, False)
    return state.rows.get(sha)


def run_score(
    repo_path: Path,
    url: str,
    *,
    rev: str = "HEAD",
    fail_above: str | None = None,
    as_json: bool = False,
    state_path: Path | None = None,
    repository_id: str | None = None,
    timeout: float = 30.0,
) -> int:
    """Score one commit: 0 = passed, 1 = risk band at/above --fail-above, 2 = error."""
    if fail_above not in (None, "medium", "high"):
        return _fail(f"--fail-above: expected 'medium' or 'high', got {fail_above!r}")
    try:
        repo = open_repository(repo_path)
        if repo.is_empty or repo.head_is_unborn:
            raise MiningError(f"{repo_path}: no commits yet")
        commit = resolve_commit(repo, rev)
        row = _row_for(repo, str(commit.id), state_path)
        repo_id = repository_id or repository_name(repo)
    except MiningError as exc:
        return _fail(str(exc))
    if row is None:
        kind = "is a merge commit" if len(commit.parent_ids) > 1 else "changes no counted source file"
        _note(f"commit {str(commit.id)[:12]} {kind}: nothing to score")
        return 0
    try:
        prediction = post_predict(url, predict_payload(row, repo_id), timeout)
    except ScoreError as exc:
        return _fail(str(exc))
    if as_json:
        print(json.dumps(prediction, sort_keys=True))
    else:
        print("\n".join(describe(prediction, row.sha)))
    return 1 if fails_gate(prediction["risk_band"], fail_above) else 0
