"""Service settings from `COMMITRISK_*` environment variables (pydantic-settings); no import-time instance."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.contract import MAX_CHALLENGERS


class Settings(BaseSettings):
    """Everything an operator can configure; build one per app with `Settings()` or explicit values."""

    model_config = SettingsConfigDict(env_prefix="COMMITRISK_", env_file=None, extra="ignore")

    models_dir: Path = Field(Path("models"), description="directory holding models/<N>/ and the pointers")
    admin_token: SecretStr | None = Field(None, description="bearer token for /reload, /feedback, …")
    client_tokens: SecretStr | None = Field(
        None, description="comma-separated bearer tokens the scoring routes require (unset: open to every client)"
    )
    client_tokens_file: Path | None = Field(
        None, description="file of client tokens, one per line (re-read when it changes)"
    )
    max_batch: int = Field(1000, ge=1, description="most commits in one /predict/batch request")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="largest accepted request body")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="longest a connection may take to send a request's head (then 408 and close)"
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="longest a request body may take to arrive, from the request's start (then 408)"
    )
    max_concurrent_requests: int = Field(
        256, ge=1, description="requests one worker serves at once; more → 503 Overloaded (probes exempt)"
    )
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
    database_timeout_seconds: float = Field(
        5.0, gt=0, description="longest wait for a database connection before the database counts as down"
    )
    database_check_seconds: float = Field(
        2.0, gt=0, description="how often each process checks its database (and reconnects after an outage)"
    )
    prediction_log: bool = Field(True, description="log every served prediction")
    log_queue_size: int = Field(
        50_000, ge=1, description="rows queued between requests and the log writer at most (≈ 250 B–1 kB a row)"
    )
    log_batch_size: int = Field(10_000, ge=1, description="rows written per database transaction at most")
    log_flush_seconds: float = Field(0.5, gt=0, description="longest a queued record waits to be written")
    retention_days: float = Field(180.0, gt=0, description="predictions older than this are deleted")
    log_partition: Literal["none", "monthly", "daily"] = Field(
        "none", description="PostgreSQL: partition the prediction log by month or day (retention drops partitions)"
    )
    label_delay_days: float = Field(90.0, ge=0, description="days before a commit's label is mature")
    drift_interval_seconds: float = Field(600.0, gt=0, description="schedule of the drift job")
    monitoring_job: bool = Field(
        True, description="run the scheduled drift/performance job in the service (false: `commitrisk monitor` does)"
    )
    drift_window_rows: int = Field(5000, ge=1, description="newest logged predictions compared to reference")
    drift_window_days: float | None = Field(None, gt=0, description="or: predictions of the last D days")
    drift_min_rows: int = Field(100, ge=1, description="fewer rows than this → 'not enough data'")
    ui_refresh_seconds: float = Field(
        15.0, ge=0, description="web pages: oldest prediction counts shown (0: recounted on every view)"
    )
    ui_labels_refresh_seconds: float = Field(
        300.0, ge=0, description="web pages: oldest labelled metrics shown (0: recomputed on every view)"
    )
    ui_process: bool = Field(
        True, description="web pages: rendered by a page process of each worker, started on the first /ui request"
    )
    ui_process_nice: int = Field(
        10, ge=0, le=19, description="web pages: niceness of the page process (scoring wins every CPU contest)"
    )

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, url: str) -> str:
        # A URL no database can answer is a configuration error (one line, exit 2), unlike a database that is
        # merely down, which the service rides out (app/monitoring/availability.py).
        from app.monitoring.database import check_url

        return check_url(url)
