"""The monitoring side of one service process, started and stopped as one unit by the app's lifespan.

It owns the store (one engine), whether the database answers (availability.py), the write-behind prediction
log, the schedule of the monitoring job and the families they update; `stop()` stops the schedule, flushes the
log and closes the database, in that order. The job's own work lives in job.py; when it runs in schedule.py;
its gauges in gauges.py. Nothing here needs the database to be up: routes reach it through `use`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry

from app.monitoring.availability import Availability
from app.monitoring.gauges import MonitoringMetrics
from app.monitoring.job import performance_of, quality_of
from app.monitoring.performance import PerformanceReport
from app.monitoring.prediction_log import PredictionLog, RejectionRecord
from app.monitoring.quality import DataQualityReport
from app.monitoring.schedule import Schedule
from app.monitoring.store import Store
from app.settings import Settings
from app.tally import adder

T = TypeVar("T")


class Monitoring:
    """Store + prediction log + schedule; `start()` in the app lifespan, `stop()` flushes the log."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, schema: str | None = None) -> None:
        self.settings = settings
        self.metrics = MonitoringMetrics(registry)
        self.store = Store.unopened(
            settings.database_url, schema, settings.database_timeout_seconds, settings.log_partition
        )
        self.availability = Availability(self.store, settings.database_check_seconds, self.metrics.database_up.set)
        # At once, so a reachable database is migrated and "up" before the first request; a database that
        # refuses connections answers in milliseconds, and a failed check only marks it down (never raises).
        self.availability.check()
        self.log = PredictionLog(
            self.store,
            settings.log_queue_size,
            settings.log_batch_size,
            settings.log_flush_seconds,
            on_drop=lambda n, reason: self.metrics.log_dropped.labels(reason).inc(n),
            on_write=self.metrics.log_written.inc,
            availability=self.availability,
            retry_seconds=settings.database_check_seconds,
            on_unwritten=adder(self.metrics.log_unwritten),
        )
        self.schedule = Schedule(settings, self.store, self.metrics, schema, self.availability)

    def start(self, schedule: bool = True) -> None:
        """Start the database check, the log writer (when the log is on) and, when `schedule`, the periodic job."""
        self.availability.start()
        if self.settings.prediction_log:
            self.log.start()
        if schedule:
            self.schedule.start()

    def stop(self) -> None:
        """Stop the schedule and its child process, write every queued record, close the database."""
        self.schedule.stop()
        self.log.close()
        self.availability.stop()
        self.store.close()

    def use(self, operation: Callable[[Store], T]) -> T:
        """Run `operation` on the store; 503 `DatabaseUnavailable` while the database is down (see Availability)."""
        return self.availability.use(operation)

    def record_rejection(self, reason: str, count: int = 1) -> None:
        """Count inputs refused before scoring (by a short reason such as `invalid_input`)."""
        self.metrics.rejected.labels(reason).inc(count)
        if self.settings.prediction_log:
            self.log.submit(RejectionRecord(time.time(), reason, count))

    def performance(self, repository: str | None = None) -> PerformanceReport:
        """Fresh metrics over the current window, optionally of one repository (GET /monitoring/performance)."""
        s = self.settings
        return self.use(lambda store: performance_of(store, s.drift_window_rows, s.drift_window_days, repository))

    def data_quality(self) -> DataQualityReport:
        """Fresh range and rejection counts over the current window (GET /monitoring/data-quality)."""
        s = self.settings
        return self.use(lambda store: quality_of(store, s.models_dir, s.drift_window_rows, s.drift_window_days))
