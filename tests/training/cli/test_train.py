"""`commitrisk train` and `commitrisk evaluate`, run as the real console script on seeded synthetic data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app.repository import ModelRepository
from tests.support import build_model_version
from training.config import MEMBER_FAMILIES

CLI = [sys.executable, "-m", "training"]
QUICK = ["--budget", "1", "--family", "logistic_regression"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_train_end_to_end(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    models = tmp_path / "models"
    result = run("train", "--data", synthetic_commits_dir, "--models", models, "--budget", "1", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["version"] == 1 and out["promoted"] is True
    assert out["rows_loaded"] == 4500 and out["immature_dropped"] > 0
    assert out["rows_used"] == out["rows_loaded"] - out["immature_dropped"] - out["duplicates_dropped"]
    names = [c["name"] for c in out["candidates"]]
    assert names == [f for f in (*MEMBER_FAMILIES, "ensemble") for _ in ("raw", "relative_churn")]
    assert all(c["verdict"] and c["cv_roc_auc"] is not None for c in out["candidates"])
    assert out["test_metrics"]["roc_auc"] >= 0.6
    assert out["parity_max_abs_diff"] <= 1e-5
    window = out["window"]
    assert window["train_end"] < window["test_start"]
    protocol = out["protocol"]
    for name in ("forward", "leave_one_out"):
        assert len(protocol[name]["folds"]) == 3 and protocol[name]["mean_roc_auc"] > 0.6
        assert all(f["baseline_roc_auc"] is not None for f in protocol[name]["folds"])
    assert protocol["choice"].endswith("by more than 1 SE")
    assert out["explanation"] == ("linear" if out["model_type"] == "logistic_regression" else "perturbation")
    assert "candidate settings on 6 folds each" in result.stderr  # progress is shown during the choice
    assert ModelRepository(models).pointer() == 1
    listing = json.loads(run("models", "list", "--models", models, "--json").stdout)
    assert listing["versions"][0]["roles"] == ["champion"]


def test_train_on_embedded_default_without_data(tmp_path: Path) -> None:
    result = run("train", "--models", tmp_path / "m", *QUICK)
    assert result.returncode == 0, result.stderr
    assert "embedded default" in result.stderr
    assert "published version 1" in result.stdout
    assert "Recall@20%Effort" in result.stdout


def test_a_second_version_is_published_without_promotion_when_asked(
    tmp_path: Path, synthetic_commits_dir: Path
) -> None:
    models = tmp_path / "m"
    data = synthetic_commits_dir / "beta.csv"
    assert run("train", "--data", data, "--models", models, *QUICK).returncode == 0
    second = run("train", "--data", data, "--models", models, *QUICK, "--no-promote", "--json")
    assert second.returncode == 0, second.stderr
    assert (json.loads(second.stdout)["version"], json.loads(second.stdout)["promoted"]) == (2, False)
    assert ModelRepository(models).pointer() == 1


def test_random_split_is_flagged(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    data = synthetic_commits_dir / "alpha.csv"
    result = run("train", "--data", data, "--models", tmp_path / "m", *QUICK, "--split", "random", "--json")
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
    tmp_path: Path, synthetic_commits_dir: Path, rows: int | None, extra: list[str], reason: str
) -> None:
    source = synthetic_commits_dir / "gamma.csv"
    if rows is not None:
        small = tmp_path / "small.csv"
        pd.read_csv(source).head(rows).to_csv(small, index=False)
        source = small
    models = tmp_path / "models"
    result = run("train", "--data", source, "--models", models, *QUICK, "--label-delay-days", "0", *extra)
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith("error: refused, nothing published: ")
    assert reason in result.stderr
    assert ModelRepository(models).versions() == []
    assert ModelRepository(models).pointer() is None


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
    assert family.returncode == 2 and family.stderr.startswith("error: option families.0: ")
    assert family.stderr.count("\n") == 1
    margin = run("train", "--margin-se", "-1", "--models", tmp_path / "m")
    assert margin.returncode == 2 and "margin-se" in margin.stderr
    rows = run("train", "--min-fold-rows", "1", "--models", tmp_path / "m")
    assert rows.returncode == 2 and "min-fold-rows" in rows.stderr
    features = run("train", "--features", "pca", "--models", tmp_path / "m")
    assert features.returncode == 2 and "--features" in features.stderr and "relative_churn" in features.stderr
    assert not (tmp_path / "m").exists()  # nothing was published, not even the directory


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 (champion, logistic) and 2 (a forest), published by the test helper: read-only, copy to change."""
    models = tmp_path_factory.mktemp("evaluate") / "models"
    build_model_version(models, 1)
    build_model_version(models, 2, kind="forest", strength=0.3, point=False)
    return models


def test_evaluate_scores_a_version(tmp_path: Path, two_versions: Path, synthetic_commits_dir: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(two_versions, models)
    data = synthetic_commits_dir / "alpha.csv"
    result = run("evaluate", "--models", models, "--data", data, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["version"] == 1 and out["rows_scored"] + out["immature_dropped"] == 1500
    assert 0.5 < out["metrics"]["roc_auc"] <= 1
    v2 = json.loads(run("evaluate", "--models", models, "--version", "2", "--data", data, "--json").stdout)
    assert v2["version"] == 2
    (repository,) = out["repositories"]
    assert repository["rows"] == out["rows_scored"] and repository["roc_auc_se"] > 0
    assert repository["roc_auc"] == pytest.approx(out["metrics"]["roc_auc"])
    table = run("evaluate", "--models", models, "--data", data)
    assert table.returncode == 0 and table.stdout.startswith(f"version 1 on {out['rows_scored']} mature rows")
    assert "Per repository" in table.stdout and "mean of repositories" in table.stdout
    missing = run("evaluate", "--models", models, "--version", "9", "--data", data)
    assert missing.returncode == 2 and "version 9 does not exist" in missing.stderr
    (models / "2" / "model.onnx").write_bytes(b"garbage")
    corrupt = run("evaluate", "--models", models, "--version", "2", "--data", data)
    assert corrupt.returncode == 2 and "sha256 does not match" in corrupt.stderr
    assert corrupt.stderr.count("\n") == 1


def test_evaluate_reports_every_repository_and_names_a_file_without_repository_id(
    tmp_path: Path, two_versions: Path, synthetic_commits_dir: Path
) -> None:
    anonymous = tmp_path / "kafka.csv"
    pd.read_csv(synthetic_commits_dir / "beta.csv", dtype=str).drop(columns="repository_id").to_csv(
        anonymous, index=False
    )
    small = tmp_path / "small.csv"
    pd.read_csv(synthetic_commits_dir / "gamma.csv", dtype=str).head(20).to_csv(small, index=False)
    result = run("evaluate", "--models", two_versions, "--data", anonymous, "--data", small, "--json",
                 "--label-delay-days", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    scored = {r["repository"]: r for r in out["repositories"]}
    assert "kafka" in scored and scored["kafka"]["rows"] == 1500 and scored["kafka"]["roc_auc"] > 0.5
    (tiny,) = [r for name, r in scored.items() if name != "kafka"]
    assert tiny["rows"] == 20 and tiny["skipped"] == "only 20 mature commits (needs 30)" and tiny["roc_auc"] is None
    assert out["repository_means"]["roc_auc"] == pytest.approx(scored["kafka"]["roc_auc"])
    assert out["rows_scored"] == 1520  # the pooled figures still use every mature row


def test_evaluate_refuses_missing_data_and_a_missing_champion(
    tmp_path: Path, two_versions: Path, synthetic_commits_dir: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(two_versions, models)
    nodata = run("evaluate", "--models", models, "--data", tmp_path / "none.csv")
    assert nodata.returncode == 2 and "no such file or folder" in nodata.stderr
    assert run("evaluate", "--models", models).returncode == 2  # --data is required
    (models / "champion").unlink()
    orphan = run("evaluate", "--models", models, "--data", synthetic_commits_dir / "alpha.csv")
    assert orphan.returncode == 2 and orphan.stderr.startswith("error: ") and orphan.stderr.count("\n") == 1
    assert "champion" in orphan.stderr and "--version" in orphan.stderr
