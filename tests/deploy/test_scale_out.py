"""Scale-out: two real `commitrisk serve` replicas (2 uvicorn workers each) sharing one models directory and
one PostgreSQL database. A reload through one converges on all; the scheduled monitoring job runs on exactly
one worker of one replica (app/leader.py's advisory lock); both replicas answer /monitoring/drift alike."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.contract import FEATURES, REFERENCE_FILE
from app.monitoring.store import Store
from bench.replicas import converged, cycles, ready_version, wait_for
from tests.support import ADMIN_TOKEN, POSTGRES_URL, ROOT, build_model_version, free_port, stop_group, synthetic_commits

pytestmark = pytest.mark.slow

WORKERS = 2
REPLICAS = 2
PRELOGGED = 100
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def schema_url() -> Iterator[tuple[str, str]]:
    """The test PostgreSQL with a fresh schema first on the search_path (dropped afterwards)."""
    schema = f"scale_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """Versions 1 (champion) and 2, each with its drift reference (the even synthetic rows; traffic is odd ones)."""
    directory = tmp_path / "models"
    reference = synthetic_commits()[list(FEATURES)].iloc[::2]
    for version, strength in ((1, 1.0), (2, 0.001)):
        reference.to_parquet(build_model_version(directory, version, strength=strength, point=False) / REFERENCE_FILE)
    (directory / "champion").write_text("1\n")
    return directory


@pytest.fixture
def history(schema_url: tuple[str, str]) -> int:
    """Earlier traffic already in the shared log, so the first scheduled run has a window however slow start-up is."""
    rows = [
        {"time": time.time() - 3600 + i, "request_id": None, "commit_id": f"old-{i}", "repository": "alpha",
         **row, "probability": 0.2, "label": False, "risk_band": "low", "model_version": 1,
         "shadow_version": None, "shadow_probability": None}
        for i, row in enumerate(commits(PRELOGGED, 1000))
    ]  # fmt: skip
    store = Store.open(schema_url[0])
    store.insert_predictions(rows)
    store.close()
    return len(rows)


@pytest.fixture
def replicas(models: Path, schema_url: tuple[str, str], history: int, tmp_path: Path) -> Iterator[list[str]]:
    """REPLICAS `commitrisk serve --workers WORKERS` processes, started together; their base URLs."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {
        "COMMITRISK_DATABASE_URL": schema_url[0],
        "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
        "COMMITRISK_POINTER_POLL_SECONDS": "0.2",
        # One scheduled cycle per worker in this test: the first comes 30 s after start, the next in an hour.
        "COMMITRISK_DRIFT_INTERVAL_SECONDS": "3600",
        "COMMITRISK_DRIFT_MIN_ROWS": "20",
        "COMMITRISK_LOG_FLUSH_SECONDS": "0.1",
    }
    commitrisk = Path(sys.executable).with_name("commitrisk")
    command = [str(commitrisk)] if commitrisk.exists() else [sys.executable, "-m", "training"]
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(REPLICAS):
            port = free_port()
            log = open(tmp_path / f"replica-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
            serve = [*command, "serve", "--models", str(models), "--port", str(port), "--workers", str(WORKERS)]
            options: dict[str, Any] = {"cwd": ROOT, "env": env, "stdout": log, "stderr": subprocess.STDOUT}
            processes.append(subprocess.Popen(serve, start_new_session=True, **options))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_for(lambda u=url, p=process: p.poll() is None and ready_version(u) == 1, f"{url} ready", 120)
        yield urls
    finally:
        for process in processes:
            stop_group(process)


def commits(rows: int, offset: int) -> list[dict[str, float]]:
    """`rows` request bodies from the synthetic rows the drift reference left out."""
    frame = synthetic_commits()[list(FEATURES)].iloc[1::2].iloc[offset : offset + rows]
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_replicas_share_models_and_monitoring(replicas: list[str], models: Path, schema_url: tuple[str, str]) -> None:
    first, second = replicas
    # Traffic through both replicas lands in the one prediction log (the drift window).
    for i, url in enumerate(replicas):
        answer = httpx.post(f"{url}/predict/batch?explain=false", json={"commits": commits(60, 60 * i)}, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 60

    # A reload through one replica moves the shared pointer; every worker of every replica follows it.
    assert httpx.post(f"{first}/reload", json={"version": 2}, timeout=60).status_code == 401
    moved = httpx.post(f"{first}/reload", json={"version": 2}, headers=ADMIN, timeout=60)
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 2
    assert (models / "champion").read_text().strip() == "2"
    wait_for(lambda: converged(replicas, 2), "both replicas on version 2", 60)

    # A bad reload through the other replica changes nothing anywhere.
    missing = httpx.post(f"{second}/reload", json={"version": 99}, headers=ADMIN, timeout=60)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "ModelNotFound"
    assert (models / "champion").read_text().strip() == "2"
    assert converged(replicas, 2)

    # Each of the 4 workers reaches its scheduled cycle; exactly one runs the job, the others find it held
    # or fresh and only read the stored result.
    wait_for(lambda: sum(sum(cycles(u).values()) for u in replicas) == REPLICAS * WORKERS, "every worker's cycle")
    per_replica = [cycles(url) for url in replicas]
    assert sum(c["ran"] for c in per_replica) == 1, per_replica
    assert sum(c["skipped"] for c in per_replica) == REPLICAS * WORKERS - 1, per_replica

    engine = create_engine(schema_url[0])
    with engine.connect() as conn:
        reports = conn.execute(text("SELECT status FROM drift_reports")).scalars().all()
        performance = conn.execute(text("SELECT count(*) FROM summaries WHERE kind = 'performance'")).scalar()
        logged = conn.execute(text("SELECT count(*) FROM predictions")).scalar()
    engine.dispose()
    assert reports == ["ok"] and performance == 1
    assert logged == PRELOGGED + 120  # both replicas' traffic in the one log

    # Both replicas serve the one stored result.
    answers = [httpx.get(f"{url}/monitoring/drift", timeout=10) for url in replicas]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["window"]["rows"] >= PRELOGGED
