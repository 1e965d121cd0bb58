"""Gaussian copula primitives on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from training.synthetic import copula


def test_quantile_knots_cover_min_to_max_and_are_dense_in_the_tail() -> None:
    probs = copula.QUANTILE_PROBS
    assert probs[0] == 0.0 and probs[-1] == 1.0 and np.all(np.diff(probs) > 0)
    assert (probs > 0.99).sum() >= 10
    values = np.arange(1001, dtype=np.float64)
    knots = copula.fit_quantiles(values)
    assert knots[0] == 0 and knots[-1] == 1000


@pytest.mark.parametrize("bad", [np.array([]), np.array([1.0, np.nan]), np.array([np.inf])])
def test_fit_quantiles_rejects_empty_and_non_finite(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        copula.fit_quantiles(bad)


def test_inverse_cdf_reproduces_a_heavy_tailed_sample() -> None:
    rng = np.random.default_rng(0)
    real = np.floor(rng.lognormal(2.0, 1.5, 20_000))
    drawn = copula.inverse_cdf(rng.random(200_000), copula.fit_quantiles(real), integer=True)
    assert np.all(drawn == np.rint(drawn)) and drawn.min() >= real.min() and drawn.max() <= real.max()
    for prob in (0.1, 0.5, 0.9, 0.99):
        assert np.quantile(drawn, prob) == pytest.approx(np.quantile(real, prob), rel=0.08, abs=1)


def test_nearest_correlation_repairs_an_indefinite_matrix() -> None:
    bad = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    assert np.linalg.eigvalsh(bad).min() < 0
    fixed = copula.nearest_correlation(bad)
    assert np.allclose(np.diag(fixed), 1.0) and np.allclose(fixed, fixed.T)
    assert np.linalg.eigvalsh(fixed).min() > 0
    np.linalg.cholesky(fixed)


def test_normal_correlation_and_spearman_of_a_known_gaussian() -> None:
    rho = 0.6
    latent = copula.sample_normal(np.array([[1.0, rho], [rho, 1.0]]), 50_000, np.random.default_rng(1))
    skewed = np.column_stack([np.exp(latent[:, 0]), latent[:, 1] ** 3])  # monotone: ranks unchanged
    assert copula.normal_correlation(skewed)[0, 1] == pytest.approx(rho, abs=0.02)
    # Spearman of a bivariate normal: (6/π)·asin(ρ/2).
    assert copula.spearman(skewed)[0, 1] == pytest.approx(6 / np.pi * np.arcsin(rho / 2), abs=0.02)
    assert copula.spearman(np.column_stack([skewed[:, 0], np.ones(50_000)]))[0, 1] == 0.0


def test_calibrate_undoes_the_attenuation_of_a_coarse_discretisation() -> None:
    # A binary and a coarse integer column: a latent ρ of 0.5 shows as a Spearman well below 0.5.
    target = np.array([[1.0, 0.5], [0.5, 1.0]])

    def realise(latent: np.ndarray) -> np.ndarray:
        return np.column_stack([latent[:, 0] > 0.8, np.floor(latent[:, 1])]).astype(np.float64)

    naive = copula.spearman(realise(copula.sample_normal(target, 40_000, np.random.default_rng(0))))[0, 1]
    assert naive < 0.42
    corr = copula.calibrate(target, target, realise, rows=40_000, rounds=8, seed=0)
    again = copula.spearman(realise(copula.sample_normal(corr, 40_000, np.random.default_rng(5))))[0, 1]
    assert again == pytest.approx(0.5, abs=0.02)
