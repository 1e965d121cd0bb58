"""More input variants for `bench/inputs.py` (issue 14): sample weights, feature subsets, per-repository voting.

The estimators here see one extra last input column that they drop before fitting and predicting: the
repository's code (a label-free integer per repository) or the commit's author date (Unix seconds). Only the
training rows of a fold reach `fit`, so weights are computed from those rows alone.

- Repository-balanced: every training repository gets the same total weight, so the largest one does not
  dominate the pooled fit; then the two classes get the same total weight (like `class_weight="balanced"`).
  "× class" balances the classes within each repository instead (each repository's buggy and clean commits
  get half of its weight each), which also removes the repositories' different bug rates from the fit.
- Recency: a row's weight halves every `half_life` years of age, age measured from the newest training commit.
- Per-repository vote (Kamei et al., "Studying just-in-time defect prediction using cross-project models",
  EMSE 2016, the ensemble of per-project models that did best there): one class-balanced logistic regression per
  training repository, the predicted probabilities averaged.

Weights are normalised to a mean of 1 so C means what it means for the plain logistic regression.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from app.contract import FEATURES

YEAR_S = 365.25 * 86_400
Weigh = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (extra columns [N, k], labels) → sample weights [N]
MIN_MEMBER_ROWS = 30  # a repository with fewer training rows (or one class only) gets no member of the vote


def _unweighted_logistic(C: float, balanced: bool) -> Pipeline:
    clf = LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=5000)
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def class_balanced(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`w` rescaled so each class holds half of the total weight, the total being the row count."""
    out = w.astype(np.float64).copy()
    for label in np.unique(y):
        mine = y == label
        out[mine] *= len(y) / 2 / out[mine].sum()
    return out


def by_repository(extra: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each repository (code: first extra column) the same total weight, then the classes balanced over all rows."""
    _, inverse, counts = np.unique(extra[:, 0], return_inverse=True, return_counts=True)
    return class_balanced(1.0 / counts[inverse], y)


def by_repository_and_class(extra: np.ndarray, y: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """Each repository (code: first extra column) the same total weight, split evenly between its buggy and its
    clean commits; inside each (repository, class) cell in proportion to `within` (default: equally)."""
    codes = extra[:, 0]
    w = np.ones(len(y)) if within is None else within.astype(np.float64).copy()
    for code in np.unique(codes):
        mine = codes == code
        labels = np.unique(y[mine])
        for label in labels:
            cell = mine & (y == label)
            w[cell] *= 1.0 / len(labels) / w[cell].sum()
    return w * len(y) / w.sum()


def _halving(dates: np.ndarray, half_life_years: float) -> np.ndarray:
    return 0.5 ** ((dates.max() - dates) / YEAR_S / half_life_years)


def by_recency(half_life_years: float) -> Weigh:
    """Weights halving every `half_life_years` of age from the newest training commit (date: last extra column),
    classes then balanced."""
    return lambda extra, y: class_balanced(_halving(extra[:, -1], half_life_years), y)


def by_repository_class_and_recency(half_life_years: float) -> Weigh:
    """Repository × class balanced (code: first extra column), the recency weights (date: last extra column)
    sharing out each (repository, class) cell's weight."""
    return lambda extra, y: by_repository_and_class(extra, y, _halving(extra[:, -1], half_life_years))


class Weighted(ClassifierMixin, BaseEstimator):
    """Logistic regression on every column but the last `extra`, which `weigh(those columns, y)` turns into
    sample weights."""

    def __init__(self, C: float = 1.0, weigh: Weigh | None = None, extra: int = 1) -> None:
        self.C = C
        self.weigh = weigh
        self.extra = extra

    def fit(self, X: np.ndarray, y: np.ndarray) -> Weighted:
        assert self.weigh is not None
        w = self.weigh(X[:, -self.extra :], y)
        self.model_ = _unweighted_logistic(self.C, balanced=False).fit(X[:, : -self.extra], y, clf__sample_weight=w)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X[:, : -self.extra])


class PerRepositoryVote(ClassifierMixin, BaseEstimator):
    """Mean probability of one class-balanced logistic regression per training repository (last column: its
    code); the pooled model alone if no repository has enough rows of both classes."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> PerRepositoryVote:
        codes, inputs = X[:, -1], X[:, :-1]
        self.members_ = [
            _unweighted_logistic(self.C, balanced=True).fit(inputs[codes == c], y[codes == c])
            for c in np.unique(codes)
            if (codes == c).sum() >= MIN_MEMBER_ROWS and len(np.unique(y[codes == c])) == 2
        ] or [_unweighted_logistic(self.C, balanced=True).fit(inputs, y)]
        self.classes_ = self.members_[0].classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(X[:, :-1]) for m in self.members_], axis=0)


def _without(logs: np.ndarray, dropped: tuple[str, ...]) -> np.ndarray:
    return logs[:, [i for i, name in enumerate(FEATURES) if name not in dropped]]


def _only(logs: np.ndarray, kept: tuple[str, ...]) -> np.ndarray:
    return logs[:, [i for i, name in enumerate(FEATURES) if name in kept]]


def weighted_variants(
    frame: pd.DataFrame, logs: np.ndarray, logistic: Callable[[float], Any]
) -> dict[str, tuple[np.ndarray, Callable[[float], Any]]]:
    """name → (model inputs, estimator factory taking C), `logs` being the log1p metrics of `frame`'s rows."""
    repositories = frame["repository"].astype(str).to_numpy()
    codes = np.unique(repositories, return_inverse=True)[1].astype(np.float64)[:, None]
    dates = frame["author_date"].to_numpy(dtype=np.float64)[:, None]
    with_code, with_date = np.hstack([logs, codes]), np.hstack([logs, dates])

    def weighted(weigh: Weigh, extra: int = 1) -> Callable[[float], Weighted]:
        return lambda C: Weighted(C, weigh, extra)

    return {
        "log1p, repository-balanced weights": (with_code, weighted(by_repository)),
        "log1p, repository × class balanced weights": (with_code, weighted(by_repository_and_class)),
        "log1p, recency weights (half-life 1 year)": (with_date, weighted(by_recency(1.0))),
        "log1p, recency weights (half-life 3 years)": (with_date, weighted(by_recency(3.0))),
        # Added after the two above won by the rule (post hoc, one more comparison): both at once.
        "log1p, repository × class balanced × recency (half-life 3 years) weights": (
            np.hstack([logs, codes, dates]),
            weighted(by_repository_class_and_recency(3.0), extra=2),
        ),
        "log1p without experience (exp, rexp, sexp)": (_without(logs, ("exp", "rexp", "sexp")), logistic),
        "log1p without history (ndev, age, nuc)": (_without(logs, ("ndev", "age", "nuc")), logistic),
        "log1p, size + diffusion only (ns nd nf entropy la ld lt)": (
            _only(logs, ("ns", "nd", "nf", "entropy", "la", "ld", "lt")),
            logistic,
        ),
        "log1p, vote of per-repository models (Kamei 2016)": (with_code, lambda C: PerRepositoryVote(C)),
    }
