"""Candidate families: seeded settings, fitted with given hyperparameters, refittable, sane on synthetic commits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app.contract import CandidateScore
from training import data, model
from training.config import MEMBER_FAMILIES


@pytest.fixture(scope="module")
def commits(synthetic_commits_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic repository's mature commits (≈ 1,460 rows)."""
    frame, _ = data.drop_immature(data.load([synthetic_commits_dir / "alpha.csv"]).frame, 90)
    return data.features(frame), frame["buggy"].to_numpy()


def test_log1p_matches_numpy() -> None:
    X = np.array([[0.0, 1.0], [9.0, 1e6]])
    assert np.allclose(model.Log1p().fit(X).transform(X), np.log1p(X))


@pytest.mark.parametrize("family", MEMBER_FAMILIES)
def test_settings_fit_and_refit(family: str, commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    tried = model.settings(family, budget=2, seed=0)  # type: ignore[arg-type]
    # Logistic regression tries its whole (cheap) grid of C; the tree families `budget` sampled settings.
    assert len(tried) == (len(model.LOGISTIC_C) if family == "logistic_regression" else 2)
    assert tried == model.settings(family, budget=2, seed=0)  # type: ignore[arg-type]  # seeded
    assert all(isinstance(v, str | int | float | bool | type(None)) for s in tried for v in s.values())
    candidate = model.fixed(family, {"features": "raw", **tried[0]}, X, y, seed=0)  # type: ignore[arg-type]
    assert candidate.family == family and candidate.cv_roc_auc is None
    p = model.predict(candidate.estimator, X)
    assert p.shape == (len(X),) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(y, p) > 0.6
    refitted = model.refit(candidate, X[:500], y[:500])
    assert refitted is not candidate.estimator
    assert model.predict(refitted, X[:5]).shape == (5,)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model family"):
        model.settings("svm", budget=1, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown model family"):
        model.settings("ensemble", budget=1, seed=0)


@pytest.fixture(scope="module")
def ensemble(commits: tuple[np.ndarray, np.ndarray]) -> model.Candidate:
    X, y = commits
    params: dict[str, model.ParamValue] = {"features": "relative_churn", "logistic_regression__clf__C": 0.1}
    params.update(random_forest__n_estimators=30, gradient_boosting__n_estimators=30)
    return model.fixed("ensemble", params, X[:900], y[:900], seed=0)


def test_ensemble_averages_its_members(ensemble: model.Candidate, commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = commits
    assert ensemble.family == "ensemble"
    vote = ensemble.estimator
    assert [name for name, _ in vote.estimators] == list(MEMBER_FAMILIES)
    members = [model.predict(m, X[900:]) for m in vote.estimators_]
    assert np.allclose(model.predict(vote, X[900:]), np.mean(members, axis=0), atol=1e-12)
    assert vote.named_estimators_["random_forest"].steps[-1][1].n_estimators == 30


def test_ensemble_hyperparameters_round_trip_through_the_manifest_into_fixed(
    ensemble: model.Candidate, commits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = commits
    # The manifest stores params as CandidateScore does: JSON scalars under plain string keys.
    stored = CandidateScore(name="ensemble", validation_roc_auc=0.7, params=ensemble.params, fit_seconds=1.0)
    params = CandidateScore.model_validate_json(stored.model_dump_json()).params
    rebuilt = model.fixed("ensemble", params, X[:900], y[:900], seed=0)
    assert rebuilt.family == "ensemble" and rebuilt.cv_roc_auc is None and rebuilt.params == ensemble.params
    # Same hyperparameters, same rows, same seeds: the same model.
    assert np.allclose(model.predict(rebuilt.estimator, X[900:]), model.predict(ensemble.estimator, X[900:]))
    refitted = model.refit(ensemble, X[:900], y[:900])
    assert np.allclose(model.predict(refitted, X[900:]), model.predict(ensemble.estimator, X[900:]))
    defaults = model.fixed("ensemble", {}, X[:300], y[:300], seed=0)
    assert model.predict(defaults.estimator, X[:5]).shape == (5,)


def test_ensemble_members_get_their_own_row_weights(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    own: dict[str, dict[str, model.ParamValue]] = {
        "logistic_regression": {}, "random_forest": {"n_estimators": 20}, "gradient_boosting": {"n_estimators": 20}
    }  # fmt: skip
    params = {f"{family}__{k}": v for family, p in own.items() for k, v in p.items()}
    weights = np.linspace(0.1, 3.0, 600)
    weighted = model.fixed("ensemble", params, X[:600], y[:600], seed=0, sample_weight=weights)
    plain = model.fixed("ensemble", params, X[:600], y[:600], seed=0)
    for family, p in own.items():
        single = model.fixed(family, p, X[:600], y[:600], seed=0, sample_weight=weights)  # type: ignore[arg-type]
        member = weighted.estimator.named_estimators_[family]
        assert np.allclose(model.predict(member, X[600:]), model.predict(single.estimator, X[600:]))
    assert not np.allclose(model.predict(weighted.estimator, X[600:]), model.predict(plain.estimator, X[600:]))


def test_ensemble_refuses_unknown_hyperparameters(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    with pytest.raises(ValueError, match="ensemble: hyperparameters do not fit this family: Invalid parameter 'svm'"):
        model.fixed("ensemble", {"svm__C": 1.0}, X[:300], y[:300], seed=0)
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        model.fixed("ensemble", {"random_forest__bogus": 1}, X[:300], y[:300], seed=0)


def test_the_feature_set_is_recorded_and_rebuilt(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    setting = model.settings("random_forest", budget=1, seed=0)[0]
    churned = model.fixed("random_forest", {"features": "relative_churn", **setting}, X[:900], y[:900], seed=0)
    raw = model.fixed("random_forest", {"features": "raw", **setting}, X[:900], y[:900], seed=0)
    assert churned.estimator.steps[0][0] == "churn" and churned.estimator.n_features_in_ == 15
    assert not hasattr(raw.estimator, "steps")
    rebuilt = model.fixed("random_forest", churned.params, X[:900], y[:900], seed=0)
    assert np.array_equal(model.predict(rebuilt.estimator, X[900:]), model.predict(churned.estimator, X[900:]))
    assert not np.array_equal(model.predict(raw.estimator, X[900:]), model.predict(churned.estimator, X[900:]))


def test_params_without_a_feature_set_mean_the_raw_metrics_of_older_manifests(
    commits: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = commits
    legacy = model.fixed("gradient_boosting", {"n_estimators": 20}, X[:600], y[:600], seed=0)
    assert not hasattr(legacy.estimator, "steps") and legacy.params == {"n_estimators": 20}
    with pytest.raises(ValueError, match="unknown feature set 'pca'; expected one of raw, relative_churn"):
        model.fixed("gradient_boosting", {"features": "pca"}, X[:600], y[:600], seed=0)


def test_weighted_rows_reach_the_classifier_behind_the_churn_step(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    weights = np.linspace(0.1, 3.0, 600)
    for family in MEMBER_FAMILIES:
        params = {"features": "relative_churn"}
        weighted = model.fixed(family, params, X[:600], y[:600], seed=0, sample_weight=weights)  # type: ignore[arg-type]
        plain = model.fixed(family, params, X[:600], y[:600], seed=0)  # type: ignore[arg-type]
        assert not np.allclose(model.predict(weighted.estimator, X[600:]), model.predict(plain.estimator, X[600:]))
