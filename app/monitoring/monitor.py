"""The monitoring side of one service process, started and stopped as one unit by the app's lifespan.

It owns the store (one engine), the write-behind prediction log, the schedule of the monitoring job and the
families they update; `stop()` stops the schedule, flushes the log and closes the database, in that order.
The job's own work lives in job.py; when it runs in schedule.py; its gauges in gauges.py.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from app.monitoring.gauges import MonitoringMetrics
from app.monitoring.job import performance_of, quality_of
from app.monitoring.performance import PerformanceReport
from app.monitoring.prediction_log import PredictionLog, RejectionRecord
from app.monitoring.quality import DataQualityReport
from app.monitoring.schedule import Schedule
from app.monitoring.store import Store
from app.settings import Settings


class Monitoring:
    """Store + prediction log + schedule; `start()` in the app lifespan, `stop()` flushes the log."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, schema: str | None = None) -> None:
        self.settings = settings
        self.metrics = MonitoringMetrics(registry)
        self.store = Store.open(settings.database_url, schema=schema)
        self.log = PredictionLog(
            self.store,
            settings.log_queue_size,
            settings.log_batch_size,
            settings.log_flush_seconds,
            on_drop=self.metrics.log_dropped.inc,
            on_write=self.metrics.log_written.inc,
        )
        self.schedule = Schedule(settings, self.store, self.metrics, schema)

    def start(self, schedule: bool = True) -> None:
        """Start the log writer (when the log is on) and, when `schedule`, the periodic job."""
        if self.settings.prediction_log:
            self.log.start()
        if schedule:
            self.schedule.start()

    def stop(self) -> None:
        """Stop the schedule and its child process, write every queued record, close the database."""
        self.schedule.stop()
        self.log.close()
        self.store.close()

    def record_rejection(self, reason: str, count: int = 1) -> None:
        """Count inputs refused before scoring (by a short reason such as `invalid_input`)."""
        self.metrics.rejected.labels(reason).inc(count)
        if self.settings.prediction_log:
            self.log.submit(RejectionRecord(time.time(), reason, count))

    def performance(self) -> PerformanceReport:
        """Fresh metrics over the current window (GET /monitoring/performance, not the schedule)."""
        return performance_of(self.store, self.settings.drift_window_rows, self.settings.drift_window_days)

    def data_quality(self) -> DataQualityReport:
        """Fresh range and rejection counts over the current window (GET /monitoring/data-quality)."""
        s = self.settings
        return quality_of(self.store, s.models_dir, s.drift_window_rows, s.drift_window_days)
