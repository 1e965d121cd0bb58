"""`commitrisk replay`: time order, labels only once mature, and the effect on a real service's store."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.main import create_app
from app.monitoring.store import Store
from app.settings import Settings
from tests.support import ADMIN_TOKEN, build_model_version
from training.cli import cli
from training.clients.feedback import FeedbackError
from training.clients.replay import DAY, events, load_commits, replay


def subset(source: Path, target: Path, rows: int) -> Path:
    with source.open(newline="") as f:
        reader = csv.DictReader(f)
        kept = [row for _, row in zip(range(rows), reader, strict=False)]
        fields = reader.fieldnames
    assert fields is not None
    with target.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return target


def test_events_are_time_ordered_and_labels_wait_for_the_delay(shared_commits_dir: Path) -> None:
    commits = load_commits(shared_commits_dir / "YCSB.csv")
    assert [c.time for c in commits] == sorted(c.time for c in commits)
    seen: set[str] = set()
    last = -1.0
    labels = 0
    for at, kind, commit in events(commits, label_delay_days=90):
        assert at >= last
        last = at
        if kind == "predict":
            seen.add(commit.label["commit_id"])
        else:
            labels += 1
            assert commit.label["commit_id"] in seen and at == commit.time + 90 * DAY
    # Only labels that matured before the last commit are sent; the newest 90 days stay unknown.
    newest = commits[-1].time
    assert labels == sum(c.time + 90 * DAY <= newest for c in commits)


def test_bad_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("commit_id,buggy,author_date\nabc,true,1\n")
    with pytest.raises(FeedbackError, match="missing column 'ns'"):
        load_commits(path)


def test_replay_fills_log_and_labels(tmp_path: Path, shared_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    settings = Settings(
        models_dir=tmp_path / "models",
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        admin_token=ADMIN_TOKEN,
        log_flush_seconds=0.05,
    )
    commits = load_commits(subset(shared_commits_dir / "jedis.csv", tmp_path / "jedis.csv", 300))
    steps: list[int] = []
    with TestClient(create_app(settings)) as client:
        summary = replay(client, commits, label_delay_days=30, token=ADMIN_TOKEN, on_step=steps.append)
        # The prediction log is write-behind: the view catches up once the writer drains the queue.
        deadline = time.monotonic() + 30
        while True:
            performance = client.get("/monitoring/performance").json()
            if performance["labelled_rows"] == summary.labels_sent or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert summary.predicted == 300 and summary.rejected == 0 and len(steps) == 300
    assert summary.labels_sent > 0 and summary.labels_sent + summary.labels_pending == 300
    store = Store.open(settings.database_url)
    labelled, _ = store.labelled_window()
    assert store.count_predictions() == 300 and labelled.rows == summary.labels_sent
    store.close()
    assert performance["labelled_rows"] == summary.labels_sent


def test_replay_without_token_stops_with_an_error(tmp_path: Path, shared_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    settings = Settings(models_dir=tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'm.db'}")
    commits = load_commits(subset(shared_commits_dir / "jedis.csv", tmp_path / "jedis.csv", 200))
    with TestClient(create_app(settings)) as client, pytest.raises(FeedbackError, match="401"):
        replay(client, commits, label_delay_days=1)


@pytest.mark.slow
def test_cli_replays_against_a_real_uvicorn(tmp_path: Path, shared_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {
        "COMMITRISK_MODELS_DIR": str(tmp_path / "models"),
        "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        data = subset(shared_commits_dir / "HikariCP.csv", tmp_path / "h.csv", 120)
        result = CliRunner().invoke(
            cli,
            ["replay", str(data), "--url", url, "--label-delay-days", "7", "--no-progress"],
            env={"COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        assert result.exit_code == 0, result.stderr
        assert "120 predicted, 0 rejected" in result.stdout
        # --speed paces by dataset time: a huge speed is still fast, and still complete.
        fast = CliRunner().invoke(
            cli,
            ["replay", str(data), "--url", url, "--speed", "1e12", "--no-progress", "--token", ADMIN_TOKEN],
        )
        assert fast.exit_code == 0 and "120 predicted" in fast.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    assert store.count_predictions() == 240  # the shutdown flushed the log
    store.close()
