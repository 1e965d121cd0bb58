"""Paths and tool lookup for the deployment-artefact tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool(name: str, hint: str) -> str:
    """Path of a command-line tool (the venv's first); a missing one fails in CI and skips elsewhere."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found: {hint}")
        pytest.skip(f"{name} not found: {hint}")
    return found
