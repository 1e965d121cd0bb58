"""The input variants `bench/inputs.py` compares: name → model inputs for every row, and an estimator factory.

Normalisation within a repository uses its *earlier* commits only (a commit's percentile among them, or its
z-score by their mean and SD on the log1p scale), and the pooled earlier commits of every repository while it has
fewer than `MIN_HISTORY`: label-free and causal, as the service could compute it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, PolynomialFeatures, SplineTransformer, StandardScaler

from app.contract import FEATURES
from bench.filtering import filtering_variants
from bench.monotone import monotone_variants
from bench.relevancy import relevancy_variants
from bench.unsupervised import unsupervised_variants
from bench.weighting import weighted_variants
from training import data
from training.features import RelativeChurn
from training.model import LOGISTIC_C

MIN_HISTORY = 30
SD_FLOOR = 0.05  # on the log1p scale
Z_CLIP = 5.0


def past_percentiles(frame: pd.DataFrame, min_history: int = MIN_HISTORY) -> np.ndarray:
    """[N, 15] mid-rank percentile of each metric among the same repository's earlier commits (pooled earlier
    commits of every repository while it has fewer than `min_history`); label-free and causal."""
    X = data.features(frame).astype(np.float64)
    out = np.zeros_like(X)
    pooled: list[list[float]] = [[] for _ in FEATURES]
    own: dict[str, list[list[float]]] = {}
    order = np.argsort(frame["author_date"].to_numpy(), kind="stable")
    for i in order:
        history = own.setdefault(str(frame["repository"].iat[i]), [[] for _ in FEATURES])
        for j, value in enumerate(X[i]):
            seen = history[j] if len(history[j]) >= min_history else pooled[j]
            if seen:
                out[i, j] = (bisect.bisect_left(seen, value) + bisect.bisect_right(seen, value)) / 2 / len(seen)
            else:
                out[i, j] = 0.5
        for j, value in enumerate(X[i]):
            bisect.insort(history[j], value)
            bisect.insort(pooled[j], value)
    return out


def past_zscores(frame: pd.DataFrame, min_history: int = MIN_HISTORY) -> np.ndarray:
    """[N, 15] log1p metrics standardised by the mean and SD of the same repository's earlier commits (pooled
    earlier commits of every repository while it has fewer than `min_history`); label-free and causal."""
    logs = np.log1p(data.features(frame).astype(np.float64))
    order = np.argsort(frame["author_date"].to_numpy(), kind="stable")
    x = logs[order]
    owner = frame["repository"].astype(str).to_numpy()[order]

    def earlier(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Exclusive running sums: row i sees rows 0..i-1 only.
        n = np.arange(len(rows), dtype=np.float64)[:, None]
        s1 = np.vstack([np.zeros((1, rows.shape[1])), np.cumsum(rows, axis=0)[:-1]])
        s2 = np.vstack([np.zeros((1, rows.shape[1])), np.cumsum(rows**2, axis=0)[:-1]])
        return n, s1, s2

    n, s1, s2 = earlier(x)
    for repository in np.unique(owner):
        mine = owner == repository
        n_r, s1_r, s2_r = earlier(x[mine])
        own = (n_r >= min_history)[:, 0]
        rows = np.flatnonzero(mine)[own]
        n[rows], s1[rows], s2[rows] = n_r[own], s1_r[own], s2_r[own]
    seen = np.maximum(n, 1.0)
    mean = s1 / seen
    # A metric constant so far (ns = 1 in a repository's first commits) has SD 0: a floor and a clip keep the
    # first different value from becoming an outlier that dominates the fit.
    sd = np.maximum(np.sqrt(np.maximum(s2 / seen - mean**2, 0.0)), SD_FLOOR)
    z = np.where(n >= 2, np.clip((x - mean) / sd, -Z_CLIP, Z_CLIP), 0.0)
    out = np.empty_like(z)
    out[order] = z
    return out


def _logistic(C: float, balanced: bool = True, l1: bool = False) -> Pipeline:
    clf = LogisticRegression(
        C=C, class_weight="balanced" if balanced else None, max_iter=5000,
        **({"l1_ratio": 1.0, "solver": "liblinear"} if l1 else {}),
    )  # fmt: skip
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def _expanded(step: Any) -> Callable[[float], Pipeline]:
    """A logistic regression behind `step`, a fresh clone of it per fit."""
    return lambda C: Pipeline([("expand", clone(step)), *_logistic(C).steps])


class _MeanOfHalves(ClassifierMixin, BaseEstimator):
    """Soft vote of two logistic regressions: one on the first half of the columns, one on the second."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> _MeanOfHalves:
        half = X.shape[1] // 2
        self.halves_ = [_logistic(self.C).fit(X[:, :half], y), _logistic(self.C).fit(X[:, half:], y)]
        self.classes_ = self.halves_[0].classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        half = X.shape[1] // 2
        first, second = self.halves_
        return (first.predict_proba(X[:, :half]) + second.predict_proba(X[:, half:])) / 2


def _products(logs: np.ndarray, pairs: tuple[tuple[str, str], ...]) -> np.ndarray:
    at = {name: i for i, name in enumerate(FEATURES)}
    return np.column_stack([logs[:, at[a]] * logs[:, at[b]] for a, b in pairs])


def variants(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, Callable[[float], Any]]]:
    """name → (model inputs [N, k] for every row of `frame`, estimator factory taking C)."""
    X = data.features(frame).astype(np.float64)
    churn = RelativeChurn().fit(X).transform(X)
    ranks = past_percentiles(frame)
    logs = np.log1p(X)
    zscores = past_zscores(frame)
    return {
        "log1p metrics (the simplest)": (np.log1p(X), _logistic),
        "log1p + relative churn": (np.log1p(churn), _logistic),
        "per-repository past percentiles": (ranks, _logistic),
        "percentiles + log1p metrics": (np.hstack([ranks, np.log1p(X)]), _logistic),
        "bagged logistic (25 bootstraps)": (
            np.log1p(X),
            lambda C: BaggingClassifier(_logistic(C), n_estimators=25, random_state=42),
        ),
        "random forest, raw metrics": (
            X,
            lambda _C: RandomForestClassifier(100, class_weight="balanced", random_state=42),
        ),
        "random forest, log1p metrics": (
            np.log1p(X),
            lambda _C: RandomForestClassifier(100, class_weight="balanced", random_state=42),
        ),
        # A GAM-like logistic regression: each log1p metric through a cubic B-spline basis (knots uniform on
        # the log scale, constant beyond the training range), the coefficients shrunk by the same C grid.
        "log1p → cubic splines (5 knots)": (
            logs,
            _expanded(SplineTransformer(n_knots=5, degree=3, extrapolation="constant")),
        ),
        "log1p → cubic splines (3 knots, linear beyond the range)": (
            logs,
            _expanded(SplineTransformer(n_knots=3, degree=3, extrapolation="linear")),
        ),
        "log1p → quantile bins (5, one-hot)": (
            logs,
            _expanded(
                KBinsDiscretizer(5, encode="onehot-dense", strategy="quantile", quantile_method="averaged_inverted_cdf")
            ),
        ),
        "log1p z-scored within repository (earlier commits)": (zscores, _logistic),
        "z-scored within repository + log1p metrics": (np.hstack([zscores, logs]), _logistic),
        "mean of the log1p and the within-repository z-score models": (
            np.hstack([logs, zscores]),
            lambda C: _MeanOfHalves(C),
        ),
        "log1p + la·lt, ld·lt, nf·entropy (products of logs)": (
            np.hstack([logs, _products(logs, (("la", "lt"), ("ld", "lt"), ("nf", "entropy")))]),
            _logistic,
        ),
        "log1p + every pairwise product": (
            logs,
            _expanded(PolynomialFeatures(2, interaction_only=True, include_bias=False)),
        ),
        "log1p, no class weights": (logs, lambda C: _logistic(C, balanced=False)),
        "log1p, L1 penalty": (logs, lambda C: _logistic(C, l1=True)),
        **weighted_variants(frame, logs, _logistic),
        **monotone_variants(frame, logs, _logistic),
        **unsupervised_variants(logs, _logistic, LOGISTIC_C),
        **filtering_variants(frame, logs, _logistic),
        **relevancy_variants(frame, logs, _logistic),
    }
