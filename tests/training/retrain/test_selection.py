"""Importance weights from a domain classifier: rows like production weigh more; bounded, mean 1."""

from __future__ import annotations

import numpy as np
import pytest

from training.retrain.selection import importance_weights


def test_rows_resembling_production_get_the_larger_weights() -> None:
    rng = np.random.default_rng(0)
    old = rng.gamma(2.0, 5.0, (400, 15))  # small changes
    like_production = rng.gamma(2.0, 50.0, (400, 15))  # large changes, as production now
    production = rng.gamma(2.0, 50.0, (300, 15))
    selection = importance_weights(np.vstack([old, like_production]), production, clip=10.0, seed=0)
    w = selection.weights
    assert w.shape == (800,)
    assert w.mean() == pytest.approx(1.0)
    assert np.median(w[400:]) > 5 * np.median(w[:400])
    assert selection.domain_roc_auc is not None and selection.domain_roc_auc > 0.6
    summary = selection.as_json()
    assert summary["production_rows"] == 300 and 0 < summary["effective_rows"] < 800


def test_same_distribution_gives_nearly_uniform_weights() -> None:
    rng = np.random.default_rng(1)
    selection = importance_weights(rng.gamma(2.0, 10.0, (600, 15)), rng.gamma(2.0, 10.0, (300, 15)), seed=1)
    assert selection.domain_roc_auc is not None and selection.domain_roc_auc < 0.6
    assert selection.weights.max() / selection.weights.min() < 4
    assert selection.as_json()["effective_rows"] > 0.9 * 600


def test_weights_stay_within_the_clip() -> None:
    rng = np.random.default_rng(2)
    pool = np.vstack([rng.gamma(2.0, 1.0, (300, 15)), rng.gamma(2.0, 500.0, (30, 15))])
    selection = importance_weights(pool, rng.gamma(2.0, 500.0, (200, 15)), clip=4.0, seed=2)
    # Clipped to [1/4, 4] before renormalising to mean 1: the spread is at most 16.
    assert selection.weights.max() / selection.weights.min() <= 16 + 1e-9


@pytest.mark.parametrize(
    ("pool", "production", "clip", "message"),
    [
        ((10, 15), (100, 15), 10.0, "need"),
        ((100, 15), (100, 14), 10.0, "feature count"),
        ((100, 15), (100, 15), 0.5, "clip"),
    ],
)
def test_bad_inputs_are_refused(pool: tuple[int, int], production: tuple[int, int], clip: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        importance_weights(np.ones(pool), np.ones(production), clip=clip)
