"""`commitrisk serve`, `start` and `monitor` as real processes: they serve, and bad input stops them on one line.

Each runs in a subprocess: serving sets `COMMITRISK_MODELS_DIR` in its own environment, which must not leak into
other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ADMIN_TOKEN, ROOT, build_model_version, free_port, stop_group, wait_for

CLI = [sys.executable, "-m", "training"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMITRISK_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env | {"COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN} | extra


def run(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=environment(**env),
                          timeout=300)  # fmt: skip


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts in their own group; stopped (SIGTERM, then SIGKILL) afterwards."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        stop_group(process, timeout=15)


def launch(started: list[subprocess.Popen[bytes]], log: Path, *args: str | Path, **env: str) -> str:
    """Start a serving command on a free port; its base URL."""
    port = free_port()
    handle = log.open("wb")
    started.append(subprocess.Popen([*CLI, *map(str, args), "--port", str(port)], cwd=ROOT, env=environment(**env),
                                    stdout=handle, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
    handle.close()
    return f"http://127.0.0.1:{port}"


def ready(url: str) -> bool:
    return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200


def test_serve_answers_with_the_champion(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    models = tmp_path / "models"
    build_model_version(models, 3)
    url = launch(started, tmp_path / "serve.log", "serve", "--models", models,
                 COMMITRISK_DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}")  # fmt: skip
    wait_for(lambda: ready(url), "the service to be ready", 90)
    assert httpx.get(f"{url}/health/ready").json()["model_version"] == 3


def test_serve_refuses_a_missing_models_directory(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    done = run("serve", "--models", missing, "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {missing}: models directory does not exist (train one with `commitrisk train --models {missing}`)\n"
    )


def test_serve_names_a_bad_setting_before_starting(tmp_path: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    done = run("serve", "--models", tmp_path / "models", "--port", str(free_port()), COMMITRISK_LOG_FLUSH_SECONDS="-1")
    assert done.returncode == 2
    assert done.stderr.startswith("error: COMMITRISK_LOG_FLUSH_SECONDS: ") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(("option", "value"), [("--port", "0"), ("--port", "70000"), ("--workers", "0")])
def test_serve_checks_port_and_workers(tmp_path: Path, option: str, value: str) -> None:
    done = run("serve", "--models", tmp_path, option, value)
    assert done.returncode == 2 and option in done.stderr


def test_start_serves_an_existing_champion_without_training(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    models = tmp_path / "models"
    build_model_version(models, 1)
    log = tmp_path / "start.log"
    url = launch(started, log, "start", "--models", models, COMMITRISK_DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}")
    wait_for(lambda: ready(url), "the service to be ready", 90)
    assert sorted(p.name for p in models.iterdir() if p.name.isdigit()) == ["1"]  # nothing was trained
    assert "published version" not in log.read_text()


def test_start_refuses_an_unreadable_champion_pointer(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "champion").write_text("not a version\n")
    done = run("start", "--models", models, "--port", str(free_port()))
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "champion" in done.stderr


@pytest.mark.slow
def test_start_trains_on_the_embedded_data_first(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    models = tmp_path / "models"
    log = tmp_path / "start.log"
    url = launch(started, log, "start", "--models", models, "--budget", "1",
                 COMMITRISK_DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}")  # fmt: skip
    wait_for(lambda: ready(url), "training then serving", 600)
    assert (models / "champion").read_text().strip() == "1"
    assert "published version 1" in log.read_text()


def test_monitor_runs_the_drift_job_once(tmp_path: Path) -> None:
    pytest.importorskip("evidently")
    build_model_version(tmp_path / "models", 1)
    done = run("monitor", "--models", tmp_path / "models", "--once",
               COMMITRISK_DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "monitoring job: drift" in done.stderr  # the job's log line (no predictions yet: not enough data)


def test_monitor_names_a_bad_setting(tmp_path: Path) -> None:
    done = run("monitor", "--models", tmp_path, "--once", COMMITRISK_DRIFT_MIN_ROWS="0")
    assert done.returncode == 2
    assert done.stderr.startswith("error: COMMITRISK_DRIFT_MIN_ROWS: ") and done.stderr.count("\n") == 1
