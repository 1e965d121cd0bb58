"""job_lock: one holder at a time across processes, on real PostgreSQL and SQLite; released on exit or death."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine

from app.monitoring.leader import advisory_key, job_lock
from tests.support import ROOT, Database

HOLD = """
import sys, time
from sqlalchemy import create_engine
from app.monitoring.leader import job_lock
engine = create_engine(sys.argv[1])
with job_lock(engine, sys.argv[2]) as held:
    print("held" if held else "busy", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def holder(url: str, name: str, seconds: float) -> subprocess.Popen[str]:
    """Another process holding `name` for `seconds` (it prints 'held' once it has the lock)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, name, str(seconds)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_keys_are_stable_and_distinct() -> None:
    assert advisory_key("commitrisk-monitoring-job") == advisory_key("commitrisk-monitoring-job")
    assert advisory_key("a") != advisory_key("b")
    assert -(2**63) <= advisory_key("x") < 2**63


def test_one_holder_across_processes(database: Database) -> None:
    engine = create_engine(database.url)
    name = f"test-{database.schema or 'sqlite'}-{os.getpid()}"
    proc = holder(database.url, name, 30)
    try:
        with job_lock(engine, name) as held:
            assert held is False  # another process holds it: no wait by default
        with job_lock(engine, f"{name}-other") as held:
            assert held is True  # another name is another lock
    finally:
        proc.kill()  # a dying holder releases the lock (the connection or descriptor closes)
        proc.wait()
    with job_lock(engine, name, timeout=10) as held:
        assert held is True
    engine.dispose()


def test_waits_for_the_holder_up_to_the_timeout(database: Database) -> None:
    engine = create_engine(database.url)
    name = f"wait-{database.schema or 'sqlite'}-{os.getpid()}"
    proc = holder(database.url, name, 1.5)
    try:
        with job_lock(engine, name, timeout=30) as held:
            assert held is True  # acquired once the holder let go, before the timeout
    finally:
        proc.kill()
        proc.wait()
    engine.dispose()


def test_stop_event_ends_the_wait(database: Database) -> None:
    engine = create_engine(database.url)
    name = f"stop-{database.schema or 'sqlite'}-{os.getpid()}"
    proc = holder(database.url, name, 60)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    try:
        with job_lock(engine, name, timeout=60, stop=stop) as held:
            assert held is False
        assert time.monotonic() - started < 30  # ended by the event, not by the 60 s timeout
    finally:
        proc.kill()
        proc.wait()
    engine.dispose()


def test_released_after_the_block_and_after_an_exception(database: Database) -> None:
    engine = create_engine(database.url)
    name = f"release-{database.schema or 'sqlite'}-{os.getpid()}"
    with pytest.raises(RuntimeError), job_lock(engine, name) as held:
        assert held
        raise RuntimeError("job failed")
    proc = holder(database.url, name, 0)  # asserts the other process gets it at once
    proc.wait()
    engine.dispose()


def test_in_memory_sqlite_needs_no_lock() -> None:
    with job_lock(create_engine("sqlite://"), "x") as held:
        assert held is True
