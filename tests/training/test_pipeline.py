"""The training run stage by stage on tiny seeded synthetic frames, then `run` end to end (ensemble, refit level).

Each stage is checked for its own contract and for leaving its inputs untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES, ModelManifest
from tests.support import write_synthetic
from training import calibration, choice, data, evaluate, export, model, pipeline
from training.config import ALL_FAMILIES, MEMBER_FAMILIES, QualityGates, TrainConfig

LOGISTIC: tuple[str] = ("logistic_regression",)


def _manifest(models: Path, version: int) -> ModelManifest:
    return ModelManifest.model_validate_json((models / str(version) / "manifest.json").read_text())


def _run(config: TrainConfig) -> tuple[pipeline.TrainOutcome, list[str]]:
    messages: list[str] = []
    return pipeline.run(config, messages.append), messages


def quiet(_message: str) -> None:
    return None


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 seeded synthetic commits of one repository."""
    return write_synthetic(tmp_path_factory.mktemp("tiny"), rows=600, seed=5, names=("tiny",)) / "tiny.csv"


@pytest.fixture(scope="module")
def config(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    models = tmp_path_factory.mktemp("models") / "models"
    return TrainConfig(data=[tiny], models_dir=models, budget=1, families=LOGISTIC, n_jobs=1)


@pytest.fixture(scope="module")
def prepared(config: TrainConfig) -> pipeline.Prepared:
    return pipeline.prepare_data(config, quiet)


@pytest.fixture(scope="module")
def chosen(config: TrainConfig, prepared: pipeline.Prepared) -> choice.Chosen:
    return pipeline.choose_recipe(config, prepared, quiet)


@pytest.fixture(scope="module")
def fitted(config: TrainConfig, prepared: pipeline.Prepared, chosen: choice.Chosen) -> pipeline.Fitted:
    return pipeline.fit_chosen(config, chosen, prepared.split, quiet)


# --- 1. data ------------------------------------------------------------------------------------------


def test_prepare_data_loads_cuts_immature_labels_and_splits_in_time(config: TrainConfig, tiny: Path) -> None:
    messages: list[str] = []
    prepared = pipeline.prepare_data(config, messages.append)
    loaded = data.load([tiny]).frame
    newest = loaded["author_date"].max()
    young = int((loaded["author_date"] > newest - 90 * 86_400).sum())
    assert prepared.immature == young > 0 and len(prepared.mature) == len(loaded) - young
    assert messages == [f"600 commits loaded, {young} immature (newest 90 days) held back"]
    split = prepared.split
    assert split.kind == "chronological"
    assert len(split.train) + len(split.validation) + len(split.test) == len(prepared.mature)
    assert split.train["author_date"].max() < split.validation["author_date"].min()
    assert split.validation["author_date"].max() < split.test["author_date"].min()


def test_a_given_dataset_is_taken_as_mature_and_left_untouched(config: TrainConfig, tiny: Path) -> None:
    dataset = data.load([tiny])
    before = dataset.frame.copy()
    messages: list[str] = []
    prepared = pipeline.prepare_data(config, messages.append, dataset)
    assert prepared.immature == 0 and len(prepared.mature) == 600 and prepared.dataset is dataset
    assert messages == ["600 mature commits given"]
    pd.testing.assert_frame_equal(dataset.frame, before)


# --- 2. the recipe: chosen on folds before the test period, then fitted on the training period -------------


def test_the_choice_uses_only_folds_before_the_test_period(
    config: TrainConfig, prepared: pipeline.Prepared, chosen: choice.Chosen
) -> None:
    split = prepared.split
    assert chosen.folds.frame["author_date"].max() < split.test["author_date"].min()
    (fold,) = chosen.folds.folds  # one repository: forward only
    assert fold.protocol == "forward" and chosen.folds.notes["leave_one_out"].startswith("one repository only")
    assert [(c.name, c.params["features"]) for c in chosen.candidates] == [
        ("logistic_regression", "raw"), ("logistic_regression", "relative_churn")
    ]  # fmt: skip
    assert (chosen.family, chosen.params) in [(c.name, c.params) for c in chosen.candidates]


def test_fit_chosen_fits_the_training_period_and_scores_validation(
    config: TrainConfig, prepared: pipeline.Prepared, chosen: choice.Chosen, fitted: pipeline.Fitted
) -> None:
    split = prepared.split
    X, y = data.features(split.train), split.train["buggy"].to_numpy()
    again = model.fixed(chosen.family, chosen.params, X, y, seed=config.seed)
    np.testing.assert_allclose(fitted.validation, model.predict(again.estimator, data.features(split.validation)))
    (scored,) = [c for c in fitted.scores if c.validation_roc_auc is not None]
    assert (scored.name, scored.params) == (chosen.family, chosen.params)
    assert scored.validation_roc_auc == pytest.approx(evaluate.roc_auc(split.validation["buggy"], fitted.validation))


def test_fixed_hyperparameters_skip_the_choice(config: TrainConfig, prepared: pipeline.Prepared) -> None:
    messages: list[str] = []
    fixed = config.model_copy(update={"fixed_params": {"features": "raw", "clf__C": 0.5}})
    chosen = pipeline.choose_recipe(fixed, prepared, messages.append)
    assert messages == ["fitting logistic_regression with given hyperparameters (no choice)"]
    assert chosen.family == "logistic_regression" and chosen.params == {"features": "raw", "clf__C": 0.5}
    fitted = pipeline.fit_chosen(fixed, chosen, prepared.split, quiet)
    assert fitted.candidate.params == chosen.params and fitted.scores[0].validation_roc_auc is not None


def test_fold_models_see_only_the_newest_rows(config: TrainConfig, prepared: pipeline.Prepared) -> None:
    newest = config.model_copy(update={"max_search_rows": 100})
    chosen = pipeline.choose_recipe(newest, prepared, quiet)
    assert all(len(f.train) <= 100 and len(f.test) <= 100 for f in chosen.folds.folds)


# --- 3. calibration, refit, export, test ---------------------------------------------------------------


def test_calibrate_fits_the_decision_rule_on_the_validation_period(prepared: pipeline.Prepared) -> None:
    validation = prepared.split.validation
    raw = np.linspace(0.05, 0.95, len(validation))
    rule = pipeline.calibrate(prepared.split, raw)
    expected = calibration.decision_rule(validation["buggy"].to_numpy(), raw, validation["effort"].to_numpy())
    assert rule == expected  # labels and effort of the validation period, never of train or test
    assert rule.validation.rows == len(validation) != len(prepared.split.test)


def test_refit_and_export_learn_from_train_and_validation_with_onnx_parity(
    config: TrainConfig, prepared: pipeline.Prepared, fitted: pipeline.Fitted
) -> None:
    split = prepared.split
    before = [part.copy() for part in (split.train, split.validation, split.test)]
    messages: list[str] = []
    platt = calibration.Platt(a=0.8, b=-0.4)
    exported = pipeline.refit_and_export(config, fitted.candidate, platt, split, messages.append)
    assert len(exported.fit_frame) == len(split.train) + len(split.validation)
    assert messages == [f"refitting logistic_regression on {len(exported.fit_frame)} train + validation rows"]
    assert exported.final.platt == platt and exported.parity_max_abs_diff <= config.parity_tolerance
    X_test = data.features(split.test)
    onnx = export.onnx_probabilities(exported.model_bytes, X_test)
    np.testing.assert_allclose(onnx, exported.final.predict_proba(X_test)[:, 1], atol=1e-5)
    for part, copy in zip((split.train, split.validation, split.test), before, strict=True):
        pd.testing.assert_frame_equal(part, copy)


def test_the_test_gate_scores_the_onnx_model(
    config: TrainConfig, prepared: pipeline.Prepared, fitted: pipeline.Fitted
) -> None:
    split = prepared.split
    exported = pipeline.refit_and_export(config, fitted.candidate, calibration.IDENTITY, split, quiet)
    tested = pipeline.evaluate_on_test(config, exported, 0.3, split)
    y_test = split.test["buggy"].to_numpy()
    assert tested.metrics.rows == len(split.test) and tested.metrics.roc_auc is not None
    assert tested.metrics.roc_auc == pytest.approx(evaluate.roc_auc(y_test, tested.probabilities))
    predicted = int((tested.probabilities >= 0.3).sum())
    assert tested.metrics.precision == pytest.approx(int((tested.probabilities >= 0.3)[y_test == 1].sum()) / predicted)
    strict = config.model_copy(update={"gates": QualityGates(min_test_roc_auc=0.999)})
    with pytest.raises(pipeline.GateRefused, match=r"^test ROC AUC 0\.\d+ < min_test_roc_auc 0\.999$"):
        pipeline.evaluate_on_test(strict, exported, 0.3, split)


def test_evidence_scores_the_recipe_and_the_baseline_on_all_mature_rows(
    config: TrainConfig, prepared: pipeline.Prepared, chosen: choice.Chosen
) -> None:
    messages: list[str] = []
    evidence = pipeline.gather_evidence(config, prepared, chosen, messages.append)
    assert evidence is not None and messages == [
        f"per-repository evidence: {chosen.family} and the baseline on 1 folds"
    ]  # fmt: skip
    (fold,) = evidence.forward.folds
    # Forward over all mature rows: the repository's newest 20% — the test period of a one-repository split.
    assert fold.test_rows == round(len(prepared.mature) * 0.2) and fold.roc_auc is not None
    assert fold.baseline_roc_auc is not None and fold.difference_se is not None
    assert evidence.leave_one_out.folds == [] and evidence.leave_one_out.note is not None
    assert evidence.choice == chosen.reason and evidence.choice_data_end is not None
    randomly = pipeline.Prepared(
        prepared.dataset, prepared.mature, prepared.immature,
        data.Split(prepared.split.train, prepared.split.validation, prepared.split.test, "random"),
    )  # fmt: skip
    assert pipeline.gather_evidence(config, randomly, chosen, quiet) is None


def test_assemble_builds_the_manifest_reference_and_report_inputs(
    config: TrainConfig, prepared: pipeline.Prepared, chosen: choice.Chosen, fitted: pipeline.Fitted, tmp_path: Path
) -> None:
    rule = pipeline.calibrate(prepared.split, fitted.validation)
    exported = pipeline.refit_and_export(config, fitted.candidate, rule.platt, prepared.split, quiet)
    tested = pipeline.evaluate_on_test(config, exported, rule.threshold, prepared.split)
    evidence = pipeline.gather_evidence(config, prepared, chosen, quiet)
    small = config.model_copy(update={"reference_rows": 100})
    assembled = pipeline.assemble(small, prepared, fitted, rule, exported, tested, evidence)
    manifest = assembled.manifest
    assert manifest.model_type == "logistic_regression" and manifest.threshold == rule.threshold
    assert manifest.test_metrics == tested.metrics and manifest.validation_metrics == rule.validation
    assert (manifest.calibration is None) == (rule.platt == calibration.IDENTITY)
    assert manifest.window.train_rows == len(prepared.split.train)
    assert manifest.window.immature_rows_dropped == prepared.immature
    assert manifest.candidates == fitted.scores and manifest.protocol == evidence
    assert manifest.explanation is not None and len(manifest.explanation.terms) in (15, 20)  # logistic: linear
    # One repository: leave-one-out cannot run, and the manifest says so.
    assert assembled.notes == [f"leave_one_out: {evidence.leave_one_out.note}"] == manifest.warnings  # type: ignore[union-attr]
    assert len(assembled.reference) == 100 and set(assembled.importances) == set(FEATURES)
    randomly = pipeline.Prepared(
        prepared.dataset, prepared.mature, prepared.immature,
        data.Split(prepared.split.train, prepared.split.validation, prepared.split.test, "random"),
    )  # fmt: skip
    flagged = pipeline.assemble(small, randomly, fitted, rule, exported, tested, None)
    assert flagged.notes == ["random split: future commits leak into training, so these figures are optimistic"]
    assert flagged.manifest.window.split == "random" and flagged.manifest.protocol is None
    write = pipeline.report_writer(prepared.split, rule, tested, assembled)
    write(tmp_path, manifest.model_copy(update={"version": 7}))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["title"] == "commitrisk model 7 (logistic_regression)" and metrics["threshold"] == rule.threshold
    assert metrics["protocol"]["forward"]["folds"][0]["roc_auc"] == evidence.forward.folds[0].roc_auc  # type: ignore[union-attr]


# --- the whole run ------------------------------------------------------------------------------------


def test_run_publishes_and_promotes_unless_told_not_to(config: TrainConfig, tmp_path: Path, tiny: Path) -> None:
    models = tmp_path / "models"
    first, messages = _run(config.model_copy(update={"models_dir": models}))
    assert first.manifest.version == 1 and first.promoted
    assert first.rows_loaded == 600 and first.rows_used == 600 - first.immature_dropped
    assert first.parity_max_abs_diff <= config.parity_tolerance and len(first.notes) == 1  # no leave-one-out
    assert messages[0].startswith("600 commits loaded") and messages[-1].startswith("per-repository evidence")
    assert _manifest(models, 1) == first.manifest
    second, _ = _run(config.model_copy(update={"models_dir": models, "promote": False}))
    assert second.manifest.version == 2 and not second.promoted
    # A refusal publishes nothing.
    with pytest.raises(pipeline.GateRefused):
        _run(config.model_copy(update={"models_dir": models, "gates": QualityGates(min_train_rows=10_000)}))
    assert sorted(p.name for p in models.iterdir() if p.name.isdigit()) == ["1", "2"]


@pytest.fixture(scope="module")
def ensemble_models(tmp_path_factory: pytest.TempPathFactory, synthetic_commits_dir: Path) -> Path:
    """models/1: an ensemble-only run on one repository."""
    models = tmp_path_factory.mktemp("ensemble") / "models"
    config = TrainConfig(
        data=[synthetic_commits_dir / "alpha.csv"], models_dir=models, budget=1, families=("ensemble",), n_jobs=1
    )
    _run(config)
    return models


def test_ensemble_is_published_with_its_members_hyperparameters(ensemble_models: Path) -> None:
    manifest = _manifest(ensemble_models, 1)
    assert manifest.model_type == "ensemble" and [c.name for c in manifest.candidates] == ["ensemble", "ensemble"]
    assert manifest.params["features"] in ("raw", "relative_churn")  # the feature set is part of the recipe
    assert {k.split("__")[0] for k in manifest.params if k != "features"} == set(MEMBER_FAMILIES)
    assert all(c.cv_roc_auc is not None for c in manifest.candidates) and manifest.explanation is None
    assert ModelManifest.model_validate_json(manifest.model_dump_json()).params == manifest.params
    report = json.loads((ensemble_models / "1" / "report" / "metrics.json").read_text())
    assert set(report["importances"]) == set(FEATURES)
    assert any(value != 0 for value in report["importances"].values())
    assert (ensemble_models / "1" / "report" / "importance.png").stat().st_size > 0


def test_refit_level_rebuilds_the_ensemble_from_the_manifest(
    ensemble_models: Path, tmp_path: Path, synthetic_commits_dir: Path
) -> None:
    manifest = _manifest(ensemble_models, 1)
    # What the challenger's `refit` level configures from a champion's manifest.
    config = TrainConfig(
        data=[synthetic_commits_dir / "alpha.csv"], models_dir=tmp_path / "models",
        families=(manifest.model_type,), fixed_params=dict(manifest.params), n_jobs=1,
    )  # fmt: skip
    outcome, messages = _run(config)
    assert "fitting ensemble with given hyperparameters (no choice)" in messages
    assert outcome.manifest.model_type == "ensemble" and outcome.manifest.params == manifest.params
    assert outcome.parity_max_abs_diff <= 1e-5
    assert outcome.manifest.calibration is not None  # the Platt map is appended to the voting graph


def test_every_candidate_is_measured_and_a_huge_margin_keeps_the_simplest(
    tmp_path: Path, synthetic_commits_dir: Path
) -> None:
    config = TrainConfig(
        data=[synthetic_commits_dir], models_dir=tmp_path / "models", budget=1, n_jobs=1, margin_se=50.0,
    )  # fmt: skip
    outcome, messages = _run(config)
    assert config.families == ALL_FAMILIES
    assert [(c.name, c.params["features"]) for c in outcome.manifest.candidates] == [
        (family, inputs) for family in ALL_FAMILIES for inputs in ("raw", "relative_churn")
    ]
    # 8 logistic C values + 1 forest + 1 boosting setting, on each of the two input sets.
    assert "fitting 20 candidate settings on 6 folds each" in messages
    # 50 SE: nothing more complex than the first candidate can clear that.
    assert (outcome.manifest.model_type, outcome.manifest.params["features"]) == ("logistic_regression", "raw")
    protocol = outcome.manifest.protocol
    assert protocol is not None and len(protocol.forward.folds) == len(protocol.leave_one_out.folds) == 3
