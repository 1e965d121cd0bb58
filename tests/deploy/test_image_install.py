"""The `serve` image's install, replayed without Docker: the pinned closure + the project wheel, in a fresh venv.

No Docker daemon runs here, so this repeats the Dockerfile's `wheel` and `serve-venv` steps (test_dockerfile.py
pins those lines) and then runs the result: scikit-learn and evidently are absent, `commitrisk serve` works, and
the image's own HEALTHCHECK command passes against it — and fails while no model is loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import COMMITS_DIR, ROOT, build_model_version, free_port, stop_group, wait_for

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


def healthcheck(port: int) -> list[str]:
    """The serve stage's HEALTHCHECK command, aimed at `port`."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    serve = text.split(" AS serve\n", 1)[1]
    command: list[str] = json.loads(re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", serve, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return [c.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for c in command]


@pytest.fixture
def serving(serve_venv: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`commitrisk serve --workers 2` from the image's venv on an empty models dir; (port, models dir)."""
    models = tmp_path / "models"
    models.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMITRISK_", "VIRTUAL_ENV"))} | {
        "PATH": f"{serve_venv / 'bin'}:{os.environ['PATH']}",
        "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "COMMITRISK_POINTER_POLL_SECONDS": "0.2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    command = ["commitrisk", "serve", "--models", str(models), "--port", str(port), "--workers", "2"]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
    check = healthcheck(port)
    check[0] = str(serve_venv / "bin" / check[0])  # the image's `python` is the venv's
    assert subprocess.run(check, capture_output=True).returncode != 0  # live, but no model: unhealthy
    if not COMMITS_DIR.is_dir():
        pytest.skip(f"shared datasets not found at {COMMITS_DIR}")
    build_model_version(models, 1)  # published with its champion pointer: the workers pick it up
    wait_for(lambda: subprocess.run(check, capture_output=True).returncode == 0, "healthy", 60)
    body = {"ns": 1, "nd": 1, "nf": 1, "entropy": 0, "la": 5, "ld": 1, "ha": 1, "hd": 1, "lt": 120, "ndev": 2,
            "age": 30, "nuc": 3, "exp": 200, "rexp": 3.5, "sexp": 150}  # fmt: skip
    answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=body, timeout=10)
    assert answer.status_code == 200 and answer.json()["model_version"] == 1
