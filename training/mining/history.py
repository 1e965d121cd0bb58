"""Per-file and per-author history, updated commit by commit in one topological walk (METRICS.md).

Each file's history is a persistent linked list in one arena of nodes (commit index, previous node), so
branches share their common past and a branch point costs one shallow dict copy, not a copy of history.
Git-free on purpose: the walk decides which parent a merge follows and feeds this module plain data.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from training.mining import origins
from training.mining.diff import FileChange
from training.mining.language import subsystem

_DAY = 86400.0


class MissingParentState(Exception):
    """A new commit descends from a processed commit whose state was not kept: mine from scratch."""


@dataclass(slots=True)
class Tip:
    """State after one commit, over its chain: each path's touch-list head node, author counts over the commit
    and all its ancestors (`exp`), and per author the subsystem sets its chain commits touched (`sexp`)."""

    files: dict[str, int] = field(default_factory=dict)
    authors: dict[int, int] = field(default_factory=dict)
    # author → {subsystems one chain commit touched: number of such commits}. An author's inner dict is
    # replaced, never changed in place, so a shallow copy of the outer dict is a safe copy.
    subsystems: dict[int, dict[frozenset[str], int]] = field(default_factory=dict)
    # Each source file's line origins (origins.py) when labels are mined; arrays are replaced, never changed.
    lines: origins.Origins = field(default_factory=dict)

    def copy(self) -> Tip:
        """A copy that can be changed without touching this one (history nodes stay shared)."""
        return Tip(dict(self.files), dict(self.authors), dict(self.subsystems), dict(self.lines))


@dataclass
class History:
    """Commit table, node arena and the states of commits whose children are not all processed yet."""

    index: dict[bytes, int] = field(default_factory=dict)  # raw SHA → commit index
    shas: list[bytes] = field(default_factory=list)
    emails: dict[str, int] = field(default_factory=dict)
    author: array = field(default_factory=lambda: array("i"))
    time: array = field(default_factory=lambda: array("q"))
    node_commit: array = field(default_factory=lambda: array("i"))
    node_prev: array = field(default_factory=lambda: array("i"))
    tips: dict[bytes, Tip] = field(default_factory=dict)  # kept: pending children, or a leaf to continue from
    pending: dict[bytes, int] = field(default_factory=dict)  # SHA → children still to consume its state

    def plan(self, commits: list[tuple[bytes, list[bytes]]]) -> None:
        """Count, for every parent, the new children that will consume its state (before the walk)."""
        new = {sha for sha, _ in commits}
        for _, parents in commits:
            for parent in parents:
                if parent not in new and parent not in self.tips:
                    raise MissingParentState(parent.hex())  # raised before any change to the state
        for _, parents in commits:
            for parent in parents:
                self.pending[parent] = self.pending.get(parent, 0) + 1

    def _consume(self, sha: bytes, take: bool) -> Tip | None:
        left = self.pending.get(sha, 0) - 1
        if left <= 0:
            self.pending.pop(sha, None)
            tip = self.tips.pop(sha)
            return tip if take else None
        self.pending[sha] = left
        return self.tips[sha].copy() if take else None

    def time_of(self, sha: bytes) -> int | None:
        """Author time of a processed commit, or None when unknown."""
        index = self.index.get(sha)
        return None if index is None else self.time[index]

    def advance(
        self,
        sha: bytes,
        parents: list[bytes],
        followed: bytes | None,
        merged_emails: Iterable[str],
        email: str,
        when: int,
        changes: list[FileChange],
        keep: bool,
        lines: bool = False,
    ) -> dict[str, float]:
        """Record one commit; return its history metrics (computed for every commit, used for rows). `lines`:
        also carry the line origins on (the changes carry hunks: diff.file_changes with `origins`)."""
        author = self.emails.setdefault(email, len(self.emails))
        c = len(self.shas)
        self.index[sha] = c
        self.shas.append(sha)
        self.author.append(author)
        self.time.append(when)

        carried = origins.advance([self.tips[p].lines for p in parents], changes, c) if lines else {}
        tip = Tip()
        for parent in parents:
            taken = self._consume(parent, parent == followed)
            if taken is not None:
                tip = taken
        for other in merged_emails:
            a = self.emails.setdefault(other, len(self.emails))
            tip.authors[a] = tip.authors.get(a, 0) + 1

        tip.lines = carried
        metrics = self._metrics(tip, author, when, changes)
        self._update(tip, c, author, changes)
        tip.authors[author] = tip.authors.get(author, 0) + 1
        if keep or self.pending.get(sha, 0) > 0:
            self.tips[sha] = tip
        return metrics

    def blame(self, parent: bytes, deleted: Iterable[tuple[str, tuple[tuple[int, int], ...]]]) -> set[bytes]:
        """The commits that last changed the given lines of `parent` (a processed commit whose state is kept):
        per old path, (start, count) ranges, 1-based — SZZ's blame of a fix's deleted lines."""
        return {self.shas[c] for c in origins.blamed(self.tips[parent].lines, deleted)}

    def _history(self, files: dict[str, int], path: str) -> Iterator[int]:
        """The commits in the history of `path` on a tip's chain, nearest first (METRICS.md)."""
        node_commit, node_prev = self.node_commit, self.node_prev
        head = files.get(path, -1)
        while head >= 0:
            yield node_commit[head]
            head = node_prev[head]

    def _metrics(self, tip: Tip, author: int, when: int, changes: list[FileChange]) -> dict[str, float]:
        files = tip.files
        history: set[int] = set()
        ages: list[float] = []
        subsystems: set[str] = set()
        for ch in changes:
            if not ch.counted:
                continue
            subsystems.add(subsystem(ch.path))
            # The walk starts at the path in this commit: an added path continues into its previous
            # incarnation, a renamed file's new path has (usually) none.
            history.update(self._history(files, ch.path))
            if ch.status == "A":
                continue
            last = files.get(ch.old_path, -1)  # a renamed file's last change is under its old path
            if last >= 0:
                # Rewritten author dates (rebase, cherry-pick) can put the last change "after" this commit;
                # a negative age is no valid metric (the service rejects it), so it counts as 0 days.
                ages.append(max(0.0, (when - self.time[self.node_commit[last]]) / _DAY))
        # fsum: exactly rounded whatever the order, so a continued state writes what a full mine writes.
        rexp = math.fsum(1.0 / max(1.0, (when - self.time[h]) / _DAY) for h in history if self.author[h] == author)
        sexp = sum(n for touched, n in tip.subsystems.get(author, {}).items() if not touched.isdisjoint(subsystems))
        return {
            "ndev": len({self.author[h] for h in history}),
            "age": sum(ages) / len(ages) if ages else 0.0,
            "nuc": len(history),
            "exp": tip.authors.get(author, 0),
            "rexp": rexp,
            "sexp": sexp,
        }

    def _update(self, tip: Tip, c: int, author: int, changes: list[FileChange]) -> None:
        """Record what commit `c` touched: counted-type paths of its first-parent diff (METRICS.md)."""
        files = tip.files
        touched: set[str] = set()
        for ch in changes:
            if not ch.source:
                continue  # a touch while the path was not a counted type is no history
            touched.add(subsystem(ch.path))
            if ch.status == "A":
                previous = -1  # an addition ends the history (also at a merge)
            elif ch.status == "R":
                previous = files.get(ch.old_path, -1)  # a rename continues with the old path
            else:
                previous = files.get(ch.path, -1)  # deletions stay: a re-added path continues into them
            self.node_commit.append(c)
            self.node_prev.append(previous)
            files[ch.path] = len(self.node_commit) - 1
        if touched:
            key = frozenset(touched)
            counts = dict(tip.subsystems.get(author, {}))
            counts[key] = counts.get(key, 0) + 1
            tip.subsystems[author] = counts
