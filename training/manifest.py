"""Assemble a version's ModelManifest, reference sample and importances from a finished run."""

from __future__ import annotations

import hashlib
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.contract import (
    FEATURES,
    Calibration,
    CandidateScore,
    EvaluationMetrics,
    FeatureStats,
    LinearExplanation,
    LinearTerm,
    ModelManifest,
    RiskBands,
    SelfTest,
    TrainingWindow,
)
from training import data, export, features
from training.calibration import Calibrated

if TYPE_CHECKING:
    from training.config import TrainConfig

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
REFERENCE_COLUMNS = ["commit_id", "repository", "author_date", "buggy", *FEATURES]


def feature_stats(frame: pd.DataFrame) -> list[FeatureStats]:
    """Training range, centre and quantiles of every feature, in contract order."""
    stats = []
    for name in FEATURES:
        # float32 first: the model (and the service's range checks) see float32 values.
        values = frame[name].to_numpy(dtype=np.float32).astype(np.float64)
        stats.append(
            FeatureStats(
                name=name,
                min=float(values.min()),
                max=float(values.max()),
                mean=float(values.mean()),
                median=float(np.median(values)),
                quantiles={k: float(np.quantile(values, q)) for k, q in QUANTILES.items()},
            )
        )
    return stats


def reference_sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` training rows (seeded sample, time order kept): the drift baseline."""
    sample = frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).sort_index()
    return sample.loc[:, REFERENCE_COLUMNS].reset_index(drop=True)


def self_test(model_bytes: bytes, reference: pd.DataFrame, rows: int) -> SelfTest:
    """The first reference rows and the probabilities this exact ONNX file gives them."""
    X = data.features(reference.head(rows))
    probabilities = export.onnx_probabilities(model_bytes, X)
    return SelfTest(rows=X.astype(np.float64).tolist(), probabilities=probabilities.tolist(), tolerance=1e-4)


IMPORTANCE_ROWS = 20_000


def importances(estimator: Any, X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    """Permutation importance (mean drop of ROC AUC) of each feature on (a sample of at most 20k of) the rows."""
    from sklearn.inspection import permutation_importance

    if len(X) > IMPORTANCE_ROWS:
        chosen = np.random.default_rng(seed).choice(len(X), IMPORTANCE_ROWS, replace=False)
        X, y = X[chosen], y[chosen]
    result = permutation_importance(estimator, X, y, scoring="roc_auc", n_repeats=5, random_state=seed, n_jobs=1)
    return {name: float(value) for name, value in zip(FEATURES, result.importances_mean, strict=True)}


def linear_explanation(final: Calibrated) -> LinearExplanation | None:
    """The calibrated logistic model as intercept + terms on the served log-odds scale; None for other families.

    logit(p) = a · (b0 + Σ w_i z_i) + b, so each term's coefficient is a · w_i and the intercept a · b0 + b.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    base, ratios = final.base, False
    if isinstance(base, Pipeline) and isinstance(base.steps[0][1], features.RelativeChurn):
        base, ratios = base.steps[-1][1], True
    if not (isinstance(base, Pipeline) and isinstance(base.steps[-1][1], LogisticRegression)):
        return None
    scaler, clf = base.named_steps["scale"], base.named_steps["clf"]
    shapes: list[tuple[str, list[str], str | None]] = [(name, [name], None) for name in FEATURES]
    if ratios:
        shapes += [
            (n, list(top), bottom) for n, (top, bottom) in zip(features.RATIO_NAMES, features.RATIOS, strict=True)
        ]
    a, b = final.platt.a, final.platt.b
    terms = [
        LinearTerm(name=name, numerator=top, denominator=bottom, floor=features.FLOOR, mean=float(mean),
                   scale=float(scale), coefficient=a * float(w))
        for (name, top, bottom), mean, scale, w in zip(shapes, scaler.mean_, scaler.scale_, clf.coef_[0], strict=True)
    ]  # fmt: skip
    return LinearExplanation(intercept=a * float(clf.intercept_[0]) + b, terms=terms)


def library_versions() -> dict[str, str]:
    """Versions of everything that shaped the model file, for reproducibility."""
    found = {"python": platform.python_version()}
    for name in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "commitrisk"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "unknown"
    return found


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def build_manifest(
    *,
    family: str,
    params: dict[str, Any],
    fit_frame: pd.DataFrame,
    split: data.Split,
    dataset: data.Dataset,
    immature: int,
    config: TrainConfig,
    threshold: float,
    calibration: Calibration | None,
    bands: RiskBands,
    validation: EvaluationMetrics,
    test: EvaluationMetrics,
    candidates: list[CandidateScore],
    model_bytes: bytes,
    reference: pd.DataFrame,
    libraries: dict[str, str],
    warnings: list[str],
) -> ModelManifest:
    """The manifest of an unpublished version (`version` is set by `publish`)."""
    window = TrainingWindow(
        split="random" if split.kind == "random" else "chronological",
        train_start=_utc(fit_frame["author_date"].min()),
        train_end=_utc(fit_frame["author_date"].max()),
        test_start=_utc(split.test["author_date"].min()),
        test_end=_utc(split.test["author_date"].max()),
        train_rows=len(split.train),
        validation_rows=len(split.validation),
        test_rows=len(split.test),
        label_delay_days=config.label_delay_days,
        immature_rows_dropped=immature,
        duplicate_rows_dropped=dataset.duplicates_dropped,
        repositories=sorted(dataset.frame["repository"].unique().tolist()),
    )
    return ModelManifest(
        version=1,
        created_at=datetime.now(UTC),
        model_type=family,
        params=params,
        features=feature_stats(fit_frame),
        threshold=threshold,
        calibration=calibration,
        bands=bands,
        validation_metrics=validation,
        test_metrics=test,
        candidates=candidates,
        window=window,
        data=dataset.fingerprint,
        libraries=libraries,
        onnx_sha256=hashlib.sha256(model_bytes).hexdigest(),
        self_test=self_test(model_bytes, reference, config.self_test_rows),
        warnings=warnings,
    )
