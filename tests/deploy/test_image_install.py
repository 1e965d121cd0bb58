"""The `serve` image's install, replayed without Docker: the pinned closure + the project wheel, in a fresh venv.

No Docker daemon runs here, so this repeats the Dockerfile's `wheel` and `serve-venv` steps (test_dockerfile.py
checks the Dockerfile does exactly these) and then runs the result: scikit-learn and evidently are absent, the
serve image's own CMD starts the service with the image's environment, and the image's own HEALTHCHECK command
passes against it — and fails while no model is loaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, Dockerfile, build_model_version, free_port, stop_group, wait_for

IMAGE = Dockerfile.read(ROOT / "Dockerfile")
PORT = "8000"  # the port the serve image's CMD binds and its HEALTHCHECK asks

pytestmark = pytest.mark.slow


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serve stage: build the wheel with the pinned build requirements, install the serving lock + wheel."""
    tmp = tmp_path_factory.mktemp("image")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "app", "training"):  # what .dockerignore lets through
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, src / name)
    pip = ("-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:")
    run(sys.executable, "-m", "venv", tmp / "build")
    run(tmp / "build/bin/python", *pip, "-r", ROOT / "requirements/build.txt")
    wheels = tmp / "wheels"
    run(tmp / "build/bin/python", "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", wheels, src)  # fmt: skip
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin/python", *pip, "-r", ROOT / "requirements/serve.txt")
    run(venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", *wheels.glob("commitrisk-*.whl"))
    run(venv / "bin/python", "-m", "pip", "check")
    return venv


def in_image(command: list[str], port: int) -> list[str]:
    """One of the serve image's exec-form commands, aimed at `port` instead of the image's PORT."""
    return [
        c.replace(f"127.0.0.1:{PORT}", f"127.0.0.1:{port}").replace(f"--port {PORT}", f"--port {port}") for c in command
    ]


@pytest.fixture
def serving(serve_venv: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The serve image's CMD, run from the image's venv with the image's ENV on an empty models dir."""
    models = tmp_path / "models"
    models.mkdir()
    port = free_port()
    cmd = IMAGE.last("serve", "CMD")
    assert cmd is not None and isinstance(cmd.args, list)
    image = IMAGE.env("serve")
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith(("COMMITRISK_", "VIRTUAL_ENV"))}
        | image
        | {
            # What a container gets from its volumes and `docker run -e` instead: writable paths here, two workers.
            "PATH": f"{serve_venv / 'bin'}:{os.environ['PATH']}",
            "COMMITRISK_MODELS_DIR": str(models),
            "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
            "COMMITRISK_WORKERS": "2",
            "COMMITRISK_POINTER_POLL_SECONDS": "0.2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        }
    )
    assert image["COMMITRISK_MODELS_DIR"] and image["COMMITRISK_DATABASE_URL"]  # the image sets what we replace
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        in_image(cmd.args, port), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200, "live", 60)
        yield port, models
    finally:
        stop_group(process)


def test_serving_environment_has_no_training_stack(serve_venv: Path) -> None:
    modules = ("sklearn", "skl2onnx", "onnx", "evidently", "pandas", "scipy")
    probe = f"import importlib.util as u; print([m for m in {modules!r} if u.find_spec(m)])"
    assert run(serve_venv / "bin/python", "-c", probe).strip() == "[]"
    assert "serve" in run(serve_venv / "bin/commitrisk", "--help")


def test_healthcheck_follows_readiness(serving: tuple[int, Path], serve_venv: Path) -> None:
    port, models = serving
    health = IMAGE.last("serve", "HEALTHCHECK")
    assert health is not None and isinstance(health.args, list)
    check = in_image(health.args, port)
    check[0] = str(serve_venv / "bin" / check[0])  # the image's `python` is the venv's
    assert subprocess.run(check, capture_output=True).returncode != 0  # live, but no model: unhealthy
    build_model_version(models, 1)  # published with its champion pointer: the workers pick it up
    wait_for(lambda: subprocess.run(check, capture_output=True).returncode == 0, "healthy", 60)
    body = {"ns": 1, "nd": 1, "nf": 1, "entropy": 0, "la": 5, "ld": 1, "ha": 1, "hd": 1, "lt": 120, "ndev": 2,
            "age": 30, "nuc": 3, "exp": 200, "rexp": 3.5, "sexp": 150}  # fmt: skip
    # The check reached one worker; the other follows the pointer on its own poll (COMMITRISK_POINTER_POLL_SECONDS).
    url = f"http://127.0.0.1:{port}/predict"
    wait_for(lambda: all(httpx.post(url, json=body, timeout=10).status_code == 200 for _ in range(8)), "scoring", 60)
    answer = httpx.post(url, json=body, timeout=10)
    assert answer.status_code == 200 and answer.json()["model_version"] == 1
