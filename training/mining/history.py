"""Per-file and per-author history, updated commit by commit in one topological walk (METRICS.md).

Each file's history is a persistent linked list in one arena of nodes (commit index, previous node), so
branches share their common past and a branch point costs one shallow dict copy, not a copy of history.
Git-free on purpose: the walk decides which parent a merge follows and feeds this module plain data.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from training.mining.diff import FileChange
from training.mining.language import subsystem

_DAY = 86400.0


class MissingParentState(Exception):
    """A new commit descends from a processed commit whose state was not kept: mine from scratch."""


@dataclass(slots=True)
class Tip:
    """State after one commit: each path's history head node, and author counts over it and its ancestors."""

    files: dict[str, int] = field(default_factory=dict)
    authors: dict[int, int] = field(default_factory=dict)

    def copy(self) -> Tip:
        """A copy that can be changed without touching this one (history nodes stay shared)."""
        return Tip(dict(self.files), dict(self.authors))


@dataclass
class History:
    """Commit table, node arena and the states of commits whose children are not all processed yet."""

    index: dict[bytes, int] = field(default_factory=dict)  # raw SHA → commit index
    shas: list[bytes] = field(default_factory=list)
    emails: dict[str, int] = field(default_factory=dict)
    author: array = field(default_factory=lambda: array("i"))
    time: array = field(default_factory=lambda: array("q"))
    subsystems: list[frozenset[str]] = field(default_factory=list)
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
    ) -> dict[str, float]:
        """Record one commit; return its history metrics (computed for every commit, used for rows)."""
        author = self.emails.setdefault(email, len(self.emails))
        c = len(self.shas)
        self.index[sha] = c
        self.shas.append(sha)
        self.author.append(author)
        self.time.append(when)
        self.subsystems.append(frozenset({subsystem(ch.path) for ch in changes if ch.source}))

        tip = Tip()
        for parent in parents:
            taken = self._consume(parent, parent == followed)
            if taken is not None:
                tip = taken
        for other in merged_emails:
            a = self.emails.setdefault(other, len(self.emails))
            tip.authors[a] = tip.authors.get(a, 0) + 1

        metrics = self._metrics(tip, author, when, changes)
        self._update(tip, c, changes, merge=len(parents) > 1)
        tip.authors[author] = tip.authors.get(author, 0) + 1
        if keep or self.pending.get(sha, 0) > 0:
            self.tips[sha] = tip
        return metrics

    def _metrics(self, tip: Tip, author: int, when: int, changes: list[FileChange]) -> dict[str, float]:
        files, node_commit, node_prev = tip.files, self.node_commit, self.node_prev
        touched: set[int] = set()
        ages: list[float] = []
        subsystems: set[str] = set()
        for ch in changes:
            if not ch.counted:
                continue
            subsystems.add(subsystem(ch.path))
            if ch.status == "A":
                continue
            head = files.get(ch.old_path, -1)
            if head >= 0:
                # Rewritten author dates (rebase, cherry-pick) can put the last change "after" this commit;
                # a negative age is no valid metric (the service rejects it), so it counts as 0 days.
                ages.append(max(0.0, (when - self.time[node_commit[head]]) / _DAY))
            if ch.status == "R":
                continue  # in the renaming commit the new path has no history
            while head >= 0:
                touched.add(node_commit[head])
                head = node_prev[head]
        rexp = 0.0
        sexp = 0
        for h in touched:
            if self.author[h] == author:
                rexp += 1.0 / max(1.0, (when - self.time[h]) / _DAY)
                if self.subsystems[h] & subsystems:
                    sexp += 1
        return {
            "ndev": len({self.author[h] for h in touched}),
            "age": sum(ages) / len(ages) if ages else 0.0,
            "nuc": len(touched),
            "exp": tip.authors.get(author, 0),
            "rexp": rexp,
            "sexp": sexp,
        }

    def _update(self, tip: Tip, c: int, changes: list[FileChange], merge: bool) -> None:
        files = tip.files
        for ch in changes:
            if ch.status == "D":
                files.pop(ch.old_path, None)
                continue
            if ch.status == "R":
                previous = files.pop(ch.old_path, -1)
            elif ch.status == "A" and not merge:
                previous = -1  # history stops at the commit that (re)added the path
            else:
                # A merge "adds" files its followed parent already had when it fast-forwards: keep them.
                previous = files.get(ch.path, -1)
            self.node_commit.append(c)
            self.node_prev.append(previous)
            files[ch.path] = len(self.node_commit) - 1
