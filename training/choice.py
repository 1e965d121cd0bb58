"""Choosing the published candidate on validation data: best ROC AUC, optionally the ensemble within noise.

The validation period is small (on the pooled shared data ≈ 750 commits, 98 buggy), so the candidate with the
best validation ROC AUC often wins by less than the noise of that comparison. With `ensemble_margin_se` = k > 0
the ensemble is chosen unless the best candidate beats it by more than k standard errors of the *paired*
difference of the two ROC AUCs on the same validation rows (DeLong et al. 1988): the one-standard-error rule
(Breiman et al. 1984) with the model average, rather than the simplest model, as the fallback; k = 0 is the
plain maximum. The default k = 1 won a nine-origin rolling backtest on periods before the test period
(`bench/choice.py`) together with the relative churn inputs. The test period is never consulted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.contract import CandidateScore
from app.monitoring import performance
from app.monitoring.performance import average_ranks
from training import data, evaluate, model

ENSEMBLE = "ensemble"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Choice:
    """The chosen candidate's index and name, and why it was chosen (one line)."""

    index: int
    name: str
    reason: str


@dataclass(frozen=True)
class Scored:
    """Fitted candidates in the configured order, their raw validation probabilities and their scores."""

    candidates: list[model.Candidate]
    validation: list[np.ndarray]
    scores: list[CandidateScore]


@dataclass(frozen=True)
class Chosen:
    """The candidate to publish, its raw validation probabilities and why it was chosen."""

    candidate: model.Candidate
    validation: np.ndarray
    reason: str


def score(candidates: Sequence[model.Candidate], validation: pd.DataFrame, progress: Progress) -> Scored:
    """Each candidate's raw probabilities on the validation period and its score (validation/cv ROC AUC, fit time)."""
    X_val, y_val, effort = data.features(validation), validation["buggy"].to_numpy(), validation["effort"].to_numpy()
    probabilities = [model.predict(c.estimator, X_val) for c in candidates]
    scores: list[CandidateScore] = []
    for candidate, p in zip(candidates, probabilities, strict=True):
        val_auc = evaluate.evaluate(y_val, p, effort, 0.5).roc_auc
        scores.append(
            CandidateScore(
                name=candidate.family,
                validation_roc_auc=float(val_auc or 0.0),
                cv_roc_auc=candidate.cv_roc_auc,
                params=candidate.params,
                fit_seconds=round(candidate.fit_seconds, 3),
            )
        )
        cv = "-" if candidate.cv_roc_auc is None else f"{candidate.cv_roc_auc:.3f}"
        progress(f"{candidate.family}: cv ROC AUC {cv}, validation ROC AUC {val_auc:.3f}")
    return Scored(candidates=list(candidates), validation=probabilities, scores=scores)


def pick(scored: Scored, validation: pd.DataFrame, ensemble_margin_se: float, progress: Progress) -> Chosen:
    """The scored candidate `choose` picks on the validation period (the test period is never consulted)."""
    names = [c.family for c in scored.candidates]
    picked = choose(names, validation["buggy"].to_numpy(), scored.validation, ensemble_margin_se)
    progress(picked.reason)
    return Chosen(scored.candidates[picked.index], scored.validation[picked.index], picked.reason)


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


def choose(names: Sequence[str], y_val: np.ndarray, p_val: Sequence[np.ndarray], ensemble_margin_se: float) -> Choice:
    """The candidate with the best validation ROC AUC, unless the ensemble is within `ensemble_margin_se` SEs."""
    if not names or len(names) != len(p_val):
        raise ValueError("need one validation probability vector per candidate name")
    if ensemble_margin_se < 0:
        raise ValueError(f"ensemble_margin_se must be >= 0, got {ensemble_margin_se}")
    aucs, covariance = delong(y_val, p_val)
    # First of equals wins, as with max(): candidates come in the configured order.
    best = int(np.argmax(aucs))
    best_text = f"{names[best]} has the best validation ROC AUC ({aucs[best]:.4f})"
    if ENSEMBLE not in names or names[best] == ENSEMBLE:
        return Choice(best, names[best], best_text)
    e = list(names).index(ENSEMBLE)
    gap = float(aucs[best] - aucs[e])
    variance = covariance[best, best] + covariance[e, e] - 2 * covariance[best, e]
    # A single row of a class leaves the noise unmeasured: nothing shows the best really beats the ensemble.
    se = float(np.sqrt(max(variance, 0.0))) if np.isfinite(variance) else float("inf")
    versus = f"the ensemble's {aucs[e]:.4f} is {gap:.4f} lower (paired DeLong SE {se:.4f})"
    if ensemble_margin_se > 0 and gap <= ensemble_margin_se * se:
        return Choice(
            e, ENSEMBLE, f"ensemble chosen: within {ensemble_margin_se:g} SE of the best, {best_text}; {versus}"
        )
    return Choice(best, names[best], f"{best_text}; {versus}")
