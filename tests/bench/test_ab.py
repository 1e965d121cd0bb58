"""bench/ab.py: which servers it compares, the order rounds measure them in, and the paired ratios."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.ab import LOG_OFF, THIS, order, paired, servers
from bench.servers import ROOT


def test_this_checkout_is_the_base_and_every_tree_and_the_log_off_server_follow(tmp_path: Path) -> None:
    other = tmp_path / "old"
    git = ["git", "-C", str(ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(other), "HEAD"], check=True, capture_output=True)
    try:
        compared = servers([other], log_off=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        assert list(compared) == [THIS, f"`{other}` at {head.stdout.strip()}", LOG_OFF]
        assert compared[THIS] == (ROOT, {}) and compared[LOG_OFF] == (ROOT, {"COMMITRISK_PREDICTION_LOG": "false"})
        assert list(compared.values())[1] == (other, {})
    finally:
        subprocess.run([*git, "remove", "--force", str(other)], check=True, capture_output=True)


def test_a_tree_that_is_not_a_checkout_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=f"--tree: {tmp_path}: no app/__main__.py"):
        servers([tmp_path], log_off=False)


def test_rounds_alternate_the_order_so_no_server_always_runs_first() -> None:
    names = ["a", "b", "c"]
    assert [order(names, i) for i in range(3)] == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]


def test_ratios_are_paired_with_the_base_round_by_round() -> None:
    ratios = paired({"base": [100.0, 200.0], "other": [110.0, 180.0]})
    assert ratios == {"base": [1.0, 1.0], "other": [1.1, 0.9]}
