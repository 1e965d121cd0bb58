"""`mine --jobs N`: one real process per repository (the Indexed Job's command), outcomes and peak memory."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support import two_repositories
from training.mining.dataset import mine
from training.mining.fleet import FleetEntry, FleetOptions, read_repos
from training.mining.launcher import JobOutcome, index_command, run_fleet


def test_the_index_command_is_the_pods_plus_json(tmp_path: Path) -> None:
    options = FleetOptions(refs="branches", labels=False, since="2024-01-01", workers=3, checkpoint=10)
    command = index_command(tmp_path / "r.txt", tmp_path / "d", 4, options, tmp_path / "c")
    assert command[:4] == [sys.executable, "-m", "training", "mine"]
    joined = " ".join(command)
    for part in (
        f"--repos {tmp_path}/r.txt",
        f"--out-dir {tmp_path}/d",
        "--index 4",
        "--json",
        "--refs branches",
        "--no-labels",
        "--workers 3",
        "--checkpoint 10",
        "--since 2024-01-01",
        f"--cache-dir {tmp_path}/c",
    ):
        assert part in joined  # fmt: skip


def test_every_repository_runs_in_its_own_process_and_a_broken_one_fails_alone(tmp_path: Path) -> None:
    two_repositories(tmp_path)
    (tmp_path / "broken").mkdir()
    listed = tmp_path / "repos.txt"
    listed.write_text(f"one\nbroken\nfile://{tmp_path}/two two\n")
    out_dir, heard = tmp_path / "data", []
    outcomes = run_fleet(listed, read_repos(listed), out_dir, FleetOptions(), 2, done=heard.append)
    assert [(o.repository_id, o.status) for o in outcomes] == [("one", "mined"), ("broken", "failed"), ("two", "mined")]
    assert sorted(o.repository_id for o in heard) == ["broken", "one", "two"]
    assert outcomes[1].error == f"{tmp_path}/broken: not a git repository"
    assert all(o.peak_rss_mib > 10 for o in outcomes)  # measured by the kernel, per process
    for o in (outcomes[0], outcomes[2]):
        assert o.rows == 15 and o.walked > 15 and o.seconds > 0 and o.rate > 0
        single = tmp_path / f"{o.repository_id}-alone.csv"
        mine(tmp_path / o.repository_id, single, repository_id=o.repository_id)
        assert (out_dir / f"{o.repository_id}.csv").read_bytes() == single.read_bytes()
    assert "not a git repository" in (out_dir / ".fleet" / "broken.log").read_text()
    again = run_fleet(listed, read_repos(listed), out_dir, FleetOptions(), 2)
    assert [o.status for o in again] == ["skipped", "failed", "skipped"]


def test_a_process_that_fails_is_reported_with_its_error_line(tmp_path: Path) -> None:
    listed = tmp_path / "repos.txt"
    listed.write_text("/nowhere only\n")
    entries = [FleetEntry("/nowhere", "only"), FleetEntry("/nowhere", "beyond")]  # index 1: outside the list
    outcomes = run_fleet(listed, entries, tmp_path / "data", FleetOptions(), 1)
    assert outcomes[0] == JobOutcome("only", "failed", peak_rss_mib=outcomes[0].peak_rss_mib,
                                     error="/nowhere: no such directory")  # fmt: skip
    assert outcomes[1].error.startswith("--index: 1 is outside")
    assert outcomes[0].rate == 0.0
