"""The evaluation protocol: forward and leave-one-out folds per repository, skipped folds, DeLong, fold scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from app.contract import FEATURES
from app.monitoring import performance
from training import data, protocol
from training.protocol import delong


def _frame(sizes: dict[str, int], seed: int = 0, buggy_share: float = 0.3) -> pd.DataFrame:
    """Commits of several repositories interleaved in time (one per day each), signal in `la`."""
    rng = np.random.default_rng(seed)
    parts = []
    for offset, (name, rows) in enumerate(sizes.items()):
        y = (rng.random(rows) < buggy_share).astype(np.int64)
        dates = (np.arange(rows) * 86_400 + offset * 3_600).astype(np.int64)
        ids = [f"{name}-{i}" for i in range(rows)]
        part = pd.DataFrame({"commit_id": ids, "repository": name, "author_date": dates, "buggy": y})
        for feature in FEATURES:
            part[feature] = rng.integers(0, 20, rows).astype(np.float64)
        part["la"] = np.round(np.exp(rng.normal(2 + y, 1.0)))
        part["effort"] = part["la"] + part["ld"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sort_values("author_date", kind="stable").reset_index(drop=True)


def test_forward_folds_test_each_repositorys_newest_commits_on_everything_older() -> None:
    folds = protocol.build(_frame({"a": 200, "b": 100, "c": 150}), 0.2, 10, 10_000)
    forward = {f.repository: f for f in folds.folds if f.protocol == "forward"}
    assert sorted(forward) == ["a", "b", "c"] and not folds.skipped and not folds.notes
    frame = folds.frame
    for name, fold in forward.items():
        own = frame.index[frame["repository"] == name]
        test = frame.iloc[fold.test]
        assert set(test["repository"]) == {name} and len(test) == round(len(own) * 0.2)
        newest = frame.loc[own, "author_date"].nlargest(len(test))
        assert set(test["author_date"]) == set(newest)
        train = frame.iloc[fold.train]
        # Every repository's older commits train, and nothing from the test period or after it.
        assert train["author_date"].max() < test["author_date"].min()
        assert set(train["repository"]) == {"a", "b", "c"}


def test_leave_one_out_folds_train_on_the_other_repositories_only() -> None:
    folds = protocol.build(_frame({"a": 200, "b": 100, "c": 150}), 0.2, 10, 10_000)
    held = {f.repository: f for f in folds.folds if f.protocol == "leave_one_out"}
    assert sorted(held) == ["a", "b", "c"]
    for name, fold in held.items():
        assert set(folds.frame.iloc[fold.test]["repository"]) == {name}
        assert len(fold.test) == int((folds.frame["repository"] == name).sum())
        assert name not in set(folds.frame.iloc[fold.train]["repository"])


def test_too_small_one_class_and_immature_repositories_are_reported_not_dropped() -> None:
    frame = _frame({"big": 300, "tiny": 40, "clean": 200})
    frame.loc[frame["repository"] == "clean", "buggy"] = 0
    folds = protocol.build(frame, 0.2, 30, 10_000, known=["big", "tiny", "clean", "fresh"])
    reasons = {(s.protocol, s.repository): s.skipped for s in folds.skipped}
    assert reasons[("forward", "tiny")] == "only 8 mature commits to test (needs 30)"
    assert "one class only" in str(reasons[("forward", "clean")])
    assert "one class only" in str(reasons[("leave_one_out", "clean")])
    assert reasons[("forward", "fresh")] == reasons[("leave_one_out", "fresh")]
    assert "no mature commits" in str(reasons[("forward", "fresh")])
    assert {(f.protocol, f.repository) for f in folds.folds} == {
        ("forward", "big"), ("leave_one_out", "big"), ("leave_one_out", "tiny")
    }  # fmt: skip
    tiny = next(s for s in folds.skipped if s.repository == "tiny")
    assert (tiny.test_rows, tiny.roc_auc) == (8, None)


def test_a_single_repository_skips_leave_one_out_with_a_note() -> None:
    folds = protocol.build(_frame({"solo": 300}), 0.2, 10, 10_000)
    assert [f.protocol for f in folds.folds] == ["forward"]
    assert folds.notes == {"leave_one_out": protocol.SINGLE_REPOSITORY}
    summary = protocol.summarise("leave_one_out", [], folds)
    assert summary.folds == [] and summary.mean_roc_auc is None and summary.note == protocol.SINGLE_REPOSITORY


def test_folds_keep_the_newest_training_rows_and_sample_test_rows_beyond_the_cap() -> None:
    folds = protocol.build(_frame({"a": 400, "b": 300}), 0.2, 10, 120, seed=3)
    frame = folds.frame
    for fold in folds.folds:
        assert len(fold.train) <= 120 and len(fold.test) <= 120
        assert np.all(np.diff(fold.test) > 0)  # sorted positions
    loo_a = next(f for f in folds.folds if (f.protocol, f.repository) == ("leave_one_out", "a"))
    others = frame.index[frame["repository"] != "a"].to_numpy()
    np.testing.assert_array_equal(loo_a.train, others[-120:])
    again = protocol.build(_frame({"a": 400, "b": 300}), 0.2, 10, 120, seed=3)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(folds.folds, again.folds, strict=True))


def test_fold_probabilities_are_each_folds_own_fit() -> None:
    folds = protocol.build(_frame({"a": 200, "b": 150}), 0.2, 10, 10_000)
    job = ("logistic_regression", {"features": "raw", "clf__C": 1.0})
    (found,) = protocol.probabilities([job], folds, seed=0, n_jobs=1)
    X, y = data.features(folds.frame), folds.frame["buggy"].to_numpy()
    for fold, p in zip(folds.folds, found, strict=True):
        own = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000)
        z = np.log1p(X[fold.train].astype(np.float64))
        mean, scale = z.mean(axis=0), z.std(axis=0)
        scale[scale == 0] = 1.0
        own.fit((z - mean) / scale, y[fold.train])
        expected = own.predict_proba((np.log1p(X[fold.test].astype(np.float64)) - mean) / scale)[:, 1]
        np.testing.assert_allclose(p, expected, atol=1e-6)


def test_a_fold_score_has_the_figures_the_baseline_and_the_paired_se() -> None:
    folds = protocol.build(_frame({"a": 300, "b": 200}), 0.2, 10, 10_000)
    fold = folds.folds[0]
    test = folds.frame.iloc[fold.test]
    y = test["buggy"].to_numpy()
    rng = np.random.default_rng(1)
    p, base = y + rng.normal(0, 0.7, len(y)), y + rng.normal(0, 1.5, len(y))
    p, base = 1 / (1 + np.exp(-p)), 1 / (1 + np.exp(-base))
    scored = protocol.score(fold, folds, p, base)
    assert scored.roc_auc == pytest.approx(roc_auc_score(y, p)) and scored.pr_auc == pytest.approx(
        average_precision_score(y, p)
    )
    assert scored.baseline_roc_auc == pytest.approx(roc_auc_score(y, base))
    assert scored.difference_se == pytest.approx(np.sqrt(protocol.difference_variance(y, p, base)))
    assert 0 < scored.difference_se < 0.2 and scored.recall_at_20_effort is not None and scored.popt is not None
    assert (scored.test_rows, scored.buggy, scored.skipped) == (len(y), int(y.sum()), None)
    alone = protocol.score(fold, folds, p)
    assert alone.baseline_roc_auc is None and alone.difference_se is None


def test_report_scores_the_recipe_beside_the_baseline_on_real_synthetic_repositories(
    synthetic_commits_dir: Path,
) -> None:
    mature, _ = data.drop_immature(data.load([synthetic_commits_dir]).frame, 90)
    folds = protocol.build(mature, 0.2, 30, 30_000)
    job = ("logistic_regression", {"features": "relative_churn", "clf__C": 0.01})
    report = protocol.report(folds, job, seed=0, n_jobs=1, test_fraction=0.2, label_delay_days=90, choice="test",
                             choice_data_end=None)  # fmt: skip
    for summary in (report.forward, report.leave_one_out):
        assert [f.repository for f in summary.folds] == sorted(mature["repository"].unique()) and len(
            summary.folds
        ) == 3
        aucs = [f.roc_auc for f in summary.folds]
        assert all(a is not None and 0.6 < a < 0.95 for a in aucs)
        assert summary.mean_roc_auc == pytest.approx(np.mean(aucs))  # type: ignore[arg-type]
        assert summary.baseline_mean_roc_auc is not None and summary.note is None
    assert report.baseline == protocol.BASELINE_TEXT


def _scores(seed: int, rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated scores (shared signal, own noise); rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(np.int64)
    signal = y + rng.normal(0, 1.2, rows)
    return y, np.round(signal + rng.normal(0, 0.5, rows), 1), np.round(signal + rng.normal(0, 0.5, rows), 1)


def test_delong_aucs_match_scikit_learn_with_ties() -> None:
    y, a, b = _scores(0)
    aucs, covariance = delong(y, [a, b])
    assert aucs == pytest.approx([roc_auc_score(y, a), roc_auc_score(y, b)], abs=1e-12)
    assert list(aucs) == [performance.roc_auc(y, a), performance.roc_auc(y, b)]  # the one implementation
    assert covariance.shape == (2, 2) and np.allclose(covariance, covariance.T)
    assert covariance[0, 1] > 0  # shared signal: the two AUCs move together


def test_delong_variance_of_a_difference_agrees_with_a_paired_bootstrap() -> None:
    y, a, b = _scores(1)
    se = np.sqrt(protocol.difference_variance(y, a, b))
    rng = np.random.default_rng(2)
    diffs = []
    for _ in range(600):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].sum() >= 2:
            aucs, _ = delong(y[rows], [a[rows], b[rows]])  # its AUCs are scikit-learn's (test above), and fast
            diffs.append(aucs[0] - aucs[1])
    assert se == pytest.approx(np.std(diffs), rel=0.15)
    single, _ = delong(y, [a])
    assert single.shape == (1,)


def test_delong_refuses_bad_inputs_and_flags_an_unmeasurable_spread() -> None:
    with pytest.raises(ValueError, match="both classes"):
        delong(np.zeros(10), [np.arange(10.0)])
    with pytest.raises(ValueError, match="both classes"):
        delong(np.array([0, 1, 2]), [np.arange(3.0)])
    with pytest.raises(ValueError, match="do not match"):
        delong(np.array([0, 1, 0]), [np.arange(4.0)])
    aucs, covariance = delong(np.array([0, 0, 1, 0]), [np.array([0.1, 0.2, 0.9, 0.3])])
    assert aucs[0] == 1.0 and np.isnan(covariance).all()
    y = np.array([0, 0, 1, 0])
    assert protocol.difference_variance(y, np.array([0.1, 0.2, 0.9, 0.3]), np.array([0.3, 0.2, 0.9, 0.1])) == np.inf
