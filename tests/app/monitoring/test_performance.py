"""Labelled-window metrics equal scikit-learn's on the same rows; effort-aware recall and CBPE by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from app.monitoring import performance as perf


def rows(seed: int, n: int = 400, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    if ties:
        p = np.round(p, 1)  # many tied scores: the rank/threshold handling must match exactly
    return y, p


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_scikit_learn(seed: int, ties: bool) -> None:
    y, p = rows(seed, ties=ties)
    predicted = p >= 0.5
    assert perf.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert perf.pr_auc(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert perf.precision(y, predicted) == pytest.approx(skm.precision_score(y, predicted), abs=1e-12)
    assert perf.recall(y, predicted) == pytest.approx(skm.recall_score(y, predicted), abs=1e-12)
    assert perf.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


def test_metrics_on_realistic_commits_equal_scikit_learn(synthetic_commits_dir: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(synthetic_commits_dir / "gamma.csv", usecols=["buggy", "la", "ld", "nf"])
    y = frame["buggy"].astype(str).str.lower().eq("true").to_numpy()
    # A crude but real score: bigger changes are riskier.
    p = 1 - 1 / (1 + np.log1p(frame["la"].to_numpy() + frame["ld"].to_numpy()) / 5)
    assert perf.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert perf.pr_auc(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert perf.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


def test_undefined_metrics_are_none_not_errors() -> None:
    y = np.array([False, False])
    p = np.array([0.2, 0.7])
    assert perf.roc_auc(y, p) is None
    assert perf.pr_auc(y, p) is None
    assert perf.recall(y, p >= 0.5) is None
    assert perf.precision(y, np.array([False, False])) is None
    assert perf.brier(np.array([]), np.array([])) is None
    assert perf.recall_at_effort(y, p, np.array([1.0, 1.0])) is None


def test_recall_at_20_percent_effort_ranks_by_probability_per_line() -> None:
    # effort la+ld: 10, 100, 20, 870 (total 1000 → budget 200). Density p/effort ranks 0, 2, 1, 3.
    y = np.array([True, False, True, True])
    p = np.array([0.5, 0.9, 0.4, 0.99])
    effort = np.array([10.0, 100.0, 20.0, 870.0])
    # cumulative effort in rank order: 10, 30, 130 (≤ 200) then 1000 → commits 0, 2, 1 inspected → 2/3 buggy.
    assert perf.recall_at_effort(y, p, effort) == pytest.approx(2 / 3)
    assert perf.recall_at_effort(y, p, effort, share=0.01) == pytest.approx(1 / 3)  # budget 10: commit 0
    assert perf.recall_at_effort(y, p, effort, share=0.005) == 0.0
    assert perf.recall_at_effort(y, p, effort, share=1.0) == 1.0


def test_zero_effort_commits_do_not_divide_by_zero() -> None:
    y = np.array([True, False])
    assert perf.recall_at_effort(y, np.array([0.5, 0.5]), np.array([0.0, 10.0])) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recall_at_effort_equals_the_training_implementation(seed: int) -> None:
    from training import evaluate

    y, p = rows(seed, ties=seed % 2 == 1)
    effort = np.random.default_rng(seed).integers(0, 500, size=len(y)).astype(float)
    assert perf.recall_at_effort(y, p, effort) == evaluate.recall_at_effort(y, p, effort)


def test_cbpe_estimate_is_exact_in_expectation_for_calibrated_probabilities() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(1, 3, size=200_000)
    y = rng.random(len(p)) < p  # labels drawn from the probabilities: calibrated by construction
    predicted = p >= 0.4
    est_precision, est_recall = perf.estimate_precision_recall(p, predicted)
    assert est_precision == pytest.approx(skm.precision_score(y, predicted), abs=0.01)
    assert est_recall == pytest.approx(skm.recall_score(y, predicted), abs=0.01)
    assert perf.estimate_precision_recall(np.array([]), np.array([], dtype=bool)) == (None, None)


def test_evaluate_reports_rows_behind_each_metric() -> None:
    y, p = rows(3, n=50)
    effort = np.arange(1, 51, dtype=float)
    report = perf.evaluate(y, p, p >= 0.5, effort, np.r_[p, p], np.r_[p, p] >= 0.5)
    assert report.labelled_rows == 50 and report.window_rows == 100
    assert report.roc_auc.rows == 50 and report.estimated_recall.rows == 100
    assert report.buggy_rows == int(y.sum())
    assert report.roc_auc.value == pytest.approx(skm.roc_auc_score(y, p))


@pytest.mark.parametrize("seed", [0, 1])
def test_average_ranks_are_scipy_midranks(seed: int) -> None:
    from scipy.stats import rankdata

    values = np.round(np.random.default_rng(seed).random(300) * 10)  # about 30 values per tie group
    assert perf.average_ranks(values).tolist() == rankdata(values, method="average").tolist()
    assert perf.average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert perf.average_ranks(np.array([])).tolist() == []
