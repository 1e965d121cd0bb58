"""Score a published version on new labelled data (`commitrisk evaluate`) and list versions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.contract import (
    CHALLENGER_POINTER,
    CHAMPION_POINTER,
    FEATURES,
    MANIFEST_FILE,
    MODEL_FILE,
    EvaluationMetrics,
    ModelManifest,
)
from training import data, evaluate, export, publish


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
    try:
        chosen = version if version is not None else publish.read_pointer(models_dir)
    except publish.PublishError as exc:
        raise ScoringError(str(exc)) from exc
    if chosen is None:
        raise ScoringError(f"{models_dir}: no champion pointer; pass --version")
    directory = models_dir / str(chosen)
    if not directory.is_dir():
        raise ScoringError(f"{models_dir}: version {chosen} does not exist")
    try:
        manifest = ModelManifest.model_validate_json((directory / MANIFEST_FILE).read_bytes())
        model_bytes = (directory / MODEL_FILE).read_bytes()
    except (OSError, ValidationError) as exc:
        raise ScoringError(f"{directory}: invalid version: {str(exc).splitlines()[0]}") from exc
    if hashlib.sha256(model_bytes).hexdigest() != manifest.onnx_sha256:
        raise ScoringError(f"{directory / MODEL_FILE}: sha256 does not match the manifest")
    if manifest.feature_names != FEATURES:
        raise ScoringError(f"{directory}: model features {manifest.feature_names} differ from {FEATURES}")
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
    roles: dict[int, list[str]] = {}
    for pointer in (CHAMPION_POINTER, CHALLENGER_POINTER):
        try:
            targets = publish.read_pointer_list(models_dir, pointer)
        except publish.PublishError:
            targets = ()
        for target in targets:
            roles.setdefault(target, []).append(pointer)
    entries: list[dict[str, Any]] = []
    for number in publish.versions(models_dir):
        entry: dict[str, Any] = {"version": number, "roles": roles.get(number, [])}
        try:
            manifest = ModelManifest.model_validate_json((models_dir / str(number) / MANIFEST_FILE).read_bytes())
        except (OSError, ValidationError) as exc:
            entry["error"] = f"invalid manifest: {str(exc).splitlines()[0]}"
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
