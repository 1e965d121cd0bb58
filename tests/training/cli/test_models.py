"""`commitrisk models list|promote|rollback`, run as the real console script against real model versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.contract import CHALLENGER_POINTER, MANIFEST_FILE
from app.repository import ModelRepository
from tests.support import ADMIN_TOKEN, ROOT, build_model_version, private_copy

CLI = [sys.executable, "-m", "training"]


def run(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COMMITRISK_")} | env
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120
    )


def ok(*args: str | Path, **env: str) -> str:
    """stdout of a command that must succeed with exactly one line."""
    result = run(*args, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1, result.stdout
    return result.stdout.strip()


def refused(*args: str | Path) -> str:
    """stderr of a command that must fail with one `error: …` line and exit 2."""
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 (champion, published as such), 2 and 3; read-only, tests copy it."""
    models = tmp_path_factory.mktemp("store") / "models"
    for version in (1, 2, 3):
        build_model_version(models, version, strength=10.0**-version, point=False)
    ModelRepository(models).set_pointer(1, action="publish")
    return models


@pytest.fixture
def models(store: Path, tmp_path: Path) -> Path:
    return private_copy(store, tmp_path)


def shadow(models: Path, *versions: int) -> None:
    """What `commitrisk retrain --deploy shadow` leaves behind: challengers in shadow, recorded as such."""
    ModelRepository(models).set_pointer_list(versions, CHALLENGER_POINTER, action="shadow")


def pointers(models: Path) -> tuple[int | None, tuple[int, ...]]:
    repo = ModelRepository(models)
    return repo.pointer(), repo.pointer_list(CHALLENGER_POINTER)


def test_list_shows_versions_roles_and_broken_manifests(models: Path) -> None:
    shadow(models, 3)
    listing = json.loads(run("models", "list", "--models", models, "--json").stdout)
    assert [(v["version"], v["roles"]) for v in listing["versions"]] == [
        (1, ["champion"]),
        (2, []),
        (3, ["challenger"]),
    ]
    assert listing["versions"][0]["model_type"] == "logreg" and listing["versions"][0]["test_rows"] > 0
    (models / "2" / MANIFEST_FILE).write_text('{"version": 2}')
    (models / "7").mkdir()  # no manifest: not a version
    listing = json.loads(run("models", "list", "--models", models, "--json").stdout)
    assert [v["version"] for v in listing["versions"]] == [1, 2, 3]
    assert "invalid manifest" in listing["versions"][1]["error"]
    table = run("models", "list", "--models", models).stdout
    assert "champion" in table and "challenger" in table and "logreg" in table


def test_promote_a_version_and_roll_back(models: Path) -> None:
    assert ok("models", "promote", "2", "--models", models) == "champion -> 2"
    assert ok("models", "promote", "3", "--models", models) == "champion -> 3"
    assert ok("models", "rollback", "--models", models) == "champion -> 2"
    assert ok("models", "rollback", "--models", models) == "champion -> 3"  # a rollback is undone by the next
    assert "version 7 does not exist" in refused("models", "promote", "7", "--models", models)
    assert refused("models", "promote", "--models", models).startswith("error: VERSION: name the version")
    assert pointers(models) == (3, ())


def test_promote_and_roll_back_shadow_challengers(models: Path) -> None:
    assert "no challenger pointer: nothing to promote" in refused(
        "models", "promote", "--challenger", "--models", models
    )
    shadow(models, 2)
    assert ok("models", "promote", "--challenger", "--models", models) == "champion -> 2 (challenger 2 is now champion)"
    assert ok("models", "rollback", "--models", models) == "champion -> 1"  # undoes the promotion
    shadow(models, 2, 3)
    assert "2 challengers (2, 3): name one with --challenger N" in refused(
        "models", "promote", "--challenger", "--models", models
    )
    assert "version 1 is not a challenger" in refused("models", "promote", "--challenger", "1", "--models", models)
    done = ok("models", "promote", "--challenger", "3", "--models", models)
    assert done == "champion -> 3 (challenger 3 is now champion; 2 still compete in shadow)"
    shadow(models, 2, 1)
    assert ok("models", "rollback", "--models", models) == "champion -> 3 (shadow challenger 1 dropped)"
    assert (
        ok("models", "rollback", "--challenger", "2", "--models", models)
        == "champion -> 3 (shadow challenger 2 dropped)"
    )
    assert pointers(models) == (3, ())


def test_rollback_can_name_the_pointer_and_refuses_mixed_options(models: Path) -> None:
    assert ok("models", "promote", "2", "--models", models) == "champion -> 2"
    shadow(models, 3)
    assert ok("models", "rollback", "--champion", "--models", models) == "champion -> 1"
    assert pointers(models) == (1, (3,))  # the shadow step stays
    assert refused("models", "rollback", "3", "--models", models).startswith(
        "error: VERSION: rollback takes one only with --challenger"
    )
    assert refused("models", "rollback", "--champion", "--challenger", "--models", models) == (
        "error: --champion/--challenger: name one pointer"
    )
    (models / CHALLENGER_POINTER).write_text("../x\n")
    assert refused("models", "rollback", "--challenger", "--models", models) == (
        f"error: {models / CHALLENGER_POINTER}: pointer holds '../x', not a version number"
    )


def test_the_old_top_level_spellings_are_gone(models: Path) -> None:
    for command in ("promote", "rollback"):
        result = run(command, "--models", models)
        assert result.returncode == 2 and "No such command" in result.stderr


def test_a_champion_move_tells_the_service_to_reload(models: Path, serve: Callable[..., str]) -> None:
    url = serve(models)
    done = ok("models", "promote", "2", "--models", models, "--url", url, "--token", ADMIN_TOKEN)
    assert done == f"champion -> 2 ({url} serves version 2)"
    assert httpx.get(f"{url}/models").json()["served"]["version"] == 2
    # The URL and token also come from the environment, as in the retrain job.
    back = ok("models", "rollback", "--models", models, COMMITRISK_SERVICE_URL=url, COMMITRISK_ADMIN_TOKEN=ADMIN_TOKEN)
    assert back == f"champion -> 1 ({url} serves version 1)"
    wrong = run("models", "promote", "3", "--models", models, "--url", url, "--token", "wrong")
    assert wrong.returncode == 2 and wrong.stderr.startswith(f"error: {url}/reload answered 403")
