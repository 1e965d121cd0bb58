"""`python -m training` is the `commitrisk` command (images and tests run it this way)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_python_m_training_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "training", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Just-in-time defect prediction" in done.stdout and "mine" in done.stdout


def test_its_errors_keep_the_command_exit_codes() -> None:
    command = [
        sys.executable,
        "-m",
        "training",
        "mine",
        "/nonexistent/repo",
        "--no-state",
        "--out",
        "/nonexistent/o.csv",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr == "error: /nonexistent/repo: no such directory\n"
