"""The training run with the ensemble: each family searched once, the choice rule, refit from the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contract import FEATURES, ModelManifest
from training import pipeline
from training.config import ALL_FAMILIES, MEMBER_FAMILIES, TrainConfig


def _manifest(models: Path, version: int) -> ModelManifest:
    return ModelManifest.model_validate_json((models / str(version) / "manifest.json").read_text())


def _run(config: TrainConfig) -> tuple[pipeline.TrainOutcome, list[str]]:
    messages: list[str] = []
    return pipeline.run(config, messages.append), messages


@pytest.fixture(scope="module")
def ensemble_models(tmp_path_factory: pytest.TempPathFactory, shared_commits_dir: Path) -> Path:
    """models/1: an ensemble-only run on one repository."""
    models = tmp_path_factory.mktemp("ensemble") / "models"
    config = TrainConfig(
        data=[shared_commits_dir / "guice.csv"], models_dir=models, budget=1, families=("ensemble",), n_jobs=1
    )
    _run(config)
    return models


def test_ensemble_is_published_with_its_members_hyperparameters(ensemble_models: Path) -> None:
    manifest = _manifest(ensemble_models, 1)
    assert manifest.model_type == "ensemble" and [c.name for c in manifest.candidates] == ["ensemble"]
    assert manifest.params["features"] == "relative_churn"  # the feature set is part of the recipe
    assert {k.split("__")[0] for k in manifest.params if k != "features"} == set(MEMBER_FAMILIES)
    assert manifest.candidates[0].cv_roc_auc is None
    assert ModelManifest.model_validate_json(manifest.model_dump_json()).params == manifest.params
    report = json.loads((ensemble_models / "1" / "report" / "metrics.json").read_text())
    assert set(report["importances"]) == set(FEATURES)
    assert any(value != 0 for value in report["importances"].values())
    assert (ensemble_models / "1" / "report" / "importance.png").stat().st_size > 0


def test_refit_level_rebuilds_the_ensemble_from_the_manifest(
    ensemble_models: Path, tmp_path: Path, shared_commits_dir: Path
) -> None:
    manifest = _manifest(ensemble_models, 1)
    # What the challenger's `refit` level configures from a champion's manifest.
    config = TrainConfig(
        data=[shared_commits_dir / "guice.csv"], models_dir=tmp_path / "models", families=(manifest.model_type,),
        fixed_params=dict(manifest.params), n_jobs=1,
    )  # fmt: skip
    outcome, messages = _run(config)
    assert "fitting ensemble with given hyperparameters (no search)" in messages
    assert outcome.manifest.model_type == "ensemble" and outcome.manifest.params == manifest.params
    assert outcome.parity_max_abs_diff <= 1e-5
    assert outcome.manifest.calibration is not None  # the Platt map is appended to the voting graph


def test_every_family_is_searched_once_and_the_margin_prefers_the_ensemble(
    tmp_path: Path, shared_commits_dir: Path
) -> None:
    config = TrainConfig(
        data=[shared_commits_dir / "YCSB.csv"], models_dir=tmp_path / "models", budget=1, n_jobs=1,
        ensemble_margin_se=50.0, label_delay_days=0,
    )  # fmt: skip
    outcome, messages = _run(config)
    assert config.families == ALL_FAMILIES
    assert [c.name for c in outcome.manifest.candidates] == list(ALL_FAMILIES)
    for family in MEMBER_FAMILIES:
        assert sum(m.startswith(f"searching {family} ") for m in messages) == 1
    assert not any(m.startswith("searching ensemble") for m in messages)
    # 50 SE: no single family on a hundred validation rows beats the ensemble by that much.
    assert outcome.manifest.model_type == "ensemble"


def test_configuration_refuses_a_negative_margin_and_unknown_families() -> None:
    with pytest.raises(ValueError, match="ensemble_margin_se"):
        TrainConfig(ensemble_margin_se=-0.5)
    with pytest.raises(ValueError, match="families"):
        TrainConfig(families=("svm",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one model family"):
        TrainConfig(families=("random_forest", "ensemble"), fixed_params={"n_estimators": 10})
