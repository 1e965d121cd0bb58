"""The scheduled monitoring job: drift, performance and data quality computed from the store, saved back.

Runs in a spawned low-priority child of the service (or in `commitrisk monitor`), so reading a 50k-row
window and running Evidently never take the serving process's GIL or memory. The service's gauges only
read the small stored results.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from app.contract import ModelManifest
from app.errors import CommitRiskError
from app.monitoring.drift import evidently_available, run_drift_job
from app.monitoring.performance import PerformanceReport, evaluate
from app.monitoring.quality import DataQualityReport, summarise
from app.monitoring.store import Store
from app.repository import ModelRepository

log = logging.getLogger("commitrisk.job")

PERFORMANCE = "performance"
DATA_QUALITY = "data_quality"


def performance_of(store: Store, rows: int, days: float | None, repository: str | None = None) -> PerformanceReport:
    """Realised metrics over the labelled window and the label-free estimate over the whole window (of one
    repository's predictions when `repository` is given: an unknown one gives an empty report)."""
    labelled, y = store.labelled_window(rows=rows, days=days, repository=repository)
    window = store.window(rows=rows, days=days, repository=repository)
    effort = labelled.features["la"] + labelled.features["ld"]
    report = evaluate(y, labelled.probability, labelled.label, effort, window.probability, window.label)
    return report.model_copy(update={"repository": repository})


def quality_of(store: Store, models_dir: Path, rows: int, days: float | None) -> DataQualityReport:
    """Values outside the champion's training ranges per feature, and rejections, over the window."""
    window = store.window(rows=rows, days=days)
    # Rejections over the same period as the window (all retained ones while nothing is logged).
    since = float(window.time.min()) if window.rows else 0.0
    if days is not None:
        since = time.time() - days * 86400.0
    return summarise(window, champion_manifest(models_dir), store.rejection_counts(since))


def champion_manifest(models_dir: Path) -> ModelManifest | None:
    """The served version's manifest (champion pointer, else latest), or None without a valid one."""
    repository = ModelRepository(models_dir)
    try:
        version = repository.target()
        return None if version is None else repository.manifest(version)
    except CommitRiskError:
        return None


def run_job(
    database_url: str,
    models_dir: str,
    window_rows: int,
    window_days: float | None,
    min_rows: int,
    schema: str | None = None,
    drift: bool = True,
) -> str:
    """One pass; returns the drift status ('ok' | 'not_enough_data' | 'error' | 'skipped').

    Top-level and argument-only so it can run in a spawned child process.
    """
    status = "skipped"
    if drift and evidently_available():
        status = run_drift_job(database_url, models_dir, window_rows, window_days, min_rows, schema)
    store = Store.open(database_url, schema=schema)
    try:
        store.save_summary(PERFORMANCE, performance_of(store, window_rows, window_days).model_dump(mode="json"))
        quality = quality_of(store, Path(models_dir), window_rows, window_days)
        store.save_summary(DATA_QUALITY, quality.model_dump(mode="json"))
    finally:
        store.close()
    return status
