"""Typed configuration of continuous training: triggers, window, level, blessing and deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from training.config import QualityGates

WindowStrategy = Literal["fixed", "dynamic", "selection"]
Level = Literal["refit", "search", "select"]


class RetrainPolicy(BaseModel):
    """Everything `commitrisk retrain` needs; CLI options map onto these fields, None disables a trigger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models_dir: Path = Path("models")
    data: list[Path] = Field(default_factory=list, description="base datasets (CSV files or folders)")
    database_url: str | None = Field(None, description="monitoring database: prediction log, feedback, drift")
    database_schema: str | None = Field(None, description="PostgreSQL schema of the monitoring tables")
    dry_run: bool = False
    force: bool = False
    now: float | None = Field(None, description="decision clock, Unix seconds (replays, tests); None = now")

    # when
    max_age_days: float | None = Field(30.0, gt=0, description="interval trigger: champion older than this")
    performance_floor: float | None = Field(0.65, ge=0, le=1, description="labelled ROC AUC below this fires")
    max_auc_drop: float | None = Field(0.05, ge=0, le=1, description="… or this far below its own test AUC")
    performance_rows: int = Field(2000, ge=1, description="newest mature labelled predictions scored")
    min_labelled_rows: int = Field(100, ge=1, description="fewer labelled rows: performance is not judged")
    drift_threshold: float | None = Field(0.5, ge=0, le=1, description="drift share at or above this fires")
    drift_max_age_days: float = Field(7.0, gt=0, description="older drift results are ignored")
    label_delay_days: float = Field(90.0, ge=0, description="younger production labels are immature")

    # how much data
    window: WindowStrategy = "dynamic"
    window_days: float | None = Field(None, gt=0, description="fixed window: last N days")
    window_rows: int | None = Field(None, ge=1, description="fixed window: last N rows")
    candidate_days: tuple[float | None, ...] = Field(
        (180.0, 365.0, 730.0, None), description="dynamic window sizes in days (None = everything)"
    )
    recent_fraction: float = Field(0.2, gt=0, lt=0.5, description="dynamic: newest share scored")
    selection_rows: int = Field(5000, ge=30, description="selection: production sample size")
    weight_clip: float = Field(10.0, ge=1, description="selection: importance weights clipped to [1/c, c]")
    holdout_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="newest share of the pool: never trained on, champion vs challenger"
    )

    # what
    level: Level = "search"
    budget: int = Field(8, ge=1)
    seed: int = 42
    n_jobs: int = -1
    gates: QualityGates = Field(default_factory=lambda: QualityGates())

    # when to deploy
    min_delta: float = Field(0.01, ge=0, le=1, description="challenger must win by this ROC AUC")
    deploy: Literal["none", "direct", "shadow"] = "direct"
    service_url: str | None = None
    token: SecretStr | None = None
    mlflow_uri: str | None = None

    @model_validator(mode="after")
    def _window(self) -> RetrainPolicy:
        if self.window_days is not None and self.window_rows is not None:
            raise ValueError("window_days and window_rows exclude each other")
        if self.window == "dynamic" and not self.candidate_days:
            raise ValueError("dynamic window needs candidate_days")
        return self
