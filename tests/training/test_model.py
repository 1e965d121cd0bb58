"""Candidate families: searchable with time-ordered folds, refittable, sane on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import data, model
from training.config import ALL_FAMILIES


@pytest.fixture(scope="module")
def hikari(shared_commits_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    frame, _ = data.drop_immature(data.load([shared_commits_dir / "HikariCP.csv"]).frame, 90)
    return data.features(frame), frame["buggy"].to_numpy()


def test_log1p_matches_numpy() -> None:
    X = np.array([[0.0, 1.0], [9.0, 1e6]])
    assert np.allclose(model.Log1p().fit(X).transform(X), np.log1p(X))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_search_and_refit(family: str, hikari: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = hikari
    candidate = model.search(family, X, y, budget=2, folds=3, seed=0, n_jobs=1)  # type: ignore[arg-type]
    assert candidate.family == family
    assert 0.5 < candidate.cv_roc_auc <= 1.0
    assert candidate.params and all(
        isinstance(v, str | int | float | bool | type(None)) for v in candidate.params.values()
    )
    p = model.predict(candidate.estimator, X)
    assert p.shape == (len(X),) and np.all((p >= 0) & (p <= 1))
    refitted = model.refit(candidate, X[:500], y[:500])
    assert refitted is not candidate.estimator
    assert model.predict(refitted, X[:5]).shape == (5,)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model family"):
        model.search("svm", np.zeros((10, 15)), np.zeros(10), budget=1, folds=2, seed=0, n_jobs=1)  # type: ignore[arg-type]
