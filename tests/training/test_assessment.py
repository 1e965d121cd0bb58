"""`commitrisk evaluate`'s logic: load a published version with its integrity checked, score it on other data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.contract import CHALLENGER_POINTER, MANIFEST_FILE, MODEL_FILE, ModelManifest
from app.repository import ModelRepository
from tests.support import build_model_version, private_copy, synthetic_commits
from training.assessment import ScoringError, list_versions, load_version, score_version


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 (champion) and 2, real tiny models; read-only, tests copy it."""
    models = tmp_path_factory.mktemp("store") / "models"
    build_model_version(models, 1, point=True)
    build_model_version(models, 2, kind="forest", point=False)
    return models


@pytest.fixture
def models(store: Path, tmp_path: Path) -> Path:
    return private_copy(store, tmp_path)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled commits the models never saw: the newest 900 of `synthetic_commits()` (they train on the oldest
    80%), in the shared CSV format."""
    path = tmp_path_factory.mktemp("other") / "newest.csv"
    synthetic_commits().tail(900).to_csv(path, index=False)
    return path


def test_load_version_defaults_to_the_champion_and_checks_integrity(models: Path) -> None:
    version, manifest, model_bytes = load_version(models, None)
    assert version == 1 and manifest.version == 1
    assert model_bytes == (models / "1" / MODEL_FILE).read_bytes()
    assert load_version(models, 2)[1].model_type == "forest"


@pytest.mark.parametrize(
    ("spoil", "version", "message"),
    [
        (None, 9, r"models: version 9 does not exist"),
        (lambda m: (m / "champion").unlink(), None, "no champion pointer; pass --version"),
        (lambda m: (m / "champion").write_text("1\n2\n"), None, "lists 2 versions; the champion is one version"),
        (lambda m: (m / "champion").write_text("9\n"), None, "version 9 does not exist"),
        (lambda m: (m / "1" / MODEL_FILE).write_bytes(b"x"), None, "model.onnx: sha256 does not match the manifest"),
        (lambda m: (m / "1" / MODEL_FILE).unlink(), None, "model.onnx: cannot read"),
        (lambda m: (m / "1" / MANIFEST_FILE).write_text("{}"), 1, "manifest.json: invalid manifest"),
        (lambda m: _reorder_features(m / "1"), 1, "model features .* differ from"),
    ],
)
def test_load_version_refuses_what_it_cannot_trust(
    models: Path, spoil: Callable[[Path], object] | None, version: int | None, message: str
) -> None:
    if spoil is not None:
        spoil(models)
    with pytest.raises(ScoringError, match=message):
        load_version(models, version)


def _reorder_features(directory: Path) -> None:
    manifest = ModelManifest.model_validate_json((directory / MANIFEST_FILE).read_bytes())
    reordered = manifest.model_copy(update={"features": list(reversed(manifest.features))})
    (directory / MANIFEST_FILE).write_text(reordered.model_dump_json())


def test_score_version_on_other_labelled_data(models: Path, other_data: Path) -> None:
    result = score_version(models, None, [other_data], label_delay_days=90)
    assert result.version == 1 and result.rows_scored > 0 and result.immature_dropped > 0
    assert result.rows_scored + result.immature_dropped == 900
    assert result.metrics.roc_auc is not None and 0.5 < result.metrics.roc_auc <= 1  # it learned something real
    assert result.own_test == ModelRepository(models).manifest(1).test_metrics
    assert result.as_json()["metrics"]["rows"] == result.rows_scored
    with pytest.raises(ScoringError, match="no mature rows to score"):
        score_version(models, 2, [other_data], label_delay_days=100_000)


def test_score_version_reports_each_repository_with_a_confidence_interval(models: Path, other_data: Path) -> None:
    result = score_version(models, None, [other_data], label_delay_days=90, min_rows=30)
    frame = synthetic_commits().tail(900)
    assert [r.repository for r in result.repositories] == sorted(frame["repository_id"].unique())
    assert sum(r.rows for r in result.repositories) == result.rows_scored
    for r in result.repositories:
        assert r.skipped is None and r.roc_auc is not None and 0.5 < r.roc_auc <= 1
        assert r.roc_auc_se is not None and 0 < r.roc_auc_se < 0.1 and r.popt is not None
    assert result.mean("roc_auc") == pytest.approx(sum(r.roc_auc for r in result.repositories) / 3)  # type: ignore[misc]
    strict = score_version(models, None, [other_data], label_delay_days=90, min_rows=10_000)
    assert all(r.skipped and r.skipped.startswith("only ") for r in strict.repositories)
    assert strict.mean("roc_auc") is None and strict.metrics == result.metrics  # pooled figures stay


def test_list_versions_gives_roles_and_errors(models: Path) -> None:
    ModelRepository(models).set_pointer_list([2], CHALLENGER_POINTER, action="shadow")
    (models / "3").mkdir()  # no manifest: not a version
    listing = list_versions(models)
    assert [(v["version"], v["roles"]) for v in listing["versions"]] == [(1, ["champion"]), (2, ["challenger"])]
    assert listing["versions"][1]["model_type"] == "forest" and listing["models_dir"] == str(models)
    (models / "2" / MANIFEST_FILE).write_text('{"version": 2}')
    (models / "champion").write_text("garbage\n")
    listing = list_versions(models)
    assert listing["versions"][0]["roles"] == []  # an unreadable pointer gives no role
    error = listing["versions"][1]["error"]
    assert error.startswith(f"{models / '2' / MANIFEST_FILE}: invalid manifest") and "Field required" in error
