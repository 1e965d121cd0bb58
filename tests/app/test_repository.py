from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InvalidModel, InvalidVersion, ModelNotFound
from app.repository import ModelRepository, parse_version


def test_versions_and_pointer(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    (models_dir / "not-a-version").mkdir()
    (models_dir / "7").mkdir()  # no manifest: not published
    assert repo.versions() == [1, 2]
    assert repo.pointer() == 1
    assert repo.target() == 1
    assert repo.manifest(2).version == 2


def test_target_falls_back_to_latest_without_pointer(models_dir: Path) -> None:
    (models_dir / "champion").unlink()
    repo = ModelRepository(models_dir)
    assert repo.pointer() is None and repo.pointer_stamp() is None
    assert repo.target() == 2


def test_missing_directory_has_no_versions(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path / "absent")
    assert repo.versions() == [] and repo.target() is None


@pytest.mark.parametrize("name", ["../x", "0", "-1", "1.5", "01", "1/../2", "", " 1", "abc", "9999999999", True])
def test_bad_version_names_are_rejected(name: object) -> None:
    with pytest.raises(InvalidVersion):
        parse_version(name)  # type: ignore[arg-type]


def test_path_traversal_never_reaches_the_filesystem(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    with pytest.raises(InvalidVersion):
        repo.manifest("../models/1")
    with pytest.raises(ModelNotFound):
        repo.manifest(3)


def test_set_pointer_is_atomic_and_checked(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    before = repo.pointer_stamp()
    repo.set_pointer(2)
    assert repo.pointer() == 2
    assert repo.pointer_stamp() != before
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".champion")]  # no temp left behind
    with pytest.raises(ModelNotFound):
        repo.set_pointer(5)
    assert repo.pointer() == 2


def test_garbage_pointer_and_manifest_are_invalid_models(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    (models_dir / "champion").write_text("../../etc\n")
    with pytest.raises(InvalidModel):
        repo.pointer()
    (models_dir / "2" / "manifest.json").write_text('{"version": 2}')
    with pytest.raises(InvalidModel) as info:
        repo.manifest(2)
    assert any(d["field"] == "features" for d in info.value.details)


def test_the_challenger_pointer_may_list_several_versions(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    assert repo.pointer_list("challenger") == ()
    (models_dir / "challenger").write_text("2\n\n1\n")
    assert repo.pointer_list("challenger") == (2, 1) and repo.pointer("challenger") == 1  # newest last
    (models_dir / "champion").write_text("1\n2\n")
    with pytest.raises(InvalidModel, match="the champion is one version"):
        repo.pointer()
    (models_dir / "champion").write_text("\n")
    with pytest.raises(InvalidModel, match="empty"):
        repo.pointer()
    (models_dir / "challenger").write_bytes(b"2\n\xff\n")
    with pytest.raises(InvalidModel, match="cannot read pointer"):
        repo.pointer_list("challenger")
