"""The model-version directory contract between `training/` (writer) and `app/` (reader).

Pydantic only: the serving image must be able to import this without scikit-learn.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The 15 change metrics, in the order every model consumes them (../shared/METRICS.md).
FEATURES: tuple[str, ...] = (
    "ns", "nd", "nf", "entropy", "la", "ld", "ha", "hd", "lt",
    "ndev", "age", "nuc", "exp", "rexp", "sexp",
)  # fmt: skip

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
REFERENCE_FILE = "reference.parquet"
REPORT_DIR = "report"
CHAMPION_POINTER = "champion"
# The challenger pointer lists the versions scored in shadow, one per line, oldest first: several challengers
# may compete at once, at most MAX_CHALLENGERS (publishers evict the oldest; the service loads the newest).
CHALLENGER_POINTER = "challenger"
MAX_CHALLENGERS = 3
# One JSON line per pointer move, whoever moved it (training CLI, retraining, `POST /reload`): the audit trail
# and what `commitrisk models rollback` walks back through.
HISTORY_FILE = "pointer-history.jsonl"
INPUT_NAME = "features"
LABEL_OUTPUT = "label"
PROBABILITY_OUTPUT = "probabilities"
SCHEMA_VERSION: Literal[1] = 1

_VERSION_NAME = re.compile(r"^[1-9][0-9]{0,8}$")

RiskBand = Literal["low", "medium", "high"]


def is_version_name(name: str) -> bool:
    """True when `name` is a valid version directory name (a positive integer, no path tricks)."""
    return bool(_VERSION_NAME.fullmatch(name))  # fullmatch: `$` alone would accept a trailing newline


def parse_pointer(text: str) -> tuple[int, ...]:
    """The versions a pointer file lists, one per line (blank lines ignored); ValueError for any other line."""
    versions = []
    for line in text.splitlines():
        name = line.strip()
        if not name:
            continue
        if not is_version_name(name):
            raise ValueError(f"holds {name[:40]!r}, not a version number")
        versions.append(int(name))
    return tuple(versions)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureStats(_Frozen):
    """Training distribution of one feature: ranges for input checks, median for explanations."""

    name: str
    min: float
    max: float
    mean: float
    median: float
    quantiles: dict[str, float] = Field(description="e.g. {'p01': …, 'p99': …}")

    @model_validator(mode="after")
    def _ordered(self) -> FeatureStats:
        if not self.min <= self.median <= self.max:
            raise ValueError(f"feature {self.name}: expected min <= median <= max")
        return self


class RiskBands(_Frozen):
    """Probability cut points: p < medium → low, medium <= p < high → medium, p >= high → high."""

    medium: float = Field(ge=0.0, le=1.0)
    high: float = Field(ge=0.0, le=1.0)
    rule: str = Field(description="how the cut points were chosen, for humans")

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium > self.high:
            raise ValueError("risk bands: medium cut point must not exceed high cut point")
        return self

    def band(self, probability: float) -> RiskBand:
        """The band of one probability."""
        if probability >= self.high:
            return "high"
        if probability >= self.medium:
            return "medium"
        return "low"


class EvaluationMetrics(_Frozen):
    """Classification and effort-aware metrics on one labelled set; None where undefined."""

    rows: int
    buggy: int
    roc_auc: float | None = None
    pr_auc: float | None = None
    brier: float | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    mcc: float | None = None
    recall_at_20_effort: float | None = None
    effort_at_20_recall: float | None = None
    popt: float | None = None
    ifa: int | None = None


class CandidateScore(_Frozen):
    """One candidate recipe of the choice: `cv_roc_auc` = mean ROC AUC over the choice folds (older manifests:
    time-series CV), the means per protocol and the rule's `verdict`; None where not measured."""

    name: str
    validation_roc_auc: float | None = None
    cv_roc_auc: float | None = None
    params: dict[str, str | int | float | bool | None]
    fit_seconds: float
    forward_roc_auc: float | None = None
    leave_one_out_roc_auc: float | None = None
    verdict: str | None = None


Protocol = Literal["forward", "leave_one_out"]


class FoldScore(_Frozen):
    """One repository's fold: figures on its test rows, the baseline's beside them (`difference_se`: paired
    DeLong SE of roc_auc − baseline_roc_auc), or why it was skipped."""

    protocol: Protocol
    repository: str
    train_rows: int
    test_rows: int
    buggy: int
    roc_auc: float | None = None
    pr_auc: float | None = None
    recall_at_20_effort: float | None = None
    popt: float | None = None
    baseline_roc_auc: float | None = None
    difference_se: float | None = None
    skipped: str | None = None


class ProtocolSummary(_Frozen):
    """Every fold of one protocol and the means over the evaluated ones (None when none was)."""

    protocol: Protocol
    folds: list[FoldScore]
    mean_roc_auc: float | None = None
    mean_recall_at_20_effort: float | None = None
    mean_popt: float | None = None
    baseline_mean_roc_auc: float | None = None
    note: str | None = None


class ProtocolReport(_Frozen):
    """Per-repository evidence: forward in time and leave one repository out, with how the recipe was chosen."""

    test_fraction: float
    label_delay_days: float
    baseline: str
    forward: ProtocolSummary
    leave_one_out: ProtocolSummary
    choice: str
    choice_data_end: datetime | None = None


class LinearTerm(_Frozen):
    """One input of a linear model: sum of metrics (/ floored denominator), log1p, standardised; its exact
    contribution to the served log-odds is `coefficient · (term − mean) / scale`."""

    name: str
    numerator: list[str]
    denominator: str | None = None
    floor: float = 1.0
    log1p: bool = True
    mean: float
    scale: float = Field(gt=0.0)
    coefficient: float


class LinearExplanation(_Frozen):
    """A linear model on the served (calibrated) log-odds scale: logit(p) = intercept + Σ contributions."""

    method: Literal["linear"] = "linear"
    intercept: float
    terms: list[LinearTerm]


class TrainingWindow(_Frozen):
    """Which commits trained and tested the model, and what was held back."""

    split: Literal["chronological", "random"]
    train_start: datetime
    train_end: datetime
    test_start: datetime
    test_end: datetime
    train_rows: int
    validation_rows: int
    test_rows: int
    label_delay_days: float
    immature_rows_dropped: int
    duplicate_rows_dropped: int
    repositories: list[str]


class DataFile(_Frozen):
    name: str
    sha256: str
    rows: int


class DataFingerprint(_Frozen):
    """sha256 over the raw bytes of every input file, in name order."""

    sha256: str
    files: list[DataFile]


class SelfTest(_Frozen):
    """Rows the loader must score to `probabilities` (within `tolerance`) before it serves the model."""

    rows: list[list[float]]
    probabilities: list[float]
    tolerance: float = 1e-4

    @model_validator(mode="after")
    def _aligned(self) -> SelfTest:
        if not self.rows or len(self.rows) != len(self.probabilities):
            raise ValueError("self_test: need one expected probability per row (at least one row)")
        return self


class Calibration(_Frozen):
    """The monotone map the model file applies to its raw probability: sigmoid(a · logit(p) + b)."""

    method: Literal["platt"] = "platt"
    a: float = Field(gt=0.0)
    b: float
    fitted_on: Literal["validation"] = "validation"


class ModelManifest(_Frozen):
    """`models/<N>/manifest.json`: everything a loader needs to trust and explain a model."""

    schema_version: Literal[1] = SCHEMA_VERSION
    version: int = Field(ge=1)
    created_at: datetime
    model_type: str
    params: dict[str, str | int | float | bool | None]
    features: list[FeatureStats]
    input_name: str = INPUT_NAME
    label_output: str = LABEL_OUTPUT
    probability_output: str = PROBABILITY_OUTPUT
    threshold: float = Field(ge=0.0, le=1.0)
    calibration: Calibration | None = None
    bands: RiskBands
    validation_metrics: EvaluationMetrics
    test_metrics: EvaluationMetrics
    candidates: list[CandidateScore]
    window: TrainingWindow
    data: DataFingerprint
    libraries: dict[str, str]
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    self_test: SelfTest
    warnings: list[str] = Field(default_factory=list)
    protocol: ProtocolReport | None = None
    explanation: LinearExplanation | None = None

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: list[FeatureStats]) -> list[FeatureStats]:
        names = [f.name for f in features]
        if len(set(names)) != len(names) or not names:
            raise ValueError("features must be a non-empty list of unique names")
        return features

    @model_validator(mode="after")
    def _self_test_width(self) -> ModelManifest:
        width = len(self.features)
        if any(len(row) != width for row in self.self_test.rows):
            raise ValueError(f"self_test rows must have {width} values, one per feature")
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in model input order."""
        return tuple(f.name for f in self.features)
