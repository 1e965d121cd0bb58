"""requirements/*.txt: complete, consistent pinned closures of pyproject's dependency sets; serve has no sklearn."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from tests.support import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]
LOCKS = {
    "serve": PROJECT["dependencies"],
    "trainer": PROJECT["dependencies"] + EXTRAS["train"] + EXTRAS["monitor"] + EXTRAS["mlflow"] + EXTRAS["mine"],
    "build": PYPROJECT["build-system"]["requires"],
}
# What the serving image must never contain: the training stack and evidently (which pulls scikit-learn).
NOT_SERVING = {"scikit-learn", "skl2onnx", "onnx", "evidently", "scipy", "pandas", "matplotlib", "mlflow-skinny"}
PIN = re.compile(r"^([a-z0-9][a-z0-9.-]*)==([A-Za-z0-9.+!-]+)$")
STALE = "is stale: run `bash scripts/lock.sh` and commit requirements/"


def pins(name: str) -> dict[str, str]:
    """Package → version of one lock file (every non-comment line must be an exact pin)."""
    found: dict[str, str] = {}
    for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            match = PIN.match(line)
            assert match, f"requirements/{name}.txt: not an exact, normalised pin: {line!r}"
            found[match.group(1)] = match.group(2)
    return found


def resolve(requirements: list[str], constraints: Path) -> dict[str, str]:
    """What pip would install for `requirements` from scratch, held to `constraints` (PyPI, no install)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _resolve(requirements, constraints, Path(tmp) / "report.json")


def _resolve(requirements: list[str], constraints: Path, report: Path) -> dict[str, str]:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"]
    command += ["--only-binary=:all:", "--report", str(report), "-c", str(constraints), *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{constraints.name} {STALE}\n{result.stderr[-3000:]}"
    installed = json.loads(report.read_text())["install"]
    return {r["metadata"]["name"].lower().replace("_", "-"): r["metadata"]["version"] for r in installed}


def test_serving_lock_excludes_the_training_stack() -> None:
    serving = pins("serve")
    assert not NOT_SERVING & serving.keys(), NOT_SERVING & serving.keys()
    assert {"fastapi", "uvicorn", "onnxruntime", "psycopg", "sqlalchemy", "prometheus-client"} <= serving.keys()


def test_trainer_lock_has_the_training_and_monitoring_stack() -> None:
    assert {"scikit-learn", "skl2onnx", "onnx", "evidently", "mlflow-skinny", "onnxruntime"} <= pins("trainer").keys()
    assert {"pygit2", "enry-python"} <= pins("trainer").keys(), "the fleet mining Job runs `commitrisk mine` in it"


def test_shared_packages_have_the_same_version_in_both_images() -> None:
    serving, trainer = pins("serve"), pins("trainer")
    differ = {p: (v, trainer[p]) for p, v in serving.items() if p in trainer and trainer[p] != v}
    assert not differ, f"serve vs trainer: {differ} — a model trained with one onnxruntime, served with another"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOCKS))
def test_lock_is_the_exact_closure_of_pyproject(name: str) -> None:
    """Resolving pyproject's requirements under the lock gives exactly the lock: nothing missing, nothing extra."""
    locked = pins(name)
    resolved = resolve(LOCKS[name], ROOT / "requirements" / f"{name}.txt")
    assert resolved.keys() - locked.keys() == set(), f"requirements/{name}.txt {STALE} (unpinned packages)"
    assert locked.keys() - resolved.keys() == set(), f"requirements/{name}.txt {STALE} (packages no longer needed)"
    assert resolved == locked
    if name == "serve":
        assert "scikit-learn" not in resolved  # the serving install set, as pip resolves it


def test_lock_script_regenerates_every_lock_the_dockerfile_uses() -> None:
    script = (ROOT / "scripts" / "lock.sh").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in LOCKS:
        assert f'"{name}"' in script
        assert f"requirements/{name}.txt" in dockerfile


def test_a_constraint_outside_pyproject_ranges_is_reported_stale(tmp_path: Path) -> None:
    bad = tmp_path / "serve.txt"
    bad.write_text("fastapi==0.1.0\n")  # outside pyproject's fastapi>=0.115
    with pytest.raises(AssertionError, match="stale"):
        resolve(["fastapi>=0.115,<1"], bad)
