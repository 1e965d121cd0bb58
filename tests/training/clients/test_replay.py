"""`commitrisk replay`: time order, labels only once mature, and the effect on a real service's store."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.monitoring.store import Store
from app.settings import Settings
from tests.support import ADMIN_TOKEN, build_model_version, free_port
from training.clients.feedback import FeedbackError
from training.clients.replay import DAY, events, load_commits, replay, run_replay


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


def test_events_are_time_ordered_and_labels_wait_for_the_delay(synthetic_commits_dir: Path) -> None:
    commits = load_commits(synthetic_commits_dir / "gamma.csv")
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
    assert 0 < labels == sum(c.time + 90 * DAY <= newest for c in commits) < len(commits)


def test_bad_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("commit_id,buggy,author_date\nabc,true,1\n")
    with pytest.raises(FeedbackError, match="missing column 'ns'"):
        load_commits(path)


def test_replay_fills_log_and_labels(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    settings = Settings(
        models_dir=tmp_path / "models",
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        admin_token=ADMIN_TOKEN,
        log_flush_seconds=0.05,
    )
    commits = load_commits(subset(synthetic_commits_dir / "alpha.csv", tmp_path / "alpha.csv", 300))
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


def test_replay_without_token_stops_with_an_error(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    settings = Settings(models_dir=tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'm.db'}")
    commits = load_commits(subset(synthetic_commits_dir / "alpha.csv", tmp_path / "alpha.csv", 200))
    with TestClient(create_app(settings)) as client, pytest.raises(FeedbackError, match="401"):
        replay(client, commits, label_delay_days=1)


def test_run_replay_names_an_unreachable_service(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    commits = load_commits(subset(synthetic_commits_dir / "alpha.csv", tmp_path / "alpha.csv", 5))
    nobody = f"http://127.0.0.1:{free_port()}"
    steps: list[int] = []
    with pytest.raises(FeedbackError, match=f"^{nobody}: "):
        run_replay(nobody, commits, token=ADMIN_TOKEN, on_step=steps.append, timeout=5)
    assert steps == []
