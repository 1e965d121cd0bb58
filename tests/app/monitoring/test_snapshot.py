"""Snapshot: the first reader waits, later readers get the cached value while one background refresh runs."""

from __future__ import annotations

import threading
import time

from app.monitoring.snapshot import Snapshot
from tests.support import wait_for


class Counter:
    """A computation that counts its calls and records the previous value it was given."""

    def __init__(self, fail_after: int | None = None, delay: float = 0.0) -> None:
        self.calls = 0
        self.previous: list[int | None] = []
        self.fail_after = fail_after
        self.delay = delay

    def __call__(self, previous: int | None) -> int:
        time.sleep(self.delay)
        self.previous.append(previous)
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("database went away")
        return self.calls


def test_the_first_reader_computes_and_later_ones_reuse_the_value() -> None:
    compute = Counter()
    snapshot = Snapshot("t", compute, max_age=60)
    first = snapshot.get()
    assert first.value == 1 and abs(first.as_of - time.time()) < 5
    assert snapshot.get() is first and compute.calls == 1


def test_a_stale_value_is_served_while_one_background_refresh_runs() -> None:
    compute = Counter(delay=0.2)
    snapshot = Snapshot("t", compute, max_age=10)
    first = snapshot.get()
    later = first.as_of + 11
    assert snapshot.get(now=later).value == 1  # stale, answered at once
    assert snapshot.get(now=later).value == 1  # a second stale read starts no second refresh
    wait_for(lambda: snapshot.get(now=first.as_of).value == 2, "the background refresh", 10)
    assert compute.calls == 2 and compute.previous == [None, 1]  # the refresh builds on the previous value


def test_a_failed_refresh_keeps_the_old_value_and_is_retried() -> None:
    compute = Counter(fail_after=1)
    snapshot = Snapshot("t", compute, max_age=10)
    first = snapshot.get()
    assert snapshot.get(now=first.as_of + 11).value == 1
    wait_for(lambda: compute.calls == 2, "the failed refresh", 10)
    wait_for(lambda: not snapshot._refreshing, "the refresh to finish", 10)
    assert snapshot.get(now=first.as_of + 11).value == 1
    wait_for(lambda: compute.calls == 3, "a retry", 10)


def test_max_age_zero_recomputes_on_every_read() -> None:
    compute = Counter()
    snapshot = Snapshot("t", compute, max_age=0)
    assert [snapshot.get().value for _ in range(3)] == [1, 2, 3]


def test_concurrent_first_readers_compute_once() -> None:
    compute = Counter(delay=0.2)
    snapshot = Snapshot("t", compute, max_age=60)
    values: list[int] = []
    threads = [threading.Thread(target=lambda: values.append(snapshot.get().value)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert values == [1, 1, 1, 1] and compute.calls == 1


def test_close_waits_for_the_running_refresh_and_starts_no_more() -> None:
    release = threading.Event()
    compute = Counter()
    snapshot = Snapshot("t", lambda previous: compute(previous) if compute.calls == 0 or release.wait(10) else 0, 10)
    first = snapshot.get()
    assert snapshot.get(now=first.as_of + 11).value == 1  # a background refresh starts, held by `release`
    closing = threading.Thread(target=snapshot.close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive()  # close() waits for the running refresh …
    release.set()
    closing.join(10)
    assert not closing.is_alive() and compute.calls == 2  # … which finished before close() returned
    assert snapshot.get(now=first.as_of + 99).value == 2  # stale, and no refresh starts any more
    time.sleep(0.2)
    assert compute.calls == 2
