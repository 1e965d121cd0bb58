"""Typed configuration of one training run (defaults are the documented behaviour)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ModelFamily = Literal["logistic_regression", "random_forest", "gradient_boosting", "ensemble"]
# The single families; "ensemble" averages the probabilities of one tuned model of each.
MEMBER_FAMILIES: tuple[ModelFamily, ...] = ("logistic_regression", "random_forest", "gradient_boosting")
ALL_FAMILIES: tuple[ModelFamily, ...] = (*MEMBER_FAMILIES, "ensemble")
# "raw": the 15 metrics; "relative_churn": followed by the ratios of `training.features` (computed inside the model).
FeatureSet = Literal["raw", "relative_churn"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("raw", "relative_churn")
DEFAULT_FEATURES: FeatureSet = "relative_churn"


class QualityGates(BaseModel):
    """Conditions a model must meet before it is published; a refusal publishes nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_train_rows: int = Field(50, ge=0)
    min_buggy_share: float = Field(0.05, ge=0.0, le=1.0)
    max_buggy_share: float = Field(0.95, ge=0.0, le=1.0)
    min_rows_per_class: int = Field(10, ge=0)
    min_test_roc_auc: float = Field(0.6, ge=0.0, le=1.0)


class GateRefused(RuntimeError):
    """A quality gate refused the data or the model: nothing was published."""


class TrainConfig(BaseModel):
    """Everything `commitrisk train` needs; CLI options map one to one onto these fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: list[Path] = Field(default_factory=list, description="CSV files or folders; empty → embedded default")
    models_dir: Path = Path("models")
    budget: int = Field(12, ge=1, description="hyperparameter candidates sampled per model family")
    cv_folds: int = Field(3, ge=2, description="time-ordered cross-validation folds inside the search")
    max_search_rows: int = Field(
        30_000, ge=100, description="the search sees at most the newest N training rows; the final fit sees all"
    )
    label_delay_days: float = Field(90.0, ge=0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.5, description="of the pre-test rows")
    split: Literal["chronological", "random"] = "chronological"
    families: tuple[ModelFamily, ...] = ALL_FAMILIES
    features: FeatureSet = Field(DEFAULT_FEATURES, description="the model's inputs: raw metrics or + relative churn")
    ensemble_margin_se: float = Field(
        1.0, ge=0.0, description="choose the ensemble unless the best beats it by more than this many SEs (0: max)"
    )
    seed: int = 42
    promote: bool = Field(True, description="move the champion pointer to the new version")
    gates: QualityGates = QualityGates()
    reference_rows: int = Field(5000, ge=100, description="training rows kept as the drift baseline")
    self_test_rows: int = Field(16, ge=1, le=256)
    parity_tolerance: float = Field(1e-5, gt=0.0)
    synthetic_rows: int = Field(6000, ge=100, description="rows generated when no data is given")
    mlflow_uri: str | None = None
    n_jobs: int = Field(-1, description="parallel jobs for the search (-1 = all cores)")
    fixed_params: dict[str, str | int | float | bool | None] | None = Field(
        None, description="skip the search: fit one family with these hyperparameters (retrain level refit)"
    )

    @model_validator(mode="after")
    def _families(self) -> TrainConfig:
        if not self.families:
            raise ValueError("at least one model family is required")
        if self.fixed_params is not None and len(self.families) != 1:
            raise ValueError("fixed_params needs exactly one model family")
        return self
