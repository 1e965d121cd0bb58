"""The `commitrisk` training commands, run as the real console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from training import publish
from training.config import MEMBER_FAMILIES

CLI = [sys.executable, "-m", "training"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_train_end_to_end_on_shared_data(tmp_path: Path, shared_commits_dir: Path) -> None:
    models = tmp_path / "models"
    result = run("train", "--data", shared_commits_dir, "--models", models, "--budget", "3", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["version"] == 1 and out["promoted"] is True
    assert out["rows_loaded"] == 4759 and out["immature_dropped"] > 0
    assert [c["name"] for c in out["candidates"]] == [*MEMBER_FAMILIES, "ensemble"]
    assert out["model_type"] == max(out["candidates"], key=lambda c: c["validation_roc_auc"])["name"]
    assert out["test_metrics"]["roc_auc"] >= 0.6
    assert out["parity_max_abs_diff"] <= 1e-5
    window = out["window"]
    assert window["train_end"] < window["test_start"]
    assert "searching random_forest" in result.stderr  # progress is shown during the search
    assert publish.read_pointer(models) == 1
    listing = json.loads(run("models", "list", "--models", models, "--json").stdout)
    assert listing["versions"][0]["roles"] == ["champion"]


def test_train_on_embedded_default_without_data(tmp_path: Path) -> None:
    result = run("train", "--models", tmp_path / "m", "--budget", "1", "--family", "logistic_regression")
    assert result.returncode == 0, result.stderr
    assert "embedded default" in result.stderr
    assert "published version 1" in result.stdout
    assert "Recall@20%Effort" in result.stdout


def test_random_split_is_flagged(tmp_path: Path, shared_commits_dir: Path) -> None:
    result = run(
        "train",
        "--data",
        shared_commits_dir / "guice.csv",
        "--models",
        tmp_path / "m",
        "--budget",
        "1",
        "--family",
        "logistic_regression",
        "--split",
        "random",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["window"]["split"] == "random"
    assert any("optimistic" in note for note in out["notes"])
    assert "optimistic" in (tmp_path / "m" / "1" / "report" / "index.html").read_text()


@pytest.mark.parametrize(
    ("rows", "extra", "reason"),
    [
        (40, [], "rows < min_train_rows"),
        (None, ["--min-test-roc-auc", "0.99"], "test ROC AUC"),
    ],
)
def test_gates_refuse_and_publish_nothing(
    tmp_path: Path, shared_commits_dir: Path, rows: int | None, extra: list[str], reason: str
) -> None:
    source = shared_commits_dir / "HikariCP.csv"
    if rows is not None:
        small = tmp_path / "small.csv"
        pd.read_csv(source).head(rows).to_csv(small, index=False)
        source = small
    models = tmp_path / "models"
    result = run(
        "train",
        "--data",
        source,
        "--models",
        models,
        "--budget",
        "1",
        "--family",
        "logistic_regression",
        "--label-delay-days",
        "0",
        *extra,
    )
    assert result.returncode == 3
    assert "refused, nothing published" in result.stderr and reason in result.stderr
    assert publish.versions(models) == []
    assert publish.read_pointer(models) is None


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("commit_id,author_date\nx,1\n")
    result = run("train", "--data", bad, "--models", tmp_path / "m")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(f"error: {bad}: missing required columns")
    missing = run("train", "--data", tmp_path / "nope.csv", "--models", tmp_path / "m")
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    family = run("train", "--family", "svm", "--models", tmp_path / "m")
    assert family.returncode == 2 and "families" in family.stderr
    margin = run("train", "--ensemble-margin-se", "-1", "--models", tmp_path / "m")
    assert margin.returncode == 2 and "ensemble-margin-se" in margin.stderr
    features = run("train", "--features", "pca", "--models", tmp_path / "m")
    assert features.returncode == 2 and "--features" in features.stderr and "relative_churn" in features.stderr


def test_evaluate_and_pointer_commands(tmp_path: Path, trained_models: Path, shared_commits_dir: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    result = run("evaluate", "--models", models, "--data", shared_commits_dir / "jedis.csv", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["version"] == 1 and out["rows_scored"] + out["immature_dropped"] == 1428
    assert 0.5 < out["metrics"]["roc_auc"] <= 1
    v2 = json.loads(
        run(
            "evaluate", "--models", models, "--version", "2", "--data", shared_commits_dir / "jedis.csv", "--json"
        ).stdout
    )
    assert v2["version"] == 2
    assert run("models", "promote", "2", "--models", models).stdout.strip() == "champion -> 2"
    assert run("models", "rollback", "--models", models).stdout.strip() == "champion -> 1"
    unknown = run("models", "promote", "7", "--models", models)
    assert unknown.returncode == 2 and "version 7 does not exist" in unknown.stderr
    missing = run("evaluate", "--models", models, "--version", "9", "--data", shared_commits_dir)
    assert missing.returncode == 2 and "version 9 does not exist" in missing.stderr
    (models / "2" / "model.onnx").write_bytes(b"garbage")
    corrupt = run("evaluate", "--models", models, "--version", "2", "--data", shared_commits_dir)
    assert corrupt.returncode == 2 and "sha256 does not match" in corrupt.stderr
    table = run("models", "list", "--models", models)
    assert "champion" in table.stdout and "gradient_boosting" in table.stdout
