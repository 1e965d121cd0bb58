"""The evaluation protocol: per repository forward in time, and leave one repository out, scored per fold.

Most commits the service scores come from repositories the model never saw, and each repository is judged on
its own ranking, so one pooled period says little about either. Forward: a repository's newest mature commits
(`test_fraction` of them) are its test, every older commit of any repository trains. Leave one repository out:
the other repositories train, all the held-out one's mature commits test — a new repository calling the
service. A fold too small to score is reported with its reason, never dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from app.contract import FoldScore, Protocol, ProtocolReport, ProtocolSummary
from app.monitoring import performance
from app.monitoring.performance import average_ranks
from training import data, evaluate, model
from training.config import ModelFamily

PROTOCOLS: tuple[Protocol, ...] = ("forward", "leave_one_out")
SINGLE_REPOSITORY = "one repository only: leave-one-repository-out needs at least two, so it was skipped"
# The reference every fold reports beside the model: what a careful user would try first.
BASELINE: tuple[ModelFamily, dict[str, model.ParamValue]] = (
    "logistic_regression",
    {model.FEATURES_PARAM: "raw", "clf__C": 1.0},
)
BASELINE_TEXT = "plain logistic regression on log1p metrics, class-balanced, C = 1, no search"
Job = tuple[ModelFamily, dict[str, model.ParamValue]]


@dataclass(frozen=True)
class Fold:
    """Row positions (into `Folds.frame`) of one repository's training and test rows."""

    protocol: Protocol
    repository: str
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Folds:
    """The folds of one frame (time-ordered), the folds skipped with their reasons, and notes per protocol."""

    frame: pd.DataFrame
    folds: list[Fold]
    skipped: list[FoldScore] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


def build(
    frame: pd.DataFrame,
    test_fraction: float,
    min_test_rows: int,
    max_rows: int,
    seed: int = 0,
    known: Sequence[str] = (),
) -> Folds:
    """Forward and leave-one-out folds of every repository in `frame` (mature rows only).

    A fold's training rows are its newest `max_rows`; its test rows a seeded sample of at most `max_rows`.
    `known` repositories without a mature row are reported as skipped folds.
    """
    ordered = frame.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    repositories = sorted(set(ordered["repository"].astype(str)) | set(known))
    dates, owner = ordered["author_date"].to_numpy(), ordered["repository"].astype(str).to_numpy()
    buggy = ordered["buggy"].to_numpy()
    folds: list[Fold] = []
    skipped: list[FoldScore] = []
    rng = np.random.default_rng(seed)
    for protocol in PROTOCOLS:
        if protocol == "leave_one_out" and len(repositories) < 2:
            continue
        for repository in repositories:
            own = np.flatnonzero(owner == repository)
            if len(own) == 0:
                none = np.zeros(0, dtype=np.int64)
                skipped.append(_skip(protocol, repository, none, none, buggy, "no mature commits (all are newer "
                                     "than the label delay)"))  # fmt: skip
                continue
            if protocol == "forward":
                start = dates[own[_boundary(len(own), test_fraction)]]
                test, train = own[dates[own] >= start], np.flatnonzero(dates < start)
            else:
                test, train = own, np.flatnonzero(owner != repository)
            reason = _unusable(buggy[train], buggy[test], min_test_rows)
            if reason is not None:
                skipped.append(_skip(protocol, repository, train, test, buggy, reason))
                continue
            if len(test) > max_rows:
                test = np.sort(rng.choice(test, max_rows, replace=False))
            folds.append(Fold(protocol, repository, train[-max_rows:], test))
    notes = {"leave_one_out": SINGLE_REPOSITORY} if len(repositories) < 2 else {}
    return Folds(ordered, folds, skipped, notes)


def _boundary(rows: int, fraction: float) -> int:
    """Position of the first test row: the newest `fraction` of `rows`, at least one row on each side."""
    return max(1, min(rows - 1, round(rows * (1 - fraction)))) if rows > 1 else 0


def _unusable(y_train: np.ndarray, y_test: np.ndarray, min_test_rows: int) -> str | None:
    """Why a fold cannot be scored, or None."""
    if len(y_test) < min_test_rows:
        return f"only {len(y_test)} mature commits to test (needs {min_test_rows})"
    if len(np.unique(y_test)) < 2:
        return "its test commits hold one class only, so ROC AUC is undefined"
    if len(y_train) == 0 or len(np.unique(y_train)) < 2:
        return "no training commits of both classes"
    return None


def _skip(
    protocol: Protocol, repository: str, train: np.ndarray, test: np.ndarray, buggy: np.ndarray, reason: str
) -> FoldScore:
    return FoldScore(protocol=protocol, repository=repository, train_rows=len(train), test_rows=len(test),
                     buggy=int(buggy[test].sum()), skipped=reason)  # fmt: skip


def probabilities(jobs: Sequence[Job], folds: Folds, seed: int, n_jobs: int) -> list[list[np.ndarray]]:
    """[job][fold] test probabilities of each (family, params) fitted on each fold's training rows."""
    return [[p for p, _ in found] for found in timed_probabilities(jobs, folds, seed, n_jobs)]


def timed_probabilities(
    jobs: Sequence[Job], folds: Folds, seed: int, n_jobs: int
) -> list[list[tuple[np.ndarray, float]]]:
    """[job][fold] (test probabilities, fit seconds); the fits run in parallel (`n_jobs`, joblib).

    Row weights (a `weight` column) follow their rows.
    """
    from joblib import Parallel, delayed

    X, y = data.features(folds.frame), folds.frame["buggy"].to_numpy()
    weights = data.row_weights(folds.frame)
    tasks = [(job, fold) for job in jobs for fold in folds.folds]
    found = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict)(family, params, X[f.train], y[f.train],
                              None if weights is None else weights[f.train], X[f.test], seed)
        for (family, params), f in tasks
    )  # fmt: skip
    width = len(folds.folds)
    return [list(found[i * width : (i + 1) * width]) for i in range(len(jobs))]


def _fit_predict(
    family: ModelFamily,
    params: dict[str, model.ParamValue],
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    X_test: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the workers
        candidate = model.fixed(family, params, X, y, seed=seed, sample_weight=weights)
    return model.predict(candidate.estimator, X_test), candidate.fit_seconds


def delong(y: np.ndarray, scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUCs [k] of k score vectors on the same rows and their DeLong covariance matrix [k, k].

    Midrank formulation (Sun & Xu 2014) on `app.monitoring.performance.average_ranks`: ties count one half,
    as in `roc_auc_score`. The covariance is NaN when a class has a single row (no spread to estimate).
    """
    y = np.asarray(y)
    positive, negative = y == 1, y == 0
    m, n = int(positive.sum()), int(negative.sum())
    if m < 1 or n < 1 or m + n != y.size:
        raise ValueError(f"need 0/1 labels with both classes, got {m} buggy and {n} clean of {y.size} rows")
    v10, v01 = [], []
    for score in scores:
        s = np.asarray(score, dtype=np.float64)
        if s.shape != y.shape:
            raise ValueError(f"scores of shape {s.shape} do not match labels of shape {y.shape}")
        pos, neg = s[positive], s[negative]
        ranks = average_ranks(np.concatenate([pos, neg]))
        # Structural components: the share of the other class each row outranks.
        v10.append((ranks[:m] - average_ranks(pos)) / n)
        v01.append(1.0 - (ranks[m:] - average_ranks(neg)) / m)
    a10, a01 = np.array(v10), np.array(v01)
    # The AUCs themselves come from the one implementation; they equal the means of the components.
    aucs = np.array([performance.roc_auc(y, score) for score in scores], dtype=np.float64)
    k = len(aucs)
    if m < 2 or n < 2:
        return aucs, np.full((k, k), np.nan)
    covariance = np.cov(a10).reshape(k, k) / m + np.cov(a01).reshape(k, k) / n
    return aucs, covariance


def difference_variance(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """DeLong variance of ROC AUC(a) − ROC AUC(b) on the same rows (inf when it cannot be measured)."""
    _, cov = delong(y, [a, b])
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return max(variance, 0.0) if np.isfinite(variance) else float("inf")


def score(fold: Fold, folds: Folds, p: np.ndarray, baseline: np.ndarray | None = None) -> FoldScore:
    """One fold's figures (and the baseline's ROC AUC with the paired SE of the difference)."""
    test = folds.frame.iloc[fold.test]
    y, effort = test["buggy"].to_numpy(), test["effort"].to_numpy()
    base_auc = se = None
    if baseline is not None:
        base_auc = evaluate.roc_auc(y, baseline)
        se = float(np.sqrt(difference_variance(y, p, baseline)))
    return FoldScore(
        protocol=fold.protocol, repository=fold.repository, train_rows=len(fold.train), test_rows=len(fold.test),
        buggy=int(y.sum()), roc_auc=evaluate.roc_auc(y, p), pr_auc=evaluate.average_precision(y, p),
        recall_at_20_effort=evaluate.recall_at_effort(y, p, effort), popt=evaluate.popt(y, p, effort),
        baseline_roc_auc=base_auc, difference_se=se if se is not None and np.isfinite(se) else None,
    )  # fmt: skip


def summarise(protocol: Protocol, scores: Sequence[FoldScore], folds: Folds) -> ProtocolSummary:
    """The scored and skipped folds of one protocol (by repository) and the means over the scored ones."""
    rows = sorted([*scores, *folds.skipped], key=lambda s: s.repository)
    rows = [s for s in rows if s.protocol == protocol]
    scored = [s for s in rows if s.skipped is None]

    def mean(values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return float(np.mean(present)) if present and len(present) == len(values) else None

    return ProtocolSummary(
        protocol=protocol,
        folds=rows,
        mean_roc_auc=mean([s.roc_auc for s in scored]) if scored else None,
        mean_recall_at_20_effort=mean([s.recall_at_20_effort for s in scored]) if scored else None,
        mean_popt=mean([s.popt for s in scored]) if scored else None,
        baseline_mean_roc_auc=mean([s.baseline_roc_auc for s in scored]) if scored else None,
        note=folds.notes.get(protocol) or (None if scored else "no repository had enough mature commits to score"),
    )


def report(
    folds: Folds,
    job: Job,
    *,
    seed: int,
    n_jobs: int,
    test_fraction: float,
    label_delay_days: float,
    choice: str,
    choice_data_end: datetime | None,
) -> ProtocolReport:
    """The recipe `job` and the baseline, each fitted on every fold of `folds`, scored side by side."""
    chosen, baseline = probabilities([job, BASELINE], folds, seed, n_jobs) if folds.folds else ([], [])
    scores = [score(f, folds, p, b) for f, p, b in zip(folds.folds, chosen, baseline, strict=True)]
    return ProtocolReport(
        test_fraction=test_fraction, label_delay_days=label_delay_days, baseline=BASELINE_TEXT,
        forward=summarise("forward", scores, folds), leave_one_out=summarise("leave_one_out", scores, folds),
        choice=choice, choice_data_end=choice_data_end,
    )  # fmt: skip
