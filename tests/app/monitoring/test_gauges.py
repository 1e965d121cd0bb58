"""The monitoring families: names and zeros before any result, and `refresh` copying the newest stored results."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from app.monitoring.gauges import PERFORMANCE_METRICS, MonitoringMetrics
from app.monitoring.job import DATA_QUALITY, PERFORMANCE
from app.monitoring.store import Store
from tests.support import tool


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


def metric(value: float | None, rows: int) -> dict[str, object]:
    return {"value": value, "rows": rows}


def test_before_any_result_drift_is_nan_and_counters_are_zero(store: Store) -> None:
    registry = CollectorRegistry()
    MonitoringMetrics(registry).refresh(store)  # an empty database changes nothing
    get = registry.get_sample_value
    assert math.isnan(get("commitrisk_drift_share") or 0.0)
    for reason in ("queue_full", "database_unavailable", "refused", "closed"):
        assert get("commitrisk_prediction_log_dropped_total", {"reason": reason}) == 0
    assert get("commitrisk_database_up") == 0  # until the service's first check says otherwise
    assert get("commitrisk_drift_last_run_timestamp_seconds") == 0
    assert get("commitrisk_model_performance", {"metric": "roc_auc"}) is None


def test_refresh_copies_drift_performance_and_quality(store: Store) -> None:
    store.save_drift_report(
        "ok",
        {
            "drift_share": 0.4,
            "features": [
                {"feature": "la", "score": 0.001, "drifted": True},
                {"feature": "ns", "score": 0.7, "drifted": False},
            ],
        },
    )
    performance = {name: metric(0.5 + i / 100, 40) for i, name in enumerate(PERFORMANCE_METRICS)}
    store.save_summary(PERFORMANCE, performance | {"roc_auc": metric(None, 40)})
    store.save_summary(DATA_QUALITY, {"out_of_range": {"la": {"below": 1, "above": 4}}})
    registry = CollectorRegistry()
    MonitoringMetrics(registry).refresh(store)
    get = registry.get_sample_value
    assert get("commitrisk_drift_share") == 0.4
    assert get("commitrisk_feature_drift_score", {"feature": "la"}) == 0.001
    assert get("commitrisk_feature_drifted", {"feature": "la"}) == 1.0
    assert get("commitrisk_feature_drifted", {"feature": "ns"}) == 0.0
    assert math.isnan(get("commitrisk_model_performance", {"metric": "roc_auc"}) or 0.0)  # undefined: NaN
    assert get("commitrisk_model_performance", {"metric": "pr_auc"}) == 0.51
    assert get("commitrisk_model_performance_rows", {"metric": "brier"}) == 40
    assert get("commitrisk_window_out_of_range_rows", {"feature": "la"}) == 5


def test_a_failed_drift_run_shows_nan_but_moves_the_last_run_time(store: Store) -> None:
    registry = CollectorRegistry()
    gauges = MonitoringMetrics(registry)
    store.save_drift_report("ok", {"drift_share": 0.4, "features": []})
    gauges.refresh(store)
    store.save_drift_report("not_enough_data", {"message": "not enough data (3 < 100)"})
    gauges.refresh(store)
    assert math.isnan(registry.get_sample_value("commitrisk_drift_share") or 0.0)
    newest = store.latest_drift_report()
    assert newest is not None
    assert registry.get_sample_value("commitrisk_drift_last_run_timestamp_seconds") == newest.computed_at


def test_exposition_passes_promtool(store: Store) -> None:
    registry = CollectorRegistry()
    gauges = MonitoringMetrics(registry)
    gauges.rejected.labels("invalid_input").inc()
    gauges.cycles.labels("ran").inc()
    lint = subprocess.run(
        [tool("promtool", "apt-get install -y prometheus"), "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
