"""Relevancy filters and weights: training rows chosen by the target's unlabelled metrics, never by its labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import relevancy
from bench.inputs import fold_probabilities
from bench.relevancy import RELEVANCE, OwnScaled, Relevant
from bench.variants import _logistic
from training import data, protocol


@pytest.fixture(scope="module")
def shared(shared_commits_dir: Path) -> pd.DataFrame:
    """The shared commits, time-ordered."""
    frame = data.load([shared_commits_dir]).frame
    return frame.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)


def _inputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The log1p metrics and the relevancy variants' inputs (the same plus the repository's code)."""
    logs = np.log1p(data.features(frame).astype(np.float64))
    return logs, next(iter(relevancy.relevancy_variants(frame, logs, _logistic).values()))[0]


def _column(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def test_burak_keeps_the_union_of_each_target_rows_nearest() -> None:
    train, codes = _column(0, 1, 2, 5, 8, 9), np.zeros(6)
    assert relevancy.burak(2)(train, codes, _column(0.1, 8.9)).tolist() == [1, 1, 0, 0, 1, 1]
    assert relevancy.burak(2)(train, codes, _column(0.1, 0.2)).tolist() == [1, 1, 0, 0, 0, 0]
    counts = relevancy.burak_counts(2)(train, codes, _column(0.1, 0.2, 8.9))
    # Chosen 2, 2, 0, 0, 1, 1 times of 6: 1 + count × 6 / 6.
    assert counts.tolist() == [3, 3, 1, 1, 2, 2]


def test_peters_keeps_each_target_rows_nearest_fan() -> None:
    # 0, 1, 2 pick the target row 0.8 (1 is nearest it); 10 and 11 pick 10.2 (10 is nearest); 5 picks 0.8 too.
    train = _column(0, 1, 2, 5, 10, 11)
    assert relevancy.peters(train, np.zeros(6), _column(0.8, 10.2)).tolist() == [0, 1, 0, 0, 1, 0]


def test_transfer_naive_bayes_weighs_by_the_metrics_within_the_targets_range() -> None:
    train = np.array([[1.0, 1.0], [1.0, 5.0], [5.0, 5.0]])
    target = np.array([[0.0, 0.0], [2.0, 2.0]])
    # s of m = 2 within [0, 2]: 2 → 2 / 1², 1 → 1 / 2², 0 → 0.
    assert relevancy.transfer_naive_bayes(train, np.zeros(3), target).tolist() == [2.0, 0.25, 0.0]


def test_nearest_repositories_compare_mean_and_spread() -> None:
    train = _column(0, 2, 0, 20, 9, 11)
    codes = np.array([0, 0, 1, 1, 2, 2])  # means 1, 10, 10; SDs 1, 10, 1
    assert relevancy.nearest_repositories(1)(train, codes, _column(9, 11)).tolist() == [0, 0, 0, 0, 1, 1]
    assert relevancy.nearest_repositories(2)(train, codes, _column(0, 2)).tolist() == [1, 1, 0, 0, 1, 1]


def test_covariate_shift_weights_rows_like_the_targets_up() -> None:
    train = _column(*np.linspace(0, 10, 50))
    w = relevancy.covariate_shift(train, np.zeros(50), _column(*np.linspace(8, 10, 20)))
    assert np.all(np.diff(w) >= 0) and w[-1] > w[0]
    assert w.max() <= relevancy.ODDS_CLIP * np.median(w) + 1e-12


def test_equal_relevance_is_the_plain_class_balanced_model(shared: pd.DataFrame) -> None:
    logs, inputs = _inputs(shared)
    y = shared["buggy"].to_numpy()
    train, test = np.arange(3000), np.arange(3000, len(shared))
    every = Relevant(_logistic(0.01).set_params(clf__class_weight=None), lambda t, c, s: np.ones(len(t)))
    plain = _logistic(0.01).fit(logs[train], y[train])
    found = every.fit(inputs[train], y[train]).predict_proba(inputs[test])
    assert np.allclose(found, plain.predict_proba(logs[test]), atol=1e-4)


def test_no_label_of_a_test_row_is_read(shared: pd.DataFrame) -> None:
    logs, inputs = _inputs(shared)
    owner = shared["repository"].astype(str).to_numpy()
    left_out = owner == owner[-1]
    fold = protocol.Fold("leave_one_out", owner[-1], np.flatnonzero(~left_out), np.flatnonzero(left_out))
    flipped = shared.assign(buggy=np.where(left_out, 1 - shared["buggy"], shared["buggy"]))
    made = relevancy.relevancy_variants(flipped, logs, _logistic)
    assert all(np.array_equal(flipped_inputs, inputs) for flipped_inputs, _ in made.values())
    for name, (_, make) in made.items():
        found = [
            fold_probabilities(inputs, make, 0.01, protocol.Folds(frame, [fold]), np.arange(len(shared)))[0]
            for frame in (shared, flipped)
        ]
        assert np.array_equal(*found), name


def test_the_target_sample_is_the_test_rows_or_strictly_the_earlier_commits(shared: pd.DataFrame) -> None:
    logs, inputs = _inputs(shared)
    y = shared["buggy"].to_numpy()
    owner = shared["repository"].astype(str).to_numpy()
    test = np.flatnonzero(owner == owner[-1])[-200:]
    train = np.arange(test[0])
    made = {strict: Relevant(_logistic(0.01), relevancy.burak(10), strict) for strict in (False, True)}
    for strict, model in made.items():
        model.fit(inputs[train], y[train])
        all_rows, half = model.predict_proba(inputs[test]), model.predict_proba(inputs[test[:100]])
        # Transductive: the test rows choose the training rows; strict: the repository's earlier commits do.
        assert np.allclose(all_rows[:100], half) == strict
        # Each earlier commit is its own nearest training row (bar exact duplicates of its metrics).
        earlier = inputs[train][:, -1] == inputs[test[0], -1]
        assert not strict or model.used_[earlier].mean() > 0.9
    others = owner[train] != owner[-1]
    alone = made[True].fit(inputs[train][others], y[train][others]).predict_proba(inputs[test])
    plain = _logistic(0.01).fit(logs[train][others], y[train][others]).predict_proba(logs[test])
    assert made[True].used_.all() and np.allclose(alone, plain, atol=1e-4)


def test_own_scaling_ignores_where_the_target_repository_sits(shared: pd.DataFrame) -> None:
    logs, inputs = _inputs(shared)
    y = shared["buggy"].to_numpy()
    owner = shared["repository"].astype(str).to_numpy()
    train, test = np.flatnonzero(owner != owner[-1]), np.flatnonzero(owner == owner[-1])
    shifted = inputs[test].copy()
    shifted[:, :-1] += 1.0  # every metric of the left-out repository 2.7 times larger (log1p scale)
    own = OwnScaled(_logistic(0.01)).fit(inputs[train], y[train])
    assert np.allclose(own.predict_proba(inputs[test]), own.predict_proba(shifted))
    strict = OwnScaled(_logistic(0.01), strict=True).fit(inputs[train], y[train])
    assert not np.allclose(strict.predict_proba(inputs[test]), strict.predict_proba(shifted))
    # Strict, a repository without training rows is scaled by the mean and SD of all training rows.
    mean, sd = logs[train].mean(axis=0), np.maximum(logs[train].std(axis=0), relevancy.SD_FLOOR)
    by_pooled = strict.model_.predict_proba((logs[test] - mean) / sd)
    assert np.allclose(strict.predict_proba(inputs[test]), by_pooled)


def test_effective_tables_every_variant(shared_commits_dir: Path) -> None:
    text = relevancy.effective()
    for name in RELEVANCE:
        assert f"| {name} |" in text
    assert "| every training row equally (the simplest) | 100% |" in text
