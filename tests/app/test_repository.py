"""The models directory: one rule for versions, atomic pointers and publishing, the pointer history."""

from __future__ import annotations

import multiprocessing
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, HISTORY_FILE, MANIFEST_FILE, MODEL_FILE, ModelManifest
from app.errors import InvalidModel, InvalidVersion, ModelNotFound, RepositoryError
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


def copy_of(source: Path) -> Callable[[Path, int], ModelManifest]:
    """A `build` for `ModelRepository.publish`: the files of an existing version, renumbered."""

    def build(directory: Path, version: int) -> ModelManifest:
        manifest = ModelManifest.model_validate_json((source / MANIFEST_FILE).read_bytes())
        final = manifest.model_copy(update={"version": version})
        shutil.copy(source / MODEL_FILE, directory / MODEL_FILE)
        (directory / MANIFEST_FILE).write_text(final.model_dump_json())
        return final

    return build


def history(models_dir: Path) -> list[tuple[str, int | None, str]]:
    return [(m.pointer, m.version, m.action) for m in ModelRepository(models_dir).history()]


def test_one_rule_for_what_a_version_is(models_dir: Path) -> None:
    (models_dir / "3").mkdir()  # a numbered folder without a manifest (a half-done copy): not a version
    (models_dir / "4").write_text("a file")
    shutil.copytree(models_dir / "1", models_dir / ".staging-5-abc")  # hidden: a publish in progress
    repo = ModelRepository(models_dir)
    assert repo.versions() == [1, 2]
    with pytest.raises(ModelNotFound, match="version 3 does not exist"):
        repo.version_dir(3)


def test_publish_stages_then_renames_and_takes_the_next_number(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    seen: list[object] = []

    def build(directory: Path, version: int) -> ModelManifest:
        # While a version is being written, readers see neither it nor its number.
        seen.extend([repo.versions(), (models_dir / str(version)).exists(), directory.name.startswith(".")])
        return copy_of(models_dir / "2")(directory, version)

    published = repo.publish(build)
    assert published.version == 3 and seen == [[1, 2], False, True]
    assert repo.versions() == [1, 2, 3] and repo.manifest(3) == published
    assert repo.pointer() == 1  # not promoted: the champion stays
    assert repo.publish(copy_of(models_dir / "2"), promote=True).version == 4
    assert repo.pointer() == 4 and history(models_dir)[-1] == ("champion", 4, "publish")
    assert oct((models_dir / "4").stat().st_mode & 0o777) == oct(0o755)  # readable by the service's user
    assert not [p.name for p in models_dir.iterdir() if p.name.startswith(".staging")]


def test_the_first_version_becomes_champion_and_leftovers_keep_their_numbers(tmp_path: Path, models_dir: Path) -> None:
    fresh = ModelRepository(tmp_path / "fresh" / "models")
    (tmp_path / "fresh" / "models").mkdir(parents=True)
    (fresh.root / "7").mkdir()  # a leftover numbered folder: never renamed onto, never counted
    (fresh.root / ".staging-3-x1y2").mkdir()  # abandoned by a publisher that was killed mid-write
    assert fresh.publish(copy_of(models_dir / "1")).version == 8
    assert fresh.versions() == [8] and fresh.pointer() == 8
    assert sorted(p.name for p in fresh.root.iterdir()) == [".publish.lock", "7", "8", "champion", HISTORY_FILE]


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d, v: (d / MANIFEST_FILE).unlink(), "cannot read the manifest"),
        (lambda d, v: (d / MODEL_FILE).unlink(), "no model.onnx"),
        (lambda d, v: (d / MANIFEST_FILE).write_text("{}"), "invalid manifest"),
        (lambda d, v: (d / MANIFEST_FILE).write_text(_renumbered(d, v + 1)), "expected"),
    ],
)
def test_an_incomplete_or_failed_version_is_never_published(
    models_dir: Path, spoil: Callable[[Path, int], object], message: str
) -> None:
    repo = ModelRepository(models_dir)
    before = sorted(p.name for p in models_dir.iterdir())

    def build(directory: Path, version: int) -> None:
        copy_of(models_dir / "1")(directory, version)
        spoil(directory, version)

    with pytest.raises(InvalidModel, match=message):
        repo.publish(build, promote=True)
    with pytest.raises(RuntimeError, match="disk full"):
        repo.publish(fail_midway, promote=True)
    assert sorted(p.name for p in models_dir.iterdir()) == sorted([*before, ".publish.lock"])
    assert repo.pointer() == 1 and repo.versions() == [1, 2]


def fail_midway(directory: Path, version: int) -> None:
    (directory / MODEL_FILE).write_bytes(b"half")
    raise RuntimeError("disk full")


def _renumbered(directory: Path, version: int) -> str:
    manifest = ModelManifest.model_validate_json((directory / MANIFEST_FILE).read_bytes())
    return manifest.model_copy(update={"version": version}).model_dump_json()


def _publish_in_child(root: str) -> int:
    repo = ModelRepository(Path(root))
    return repo.publish(copy_of(Path(root) / "1")).version


def test_concurrent_publishers_in_other_processes_never_share_a_number(models_dir: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        numbers = pool.map(_publish_in_child, [str(models_dir)] * 6)
    assert sorted(numbers) == [3, 4, 5, 6, 7, 8]
    assert ModelRepository(models_dir).versions() == [1, 2, 3, 4, 5, 6, 7, 8]


def test_pointer_lists_clearing_and_their_history(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    repo.set_pointer_list([2, 1], CHALLENGER_POINTER, action="shadow")
    assert repo.pointer_list(CHALLENGER_POINTER) == (2, 1) and repo.pointer(CHALLENGER_POINTER) == 1
    with pytest.raises(ModelNotFound, match="version 9 does not exist"):
        repo.set_pointer_list([2, 9], CHALLENGER_POINTER, action="shadow")
    assert repo.pointer_list(CHALLENGER_POINTER) == (2, 1)  # unchanged
    with pytest.raises(ValueError, match="unknown pointer"):
        repo.set_pointer(1, "latest")
    with pytest.raises(ValueError, match="the champion is one version, not 0"):
        repo.clear_pointer(CHAMPION_POINTER)
    repo.clear_pointer(CHALLENGER_POINTER)
    repo.clear_pointer(CHALLENGER_POINTER)  # absent is fine
    assert not (models_dir / CHALLENGER_POINTER).exists() and repo.pointer_list(CHALLENGER_POINTER) == ()
    moves = repo.history(CHALLENGER_POINTER)
    assert [(m.versions, m.version, m.action) for m in moves] == [
        ([2, 1], 1, "shadow"),
        (None, None, "clear"),
        (None, None, "clear"),
    ]
    assert repo.history(CHAMPION_POINTER) == []


def test_rollback_walks_the_history_past_moves_made_elsewhere(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    with pytest.raises(ModelNotFound, match="no earlier champion"):
        repo.rollback()  # the fixture wrote the pointer without a history
    repo.set_pointer(1, action="publish")
    repo.set_pointer(2)  # POST /reload {"version": 2}
    repo.set_pointer(1, action="promote")
    assert repo.rollback() == 2 and repo.pointer() == 2
    assert repo.rollback() == 1  # a second rollback undoes the first
    shutil.rmtree(models_dir / "2")
    with pytest.raises(ModelNotFound, match="no earlier champion"):
        repo.rollback()  # the only earlier version is gone
    assert history(models_dir)[-2:] == [("champion", 2, "rollback"), ("champion", 1, "rollback")]


def test_a_corrupt_history_is_an_invalid_model(models_dir: Path) -> None:
    repo = ModelRepository(models_dir)
    repo.set_pointer(2)
    with open(models_dir / HISTORY_FILE, "a") as fh:
        fh.write("\n{not json\n")
    with pytest.raises(InvalidModel, match=r"pointer-history.jsonl: line 3 is not a pointer move"):
        repo.rollback()
    assert repo.pointer() == 2


def test_a_pointer_naming_a_missing_version(models_dir: Path) -> None:
    (models_dir / "champion").write_text("9\n")
    repo = ModelRepository(models_dir)
    assert repo.pointer() == 9 and repo.target() == 9  # read as written; loading it is what fails
    with pytest.raises(ModelNotFound, match="version 9 does not exist"):
        repo.model_path(repo.pointer() or 0)


def test_an_unwritable_directory_is_a_repository_error(tmp_path: Path, models_dir: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(RepositoryError, match="cannot lock for publishing"):
        ModelRepository(tmp_path / "file" / "models").publish(copy_of(models_dir / "1"))
    repo = ModelRepository(models_dir)
    (models_dir / "challenger").mkdir()  # something that cannot be replaced by a file
    with pytest.raises(RepositoryError, match="challenger: cannot move the pointer"):
        repo.set_pointer(2, CHALLENGER_POINTER)
    (models_dir / HISTORY_FILE).mkdir()
    with pytest.raises(RepositoryError, match="pointer moved, not recorded"):
        repo.set_pointer(2)
    assert repo.pointer() == 2


@pytest.mark.parametrize("name", ["1\n", "1\r\n", " 1", True, pytest.param(10**5000, id="huge"), 2.0, None])
def test_only_a_plain_positive_integer_is_a_version(name: object) -> None:
    with pytest.raises(InvalidVersion):
        parse_version(name)  # type: ignore[arg-type]


def test_an_unreadable_models_directory_is_a_repository_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # an OSError other than "absent" (ELOOP), the same for root as for a service user
    repo = ModelRepository(loop)
    for read in (repo.versions, repo.target, repo.pointer_stamp):
        with pytest.raises(RepositoryError, match="loop"):
            read()
    # Permission errors (EACCES) need a process without root's override: tests/faults/test_models_dir.py.
