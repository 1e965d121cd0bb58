"""What a request hands the prediction log (one entry per request, as columns; single commits gathered into
blocks) and the rows they become."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.contract import FEATURES
from app.monitoring.pacer import unpaced
from app.monitoring.writer import Packed, Part

# Entries turned into rows between two calls of the pace (~0.1 ms of work for single-commit requests).
PACE_ENTRIES = 32
# Single-commit requests per block: one queue entry, turned into rows in one go (~0.3 ms, the GIL held) between paces.
BLOCK_ROWS = 256


def request_ids(base: str | None, count: int) -> list[str | None]:
    """The id each answered commit carries: the request's id alone, or `<id>-<index>` inside a batch."""
    if base is None:
        return [None] * count
    return [base] if count == 1 else [f"{base}-{i}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class ShadowScores:
    """One shadow model's probabilities for every row of a batch (same order)."""

    version: int
    probabilities: np.ndarray


# Not frozen: built on every request and never changed after; a frozen __init__ costs ~2.5 µs more for ten fields.
@dataclass(slots=True)
class PredictionBatch:
    """The commits one request was answered for, as columns: one queue entry and a few arrays per request.

    Columns rather than one object per commit keep the request path to a handful of allocations and the queue
    small (≈ 200 bytes a row); the writer turns them into rows off the hot path.
    """

    time: float
    request_id: str | None
    features: np.ndarray  # float64 [n, 15], FEATURES order
    probabilities: np.ndarray  # [n]
    labels: np.ndarray  # bool [n]
    risk_bands: Sequence[str]
    model_version: int
    commit_ids: Sequence[str | None] | None = None
    repositories: Sequence[str | None] | None = None
    shadows: tuple[ShadowScores, ...] = ()

    @property
    def rows(self) -> int:
        """Commits in the batch."""
        return len(self.probabilities)

    def prediction_values(self) -> list[tuple[Any, ...]]:
        """`predictions` rows in `PREDICTION_COLUMNS` order."""
        n = self.rows
        if n == 1:  # `/predict`: the writer's usual entry, built without the columns' lists (0.8 vs 2.2 µs, GIL held)
            commits, repositories = self.commit_ids, self.repositories
            return [(
                self.time, self.request_id, None if commits is None else commits[0],
                None if repositories is None else repositories[0], *self.features[0].tolist(),
                self.probabilities.item(), self.labels.item(), self.risk_bands[0], self.model_version,
            )]  # fmt: skip
        ids = request_ids(self.request_id, n)
        commits = self.commit_ids if self.commit_ids is not None else [None] * n
        repositories = self.repositories if self.repositories is not None else [None] * n
        t, version = self.time, self.model_version
        columns = zip(
            ids, commits, repositories, self.features.tolist(), self.probabilities.tolist(), self.labels.tolist(),
            self.risk_bands, strict=True,
        )  # fmt: skip
        return [
            (t, rid, cid, repo, *features, p, label, band, version)
            for rid, cid, repo, features, p, label, band in columns
        ]

    def shadow_values(self) -> list[tuple[Any, ...]]:
        """`shadow_predictions` rows in `SHADOW_COLUMNS` order: both probabilities of every commit and shadow."""
        if not self.shadows:
            return []
        n = self.rows
        ids = request_ids(self.request_id, n)
        commits = self.commit_ids if self.commit_ids is not None else [None] * n
        champion = self.probabilities.tolist()
        t, version = self.time, self.model_version
        return [
            (t, rid, cid, version, p, shadow.version, q)
            for shadow in self.shadows
            for rid, cid, p, q in zip(ids, commits, champion, shadow.probabilities.tolist(), strict=True)
        ]


class PredictionBlock:
    """Single-commit requests without shadows, queued as columns: the log copies each `/predict` answer in here
    (`add`) and lets its PredictionBatch go at once.

    A queued PredictionBatch keeps its object, arrays and lists alive until the writer gets to it (~0.5 s): several
    thousand requests' worth of young objects that every allocation then walks past. Copied into a block, nothing
    of the request outlives it but its strings and two floats: /predict?explain=false +2–5 % req/s in `bench/ab.py`'s
    paired rounds, +11–14 % in A/Bs of one fresh server at a time (docs/monitoring.md#prediction-log). Rows come out
    exactly as `PredictionBatch.prediction_values` gives them, in order.
    """

    __slots__ = ("_columns", "_features", "capacity", "rows")

    def __init__(self, capacity: int = BLOCK_ROWS) -> None:
        self.rows = 0
        self.capacity = capacity
        self._features = np.empty((capacity, len(FEATURES)), dtype=np.float64)
        # time, request id, commit id, repository, probability, label, risk band, model version
        self._columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])

    @property
    def full(self) -> bool:
        """No room for another commit."""
        return self.rows >= self.capacity

    def add(self, batch: PredictionBatch) -> None:
        """Copy the one commit of `batch` (no shadows) into the next row; a batch that is not one commit raises
        and leaves the block as it was."""
        times, ids, commits, repositories, probabilities, labels, bands, versions = self._columns
        # Everything that can fail first: the columns only grow once the row is whole.
        p, label, band = batch.probabilities.item(), batch.labels.item(), batch.risk_bands[0]
        commit = None if batch.commit_ids is None else batch.commit_ids[0]
        repository = None if batch.repositories is None else batch.repositories[0]
        self._features[self.rows] = batch.features[0]
        self.rows += 1
        times.append(batch.time)
        ids.append(batch.request_id)
        commits.append(commit)
        repositories.append(repository)
        probabilities.append(p)
        labels.append(label)
        bands.append(band)
        versions.append(batch.model_version)

    def prediction_values(self) -> list[tuple[Any, ...]]:
        """`predictions` rows in `PREDICTION_COLUMNS` order, one per added commit, in order."""
        times, ids, commits, repositories, probabilities, labels, bands, versions = self._columns
        features = self._features[: self.rows].tolist()
        return [
            (t, rid, cid, repo, *values, p, label, band, version)
            for t, rid, cid, repo, values, p, label, band, version in zip(
                times, ids, commits, repositories, features, probabilities, labels, bands, versions, strict=True
            )
        ]


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    """Inputs refused before scoring, counted by reason for the data-quality view."""

    time: float
    reason: str
    count: int = 1

    @property
    def rows(self) -> int:
        """A rejection takes one row of the queue's budget."""
        return 1


Entry = PredictionBatch | RejectionRecord | PredictionBlock


def rows_of(entries: Iterable[Entry | Packed], pace: Callable[[], None] = unpaced) -> Part:
    """The rows of `entries`, in order; `pace` is called every `PACE_ENTRIES` entries (the writer's `Pacer`)."""
    rows = Part([], [], [])
    for index, entry in enumerate(entries, 1):
        if not index % PACE_ENTRIES:
            pace()
        if isinstance(entry, PredictionBatch):
            rows.predictions.extend(entry.prediction_values())
            rows.shadows.extend(entry.shadow_values())
        elif isinstance(entry, PredictionBlock):
            rows.predictions.extend(entry.prediction_values())
            pace()  # a block is as much work as a few paces' worth of entries
        elif isinstance(entry, Packed):
            packed = entry.unpack()
            rows.predictions.extend(packed.predictions)
            rows.shadows.extend(packed.shadows)
            rows.rejections.extend(packed.rejections)
        else:
            rows.rejections.append({"time": entry.time, "reason": entry.reason, "count": entry.count})
    return rows
