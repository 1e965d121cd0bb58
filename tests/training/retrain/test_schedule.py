"""The trainer loop: period parsing, jitter bounds, stop between runs, and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import ROOT
from training.retrain.schedule import jittered, parse_every, run_every


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("6h", 21600), ("1d", 86400), ("1.5d", 129600)]
)
def test_parse_every(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "d", "1w", "-1d", "0s", "0.5s"])
def test_parse_every_refuses_bad_periods(text: str) -> None:
    with pytest.raises(ValueError):
        parse_every(text)


def test_jitter_stays_within_its_fraction() -> None:
    rng = random.Random(0)
    waits = [jittered(100.0, 0.1, rng) for _ in range(1000)]
    assert 90.0 <= min(waits) < 95.0 and 105.0 < max(waits) <= 110.0
    with pytest.raises(ValueError):
        jittered(100.0, 1.0, rng)


def test_run_every_runs_until_stopped_and_survives_a_failed_run() -> None:
    stop = threading.Event()
    calls: list[int] = []
    messages: list[str] = []

    def once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")
        if len(calls) == 3:
            stop.set()

    runs = run_every(0.001, once, stop, jitter=0.0, log=messages.append, seed=0)
    assert runs == 3 and len(calls) == 3
    assert any("database down" in m for m in messages) and "stopped after 3" in messages[-1]


def test_sigterm_stops_the_trainer_loop_cleanly(tmp_path: Path) -> None:
    models = tmp_path / "models"
    cmd = [sys.executable, "-m", "training", "retrain", "--models", str(models), "--dry-run", "--every", "1d"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # The loop prints its decision, then waits a day: signal it once the first decision is out.
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "would_retrain" in first and time.monotonic() < deadline
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "received SIGTERM" in err and "stopped after 1 run" in err
