"""Synthetic commits from a spec: latent normals → metrics obeying the real dumps' rules → the shared CSV format.

A Gaussian copula (training.synthetic.copula) joins the empirical marginals of the 15 metrics plus `files_count`;
logistic models on log1p(metrics) draw `buggy` and `is_fix_commit`; the time axis replays the real
inter-commit gaps; `training.synthetic.columns` adds ids, authors, messages and paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.contract import FEATURES
from training.synthetic import copula
from training.synthetic.columns import identities
from training.synthetic.spec import Logit, SyntheticSpec

if TYPE_CHECKING:
    import pandas as pd

# Copula coordinates: entropy as a share of its maximum log2(nf) and files_count as the files beyond nf,
# so entropy <= log2(nf) and nf <= files_count hold by construction; the other rules of the real dumps
# (nd <= nf, ha <= la, ndev <= nuc, …) are enforced after sampling (`draw_metrics`).
COLUMNS: tuple[str, ...] = (*(f if f != "entropy" else "entropy_share" for f in FEATURES), "other_files")
INTEGER = frozenset({"ns", "nd", "nf", "la", "ld", "ha", "hd", "ndev", "nuc", "exp", "sexp", "other_files"})
CSV_COLUMNS: tuple[str, ...] = (
    "commit_id", "author_date", "buggy", "repository_id", "commit_hash", "author_name", "author_email",
    "commit_message", "is_fix_commit", "fixed_by", "files_count", "files", "bug_potential", *FEATURES,
)  # fmt: skip


def generate(spec: SyntheticSpec, rows: int, seed: int, repositories: int = 1, drift: float = 0.0) -> pd.DataFrame:
    """`rows` synthetic commits in the shared CSV format, oldest first; same arguments → same frame."""
    import pandas as pd
    from scipy.special import expit

    if rows < 1 or repositories < 1 or repositories > rows:
        raise ValueError("rows and repositories must be >= 1 and repositories <= rows")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be within 0..1, got {drift}")
    rng = np.random.default_rng(seed)
    repo = np.sort(np.arange(rows) % repositories)
    dates = np.concatenate([_dates(spec, int((repo == r).sum()), rng) for r in range(repositories)])
    order = np.lexsort((repo, dates))
    repo, dates = repo[order], dates[order]
    span = max(int(dates.max() - dates.min()), 1)
    t = drift * (dates - dates.min()) / span
    latent = copula.sample_normal(np.asarray(spec.correlation), rows, rng)
    latent += t[:, None] * np.array([spec.drift_shift.get(c, 0.0) for c in spec.columns])
    metrics = draw_metrics(latent, {c: np.asarray(q) for c, q in spec.quantiles.items()})
    slope = 1.0 - spec.slope_decay * t
    buggy = rng.random(rows) < expit(_logit(spec.buggy, metrics, slope))
    is_fix = rng.random(rows) < expit(_logit(spec.is_fix, metrics, np.ones(rows)))
    frame = pd.DataFrame({"author_date": dates.astype(np.int64), "buggy": buggy, "is_fix_commit": is_fix})
    for name in FEATURES:
        values = metrics[name]
        frame[name] = values.astype(np.int64) if name in INTEGER else np.round(values, 6)
    frame["files_count"] = metrics["files_count"].astype(np.int64)
    frame = pd.concat([frame, identities(spec, frame, repo, rng)], axis=1)
    return frame[list(CSV_COLUMNS)]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a generated frame as the shared CSV format (booleans as true/false, empty bug_potential)."""
    out = frame.copy()
    for name in ("buggy", "is_fix_commit"):
        out[name] = np.where(out[name].to_numpy(bool), "true", "false")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, columns=list(CSV_COLUMNS))


def draw_metrics(latent: np.ndarray, quantiles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Latent normals [N, len(COLUMNS)] → metrics (+ files_count) obeying every rule the real dumps obey.

    A metric pinned to its floor when another one is at its own (nd = 1 when nf = 1, ha = 0 when la = 0, …)
    is drawn only on the rows its parent leaves free, from a marginal fitted on such rows (see `fit`).
    """
    from scipy.special import ndtr

    u = ndtr(latent)

    def draw(column: str, free: np.ndarray | None = None) -> np.ndarray:
        p = u[:, COLUMNS.index(column)]
        if free is not None and free.any():
            # Re-rank among the free rows: they sit high in the parent's ranks and, through the
            # correlation, in the child's too; the fitted conditional marginal must hold on them.
            p = p.copy()
            p[free] = (np.argsort(np.argsort(p[free], kind="stable"), kind="stable") + 0.5) / free.sum()
        return copula.inverse_cdf(p, quantiles[column], column in INTEGER)

    nf, la, ld = np.maximum(draw("nf"), 1.0), draw("la"), draw("ld")
    short = np.maximum(nf - la - ld, 0.0)  # every counted file changed at least one line
    la, ld = np.where(la >= ld, la + short, la), np.where(la >= ld, ld, ld + short)
    nd = np.where(nf > 1, np.clip(draw("nd", nf > 1), 1.0, nf), 1.0)
    ha = np.where(la > 0, np.clip(draw("ha", la > 0), 1.0, la), 0.0)
    hd = np.where(ld > 0, np.clip(draw("hd", ld > 0), 1.0, ld), 0.0)
    more = np.minimum(np.maximum(nf - ha - hd, 0.0), la - ha)  # every counted file has a hunk
    ha += more
    hd += np.maximum(nf - ha - hd, 0.0)
    share = np.clip(draw("entropy_share", nf > 1), 0.0, 1.0)
    entropy = np.where(nf > 1, np.floor(share * np.log2(nf) * 1e6) / 1e6, 0.0)  # written ≤ log2(nf)
    nuc, exp = draw("nuc"), draw("exp")
    return {"ns": np.where(nd > 1, np.clip(draw("ns", nd > 1), 1.0, nd), 1.0), "nd": nd, "nf": nf,
            "entropy": entropy, "la": la, "ld": ld, "ha": ha, "hd": hd, "lt": np.maximum(draw("lt"), 1.0),
            "ndev": np.where(nuc > 0, np.clip(draw("ndev", nuc > 0), 1.0, nuc), 0.0), "age": draw("age"),
            "nuc": nuc, "exp": exp, "rexp": np.where(exp > 0, np.minimum(draw("rexp", exp > 0), nuc), 0.0),
            "sexp": np.where(exp > 0, np.minimum(draw("sexp", exp > 0), exp), 0.0),
            "files_count": nf + draw("other_files")}  # fmt: skip


def _logit(model: Logit, metrics: dict[str, np.ndarray], slope: np.ndarray) -> np.ndarray:
    linear = sum(w * np.log1p(metrics[f]) for f, w in model.coef.items())
    return np.asarray(model.intercept + model.center + slope * (linear - model.center), dtype=np.float64)


def _dates(spec: SyntheticSpec, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Commit times ending at the real newest date; spans longer than the real maximum are compressed."""
    gaps = copula.inverse_cdf(rng.random(max(rows - 1, 0)), np.asarray(spec.gap_seconds_quantiles), True)
    limit = spec.max_span_days * 86400.0
    if gaps.sum() > limit:
        gaps = np.maximum(np.floor(gaps * limit / gaps.sum()), 1.0)
    offsets = np.concatenate([[0.0], np.cumsum(gaps)])
    return np.asarray(spec.end_date - (offsets[-1] - offsets), dtype=np.int64)
