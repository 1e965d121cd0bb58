"""Retrain decisions end to end on one seeded synthetic repository: audit, dry run, requests, levels,
windows, blessing, gates, the lock and MLflow tags."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.contract import MANIFEST_FILE, ModelManifest
from app.monitoring import retrain_log
from app.monitoring.store import Store
from app.repository import ModelRepository
from tests.support import Database, private_copy, write_synthetic
from training import pipeline
from training.config import QualityGates, TrainConfig
from training.retrain import decision
from training.retrain.policy import RetrainPolicy


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One synthetic repository (1,400 commits, drifting) split in time: the older half (champion data), the newer."""
    folder = tmp_path_factory.mktemp("halves")
    whole = write_synthetic(folder / "whole", rows=1400, seed=11, drift=0.5, names=("project",)) / "project.csv"
    frame = pd.read_csv(whole, dtype={"commit_id": str}).sort_values("author_date")
    half = len(frame) // 2
    frame.iloc[:half].to_csv(folder / "old.csv", index=False)
    frame.iloc[half:].to_csv(folder / "new.csv", index=False)
    return folder / "old.csv", folder / "new.csv"


@pytest.fixture(scope="module")
def champion_dir(tmp_path_factory: pytest.TempPathFactory, halves: tuple[Path, Path]) -> Path:
    """Version 1: logistic regression on the older half (read-only; tests copy it)."""
    models = tmp_path_factory.mktemp("champion") / "models"
    config = TrainConfig(data=[halves[0]], models_dir=models, budget=1, families=("logistic_regression",), n_jobs=1)
    pipeline.run(config, lambda _m: None)
    return models


@pytest.fixture
def models(champion_dir: Path, tmp_path: Path) -> Path:
    return private_copy(champion_dir, tmp_path)


def policy(models: Path, halves: tuple[Path, Path], **values: Any) -> RetrainPolicy:
    defaults: dict[str, Any] = {
        "models_dir": models, "data": list(halves), "window": "fixed", "level": "refit", "budget": 1,
        "n_jobs": 1, "deploy": "direct", "max_age_days": 365.0,
    }  # fmt: skip
    return RetrainPolicy(**(defaults | values))


def manifest(models: Path, version: int) -> ModelManifest:
    return ModelManifest.model_validate_json((models / str(version) / MANIFEST_FILE).read_bytes())


def quiet(_message: str) -> None:
    return None


def test_no_trigger_records_none_in_the_database(models: Path, halves: tuple[Path, Path], database: Database) -> None:
    record = decision.run(policy(models, halves, database_url=database.url, database_schema=database.schema), quiet)
    assert record["action"] == "none" and record["fired"] == []
    assert {t["name"] for t in record["triggers"]} == {"interval", "performance", "drift", "on_demand"}
    store = Store.open(database.url, schema=database.schema)
    try:
        (stored,) = retrain_log.recent_audit(store.engine)
    finally:
        store.close()
    assert stored["id"] == record["audit_id"] and stored["champion_version"] == 1
    assert ModelRepository(models).versions() == [1]


def test_dry_run_explains_without_training_or_consuming_requests(
    models: Path, halves: tuple[Path, Path], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    queued = retrain_log.request_retrain(store.engine, "please")
    record = decision.run(policy(models, halves, database_url=url, dry_run=True), quiet)
    assert record["action"] == "would_retrain" and record["fired"] == ["on_demand"]
    assert f"[{queued.id}]" in record["triggers"][3]["detail"]
    assert ModelRepository(models).versions() == [1]
    assert [r.id for r in retrain_log.pending_requests(store.engine)] == [queued.id]
    # The real run answers the request and says so in the audit.
    done = decision.run(policy(models, halves, database_url=url), quiet)
    assert done["requests"] == [queued.id] and retrain_log.pending_requests(store.engine) == []
    store.close()


@pytest.mark.parametrize(("level", "families", "searched"), [
    ("refit", {"logistic_regression"}, False),
    ("search", {"logistic_regression"}, True),
    ("select", {"logistic_regression", "random_forest", "gradient_boosting", "ensemble"}, True),
])  # fmt: skip
def test_each_level_trains_what_it_says(
    models: Path, halves: tuple[Path, Path], level: str, families: set[str], searched: bool
) -> None:
    record = decision.run(policy(models, halves, level=level, force=True, deploy="none"), quiet)
    assert record["challenger_version"] == 2, record["reason"]
    published = manifest(models, 2)
    assert {c.name for c in published.candidates} == families
    # Every chosen-among candidate (the ensemble too) has its mean ROC AUC over the protocol folds; refit has none.
    assert all((c.cv_roc_auc is not None) == searched for c in published.candidates)
    if level == "refit":
        assert published.params == manifest(models, 1).params
    assert record["level"].startswith(level)


@pytest.mark.parametrize("strategy", ["fixed", "dynamic", "selection"])
def test_each_window_strategy_trains_on_its_rows(models: Path, halves: tuple[Path, Path], strategy: str) -> None:
    values: dict[str, Any] = {"window": strategy, "force": True, "deploy": "none"}
    if strategy == "fixed":
        values["window_rows"] = 600
    if strategy == "dynamic":
        values["candidate_days"] = (365.0, 730.0, None)
    record = decision.run(policy(models, halves, **values), quiet)
    assert record["window"]["strategy"] == strategy and record["challenger_version"] == 2
    window = record["window"]
    # The challenger never trains on the held-out recent period it is judged on.
    assert window["end"] < record["comparison"]["period_start"]
    if strategy == "fixed":
        assert window["rows"] == 600
    if strategy == "dynamic":
        assert set(window["candidate_scores"]) == {"365d", "730d", "all"}
    if strategy == "selection":
        assert record["selection"]["weight_max"] > record["selection"]["weight_min"] > 0
        assert "held-out" in record["selection"]["production_source"]
    published = manifest(models, 2)
    assert published.window.train_rows + published.window.validation_rows + published.window.test_rows == window["rows"]


def test_promotion_only_when_the_challenger_wins_by_min_delta(models: Path, halves: tuple[Path, Path]) -> None:
    refused = decision.run(policy(models, halves, force=True, min_delta=1.0), quiet)
    assert refused["action"] == "not_promoted" and "does not beat" in refused["reason"]
    assert ModelRepository(models).pointer() == 1 and ModelRepository(models).versions() == [1, 2]
    blessed = decision.run(policy(models, halves, force=True, min_delta=0.0), quiet)
    comparison = blessed["comparison"]
    if comparison["delta"] >= 0:
        assert blessed["action"] == "promoted" and ModelRepository(models).pointer() == 3
    else:
        assert blessed["action"] == "not_promoted" and ModelRepository(models).pointer() == 1


def test_shadow_deploy_sets_the_challenger_pointer(models: Path, halves: tuple[Path, Path]) -> None:
    record = decision.run(policy(models, halves, force=True, min_delta=0.0, deploy="shadow"), quiet)
    if record["comparison"]["blessed"]:
        assert record["action"] == "shadowed" and record["deployment"]["challenger"] == 2
        assert ModelRepository(models).pointer() == 1 and ModelRepository(models).pointer("challenger") == 2


def test_a_refusing_gate_publishes_nothing(models: Path, halves: tuple[Path, Path]) -> None:
    record = decision.run(policy(models, halves, force=True, gates=QualityGates(min_test_roc_auc=0.999)), quiet)
    assert record["action"] == "refused" and "min_test_roc_auc" in record["reason"]
    assert record["challenger_version"] is None and "comparison" not in record
    # What was done before the refusal stays on the record.
    assert record["data"]["pool_rows"] > 0 and record["window"]["strategy"] == "fixed"
    assert record["level"].startswith("refit")
    assert ModelRepository(models).versions() == [1]


def test_no_data_at_all_is_refused(models: Path) -> None:
    record = decision.run(RetrainPolicy(models_dir=models, force=True), quiet)
    assert record["action"] == "refused" and "no training data" in record["reason"]


def test_two_concurrent_retrains_only_one_publishes(models: Path, halves: tuple[Path, Path]) -> None:
    inside, release = threading.Event(), threading.Event()
    results: dict[str, dict[str, Any]] = {}

    def hold(message: str) -> None:
        # Trainer A pauses while training, i.e. while it holds the lock, until B has decided.
        if "mature commits given" in message:
            inside.set()
            release.wait(timeout=120)

    first = threading.Thread(target=lambda: results.update(a=decision.run(policy(models, halves, force=True), hold)))
    first.start()
    assert inside.wait(timeout=120)
    results["b"] = decision.run(policy(models, halves, force=True), quiet)
    release.set()
    first.join(timeout=300)
    assert results["b"]["action"] == "skipped" and "another trainer" in results["b"]["reason"]
    assert results["a"]["challenger_version"] == 2
    assert ModelRepository(models).versions() == [1, 2]


def test_mlflow_run_is_tagged_with_the_trigger(
    models: Path, halves: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns: here, not in the repository

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = decision.run(policy(models, halves, force=True, deploy="none", mlflow_uri=uri), quiet)
    assert record["mlflow_run_id"], record.get("mlflow_error")
    run = MlflowClient(tracking_uri=uri).get_run(record["mlflow_run_id"])
    assert run.data.tags["commitrisk.trigger"] == "on_demand"
    assert run.data.tags["commitrisk.retrain.window"] == "fixed"
    assert run.data.tags["commitrisk.version"] == str(record["challenger_version"])


HEAD = ["time", "time_iso", "dry_run", "host", "pid", "plan", "triggers", "fired", "champion_version",
        "challenger_version", "deployed", "requests"]  # fmt: skip


def test_the_audit_record_keeps_its_json_shape(models: Path, halves: tuple[Path, Path]) -> None:
    quiet_run = decision.run(policy(models, halves), quiet)
    assert list(quiet_run) == [*HEAD, "action", "reason"]
    record = decision.run(policy(models, halves, force=True, min_delta=0.0), quiet)
    trained = [*HEAD, "data", "window", "level", "comparison", "mlflow_run_id"]
    if record["comparison"]["blessed"]:
        assert list(record) == [*trained, "deployment", "action", "reason", "champion_after"]
        assert record["action"] == "promoted" and record["deployed"] == "direct" and record["champion_after"] == 2
    else:
        assert list(record) == [*trained, "action", "reason"]
    assert record["challenger_version"] == 2 and record["mlflow_run_id"] is None
    assert list(record["data"]) == [
        "base_rows", "production_rows", "production_immature", "duplicates_dropped", "pool_rows", "holdout_rows",
    ]  # fmt: skip
    assert list(record["window"]) == ["strategy", "description", "rows", "start", "end", "candidate_scores"]
    assert json.loads(json.dumps(record, default=str))["plan"] == {
        "window": "fixed",
        "level": "refit",
        "deploy": "direct",
    }
