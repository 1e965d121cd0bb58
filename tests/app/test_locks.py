"""app.locks: one holder at a time across real processes, for the flock and the PostgreSQL advisory lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app.locks import advisory_key, advisory_lock, file_lock, lock_note
from tests.support import ROOT, Database

# Another process takes a lock, says "held" (or "busy"), keeps it for argv[3] seconds, says "releasing", exits.
HOLD = """
import sys, time
from pathlib import Path
from sqlalchemy import create_engine
from app.locks import advisory_lock, file_lock
kind, target, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if kind == "file":
    lock = file_lock(Path(target), timeout=0, note=f"pid {__import__('os').getpid()}")
else:
    lock = advisory_lock(create_engine(target), int(sys.argv[4]), timeout=0)
with lock as held:
    print("held" if held else "busy", flush=True)
    time.sleep(seconds)
    print("releasing", flush=True)
"""


def holder(kind: str, target: str | Path, seconds: float, *extra: str) -> subprocess.Popen[str]:
    """Another process holding the lock for `seconds` (returns once it reported holding it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, kind, str(target), str(seconds), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def released(proc: subprocess.Popen[str]) -> bool:
    """True when the holder has said it is letting go (it says so just before leaving its block)."""
    assert proc.stdout is not None
    return proc.stdout.readline().strip() == "releasing"


def finish(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


def test_a_file_lock_excludes_another_process_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    proc = holder("file", path, 30)
    try:
        with file_lock(path, timeout=0) as held:
            assert held is False  # one try, no wait
        assert lock_note(path) == f"pid {proc.pid}"  # the holder names itself for the refusal message
        with file_lock(tmp_path / "other.lock", timeout=0) as held:
            assert held is True  # another file is another lock
    finally:
        finish(proc)  # SIGKILL: the kernel releases the lock with the descriptor
    with file_lock(path, timeout=0) as held:
        assert held is True


def test_a_file_lock_waits_for_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    proc = holder("file", path, 1.0)
    try:
        with file_lock(path) as held:  # no timeout: a blocking wait
            assert held is True and released(proc)  # only once the holder let go
    finally:
        finish(proc)
    proc = holder("file", path, 1.0)
    try:
        with file_lock(path, timeout=30) as held:
            assert held is True and released(proc)  # polled until the holder let go, before the timeout
    finally:
        finish(proc)


def test_a_stop_event_or_a_timeout_ends_the_wait(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    proc = holder("file", path, 60)
    try:
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with file_lock(path, timeout=None, stop=stop) as held:  # wait forever, unless stopped
            assert held is False
        assert time.monotonic() - started < 30
        with file_lock(path, timeout=0.5) as held:
            assert held is False
    finally:
        finish(proc)


def test_a_file_lock_is_released_after_an_exception_and_notes_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with pytest.raises(RuntimeError), file_lock(path, timeout=0, note="pid 1 (test)") as held:
        assert held and lock_note(path) == "pid 1 (test)"
        raise RuntimeError("body failed")
    holder("file", path, 0).wait()  # another process gets it at once
    assert lock_note(tmp_path / "absent.lock") == ""


def test_a_file_lock_in_a_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), file_lock(tmp_path / "missing" / "x.lock"):
        pass


def test_advisory_keys_are_stable_and_distinct() -> None:
    assert advisory_key("commitrisk-monitoring-job") == advisory_key("commitrisk-monitoring-job")
    assert advisory_key("a") != advisory_key("b")
    assert -(2**63) <= advisory_key("x") < 2**63
    code = "from app.locks import advisory_key; print(advisory_key('a'))"
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert int(other.stdout) == advisory_key("a")  # the same in another process (no salted hash)


def test_advisory_lock_across_processes(database: Database) -> None:
    engine = create_engine(database.url)
    key = advisory_key(f"test-{uuid.uuid4()}")
    try:
        if engine.dialect.name != "postgresql":
            with pytest.raises(ValueError, match="need PostgreSQL, not sqlite"), advisory_lock(engine, key):
                pass
            return
        proc = holder("advisory", database.url, 30, str(key))
        try:
            with advisory_lock(engine, key) as held:
                assert held is False
            with advisory_lock(engine, key + 1) as held:
                assert held is True
            stop = threading.Event()
            threading.Timer(0.3, stop.set).start()
            with advisory_lock(engine, key, timeout=None, stop=stop) as held:
                assert held is False
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # a dead holder's connection closes: PostgreSQL releases the lock
            proc.wait()
        with advisory_lock(engine, key, timeout=30) as held:
            assert held is True
        proc = holder("advisory", database.url, 1.0, str(key))
        try:
            with advisory_lock(engine, key, timeout=30) as held:
                assert held is True and released(proc)  # waited for the holder to finish
        finally:
            finish(proc)
        with pytest.raises(RuntimeError), advisory_lock(engine, key) as held:
            assert held
            raise RuntimeError("body failed")
        holder("advisory", database.url, 0, str(key)).wait()  # released after the exception
    finally:
        engine.dispose()
