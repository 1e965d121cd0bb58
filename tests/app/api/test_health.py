from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def test_live_and_ready_with_a_model(client: Any) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"status": "ready", "model_version": 1, "database": "up"}
    assert "commitrisk_database_up 1.0" in client.get("/metrics").text


def test_ready_and_scoring_without_its_database(models_dir: Path, tmp_path: Path, commit: dict[str, Any]) -> None:
    # A SQLite file in a directory that does not exist: the database is down, scoring is not.
    settings = Settings(models_dir=models_dir, database_url=f"sqlite:///{tmp_path / 'missing' / 'p.db'}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").json() == {"status": "ready", "model_version": 1, "database": "down"}
        assert client.post("/predict", json=commit).status_code == 200
        assert "commitrisk_database_up 0.0" in client.get("/metrics").text


def test_no_model_is_live_but_not_ready(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(models_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/p.db"))) as client:
        assert client.get("/health/live").status_code == 200
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "ModelNotReady"
        assert "no model version is published" in r.json()["error"]["message"]
        assert {"database": "up"} in r.json()["error"]["details"]


def test_becomes_ready_when_a_model_is_published(tmp_path: Path, model_store: Path) -> None:
    import shutil
    import time

    with TestClient(
        create_app(Settings(models_dir=tmp_path, pointer_poll_seconds=0.05, database_url=f"sqlite:///{tmp_path}/p.db"))
    ) as client:
        assert client.get("/health/ready").status_code == 503
        shutil.copytree(model_store / "1", tmp_path / "1")
        deadline = time.monotonic() + 10
        while client.get("/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health/ready").json()["model_version"] == 1


def test_metrics_exposes_this_apps_families(client: Any, commit: dict[str, Any]) -> None:
    assert client.post("/predict", json=commit).status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'commitrisk_predictions_total{model_version="1",' in r.text
    assert 'commitrisk_prediction_log_dropped_total{reason="refused"} 0.0' in r.text  # monitoring, same registry
    assert "commitrisk_shadow_failures_total 0.0" in r.text  # and the shadow's
    tags = {
        path: op["tags"] for path, item in client.get("/openapi.json").json()["paths"].items() for op in item.values()
    }
    assert tags["/metrics"] == ["monitoring"] and tags["/health/live"] == tags["/health/ready"] == ["health"]
