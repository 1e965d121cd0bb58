"""Training rows chosen or weighted by their similarity to the target repository, for `bench/inputs.py` (issue 14).

The cross-project literature's remedy for repositories that differ: learn from the training rows that look like
the target's commits.

- Burak (NN) filter (Turhan et al., "On the relative value of cross-company and within-company data for defect
  prediction", EMSE 2009): for each target row its `k` nearest training rows; the model trains on their union.
- Peters filter (Peters et al., "Better cross company defect prediction", MSR 2013): the training rows pick,
  each its nearest target row; each target row then keeps the nearest of the training rows that picked it, so
  the training data's own structure decides what is kept.
- Transfer Naive Bayes weights (Ma et al., IST 2012): a training row whose metrics fall within the target's
  range on `s` of the `m` metrics weighs `s / (m − s + 1)²`; here these weights are the logistic regression's
  sample weights (classes then balanced) instead of a naive Bayes prior.

Distances are Euclidean on the log1p metrics standardised by the training rows' mean and SD. The target's rows
are used unlabelled, their 15 metrics only; the class-balanced logistic regression is then fitted on the chosen
(or weighted) training rows. Transductive: `bench/inputs.py` calls `predict_proba` once per fold with all of the
fold's test rows, so `fit` only stores the training rows and `predict_proba` chooses among them with the test
rows as the target sample, then fits and scores. `predict_proba` never receives a label, so no test label can be
read. Leaving a repository out, the target sample is all of its rows: this assumes that a new repository calling
the service sends its history of commits first (unlabelled, the metrics the service computes anyway). Forward,
it is the repository's commits of the test period. The strict target (`strict=True`) is what is known before the
test period instead: the target repository's training rows (its earlier commits, features only), read through
the last input column, the repository's code; left out, a repository has none, and the plain model is fitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.neighbors import NearestNeighbors

from bench.weighting import class_balanced

Logistic = Callable[[float], Any]  # C → class-balanced logistic regression pipeline (scaler, "clf")
Relevance = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (training rows, target rows), standardised → weights


def burak(k: int) -> Relevance:
    """Weight 1 for every training row among the `k` nearest of some target row, else 0."""

    def weigh(train: np.ndarray, target: np.ndarray) -> np.ndarray:
        neighbours = NearestNeighbors(n_neighbors=min(k, len(train))).fit(train).kneighbors(target)[1]
        w = np.zeros(len(train))
        w[np.unique(neighbours)] = 1.0
        return w

    return weigh


def peters(train: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Weight 1 for the training rows that are the nearest, among those choosing it, of some target row."""
    distance, chosen = NearestNeighbors(n_neighbors=1).fit(target).kneighbors(train)
    distance, chosen = distance[:, 0], chosen[:, 0]
    w = np.zeros(len(train))
    # Sort by (chosen target row, distance): the first training row of each target row is its nearest fan.
    order = np.lexsort((distance, chosen))
    first = np.ones(len(order), dtype=bool)
    first[1:] = chosen[order][1:] != chosen[order][:-1]
    w[order[first]] = 1.0
    return w


def transfer_naive_bayes(train: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Ma et al.'s similarity weight: `s / (m − s + 1)²`, `s` the metrics within the target's [min, max]."""
    within = ((train >= target.min(axis=0)) & (train <= target.max(axis=0))).sum(axis=1)
    return within / (train.shape[1] - within + 1.0) ** 2


class Relevant(ClassifierMixin, BaseEstimator):
    """`estimator` fitted, at prediction time, on the training rows weighted by `relevance` to the target rows
    (last input column: the repository's code, dropped from the inputs). With fewer than two classes of
    positive weight, it fits on every training row."""

    def __init__(self, estimator: Any = None, relevance: Relevance | None = None, strict: bool = False) -> None:
        self.estimator = estimator
        self.relevance = relevance
        self.strict = strict

    def fit(self, X: np.ndarray, y: np.ndarray) -> Relevant:
        self.train_, self.codes_, self.y_ = X[:, :-1], X[:, -1], np.asarray(y)
        self.mean_ = self.train_.mean(axis=0)
        self.sd_ = np.where(self.train_.std(axis=0) > 0, self.train_.std(axis=0), 1.0)
        self.classes_ = np.unique(self.y_)
        return self

    def weights(self, X: np.ndarray) -> np.ndarray:
        """Each training row's sample weight for the target rows `X` (classes balanced, mean 1 over its rows)."""
        assert self.relevance is not None
        target = self.train_[np.isin(self.codes_, np.unique(X[:, -1]))] if self.strict else X[:, :-1]
        w = np.ones(len(self.y_))
        if len(target):
            w = self.relevance((self.train_ - self.mean_) / self.sd_, (target - self.mean_) / self.sd_)
        if len(np.unique(self.y_[w > 0])) < 2:
            w = np.ones(len(self.y_))
        out = np.zeros(len(w))
        used = w > 0
        out[used] = class_balanced(w[used], self.y_[used])
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        w = self.weights(X)
        self.used_ = w > 0
        fitted = clone(self.estimator).fit(
            self.train_[self.used_], self.y_[self.used_], clf__sample_weight=w[self.used_]
        )
        return np.asarray(fitted.predict_proba(X[:, :-1]))


RELEVANCE: dict[str, tuple[Relevance, bool]] = {
    "Burak filter, the 10 nearest training rows of each target row": (burak(10), False),
    "Burak filter, the 5 nearest": (burak(5), False),
    "Burak filter, the 25 nearest": (burak(25), False),
    "Burak filter, 10 nearest, strict (target: the repository's earlier commits)": (burak(10), True),
    "Peters filter (each target row keeps its nearest fan)": (peters, False),
    "Transfer Naive Bayes similarity weights (Ma et al. 2012)": (transfer_naive_bayes, False),
}


def relevancy_variants(
    frame: pd.DataFrame, logs: np.ndarray, logistic: Logistic
) -> dict[str, tuple[np.ndarray, Callable[[float], Any]]]:
    """name → (the log1p metrics `logs` plus the repository's code, factory taking C); `logistic(C)`: a pipeline
    whose last step "clf" takes `class_weight` (set to None here: the sample weights balance the classes)."""
    codes = np.unique(frame["repository"].astype(str).to_numpy(), return_inverse=True)[1].astype(np.float64)
    inputs = np.column_stack([logs, codes])

    def factory(relevance: Relevance, strict: bool) -> Callable[[float], Relevant]:
        return lambda C: Relevant(logistic(C).set_params(clf__class_weight=None), relevance, strict)

    return {f"log1p, relevancy: {name}": (inputs, factory(*made)) for name, made in RELEVANCE.items()}
