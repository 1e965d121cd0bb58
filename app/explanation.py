"""Exact explanations of a linear model: each input term's contribution to the served log-odds (numpy only).

For a logistic model the score is `logit(p) = intercept + Σ coefficient · (term − mean) / scale`, so each term's
contribution is exact and the contributions add up to the score — nothing to perturb. A term is a metric or a
relative-churn ratio, on the model's own scale (log1p, standardised), as the manifest's `explanation` describes.
"""

from __future__ import annotations

import numpy as np

from app.contract import FEATURES, LinearExplanation


class LinearExplainer:
    """The terms of one manifest's linear model, vectorised; ValueError if they name unknown metrics."""

    def __init__(self, explanation: LinearExplanation) -> None:
        index = {name: i for i, name in enumerate(FEATURES)}
        terms = explanation.terms
        unknown = sorted({n for t in terms for n in [*t.numerator, t.denominator or ""] if n and n not in index})
        if unknown or not terms:
            raise ValueError(f"explanation terms name unknown metrics: {unknown}" if unknown else "no terms")
        self.names = [t.name for t in terms]
        self.intercept = explanation.intercept
        width = len(FEATURES)
        # Each term's numerator is a 0/1 row over the metrics (a sum), its denominator one metric or none.
        self._numerator = np.array([[float(f in t.numerator) for f in FEATURES] for t in terms], dtype=np.float32).T
        self._denominator = np.array([index.get(t.denominator or "", width) for t in terms])
        self._floor = np.array([t.floor for t in terms], dtype=np.float32)
        self._log = np.array([t.log1p for t in terms])
        self._mean = np.array([t.mean for t in terms])
        self._scale = np.array([t.scale for t in terms])
        self._coefficient = np.array([t.coefficient for t in terms])
        # The value a term contributes nothing at: its training mean, back on the metric's own scale.
        self.typical = np.where(self._log, np.expm1(self._mean), self._mean).tolist()

    def terms(self, matrix: np.ndarray) -> np.ndarray:
        """[N, terms] values on the metrics' scale (a ratio's floored denominator), float32 like the ONNX model."""
        x = np.asarray(matrix, dtype=np.float32)
        top = x @ self._numerator
        # A column of ones stands for "no denominator" (index `width`): dividing by max(1, floor) is then exact.
        padded = np.hstack([x, np.ones((len(x), 1), dtype=np.float32)])
        bottom = np.where(self._denominator < x.shape[1], np.maximum(padded[:, self._denominator], self._floor), 1)
        return np.asarray(top / bottom, dtype=np.float32)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """[N, terms] exact contributions to the log-odds: coefficient · (term on the model's scale − mean) / scale."""
        values = self.terms(matrix).astype(np.float64)
        scaled = np.where(self._log, np.log1p(values), values)
        return np.asarray(self._coefficient * (scaled - self._mean) / self._scale, dtype=np.float64)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """sigmoid(intercept + Σ contributions): what the model file must also answer (checked at load)."""
        logits = self.intercept + self.contributions(matrix).sum(axis=1)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)
