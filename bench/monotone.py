"""Two more input variants for `bench/inputs.py`: boosting monotone in the logistic regression's directions, and a
logistic regression on the metrics whose sign every training repository agrees on.

- Monotone boosting: the class-balanced logistic regression (standardised log1p metrics, the given C) fitted
  first; the sign of each coefficient (0 below `TINY`) becomes the monotonic constraint of a histogram gradient
  boosting classifier on the same inputs, so the trees may bend each metric's effect but never reverse it. The
  same booster without constraints is the control (C unused there: every C of the grid fits the same model).
- Sign-stable logistic regression: one class-balanced logistic regression per training repository (last input
  column: its code; repositories with fewer than `MIN_MEMBER_ROWS` rows or one class are skipped); a metric is
  kept unless one repository gives it a positive and another a negative coefficient (|coef| < `TINY` counts as
  neither); the pooled regression is refitted on the kept metrics (on all of them if none is kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from bench.weighting import MIN_MEMBER_ROWS

TINY = 1e-3  # |coefficient| on the standardised scale below which a metric has no direction
Logistic = Callable[[float], Any]  # C → class-balanced logistic regression pipeline (scaler, "clf")


def _booster(constraints: np.ndarray | None) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, early_stopping=False, class_weight="balanced",
        monotonic_cst=None if constraints is None else [int(c) for c in constraints], random_state=42,
    )  # fmt: skip


def _signs(coef: np.ndarray) -> np.ndarray:
    return np.where(np.abs(coef) < TINY, 0, np.sign(coef)).astype(int)


class MonotoneBoosting(ClassifierMixin, BaseEstimator):
    """Gradient boosting constrained to the signs of the logistic regression's coefficients (or unconstrained)."""

    def __init__(self, C: float = 1.0, logistic: Logistic | None = None, constrained: bool = True) -> None:
        self.C = C
        self.logistic = logistic
        self.constrained = constrained

    def fit(self, X: np.ndarray, y: np.ndarray) -> MonotoneBoosting:
        """Fit the logistic regression for the directions, then the booster."""
        self.directions_: np.ndarray | None = None
        if self.constrained:
            assert self.logistic is not None
            linear = self.logistic(self.C).fit(X, y)
            self.directions_ = _signs(linear.named_steps["clf"].coef_[0])
        with threadpool_limits(1, "openmp"):  # on a shared 2-core machine more threads run 20-100× slower
            self.booster_ = _booster(self.directions_).fit(X, y)
        self.classes_ = self.booster_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The booster's class probabilities."""
        with threadpool_limits(1, "openmp"):
            return np.asarray(self.booster_.predict_proba(X))


class SignStableLogistic(ClassifierMixin, BaseEstimator):
    """Logistic regression on the metrics whose coefficient sign agrees across the per-repository fits."""

    def __init__(self, C: float = 1.0, logistic: Logistic | None = None) -> None:
        self.C = C
        self.logistic = logistic

    def fit(self, X: np.ndarray, y: np.ndarray) -> SignStableLogistic:
        """Per-repository fits (code: last column), then the pooled fit on the sign-stable metrics."""
        assert self.logistic is not None
        codes, inputs = X[:, -1], X[:, :-1]
        signs = [
            _signs(self.logistic(self.C).fit(inputs[codes == c], y[codes == c]).named_steps["clf"].coef_[0])
            for c in np.unique(codes)
            if (codes == c).sum() >= MIN_MEMBER_ROWS and len(np.unique(y[codes == c])) == 2
        ]
        table = np.array(signs).reshape(-1, inputs.shape[1])
        stable = ~((table > 0).any(axis=0) & (table < 0).any(axis=0))
        self.kept_ = np.flatnonzero(stable) if stable.any() else np.arange(inputs.shape[1])
        self.model_ = self.logistic(self.C).fit(inputs[:, self.kept_], y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The refitted regression's class probabilities."""
        return np.asarray(self.model_.predict_proba(X[:, :-1][:, self.kept_]))


def monotone_variants(
    frame: pd.DataFrame, logs: np.ndarray, logistic: Logistic
) -> dict[str, tuple[np.ndarray, Callable[[float], Any]]]:
    """name → (model inputs, estimator factory taking C), `logs` being the log1p metrics of `frame`'s rows."""
    codes = np.unique(frame["repository"].astype(str).to_numpy(), return_inverse=True)[1].astype(np.float64)
    return {
        "gradient boosting monotone in the logistic regression's directions": (
            logs,
            lambda C: MonotoneBoosting(C, logistic),
        ),
        "gradient boosting, log1p, unconstrained": (logs, lambda C: MonotoneBoosting(C, constrained=False)),
        "logistic regression with sign-stable coefficients": (
            np.hstack([logs, codes[:, None]]),
            lambda C: SignStableLogistic(C, logistic),
        ),
    }
