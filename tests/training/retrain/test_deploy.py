"""Deployment steps move exactly the pointers they name; promote/rollback finish or undo a shadow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.contract import CHALLENGER_POINTER, MANIFEST_FILE, MAX_CHALLENGERS, ModelManifest
from training import publish
from training.retrain import deploy


@pytest.fixture
def models(trained_models: Path, tmp_path: Path) -> Path:
    """Versions 1 (champion) and 2 of the session's trained models, private copy."""
    target = tmp_path / "models"
    shutil.copytree(trained_models, target)
    return target


def test_shadow_sets_only_the_challenger_and_promote_finishes_it(models: Path) -> None:
    done = deploy.deploy(models, 2, "shadow", None, None)
    assert (done.champion, done.challenger) == (1, 2)
    assert publish.read_pointer(models) == 1 and publish.read_pointer(models, CHALLENGER_POINTER) == 2
    promoted = deploy.promote(models, None, None)
    assert promoted.champion == 2
    assert publish.read_pointer(models) == 2 and publish.read_pointer(models, CHALLENGER_POINTER) is None


def test_rollback_drops_a_shadow_first_then_moves_the_champion_back(models: Path) -> None:
    deploy.deploy(models, 2, "direct", None, None)
    deploy.deploy(models, 1, "shadow", None, None)
    dropped = deploy.rollback(models, None, None)
    assert "dropped" in dropped.note and publish.read_pointer(models, CHALLENGER_POINTER) is None
    assert publish.read_pointer(models) == 2
    back = deploy.rollback(models, None, None)
    assert back.champion == 1 and publish.read_pointer(models) == 1


def clone_version(models: Path, source: int, version: int) -> None:
    """Another published version (a copy of `source` under its own number)."""
    shutil.copytree(models / str(source), models / str(version))
    manifest = ModelManifest.model_validate_json((models / str(version) / MANIFEST_FILE).read_bytes())
    (models / str(version) / MANIFEST_FILE).write_text(
        manifest.model_copy(update={"version": version}).model_dump_json()
    )


def test_several_challengers_compete_and_the_oldest_is_evicted_beyond_the_bound(models: Path) -> None:
    for version in range(3, 3 + MAX_CHALLENGERS):
        clone_version(models, 2, version)
    for version in range(2, 2 + MAX_CHALLENGERS):
        done = deploy.deploy(models, version, "shadow", None, None)
    assert done.challengers == tuple(range(2, 2 + MAX_CHALLENGERS))
    assert publish.read_pointer_list(models, CHALLENGER_POINTER) == done.challengers
    newest = 2 + MAX_CHALLENGERS
    done = deploy.deploy(models, newest, "shadow", None, None)
    assert done.challengers == tuple(range(3, newest + 1)) and "2 dropped" in done.note
    again = deploy.deploy(models, 3, "shadow", None, None)  # re-deploying moves it to the newest place
    assert again.challengers[-1] == 3 and len(again.challengers) == MAX_CHALLENGERS
    assert publish.read_pointer(models) == 1  # the champion never moved


def test_promote_and_rollback_name_a_challenger_when_several_compete(models: Path) -> None:
    clone_version(models, 2, 3)
    deploy.deploy(models, 2, "shadow", None, None)
    deploy.deploy(models, 3, "shadow", None, None)
    with pytest.raises(deploy.DeployError, match=r"2 challengers \(2, 3\): name one with --challenger"):
        deploy.promote(models, None, None)
    with pytest.raises(deploy.DeployError, match="version 1 is not a challenger"):
        deploy.promote(models, None, None, 1)
    promoted = deploy.promote(models, None, None, 2)
    assert promoted.champion == 2 and promoted.challengers == (3,) and "3 still compete" in promoted.note
    assert publish.read_pointer(models) == 2 and publish.read_pointer_list(models, CHALLENGER_POINTER) == (3,)
    deploy.deploy(models, 1, "shadow", None, None)
    dropped = deploy.rollback(models, None, None, 3)
    assert dropped.challengers == (1,) and publish.read_pointer_list(models, CHALLENGER_POINTER) == (1,)
    deploy.rollback(models, None, None)  # the newest (only) challenger
    assert not (models / CHALLENGER_POINTER).exists() and publish.read_pointer(models) == 2
    with pytest.raises(deploy.DeployError, match="no challenger"):
        deploy.rollback(models, None, None, 3)


def test_none_leaves_the_pointers(models: Path) -> None:
    done = deploy.deploy(models, 2, "none", None, None)
    assert done.mode == "none" and publish.read_pointer(models) == 1


def test_errors_name_the_problem(models: Path) -> None:
    with pytest.raises(deploy.DeployError, match="no challenger"):
        deploy.promote(models, None, None)
    with pytest.raises(deploy.DeployError, match="does not exist"):
        deploy.deploy(models, 99, "direct", None, None)
    with pytest.raises(deploy.DeployError, match="reload"):
        deploy.reload_service("http://127.0.0.1:9", "token")  # discard port: nothing listens


def test_promote_and_rollback_commands(models: Path) -> None:
    from typer.testing import CliRunner

    from training.cli import cli

    runner = CliRunner()
    nothing = runner.invoke(cli, ["promote", "--models", str(models)])
    assert nothing.exit_code == 2 and "no challenger" in nothing.output
    deploy.deploy(models, 2, "shadow", None, None)
    done = runner.invoke(cli, ["promote", "--models", str(models)])
    assert done.exit_code == 0 and "champion -> 2" in done.output
    back = runner.invoke(cli, ["rollback", "--models", str(models)])
    assert back.exit_code == 0 and "champion -> 1" in back.output
    clone_version(models, 2, 3)
    deploy.deploy(models, 2, "shadow", None, None)
    deploy.deploy(models, 3, "shadow", None, None)
    ambiguous = runner.invoke(cli, ["promote", "--models", str(models)])
    assert ambiguous.exit_code == 2 and "name one with --challenger" in ambiguous.output
    chosen = runner.invoke(cli, ["promote", "--models", str(models), "--challenger", "3"])
    assert chosen.exit_code == 0 and "champion -> 3" in chosen.output and "2 still compete" in chosen.output
    dropped = runner.invoke(cli, ["rollback", "--models", str(models), "--challenger", "2"])
    assert dropped.exit_code == 0 and "challenger 2 dropped" in dropped.output


def test_retrain_command_refuses_a_bad_period(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from training.cli import cli

    result = CliRunner().invoke(cli, ["retrain", "--models", str(tmp_path), "--every", "1w"])
    assert result.exit_code == 2 and "option --every" in result.output
