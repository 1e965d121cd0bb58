"""The models directory misbehaving under a real server: unreadable (permissions), and a promotion written by
another user. The server runs without root's permission override (tests.support.no_dac_override), so file modes
apply to it as they would to a service user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.contract import FEATURES
from tests.support import ADMIN_TOKEN, REPO, Service, build_model_version, no_dac_override, tool, wait_for

COMMIT = dict.fromkeys(FEATURES, 1.0)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can reach (pytest's own temp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="commitrisk-faults-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def models(shared_dir: Path) -> Path:
    models = shared_dir / "models"
    build_model_version(models, 1)
    build_model_version(models, 2, strength=0.01, point=False)
    return models


def test_an_unreadable_models_directory_is_503_and_scoring_goes_on(models: Path) -> None:
    server = Service(models, models.parent, prefix=no_dac_override())
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            models.chmod(0o000)
            try:
                answers = {
                    "GET /models": client.get("/models"),
                    "GET /models/1": client.get("/models/1"),
                    "GET v2 version 2 ready": client.get("/v2/models/commitrisk/versions/2/ready"),
                    "POST /reload version 2": client.post("/reload", json={"version": 2}, headers=ADMIN),
                    "POST /reload": client.post("/reload", headers=ADMIN),
                    "POST /monitoring/drift/refresh": client.post("/monitoring/drift/refresh", headers=ADMIN),
                }
                for what, response in answers.items():
                    assert response.status_code == 503, (what, response.text)
                    error = response.json()["error"]
                    assert error["type"] == "RepositoryError" and "Permission denied" in error["message"], what
                assert str(models) not in answers["GET /models"].text  # no admin token: the path stays hidden
                assert client.post("/predict", json=COMMIT).status_code == 200  # the loaded model serves on
                assert client.get("/health/ready").status_code == 200
            finally:
                models.chmod(0o755)
            (models / "2").chmod(0o000)  # one version unreadable: listed with its error, never a 500
            try:
                listed = {v["version"]: v for v in client.get("/models").json()["versions"]}
                assert "Permission denied" in listed[2]["error"] and "error" not in listed[1]
                assert client.get("/models/2").status_code == 503
            finally:
                (models / "2").chmod(0o755)
            assert client.get("/models").status_code == 200  # readable again: back by itself
            assert client.post("/reload", json={"version": 2}, headers=ADMIN).json()["version"] == 2
        assert server.status_500s() == 0
    finally:
        server.stop()


def test_a_promotion_written_by_another_user_is_followed(models: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    models.chmod(0o777)  # a volume both users write to
    server = Service(models, models.parent, prefix=no_dac_override())  # the service: not the promoter's user
    try:
        assert httpx.get(f"{server.url}/health/ready").json()["model_version"] == 1
        operator = [tool("setpriv", "util-linux"), "--reuid=65534", "--regid=65534", "--clear-groups"]
        promote = [sys.executable, "-m", "training", "models", "promote", "2", "--models", str(models)]
        env = {**os.environ, "HOME": str(models.parent), "COMMITRISK_SERVICE_URL": server.url}
        done = subprocess.run(  # a strict umask: mkstemp's 0600 was the bug, the umask must not bring it back
            [*operator, *promote, "--token", ADMIN_TOKEN], cwd=REPO, env=env, umask=0o077,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        pointer = models / "champion"
        assert pointer.stat().st_uid == 65534 and pointer.stat().st_mode & 0o444 == 0o444  # not 0600
        wait_for(lambda: httpx.get(f"{server.url}/health/ready").json()["model_version"] == 2, "version 2", 30)
        assert server.status_500s() == 0
    finally:
        server.stop()
