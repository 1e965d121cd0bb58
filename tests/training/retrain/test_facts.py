"""Facts of a decision, gathered from a real models directory and a real monitoring database (both engines)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.contract import FEATURES, MODEL_FILE
from app.monitoring import retrain_log
from app.monitoring.store import Store
from tests.support import Database
from training.retrain.facts import Facts, gather
from training.retrain.policy import RetrainPolicy

DAY = 86_400.0
NOW = 1_700_000_000.0


def _prediction(commit: str, age_days: float, la: float) -> dict[str, Any]:
    features = {name: 1.0 for name in FEATURES} | {"la": la}
    return {
        **features, "time": NOW - age_days * DAY, "request_id": None, "commit_id": commit, "repository": "repo",
        "probability": 0.5, "label": True, "risk_band": "medium", "model_version": 1,
    }  # fmt: skip


def test_without_a_database_only_the_champion_is_known(trained_models: Path) -> None:
    facts = gather(RetrainPolicy(models_dir=trained_models), None, time.time())
    assert facts.champion == 1 and facts.manifest is not None and facts.manifest.version == 1
    assert facts.model_bytes == (trained_models / "1" / MODEL_FILE).read_bytes()
    assert facts.production is None and facts.production_immature == 0
    assert facts.drift is None and facts.request_ids == []


def test_before_the_first_model_there_is_no_champion(tmp_path: Path) -> None:
    assert gather(RetrainPolicy(models_dir=tmp_path / "models"), None, NOW) == Facts()


def test_facts_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Facts().champion = 3  # type: ignore[misc]


def test_database_facts_are_mature_labels_the_champions_drift_and_pending_requests(
    database: Database, tmp_path: Path
) -> None:
    store = Store.open(database.url, schema=database.schema)
    try:
        store.insert_predictions(
            [_prediction("old", 200, 10.0), _prediction("older", 300, 20.0), _prediction("young", 10, 30.0),
             _prediction("unlabelled", 250, 40.0)]
        )  # fmt: skip
        store.upsert_feedback(
            [{"commit_id": c, "repository": "repo", "buggy": b, "labeled_at": NOW} for c, b in
             (("old", True), ("older", False), ("young", True))]
        )  # fmt: skip
        report = {"drift_share": 0.4, "model_version": 1, "drifted": ["la"]}
        store.save_drift_report("ok", report)
        request = retrain_log.request_retrain(store.engine, "please")
        facts = gather(RetrainPolicy(models_dir=tmp_path / "none", label_delay_days=90), store, NOW)
        stored = store.latest_drift_report()
    finally:
        store.close()
    assert facts.champion is None  # the database alone does not make a champion
    production = facts.production
    assert production is not None and facts.production_immature == 1  # "young" waits for its label to mature
    assert list(production["commit_id"]) == ["older", "old"]  # time order, unlabelled rows left out
    assert list(production["buggy"]) == [0, 1] and list(production["la"]) == [20.0, 10.0]
    assert set(production["repository"]) == {"production"}
    assert np.array_equal(production["author_date"], [int(NOW - 300 * DAY), int(NOW - 200 * DAY)])
    assert stored is not None and facts.drift == {**report, "stored_at": stored.computed_at}
    assert facts.request_ids == [request.id]


def test_a_failed_drift_run_is_no_drift_fact(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        store.save_drift_report("ok", {"drift_share": 0.9, "model_version": 1})
        store.save_drift_report("error", {"error": "evidently failed"})
        facts = gather(RetrainPolicy(models_dir=tmp_path / "models"), store, NOW)
    finally:
        store.close()
    assert facts.drift is None and facts.production is not None and facts.production.empty
