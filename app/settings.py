"""Service settings from `COMMITRISK_*` environment variables (pydantic-settings); no import-time instance."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.contract import MAX_CHALLENGERS


class Settings(BaseSettings):
    """Everything an operator can configure; build one per app with `Settings()` or explicit values."""

    model_config = SettingsConfigDict(env_prefix="COMMITRISK_", env_file=None, extra="ignore")

    models_dir: Path = Field(Path("models"), description="directory holding models/<N>/ and the pointers")
    admin_token: SecretStr | None = Field(None, description="bearer token for /reload, /feedback, …")
    max_batch: int = Field(1000, ge=1, description="most commits in one /predict/batch request")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="largest accepted request body")
    ort_intra_op_threads: int = Field(1, ge=0, description="onnxruntime intra-op threads (0 = ort default)")
    ort_inter_op_threads: int = Field(1, ge=0, description="onnxruntime inter-op threads (0 = ort default)")
    pointer_poll_seconds: float = Field(
        1.0, gt=0, description="how often each process checks the champion pointer file"
    )
    max_shadows: int = Field(
        MAX_CHALLENGERS, ge=0, description="challengers scored in shadow at most (newest of the challenger pointer)"
    )
    explain_top_k: int = Field(3, ge=0, le=15, description="factors returned per explained prediction")
    access_log: bool = Field(False, description="uvicorn access log (costs ~13% throughput)")
    database_url: str = Field(
        "sqlite:///commitrisk.db", description="prediction log + feedback (SQLite file or PostgreSQL URL)"
    )
    prediction_log: bool = Field(True, description="log every served prediction")
    log_queue_size: int = Field(
        50_000, ge=1, description="rows queued between requests and the log writer at most (≈ 300 bytes a row)"
    )
    log_batch_size: int = Field(10_000, ge=1, description="rows written per database transaction at most")
    log_flush_seconds: float = Field(0.5, gt=0, description="longest a queued record waits to be written")
    retention_days: float = Field(180.0, gt=0, description="predictions older than this are deleted")
    label_delay_days: float = Field(90.0, ge=0, description="days before a commit's label is mature")
    drift_interval_seconds: float = Field(600.0, gt=0, description="schedule of the drift job")
    monitoring_job: bool = Field(
        True, description="run the scheduled drift/performance job in the service (false: `commitrisk monitor` does)"
    )
    drift_window_rows: int = Field(5000, ge=1, description="newest logged predictions compared to reference")
    drift_window_days: float | None = Field(None, gt=0, description="or: predictions of the last D days")
    drift_min_rows: int = Field(100, ge=1, description="fewer rows than this → 'not enough data'")
