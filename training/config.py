"""Typed configuration of one training run (defaults are the documented behaviour)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ModelFamily = Literal["logistic_regression", "random_forest", "gradient_boosting", "ensemble"]
# The single families; "ensemble" averages the probabilities of one tuned model of each.
MEMBER_FAMILIES: tuple[ModelFamily, ...] = ("logistic_regression", "random_forest", "gradient_boosting")
ALL_FAMILIES: tuple[ModelFamily, ...] = (*MEMBER_FAMILIES, "ensemble")
# "raw": the 15 metrics; "relative_churn": followed by the ratios of `training.features` (computed inside the model).
# In order of complexity: the choice tries both and keeps the simpler unless the other clearly wins.
FeatureSet = Literal["raw", "relative_churn"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("raw", "relative_churn")
# The inputs where no choice is made (e.g. retraining's window scoring).
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
    budget: int = Field(3, ge=1, description="hyperparameter settings sampled per tree family (logistic: a grid)")
    cv_folds: int = Field(3, ge=2, description="unused since the protocol choice; kept so old configs load")
    max_search_rows: int = Field(
        30_000, ge=100, description="a fold model trains on at most the newest N rows; the final fit sees all"
    )
    label_delay_days: float = Field(90.0, ge=0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.5, description="of the pre-test rows")
    split: Literal["chronological", "random"] = "chronological"
    families: tuple[ModelFamily, ...] = ALL_FAMILIES
    features: tuple[FeatureSet, ...] = Field(FEATURE_SETS, description="inputs tried: raw metrics, + relative churn")
    margin_se: float = Field(
        1.0, ge=0.0, description="a more complex candidate must beat the simpler by more than this many SEs"
    )
    majority: float = Field(2 / 3, ge=0.5, le=1.0, description="…and win on more than this share of the folds")
    min_fold_rows: int = Field(30, ge=2, description="a repository's fold needs this many test rows (and both classes)")
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

    @field_validator("features", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        # A single feature set (as older configs give it) is a one-element tuple.
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _families(self) -> TrainConfig:
        if not self.families:
            raise ValueError("at least one model family is required")
        if not self.features:
            raise ValueError("at least one feature set is required")
        if self.fixed_params is not None and len(self.families) != 1:
            raise ValueError("fixed_params needs exactly one model family")
        return self
