"""`commitrisk retrain` as a command: one decision printed as text or JSON, its exit code, and bad options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, build_model_version

CLI = [sys.executable, "-m", "training", "retrain"]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    build_model_version(tmp_path / "models", 1)
    return tmp_path / "models"


def retrain(models: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"COMMITRISK_DATABASE_URL": f"sqlite:///{models.parent / 'monitor.db'}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([*CLI, "--models", str(models), *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)  # fmt: skip


def test_a_forced_dry_run_explains_as_json_and_trains_nothing(models: Path, synthetic_commits_dir: Path) -> None:
    done = retrain(models, "--data", synthetic_commits_dir, "--dry-run", "--force", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert (record["action"], record["fired"], record["dry_run"]) == ("would_retrain", ["on_demand"], True)
    assert [t["name"] for t in record["triggers"]] == ["interval", "performance", "drift", "on_demand"]
    assert isinstance(record["audit_id"], int)  # audited in the database given by COMMITRISK_DATABASE_URL
    assert sorted(p.name for p in models.iterdir() if p.name.isdigit()) == ["1"]


def test_the_text_output_lists_each_trigger(models: Path) -> None:
    done = retrain(models, "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "action: none — no trigger fired" in lines[0]
    assert [line.split()[0] for line in lines[1:5]] == ["interval", "performance", "drift", "on_demand"]
    assert lines[-1].startswith("  versions: champion 1, challenger None; deployed: None; audit id ")
    assert "trigger on_demand: quiet" in done.stderr  # progress on stderr, the record on stdout


def test_no_training_data_is_refused_with_exit_3(models: Path) -> None:
    done = retrain(models, "--force", "--json")
    assert done.returncode == 3
    record = json.loads(done.stdout)
    assert record["action"] == "refused" and "no training data" in record["reason"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--every", "1w"], "error: option --every: '1w' is not a period like 90s, 15m, 6h or 1d\n"),
     (["--window-days", "10", "--window-rows", "5"], "error: options: window_days and window_rows exclude each other"),
     (["--min-delta", "2"], "--min-delta"),
     (["--window", "weekly"], "--window"),
     (["--level", "everything"], "--level")],
)  # fmt: skip
def test_bad_options_exit_2_before_deciding_anything(models: Path, args: list[str], expected: str) -> None:
    done = retrain(models, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert expected in done.stderr
    assert not (models.parent / "monitor.db").exists()  # nothing was decided, so nothing audited
