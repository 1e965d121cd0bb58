"""Logged predictions counted per UTC day, repository and risk band: the web pages' volume figures.

Counting a million logged rows on every page view takes seconds; a finished day no longer changes (bar rows
written late), so a refresh keeps the counts of the older days and recounts only the days still open: those
touched within OPEN_SECONDS before the previous count. Each day is one indexed range query on `time`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Select, func, select

from app.monitoring.tables import predictions

DAY = 86_400
# A row is written a flush interval (0.5 s) after its answer, minutes later after a database outage: days
# touched within this window before the previous count are counted again.
OPEN_SECONDS = 3_600.0
BANDS = ("low", "medium", "high")

# (UTC day number, repository or None, risk band)
Key = tuple[int, str | None, str]


@dataclass(frozen=True, slots=True)
class Tally:
    """Predictions of one day, repository and band, and the newest one's time."""

    rows: int
    last: float


@dataclass(frozen=True, slots=True)
class RepositoryVolume:
    """One repository's scored commits: the last 7 and 30 days (UTC days, today included), and in all."""

    repository: str | None
    rows_7_days: int
    rows_30_days: int
    high_30_days: int
    rows: int
    last_scored: float

    @property
    def high_share(self) -> float | None:
        """Share of the last 30 days' predictions in the high band (None without any)."""
        return self.high_30_days / self.rows_30_days if self.rows_30_days else None


@dataclass(frozen=True)
class Volume:
    """The counts as of `as_of`, with the per-repository and per-day sums the pages read."""

    as_of: float
    counts: dict[Key, Tally]
    by_repository: dict[str | None, RepositoryVolume] = field(default_factory=dict)
    by_day: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Every counted prediction."""
        return sum(t.rows for t in self.counts.values())

    def days(self, start: int, end: int) -> list[tuple[int, dict[str, int]]]:
        """(day, rows per band) for every day in [start, end], zeros included."""
        empty = dict.fromkeys(BANDS, 0)
        return [(day, {**empty, **self.by_day.get(day, {})}) for day in range(start, end + 1)]

    def repository_days(self, repository: str | None, start: int, end: int) -> list[tuple[int, dict[str, int]]]:
        """One repository's (day, rows per band) for every day in [start, end], zeros included."""
        counts = self.counts
        return [
            (day, {band: (counts[key].rows if (key := (day, repository, band)) in counts else 0) for band in BANDS})
            for day in range(start, end + 1)
        ]


def day_of(seconds: float) -> int:
    """The UTC day number of a Unix time."""
    return int(seconds // DAY)


def day_query(day: int, open_ended: bool = False) -> Select[Any]:
    """The SELECT counting one UTC day per repository and band (the `time` index's range of that day)."""
    c = predictions.c
    query = select(c.repository, c.risk_band, func.count(), func.max(c.time)).where(c.time >= float(day * DAY))
    if not open_ended:
        query = query.where(c.time < float((day + 1) * DAY))
    return query.group_by(c.repository, c.risk_band)


def count_day(engine: Engine, day: int, open_ended: bool = False) -> dict[Key, Tally]:
    """Counts of one UTC day (with `open_ended`, everything from its start on: today and any clock skew)."""
    with engine.connect() as conn:
        rows = conn.execute(day_query(day, open_ended))
        return {(day, repo, band): Tally(int(n), float(last)) for repo, band, n, last in rows}


def oldest_time(engine: Engine) -> float | None:
    """Time of the oldest logged prediction (the `time` index's first entry), None on an empty log."""
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(predictions.c.time))).scalar()
    return None if oldest is None else float(oldest)


def count_volume(engine: Engine, previous: Volume | None, retention_days: float, now: float | None = None) -> Volume:
    """Recount the open days (every day on the first call), keep the rest of `previous`, drop expired days."""
    now = time.time() if now is None else now
    today = day_of(now)
    expired = day_of(now - retention_days * DAY)
    if previous is None:
        oldest = oldest_time(engine)
        first = today if oldest is None else min(day_of(oldest), today)
        counts: dict[Key, Tally] = {}
    else:
        first = min(day_of(previous.as_of - OPEN_SECONDS), today)
        counts = {key: tally for key, tally in previous.counts.items() if expired <= key[0] < first}
    for day in range(max(first, expired), today + 1):
        counts.update(count_day(engine, day, open_ended=day == today))
    return summarise(counts, now)


def summarise(counts: dict[Key, Tally], as_of: float) -> Volume:
    """The per-repository and per-day sums of `counts`, relative to the UTC day of `as_of`."""
    today = day_of(as_of)
    repositories: dict[str | None, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    by_day: dict[int, dict[str, int]] = defaultdict(dict)
    for (day, repository, band), tally in counts.items():
        sums = repositories[repository]
        age = today - day
        sums[0] += tally.rows if age < 7 else 0
        sums[1] += tally.rows if age < 30 else 0
        sums[2] += tally.rows if age < 30 and band == "high" else 0
        sums[3] += tally.rows
        sums[4] = max(sums[4], tally.last)
        by_day[day][band] = by_day[day].get(band, 0) + tally.rows
    return Volume(
        as_of,
        counts,
        {r: RepositoryVolume(r, int(s[0]), int(s[1]), int(s[2]), int(s[3]), s[4]) for r, s in repositories.items()},
        dict(by_day),
    )


def newest_first(repositories: Iterable[RepositoryVolume]) -> list[RepositoryVolume]:
    """Repositories ordered by their newest scored commit, newest first."""
    return sorted(repositories, key=lambda r: r.last_scored, reverse=True)
