"""Shadow scoring: the challenger scores every answered commit after the champion, never changing the answer.

It wraps `app.state.prediction_sink`, which routes call once the champion's predictions exist: a shadow can
add one onnxruntime call of latency per request but cannot alter the response, and a failing shadow is
counted and skipped. The prediction log gets both probabilities (`shadow_version`, `shadow_probability`),
Prometheus the live agreement and the shadow's own latency, and `shadow_report` puts champion and shadow
side by side — live agreement, and ROC AUC on the same labelled predictions once feedback arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import select

from app.performance import roc_auc
from app.prediction_log import PredictionRecord
from app.predictor import Predictor, feature_matrix

log = logging.getLogger("commitrisk.shadow")
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
Sink = Callable[[Sequence[Any]], None]


class ShadowMetrics:
    """`commitrisk_shadow_*`: scored commits, label agreements with the champion, scoring latency, failures."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scored = Counter(
            "commitrisk_shadow_predictions",
            "Commits scored in shadow, by shadow version",
            ["version"],
            registry=registry,
        )
        self.agreed = Counter(
            "commitrisk_shadow_agreements", "Shadow predictions whose label equals the champion's",
            ["version"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "commitrisk_shadow_latency_seconds", "Time the shadow model adds per scored request",
            ["version"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.failures = Counter(
            "commitrisk_shadow_failures", "Requests whose shadow scoring failed (the answer was unaffected)",
            registry=registry,
        )  # fmt: skip
        self.failures.inc(0)


class ShadowSink:
    """The prediction sink with shadow scoring in front of the prediction log."""

    def __init__(self, registry: Any, metrics: ShadowMetrics, monitoring: Any, inner: Sink | None) -> None:
        self.registry = registry
        self.metrics = metrics
        self.monitoring = monitoring
        self.inner = inner
        self.live: dict[int, list[int]] = {}  # version → [scored, agreed] in this process, for GET /models

    def __call__(self, scored: Sequence[Any]) -> None:
        served = self.registry.served
        shadows: Sequence[Predictor] = getattr(served, "shadows", ()) if served is not None else ()
        if not shadows or not scored:
            self._forward(scored)
            return
        try:
            matrix = feature_matrix([s.commit.row() for s in scored])
            labels = np.array([s.prediction.buggy for s in scored], dtype=bool)
            logged: tuple[int, list[float]] | None = None
            for shadow in shadows:
                started = time.perf_counter()
                probabilities = shadow.probabilities(matrix)
                version = str(shadow.version)
                self.metrics.latency.labels(version).observe(time.perf_counter() - started)
                agreed = int(np.sum((probabilities >= shadow.manifest.threshold) == labels))
                self.metrics.scored.labels(version).inc(len(scored))
                self.metrics.agreed.labels(version).inc(agreed)
                counts = self.live.setdefault(shadow.version, [0, 0])
                counts[0] += len(scored)
                counts[1] += agreed
                if logged is None:  # the log has room for one shadow: the first (the challenger pointer)
                    logged = (shadow.version, probabilities.tolist())
        except Exception:  # the answer is already computed: a broken shadow must not fail the request
            self.metrics.failures.inc()
            log.exception("shadow scoring failed")
            self._forward(scored)
            return
        if logged is not None:
            self._log_with_shadow(scored, *logged)

    def _forward(self, scored: Sequence[Any]) -> None:
        if self.inner is not None:
            self.inner(scored)

    def _log_with_shadow(self, scored: Sequence[Any], version: int, probabilities: list[float]) -> None:
        if self.inner is None or self.monitoring is None:
            self._forward(scored)
            return
        now, submit = time.time(), self.monitoring.log.submit
        for s, shadow_p in zip(scored, probabilities, strict=True):
            c, p = s.commit, s.prediction
            submit(
                PredictionRecord(
                    now, s.request_id, c.commit_id, c.repository, c.row(), p.probability, p.buggy, p.risk_band,
                    p.model_version, version, shadow_p,
                )
            )  # fmt: skip


def install_shadow(app: Any) -> ShadowSink:
    """Wrap the app's prediction sink (call after the monitoring has installed its own)."""
    sink = ShadowSink(
        app.state.registry, ShadowMetrics(app.state.metrics.registry), getattr(app.state, "monitoring", None),
        app.state.prediction_sink,
    )  # fmt: skip
    app.state.prediction_sink = sink
    app.state.shadow_sink = sink
    return sink


def shadow_report(app: Any) -> list[dict[str, Any]]:
    """Per shadow: live agreement in this process, and both models' ROC AUC on its labelled predictions."""
    sink: ShadowSink | None = getattr(app.state, "shadow_sink", None)
    served = app.state.registry.served
    shadows: Sequence[Predictor] = getattr(served, "shadows", ()) if served is not None else ()
    report = []
    for shadow in shadows:
        scored, agreed = sink.live.get(shadow.version, [0, 0]) if sink else [0, 0]
        report.append(
            {
                "version": shadow.version,
                "model_type": shadow.manifest.model_type,
                "live": {"scored": scored, "agreement": agreed / scored if scored else None},
                "labelled": labelled_comparison(app, shadow.version),
            }
        )
    return report


def labelled_comparison(app: Any, version: int) -> dict[str, Any]:
    """Champion vs shadow ROC AUC on the logged predictions of `version` that have feedback."""
    monitoring = getattr(app.state, "monitoring", None)
    if monitoring is None:
        return {"rows": 0, "champion_roc_auc": None, "shadow_roc_auc": None}
    from app.tables import feedback, predictions

    query = (
        select(predictions.c.probability, predictions.c.shadow_probability, feedback.c.buggy)
        .join(feedback, feedback.c.commit_id == predictions.c.commit_id)
        .where(predictions.c.shadow_version == version)
    )
    with monitoring.store.engine.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return {"rows": 0, "champion_roc_auc": None, "shadow_roc_auc": None}
    values = np.array([(r[0], r[1], bool(r[2])) for r in rows], dtype=np.float64)
    y = values[:, 2].astype(bool)
    return {
        "rows": len(rows),
        "buggy": int(y.sum()),
        "champion_roc_auc": roc_auc(y, values[:, 0]),
        "shadow_roc_auc": roc_auc(y, values[:, 1]),
    }
