"""Deployment steps move exactly the pointers they name; promote/rollback finish or undo them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.contract import CHALLENGER_POINTER, MANIFEST_FILE, MAX_CHALLENGERS, ModelManifest
from app.repository import ModelRepository
from tests.support import ADMIN_TOKEN, build_model_version, private_copy
from training.retrain import deploy


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 (champion, published as such) and 2 (unpromoted); read-only, tests copy it."""
    models = tmp_path_factory.mktemp("store") / "models"
    build_model_version(models, 1, point=False)
    build_model_version(models, 2, strength=0.001, point=False)
    ModelRepository(models).set_pointer(1, action="publish")
    return models


@pytest.fixture
def models(store: Path, tmp_path: Path) -> Path:
    return private_copy(store, tmp_path)


def pointers(models: Path) -> tuple[int | None, tuple[int, ...]]:
    """(champion, challengers) as the repository reads them."""
    repo = ModelRepository(models)
    return repo.pointer(), repo.pointer_list(CHALLENGER_POINTER)


def clone_version(models: Path, source: int, version: int) -> None:
    """Another published version (a copy of `source` under its own number)."""
    shutil.copytree(models / str(source), models / str(version))
    manifest = ModelManifest.model_validate_json((models / str(version) / MANIFEST_FILE).read_bytes())
    (models / str(version) / MANIFEST_FILE).write_text(
        manifest.model_copy(update={"version": version}).model_dump_json()
    )


def test_shadow_sets_only_the_challenger_and_promote_finishes_it(models: Path) -> None:
    done = deploy.deploy(models, 2, "shadow", None, None)
    assert (done.champion, done.challenger) == (1, 2) and pointers(models) == (1, (2,))
    promoted = deploy.promote(models, challenger=True)
    assert promoted.champion == 2 and "challenger 2 is now champion" in promoted.note
    assert pointers(models) == (2, ())


def test_promote_a_version_moves_only_the_champion(models: Path) -> None:
    deploy.deploy(models, 1, "shadow", None, None)
    done = deploy.promote(models, 2)
    assert (done.champion, done.note) == (2, "") and pointers(models) == (2, (1,))
    with pytest.raises(deploy.DeployError, match="VERSION: name the version"):
        deploy.promote(models)
    with pytest.raises(deploy.DeployError, match="version 9 does not exist"):
        deploy.promote(models, 9)
    assert pointers(models) == (2, (1,))


def test_rollback_undoes_the_newest_move_still_in_effect(models: Path) -> None:
    deploy.deploy(models, 2, "direct", None, None)
    deploy.deploy(models, 1, "shadow", None, None)
    dropped = deploy.rollback(models)
    assert "shadow challenger 1 dropped" in dropped.note and pointers(models) == (2, ())
    back = deploy.rollback(models)  # the drop is not a move to undo: the champion move before it is
    assert back.champion == 1 and pointers(models) == (1, ())


def test_rollback_after_a_champion_move_leaves_the_shadow_alone(models: Path) -> None:
    clone_version(models, 2, 3)
    deploy.deploy(models, 3, "shadow", None, None)
    deploy.promote(models, 2)  # the operator moves the champion while 3 is in shadow
    back = deploy.rollback(models)
    assert back.champion == 1 and back.challengers == (3,) and pointers(models) == (1, (3,))
    deploy.promote(models, 2)
    promoted = deploy.promote(models, challenger=True)  # 3 leaves the shadow and becomes champion
    assert promoted.champion == 3 and pointers(models) == (3, ())
    assert deploy.rollback(models).champion == 2  # undoes the promotion, not some older shadow step


def test_rollback_can_name_the_pointer(models: Path) -> None:
    clone_version(models, 2, 3)
    deploy.deploy(models, 2, "direct", None, None)
    deploy.deploy(models, 3, "shadow", None, None)
    back = deploy.rollback(models, pointer="champion")  # despite the newer shadow step
    assert back.champion == 1 and pointers(models) == (1, (3,))
    deploy.deploy(models, 1, "shadow", None, None)
    dropped = deploy.rollback(models, pointer="challenger")  # the newest listed
    assert dropped.challengers == (3,) and pointers(models) == (1, (3,))
    deploy.rollback(models, version=3)  # a version names a challenger
    assert pointers(models) == (1, ())
    with pytest.raises(deploy.DeployError, match="no challenger"):
        deploy.rollback(models, pointer="challenger")
    with pytest.raises(deploy.DeployError, match="VERSION: the champion goes back, not to 2"):
        deploy.rollback(models, pointer="champion", version=2)


def test_without_history_a_listed_challenger_is_the_step_to_undo(models: Path) -> None:
    (models / CHALLENGER_POINTER).write_text("2\n")  # written by hand, or before the history was kept
    (models / "pointer-history.jsonl").unlink()
    assert deploy.rollback(models).note == "shadow challenger 2 dropped"
    with pytest.raises(deploy.DeployError, match="no earlier champion version"):
        deploy.rollback(models)


def test_several_challengers_compete_and_the_oldest_is_evicted_beyond_the_bound(models: Path) -> None:
    for version in range(3, 3 + MAX_CHALLENGERS):
        clone_version(models, 2, version)
    for version in range(2, 2 + MAX_CHALLENGERS):
        done = deploy.deploy(models, version, "shadow", None, None)
    assert done.challengers == tuple(range(2, 2 + MAX_CHALLENGERS))
    assert pointers(models)[1] == done.challengers
    newest = 2 + MAX_CHALLENGERS
    done = deploy.deploy(models, newest, "shadow", None, None)
    assert done.challengers == tuple(range(3, newest + 1)) and "2 dropped" in done.note
    again = deploy.deploy(models, 3, "shadow", None, None)  # re-deploying moves it to the newest place
    assert again.challengers[-1] == 3 and len(again.challengers) == MAX_CHALLENGERS
    assert pointers(models)[0] == 1  # the champion never moved
    assert deploy.rollback(models).note == "shadow challenger 3 dropped"  # the newest shadow step


def test_promote_and_rollback_name_a_challenger_when_several_compete(models: Path) -> None:
    clone_version(models, 2, 3)
    deploy.deploy(models, 2, "shadow", None, None)
    deploy.deploy(models, 3, "shadow", None, None)
    with pytest.raises(deploy.DeployError, match=r"2 challengers \(2, 3\): name one with --challenger N"):
        deploy.promote(models, challenger=True)
    with pytest.raises(deploy.DeployError, match="version 1 is not a challenger"):
        deploy.promote(models, 1, challenger=True)
    promoted = deploy.promote(models, 2, challenger=True)
    assert promoted.champion == 2 and promoted.challengers == (3,) and "3 still compete" in promoted.note
    assert pointers(models) == (2, (3,))
    deploy.deploy(models, 1, "shadow", None, None)
    dropped = deploy.rollback(models, version=3)
    assert dropped.challengers == (1,) and pointers(models) == (2, (1,))
    deploy.rollback(models)  # the newest (only) challenger
    assert not (models / CHALLENGER_POINTER).exists() and pointers(models)[0] == 2
    with pytest.raises(deploy.DeployError, match="no challenger"):
        deploy.rollback(models, version=3)


def test_none_leaves_the_pointers(models: Path) -> None:
    done = deploy.deploy(models, 2, "none", None, None)
    assert done.mode == "none" and pointers(models) == (1, ())


def test_errors_name_the_problem(models: Path) -> None:
    with pytest.raises(deploy.DeployError, match="no challenger"):
        deploy.promote(models, challenger=True)
    with pytest.raises(deploy.DeployError, match="version 99 does not exist"):
        deploy.deploy(models, 99, "direct", None, None)
    (models / CHALLENGER_POINTER).write_text("x\n")
    with pytest.raises(deploy.DeployError, match="challenger: pointer holds 'x'"):
        deploy.deploy(models, 2, "shadow", None, None)
    with pytest.raises(deploy.DeployError, match="reload"):
        deploy.reload_service("http://127.0.0.1:9", "token")  # discard port: nothing listens


def test_direct_deploy_reloads_a_real_service(models: Path, serve: Callable[..., str]) -> None:
    url = serve(models)
    done = deploy.deploy(models, 2, "direct", url, ADMIN_TOKEN)
    assert done.reloaded is not None and done.reloaded["version"] == 2
    assert httpx.get(f"{url}/models").json()["served"]["version"] == 2
    with pytest.raises(deploy.DeployError, match="reload answered 403"):
        deploy.promote(models, 1, url=url, token="wrong")
    assert pointers(models)[0] == 1  # the pointer moved; the service refused only the immediate reload


def test_retrain_command_refuses_a_bad_period(tmp_path: Path) -> None:
    # (the `retrain` command's own test module is tests/training/cli/test_retrain.py once it exists)
    from typer.testing import CliRunner

    from training.cli import cli

    result = CliRunner().invoke(cli, ["retrain", "--models", str(tmp_path), "--every", "1w"])
    assert result.exit_code == 2 and "option --every" in result.output
