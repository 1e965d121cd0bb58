"""The monitoring side of one service process: prediction log, scheduled job, gauges.

The job (app/job.py) runs in a spawned, low-priority child process (its own GIL and memory, evidently
imported there only) and stores its results in the database, so every worker and replica serves the same
newest result. Without the `monitor` extra the child skips drift and `commitrisk monitor` computes it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.errors import CommitRiskError
from app.monitoring.drift import evidently_available
from app.monitoring.job import DATA_QUALITY, PERFORMANCE, performance_of, quality_of, run_job
from app.monitoring.leader import job_lock
from app.monitoring.performance import PerformanceReport
from app.monitoring.prediction_log import PredictionBatch, PredictionLog, RejectionRecord
from app.monitoring.quality import DataQualityReport
from app.monitoring.store import Store
from app.settings import Settings

log = logging.getLogger("commitrisk.monitor")

PERFORMANCE_METRICS = (
    "roc_auc", "pr_auc", "precision", "recall", "brier", "recall_at_20_effort",
    "estimated_precision", "estimated_recall",
)  # fmt: skip


# Every worker reads the same database row, so the newest write is the right merge across processes.
MOST_RECENT: Literal["mostrecent"] = "mostrecent"
FIRST_RUN_DELAY_SECONDS = 30.0
JOB_LOCK = "commitrisk-monitoring-job"  # app/leader.py: one replica runs the scheduled job at a time


class DriftUnavailable(CommitRiskError):
    """This process cannot compute drift (the `monitor` extra is not installed)."""


class MonitoringMetrics:
    """Gauges and counters of the monitoring side; values read from the database are `mostrecent`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r, last = registry, MOST_RECENT
        self.log_dropped = Counter(
            "commitrisk_prediction_log_dropped", "Predictions not logged (queue full or database error)",
            registry=r,
        )  # fmt: skip
        self.log_written = Counter(
            "commitrisk_prediction_log_written", "Predictions written to the prediction log", registry=r
        )
        self.log_dropped.inc(0)
        self.rejected = Counter(
            "commitrisk_rejected_inputs", "Requests refused before scoring, by reason", ["reason"], registry=r
        )
        self.drift_share = Gauge(
            "commitrisk_drift_share", "Share of features drifted in the newest drift run (NaN: no result)",
            registry=r, multiprocess_mode=last,
        )  # fmt: skip
        self.feature_score = Gauge(
            "commitrisk_feature_drift_score", "Per-feature drift score (p-value or distance, see /drift)",
            ["feature"], registry=r, multiprocess_mode=last,
        )  # fmt: skip
        self.feature_drifted = Gauge(
            "commitrisk_feature_drifted", "1 when the feature drifted in the newest run",
            ["feature"], registry=r, multiprocess_mode=last,
        )  # fmt: skip
        self.drift_share.set(math.nan)  # "no result yet", not "no drift"
        self.drift_last_run = Gauge(
            "commitrisk_drift_last_run_timestamp_seconds", "Unix time of the newest drift run (any status)",
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.performance = Gauge(
            "commitrisk_model_performance", "Model metric over the labelled window (NaN: undefined)",
            ["metric"], registry=r, multiprocess_mode=last,
        )  # fmt: skip
        self.performance_rows = Gauge(
            "commitrisk_model_performance_rows", "Rows behind each model metric",
            ["metric"], registry=r, multiprocess_mode=last,
        )  # fmt: skip
        self.window_out_of_range = Gauge(
            "commitrisk_window_out_of_range_rows", "Logged rows outside the training range in the window",
            ["feature"], registry=r, multiprocess_mode=last,
        )  # fmt: skip
        self.cycles = Counter(
            "commitrisk_monitoring_cycles", "Scheduled monitoring cycles: ran the job, or skipped (fresh result)",
            ["result"], registry=r,
        )  # fmt: skip


class Monitoring:
    """Store + log writer + schedule; `start()` in the app lifespan, `stop()` flushes the log."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, schema: str | None = None) -> None:
        self.settings = settings
        self.schema = schema
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def start(self, schedule: bool = True) -> None:
        """Start the log writer and (when `schedule`) the periodic drift/performance thread."""
        if self.settings.prediction_log:
            self.log.start()
        if schedule and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="commitrisk-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Flush every queued record, stop the schedule and the child process, close the database."""
        self._stop.set()
        self.log.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._pool_lock:
            if self._pool is not None:
                # A running job only loses its result (its transaction rolls back); shutdown must not wait.
                children = list(getattr(self._pool, "_processes", {}).values())
                self._pool.shutdown(wait=False, cancel_futures=True)
                for child in children:
                    child.terminate()
                self._pool = None
        self.store.close()

    def log_batch(self, batch: PredictionBatch) -> None:
        """The `app.state.prediction_sink`: queue the answered batch (never blocks; a full queue drops it)."""
        self.log.submit(batch)

    def record_rejection(self, reason: str, count: int = 1) -> None:
        """Count inputs refused before scoring (by a short reason such as `invalid_input`)."""
        self.metrics.rejected.labels(reason).inc(count)
        if self.settings.prediction_log:
            self.log.submit(RejectionRecord(time.time(), reason, count))

    def job(self, drift: bool = True) -> Future[str]:
        """Submit one monitoring pass (drift when evidently is installed, performance, data quality)."""
        s = self.settings
        args = (s.database_url, str(s.models_dir), s.drift_window_rows, s.drift_window_days, s.drift_min_rows)
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_lower_priority,
                    max_tasks_per_child=1,  # evidently's memory goes back to the OS after each run
                )
            return self._pool.submit(run_job, *args, schema=self.schema, drift=drift)

    async def refresh_drift(self) -> str:
        """Recompute now (out of process, off the event loop); then refresh the gauges."""
        if not evidently_available():
            raise DriftUnavailable(
                "drift needs the `monitor` extra (evidently); run `commitrisk monitor` next to the service"
            )
        status = await asyncio.wrap_future(self.job())
        await asyncio.to_thread(self.update_gauges)
        return status

    def _loop(self) -> None:
        # Gauges from the database at once; the first run waits a little so start-up stays light.
        delay = min(self.settings.drift_interval_seconds, FIRST_RUN_DELAY_SECONDS)
        task = self.update_gauges
        while True:
            try:
                task()
            except Exception:
                log.exception("monitoring cycle failed")
            if self._stop.wait(delay):
                return
            task, delay = self.run_cycle, self.settings.drift_interval_seconds

    def run_cycle(self) -> None:
        """One scheduled pass: the job (on one worker/replica at a time, unless fresh), gauges, retention."""
        if not self.settings.monitoring_job:
            # `commitrisk monitor` computes elsewhere (no CPU-bound neighbour on this host); only read its results.
            self.update_gauges()
            return
        interval = self.settings.drift_interval_seconds
        name = f"{JOB_LOCK}:{self.schema}" if self.schema else JOB_LOCK
        # Waiting for the holder (instead of skipping at once) lets every replica read its result right after.
        with job_lock(self.store.engine, name, timeout=interval, stop=self._stop) as held:
            latest = self.store.latest_summary(PERFORMANCE)
            ran = held and (latest is None or time.time() - latest[0] >= 0.9 * interval)
            if ran:
                self.job().result()
                self.store.apply_retention(self.settings.retention_days)
        self.metrics.cycles.labels("ran" if ran else "skipped").inc()
        self.update_gauges()

    def update_gauges(self) -> None:
        """Copy the newest stored results into the gauges (small reads: the job did the work)."""
        m = self.metrics
        latest = self.store.latest_drift_report()
        if latest is not None:
            m.drift_last_run.set(latest.computed_at)
            ok = latest.status == "ok"
            m.drift_share.set(latest.report["drift_share"] if ok else math.nan)
            for f in latest.report.get("features", []) if ok else []:
                m.feature_score.labels(f["feature"]).set(f["score"])
                m.feature_drifted.labels(f["feature"]).set(1.0 if f["drifted"] else 0.0)
        performance = self.store.latest_summary(PERFORMANCE)
        for name in PERFORMANCE_METRICS if performance is not None else ():
            metric = performance[1][name]  # type: ignore[index]
            m.performance.labels(name).set(math.nan if metric["value"] is None else metric["value"])
            m.performance_rows.labels(name).set(metric["rows"])
        quality = self.store.latest_summary(DATA_QUALITY)
        for feature, counts in quality[1]["out_of_range"].items() if quality is not None else ():
            m.window_out_of_range.labels(feature).set(counts["below"] + counts["above"])

    def performance(self) -> PerformanceReport:
        """Fresh metrics over the current window (GET /monitoring/performance, not the schedule)."""
        return performance_of(self.store, self.settings.drift_window_rows, self.settings.drift_window_days)

    def data_quality(self) -> DataQualityReport:
        """Fresh range and rejection counts over the current window (GET /monitoring/data-quality)."""
        s = self.settings
        return quality_of(self.store, s.models_dir, s.drift_window_rows, s.drift_window_days)


def _lower_priority() -> None:
    # Background statistics must lose every CPU contest against request handling: SCHED_IDLE runs only
    # on otherwise idle CPU (nice 19 where unavailable), and one BLAS thread keeps the child to one core.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def run_monitor(settings: Settings, once: bool = False) -> None:
    """`commitrisk monitor`: run the job in this process on the schedule (for a slim serving image)."""
    store = Store.open(settings.database_url)
    try:
        while True:
            # Always runs once it holds the lock: API replicas without evidently store no drift result.
            with job_lock(store.engine, JOB_LOCK, timeout=settings.drift_interval_seconds) as held:
                if held:
                    status = run_job(
                        settings.database_url, str(settings.models_dir), settings.drift_window_rows,
                        settings.drift_window_days, settings.drift_min_rows,
                    )  # fmt: skip
                    deleted = store.apply_retention(settings.retention_days)
                    log.info("monitoring job: drift %s; retention deleted %d predictions", status, deleted)
                else:
                    log.warning("monitoring job skipped: another process held the job lock for a whole interval")
            if once:
                return
            time.sleep(settings.drift_interval_seconds)
    finally:
        store.close()
