"""Fit a synthetic-data spec to real commit CSVs: marginals, the copula's correlation, label models, time axis.

The copula is calibrated through `generate.draw_metrics`, so the rank correlations of the *generated*
metrics (after the consistency rules) match the real ones.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.contract import FEATURES, DataFile
from training.synthetic import copula
from training.synthetic.generate import COLUMNS, draw_metrics
from training.synthetic.spec import Logit, SyntheticSpec

if TYPE_CHECKING:
    import pandas as pd

REFIT_COMMAND = "commitrisk fit-synthetic ../shared/data/commits --out training/synthetic/defaults/jit_synthetic.json"
# A metric pinned to its floor when another one is at its own (nd = 1 when nf = 1, ns = 1 when nd = 1,
# entropy = 0 when nf = 1, ha = 0 when la = 0, rexp = sexp = 0 when exp = 0, ndev = 0 when nuc = 0) has its
# marginal fitted on the rows where the parent leaves it free and is pinned elsewhere: the copula alone
# would not put both point masses on the same rows and would inflate the pinned share.
PARENT = {"nd": ("nf", 1.0), "ns": ("nd", 1.0), "entropy_share": ("nf", 1.0), "ha": ("la", 0.0),
          "hd": ("ld", 0.0), "ndev": ("nuc", 0.0), "rexp": ("exp", 0.0), "sexp": ("exp", 0.0)}  # fmt: skip
# Drift direction in latent standard deviations at the end of the series (drift=1): changes grow and
# spread, authors get less experienced; the label's slope flattens (concept drift) by `slope_decay`.
DRIFT_SHIFT = {"ns": 0.5, "nd": 0.5, "nf": 0.6, "entropy_share": 0.3, "la": 0.8, "ld": 0.6, "ha": 0.6,
               "hd": 0.5, "lt": 0.3, "exp": -0.8, "rexp": -0.6, "sexp": -0.8, "other_files": 0.4}  # fmt: skip
SLOPE_DECAY = 0.6
NEEDED = ("author_date", "buggy", "is_fix_commit", "author_email", "files_count", *FEATURES)


def fit(paths: list[Path]) -> SyntheticSpec:
    """Fit a spec to real commit CSVs (files or folders of *.csv) in the shared dataset format."""
    import pandas as pd

    from training.data import resolve_paths

    files = resolve_paths(paths)
    frames = [_read(f) for f in files]
    real = pd.concat(frames, ignore_index=True)
    matrix = _coordinates({c: real[c].to_numpy(np.float64) for c in (*FEATURES, "files_count")})
    quantiles = {c: np.array([_sig(v) for v in copula.fit_quantiles(_present(matrix, c))]) for c in COLUMNS}

    # Ranks are matched on the final metrics, after the rules, so entropy and files_count correlate right.
    def realise(latent: np.ndarray) -> np.ndarray:
        metrics = draw_metrics(latent, quantiles)
        return np.column_stack([metrics[c] for c in (*FEATURES, "files_count")])

    start = copula.normal_correlation(matrix)
    target = copula.spearman(real[[*FEATURES, "files_count"]].to_numpy(np.float64))
    corr = np.round(copula.calibrate(target, start, realise), 4)
    sample = draw_metrics(copula.sample_normal(corr, 40_000, np.random.default_rng(1)), quantiles)
    gaps = np.concatenate([np.diff(np.sort(f["author_date"].to_numpy(np.float64))) for f in frames])
    spans = [(f["author_date"].max() - f["author_date"].min()) / 86400 for f in frames]
    top = [f["author_email"].value_counts(normalize=True).iloc[0] for f in frames]
    return SyntheticSpec(
        fitted_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        refit_command=REFIT_COMMAND,
        sources=[
            DataFile(name=f.name, sha256=hashlib.sha256(f.read_bytes()).hexdigest(), rows=len(d))
            for f, d in zip(files, frames, strict=True)
        ],
        rows=len(real),
        quantile_probs=[float(p) for p in copula.QUANTILE_PROBS],
        columns=list(COLUMNS),
        quantiles={c: q.tolist() for c, q in quantiles.items()},
        correlation=corr.tolist(),
        buggy=fit_logit(real, real["buggy"].to_numpy(bool), sample),
        is_fix=fit_logit(real, real["is_fix_commit"].to_numpy(bool), sample),
        gap_seconds_quantiles=[_sig(v) for v in copula.fit_quantiles(np.clip(gaps, 1.0, None))],
        end_date=int(real["author_date"].max()),
        max_span_days=round(float(max(spans)), 1),
        authors_per_repository=int(np.median([f["author_email"].nunique() for f in frames])),
        top_author_share=round(float(np.mean(top)), 4),
        drift_shift=DRIFT_SHIFT,
        slope_decay=SLOPE_DECAY,
    )


def fit_logit(real: pd.DataFrame, y: np.ndarray, sample: dict[str, np.ndarray]) -> Logit:
    """Logistic regression on log1p(metrics); intercept then set so `sample` reproduces the real rate."""
    from scipy.optimize import brentq
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.log1p(real[list(FEATURES)].to_numpy(np.float64))
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x), y)
    coef = {f: round(float(c), 6) for f, c in zip(FEATURES, model.coef_[0] / scaler.scale_, strict=True)}
    linear = np.log1p(np.column_stack([sample[f] for f in coef])) @ np.array(list(coef.values()))
    rate = float(y.mean())
    intercept = brentq(lambda b: float(expit(linear + b).mean()) - rate, -30.0, 30.0, xtol=1e-8)
    return Logit(intercept=round(intercept, 6), coef=coef, center=round(float(linear.mean()), 6), rate=round(rate, 6))


def _coordinates(metrics: dict[str, np.ndarray]) -> np.ndarray:
    """Metrics → copula coordinates (entropy as a share of log2(nf), files beyond nf)."""
    nf = metrics["nf"]
    share = np.where(nf > 1, metrics["entropy"] / np.log2(np.maximum(nf, 2.0)), 0.0)
    cols = {**metrics, "entropy_share": share, "other_files": metrics["files_count"] - nf}
    return np.column_stack([cols[c] for c in COLUMNS]).astype(np.float64)


def _present(matrix: np.ndarray, column: str) -> np.ndarray:
    """The rows of `column` whose parent allows a non-zero value (see PARENT)."""
    values = matrix[:, COLUMNS.index(column)]
    if column not in PARENT:
        return values
    parent, floor = PARENT[column]
    return values[matrix[:, COLUMNS.index(parent)] > floor]


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    from training.data import parse_numbers

    # Text first: pandas' float inference can crash on hex ids and huge exponents (training/data.py says why).
    frame = pd.read_csv(path, usecols=lambda c: c in NEEDED, encoding_errors="replace", dtype=str)
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing or frame.empty:
        raise ValueError(f"{path}: " + (f"missing columns {', '.join(missing)}" if missing else "no rows"))
    for name in ("author_date", "files_count", *FEATURES):
        values = parse_numbers(frame[name])
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: column {name!r} holds a value that is not a finite number")
        frame[name] = values
    for name in ("buggy", "is_fix_commit"):
        frame[name] = frame[name].astype(str).str.lower().eq("true")
    return frame


def _sig(value: float) -> float:
    return float(f"{float(value):.6g}")
