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
        denominator = np.array([index.get(t.denominator or "", width) for t in terms])
        self._has_denominator = denominator < width
        self._denominator_index = np.where(self._has_denominator, denominator, 0)
        self._floor = np.array([t.floor for t in terms], dtype=np.float32)
        self._log = np.array([t.log1p for t in terms])
        self._all_log = bool(self._log.all())
        # Terms that are the metrics themselves, in order: the terms of a row are the row (one-row answers are
        # dominated by numpy's per-call cost, so the shortcut halves an explanation).
        self._identity = (
            [t.name for t in terms] == list(FEATURES)
            and not self._has_denominator.any()
            and all(t.numerator == [t.name] for t in terms)
        )
        self._mean = np.array([t.mean for t in terms])
        self._scale = np.array([t.scale for t in terms])
        self._coefficient = np.array([t.coefficient for t in terms])
        # One row of metric terms in plain floats: for a single commit numpy's per-call cost is most of the work.
        self._row_terms = list(zip(self._coefficient.tolist(), self._mean.tolist(), self._scale.tolist(), strict=True))
        # The value a term contributes nothing at: its training mean, back on the metric's own scale.
        self.typical = np.where(self._log, np.expm1(self._mean), self._mean).tolist()

    def terms(self, matrix: np.ndarray) -> np.ndarray:
        """[N, terms] values on the metrics' scale (a ratio's floored denominator), float32 like the ONNX model."""
        x = np.asarray(matrix, dtype=np.float32)
        if self._identity:  # the metrics themselves (raw inputs): nothing to compute
            return x
        top = x @ self._numerator
        # "No denominator" reads column 0 and is then replaced by 1: dividing by 1 is exact.
        bottom = np.where(self._has_denominator, np.maximum(x[:, self._denominator_index], self._floor), 1)
        return np.asarray(top / bottom, dtype=np.float32)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """[N, terms] exact contributions to the log-odds: coefficient · (term on the model's scale − mean) / scale."""
        return self.terms_and_contributions(matrix)[1]

    def terms_and_contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`terms` and `contributions` of the same rows, the terms computed once (the explained hot path)."""
        values = self.terms(matrix)
        wide = values.astype(np.float64)
        scaled = np.log1p(wide) if self._all_log else np.where(self._log, np.log1p(wide), wide)
        return values, np.asarray(self._coefficient * (scaled - self._mean) / self._scale, dtype=np.float64)

    def terms_and_contribution_lists(self, matrix: np.ndarray) -> tuple[list[list[float]], list[list[float]]]:
        """`terms_and_contributions` as lists of rows. One row of log-scaled metric terms takes one numpy call (its
        log1p: math.log1p differs in the last bit) and plain floats for the rest: the same operations in the same
        order on the same doubles, a third of the cost."""
        if matrix.shape[0] != 1 or not self._identity or not self._all_log:
            values, contributions = self.terms_and_contributions(matrix)
            return values.tolist(), contributions.tolist()
        # The float32 values widened to doubles before log1p, as `astype(np.float64)` gives them.
        scaled = np.log1p(matrix[0], dtype=np.float64).tolist()
        shares = [c * (x - m) / s for x, (c, m, s) in zip(scaled, self._row_terms, strict=True)]
        return matrix.tolist(), [shares]

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """sigmoid(intercept + Σ contributions): what the model file must also answer (checked at load)."""
        logits = self.intercept + self.contributions(matrix).sum(axis=1)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)
