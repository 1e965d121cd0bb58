"""Gaussian copula over empirical marginals: fit from a numeric matrix, sample new rows from it.

Pure numpy/scipy on plain arrays; `training.synthetic.fit` and `training.synthetic.generate` decide which
columns go in and what they mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Probability knots of the stored marginals: evenly spaced in the body, increasingly dense towards the
# maximum, because the JIT metrics are heavy-tailed (la reaches 10^4 where the median is 10).
_BODY = np.linspace(0.0, 0.8, 41)
_TAIL = 1.0 - 0.2 * (1.0 - np.linspace(0.0, 1.0, 56)[1:]) ** 2
QUANTILE_PROBS: Array = np.round(np.concatenate([_BODY, _TAIL]), 6)


def fit_quantiles(values: Array) -> Array:
    """Empirical quantiles of one column at `QUANTILE_PROBS` (min and max included)."""
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("a marginal needs at least one finite value and no NaN")
    return np.quantile(values, QUANTILE_PROBS)


def inverse_cdf(u: Array, quantiles: Array, integer: bool) -> Array:
    """Map uniforms to values; interpolates in log1p space so tails stay geometric, rounds counts."""
    logq = np.log1p(np.asarray(quantiles, dtype=np.float64))
    x = np.expm1(np.interp(u, QUANTILE_PROBS, logq))
    return np.rint(x) if integer else x


def normal_correlation(matrix: Array) -> Array:
    """Correlation of the column-wise van der Waerden scores Φ⁻¹(rank / (n + 1)), ties at mid-rank."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    scores = ndtri(rankdata(matrix, axis=0, method="average") / (matrix.shape[0] + 1))
    return nearest_correlation(np.asarray(np.corrcoef(scores.T), dtype=np.float64))


def spearman(matrix: Array) -> Array:
    """Spearman rank correlation matrix of the columns (constant columns correlate 0)."""
    from scipy.stats import rankdata

    ranks = rankdata(matrix, axis=0, method="average")
    ranks -= ranks.mean(axis=0)
    norm = np.sqrt((ranks**2).sum(axis=0))
    norm[norm == 0] = 1.0
    ranks /= norm
    corr = ranks.T @ ranks
    np.fill_diagonal(corr, 1.0)
    return np.asarray(corr, dtype=np.float64)


def nearest_correlation(matrix: Array, floor: float = 1e-6) -> Array:
    """Symmetric positive-definite correlation matrix closest (eigenvalue clipping) to `matrix`."""
    sym = (np.asarray(matrix, dtype=np.float64) + np.asarray(matrix, dtype=np.float64).T) / 2.0
    vals, vecs = np.linalg.eigh(sym)
    fixed = (vecs * np.clip(vals, floor, None)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return np.asarray(out, dtype=np.float64)


def sample_normal(corr: Array, rows: int, rng: np.random.Generator) -> Array:
    """Draw `rows` latent vectors N(0, corr)."""
    chol = np.linalg.cholesky(nearest_correlation(corr))
    return np.asarray(rng.standard_normal((rows, corr.shape[0])) @ chol.T, dtype=np.float64)


def calibrate(
    target_spearman: Array,
    start: Array,
    realise: Callable[[Array], Array],
    rows: int = 40_000,
    rounds: int = 6,
    seed: int = 0,
) -> Array:
    """Adjust the latent correlation until `realise(latent)` reproduces the target Spearman matrix.

    Normal scores of tied, discrete columns understate the latent dependence, and the consistency rules
    applied after sampling (clipping ha to la, …) bend it further; a few fixed-point rounds on one
    fixed-seed sample correct both.
    """
    corr = nearest_correlation(start)
    for _ in range(rounds):
        latent = sample_normal(corr, rows, np.random.default_rng(seed))
        achieved = spearman(realise(latent))
        corr = nearest_correlation(np.clip(corr + (target_spearman - achieved), -0.999, 0.999))
    return corr
