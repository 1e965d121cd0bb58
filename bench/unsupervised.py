"""Unsupervised rankers and their blends with the logistic regression, for `bench/inputs.py` (issue 14).

    .venv/bin/python -m bench.unsupervised [--no-append]   # per repository, the blends' grid, effort-aware figures

- A ranker (Yang et al., "Effort-aware just-in-time defect prediction: simple unsupervised models could be better
  than supervised models", FSE 2016) scores a commit by one metric, larger first, with no training: `fit` reads
  the labels only for `classes_` and the column's mean and SD, which map the score into (0, 1) monotonically, so
  the ranking (and ROC AUC) is the metric's own. Yang's effort-aware 1/x models are the reverse rankings: their
  ROC AUC is 1 − that of x, so they get no rows of their own.
- OneWay (Fu & Menzies, "Revisiting unsupervised learning for defect prediction", FSE 2017): the single metric
  and direction with the best ROC AUC on the training rows, then applied as a ranker.
- Blend: the class-balanced logistic regression (given C) and a ranker column, mixed with `weight` on the
  ranker: either their standardised scores (the logit and the column, each by the training rows' mean and SD;
  with log1p(la) this is still a linear model in the log1p metrics, la's coefficient raised), or their mid-rank
  percentiles among the training rows (servable from two stored sorted arrays). Weight and C are chosen together
  on the folds before the test period; weight 0 is the logistic regression itself.

Every estimator here takes the log1p metrics plus one last column (the ranker's score) as its inputs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score

from app.contract import FEATURES
from bench.machine import publish, table
from training import choice, evaluate
from training.model import LOGISTIC_C

WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5)  # on the ranker; 0 = the logistic regression alone
Logistic = Callable[[float], Any]  # C → class-balanced logistic regression pipeline (scaler, "clf")


def _standardised(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (x - reference.mean()) / max(float(reference.std()), 1e-12)


def _percentile(x: np.ndarray, sorted_reference: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each of `x` among the reference values (ties count half)."""
    low = np.searchsorted(sorted_reference, x, side="left")
    high = np.searchsorted(sorted_reference, x, side="right")
    return (low + high) / 2 / len(sorted_reference)


def _as_proba(score: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - score, score])


class Ranker(ClassifierMixin, BaseEstimator):
    """The last input column as the risk score, larger first (`sign` −1: smaller first); no training."""

    def __init__(self, sign: float = 1.0) -> None:
        self.sign = sign

    def fit(self, X: np.ndarray, y: np.ndarray) -> Ranker:
        """Reads the classes and the column's scale only (the labels never touch the score)."""
        self.classes_ = np.unique(y)
        self.reference_ = X[:, -1].copy()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """expit of the standardised column: monotone, so the ranking is the column's."""
        return _as_proba(expit(self.sign * _standardised(X[:, -1], self.reference_)))


class OneWay(ClassifierMixin, BaseEstimator):
    """The one metric (of the first 15 columns) and direction that rank the training rows best, as a ranker."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> OneWay:
        """Pick the metric and direction by training ROC AUC."""
        self.classes_ = np.unique(y)
        aucs = np.array([roc_auc_score(y, X[:, j]) for j in range(len(FEATURES))])
        self.column_ = int(np.argmax(np.abs(aucs - 0.5)))
        self.sign_ = 1.0 if aucs[self.column_] >= 0.5 else -1.0
        self.reference_ = X[:, self.column_].copy()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """expit of the chosen metric, standardised and signed."""
        return _as_proba(expit(self.sign_ * _standardised(X[:, self.column_], self.reference_)))


@dataclass(frozen=True)
class Setting:
    """One point of a blend's grid: the logistic regression's C and the ranker's weight."""

    C: float
    weight: float

    def __str__(self) -> str:
        return f"{self.C:g}, w {self.weight:g}"


class Blend(ClassifierMixin, BaseEstimator):
    """(1 − weight) · logistic regression + weight · ranker, on standardised scores or training percentiles."""

    def __init__(self, C: float = 1.0, weight: float = 0.0, ranks: bool = False, logistic: Logistic | None = None):
        self.C = C
        self.weight = weight
        self.ranks = ranks
        self.logistic = logistic

    def fit(self, X: np.ndarray, y: np.ndarray) -> Blend:
        """The logistic regression on the 15 log1p metrics; the training rows' scores kept as the reference."""
        assert self.logistic is not None
        self.model_ = self.logistic(self.C).fit(X[:, :-1], y)
        self.classes_ = self.model_.classes_
        self.logits_ = np.sort(self.model_.decision_function(X[:, :-1]))
        self.column_ = np.sort(X[:, -1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The blended score (percentiles stay in [0, 1]; standardised scores through expit)."""
        logit = self.model_.decision_function(X[:, :-1])
        if self.ranks:
            parts = _percentile(logit, self.logits_), _percentile(X[:, -1], self.column_)
        else:
            parts = _standardised(logit, self.logits_), _standardised(X[:, -1], self.column_)
        score = (1 - self.weight) * parts[0] + self.weight * parts[1]
        return _as_proba(score if self.ranks else expit(score))


class Factory:
    """An estimator factory with its own grid, which `bench/inputs.py` searches instead of the C grid."""

    def __init__(self, make: Callable[[Any], Any], grid: Sequence[Any]) -> None:
        self.make = make
        self.grid = tuple(grid)

    def __call__(self, setting: Any) -> Any:
        return self.make(setting)


def unsupervised_variants(
    logs: np.ndarray, logistic: Logistic, c_grid: Sequence[float]
) -> dict[str, tuple[np.ndarray, Callable[[Any], Any]]]:
    """name → (inputs: `logs` plus the ranker's column, factory with its grid); `logs` = log1p of the 15 metrics."""
    at = {name: i for i, name in enumerate(FEATURES)}
    # log1p(la + ld) from the logs: the sum of the raw counts, logged again (monotone in the churn).
    churn = np.log1p(np.expm1(logs[:, at["la"]]) + np.expm1(logs[:, at["ld"]]))
    columns = {
        "la (lines added)": logs[:, at["la"]],
        "la + ld (churn)": churn,
        "lt (lines of the touched files before)": logs[:, at["lt"]],
        "nf (files)": logs[:, at["nf"]],
        "entropy": logs[:, at["entropy"]],
    }
    untrained = Factory(lambda _s: Ranker(), (1.0,))
    out: dict[str, tuple[np.ndarray, Callable[[Any], Any]]] = {
        f"unsupervised: {name}": (np.column_stack([logs, column]), untrained) for name, column in columns.items()
    }
    out["unsupervised: OneWay, the best metric and direction on the training rows"] = (
        logs,
        Factory(lambda _s: OneWay(), (1.0,)),
    )
    settings = [Setting(C, w) for C in c_grid for w in WEIGHTS]
    for ranks, how in ((False, "standardised scores"), (True, "training percentiles")):
        for name in ("la (lines added)", "la + ld (churn)"):
            out[f"blend: logistic regression + {name.split(' (')[0]}, {how}"] = (
                np.column_stack([logs, columns[name]]),
                Factory(lambda s, r=ranks: Blend(s.C, s.weight, r, logistic), settings),
            )
    return out


def details() -> str:
    """Per-fold ROC AUC of rankers and blends, every blend setting against the simplest, effort-aware means."""
    # Each variant at the setting chosen on the folds before the test period, as in `bench/inputs.py`.
    # Imported here: bench.inputs imports this module through bench.variants.
    from bench.inputs import fold_aucs, fold_probabilities, protocol_folds
    from bench.variants import variants

    mature, choice_folds, all_folds, at = protocol_folds()
    every = variants(mature)
    names = [next(iter(every))] + [n for n in every if n.startswith(("unsupervised", "blend"))]
    y, effort = all_folds.frame["buggy"].to_numpy(), all_folds.frame["effort"].to_numpy()
    needed = int(np.ceil(2 / 3 * len(choice_folds.folds)))
    per_fold: dict[str, np.ndarray] = {}
    grid_rows: list[list[object]] = []
    effort_rows: list[list[object]] = []
    incumbent: choice.Arm | None = None
    for name in names:
        inputs, make = every[name]
        grid = getattr(make, "grid", LOGISTIC_C)  # the simplest: the C grid, as in `bench/inputs.py`
        tried = {s: fold_probabilities(inputs, make, s, choice_folds, at[id(choice_folds)]) for s in grid}
        arms = {s: choice.Arm("logistic_regression", "raw", {}, p, fold_aucs(choice_folds, p), 0.0)
                for s, p in tried.items()}  # fmt: skip
        best = max(grid, key=lambda s: arms[s].aucs.mean())
        if incumbent is None:
            incumbent = arms[best]
        elif name.startswith("blend"):
            for s in grid:
                wins, gain, se = choice.compare(arms[s], incumbent, choice_folds)
                verdict = "wins" if wins >= needed and gain > se else "loses"
                grid_rows.append([name, str(s) + (" (chosen)" if s == best else ""), f"{arms[s].aucs.mean():.4f}",
                                  f"{verdict}: {wins}/{len(choice_folds.folds)}, {gain:+.4f} ({se:.4f})"])  # fmt: skip
        evidence = fold_probabilities(inputs, make, best, all_folds, at[id(all_folds)])
        per_fold[name] = fold_aucs(all_folds, evidence)
        if name.startswith(("unsupervised", "log1p")):
            for sign in (1, -1) if name.startswith("unsupervised") and "OneWay" not in name else (1,):
                figures = {k: [] for k in ("r20_forward", "r20_leave_one_out", "popt_forward", "popt_leave_one_out")}
                for fold, p in zip(all_folds.folds, evidence, strict=True):
                    q = p if sign == 1 else 1 - p
                    rows = fold.test
                    figures[f"r20_{fold.protocol}"].append(evaluate.recall_at_effort(y[rows], q, effort[rows]))
                    figures[f"popt_{fold.protocol}"].append(evaluate.popt(y[rows], q, effort[rows]))
                shown = name if sign == 1 else f"1/x of {name}"
                effort_rows.append(
                    [shown, *(f"{np.mean([v for v in f if v is not None]):.3f}" for f in figures.values())]
                )
    header = ["repository", "protocol", *names]
    auc_rows = [
        [f.repository, f.protocol, *(f"{per_fold[n][i]:.3f}" for n in names)] for i, f in enumerate(all_folds.folds)
    ]
    return "\n\n".join([
        "ROC AUC per fold on all mature rows (each variant at the setting chosen on the folds before the test period):",
        table(header, auc_rows),
        f"Each blend setting against the simplest on the {len(choice_folds.folds)} folds before the test period "
        "(rule: ≥ 2/3 of the folds, gain > 1 SE; folds won, mean gain, its SE):",
        table(["blend", "C, weight on the ranker", "folds before the test period", "against the simplest"], grid_rows),
        "Effort-aware means on all mature rows (effort = la + ld, inspection order score / effort as for every model "
        "here; 1/x = the reverse ranking, Yang et al.'s form):",
        table(["ranking", "Recall@20%Effort forward", "Recall@20%Effort leave one out", "Popt forward",
               "Popt leave one out"], effort_rows),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    publish("Unsupervised rankers and blends in detail (`bench/unsupervised.py`)", details(), args.no_append)


if __name__ == "__main__":
    main()
