"""Choosing on validation: DeLong ROC AUCs and covariance, the ensemble preferred within k standard errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from app.contract import FEATURES
from app.monitoring import performance
from training import choice, model
from training.choice import choose, delong


def _scores(seed: int, rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated scores (shared signal, own noise); rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(np.int64)
    signal = y + rng.normal(0, 1.2, rows)
    return y, np.round(signal + rng.normal(0, 0.5, rows), 1), np.round(signal + rng.normal(0, 0.5, rows), 1)


def test_delong_aucs_match_scikit_learn_with_ties() -> None:
    y, a, b = _scores(0)
    aucs, covariance = delong(y, [a, b])
    assert aucs == pytest.approx([roc_auc_score(y, a), roc_auc_score(y, b)], abs=1e-12)
    assert list(aucs) == [performance.roc_auc(y, a), performance.roc_auc(y, b)]  # the one implementation
    assert covariance.shape == (2, 2) and np.allclose(covariance, covariance.T)
    assert covariance[0, 1] > 0  # shared signal: the two AUCs move together


def test_delong_variance_of_a_difference_agrees_with_a_paired_bootstrap() -> None:
    y, a, b = _scores(1)
    _, covariance = delong(y, [a, b])
    se = np.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    rng = np.random.default_rng(2)
    diffs = []
    for _ in range(600):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].sum() >= 2:
            aucs, _ = delong(y[rows], [a[rows], b[rows]])  # its AUCs are scikit-learn's (test above), and fast
            diffs.append(aucs[0] - aucs[1])
    assert se == pytest.approx(np.std(diffs), rel=0.15)
    single, _ = delong(y, [a])
    assert single.shape == (1,)


def test_delong_refuses_bad_inputs_and_flags_an_unmeasurable_spread() -> None:
    with pytest.raises(ValueError, match="both classes"):
        delong(np.zeros(10), [np.arange(10.0)])
    with pytest.raises(ValueError, match="both classes"):
        delong(np.array([0, 1, 2]), [np.arange(3.0)])
    with pytest.raises(ValueError, match="do not match"):
        delong(np.array([0, 1, 0]), [np.arange(4.0)])
    aucs, covariance = delong(np.array([0, 0, 1, 0]), [np.array([0.1, 0.2, 0.9, 0.3])])
    assert aucs[0] == 1.0 and np.isnan(covariance).all()


def test_ensemble_is_chosen_within_one_standard_error_and_not_beyond() -> None:
    y, a, b = _scores(3)
    aucs, covariance = delong(y, [a, b])
    best, other = (0, 1) if aucs[0] > aucs[1] else (1, 0)
    names = ["gradient_boosting", "ensemble"] if best == 0 else ["ensemble", "gradient_boosting"]
    se = np.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    gap = aucs[best] - aucs[other]
    assert gap > 0  # the fixture separates them a little
    within = choose(names, y, [a, b], ensemble_margin_se=gap / se + 0.01)
    assert within.name == "ensemble" and "within" in within.reason
    beyond = choose(names, y, [a, b], ensemble_margin_se=gap / se - 0.01)
    assert beyond.name == "gradient_boosting" and beyond.index == best
    assert "paired DeLong SE" in beyond.reason


def test_plain_maximum_without_ensemble_or_margin_and_when_the_ensemble_is_best() -> None:
    y, a, _ = _scores(4)
    weak = a + np.random.default_rng(5).normal(0, 3, len(a))
    assert choose(["logistic_regression", "ensemble"], y, [a, weak], 0.0).name == "logistic_regression"
    assert choose(["logistic_regression", "random_forest"], y, [weak, a], 5.0).name == "random_forest"
    assert choose(["logistic_regression", "ensemble"], y, [weak, a], 1.0).name == "ensemble"
    # Equal scores: the first configured candidate wins, as max() did.
    assert choose(["random_forest", "gradient_boosting"], y, [a, a], 0.0).index == 0


def test_ensemble_wins_when_the_noise_cannot_be_measured() -> None:
    y = np.array([0, 0, 1, 0, 0, 0])
    sharp, blunt = np.array([0.1, 0.2, 0.9, 0.3, 0.2, 0.1]), np.array([0.1, 0.95, 0.9, 0.3, 0.2, 0.1])
    assert choose(["random_forest", "ensemble"], y, [sharp, blunt], 1.0).name == "ensemble"
    assert choose(["random_forest", "ensemble"], y, [sharp, blunt], 0.0).name == "random_forest"


def test_choose_refuses_bad_inputs() -> None:
    y, a, _ = _scores(6)
    with pytest.raises(ValueError, match="one validation probability vector"):
        choose(["ensemble", "random_forest"], y, [a], 1.0)
    with pytest.raises(ValueError, match="one validation probability vector"):
        choose([], y, [], 1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        choose(["ensemble"], y, [a], -1.0)


def _validation(y: np.ndarray) -> pd.DataFrame:
    """A validation period with these labels; every metric 1 (effort 2)."""
    frame = pd.DataFrame({"commit_id": [f"c{i}" for i in range(len(y))], "author_date": range(len(y)), "buggy": y})
    for name in FEATURES:
        frame[name] = 1.0
    return frame.assign(effort=2.0)


class _Fixed:
    """A fitted-estimator stand-in answering fixed probabilities (the scikit-learn predict_proba interface)."""

    def __init__(self, p: np.ndarray) -> None:
        self.p = p

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([1 - self.p, self.p])


def test_score_records_each_candidates_validation_figures() -> None:
    y, a, b = _scores(5, rows=200)
    pa, pb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    candidates = [
        model.Candidate("logistic_regression", _Fixed(pa), 0.71, {"clf__C": 1.0}, 0.12345),
        model.Candidate("ensemble", _Fixed(pb), None, {}, 2.0),
    ]
    messages: list[str] = []
    scored = choice.score(candidates, _validation(y), messages.append)
    np.testing.assert_array_equal(scored.validation[0], pa)
    first, second = scored.scores
    assert first.name == "logistic_regression" and first.validation_roc_auc == pytest.approx(roc_auc_score(y, pa))
    assert (first.cv_roc_auc, first.params, first.fit_seconds) == (0.71, {"clf__C": 1.0}, 0.123)
    assert second.cv_roc_auc is None and second.validation_roc_auc == pytest.approx(roc_auc_score(y, pb))
    assert messages == [
        f"logistic_regression: cv ROC AUC 0.710, validation ROC AUC {roc_auc_score(y, pa):.3f}",
        f"ensemble: cv ROC AUC -, validation ROC AUC {roc_auc_score(y, pb):.3f}",
    ]


def test_pick_follows_the_margin_rule_and_says_why() -> None:
    y, good, _ = _scores(6, rows=300)
    noise = np.random.default_rng(6).random(300)
    single = model.Candidate("logistic_regression", None, None, {}, 0.0)
    ensemble = model.Candidate("ensemble", None, None, {}, 0.0)
    scored = choice.Scored([single, ensemble], [good, noise], [])
    messages: list[str] = []
    chosen = choice.pick(scored, _validation(y), 0.0, messages.append)
    assert chosen.candidate is single and chosen.validation is good and messages == [chosen.reason]
    assert chosen.reason.startswith("logistic_regression has the best validation ROC AUC")
    assert choice.pick(scored, _validation(y), 1e6, messages.append).candidate is ensemble
