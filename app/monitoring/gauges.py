"""Prometheus families of the monitoring side: log and rejection counters, gauges of the newest stored results.

The gauges only copy what the scheduled job stored (`refresh`): every worker reads the same database rows,
so the newest write is the right merge across processes (`mostrecent`).
"""

from __future__ import annotations

import math
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.metrics import UNWRITTEN
from app.monitoring.job import DATA_QUALITY, PERFORMANCE
from app.monitoring.store import Store
from app.monitoring.writer import DROP_REASONS

PERFORMANCE_METRICS = (
    "roc_auc", "pr_auc", "precision", "recall", "brier", "recall_at_20_effort",
    "estimated_precision", "estimated_recall",
)  # fmt: skip
MOST_RECENT: Literal["mostrecent"] = "mostrecent"


class MonitoringMetrics:
    """Gauges and counters of the monitoring side; values read from the database are `mostrecent`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r, last = registry, MOST_RECENT
        self.log_dropped = Counter(
            "commitrisk_prediction_log_dropped", "Predictions not logged, by reason (app/monitoring/writer.py)",
            ["reason"], registry=r,
        )  # fmt: skip
        self.log_written = Counter(
            "commitrisk_prediction_log_written", "Predictions written to the prediction log", registry=r
        )
        for reason in DROP_REASONS:
            self.log_dropped.labels(reason)  # zeros from the start: increase() sees the first drop
        # Per process, so a killed worker's rows can still be counted: its file outlives it (app/metrics.py).
        self.log_unwritten = Gauge(
            UNWRITTEN, "Predictions answered but not yet written or counted as dropped (queued or being written)",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.database_up = Gauge(
            "commitrisk_database_up", "1 while the monitoring database answers (the minimum over live workers)",
            registry=r, multiprocess_mode="livemin",
        )  # fmt: skip
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

    def refresh(self, store: Store) -> None:
        """Copy the newest stored results into the gauges (small reads: the job did the work)."""
        latest = store.latest_drift_report()
        if latest is not None:
            self.drift_last_run.set(latest.computed_at)
            ok = latest.status == "ok"
            self.drift_share.set(latest.report["drift_share"] if ok else math.nan)
            for f in latest.report.get("features", []) if ok else []:
                self.feature_score.labels(f["feature"]).set(f["score"])
                self.feature_drifted.labels(f["feature"]).set(1.0 if f["drifted"] else 0.0)
        performance = store.latest_summary(PERFORMANCE)
        for name in PERFORMANCE_METRICS if performance is not None else ():
            metric = performance[1][name]  # type: ignore[index]
            self.performance.labels(name).set(math.nan if metric["value"] is None else metric["value"])
            self.performance_rows.labels(name).set(metric["rows"])
        quality = store.latest_summary(DATA_QUALITY)
        for feature, counts in quality[1]["out_of_range"].items() if quality is not None else ():
            self.window_out_of_range.labels(feature).set(counts["below"] + counts["above"])
