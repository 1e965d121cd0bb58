"""A range's rows for backfill scoring: --since and --range select from one walk of the whole history."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import DAY, T0, GitScript, build_history
from training.mining.backfill import range_rows
from training.mining.dataset import mine
from training.mining.repository import MiningError


def iso(day: float) -> str:
    return datetime.fromtimestamp(T0 + day * DAY, UTC).isoformat()


def test_since_selects_the_commits_authored_since_with_full_history_metrics(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    found = range_rows(script.path, since=iso(11))
    # c10 c11 m12 c13 c14 m15 c16 c17: two merges have no row
    assert found.commits == 8 and found.unscorable == 2 and len(found.rows) == 6
    assert [r.sha for r in found.rows][:2] == [sha["c10"], sha["c11"]]  # oldest first
    assert found.repository_id == "repo" and found.walked == int(script.git("rev-list", "--all", "--count"))
    mine(script.path, tmp_path / "all.csv", labels=False)
    with (tmp_path / "all.csv").open(newline="") as handle:
        mined = {r["commit_hash"]: r for r in csv.DictReader(handle)}
    for row in found.rows:  # the metrics a full mine computes: history before the range counts
        assert {k: float(v) for k, v in row.metrics.items()} == {k: float(mined[row.sha][k]) for k in row.metrics}


def test_a_range_is_reachable_from_b_and_not_from_a(script: GitScript) -> None:
    sha = build_history(script)
    found = range_rows(script.path, span=f"{sha['c9']}..{sha['c13']}", repository_id="demo")
    assert sorted(r.sha for r in found.rows) == sorted([sha["c10"], sha["c11"], sha["c13"]])
    assert found.unscorable == 1 and found.repository_id == "demo"  # m12
    assert range_rows(script.path, since=iso(0), rev=sha["c2"]).commits == 2  # --since ends at --rev


def test_a_mine_state_is_continued_and_not_written(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    state = tmp_path / "s.state"
    mine(script.path, tmp_path / "o.csv", state_path=state)
    before = state.read_bytes()
    script.write("src/core/App.java", script.read("src/core/App.java") + "int z = 1;\n")
    new = script.commit("Later", "zed@x.org", 40)
    found = range_rows(script.path, since=iso(39), state_path=state)
    assert found.walked == 1 and [r.sha for r in found.rows] == [new]
    assert state.read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({}, "--since/--range: give exactly one of them"),
     ({"since": "2024-01-01", "span": "a..b"}, "--since/--range: give exactly one of them"),
     ({"since": "yesterday"}, "--since: 'yesterday' is not an ISO date"),
     ({"span": "main"}, r"--range: expected A..B \(two revisions\), got 'main'"),
     ({"span": "a...b"}, r"--range: expected A..B \(two revisions\), got 'a...b'"),
     ({"span": "main..nope"}, "--range: 'nope' \\(in 'main..nope'\\) names no commit in the repository"),
     ({"since": "2024-01-01", "rev": "nope"}, "--rev: 'nope' names no commit")],
)  # fmt: skip
def test_bad_ranges_are_one_line_errors(script: GitScript, kwargs: dict[str, str], message: str) -> None:
    build_history(script)
    with pytest.raises(MiningError, match=f"^{message}"):
        range_rows(script.path, **kwargs)


def test_an_empty_repository_has_no_range(script: GitScript) -> None:
    with pytest.raises(MiningError, match="no commits yet"):
        range_rows(script.path, since="2024-01-01")
