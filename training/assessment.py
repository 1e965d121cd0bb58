"""Score a published version on new labelled data (`commitrisk evaluate`) and list versions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, FEATURES, EvaluationMetrics, ModelManifest
from app.errors import CommitRiskError
from app.repository import ModelRepository
from training import data, evaluate, export


class ScoringError(RuntimeError):
    """The version cannot be scored (missing, invalid, or incompatible with the data)."""


@dataclass(frozen=True)
class ScoredVersion:
    version: int
    rows_scored: int
    immature_dropped: int
    metrics: EvaluationMetrics
    own_test: EvaluationMetrics

    def as_json(self) -> dict[str, Any]:
        """Plain JSON of the result."""
        return {
            "version": self.version,
            "rows_scored": self.rows_scored,
            "immature_dropped": self.immature_dropped,
            "metrics": self.metrics.model_dump(mode="json"),
            "own_test_metrics": self.own_test.model_dump(mode="json"),
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


def score_version(models_dir: Path, version: int | None, paths: list[Path], label_delay_days: float) -> ScoredVersion:
    """Metrics of a version on the mature rows of another labelled dataset, at the version's threshold."""
    chosen, manifest, model_bytes = load_version(models_dir, version)
    dataset = data.load(paths)
    mature, immature = data.drop_immature(dataset.frame, label_delay_days)
    if mature.empty:
        raise ScoringError(f"no mature rows to score (all {immature} are within {label_delay_days:g} days)")
    probabilities = export.onnx_probabilities(model_bytes, data.features(mature))
    metrics = evaluate.evaluate(
        mature["buggy"].to_numpy(), probabilities, mature["effort"].to_numpy(), manifest.threshold
    )
    return ScoredVersion(chosen, len(mature), immature, metrics, manifest.test_metrics)


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
