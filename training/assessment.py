"""Score a published version on new labelled data, pooled and per repository; list the versions."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.contract import (
    CHALLENGER_POINTER,
    CHAMPION_POINTER,
    FEATURES,
    EvaluationMetrics,
    ModelManifest,
    ProtocolReport,
)
from app.errors import CommitRiskError
from app.repository import ModelRepository
from training import data, evaluate, export, protocol


class ScoringError(RuntimeError):
    """The version cannot be scored (missing, invalid, or incompatible with the data)."""


@dataclass(frozen=True)
class RepositoryScore:
    """A version's figures on one repository's mature rows (`roc_auc_se`: DeLong), or why it was not scored."""

    repository: str
    rows: int
    buggy: int
    roc_auc: float | None = None
    roc_auc_se: float | None = None
    pr_auc: float | None = None
    recall_at_20_effort: float | None = None
    popt: float | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class ScoredVersion:
    version: int
    rows_scored: int
    immature_dropped: int
    metrics: EvaluationMetrics
    own_test: EvaluationMetrics
    repositories: list[RepositoryScore] = field(default_factory=list)
    own_protocol: ProtocolReport | None = None

    def mean(self, name: str) -> float | None:
        """Mean of one figure over the scored repositories (None when none was scored)."""
        values = [getattr(r, name) for r in self.repositories if r.skipped is None]
        return float(np.mean(values)) if values and None not in values else None

    def as_json(self) -> dict[str, Any]:
        """Plain JSON of the result."""
        means = ("roc_auc", "pr_auc", "recall_at_20_effort", "popt")
        return {
            "version": self.version,
            "rows_scored": self.rows_scored,
            "immature_dropped": self.immature_dropped,
            "metrics": self.metrics.model_dump(mode="json"),
            "repositories": [asdict(r) for r in self.repositories],
            "repository_means": {name: self.mean(name) for name in means},
            "own_test_metrics": self.own_test.model_dump(mode="json"),
            "own_protocol": None if self.own_protocol is None else self.own_protocol.model_dump(mode="json"),
        }


def load_version(models_dir: Path, version: int | None) -> tuple[int, ModelManifest, bytes]:
    """(version, manifest, onnx bytes) of `version`, or of the champion when None; integrity checked."""
    repository = ModelRepository(models_dir)
    try:
        chosen = version if version is not None else repository.pointer()
        if chosen is None:
            raise ScoringError(f"{models_dir}: no champion pointer; pass --version")
        manifest = repository.manifest(chosen)
        path = repository.model_path(chosen)
        model_bytes = path.read_bytes()
    except CommitRiskError as exc:
        raise ScoringError(exc.message) from None
    except OSError as exc:
        raise ScoringError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if hashlib.sha256(model_bytes).hexdigest() != manifest.onnx_sha256:
        raise ScoringError(f"{path}: sha256 does not match the manifest")
    if manifest.feature_names != FEATURES:
        raise ScoringError(f"{path.parent}: model features {manifest.feature_names} differ from {FEATURES}")
    return chosen, manifest, model_bytes


def score_version(
    models_dir: Path, version: int | None, paths: list[Path], label_delay_days: float, min_rows: int = 30
) -> ScoredVersion:
    """Metrics of a version on the mature rows of another labelled dataset, pooled and per repository.

    A file without `repository_id` is one repository (named after the file); a repository with fewer than
    `min_rows` mature rows, or one class only, is listed with the reason instead of figures.
    """
    chosen, manifest, model_bytes = load_version(models_dir, version)
    dataset = data.load(paths)
    mature, immature = data.drop_immature(dataset.frame, label_delay_days)
    if mature.empty:
        raise ScoringError(f"no mature rows to score (all {immature} are within {label_delay_days:g} days)")
    probabilities = export.onnx_probabilities(model_bytes, data.features(mature))
    metrics = evaluate.evaluate(
        mature["buggy"].to_numpy(), probabilities, mature["effort"].to_numpy(), manifest.threshold
    )
    owner = mature["repository"].astype(str).to_numpy()
    repositories = [
        _repository_score(name, mature.loc[owner == name], probabilities[owner == name], min_rows)
        for name in sorted(dataset.frame["repository"].astype(str).unique())
    ]
    return ScoredVersion(chosen, len(mature), immature, metrics, manifest.test_metrics, repositories,
                         manifest.protocol)  # fmt: skip


def _repository_score(name: str, rows: pd.DataFrame, p: np.ndarray, min_rows: int) -> RepositoryScore:
    y, effort = rows["buggy"].to_numpy(), rows["effort"].to_numpy()
    counts = RepositoryScore(repository=name, rows=len(rows), buggy=int(y.sum()))
    if len(rows) == 0:
        return replace(counts, skipped="no mature commits (all are newer than the label delay)")
    if len(rows) < min_rows:
        return replace(counts, skipped=f"only {len(rows)} mature commits (needs {min_rows})")
    if len(np.unique(y)) < 2:
        return replace(counts, skipped="one class only, so ROC AUC is undefined")
    _, covariance = protocol.delong(y, [p])
    variance = float(covariance[0, 0])
    return replace(
        counts, roc_auc=evaluate.roc_auc(y, p), roc_auc_se=float(np.sqrt(variance)) if np.isfinite(variance) else None,
        pr_auc=evaluate.average_precision(y, p), recall_at_20_effort=evaluate.recall_at_effort(y, p, effort),
        popt=evaluate.popt(y, p, effort),
    )  # fmt: skip


def list_versions(models_dir: Path) -> dict[str, Any]:
    """Every version with its role and summary; an unreadable manifest is listed with its error."""
    repository = ModelRepository(models_dir)
    roles: dict[int, list[str]] = {}
    for pointer in (CHAMPION_POINTER, CHALLENGER_POINTER):
        try:
            targets = repository.pointer_list(pointer)
        except CommitRiskError:
            targets = ()  # a broken pointer gives no role; `commitrisk serve` and /models name the problem
        for target in targets:
            roles.setdefault(target, []).append(pointer)
    entries: list[dict[str, Any]] = []
    for number in repository.versions():
        entry: dict[str, Any] = {"version": number, "roles": roles.get(number, [])}
        try:
            manifest = repository.manifest(number)
        except CommitRiskError as exc:
            first = exc.details[0] if exc.details else None
            entry["error"] = exc.message + (f": {first['field']}: {first['message']}" if first else "")
        else:
            window = manifest.window
            entry.update(
                created_at=manifest.created_at.isoformat(),
                model_type=manifest.model_type,
                test_roc_auc=manifest.test_metrics.roc_auc,
                test_rows=manifest.test_metrics.rows,
                window=f"{window.train_start:%Y-%m-%d} – {window.train_end:%Y-%m-%d}",
            )
        entries.append(entry)
    return {"models_dir": str(models_dir), "versions": entries}
