"""Training configuration: documented defaults, strict fields, the family and hyperparameter rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from training.config import ALL_FAMILIES, DEFAULT_FEATURES, FEATURE_SETS, MEMBER_FAMILIES, QualityGates, TrainConfig


def test_defaults_are_the_documented_behaviour() -> None:
    config = TrainConfig()
    assert config.data == [] and config.models_dir == Path("models")  # no data: the embedded default
    assert config.families == ALL_FAMILIES == (*MEMBER_FAMILIES, "ensemble")
    assert config.features == FEATURE_SETS == ("raw", "relative_churn")  # both tried, the simpler first
    assert DEFAULT_FEATURES == "relative_churn"  # where nothing is chosen (retraining's window scoring)
    assert (config.margin_se, config.majority, config.min_fold_rows, config.budget) == (1.0, 2 / 3, 30, 3)
    assert TrainConfig(features="raw").features == ("raw",)  # one feature set, as older configs give it
    assert config.split == "chronological" and config.label_delay_days == 90.0 and config.promote
    assert config.gates == QualityGates() and config.gates.min_test_roc_auc == 0.6
    assert config.fixed_params is None


def test_configuration_refuses_a_negative_margin_and_unknown_families() -> None:
    with pytest.raises(ValueError, match="margin_se"):
        TrainConfig(margin_se=-0.5)
    with pytest.raises(ValueError, match="majority"):
        TrainConfig(majority=0.4)
    with pytest.raises(ValueError, match="at least one feature set"):
        TrainConfig(features=())
    with pytest.raises(ValueError, match="features"):
        TrainConfig(features=("pca",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="families"):
        TrainConfig(families=("svm",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one model family"):
        TrainConfig(families=())
    with pytest.raises(ValueError, match="exactly one model family"):
        TrainConfig(families=("random_forest", "ensemble"), fixed_params={"n_estimators": 10})
    assert TrainConfig(families=("ensemble",), fixed_params={"features": "raw"}).fixed_params == {"features": "raw"}


@pytest.mark.parametrize(
    "values",
    [
        {"budget": 0},
        {"cv_folds": 1},
        {"test_fraction": 0.5},
        {"validation_fraction": 0.0},
        {"max_search_rows": 99},
        {"split": "shuffled"},
        {"features": "everything"},
        {"unknown_option": 1},
    ],
)
def test_out_of_range_and_unknown_fields_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TrainConfig(**values)  # type: ignore[arg-type]


def test_gates_are_strict_and_frozen() -> None:
    with pytest.raises(ValidationError):
        QualityGates(min_buggy_share=1.5)
    with pytest.raises(ValidationError):
        QualityGates(min_rows=10)  # type: ignore[call-arg]
    gates = QualityGates()
    with pytest.raises(ValidationError):
        gates.min_train_rows = 1  # type: ignore[misc]
    assert TrainConfig().model_copy(update={"budget": 3}).budget == 3
