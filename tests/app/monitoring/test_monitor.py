"""The monitoring side as one unit: start/stop order (the log is flushed, the store closed), rejections, views."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from app.contract import FEATURES
from app.errors import DatabaseUnavailable
from app.monitoring.monitor import Monitoring
from app.monitoring.prediction_log import PredictionBatch
from app.monitoring.store import Store
from app.settings import Settings
from tests.support import Database


def batch(commits: list[str], probability: float = 0.8) -> PredictionBatch:
    """An answered request of `len(commits)` commits, all features 1.0."""
    n = len(commits)
    return PredictionBatch(
        time=time.time(),
        request_id="r",
        features=np.ones((n, len(FEATURES))),
        probabilities=np.full(n, probability),
        labels=np.full(n, probability >= 0.5),
        risk_bands=["high"] * n,
        model_version=1,
        commit_ids=commits,
    )


def test_rejections_are_counted_and_summarised(database: Database, reference_models: Path) -> None:
    settings = Settings(models_dir=reference_models, database_url=database.url, log_flush_seconds=0.01)
    registry = CollectorRegistry()
    monitoring = Monitoring(settings, registry, schema=database.schema)
    monitoring.start(schedule=False)
    try:
        monitoring.record_rejection("invalid_input", 2)
        monitoring.record_rejection("batch_too_large")
        assert registry.get_sample_value("commitrisk_rejected_inputs_total", {"reason": "invalid_input"}) == 2
        monitoring.log.close()  # written now
        assert monitoring.data_quality().rejected == {"invalid_input": 2, "batch_too_large": 1}
    finally:
        monitoring.stop()


def test_stop_flushes_the_log_then_closes_the_store(tmp_path: Path, reference_models: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    # A flush interval far beyond the test: only stop() can write these rows.
    settings = Settings(models_dir=reference_models, database_url=url, log_flush_seconds=3600)
    registry = CollectorRegistry()
    monitoring = Monitoring(settings, registry)
    monitoring.start()
    assert monitoring.log.submit(batch(["a", "b", "c"]))
    monitoring.stop()
    assert registry.get_sample_value("commitrisk_prediction_log_written_total") == 3
    assert monitoring.store.engine.pool.checkedout() == 0
    reopened = Store.open(url)
    assert reopened.count_predictions() == 3
    reopened.close()
    assert not monitoring.log.submit(batch(["d"]))  # stopped: refused and counted, never raises
    assert registry.get_sample_value("commitrisk_prediction_log_dropped_total", {"reason": "closed"}) == 1


def test_with_the_log_off_rejections_only_reach_the_metrics(tmp_path: Path, reference_models: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    registry = CollectorRegistry()
    monitoring = Monitoring(Settings(models_dir=reference_models, database_url=url, prediction_log=False), registry)
    monitoring.start(schedule=False)
    monitoring.record_rejection("malformed_body")
    monitoring.stop()
    assert registry.get_sample_value("commitrisk_rejected_inputs_total", {"reason": "malformed_body"}) == 1
    reopened = Store.open(url)
    assert reopened.rejection_counts(since=0) == {}
    reopened.close()


def test_views_compute_over_the_current_window(tmp_path: Path, reference_models: Path) -> None:
    settings = Settings(models_dir=reference_models, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    monitoring = Monitoring(settings, CollectorRegistry())
    try:
        monitoring.log.submit(batch(["a", "b"], probability=0.9))
        monitoring.log.submit(batch(["c", "d"], probability=0.1))
        monitoring.log.close()
        monitoring.store.upsert_feedback([{"commit_id": c, "buggy": c in "ab"} for c in "abcd"])
        performance = monitoring.performance()
        assert performance.labelled_rows == 4 and performance.roc_auc.value == 1.0
        quality = monitoring.data_quality()
        assert quality.rows == 4 and quality.model_version == 1
    finally:
        monitoring.stop()


def test_a_bad_database_url_fails_with_the_settings(reference_models: Path) -> None:
    with pytest.raises(ValidationError, match="'nope' databases are not supported"):  # before anything starts
        Settings(models_dir=reference_models, database_url="nope://x")


def test_built_and_started_without_its_database_it_holds_rows_until_it_is_back(
    tmp_path: Path, reference_models: Path
) -> None:
    directory = tmp_path / "later"
    settings = Settings(models_dir=reference_models, database_url=f"sqlite:///{directory / 'm.db'}",
                        database_check_seconds=0.05, log_flush_seconds=0.01)  # fmt: skip
    registry = CollectorRegistry()
    monitoring = Monitoring(settings, registry)  # no exception: the service starts anyway
    monitoring.start(schedule=False)
    try:
        assert monitoring.availability.state() == "down"
        assert registry.get_sample_value("commitrisk_database_up") == 0
        with pytest.raises(DatabaseUnavailable):
            monitoring.performance()
        assert monitoring.log.submit(batch(["a", "b"]))
        directory.mkdir()
        deadline = time.monotonic() + 30
        while monitoring.log.written < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert monitoring.log.written == 2 and monitoring.log.dropped == 0
        assert registry.get_sample_value("commitrisk_database_up") == 1
        assert monitoring.performance().labelled_rows == 0
    finally:
        monitoring.stop()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_the_service_partitions_its_log_when_configured_and_logs_into_today(
    database: Database, reference_models: Path
) -> None:
    from app.monitoring import partitions

    settings = Settings(models_dir=reference_models, database_url=database.url, log_partition="daily")
    monitoring = Monitoring(settings, CollectorRegistry(), schema=database.schema)  # migrates (and partitions) at once
    monitoring.start(schedule=False)
    try:
        monitoring.log.submit(batch(["a", "b"]))
        monitoring.log.close()
        with monitoring.store.engine.connect() as conn:
            assert partitions.is_partitioned(conn, "predictions")
            today = partitions.partition_name("predictions", partitions.period_start("daily", time.time()).timestamp())
            homes = conn.exec_driver_sql(f'SELECT tableoid::regclass::text FROM "{database.schema}".predictions')
            assert {home.split(".")[-1] for (home,) in homes} == {today}
        assert monitoring.store.count_predictions() == 2
    finally:
        monitoring.stop()
