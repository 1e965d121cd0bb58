"""Training rows chosen or weighted by their similarity to the target repository, for `bench/inputs.py` (issue 14).

    .venv/bin/python -m bench.relevancy [--no-append]   # training rows kept and their effective number per fold

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

Added after those lost (post hoc), because each dropped or down-weighted most training rows: every row kept with
its Burak neighbour count added to its weight (a k-NN density ratio), covariate-shift weights (the odds of a
train-vs-target classifier), whole repositories chosen by their similarity (Herbold, PROMISE 2013), and, not a
weighting, each repository z-scored by its own rows, the target by its unlabelled ones (TCA+'s normalisation).

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

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors

from bench.machine import publish, table
from bench.weighting import class_balanced
from training import data

Logistic = Callable[[float], Any]  # C → class-balanced logistic regression pipeline (scaler, "clf")
# (training rows, their repository codes, target rows), the rows standardised → a weight per training row
Relevance = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
SD_FLOOR = 0.05  # on the log1p scale, as in bench/variants.py: a metric constant within a repository
ODDS_CLIP = 10.0  # covariate-shift weights: no training row counts more than this many times the median row


def burak(k: int) -> Relevance:
    """Weight 1 for every training row among the `k` nearest of some target row, else 0."""

    def weigh(train: np.ndarray, codes: np.ndarray, target: np.ndarray) -> np.ndarray:
        neighbours = NearestNeighbors(n_neighbors=min(k, len(train))).fit(train).kneighbors(target)[1]
        w = np.zeros(len(train))
        w[np.unique(neighbours)] = 1.0
        return w

    return weigh


def peters(train: np.ndarray, codes: np.ndarray, target: np.ndarray) -> np.ndarray:
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


def transfer_naive_bayes(train: np.ndarray, codes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Ma et al.'s similarity weight: `s / (m − s + 1)²`, `s` the metrics within the target's [min, max]."""
    within = ((train >= target.min(axis=0)) & (train <= target.max(axis=0))).sum(axis=1)
    return within / (train.shape[1] - within + 1.0) ** 2


def burak_counts(k: int) -> Relevance:
    """Every training row kept: weight 1 plus how often it is among the `k` nearest of a target row, the counts
    scaled to the same total as the ones (a k-NN estimate of the target's density over the training rows')."""

    def weigh(train: np.ndarray, codes: np.ndarray, target: np.ndarray) -> np.ndarray:
        neighbours = NearestNeighbors(n_neighbors=min(k, len(train))).fit(train).kneighbors(target)[1]
        counts = np.bincount(neighbours.ravel(), minlength=len(train))
        return 1.0 + counts * len(train) / counts.sum()

    return weigh


def nearest_repositories(n: int) -> Relevance:
    """Weight 1 for the rows of the `n` training repositories whose mean and SD of each metric are nearest the
    target's (Euclidean over the 30 numbers; Herbold, "Training data selection for cross-project defect
    prediction", PROMISE 2013), else 0."""

    def weigh(train: np.ndarray, codes: np.ndarray, target: np.ndarray) -> np.ndarray:
        own = np.concatenate([target.mean(axis=0), target.std(axis=0)])
        distance = {
            c: np.linalg.norm(np.concatenate([train[codes == c].mean(axis=0), train[codes == c].std(axis=0)]) - own)
            for c in np.unique(codes)
        }
        kept = sorted(distance, key=lambda c: distance[c])[:n]
        return np.isin(codes, kept).astype(np.float64)

    return weigh


def covariate_shift(train: np.ndarray, codes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Odds that a row is a target row rather than a training row, by a logistic regression told the two apart
    (Bickel et al., "Discriminative learning for differing training and test distributions", ICML 2007);
    clipped at `ODDS_CLIP` times their median."""
    both = np.vstack([train, target])
    side = np.r_[np.zeros(len(train)), np.ones(len(target))]
    odds = np.exp(LogisticRegression(C=1.0, max_iter=5000).fit(both, side).decision_function(train))
    return np.minimum(odds, ODDS_CLIP * np.median(odds))


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
            scaled = (self.train_ - self.mean_) / self.sd_
            w = self.relevance(scaled, self.codes_, (target - self.mean_) / self.sd_)
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


class OwnScaled(ClassifierMixin, BaseEstimator):
    """`estimator` on the log1p metrics z-scored within each repository (last input column: its code): training
    repositories by their own training rows, a target repository by its own unlabelled rows (TCA+'s
    normalisation of each dataset by its own mean and SD, Nam et al., ICSE 2013); strict, by its training rows
    (its earlier commits), or by all training rows when it has none."""

    def __init__(self, estimator: Any = None, strict: bool = False) -> None:
        self.estimator = estimator
        self.strict = strict

    def _stats(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows.mean(axis=0), np.maximum(rows.std(axis=0), SD_FLOOR)

    def fit(self, X: np.ndarray, y: np.ndarray) -> OwnScaled:
        codes, rows = X[:, -1], X[:, :-1]
        self.stats_ = {c: self._stats(rows[codes == c]) for c in np.unique(codes)}
        self.pooled_ = self._stats(rows)
        self.model_ = clone(self.estimator).fit(self._scaled(X, self.stats_), y)
        self.classes_ = self.model_.classes_
        return self

    def _scaled(self, X: np.ndarray, stats: dict[float, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        out = np.empty_like(X[:, :-1])
        for c in np.unique(X[:, -1]):
            mine = X[:, -1] == c
            mean, sd = stats.get(c, self.pooled_)
            out[mine] = (X[mine, :-1] - mean) / sd
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.strict:
            stats = self.stats_
        else:
            stats = {c: self._stats(X[X[:, -1] == c, :-1]) for c in np.unique(X[:, -1]) if (X[:, -1] == c).sum() > 1}
        return np.asarray(self.model_.predict_proba(self._scaled(X, stats)))


RELEVANCE: dict[str, tuple[Relevance, bool]] = {
    "Burak filter, the 10 nearest training rows of each target row": (burak(10), False),
    "Burak filter, the 5 nearest": (burak(5), False),
    "Burak filter, the 25 nearest": (burak(25), False),
    "Burak filter, 10 nearest, strict (target: the repository's earlier commits)": (burak(10), True),
    "Peters filter (each target row keeps its nearest fan)": (peters, False),
    "Transfer Naive Bayes similarity weights (Ma et al. 2012)": (transfer_naive_bayes, False),
    # Added after the six above lost (post hoc): keeping every row, and choosing whole repositories.
    "every row kept, weighted up by its Burak neighbour count (k = 10)": (burak_counts(10), False),
    "covariate-shift weights (odds of a train-vs-target logistic regression)": (covariate_shift, False),
    "the 2 training repositories nearest the target (Herbold 2013)": (nearest_repositories(2), False),
    "the 2 nearest repositories, strict": (nearest_repositories(2), True),
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

    return {
        **{f"log1p, relevancy: {name}": (inputs, factory(*made)) for name, made in RELEVANCE.items()},
        # Not a weighting: the target's unlabelled rows set its normalisation instead (post hoc, after the above).
        "log1p, relevancy: each repository z-scored by its own rows (TCA+ normalisation)": (
            inputs,
            lambda C: OwnScaled(logistic(C)),
        ),
        "log1p, relevancy: each repository z-scored by its own rows, strict": (
            inputs,
            lambda C: OwnScaled(logistic(C), strict=True),
        ),
    }


def effective() -> str:
    """Per variant and protocol, the mean share of training rows with weight > 0 and their effective number
    (Kish: (Σw)² / Σw², as a share of the rows), on the folds of all mature rows of `bench/inputs.py`."""
    from bench.inputs import protocol_folds  # here: bench.inputs imports this module through bench.variants
    from bench.variants import _logistic

    mature, _, folds, at = protocol_folds()
    logs = np.log1p(data.features(mature).astype(np.float64))
    y = mature["buggy"].to_numpy()
    out: list[list[object]] = []
    found = relevancy_variants(mature, logs, _logistic)
    inputs = next(iter(found.values()))[0]
    equally = (inputs, lambda C: Relevant(_logistic(C), lambda train, codes, target: np.ones(len(train))))
    weighted = {name: made for name, made in found.items() if isinstance(made[1](0.01), Relevant)}
    for name, (inputs, make) in {"every training row equally (the simplest)": equally, **weighted}.items():
        cells: list[object] = [name.removeprefix("log1p, relevancy: ")]
        for kind in ("forward", "leave_one_out"):
            shares = []
            for fold in (f for f in folds.folds if f.protocol == kind):
                train = at[id(folds)][fold.train]
                w = make(0.01).fit(inputs[train], y[train]).weights(inputs[at[id(folds)][fold.test]])
                shares.append(((w > 0).mean(), w.sum() ** 2 / (w**2).sum() / len(w)))
            cells += [f"{np.mean([k for k, _ in shares]):.0%}", f"{np.mean([e for _, e in shares]):.0%}"]
        out.append(cells)
    return "\n\n".join(
        [
            "Training rows with weight > 0 and their effective number ((Σw)² / Σw², classes balanced), as shares of "
            "each fold's training rows, mean over the folds on all mature rows:",
            table(
                ["training rows", "kept (forward)", "effective (forward)", "kept (left out)", "effective (left out)"],
                out,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    publish("Relevancy filters and weights: training rows kept (`bench/relevancy.py`)", effective(), args.no_append)


if __name__ == "__main__":
    main()
