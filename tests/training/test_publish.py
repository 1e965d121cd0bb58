"""Publishing a trained model: the version's contents, numbering and promotion through the repository."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.contract import FEATURES, HISTORY_FILE, MANIFEST_FILE, MODEL_FILE, ModelManifest
from app.repository import ModelRepository
from tests.support import build_model_version, synthetic_commits
from training import publish


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real (tiny) exported model version to publish copies of."""
    return build_model_version(tmp_path_factory.mktemp("source"), 1, point=False)


def publish_copy(models: Path, source: Path, promote: bool, fail: bool = False) -> ModelManifest:
    def write_report(directory: Path, manifest: ModelManifest) -> None:
        (directory / "index.html").write_text(f"v{manifest.version}")
        if fail:
            raise RuntimeError("disk full")

    return publish.publish(
        models,
        manifest=ModelManifest.model_validate_json((source / MANIFEST_FILE).read_bytes()),
        model_bytes=(source / MODEL_FILE).read_bytes(),
        reference=synthetic_commits()[list(FEATURES)].head(200),
        write_report=write_report,
        promote=promote,
    )


def test_a_published_version_holds_model_manifest_reference_and_report(tmp_path: Path, source: Path) -> None:
    models = tmp_path / "models"  # created by the first publish
    published = publish_copy(models, source, promote=False)
    directory = models / "1"
    assert {p.name for p in directory.iterdir()} == {"model.onnx", "manifest.json", "reference.parquet", "report"}
    assert published.version == 1 and ModelRepository(models).manifest(1) == published
    assert (directory / MODEL_FILE).read_bytes() == (source / MODEL_FILE).read_bytes()
    reference = pd.read_parquet(directory / "reference.parquet")
    assert list(reference.columns) == list(FEATURES) and len(reference) == 200
    assert (directory / "report" / "index.html").read_text() == "v1"  # the report sees the final number
    assert ModelRepository(models).pointer() == 1  # the first version becomes champion even unpromoted


def test_the_pipelines_versions_have_the_contract_layout(trained_models: Path) -> None:
    repo = ModelRepository(trained_models)
    assert repo.versions() == [1, 2] and repo.pointer() == 1
    for version in (1, 2):
        directory = trained_models / str(version)
        assert {p.name for p in directory.iterdir()} == {"model.onnx", "manifest.json", "reference.parquet", "report"}
        assert repo.manifest(version).version == version
        assert len(pd.read_parquet(directory / "reference.parquet")) <= 5000
        assert (directory / "report" / "index.html").is_file()


def test_publish_takes_the_next_number_and_promotes_on_request(tmp_path: Path, source: Path) -> None:
    models = tmp_path / "models"
    publish_copy(models, source, promote=True)
    assert publish_copy(models, source, promote=False).version == 2
    assert ModelRepository(models).pointer() == 1
    assert publish_copy(models, source, promote=True).version == 3
    assert ModelRepository(models).pointer() == 3
    actions = [m.action for m in ModelRepository(models).history()]
    assert actions == ["publish", "publish"] and (models / HISTORY_FILE).is_file()


def test_a_failure_mid_publish_leaves_no_partial_version(tmp_path: Path, source: Path) -> None:
    models = tmp_path / "models"
    publish_copy(models, source, promote=True)
    before = sorted(p.name for p in models.iterdir())
    with pytest.raises(RuntimeError, match="disk full"):
        publish_copy(models, source, promote=True, fail=True)
    assert sorted(p.name for p in models.iterdir()) == before
    assert ModelRepository(models).pointer() == 1


def test_repository_errors_become_one_line_publish_errors(tmp_path: Path, source: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(publish.PublishError, match=r"file/models: cannot lock for publishing"):
        publish_copy(tmp_path / "file" / "models", source, promote=True)
    models = tmp_path / "models"
    publish_copy(models, source, promote=True)
    (models / "champion").write_text("../etc\n")
    with pytest.raises(publish.PublishError, match=r"champion: pointer holds '\.\./etc', not a version number"):
        publish_copy(models, source, promote=False)
    assert ModelRepository(models).versions() == [1]  # refused before anything was written


def test_is_champion_reads_the_pointer_and_names_a_broken_one(tmp_path: Path, source: Path) -> None:
    models = tmp_path / "models"
    publish_copy(models, source, promote=True)
    publish_copy(models, source, promote=False)
    assert publish.is_champion(models, 1) and not publish.is_champion(models, 2)
    (models / "champion").write_text("../etc\n")
    with pytest.raises(publish.PublishError, match=r"pointer holds '\.\./etc', not a version number"):
        publish.is_champion(models, 1)
