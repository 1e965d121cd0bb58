"""MLflow experiment tracking of training (and retraining) runs; the only module importing mlflow."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.contract import MANIFEST_FILE, MODEL_FILE, REPORT_DIR, ModelManifest

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.pipeline import TrainOutcome

EXPERIMENT = "commitrisk"


class TrackingError(RuntimeError):
    """MLflow is not installed or the tracking server refused the run."""


def log_run(uri: str, config: TrainConfig, outcome: TrainOutcome, tags: dict[str, str] | None = None) -> str:
    """Log params, metrics, the ONNX model, manifest and report of a published version; return the run id."""
    try:
        import mlflow
    except ImportError as exc:
        raise TrackingError("MLflow tracking needs the 'mlflow' extra: pip install 'commitrisk[mlflow]'") from exc
    manifest = outcome.manifest
    directory = config.models_dir / str(manifest.version)
    params = {
        "model_type": manifest.model_type,
        "budget": config.budget,
        "majority": config.majority,
        "label_delay_days": config.label_delay_days,
        "test_fraction": config.test_fraction,
        "split": config.split,
        "families": ",".join(config.families),
        "margin_se": config.margin_se,
        "seed": config.seed,
        "threshold": round(manifest.threshold, 6),
        "data_fingerprint": manifest.data.sha256,
        **{f"hp.{k}": v for k, v in manifest.params.items()},
    }
    metrics = {
        "training_rows": float(manifest.window.train_rows + manifest.window.validation_rows),
        "testing_rows": float(manifest.window.test_rows),
        "immature_rows_dropped": float(outcome.immature_dropped),
        "parity_max_abs_diff": outcome.parity_max_abs_diff,
    }
    for prefix, block in (("val_", manifest.validation_metrics), ("test_", manifest.test_metrics)):
        for key, value in block.model_dump().items():
            if value is not None:
                metrics[prefix + key] = float(value)
    for candidate in manifest.candidates:
        inputs = candidate.params.get("features", "raw")
        if candidate.cv_roc_auc is not None:
            metrics[f"candidate_{candidate.name}_{inputs}_fold_roc_auc"] = candidate.cv_roc_auc
    if manifest.protocol is not None:
        for summary in (manifest.protocol.forward, manifest.protocol.leave_one_out):
            if summary.mean_roc_auc is not None:
                metrics[f"{summary.protocol}_mean_roc_auc"] = summary.mean_roc_auc
    run_tags = {"commitrisk.version": str(manifest.version), "commitrisk.trigger": "manual", **(tags or {})}
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(EXPERIMENT)
        return _log(mlflow, params, metrics, run_tags, directory, manifest)
    except Exception as exc:  # any store/transport failure: one line for the CLI, the version stays published
        raise TrackingError(f"MLflow logging to {uri} failed: {str(exc).splitlines()[0]}") from exc


def _log(
    mlflow: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    run_tags: dict[str, str],
    directory: Path,
    manifest: ModelManifest,
) -> str:
    with mlflow.start_run(tags=run_tags) as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(directory / MODEL_FILE), artifact_path="model")
        mlflow.log_artifact(str(directory / MANIFEST_FILE), artifact_path="model")
        mlflow.log_artifacts(str(directory / REPORT_DIR), artifact_path="report")
        with tempfile.TemporaryDirectory() as scratch:
            summary = Path(scratch) / "candidates.json"
            summary.write_text(json.dumps([c.model_dump(mode="json") for c in manifest.candidates], indent=2))
            mlflow.log_artifact(str(summary))
        return str(run.info.run_id)
