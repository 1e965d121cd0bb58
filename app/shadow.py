"""Shadow scoring: challengers score every answered commit after the champion, never changing the answer.

`ShadowSink` is the head of the prediction sink chain (app/main.py puts it in front of the prediction log),
which routes call once the champion's predictions exist: each shadow
(up to COMMITRISK_MAX_SHADOWS competing challengers) adds one onnxruntime call of latency per request but cannot
alter the response, and a failing shadow is counted and skipped. The prediction log gets one
`shadow_predictions` row per commit and shadow (both probabilities), Prometheus the live agreement and each
shadow's latency, and `shadow_report` puts champion and every shadow side by side — live agreement, and ROC AUC
on the same labelled predictions once feedback arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine

from app.monitoring import database
from app.monitoring.labels import labelled_shadow_scores
from app.monitoring.performance import roc_auc
from app.monitoring.prediction_log import PredictionBatch, ShadowScores, Sink
from app.predictor import Predictor
from app.registry import ModelRegistry
from app.tally import Tally

log = logging.getLogger("commitrisk.shadow")
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ShadowMetrics:
    """`commitrisk_shadow_*`: scored commits, label agreements with the champion, scoring latency, failures."""

    def __init__(self, registry: CollectorRegistry, tally: Tally) -> None:
        self.tally = tally  # per-request updates go through the service's tally (app/tally.py)
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
        self._children: dict[str, tuple[Counter, Counter, Histogram]] = {}

    def observe(self, version: str, rows: int, agreed: int, seconds: float) -> None:
        """One request scored by shadow `version`: its commits, label agreements and the time it added."""
        children = self._children.get(version)
        if children is None:
            children = (self.scored.labels(version), self.agreed.labels(version), self.latency.labels(version))
            self._children[version] = children
        scored, agreements, latency = children
        self.tally.add(scored, rows)
        self.tally.add(agreements, agreed)
        self.tally.observe(latency, seconds)


class ShadowSink:
    """The prediction sink with shadow scoring in front of `inner` (the prediction log, or None when it is off)."""

    def __init__(self, registry: ModelRegistry, metrics: ShadowMetrics, inner: Sink | None) -> None:
        self.registry = registry
        self.metrics = metrics
        self.inner = inner
        self.live: dict[int, list[int]] = {}  # version → [scored, agreed] in this process, for GET /models

    def __call__(self, batch: PredictionBatch) -> None:
        served = self.registry.served
        # Only answers of the champion are shadowed (a v2 request may name another version).
        if served is None or not served.shadows or not batch.rows or batch.model_version != served.champion.version:
            self._forward(batch)
            return
        shadows = served.shadows
        matrix = batch.features.astype(np.float32)
        scores = []
        for shadow in shadows:
            try:
                started = time.perf_counter()
                probabilities = shadow.probabilities(matrix)
                elapsed = time.perf_counter() - started
            except Exception:  # the answer is already computed: a broken shadow must not fail the request
                self.metrics.failures.inc()
                log.exception("shadow %s scoring failed", shadow.version)
                continue
            version = str(shadow.version)
            agreed = int(np.sum((probabilities >= shadow.manifest.threshold) == batch.labels))
            self.metrics.observe(version, batch.rows, agreed, elapsed)
            counts = self.live.setdefault(shadow.version, [0, 0])
            counts[0] += batch.rows
            counts[1] += agreed
            scores.append(ShadowScores(shadow.version, np.asarray(probabilities, dtype=np.float64)))
        self._forward(replace(batch, shadows=tuple(scores)) if scores else batch)

    def _forward(self, batch: PredictionBatch) -> None:
        if self.inner is not None:
            self.inner(batch)


def shadow_report(sink: ShadowSink, engine: Engine) -> list[dict[str, Any]]:
    """Per shadow: live agreement in this process, and both models' ROC AUC on its labelled predictions."""
    served = sink.registry.served
    shadows: Sequence[Predictor] = served.shadows if served is not None else ()
    report = []
    for shadow in shadows:
        scored, agreed = sink.live.get(shadow.version, [0, 0])
        report.append(
            {
                "version": shadow.version,
                "model_type": shadow.manifest.model_type,
                "live": {"scored": scored, "agreement": agreed / scored if scored else None},
                "labelled": labelled_comparison(engine, shadow.version),
            }
        )
    return report


def labelled_comparison(engine: Engine, version: int) -> dict[str, Any]:
    """Champion vs shadow ROC AUC on the logged predictions of `version` that have feedback."""
    try:
        y, champion, shadow = labelled_shadow_scores(engine, version)
    except Exception as exc:
        if not database.is_outage(exc):
            raise
        # GET /models still answers while the monitoring database is down: only this comparison is missing.
        return {"rows": None, "champion_roc_auc": None, "shadow_roc_auc": None, "error": "database unavailable"}
    if not len(y):
        return {"rows": 0, "champion_roc_auc": None, "shadow_roc_auc": None}
    return {
        "rows": len(y),
        "buggy": int(y.sum()),
        "champion_roc_auc": roc_auc(y, champion),
        "shadow_roc_auc": roc_auc(y, shadow),
    }
