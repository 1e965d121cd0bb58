"""Monitoring over time for the web pages: labelled performance per repository and per week, and the newest
drift runs.

Labelled metrics need every labelled prediction (each label joins one prediction of its commit, the rule of
`app/monitoring/labels.py` that monitoring and retraining use), so they are computed as one `Outcomes` value
that the pages cache (app/monitoring/snapshot.py); the drift runs are a few small rows read on each view.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from app.monitoring.labels import labelled_queries
from app.monitoring.performance import recall_at_effort, roc_auc
from app.monitoring.tables import drift_reports, predictions
from app.monitoring.volume import DAY

WEEK_OFFSET_DAYS = 3  # day 0 (1970-01-01) was a Thursday: weeks start on Mondays


@dataclass(frozen=True, slots=True)
class LabelledMetrics:
    """ROC AUC and Recall@20%Effort over some labelled predictions (None where undefined)."""

    rows: int
    buggy: int
    roc_auc: float | None
    recall_at_20_effort: float | None


@dataclass(frozen=True, slots=True)
class WeekMetrics:
    """Labelled performance of the predictions logged in one week (Monday 00:00 UTC on)."""

    start: float
    metrics: LabelledMetrics


@dataclass(frozen=True)
class Outcomes:
    """Labelled performance by repository and by week, as of `as_of`."""

    as_of: float
    overall: LabelledMetrics
    by_repository: dict[str | None, LabelledMetrics] = field(default_factory=dict)
    weeks: list[WeekMetrics] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeatureScore:
    """One feature's drift test in one run."""

    score: float
    threshold: float
    score_kind: str
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftRun:
    """One stored drift run: its status and, when it succeeded, the drift share and per-feature tests."""

    computed_at: float
    status: str
    drift_share: float | None
    features: dict[str, FeatureScore]
    message: str | None


def labelled_rows(engine: Engine) -> dict[str, np.ndarray]:
    """Every labelled prediction (the one each label joins: `labels.labelled_queries`): repository, time, probability,
    effort (la + ld) and buggy."""
    c = predictions.c
    rows: list[Any] = []
    with engine.connect() as conn:
        for query in labelled_queries((c.repository, c.time, c.probability, c.la + c.ld)):
            rows += conn.execute(query).all()  # resolved labels, then pending ones
    return {
        "repository": np.array([r[0] for r in rows], dtype=object),
        "time": np.array([r[1] for r in rows], dtype=np.float64),
        "probability": np.array([r[2] for r in rows], dtype=np.float64),
        "effort": np.array([r[3] for r in rows], dtype=np.float64),
        "buggy": np.array([bool(r[4]) for r in rows], dtype=bool),
    }


def metrics_of(buggy: np.ndarray, probability: np.ndarray, effort: np.ndarray) -> LabelledMetrics:
    """ROC AUC and Recall@20%Effort of some labelled predictions."""
    return LabelledMetrics(
        rows=len(buggy),
        buggy=int(buggy.sum()),
        roc_auc=roc_auc(buggy, probability),
        recall_at_20_effort=recall_at_effort(buggy, probability, effort),
    )


def week_start(seconds: float) -> float:
    """Unix time of the Monday 00:00 UTC that starts the week of `seconds`."""
    day = int(seconds // DAY)
    return float((day - (day + WEEK_OFFSET_DAYS) % 7) * DAY)


def grouped(
    keys: Sequence[Any], buggy: np.ndarray, probability: np.ndarray, effort: np.ndarray
) -> dict[Any, LabelledMetrics]:
    """Metrics per distinct key (one sort, not one scan per key)."""
    codes: dict[Any, int] = {}
    index = np.fromiter((codes.setdefault(k, len(codes)) for k in keys), np.int64, len(keys))
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(codes) + 1))
    return {
        key: metrics_of(buggy[part], probability[part], effort[part])
        for key, part in zip(codes, (order[bounds[i] : bounds[i + 1]] for i in range(len(codes))), strict=True)
    }


def compute_outcomes(engine: Engine, as_of: float, weeks: int = 26) -> Outcomes:
    """Labelled ROC AUC per repository (all labelled predictions) and per week (the last `weeks` weeks)."""
    rows = labelled_rows(engine)
    buggy, probability, effort = rows["buggy"], rows["probability"], rows["effort"]
    by_repository = grouped(rows["repository"].tolist(), buggy, probability, effort)
    starts = [week_start(t) for t in rows["time"].tolist()]
    recent = np.array(starts, dtype=np.float64) >= week_start(as_of) - (weeks - 1) * 7 * DAY
    kept = [s for s, keep in zip(starts, recent.tolist(), strict=True) if keep]
    by_week = grouped(kept, buggy[recent], probability[recent], effort[recent])
    return Outcomes(
        as_of,
        metrics_of(buggy, probability, effort),
        by_repository,
        [WeekMetrics(start, by_week[start]) for start in sorted(by_week)],
    )


def drift_runs(engine: Engine, limit: int = 12) -> list[DriftRun]:
    """The newest `limit` drift runs, oldest first (the HTML is never read here)."""
    d = drift_reports.c
    query = select(d.computed_at, d.status, d.report).order_by(d.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [run_of(float(at), str(status), json.loads(report)) for at, status, report in reversed(rows)]


def run_of(computed_at: float, status: str, report: dict[str, Any]) -> DriftRun:
    """A stored drift report as a `DriftRun` (a failed or too-small run keeps only its message)."""
    if status != "ok":
        return DriftRun(computed_at, status, None, {}, str(report.get("message", status)))
    features: Sequence[dict[str, Any]] = report.get("features", [])
    scores = {
        str(f["feature"]): FeatureScore(
            float(f["score"]), float(f["threshold"]), str(f["score_kind"]), bool(f["drifted"])
        )
        for f in features
    }
    return DriftRun(computed_at, status, float(report.get("drift_share", 0.0)), scores, None)
