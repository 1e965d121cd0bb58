"""Platt calibration of class-weighted models, fitted on validation data.

Class weights (our answer to imbalance) inflate the buggy probability: a commit scored 0.7 was buggy about 40%
of the time. Users read the probability literally and the label-free performance estimate (CBPE) assumes it is
calibrated, so the published model maps it through `sigmoid(a · logit(p) + b)`, fitted on the validation period
(never the test period). The map is monotone (a > 0 is enforced), so rankings and ROC AUC are unchanged. The
decision threshold and risk bands are then chosen on the calibrated validation probabilities (`decision_rule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.contract import EvaluationMetrics, RiskBands
from training import evaluate

EPS = 1e-6  # keeps logit finite; the same clip is applied in the ONNX graph of a non-linear model


@dataclass(frozen=True)
class Platt:
    """p ↦ sigmoid(a · logit(p) + b)."""

    a: float
    b: float

    def apply(self, probability: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64)."""
        p = np.clip(np.asarray(probability, dtype=np.float64), EPS, 1 - EPS)
        return self.apply_logit(np.log(p / (1 - p)))

    def apply_logit(self, logit: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64) of raw log-odds: exact, no clip (a linear model's own scores)."""
        from scipy.special import expit  # the logistic function without overflow far from 0

        return np.asarray(expit(self.a * np.asarray(logit, dtype=np.float64) + self.b), dtype=np.float64)


IDENTITY = Platt(a=1.0, b=0.0)


def fit(y_true: np.ndarray, probability: np.ndarray) -> Platt:
    """Fit (a, b) by logistic regression of the labels on logit(p); identity when it would not be monotone."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y_true)
    if len(np.unique(y)) < 2:
        return IDENTITY
    p = np.clip(np.asarray(probability, dtype=np.float64), EPS, 1 - EPS)
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    regression = LogisticRegression(C=1e4, max_iter=1000).fit(logit, y)
    a, b = float(regression.coef_[0, 0]), float(regression.intercept_[0])
    # A non-increasing map would invert the ranking the model learned; keep the raw scores instead.
    return Platt(a, b) if a > 0 else IDENTITY


@dataclass(frozen=True)
class DecisionRule:
    """Platt map, threshold and risk bands, all fitted on the validation period, and its metrics under them."""

    platt: Platt
    threshold: float
    bands: RiskBands
    validation: EvaluationMetrics


def decision_rule(y_val: np.ndarray, raw_val: np.ndarray, effort_val: np.ndarray) -> DecisionRule:
    """The Platt map of the raw validation probabilities, then the F1 threshold and risk bands on the mapped ones."""
    platt = fit(y_val, raw_val)
    p_val = platt.apply(raw_val)
    threshold = evaluate.choose_threshold(y_val, p_val)
    bands = evaluate.choose_bands(y_val, p_val, threshold)
    return DecisionRule(platt, threshold, bands, evaluate.evaluate(y_val, p_val, effort_val, threshold))


def logistic(estimator: Any) -> bool:
    """Whether `estimator` (through nested pipelines) ends in a logistic regression: log-odds linear in its inputs."""
    from sklearn.linear_model import LogisticRegression

    final = estimator
    while hasattr(final, "steps"):
        final = final.steps[-1][1]
    return isinstance(final, LogisticRegression)


class Calibrated:
    """A fitted classifier whose positive-class probability goes through a Platt map (scikit-learn API subset).

    A logistic base maps its own log-odds (`decision_function`), with no clip: its ONNX export folds the map into
    the linear classifier's coefficients (training/export.py), which computes exactly that. Other bases map their
    probability clipped to [EPS, 1 − EPS], as the nodes appended to their graph do.
    """

    def __init__(self, base: Any, platt: Platt) -> None:
        self.base = base
        self.platt = platt
        self.linear = logistic(base)
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """[N, 2] calibrated class probabilities."""
        if self.linear:
            positive = self.platt.apply_logit(self.base.decision_function(X))
        else:
            positive = self.platt.apply(self.base.predict_proba(X)[:, 1])
        return np.column_stack([1 - positive, positive])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels at 0.5 (the service applies the manifest's threshold instead)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Calibrated:
        """Already fitted: permutation importance only needs the estimator interface."""
        return self

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy at 0.5, for scikit-learn helpers that expect it."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
