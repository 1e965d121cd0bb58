"""Dynamic data selection: weight past rows by how much they look like current production data.

A domain classifier learns "production (1) vs training pool (0)" on the features alone — no labels needed,
so the newest unlabelled predictions count. Its odds p / (1 − p), rescaled by the class sizes, estimate the
density ratio p_production(x) / p_train(x): the importance weight of covariate-shift correction. Probabilities
are out-of-fold so a row's weight never comes from a model that saw that row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training import evaluate

MIN_ROWS = 30


@dataclass(frozen=True)
class Selection:
    """Per-row weights (mean 1) for the pool, and how separable production was from it."""

    weights: np.ndarray
    domain_roc_auc: float | None
    production_rows: int
    clip: float

    def as_json(self) -> dict[str, Any]:
        """Summary for the audit record (no per-row weights)."""
        w = self.weights
        return {
            "domain_roc_auc": self.domain_roc_auc,
            "production_rows": self.production_rows,
            "clip": self.clip,
            "weight_min": round(float(w.min()), 4),
            "weight_median": round(float(np.median(w)), 4),
            "weight_max": round(float(w.max()), 4),
            # Kish's effective sample size: how many unweighted rows the weighted pool is worth.
            "effective_rows": round(float(w.sum() ** 2 / np.sum(w**2)), 1),
        }


def importance_weights(pool: np.ndarray, production: np.ndarray, *, clip: float = 10.0, seed: int = 0) -> Selection:
    """Weights of the `pool` rows [N, F] given a production sample [M, F]: in [1/clip, clip], mean 1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from training.model import Log1p

    if clip < 1:
        raise ValueError(f"clip must be >= 1, got {clip}")
    if len(pool) < MIN_ROWS or len(production) < MIN_ROWS:
        raise ValueError(f"need ≥ {MIN_ROWS} pool and production rows, got {len(pool)} and {len(production)}")
    if pool.shape[1] != production.shape[1]:
        raise ValueError(f"feature count differs: pool {pool.shape[1]}, production {production.shape[1]}")
    X = np.vstack([pool, production]).astype(np.float64)
    y = np.r_[np.zeros(len(pool), dtype=np.int64), np.ones(len(production), dtype=np.int64)]
    # log1p + scaling + balanced, strongly regularised logistic regression: smooth odds (trees give 0/1
    # leaves → extreme weights), and with C=0.01 two samples of one distribution get weights near 1.
    classifier = Pipeline(
        [
            ("log1p", Log1p()),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(class_weight="balanced", C=0.01)),
        ]
    )
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    p = cross_val_predict(classifier, X, y, cv=folds, method="predict_proba")[:, 1]
    auc = evaluate.roc_auc(y, p)
    # class_weight="balanced" makes the classifier's prior 1:1, so the odds already are the density ratio.
    p_pool = np.clip(p[: len(pool)], 1e-6, 1 - 1e-6)
    odds = p_pool / (1.0 - p_pool)
    weights = np.clip(odds / odds.mean(), 1.0 / clip, clip)
    return Selection(weights / weights.mean(), None if auc is None else round(auc, 4), len(production), clip)
