"""Synthetic commit-metric datasets fitted to real JIT data: the embedded default of `commitrisk train`.

A Gaussian copula (training.synthetic.copula) joins the empirical marginals of the 15 metrics plus `files_count`;
logistic models on log1p(metrics) draw `buggy` and `is_fix_commit`; the time axis replays the real
inter-commit gaps. The fitted parameters live in `training/synthetic/defaults/jit_synthetic.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.contract import FEATURES, DataFile
from training.synthetic import copula

if TYPE_CHECKING:
    import pandas as pd

REFIT_COMMAND = "commitrisk fit-synthetic ../shared/data/commits --out training/synthetic/defaults/jit_synthetic.json"
DEFAULT_SPEC = "jit_synthetic.json"
# Copula coordinates: entropy as a share of its maximum log2(nf) and files_count as the files beyond nf,
# so entropy <= log2(nf) and nf <= files_count hold by construction; the other rules of the real dumps
# (nd <= nf, ha <= la, ndev <= nuc, …) are enforced after sampling and the copula calibrated through them.
COLUMNS: tuple[str, ...] = (*(f if f != "entropy" else "entropy_share" for f in FEATURES), "other_files")
# A metric pinned to its floor when another one is at its own (nd = 1 when nf = 1, ns = 1 when nd = 1,
# entropy = 0 when nf = 1, ha = 0 when la = 0, rexp = sexp = 0 when exp = 0, ndev = 0 when nuc = 0) has its
# marginal fitted on the rows where the parent leaves it free and is pinned elsewhere: the copula alone
# would not put both point masses on the same rows and would inflate the pinned share.
PARENT = {"nd": ("nf", 1.0), "ns": ("nd", 1.0), "entropy_share": ("nf", 1.0), "ha": ("la", 0.0),
          "hd": ("ld", 0.0), "ndev": ("nuc", 0.0), "rexp": ("exp", 0.0), "sexp": ("exp", 0.0)}  # fmt: skip
INTEGER = frozenset({"ns", "nd", "nf", "la", "ld", "ha", "hd", "ndev", "nuc", "exp", "sexp", "other_files"})
CSV_COLUMNS: tuple[str, ...] = (
    "commit_id", "author_date", "buggy", "repository_id", "commit_hash", "author_name", "author_email",
    "commit_message", "is_fix_commit", "fixed_by", "files_count", "files", "bug_potential", *FEATURES,
)  # fmt: skip
# Drift direction in latent standard deviations at the end of the series (drift=1): changes grow and
# spread, authors get less experienced; the label's slope flattens (concept drift) by `slope_decay`.
DRIFT_SHIFT = {"ns": 0.5, "nd": 0.5, "nf": 0.6, "entropy_share": 0.3, "la": 0.8, "ld": 0.6, "ha": 0.6,
               "hd": 0.5, "lt": 0.3, "exp": -0.8, "rexp": -0.6, "sexp": -0.8, "other_files": 0.4}  # fmt: skip
SLOPE_DECAY = 0.6


class Logit(BaseModel):
    """P(y) = sigmoid(intercept + center + slope · (Σ coef[f] · log1p(f) − center)), slope 1 without drift.

    The intercept is re-centred so generated rows reproduce the real `rate`; drift flattens the slope
    around `center` (the mean linear term), which weakens the signal without moving the base rate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    intercept: float
    coef: dict[str, float]
    center: float
    rate: float


class SyntheticSpec(BaseModel):
    """Everything `generate` needs; fitted by `fit`, stored as package data."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format_version: int = 1
    fitted_at: str
    refit_command: str
    sources: list[DataFile]  # the real CSVs fitted on (name, sha256 of the raw bytes, rows)
    rows: int
    quantile_probs: list[float]
    columns: list[str]
    quantiles: dict[str, list[float]]
    correlation: list[list[float]]
    buggy: Logit
    is_fix: Logit
    gap_seconds_quantiles: list[float]
    end_date: int
    max_span_days: float
    authors_per_repository: int
    top_author_share: float
    drift_shift: dict[str, float]
    slope_decay: float


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
        metrics = _metrics(latent, quantiles)
        return np.column_stack([metrics[c] for c in (*FEATURES, "files_count")])

    start = copula.normal_correlation(matrix)
    target = copula.spearman(real[[*FEATURES, "files_count"]].to_numpy(np.float64))
    corr = np.round(copula.calibrate(target, start, realise), 4)
    sample = _metrics(copula.sample_normal(corr, 40_000, np.random.default_rng(1)), quantiles)
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
        buggy=_fit_logit(real, real["buggy"].to_numpy(bool), sample),
        is_fix=_fit_logit(real, real["is_fix_commit"].to_numpy(bool), sample),
        gap_seconds_quantiles=[_sig(v) for v in copula.fit_quantiles(np.clip(gaps, 1.0, None))],
        end_date=int(real["author_date"].max()),
        max_span_days=round(float(max(spans)), 1),
        authors_per_repository=int(np.median([f["author_email"].nunique() for f in frames])),
        top_author_share=round(float(np.mean(top)), 4),
        drift_shift=DRIFT_SHIFT,
        slope_decay=SLOPE_DECAY,
    )


def load_default() -> SyntheticSpec:
    """The spec shipped with the package (fitted on ../shared/data/commits)."""
    from importlib.resources import files

    return load_spec(Path(str(files("training.synthetic") / "defaults" / DEFAULT_SPEC)))


def load_spec(path: Path) -> SyntheticSpec:
    """Read a spec JSON written by `write_spec`."""
    return SyntheticSpec.model_validate_json(path.read_bytes())


def write_spec(spec: SyntheticSpec, path: Path) -> None:
    """Write a spec as deterministic JSON (sorted keys, number lists on one line)."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, indent=1)
    text = re.sub(r"\[[\d\s,.eE+-]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def generate(spec: SyntheticSpec, rows: int, seed: int, repositories: int = 1, drift: float = 0.0) -> pd.DataFrame:
    """`rows` synthetic commits in the shared CSV format, oldest first; same arguments → same frame."""
    import pandas as pd
    from scipy.special import expit

    from training.synthetic.columns import identities

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
    metrics = _metrics(latent, {c: np.asarray(q) for c, q in spec.quantiles.items()})
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


def _metrics(latent: np.ndarray, quantiles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Latent normals → metrics obeying every rule the real dumps obey without exception."""
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


def _logit(model: Logit, metrics: dict[str, np.ndarray], slope: np.ndarray) -> np.ndarray:
    linear = sum(w * np.log1p(metrics[f]) for f, w in model.coef.items())
    return np.asarray(model.intercept + model.center + slope * (linear - model.center), dtype=np.float64)


def _fit_logit(real: pd.DataFrame, y: np.ndarray, sample: dict[str, np.ndarray]) -> Logit:
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


def _dates(spec: SyntheticSpec, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Commit times ending at the real newest date; spans longer than the real maximum are compressed."""
    gaps = copula.inverse_cdf(rng.random(max(rows - 1, 0)), np.asarray(spec.gap_seconds_quantiles), True)
    limit = spec.max_span_days * 86400.0
    if gaps.sum() > limit:
        gaps = np.maximum(np.floor(gaps * limit / gaps.sum()), 1.0)
    offsets = np.concatenate([[0.0], np.cumsum(gaps)])
    return np.asarray(spec.end_date - (offsets[-1] - offsets), dtype=np.int64)


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    wanted = ["author_date", "buggy", "is_fix_commit", "author_email", "files_count", *FEATURES]
    frame = pd.read_csv(path, usecols=lambda c: c in wanted, encoding_errors="replace", low_memory=False)
    missing = [c for c in wanted if c not in frame.columns]
    if missing or frame.empty:
        raise ValueError(f"{path}: " + (f"missing columns {', '.join(missing)}" if missing else "no rows"))
    for name in ("buggy", "is_fix_commit"):
        frame[name] = frame[name].astype(str).str.lower().eq("true")
    return frame


def _sig(value: float) -> float:
    return float(f"{float(value):.6g}")
