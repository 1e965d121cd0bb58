"""The trainer lock is exclusive across descriptors and processes, never waits, and is released on exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, Database
from training.retrain.lock import LockBusy, trainer_lock


def test_second_holder_is_refused_at_once_and_can_take_it_afterwards(tmp_path: Path) -> None:
    with trainer_lock(tmp_path), pytest.raises(LockBusy, match="pid"), trainer_lock(tmp_path):
        pass
    with trainer_lock(tmp_path):  # released
        pass


HOLD = """
import sys, time
from pathlib import Path
from training.retrain.lock import trainer_lock
with trainer_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_trainer_in_another_process_is_named_and_its_death_releases_the_lock(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=rf"\.retrain\.lock: held by pid {proc.pid}$"), trainer_lock(tmp_path):
            pass
    finally:
        proc.kill()  # SIGKILL: no cleanup runs, the kernel drops the flock with the process
        proc.wait()
    with trainer_lock(tmp_path):
        pass


def test_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), trainer_lock(tmp_path):
        raise RuntimeError("training failed")
    with trainer_lock(tmp_path):
        pass


def test_postgres_advisory_lock_excludes_a_trainer_on_another_models_dir(database: Database, tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(database.url)
    try:
        with trainer_lock(tmp_path / "a", engine):
            if engine.dialect.name == "postgresql":
                with pytest.raises(LockBusy, match="advisory"), trainer_lock(tmp_path / "b", engine):
                    pass
            else:  # SQLite has no shared lock: separate models dirs are independent
                with trainer_lock(tmp_path / "b", engine):
                    pass
        with trainer_lock(tmp_path / "b", engine):
            pass
    finally:
        engine.dispose()


def test_a_retrain_process_finding_the_lock_held_records_skipped(tmp_path: Path) -> None:
    models = tmp_path / "models"
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    cmd = [sys.executable, "-m", "training", "retrain", "--models", str(models), "--database-url", url]
    with trainer_lock(models):
        done = subprocess.run([*cmd, "--force", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["action"] == "skipped" and "another trainer" in record["reason"]
    assert record["audit_id"] >= 1 and not list(models.glob("[0-9]*"))
