"""Tally: pending updates reach prometheus-client exactly as direct calls would, from any thread, by any trigger."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.tally import FLUSH_SECONDS, MAX_PENDING, FlushOnCollect, Tally, adder

REPO = Path(__file__).resolve().parents[2]
BUCKETS = (0.001, 0.01, 0.1, 1.0)
# Edges on purpose: on a bound, between bounds, below the first, above the last, zero, negative, +Inf.
VALUES = (0.001, 0.0005, 0.01, 0.05, 0.1, 1.0, 1.5, 0.0, -2.0, math.inf, 0.3, 0.001)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample but the creation times (they differ between two registries by construction)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def metrics_of(registry: CollectorRegistry) -> tuple[Counter, Gauge, Histogram]:
    return (
        Counter("c", "c", ["k"], registry=registry),
        Gauge("g", "g", registry=registry),
        Histogram("h", "h", ["k"], buckets=BUCKETS, registry=registry),
    )


def test_flushed_updates_equal_direct_calls() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    tally = Tally()
    FlushOnCollect(tally, tallied)
    (dc, dg, dh), (tc, tg, th) = metrics_of(direct), metrics_of(tallied)
    for i, value in enumerate(VALUES):
        key = "a" if i % 3 else "b"
        dc.labels(key).inc(i)
        tally.add(tc.labels(key), i)
        dh.labels(key).observe(value)
        tally.observe(th.labels(key), value)
        dg.inc(value if math.isfinite(value) else 1)
        tally.add(tg, value if math.isfinite(value) else 1)
    dg.dec(3)
    tally.add(tg, -3)
    assert samples(tallied) == samples(direct)
    assert samples(direct)[("h_count", (("k", "a"),))] == 8  # the check above compared something


def test_nan_counts_in_the_sum_only_as_prometheus_client_does() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    tally = Tally()
    FlushOnCollect(tally, tallied)
    d = Histogram("h", "h", buckets=BUCKETS, registry=direct)
    t = Histogram("h", "h", buckets=BUCKETS, registry=tallied)
    d.observe(math.nan)
    tally.observe(t, math.nan)
    tally.observe(t, 0.5)
    d.observe(0.5)
    got, want = samples(tallied), samples(direct)
    assert math.isnan(got.pop(("h_sum", ()))) and math.isnan(want.pop(("h_sum", ())))
    assert got == want


def test_nothing_reaches_the_child_before_a_flush() -> None:
    registry = CollectorRegistry()
    tally = Tally()
    counter = Counter("c", "c", registry=registry)
    tally.add(counter, 2)
    assert counter._value.get() == 0  # pending: the hot path wrote no value
    tally.flush()
    assert counter._value.get() == 2
    tally.flush()  # nothing pending: nothing added twice
    assert counter._value.get() == 2


def test_without_a_flushing_thread_the_caller_flushes_once_too_much_is_pending() -> None:
    registry = CollectorRegistry()
    tally = Tally()
    counter = Counter("c", "c", registry=registry)
    histogram = Histogram("h", "h", buckets=BUCKETS, registry=registry)
    for _ in range(MAX_PENDING + 1):
        tally.add(counter)
        tally.observe(histogram, 0.5)
    assert counter._value.get() == MAX_PENDING + 1  # memory stays bounded: nothing is held past the limit
    assert histogram._sum.get() == MAX_PENDING * 0.5  # flushed with the counter; the last one is still pending


def test_collecting_the_registry_flushes_first() -> None:
    registry = CollectorRegistry()
    tally = Tally()
    FlushOnCollect(tally, registry)
    counter = Counter("c", "c", registry=registry)
    tally.add(counter, 5)
    assert registry.get_sample_value("c_total") == 5


def test_updates_from_many_threads_are_all_counted() -> None:
    registry = CollectorRegistry()
    tally = Tally()
    FlushOnCollect(tally, registry)
    counter = Counter("c", "c", registry=registry)
    histogram = Histogram("h", "h", buckets=BUCKETS, registry=registry)

    def work() -> None:
        for i in range(5_000):
            tally.add(counter)
            tally.observe(histogram, 0.05)
            if i % 500 == 0:
                tally.flush()  # flushes racing the updates lose nothing either

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert registry.get_sample_value("c_total") == 20_000
    assert registry.get_sample_value("h_bucket", {"le": "0.1"}) == 20_000
    assert registry.get_sample_value("h_sum") == pytest.approx(1_000.0)


def test_the_thread_flushes_without_being_asked_and_stop_flushes_the_rest() -> None:
    registry = CollectorRegistry()
    tally = Tally()
    counter = Counter("c", "c", registry=registry)  # no FlushOnCollect: only the thread can flush
    tally.start()
    try:
        tally.add(counter, 3)
        deadline = time.monotonic() + 10
        while counter._value.get() != 3 and time.monotonic() < deadline:
            time.sleep(FLUSH_SECONDS / 4)
        assert counter._value.get() == 3
    finally:
        tally.add(counter, 4)
        tally.stop()
    assert counter._value.get() == 7
    assert not any(t.name == "metrics-tally" and t.is_alive() for t in threading.enumerate())
    tally.start()  # startable again (an app's lifespan can run twice in tests)
    tally.add(counter)
    tally.stop()
    assert counter._value.get() == 8


CHILD = """
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from app.tally import Tally
registry = CollectorRegistry()
counter = Counter("c", "c", registry=registry)
live = Gauge("g", "g", registry=registry, multiprocess_mode="livesum")
histogram = Histogram("h", "h", buckets=(0.1, 1.0), registry=registry)
tally = Tally()
for value in (0.05, 0.5, 5.0):
    tally.add(counter)
    tally.observe(histogram, value)
tally.add(live, 2)
tally.add(live, -1)
if sys.argv[1] == "flush":
    tally.flush()
print("done", flush=True)
"""


@pytest.mark.parametrize("flushed", [True, False])
def test_in_multiprocess_mode_flushed_counts_reach_the_files_of_the_process(tmp_path: Path, flushed: bool) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    how = "flush" if flushed else "none"
    subprocess.run([sys.executable, "-c", CHILD, how], env=env, cwd=REPO, check=True, capture_output=True)
    merged = subprocess.run(
        [sys.executable, "-c", "from prometheus_client import CollectorRegistry, generate_latest, multiprocess;"
         "r = CollectorRegistry(); multiprocess.MultiProcessCollector(r); print(generate_latest(r).decode())"],
        env=env, cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    if flushed:
        assert "c_total 3.0" in merged
        assert 'h_bucket{le="0.1"} 1.0' in merged and 'h_bucket{le="1.0"} 2.0' in merged
        assert 'h_bucket{le="+Inf"} 3.0' in merged and "h_sum 5.55" in merged
        assert "g 1.0" in merged
    else:  # nothing flushed, nothing written: the files hold zeros (what a SIGKILL within FLUSH_SECONDS loses)
        assert "c_total 0.0" in merged and "h_count 0.0" in merged


def test_an_adder_writes_at_once_what_inc_would() -> None:
    direct, added = CollectorRegistry(), CollectorRegistry()
    (dc, dg, _), (ac, ag, _) = metrics_of(direct), metrics_of(added)
    add_counter, add_gauge = adder(ac.labels("a")), adder(ag)
    for amount in (1.0, 2.5, 0.0):
        dc.labels("a").inc(amount)
        add_counter(amount)
        dg.inc(amount)
        add_gauge(amount)
    dg.dec(4.0)
    add_gauge(-4.0)
    assert samples(added) == samples(direct)  # no tally, no flush: the values are there already
    with pytest.raises(ValueError):  # what `inc` refuses is refused when the adder is made
        adder(ac)  # a labelled family's parent, not a child
    with pytest.raises(RuntimeError):
        adder(Gauge("m", "m", registry=added, multiprocess_mode="mostrecent"))
