"""Metrics on predicted probabilities: classification, effort-aware (../shared/METRICS.md), threshold, bands.

Pure numpy functions (arrays in, numbers out, inputs never mutated); the tests check them against
scikit-learn. Effort is churn `la + ld`; a zero-churn commit still costs a look, so effort-aware metrics use
`max(effort, 1)` both to rank (density = p / effort) and on the effort axis — the same effort in both keeps
the density-sorted "optimal" ranking truly optimal, so Popt ∈ [0, 1]. Ties keep input order (stable sorts).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from app.contract import EvaluationMetrics, RiskBands
from app.monitoring import performance

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Curve = tuple[FloatArray, FloatArray]

EFFORT_SHARE = 0.2  # Recall@20%Effort
RECALL_SHARE = 0.2  # Effort@20%Recall
BAND_RECALL = 0.8  # the medium band starts where validation recall reaches 80%
FALLBACK_THRESHOLD = 0.5
_EPS = 1e-9  # float round-off guard for "share <= 20%" comparisons


def check_inputs(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    """Validated copies: 1-D, same non-zero length, labels in {0, 1}, probabilities finite in [0, 1]."""
    y = np.asarray(y_true)
    p = np.asarray(probability, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError("y_true and probability must be 1-D arrays")
    if y.size == 0:
        raise ValueError("empty input: need at least one commit to evaluate")
    if y.shape != p.shape:
        raise ValueError(f"length mismatch: {y.size} labels but {p.size} probabilities")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0/1 (or booleans)")
    if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("probability must be finite and within [0, 1]")
    return y.astype(np.int64), p.copy()


def effective_effort(effort: npt.ArrayLike, rows: int) -> FloatArray:
    """`max(la + ld, 1)` per commit, validated: 1-D, `rows` long, finite, >= 0."""
    e = np.asarray(effort, dtype=np.float64)
    if e.shape != (rows,):
        raise ValueError(f"effort must be a 1-D array of {rows} values, got shape {e.shape}")
    if not np.isfinite(e).all() or (e < 0).any():
        raise ValueError("effort (la + ld) must be finite and >= 0")
    return np.maximum(e, 1.0)


def _check_share(share: float, name: str) -> None:
    if not 0.0 < share <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {share}")


# --- classification metrics ------------------------------------------------------------------------


def _threshold_counts(y: IntArray, p: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Distinct thresholds (descending) with true/false positives when predicting p >= threshold."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), ps.size - 1]  # last row of each tie group
    tps = np.cumsum(ys)[last]
    return ps[last], tps, (last + 1) - tps


def roc_points(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> Curve:
    """False- and true-positive rates over all thresholds, from (0, 0) to (1, 1); both classes needed."""
    y, p = check_inputs(y_true, probability)
    positives = int(y.sum())
    if positives in (0, y.size):
        raise ValueError("ROC curve needs both buggy and clean commits")
    _, tps, fps = _threshold_counts(y, p)
    return np.r_[0.0, fps / (y.size - positives)], np.r_[0.0, tps / positives]


def roc_auc(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> float | None:
    """Area under the ROC curve (ties count half) of validated inputs; None with one class only.

    Computed by the service's `app.monitoring.performance.roc_auc`: one implementation, so the figures of
    training, retraining and production monitoring agree.
    """
    y, p = check_inputs(y_true, probability)
    return performance.roc_auc(y, p)


def pr_points(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> Curve:
    """Recall and precision over thresholds (ascending recall, starting at recall 0, precision 1)."""
    y, p = check_inputs(y_true, probability)
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("precision-recall curve needs at least one buggy commit")
    _, tps, fps = _threshold_counts(y, p)
    return np.r_[0.0, tps / positives], np.r_[1.0, tps / (tps + fps)]


def average_precision(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> float | None:
    """PR AUC as average precision: Σ (R_n − R_{n−1}) · P_n over thresholds; None without buggy commits."""
    y, p = check_inputs(y_true, probability)
    if not y.any():
        return None
    recall, precision = pr_points(y, p)
    return float(np.sum(np.diff(recall) * precision[1:]))


def brier(y_true: npt.ArrayLike, probability: npt.ArrayLike) -> float:
    """Mean squared difference between probability and label."""
    y, p = check_inputs(y_true, probability)
    return float(np.mean((p - y) ** 2))


def calibration_bins(y_true: npt.ArrayLike, probability: npt.ArrayLike, bins: int = 10) -> tuple[FloatArray, ...]:
    """Reliability curve on equal-width bins: mean probability, buggy rate and row count of non-empty bins."""
    y, p = check_inputs(y_true, probability)
    if bins < 1:
        raise ValueError("bins must be >= 1")
    index = np.minimum((p * bins).astype(np.int64), bins - 1)  # p = 1.0 joins the last bin
    counts = np.bincount(index, minlength=bins)
    filled = counts > 0
    mean_p = np.bincount(index, weights=p, minlength=bins)[filled] / counts[filled]
    rate = np.bincount(index, weights=y, minlength=bins)[filled] / counts[filled]
    return mean_p, rate, counts[filled].astype(np.float64)


# --- effort-aware ranking and metrics ---------------------------------------------------------------


def model_ranking(probability: npt.ArrayLike, effort: npt.ArrayLike) -> IntArray:
    """Inspection order of the model: p / max(effort, 1) descending, ties in input order."""
    p = np.asarray(probability, dtype=np.float64)
    e = effective_effort(effort, p.size)
    return np.argsort(-(p / e), kind="stable")


def optimal_ranking(y_true: npt.ArrayLike, effort: npt.ArrayLike) -> IntArray:
    """The best possible order: actual density buggy / max(effort, 1) descending."""
    y = np.asarray(y_true, dtype=np.float64)
    return np.argsort(-(y / effective_effort(effort, y.size)), kind="stable")


def worst_ranking(y_true: npt.ArrayLike, effort: npt.ArrayLike) -> IntArray:
    """The worst possible order: actual density ascending."""
    y = np.asarray(y_true, dtype=np.float64)
    return np.argsort(y / effective_effort(effort, y.size), kind="stable")


def cumulative_recall(y_true: npt.ArrayLike, effort: npt.ArrayLike, order: npt.ArrayLike) -> Curve:
    """Cumulative effort share (x) and recall (y) when inspecting commits in `order`, from (0, 0)."""
    y = np.asarray(y_true, dtype=np.float64)
    e = effective_effort(effort, y.size)
    idx = np.asarray(order, dtype=np.int64)
    if y.sum() == 0:
        raise ValueError("cumulative recall needs at least one buggy commit")
    return np.r_[0.0, np.cumsum(e[idx]) / e.sum()], np.r_[0.0, np.cumsum(y[idx]) / y.sum()]


def effort_curve(y_true: np.ndarray, probability: np.ndarray, effort: np.ndarray) -> Curve:
    """Cumulative effort share and recall of the model's effort-aware ranking, starting at (0, 0)."""
    y, p = check_inputs(y_true, probability)
    return cumulative_recall(y, effort, model_ranking(p, effort))


def area(x: FloatArray, y: FloatArray) -> float:
    """Trapezoidal area under a piecewise-linear curve."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def recall_at_effort(
    y_true: np.ndarray, probability: np.ndarray, effort: np.ndarray, share: float = EFFORT_SHARE
) -> float | None:
    """Recall of the top-ranked commits whose cumulative effort <= `share` of the total; None if no bugs."""
    _check_share(share, "effort share")
    y, p = check_inputs(y_true, probability)
    if not y.any():
        return None
    x, recall = effort_curve(y, p, effort)
    last = int(np.searchsorted(x, share + _EPS, side="right")) - 1  # longest prefix within the budget
    return float(recall[last])


def effort_at_recall(
    y_true: np.ndarray, probability: np.ndarray, effort: np.ndarray, share: float = RECALL_SHARE
) -> float | None:
    """Effort share spent when the first ceil(`share` · buggy) buggy commits are found; None if no bugs."""
    _check_share(share, "recall share")
    y, p = check_inputs(y_true, probability)
    if not y.any():
        return None
    order = model_ranking(p, effort)
    needed = max(1, math.ceil(share * int(y.sum()) - _EPS))
    reached = int(np.searchsorted(np.cumsum(y[order]), needed, side="left"))
    e = effective_effort(effort, y.size)
    return float(np.cumsum(e[order])[reached] / e.sum())


def popt(y_true: np.ndarray, probability: np.ndarray, effort: np.ndarray) -> float | None:
    """1 − (A_opt − A_model) / (A_opt − A_worst) on cumulative recall vs effort; None if undefined."""
    y, p = check_inputs(y_true, probability)
    if not y.any():
        return None
    a_model = area(*cumulative_recall(y, effort, model_ranking(p, effort)))
    a_opt = area(*cumulative_recall(y, effort, optimal_ranking(y, effort)))
    a_worst = area(*cumulative_recall(y, effort, worst_ranking(y, effort)))
    if a_opt - a_worst <= _EPS:  # e.g. only buggy commits of equal effort: every order is the same
        return None
    return float(1.0 - (a_opt - a_model) / (a_opt - a_worst))


def ifa(y_true: np.ndarray, probability: np.ndarray, effort: np.ndarray) -> int | None:
    """Initial false alarms: clean commits ranked before the first buggy one; None if no bugs."""
    y, p = check_inputs(y_true, probability)
    if not y.any():
        return None
    return int(np.argmax(y[model_ranking(p, effort)] == 1))


# --- the summary, threshold and bands ---------------------------------------------------------------


def _check_threshold(threshold: float) -> None:
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")


def evaluate(y_true: np.ndarray, probability: np.ndarray, effort: np.ndarray, threshold: float) -> EvaluationMetrics:
    """All metrics of one labelled set; p >= threshold predicts buggy; None where a metric is undefined."""
    _check_threshold(threshold)
    y, p = check_inputs(y_true, probability)
    effective_effort(effort, y.size)  # validate before computing anything
    predicted = p >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    tn = y.size - tp - fp - fn
    positives = tp + fn
    # MCC is undefined with one true class; with one *predicted* class it is 0 by convention (as sklearn).
    mcc_denominator = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc: float | None = None
    if 0 < positives < y.size:
        mcc = (tp * tn - fp * fn) / mcc_denominator if mcc_denominator > 0 else 0.0
    return EvaluationMetrics(
        rows=int(y.size),
        buggy=positives,
        roc_auc=roc_auc(y, p),
        pr_auc=average_precision(y, p),
        brier=brier(y, p),
        f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else None,
        precision=tp / (tp + fp) if tp + fp > 0 else None,
        recall=tp / positives if positives > 0 else None,
        mcc=mcc,
        recall_at_20_effort=recall_at_effort(y, p, effort),
        effort_at_20_recall=effort_at_recall(y, p, effort),
        popt=popt(y, p, effort),
        ifa=ifa(y, p, effort),
    )


def choose_threshold(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The validation probability maximising F1 of p >= t (ties → the higher t); 0.5 with one class only."""
    y, p = check_inputs(y_true, probability)
    positives = int(y.sum())
    if positives in (0, y.size):
        return FALLBACK_THRESHOLD
    thresholds, tps, fps = _threshold_counts(y, p)
    f1 = 2 * tps / (2 * tps + fps + (positives - tps))
    return float(thresholds[int(np.argmax(f1))])  # argmax takes the first maximum: the highest threshold


def choose_bands(y_true: np.ndarray, probability: np.ndarray, threshold: float) -> RiskBands:
    """Risk bands from validation data: high = the threshold, medium = where buggy recall reaches 80%."""
    _check_threshold(threshold)
    y, p = check_inputs(y_true, probability)
    high = float(threshold)
    rule = f"high: p >= {high:.4g} (the decision threshold: the model says buggy); "
    buggy = np.sort(p[y == 1])[::-1]
    if buggy.size == 0:
        return RiskBands(medium=high, high=high, rule=rule + "medium: none (no buggy validation commits); low: below")
    at_recall = float(buggy[max(1, math.ceil(BAND_RECALL * buggy.size - _EPS)) - 1])
    if at_recall < high:
        medium = at_recall
        how = f"the validation probability at which recall of buggy commits reaches {BAND_RECALL:.0%}"
    else:
        # The threshold alone reaches 80% recall: medium becomes the next lower validation probability.
        below = p[p < high]
        medium = float(below.max()) if below.size else high
        how = f"the threshold already reaches {BAND_RECALL:.0%} recall, so its lower neighbour on validation"
    return RiskBands(medium=medium, high=high, rule=rule + f"medium: p >= {medium:.4g} ({how}); low: below")
