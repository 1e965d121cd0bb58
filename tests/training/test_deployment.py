"""Deployment steps move exactly the pointers they name; promote/rollback finish or undo a shadow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.contract import CHALLENGER_POINTER
from training import deployment, publish


@pytest.fixture
def models(trained_models: Path, tmp_path: Path) -> Path:
    """Versions 1 (champion) and 2 of the session's trained models, private copy."""
    target = tmp_path / "models"
    shutil.copytree(trained_models, target)
    return target


def test_shadow_sets_only_the_challenger_and_promote_finishes_it(models: Path) -> None:
    done = deployment.deploy(models, 2, "shadow", None, None)
    assert (done.champion, done.challenger) == (1, 2)
    assert publish.read_pointer(models) == 1 and publish.read_pointer(models, CHALLENGER_POINTER) == 2
    promoted = deployment.promote(models, None, None)
    assert promoted.champion == 2
    assert publish.read_pointer(models) == 2 and publish.read_pointer(models, CHALLENGER_POINTER) is None


def test_rollback_drops_a_shadow_first_then_moves_the_champion_back(models: Path) -> None:
    deployment.deploy(models, 2, "direct", None, None)
    deployment.deploy(models, 1, "shadow", None, None)
    dropped = deployment.rollback(models, None, None)
    assert "dropped" in dropped.note and publish.read_pointer(models, CHALLENGER_POINTER) is None
    assert publish.read_pointer(models) == 2
    back = deployment.rollback(models, None, None)
    assert back.champion == 1 and publish.read_pointer(models) == 1


def test_none_leaves_the_pointers(models: Path) -> None:
    done = deployment.deploy(models, 2, "none", None, None)
    assert done.mode == "none" and publish.read_pointer(models) == 1


def test_errors_name_the_problem(models: Path) -> None:
    with pytest.raises(deployment.DeployError, match="no challenger"):
        deployment.promote(models, None, None)
    with pytest.raises(deployment.DeployError, match="does not exist"):
        deployment.deploy(models, 99, "direct", None, None)
    with pytest.raises(deployment.DeployError, match="reload"):
        deployment.reload_service("http://127.0.0.1:9", "token")  # discard port: nothing listens


def test_promote_and_rollback_commands(models: Path) -> None:
    from typer.testing import CliRunner

    from training.cli import cli

    runner = CliRunner()
    nothing = runner.invoke(cli, ["promote", "--models", str(models)])
    assert nothing.exit_code == 2 and "no challenger" in nothing.output
    deployment.deploy(models, 2, "shadow", None, None)
    done = runner.invoke(cli, ["promote", "--models", str(models)])
    assert done.exit_code == 0 and "champion -> 2" in done.output
    back = runner.invoke(cli, ["rollback", "--models", str(models)])
    assert back.exit_code == 0 and "champion -> 1" in back.output


def test_retrain_command_refuses_a_bad_period(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from training.cli import cli

    result = CliRunner().invoke(cli, ["retrain", "--models", str(tmp_path), "--every", "1w"])
    assert result.exit_code == 2 and "option --every" in result.output
