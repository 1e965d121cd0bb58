"""Platt calibration: fitted on validation labels, monotone, and it reduces the Brier score of weighted models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from training import calibration, evaluate


def test_platt_recovers_a_known_distortion() -> None:
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.01, 0.6, 20_000)
    y = (rng.uniform(size=true_p.size) < true_p).astype(int)
    inflated = 1 / (1 + np.exp(-(2.0 * np.log(true_p / (1 - true_p)) + 1.5)))  # what class weights do
    platt = calibration.fit(y, inflated)
    assert 0.4 < platt.a < 0.6 and -1.0 < platt.b < -0.5
    assert evaluate.brier(y, platt.apply(inflated)) < evaluate.brier(y, inflated)
    order = np.argsort(inflated, kind="stable")
    assert np.all(np.diff(platt.apply(inflated)[order]) >= 0)


def test_one_class_or_inverted_scores_keep_identity() -> None:
    assert calibration.fit(np.zeros(10), np.linspace(0, 1, 10)) == calibration.IDENTITY
    y = np.array([1, 1, 1, 0, 0, 0] * 20)
    assert calibration.fit(y, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9] * 20)) == calibration.IDENTITY


def test_calibrated_wrapper_interface() -> None:
    class Base:
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return np.column_stack([1 - X[:, 0], X[:, 0]])

    wrapped = calibration.Calibrated(Base(), calibration.Platt(a=1.0, b=0.0))
    X = np.array([[0.2], [0.9]])
    assert np.allclose(wrapped.predict_proba(X)[:, 1], [0.2, 0.9])
    assert list(wrapped.predict(X)) == [0, 1]
    assert wrapped.fit(X, np.array([0, 1])) is wrapped
    assert wrapped.score(X, np.array([0, 1])) == 1.0


def test_the_decision_rule_is_fitted_on_the_given_validation_period() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.25).astype(int)
    raw = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 400), 0.01, 0.99)  # class-weighted: too high
    effort = rng.integers(1, 100, 400).astype(float)
    rule = calibration.decision_rule(y, raw, effort)
    assert rule.platt == calibration.fit(y, raw) and rule.platt.a > 0
    p = rule.platt.apply(raw)
    assert p.mean() < raw.mean()  # pulled down towards the buggy rate
    assert rule.threshold in set(p)  # a validation probability …
    f1 = [evaluate.evaluate(y, p, effort, t).f1 or 0.0 for t in np.unique(p)]
    assert evaluate.evaluate(y, p, effort, rule.threshold).f1 == pytest.approx(max(f1))  # … maximising F1
    assert rule.bands.high == rule.threshold and rule.bands.medium <= rule.threshold
    assert rule.validation == evaluate.evaluate(y, p, effort, rule.threshold)
    # The map is monotone: the same validation ROC AUC as the raw scores.
    assert rule.validation.roc_auc == pytest.approx(evaluate.roc_auc(y, raw))


def test_a_logistic_base_is_mapped_on_its_own_log_odds_without_the_clip() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.array([[0.0], [1.0], [2.0], [3.0]] * 5)
    base = make_pipeline(StandardScaler(), LogisticRegression(C=1e6)).fit(X, np.array([0, 0, 1, 1] * 5))
    platt = calibration.Platt(a=0.5, b=-1.0)
    wrapped = calibration.Calibrated(base, platt)
    assert wrapped.linear and calibration.logistic(base) and not calibration.Calibrated(object(), platt).linear
    far = np.array([[1e4], [-1e4], [1.5]])
    logit = base.decision_function(far)
    assert abs(logit[0]) > 20  # beyond the clip at 1e-6, which would cap logit at ±13.8
    expected = expit(0.5 * logit - 1.0)
    assert np.allclose(wrapped.predict_proba(far)[:, 1], expected, rtol=0, atol=1e-12)
    assert wrapped.predict_proba(far)[0, 1] > platt.apply(base.predict_proba(far)[:, 1])[0]
