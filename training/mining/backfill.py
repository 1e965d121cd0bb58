"""The commits of a range (`--since DATE` or `--range A..B`) with their metrics, from one history walk.

History metrics need every ancestor, so the walk covers the whole history up to the range's end (continuing a
`mine` state file when one is given, which is only read); the range then selects rows from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.mining.dataset import parse_since, walk_all
from training.mining.promisor import MissingObject
from training.mining.repository import MiningError, open_repository, repository_name, resolve_commit
from training.mining.state import MiningState, previous_state
from training.mining.writer import CommitRow

if TYPE_CHECKING:
    import pygit2


@dataclass(frozen=True, slots=True)
class RangeRows:
    """The range's commits: rows to score (oldest first) and how many had none (merges, no counted file)."""

    repository_id: str
    rows: list[CommitRow]
    unscorable: int
    walked: int
    seconds: float

    @property
    def commits(self) -> int:
        """Commits in the range, scorable or not."""
        return len(self.rows) + self.unscorable


def _in_range(repo: pygit2.Repository, end: pygit2.Commit, start: pygit2.Commit | None, since: int | None) -> list[str]:
    """SHAs reachable from `end`, minus those reachable from `start`, authored at/after `since`."""
    walker = repo.walk(end.id)
    if start is not None:
        walker.hide(start.id)
    return [str(c.id) for c in walker if since is None or c.author.time >= since]


def range_rows(
    repo_path: Path,
    *,
    since: str | None = None,
    span: str | None = None,
    rev: str = "HEAD",
    state_path: Path | None = None,
    repository_id: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> RangeRows:
    """Rows of the commits in range: `span` "A..B" (reachable from B, not from A), else those reachable from
    `rev` authored since `since` (an ISO date). MiningError (one line) for a bad range or repository."""
    if (since is None) == (span is None):
        raise MiningError("--since/--range: give exactly one of them")
    since_ts = parse_since(since) if since is not None else None
    repo = open_repository(repo_path)
    if repo.is_empty or repo.head_is_unborn:
        raise MiningError(f"{repo_path}: no commits yet")
    start = None
    if span is not None:
        first, dots, last = span.partition("..")
        if not dots or not first or not last or last.startswith("."):
            raise MiningError(f"--range: expected A..B (two revisions), got {span!r}")
        start, end = _resolve(repo, first, span), _resolve(repo, last, span)
    else:
        end = resolve_commit(repo, rev)
    state = previous_state(state_path, lambda _: None)  # an outdated state only saves less of the walk
    state = state or MiningState("HEAD", labels=False)
    state.labels = False  # scores need metrics only: no blame; the state file is read, never written back
    began = time.perf_counter()
    try:
        walked = walk_all(repo, state, [end.id], workers, False, progress)
    except MissingObject as exc:
        raise MiningError(f"{repo_path}: {exc}") from None
    seconds = time.perf_counter() - began
    shas = _in_range(repo, end, start, since_ts)
    rows = [state.rows[sha] for sha in shas if sha in state.rows]
    rows.sort(key=lambda r: (r.author_date, r.sha))
    name = repository_id or repository_name(repo)
    return RangeRows(name, rows, len(shas) - len(rows), walked, seconds)


def _resolve(repo: pygit2.Repository, rev: str, span: str) -> pygit2.Commit:
    try:
        return resolve_commit(repo, rev)
    except MiningError:
        raise MiningError(f"--range: {rev!r} (in {span!r}) names no commit in the repository") from None
