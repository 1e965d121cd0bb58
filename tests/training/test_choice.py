"""Choosing on protocol folds: the simplest candidate unless a more complex one clearly wins, never the test period."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training import choice, data, protocol
from training.choice import Arm
from training.config import TrainConfig
from training.protocol import Fold, Folds


def _folds(count: int, rows: int = 300, seed: int = 0) -> Folds:
    """`count` disjoint test folds over one labelled frame (no training rows needed by the rule)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"buggy": (rng.random(count * rows) < 0.25).astype(np.int64)})
    folds = [Fold("forward", f"r{i}", np.zeros(0, dtype=np.int64), np.arange(i * rows, (i + 1) * rows))
             for i in range(count)]  # fmt: skip
    return Folds(frame, folds)


def _arm(folds: Folds, family: str, noise: list[float], seed: int) -> Arm:
    """An arm whose probabilities on fold i carry the labels plus `noise[i]` of Gaussian noise (less = better)."""
    rng = np.random.default_rng(seed)
    y = folds.frame["buggy"].to_numpy()
    scores = [y[f.test] + rng.normal(0, s, len(f.test)) for f, s in zip(folds.folds, noise, strict=True)]
    probabilities = [1 / (1 + np.exp(-z)) for z in scores]
    aucs = np.array([roc_auc_score(y[f.test], p) for f, p in zip(folds.folds, probabilities, strict=True)])
    return Arm(family, "raw", {"features": "raw"}, probabilities, aucs, 1.0)  # type: ignore[arg-type]


def test_compare_counts_wins_and_takes_the_larger_noise() -> None:
    folds = _folds(6)
    simple = _arm(folds, "logistic_regression", [1.0] * 6, 1)
    better = _arm(folds, "random_forest", [0.6] * 6, 2)
    wins, gain, se = choice.compare(better, simple, folds)
    assert wins == int(np.sum(better.aucs > simple.aucs)) == 6
    assert gain == pytest.approx(float(np.mean(better.aucs - simple.aucs)))
    y = folds.frame["buggy"].to_numpy()
    variances = [protocol.difference_variance(y[f.test], a, b)
                 for f, a, b in zip(folds.folds, better.probabilities, simple.probabilities, strict=True)]  # fmt: skip
    within = np.sqrt(np.sum(variances)) / 6
    between = np.std(better.aucs - simple.aucs, ddof=1) / np.sqrt(6)
    assert se == pytest.approx(max(within, between))


def test_the_simpler_candidate_stays_unless_a_complex_one_clearly_wins() -> None:
    folds = _folds(6)
    simple = _arm(folds, "logistic_regression", [1.0] * 6, 1)
    clear = _arm(folds, "random_forest", [0.5] * 6, 2)
    kept, verdicts = choice.apply_rule([simple, clear], folds, majority=2 / 3, margin_se=1.0)
    assert kept is clear and verdicts[clear.label].startswith("replaced logistic_regression (raw): won 6/6 folds")
    assert verdicts[simple.label] == "simplest candidate"
    # Much better on two folds, worse on four: no clear majority.
    mixed = _arm(folds, "gradient_boosting", [0.2, 0.2, 2.0, 2.0, 2.0, 2.0], 3)
    kept, verdicts = choice.apply_rule([simple, mixed], folds, majority=2 / 3, margin_se=0.0)
    assert kept is simple and verdicts[mixed.label].startswith("kept logistic_regression (raw): won 2/6 folds")
    # A clear majority is not enough: the mean gain must also exceed `margin_se` standard errors.
    wins, gain, se = choice.compare(clear, simple, folds)
    assert wins == 6 and gain > se > 0
    kept, verdicts = choice.apply_rule([simple, clear], folds, majority=2 / 3, margin_se=gain / se + 0.01)
    assert kept is simple and verdicts[clear.label].startswith("kept logistic_regression (raw): won 6/6 folds")
    # Identical figures never replace the simpler model, even with no margin at all.
    twin = Arm("ensemble", "raw", {"features": "raw"}, simple.probabilities, simple.aucs, 1.0)
    kept, _ = choice.apply_rule([simple, twin], folds, majority=0.0, margin_se=0.0)
    assert kept is simple


def test_a_winner_becomes_what_later_candidates_must_beat() -> None:
    folds = _folds(4)
    simple = _arm(folds, "logistic_regression", [1.2] * 4, 1)
    middle = _arm(folds, "random_forest", [0.6] * 4, 2)
    late = _arm(folds, "gradient_boosting", [0.9] * 4, 3)  # beats `simple`, not `middle`
    kept, verdicts = choice.apply_rule([simple, middle, late], folds, majority=2 / 3, margin_se=1.0)
    assert kept is middle and verdicts[late.label].startswith("kept random_forest (raw)")


@pytest.fixture(scope="module")
def before_test(synthetic_commits_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    mature, _ = data.drop_immature(data.load([synthetic_commits_dir]).frame, 90)
    split = data.split_chronological(mature, 0.2, 0.2)
    return split.train, split.validation, sorted(mature["repository"].unique())


def test_choose_measures_every_candidate_on_folds_before_the_test_period(
    before_test: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    train, validation, repositories = before_test
    config = TrainConfig(families=("logistic_regression",), n_jobs=1)
    folds = choice.folds_of(config, train, validation, repositories)
    assert len(folds.folds) == 6  # forward and leave-one-out for three repositories
    assert folds.frame["author_date"].max() == validation["author_date"].max()  # nothing of the test period
    messages: list[str] = []
    chosen = choice.choose(config, folds, messages.append)
    assert [(c.name, c.params["features"]) for c in chosen.candidates] == [
        ("logistic_regression", "raw"), ("logistic_regression", "relative_churn")
    ]  # fmt: skip
    for c in chosen.candidates:
        assert c.cv_roc_auc is not None and 0.6 < c.cv_roc_auc < 0.95 and c.verdict
        assert c.forward_roc_auc is not None and c.leave_one_out_roc_auc is not None
        assert c.cv_roc_auc == pytest.approx((c.forward_roc_auc + c.leave_one_out_roc_auc) / 2, abs=1e-5)
    assert chosen.family == "logistic_regression" and chosen.params["clf__C"] in (0.001, 0.003, 0.01, 0.03, 0.1,
                                                                                 0.3, 1.0, 3.0)  # fmt: skip
    assert messages[0] == "fitting 16 candidate settings on 6 folds each" and messages[-1] == chosen.reason
    assert "chosen on 6 folds (forward, leave_one_out) before the test period" in chosen.reason


def test_the_ensemble_alone_still_tunes_its_members(
    before_test: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    train, validation, repositories = before_test
    config = TrainConfig(families=("ensemble",), features=("raw",), budget=1, n_jobs=1)
    folds = choice.folds_of(config, train, validation, repositories)
    chosen = choice.choose(config, folds, lambda _m: None)
    (only,) = chosen.candidates
    assert only.name == chosen.family == "ensemble" and only.verdict == "simplest candidate"
    members = {k.split("__")[0] for k in chosen.params if k != "features"}
    assert members == {"logistic_regression", "random_forest", "gradient_boosting"}


def test_without_a_usable_fold_the_split_validation_period_is_the_one_fold(
    before_test: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    train, validation, repositories = before_test
    config = TrainConfig(families=("logistic_regression",), features=("raw",), min_fold_rows=100_000, n_jobs=1)
    folds = choice.folds_of(config, train, validation, repositories)
    (fold,) = folds.folds
    assert fold.repository == choice.POOLED_VALIDATION and len(folds.skipped) == 6
    assert len(fold.train) == len(train) and len(fold.test) == len(validation)
    chosen = choice.choose(config, folds, lambda _m: None)
    assert choice.POOLED_VALIDATION in chosen.reason


def test_given_hyperparameters_skip_the_choice() -> None:
    config = TrainConfig(families=("random_forest",), fixed_params={"features": "raw", "n_estimators": 10})
    chosen = choice.given(config)
    assert (chosen.family, chosen.params) == ("random_forest", {"features": "raw", "n_estimators": 10})
    assert chosen.candidates[0].verdict == "given hyperparameters" and chosen.folds.folds == []
