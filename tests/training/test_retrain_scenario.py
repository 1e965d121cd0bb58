"""The continuous-training story on real data, against a real service (uvicorn) and a real database.

A champion learns from the older half of HikariCP. Its newer half is replayed into the prediction log with
labels (performance decays → a challenger is promoted and the service reloads it), then the stream switches
to guice (every feature drifts → the drift trigger alone fires; the challenger trained on the chosen window
does not beat the champion on the recent period, so it stays unpromoted). Every step leaves an audit record.

Dataset facts this relies on: HikariCP's own evolution drifts 12–14 of the 15 features (cumulative metrics
such as exp, nuc and rexp grow with a project's age), so the drift threshold is "all features" (0.95); only
the switch to another project drifts every one of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES
from app.monitoring.store import Store
from app.repository import ModelRepository
from tests.support import ADMIN_TOKEN
from training import assessment, data, export, pipeline
from training.config import TrainConfig
from training.retrain import decision
from training.retrain.policy import RetrainPolicy

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DAY = 86_400.0
pytestmark = pytest.mark.slow


def replay(store: Store, models: Path, frame: pd.DataFrame, times: np.ndarray) -> None:
    """What the service logs for these commits (scored by the champion) plus their labels."""
    _, manifest, model_bytes = assessment.load_version(models, None)
    p = export.onnx_probabilities(model_bytes, data.features(frame))
    features: list[dict[str, Any]] = frame.loc[:, list(FEATURES)].astype(float).to_dict("records")  # type: ignore[assignment]
    rows = [
        {**f, "time": float(t), "request_id": None, "commit_id": c, "repository": r, "probability": float(pi),
         "label": bool(pi >= manifest.threshold), "risk_band": "low", "model_version": manifest.version}
        for f, t, c, r, pi in zip(features, times, frame["commit_id"], frame["repository"], p, strict=True)
    ]  # fmt: skip
    store.insert_predictions(rows)
    labels = [
        {"commit_id": c, "repository": r, "buggy": bool(b), "labeled_at": float(t)}
        for c, r, b, t in zip(frame["commit_id"], frame["repository"], frame["buggy"], times, strict=True)
    ]
    store.upsert_feedback(labels)


def drift_share(url: str) -> float:
    answer = httpx.post(f"{url}/monitoring/drift/refresh", headers=AUTH, timeout=300)
    assert answer.status_code == 200, answer.text
    return float(answer.json()["drift_share"])


def served_version(url: str) -> int:
    commit = {name: 1.0 for name in FEATURES} | {"commit_id": "probe"}
    answer = httpx.post(f"{url}/predict", json=commit, timeout=30)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["model_version"])


def check_blessing(record: dict[str, Any]) -> None:
    """Promotion happens exactly when the challenger beats the champion by min_delta on the recent period."""
    comparison = record["comparison"]
    assert comparison["blessed"] == (comparison["delta"] >= comparison["min_delta"])
    assert record["action"] == ("promoted" if comparison["blessed"] else "not_promoted")
    # The challenger never trained on the period it is judged on.
    assert record["window"]["end"] < comparison["period_start"]


def test_drift_retrain_promote_and_audit(tmp_path: Path, shared_commits_dir: Path, serve: Any) -> None:
    raw = pd.read_csv(shared_commits_dir / "HikariCP.csv", dtype={"commit_id": str}).sort_values("author_date")
    half = len(raw) // 2
    raw.iloc[:half].to_csv(tmp_path / "hikari-old.csv", index=False)
    models = tmp_path / "models"
    champion = TrainConfig(data=[tmp_path / "hikari-old.csv"], models_dir=models, budget=1,
                           families=("logistic_regression",), n_jobs=1)  # fmt: skip
    pipeline.run(champion, lambda _m: None)

    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    url = serve(models, COMMITRISK_DATABASE_URL=database, COMMITRISK_DRIFT_WINDOW_ROWS="400",
                COMMITRISK_DRIFT_MIN_ROWS="100", COMMITRISK_DRIFT_INTERVAL_SECONDS="86400")  # fmt: skip
    assert served_version(url) == 1
    store = Store.open(database)
    policy: dict[str, Any] = {
        "models_dir": models, "data": [tmp_path / "hikari-old.csv"], "database_url": database,
        "label_delay_days": 30.0, "max_age_days": None, "drift_threshold": 0.95, "budget": 1, "n_jobs": 1,
        "window": "dynamic", "candidate_days": (180.0, 365.0, 730.0, None), "level": "search",
        "deploy": "direct", "service_url": url, "token": ADMIN_TOKEN,
    }  # fmt: skip

    # 1. The newer half of the same project, at its real dates: performance decays, drift stays partial.
    hikari = data.load([shared_commits_dir / "HikariCP.csv"]).frame
    newer = hikari.iloc[half:]
    replay(store, models, newer, newer["author_date"].to_numpy(dtype=float))
    assert drift_share(url) < 0.95
    clock = float(newer["author_date"].max()) + DAY
    first = decision.run(RetrainPolicy(**policy, now=clock), lambda _m: None)
    assert first["fired"] == ["performance"], first["triggers"]
    check_blessing(first)
    assert first["action"] == "promoted" and first["challenger_version"] == 2
    assert first["deployment"]["reload"]["version"] == 2  # the service reloaded on the trainer's call
    assert served_version(url) == 2 and ModelRepository(models).pointer() == 2

    # 2. The stream switches to guice, one commit every 12 hours after the last HikariCP commit.
    guice = data.load([shared_commits_dir / "guice.csv"]).frame
    times = clock + np.arange(len(guice)) * DAY / 2
    replay(store, models, guice, times)
    assert drift_share(url) >= 0.95
    second = decision.run(RetrainPolicy(**policy, now=float(times[-1]) + DAY), lambda _m: None)
    assert second["fired"] == ["drift"], second["triggers"]
    drift = next(t for t in second["triggers"] if t["name"] == "drift")
    assert drift["value"] >= drift["threshold"] == 0.95
    assert second["window"]["strategy"] == "dynamic" and len(second["window"]["candidate_scores"]) == 4
    assert second["data"]["production_immature"] > 0  # the newest 30 days of labels are not trusted yet
    check_blessing(second)
    champion_now = 3 if second["action"] == "promoted" else 2
    assert ModelRepository(models).pointer() == champion_now and served_version(url) == champion_now
    assert second["challenger_version"] == 3 and 3 in ModelRepository(models).versions()

    # 3. An operator asks for a retrain through the service; the trainer's dry run picks the request up.
    request = httpx.post(f"{url}/retrain", headers=AUTH, json={"reason": "guice onboarded"}, timeout=30)
    assert request.status_code == 202
    third = decision.run(RetrainPolicy(**policy, now=float(times[-1]) + DAY, dry_run=True), lambda _m: None)
    assert "on_demand" in third["fired"] and third["action"] == "would_retrain"

    # 4. The audit trail explains every step, newest first, through the service.
    audit = httpx.get(f"{url}/retrain/audit", timeout=30).json()
    assert [r["action"] for r in audit["records"]] == ["would_retrain", second["action"], "promoted"]
    assert audit["pending_requests"] == [request.json()["id"]]  # a dry run leaves it for the real run
    for record in audit["records"]:
        assert {t["name"] for t in record["triggers"]} == {"interval", "performance", "drift", "on_demand"}
        assert all({"value", "threshold", "fired", "detail"} <= set(t) for t in record["triggers"])
    promoted = audit["records"][2]
    assert promoted["champion_version"] == 1 and promoted["challenger_version"] == 2
    assert "beats champion" in promoted["reason"]
    store.close()
