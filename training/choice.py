"""Choosing the published recipe (family, inputs, hyperparameters) on protocol folds before the test period.

One validation period (≈ 750 commits on the shared data) cannot separate the candidates: the standard error of
its ROC AUC is ≈ 0.03, and the family it favoured transferred worst to unseen repositories. So every candidate
is fitted on each fold of the protocol (`training.protocol`: forward per repository and leave one repository
out) on the data *before* the test period. Within one family and input set the setting with the best mean
fold ROC AUC stands for it. The candidates are then taken in order of complexity — logistic regression, random
forest, gradient boosting, the ensemble of the three; the raw metrics before relative churn — and the simplest
is kept unless a more complex one wins on at least `majority` of the folds **and** its mean gain exceeds
`margin_se` standard errors (`compare`); a winner becomes the one the later candidates must beat. The
rolling-origin backtest `bench/choice.py` shows what the rule buys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from app.contract import CandidateScore
from app.monitoring.performance import roc_auc
from training import model, protocol
from training.config import ALL_FAMILIES, FEATURE_SETS, MEMBER_FAMILIES, FeatureSet, ModelFamily, TrainConfig
from training.protocol import Fold, Folds

Progress = Callable[[str], None]
POOLED_VALIDATION = "pooled validation period"


@dataclass(frozen=True)
class Arm:
    """One candidate: a family on one input set with its best setting, and its test probabilities per fold."""

    family: ModelFamily
    features: FeatureSet
    params: dict[str, model.ParamValue]
    probabilities: list[np.ndarray]
    aucs: np.ndarray
    fit_seconds: float

    @property
    def label(self) -> str:
        """e.g. `random_forest (relative_churn)`."""
        return f"{self.family} ({self.features})"


@dataclass(frozen=True)
class Chosen:
    """The recipe to publish, why, every candidate's figures and the folds they were measured on."""

    family: ModelFamily
    params: dict[str, model.ParamValue]
    reason: str
    candidates: list[CandidateScore]
    folds: Folds
    arms: list[Arm] = field(default_factory=list)  # every candidate with its fold probabilities, simplest first


def folds_of(config: TrainConfig, train: pd.DataFrame, validation: pd.DataFrame, known: Sequence[str]) -> Folds:
    """The protocol folds of the rows before the test period; the pooled validation period when none is usable."""
    before = pd.concat([train, validation], ignore_index=True)
    folds = protocol.build(before, config.test_fraction, config.min_fold_rows, config.max_search_rows, config.seed,
                           known)  # fmt: skip
    if folds.folds:
        return folds
    # Too little per repository (e.g. a small retraining window): one fold, the split's own validation period.
    positions = np.arange(len(before))
    fallback = Fold("forward", POOLED_VALIDATION, positions[: len(train)], positions[len(train) :])
    return Folds(folds.frame, [fallback], folds.skipped, folds.notes)


def choose(config: TrainConfig, folds: Folds, progress: Progress) -> Chosen:
    """Evaluate every candidate on `folds` and apply the complexity rule; the test period is never used."""
    arms = _members(config, folds, progress)
    for features in config.features:
        if "ensemble" in config.families:
            members = [arms[(m, features)] for m in MEMBER_FAMILIES]
            arms[("ensemble", features)] = _ensemble(members, features, folds)
    order = [arms[(f, s)] for f in ALL_FAMILIES if f in config.families for s in FEATURE_SETS if s in config.features]
    incumbent, verdicts = apply_rule(order, folds, config.majority, config.margin_se)
    kinds = {f.protocol for f in folds.folds}
    where = ", ".join(sorted(kinds)) if folds.folds[0].repository != POOLED_VALIDATION else POOLED_VALIDATION
    reason = (
        f"{incumbent.label} chosen on {len(folds.folds)} folds ({where}) before the test period: mean fold ROC AUC "
        f"{incumbent.aucs.mean():.4f}; a more complex candidate must win ≥ {config.majority:.0%} of the folds by "
        f"more than {config.margin_se:g} SE"
    )
    progress(reason)
    scores = [_score(arm, folds, verdicts[arm.label]) for arm in order]
    return Chosen(incumbent.family, incumbent.params, reason, scores, folds, order)


def apply_rule(order: Sequence[Arm], folds: Folds, majority: float, margin_se: float) -> tuple[Arm, dict[str, str]]:
    """The candidate kept (`order` runs simplest first) and a verdict per candidate label."""
    incumbent, verdicts = order[0], {order[0].label: "simplest candidate"}
    needed = int(np.ceil(majority * len(folds.folds) - 1e-9))
    for arm in order[1:]:
        wins, gain, se = compare(arm, incumbent, folds)
        figures = f"won {wins}/{len(folds.folds)} folds, mean gain {gain:+.4f} (SE {se:.4f})"
        if wins >= needed and gain > margin_se * se:
            verdicts[arm.label] = f"replaced {incumbent.label}: {figures}"
            incumbent = arm
        else:
            verdicts[arm.label] = f"kept {incumbent.label}: {figures} against it"
    return incumbent, verdicts


def given(config: TrainConfig) -> Chosen:
    """The configured family with given hyperparameters (retraining's refit level): no choice."""
    (family,) = config.families
    params = dict(config.fixed_params or {})
    score = CandidateScore(name=family, params=params, fit_seconds=0.0, verdict="given hyperparameters")
    folds = Folds(pd.DataFrame(), [])
    return Chosen(family, params, f"{family} with given hyperparameters (no choice)", [score], folds)


def _members(config: TrainConfig, folds: Folds, progress: Progress) -> dict[tuple[str, str], Arm]:
    """The best setting of every single family needed (for itself or the ensemble) on every input set."""
    needed = [f for f in MEMBER_FAMILIES if f in config.families or "ensemble" in config.families]
    jobs: list[protocol.Job] = []
    for family in needed:
        for features in config.features:
            for setting in model.settings(family, config.budget, config.seed):
                jobs.append((family, {model.FEATURES_PARAM: features, **setting}))
    progress(f"fitting {len(jobs)} candidate settings on {len(folds.folds)} folds each")
    fitted = protocol.timed_probabilities(jobs, folds, config.seed, config.n_jobs)
    best: dict[tuple[str, str], Arm] = {}
    for (family, params), found in zip(jobs, fitted, strict=True):
        probabilities = [p for p, _ in found]
        aucs = _aucs(folds, probabilities)
        inputs = cast(FeatureSet, params[model.FEATURES_PARAM])
        arm = Arm(family, inputs, params, probabilities, aucs, sum(s for _, s in found))
        key = (family, inputs)
        # The first of equal means wins: settings come in a fixed order.
        if key not in best or aucs.mean() > best[key].aucs.mean():
            best[key] = arm
    for arm in best.values():
        progress(f"{arm.label}: mean fold ROC AUC {arm.aucs.mean():.4f} ({_brief(arm.params)})")
    return best


def _ensemble(members: Sequence[Arm], features: FeatureSet, folds: Folds) -> Arm:
    """The soft vote of the members: the mean of their fold probabilities (no fit of its own)."""
    probabilities = [np.mean(ps, axis=0) for ps in zip(*(m.probabilities for m in members), strict=True)]
    params: dict[str, model.ParamValue] = {model.FEATURES_PARAM: features}
    for m in members:
        params.update((f"{m.family}__{k}", v) for k, v in m.params.items() if k != model.FEATURES_PARAM)
    aucs = _aucs(folds, probabilities)
    return Arm("ensemble", features, params, probabilities, aucs, sum(m.fit_seconds for m in members))


def _aucs(folds: Folds, probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """ROC AUC per fold (0.5 where undefined, which the fold rules exclude)."""
    y = folds.frame["buggy"].to_numpy()
    return np.array([roc_auc(y[f.test], p) or 0.5 for f, p in zip(folds.folds, probabilities, strict=True)])


def compare(challenger: Arm, incumbent: Arm, folds: Folds) -> tuple[int, float, float]:
    """(folds won, mean ROC AUC gain, its SE) of `challenger` over `incumbent` on the same folds."""
    y = folds.frame["buggy"].to_numpy()
    gains, variances = [], []
    for fold, a, b in zip(folds.folds, challenger.probabilities, incumbent.probabilities, strict=True):
        y_f = y[fold.test]
        gains.append((roc_auc(y_f, a) or 0.5) - (roc_auc(y_f, b) or 0.5))
        variances.append(protocol.difference_variance(y_f, a, b))
    gain = np.array(gains)
    # The noise is the larger of two: sampling noise inside the folds (DeLong, folds taken as independent) and
    # the spread of the gain between folds (repositories differ; a fold's forward and leave-one-out test rows
    # overlap, so the first alone would understate it).
    within = float(np.sqrt(np.sum(variances)) / len(gains))
    between = float(gain.std(ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else 0.0
    return int(np.sum(gain > 0)), float(gain.mean()), max(within, between)


def _score(arm: Arm, folds: Folds, verdict: str) -> CandidateScore:
    kinds = np.array([f.protocol for f in folds.folds])

    def mean_of(kind: str) -> float | None:
        chosen = arm.aucs[kinds == kind]
        return round(float(chosen.mean()), 6) if chosen.size else None

    return CandidateScore(
        name=arm.family, params=arm.params, fit_seconds=round(arm.fit_seconds, 3),
        cv_roc_auc=round(float(arm.aucs.mean()), 6), forward_roc_auc=mean_of("forward"),
        leave_one_out_roc_auc=mean_of("leave_one_out"), verdict=verdict,
    )  # fmt: skip


def _brief(params: dict[str, model.ParamValue]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if k != model.FEATURES_PARAM)
