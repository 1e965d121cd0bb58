"""Labelled-window model metrics and a label-free (CBPE-style) estimate: pure numpy, no scikit-learn."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

EFFORT_SHARE = 0.2


class MetricValue(BaseModel):
    """One metric and the number of rows behind it; value None where the metric is undefined."""

    model_config = ConfigDict(frozen=True)

    value: float | None
    rows: int


class PerformanceReport(BaseModel):
    """Realised metrics over labelled predictions and estimated ones over the whole window."""

    model_config = ConfigDict(frozen=True)

    labelled_rows: int
    buggy_rows: int
    window_rows: int
    repository: str | None = None  # the filter, when the report covers one repository's predictions only
    roc_auc: MetricValue
    pr_auc: MetricValue
    precision: MetricValue
    recall: MetricValue
    brier: MetricValue
    recall_at_20_effort: MetricValue
    estimated_precision: MetricValue
    estimated_recall: MetricValue


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`; ties share their mean rank (midranks, as scipy's rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Tied values share the mean of the ranks they span (what Mann–Whitney needs).
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann–Whitney U with tie-averaged ranks); None with a single class."""
    y = np.asarray(y, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = average_ranks(np.asarray(score, dtype=np.float64))
    u = ranks[y].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision (step-wise area under precision–recall); None without positives."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return None
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="mergesort")
    ordered_score, ordered_y = score[order], y[order]
    # One point per distinct threshold: the last index of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(ordered_score)), len(y) - 1]
    tp = np.cumsum(ordered_y)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision(y: np.ndarray, predicted: np.ndarray) -> float | None:
    """TP / (TP + FP) of the served labels; None when nothing was predicted buggy."""
    y, predicted = np.asarray(y, dtype=bool), np.asarray(predicted, dtype=bool)
    flagged = int(predicted.sum())
    return float((y & predicted).sum() / flagged) if flagged else None


def recall(y: np.ndarray, predicted: np.ndarray) -> float | None:
    """TP / (TP + FN) of the served labels; None without buggy rows."""
    y, predicted = np.asarray(y, dtype=bool), np.asarray(predicted, dtype=bool)
    positives = int(y.sum())
    return float((y & predicted).sum() / positives) if positives else None


def brier(y: np.ndarray, probability: np.ndarray) -> float | None:
    """Mean squared error of the probabilities; None on an empty window."""
    if len(y) == 0:
        return None
    diff = np.asarray(probability, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.mean(diff * diff))


def recall_at_effort(
    y: np.ndarray, probability: np.ndarray, effort: np.ndarray, share: float = EFFORT_SHARE
) -> float | None:
    """Share of buggy commits among the top probability/effort ranks within `share` of the total effort."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return None
    # Effort is churn la + ld; a zero-churn commit still costs a look: max(effort, 1) on both the ranking
    # and the effort axis, exactly as training/evaluate.py does, so serving and training numbers agree.
    effort = np.maximum(np.asarray(effort, dtype=np.float64), 1.0)
    density = np.asarray(probability, dtype=np.float64) / effort
    order = np.argsort(-density, kind="stable")
    inspected = np.cumsum(effort[order]) / effort.sum() <= share + 1e-12
    return float(y[order][inspected].sum() / y.sum())


def estimate_precision_recall(probability: np.ndarray, predicted: np.ndarray) -> tuple[float | None, float | None]:
    """CBPE: expected precision and recall if the probabilities are calibrated, no labels needed."""
    probability = np.asarray(probability, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=bool)
    expected_tp = float(probability[predicted].sum())
    flagged = int(predicted.sum())
    expected_positives = float(probability.sum())
    est_precision = expected_tp / flagged if flagged else None
    est_recall = expected_tp / expected_positives if expected_positives > 0 else None
    return est_precision, est_recall


def evaluate(
    y: np.ndarray,
    probability: np.ndarray,
    predicted: np.ndarray,
    effort: np.ndarray,
    window_probability: np.ndarray,
    window_predicted: np.ndarray,
) -> PerformanceReport:
    """All metrics over labelled rows (`y`, …) plus the CBPE estimate over the whole window."""
    n = len(y)
    est_precision, est_recall = estimate_precision_recall(window_probability, window_predicted)
    window_rows = len(window_probability)
    return PerformanceReport(
        labelled_rows=n,
        buggy_rows=int(np.asarray(y, dtype=bool).sum()),
        window_rows=window_rows,
        roc_auc=MetricValue(value=roc_auc(y, probability), rows=n),
        pr_auc=MetricValue(value=pr_auc(y, probability), rows=n),
        precision=MetricValue(value=precision(y, predicted), rows=n),
        recall=MetricValue(value=recall(y, predicted), rows=n),
        brier=MetricValue(value=brier(y, probability), rows=n),
        recall_at_20_effort=MetricValue(value=recall_at_effort(y, probability, effort), rows=n),
        estimated_precision=MetricValue(value=est_precision, rows=window_rows),
        estimated_recall=MetricValue(value=est_recall, rows=window_rows),
    )
