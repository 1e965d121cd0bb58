"""MLflow tracking against a real temporary local store, read back with MlflowClient."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient


def test_training_run_is_logged_and_readable(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    models = tmp_path / "models"
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--data", str(synthetic_commits_dir / "alpha.csv"),
         "--models", str(models), "--budget", "1", "--family", "logistic_regression", "--mlflow", store, "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    version = json.loads(result.stdout)["version"]
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("commitrisk")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["commitrisk.version"] == str(version)
    assert run.data.params["model_type"] == "logistic_regression"
    assert 0.5 < run.data.metrics["test_roc_auc"] <= 1.0
    assert run.data.metrics["training_rows"] > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert artifacts == {"model/model.onnx", "model/manifest.json"}
    report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/index.html" in report and "report/roc.png" in report


def test_unreachable_tracking_store_is_one_line(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--data", str(synthetic_commits_dir / "alpha.csv"),
         "--models", str(tmp_path / "m"), "--budget", "1", "--family", "logistic_regression",
         "--mlflow", "http://127.0.0.1:9/"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: version 1 was published, but MLflow logging to http://127.0.0.1:9/ failed")
