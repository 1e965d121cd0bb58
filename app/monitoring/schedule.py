"""When the monitoring job runs: on a thread of each service process, or in `commitrisk monitor` (`run_monitor`).

In the service the job (app/monitoring/job.py) runs in a spawned, low-priority child process (its own GIL and
memory, evidently imported there only) and stores its results in the database; one worker/replica at a time
runs it (a named job lock), and every process then copies the stored results into its gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor

from app.errors import DatabaseUnavailable, DriftUnavailable
from app.monitoring import database
from app.monitoring.availability import MESSAGE, Availability
from app.monitoring.drift import evidently_available
from app.monitoring.gauges import MonitoringMetrics
from app.monitoring.job import PERFORMANCE, run_job
from app.monitoring.leader import job_lock
from app.monitoring.store import Store
from app.settings import Settings

log = logging.getLogger("commitrisk.monitor")

FIRST_RUN_DELAY_SECONDS = 30.0
JOB_LOCK = "commitrisk-monitoring-job"  # app/monitoring/leader.py: one replica runs the job at a time
FRESH_SHARE = 0.9  # a result younger than this share of the interval is reused, not recomputed
PR_SET_PDEATHSIG = 1  # prctl(2): the job process gets SIGKILL when its worker dies


class Schedule:
    """The periodic pass of one service process: `start()` a thread, `run_cycle()` once, `stop()` both."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: MonitoringMetrics,
        schema: str | None = None,
        availability: Availability | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.availability = availability
        self.metrics = metrics
        self.schema = schema
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def start(self) -> None:
        """Start the schedule thread (idempotent): gauges at once, the first job after a short delay."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="commitrisk-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and the child process; a running job only loses its result (its transaction rolls back)."""
        self._stop.set()
        with self._pool_lock:
            if self._pool is not None:
                children = list(getattr(self._pool, "_processes", {}).values())
                self._pool.shutdown(wait=False, cancel_futures=True)
                for child in children:  # shutdown must not wait for evidently to finish
                    child.terminate()
                self._pool = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def job(self, drift: bool = True) -> Future[str]:
        """Submit one monitoring pass to the child process (drift when evidently is installed, performance, quality)."""
        s = self.settings
        args = (s.database_url, str(s.models_dir), s.drift_window_rows, s.drift_window_days, s.drift_min_rows)
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_prepare_child,
                    initargs=(os.getpid(),),
                    max_tasks_per_child=1,  # evidently's memory goes back to the OS after each run
                )
            return self._pool.submit(run_job, *args, schema=self.schema, drift=drift)

    async def refresh_drift(self) -> str:
        """Recompute now (out of process, off the event loop), then refresh the gauges; the drift status."""
        if not evidently_available():
            raise DriftUnavailable(
                "drift needs the `monitor` extra (evidently); run `commitrisk monitor` next to the service"
            )
        if not self._database_up():
            raise DatabaseUnavailable(MESSAGE)
        try:
            status = await asyncio.wrap_future(self.job())
        except Exception as exc:
            # The child's error crossed a process boundary: ask the database itself whether it was an outage.
            if database.is_outage(exc) or (self.availability is not None and not self.availability.check()):
                raise DatabaseUnavailable(MESSAGE) from None
            raise
        await asyncio.to_thread(self.metrics.refresh, self.store)
        return status

    def _database_up(self) -> bool:
        return self.availability is None or self.availability.up

    def run_cycle(self) -> None:
        """One scheduled pass: the job (on one worker/replica at a time, unless fresh), gauges, retention.

        Skipped while the database is down (the next pass runs when it is back)."""
        if not self._database_up():
            self.metrics.cycles.labels("skipped").inc()
            return
        if not self.settings.monitoring_job:
            # `commitrisk monitor` computes elsewhere (no CPU-bound neighbour on this host); only read its results.
            self.metrics.refresh(self.store)
            return
        interval = self.settings.drift_interval_seconds
        name = f"{JOB_LOCK}:{self.schema}" if self.schema else JOB_LOCK
        # Waiting for the holder (instead of skipping at once) lets every replica read its result right after.
        with job_lock(self.store.engine, name, timeout=interval, stop=self._stop) as held:
            latest = self.store.latest_summary(PERFORMANCE)
            ran = held and (latest is None or time.time() - latest[0] >= FRESH_SHARE * interval)
            if ran:
                self.job().result()
                self.store.apply_retention(self.settings.retention_days)
        self.metrics.cycles.labels("ran" if ran else "skipped").inc()
        self.metrics.refresh(self.store)

    def _loop(self) -> None:
        # Gauges from the database at once; the first run waits a little so start-up stays light.
        delay = min(self.settings.drift_interval_seconds, FIRST_RUN_DELAY_SECONDS)
        first = True
        while True:
            try:
                if first:
                    if self._database_up():
                        self.metrics.refresh(self.store)
                else:
                    self.run_cycle()
            except Exception as exc:
                if self._stop.is_set():  # a job cut short by stop() is no failure
                    pass
                elif database.is_outage(exc) and self.availability is not None:
                    self.availability.mark_down(exc)  # logged once per outage, without a traceback
                else:
                    log.exception("monitoring cycle failed")
            if self._stop.wait(delay):
                return
            first, delay = False, self.settings.drift_interval_seconds


def _prepare_child(worker: int) -> None:
    """In the job's child process: background priority, and death with its worker."""
    _lower_priority()
    # The pool keeps an idle child between jobs; a worker killed with SIGKILL (OOM killer) cannot stop it, and the
    # child holds both ends of its work queue, so it would idle forever. The kernel kills it instead (Linux's
    # parent-death signal): no CPU needed, which a SCHED_IDLE process on a busy host may not get for minutes.
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker:  # the worker died before the call
        os._exit(0)


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
    store = Store.open(settings.database_url, partition=settings.log_partition)
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
