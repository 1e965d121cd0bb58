"""Per-day volume counts on SQLite and PostgreSQL: windows, high-risk share, incremental recounts, retention."""

from __future__ import annotations

import pytest

from app.monitoring.store import Store
from app.monitoring.volume import DAY, OPEN_SECONDS, count_volume, day_of, newest_first
from tests.support import log_row

NOW = 1_790_000_000.0 + 0.5 * DAY  # the middle of a UTC day
TODAY = day_of(NOW)


def ago(days: float, hours: float = 0.0) -> float:
    return NOW - days * DAY - hours * 3600


def test_counts_per_repository_window_and_band(store: Store) -> None:
    store.insert_predictions(
        [log_row(ago(0), "a", "high"), log_row(ago(0), "a", "low"), log_row(ago(6), "a", "high"),
         log_row(ago(7), "a", "medium"), log_row(ago(29), "a", "high"), log_row(ago(30), "a", "high"),
         log_row(ago(2), "b", "low"), log_row(ago(1), None, "low")]
    )  # fmt: skip
    volume = count_volume(store.engine, None, retention_days=180, now=NOW)
    a, b, none = volume.by_repository["a"], volume.by_repository["b"], volume.by_repository[None]
    # Day 0 (today) … day 6 are the last 7 UTC days; day 29 is still in the last 30, day 30 is not.
    assert (a.rows_7_days, a.rows_30_days, a.high_30_days, a.rows) == (3, 5, 3, 6)
    assert a.high_share == pytest.approx(3 / 5) and a.last_scored == ago(0)
    assert (b.rows, b.high_share, none.rows) == (1, 0.0, 1)
    assert [r.repository for r in newest_first(volume.by_repository.values())] == ["a", None, "b"]
    assert volume.rows == 8
    assert volume.by_day[TODAY] == {"high": 1, "low": 1}
    assert volume.repository_days("a", TODAY - 7, TODAY - 6) == [
        (TODAY - 7, {"low": 0, "medium": 1, "high": 0}),
        (TODAY - 6, {"low": 0, "medium": 0, "high": 1}),
    ]
    assert volume.days(TODAY - 1, TODAY) == [
        (TODAY - 1, {"low": 1, "medium": 0, "high": 0}),
        (TODAY, {"low": 1, "medium": 0, "high": 1}),
    ]


def test_a_refresh_recounts_only_the_open_days(store: Store) -> None:
    store.insert_predictions([log_row(ago(3), "a"), log_row(ago(0), "a")])
    first = count_volume(store.engine, None, retention_days=180, now=NOW)
    # A row written late into a closed day is not seen by a refresh (until a full recount); today's are.
    store.insert_predictions([log_row(ago(3), "a"), log_row(ago(0), "a"), log_row(ago(0), "c", "high")])
    later = count_volume(store.engine, first, retention_days=180, now=NOW + 60)
    assert later.by_repository["a"].rows == 3 and later.by_repository["c"].rows == 1
    assert count_volume(store.engine, None, retention_days=180, now=NOW + 60).by_repository["a"].rows == 4


def test_yesterday_is_recounted_within_the_open_window_after_midnight(store: Store) -> None:
    midnight = (TODAY + 1) * DAY
    first = count_volume(store.engine, None, retention_days=180, now=midnight + 60)  # just after midnight
    store.insert_predictions([log_row(midnight - 30, "a")])  # written late, into yesterday
    later = count_volume(store.engine, first, retention_days=180, now=midnight + OPEN_SECONDS / 2)
    assert later.by_repository["a"].rows == 1


def test_expired_days_are_dropped_and_an_empty_log_counts_nothing(store: Store) -> None:
    empty = count_volume(store.engine, None, retention_days=180, now=NOW)
    assert empty.rows == 0 and empty.by_repository == {}
    store.insert_predictions([log_row(ago(40), "old"), log_row(ago(1), "new")])
    volume = count_volume(store.engine, None, retention_days=30, now=NOW)
    assert set(volume.by_repository) == {"new"}
