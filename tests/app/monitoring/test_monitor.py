"""Monitoring of one process: the drift job runs out of process on schedule, gauges follow the database."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from app.contract import FEATURES, REFERENCE_FILE
from app.monitoring.monitor import Monitoring, run_monitor
from app.monitoring.tables import drift_reports
from app.settings import Settings
from tests.support import Database, build_model_version


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, shared_commits_dir: Path) -> Path:
    models = tmp_path_factory.mktemp("models")
    frame = pd.read_csv(shared_commits_dir / "HikariCP.csv", usecols=list(FEATURES))
    frame.iloc[::2].to_parquet(build_model_version(models, 1) / REFERENCE_FILE)
    return models


def fill(monitoring: Monitoring, shared_commits_dir: Path, project: str, n: int) -> None:
    frame = pd.read_csv(shared_commits_dir / f"{project}.csv", usecols=list(FEATURES)).iloc[:n]
    rows = [
        {name: float(value) for name, value in record.items()}
        | {"time": time.time(), "commit_id": f"{project}-{i}", "probability": 0.4, "label": False}
        | {"risk_band": "medium", "model_version": 1}
        for i, record in enumerate(frame.to_dict("records"))
    ]
    monitoring.store.insert_predictions(rows)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_cycle_runs_drift_once_per_interval_and_sets_gauges(
    database: Database, models_dir: Path, shared_commits_dir: Path
) -> None:
    settings = Settings(models_dir=models_dir, database_url=database.url, drift_min_rows=50)
    registry = CollectorRegistry()
    monitoring = Monitoring(settings, registry, schema=database.schema)
    try:
        assert sample(registry, "commitrisk_drift_share") != sample(registry, "commitrisk_drift_share")  # NaN
        fill(monitoring, shared_commits_dir, "guice", 300)
        monitoring.run_cycle()
        share = sample(registry, "commitrisk_drift_share")
        assert share is not None and share > 0.5
        assert sample(registry, "commitrisk_feature_drifted", feature="la") == 1.0
        assert sample(registry, "commitrisk_drift_last_run_timestamp_seconds") == pytest.approx(time.time(), abs=300)
        assert sample(registry, "commitrisk_model_performance_rows", metric="estimated_precision") == 300
        monitoring.run_cycle()  # within the interval: another worker's fresh result is reused
        with monitoring.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(drift_reports)).scalar() == 1
    finally:
        monitoring.stop()


def test_cycle_with_the_job_off_only_reads_results(tmp_path: Path, models_dir: Path, shared_commits_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    off = Settings(models_dir=models_dir, database_url=url, drift_min_rows=50, monitoring_job=False)
    registry = CollectorRegistry()
    monitoring = Monitoring(off, registry)
    try:
        fill(monitoring, shared_commits_dir, "guice", 200)
        monitoring.run_cycle()  # the service computes nothing itself …
        with monitoring.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(drift_reports)).scalar() == 0
        run_monitor(off.model_copy(update={"monitoring_job": True}), once=True)  # … `commitrisk monitor` does
        monitoring.run_cycle()
        share = sample(registry, "commitrisk_drift_share")
        assert share is not None and share > 0.5  # and the service's gauges show its result
        assert sample(registry, "commitrisk_monitoring_cycles_total", result="ran") in (None, 0.0)
    finally:
        monitoring.stop()


def test_rejections_are_counted_and_summarised(database: Database, models_dir: Path) -> None:
    settings = Settings(models_dir=models_dir, database_url=database.url, log_flush_seconds=0.01)
    registry = CollectorRegistry()
    monitoring = Monitoring(settings, registry, schema=database.schema)
    monitoring.start(schedule=False)
    monitoring.record_rejection("invalid_input", 2)
    monitoring.record_rejection("batch_too_large")
    assert sample(registry, "commitrisk_rejected_inputs_total", reason="invalid_input") == 2
    monitoring.log.close()
    assert monitoring.data_quality().rejected == {"invalid_input": 2, "batch_too_large": 1}
    monitoring.stop()


def test_monitor_command_loop_once_stores_a_report(tmp_path: Path, models_dir: Path, shared_commits_dir: Path) -> None:
    settings = Settings(models_dir=models_dir, database_url=f"sqlite:///{tmp_path / 'm.db'}", drift_min_rows=50)
    monitoring = Monitoring(settings, CollectorRegistry())
    fill(monitoring, shared_commits_dir, "HikariCP", 400)
    run_monitor(settings, once=True)
    latest = monitoring.store.latest_drift_report()
    assert latest is not None and latest.status == "ok" and latest.report["window"]["rows"] == 400
    monitoring.stop()


def test_stop_terminates_a_running_job_instead_of_waiting(tmp_path: Path, models_dir: Path) -> None:
    settings = Settings(models_dir=models_dir, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    monitoring = Monitoring(settings, CollectorRegistry())
    future = monitoring.job()
    deadline = time.monotonic() + 30
    while not multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    children = multiprocessing.active_children()
    assert children
    monitoring.stop()
    for child in children:
        child.join(timeout=10)
        assert not child.is_alive()
    assert future.done()
