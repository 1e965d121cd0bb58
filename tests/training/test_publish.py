"""Publishing is atomic and pointers move atomically; failures leave nothing behind."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pandas as pd
import pytest

from app.contract import CHALLENGER_POINTER, HISTORY_FILE, MANIFEST_FILE, ModelManifest
from app.repository import ModelRepository
from training import publish


@pytest.fixture
def models(tmp_path: Path, trained_models: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(trained_models, target)
    return target


def manifest_of(models: Path, version: int) -> ModelManifest:
    return ModelManifest.model_validate_json((models / str(version) / MANIFEST_FILE).read_text())


def publish_copy(models: Path, promote: bool, fail: bool = False) -> ModelManifest:
    source = models / "1"

    def write_report(directory: Path, manifest: ModelManifest) -> None:
        (directory / "index.html").write_text(f"v{manifest.version}")
        if fail:
            raise RuntimeError("disk full")

    return publish.publish(
        models,
        manifest=manifest_of(models, 1),
        model_bytes=(source / "model.onnx").read_bytes(),
        reference=pd.read_parquet(source / "reference.parquet"),
        write_report=write_report,
        promote=promote,
    )


def test_trained_models_layout(trained_models: Path) -> None:
    assert publish.versions(trained_models) == [1, 2]
    assert publish.read_pointer(trained_models) == 1
    for version in (1, 2):
        directory = trained_models / str(version)
        assert {p.name for p in directory.iterdir()} == {"model.onnx", "manifest.json", "reference.parquet", "report"}
        assert manifest_of(trained_models, version).version == version
        assert len(pd.read_parquet(directory / "reference.parquet")) <= 5000
        assert (directory / "report" / "index.html").is_file()


def test_publish_takes_next_number_and_promotes_on_request(models: Path) -> None:
    assert publish_copy(models, promote=False).version == 3
    assert publish.read_pointer(models) == 1
    assert publish_copy(models, promote=True).version == 4
    assert publish.read_pointer(models) == 4
    assert (models / "4" / "report" / "index.html").read_text() == "v4"


def test_first_version_becomes_champion(tmp_path: Path, trained_models: Path) -> None:
    empty = tmp_path / "fresh"
    empty.mkdir()
    shutil.copytree(trained_models / "1", empty / "1")
    # a directory with one version but no pointer: the next publish without promote still gets a champion
    assert publish.read_pointer(empty) is None
    publish_copy(empty, promote=False)
    assert publish.read_pointer(empty) == 2


def test_failure_mid_publish_leaves_no_partial_version(models: Path) -> None:
    before = sorted(p.name for p in models.iterdir())
    with pytest.raises(RuntimeError, match="disk full"):
        publish_copy(models, promote=True, fail=True)
    assert sorted(p.name for p in models.iterdir()) == before
    assert publish.read_pointer(models) == 1


def test_pointer_moves_and_rollback(models: Path) -> None:
    publish.write_pointer(models, 2)
    assert publish.read_pointer(models) == 2
    assert publish.rollback(models) == 1
    assert publish.read_pointer(models) == 1
    with pytest.raises(publish.PublishError, match="does not exist"):
        publish.write_pointer(models, 9)
    assert publish.read_pointer(models) == 1
    history = [json.loads(line) for line in (models / HISTORY_FILE).read_text().splitlines()]
    assert [h["action"] for h in history][-2:] == ["promote", "rollback"]


def test_rollback_walks_back_over_pointer_moves_made_by_the_service(models: Path) -> None:
    older = publish_copy(models, promote=True).version
    newest = publish_copy(models, promote=True).version
    assert publish.read_pointer(models) == newest
    ModelRepository(models).set_pointer(older)  # what `POST /reload {"version": older}` does
    publish.write_pointer(models, 1)  # then an operator promotes 1 from the CLI
    assert publish.rollback(models) == older  # back to the champion before the promotion: the reloaded one
    history = [json.loads(line) for line in (models / HISTORY_FILE).read_text().splitlines()]
    assert [(h["version"], h["action"]) for h in history][-4:] == [
        (newest, "publish"), (older, "reload"), (1, "promote"), (older, "rollback")
    ]  # fmt: skip


def test_rollback_without_history_is_refused(tmp_path: Path, trained_models: Path) -> None:
    models = tmp_path / "m"
    shutil.copytree(trained_models, models)
    (models / HISTORY_FILE).unlink()
    with pytest.raises(publish.PublishError, match="no earlier champion"):
        publish.rollback(models)


def test_challenger_pointer_and_corrupt_pointer(models: Path) -> None:
    assert publish.read_pointer(models, CHALLENGER_POINTER) is None
    publish.write_pointer(models, 2, CHALLENGER_POINTER)
    assert publish.read_pointer(models, CHALLENGER_POINTER) == 2
    publish.clear_pointer(models, CHALLENGER_POINTER)
    assert publish.read_pointer(models, CHALLENGER_POINTER) is None
    (models / "champion").write_text("../etc")
    with pytest.raises(publish.PublishError, match="not a version number"):
        publish.read_pointer(models)


def _publish_in_child(models: str) -> int:
    return publish_copy(Path(models), promote=False).version


def test_concurrent_publishers_never_share_a_version(models: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        numbers = pool.map(_publish_in_child, [str(models)] * 4)
    assert sorted(numbers) == [3, 4, 5, 6]
    assert publish.versions(models) == [1, 2, 3, 4, 5, 6]
