"""`commitrisk mine` as a command: options, the state file, notes on stderr, one-line errors and exit codes."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import ROOT, GitScript, blobless_clone, build_history
from training.cli import cli


def mine(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["mine", *map(str, args), "--no-progress"])
    return result.exit_code, result.stdout, result.stderr


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_mine_writes_the_csv_and_a_state_next_to_it(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out = tmp_path / "commits.csv"
    code, stdout, stderr = mine(script.path, "--out", out)
    assert code == 0, stderr
    assert stdout == ""  # the result is the file; stdout stays free for pipes
    assert len(rows(out)) == 14 and (tmp_path / "commits.csv.state").exists()
    walked = int(script.git("rev-list", "--all", "--count"))
    assert stderr.startswith(f"walked {walked} new commits in ") and stderr.endswith(f"; 14 rows → {out}\n")
    code, _, stderr = mine(script.path, "--out", out)
    assert code == 0 and stderr.startswith("walked 0 new commits")  # continued from the state


def test_no_state_and_an_explicit_state_path(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out = tmp_path / "a.csv"
    assert mine(script.path, "--out", out, "--no-state")[0] == 0
    assert not (tmp_path / "a.csv.state").exists()
    state = tmp_path / "states" / "repo.state"
    assert mine(script.path, "--out", out, "--state", state, "--repository-id", "demo", "--no-labels")[0] == 0
    assert state.exists() and not (tmp_path / "a.csv.state").exists()
    assert {r["commit_id"].split("_")[0] for r in rows(out)} == {"demo"}
    assert all(r["buggy"] == "false" for r in rows(out))
    code, _, stderr = mine(script.path, "--out", out, "--state", state)  # now with labels: other options
    assert code == 0 and f"{state}: mined with other options; mining from scratch\n" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--since", "last week"], "error: --since: 'last week' is not an ISO date"),
     (["--fix-shas", "/nonexistent/fixes.txt"], "error: /nonexistent/fixes.txt: "),
     (["--refs", "both"], "error: --refs: expected one of all, branches, tags, HEAD, got 'both'"),
     (["--szz", "loose"], "error: --szz: expected one of strict, plain, got 'loose'"),
     (["--fix-rule", "listed"], "error: --fix-rule: 'listed' marks only the fixes of --fix-shas FILE")],
)  # fmt: skip
def test_bad_options_are_one_line_errors_exit_2(
    script: GitScript, tmp_path: Path, args: list[str], message: str
) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    code, stdout, stderr = mine(script.path, "--out", tmp_path / "o.csv", *args)
    assert code == 2 and stdout == ""
    assert stderr.startswith(message) and stderr.count("\n") == 1


def test_bad_repositories_outputs_and_states_exit_2(script: GitScript, tmp_path: Path) -> None:
    assert mine(tmp_path, "--out", tmp_path / "o.csv") == (2, "", f"error: {tmp_path}: not a git repository\n")
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, stderr = mine(script.path, "--out", blocker / "out.csv")
    assert code == 2 and stderr.startswith(f"error: {blocker}") and stderr.count("\n") == 1
    state = tmp_path / "bad.state"
    state.write_text("junk")
    code, _, stderr = mine(script.path, "--out", tmp_path / "o.csv", "--state", state)
    assert code == 2 and stderr == f"error: {state}: not a commitrisk mining state file\n"


def test_worker_count_is_checked_by_the_option(script: GitScript, tmp_path: Path) -> None:
    code, _, stderr = mine(script.path, "--out", tmp_path / "o.csv", "--workers", "0")
    assert code == 2 and "--workers" in stderr
    assert not (tmp_path / "o.csv").exists()


def test_a_repository_without_commits_gets_a_header_and_a_note(script: GitScript, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    code, _, stderr = mine(script.path, "--out", out)
    assert code == 0 and stderr == f"{script.path}: no commits yet; wrote the header only to {out}\n"
    assert out.read_text().startswith("commit_id,") and rows(out) == []


def test_the_console_command_runs_mine(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out = tmp_path / "cli.csv"
    done = subprocess.run([sys.executable, "-m", "training", "mine", str(script.path), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(rows(out)) == 14
    assert (tmp_path / "cli.csv.state").exists()


def test_an_output_directory_and_an_unfetchable_object_are_one_line_exit_2(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    folder = tmp_path / "folder"
    folder.mkdir()
    expected = f"error: {folder}: is a directory (--out names the file to write)\n"
    assert mine(script.path, "--out", folder) == (2, "", expected)
    assert list(folder.iterdir()) == []
    clone = blobless_clone(script, tmp_path / "clone.git")
    subprocess.run(["git", "--git-dir", str(clone), "remote", "set-url", "origin", str(tmp_path / "gone")],
                   check=True)  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "training", "mine", str(clone), "--out", str(tmp_path / "o.csv"),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"error: {clone}: commit ") and "is missing and no promisor remote could provide it" in last
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.state").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone.git", "folder", "repo"]  # no temp file


def fleet_list(tmp_path: Path) -> Path:
    good = GitScript(tmp_path / "good")
    build_history(good)
    (tmp_path / "broken").mkdir()
    listed = tmp_path / "repos.txt"
    listed.write_text("good\nbroken\n")
    return listed


def test_fleet_mode_prints_a_summary_and_exits_1_when_a_repository_failed(tmp_path: Path) -> None:
    listed = fleet_list(tmp_path)
    code, stdout, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--jobs", "2")
    assert code == 1, stderr
    assert "Fleet mining" in stdout and "1 mined, 0 skipped, 1 failed" in stdout
    assert f"broken: {tmp_path}/broken: not a git repository\n1 of 2 repositories failed" in stderr
    assert stderr.endswith(f"1 of 2 repositories failed (logs: {tmp_path}/data/.fleet/<id>.log)\n")
    assert len(rows(tmp_path / "data" / "good.csv")) == 14
    code, stdout, _ = mine("--repos", listed, "--out-dir", tmp_path / "data")
    assert code == 1 and "0 mined, 1 skipped, 1 failed" in stdout


def test_index_mode_mines_one_entry_and_answers_in_json(tmp_path: Path) -> None:
    import json

    listed = fleet_list(tmp_path)
    code, stdout, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--index", "0", "--json")
    assert code == 0, stderr
    answer = json.loads(stdout)
    assert answer["repository_id"] == "good" and answer["status"] == "mined" and answer["rows"] == 14
    code, _, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--index", "0")
    assert code == 0 and stderr == "good: already mined at these refs; skipped\n"
    code, _, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--index", "1")
    assert code == 2 and stderr == f"error: {tmp_path}/broken: not a git repository\n"
    code, _, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--index", "2")
    assert code == 2 and stderr == f"error: --index: 2 is outside {listed}'s 2 repositories (0..1)\n"


def test_an_unreachable_url_exits_1_so_the_job_retries_it(tmp_path: Path) -> None:
    listed = tmp_path / "repos.txt"
    listed.write_text(f"file://{tmp_path}/gone.git\n")
    code, _, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--index", "0")
    assert code == 1 and stderr.startswith(f"error: file://{tmp_path}/gone.git: clone: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--repos", "r.txt"], "error: --repos: give --out-dir DIR"),
     (["--repos", "r.txt", "--out-dir", "d", "--state", "s"], "error: --repos: --fix-shas, --state, --no-state"),
     (["--repos", "r.txt", "--out-dir", "d", "--repository-id", "x"], "error: --repos: --fix-shas"),
     (["--out-dir", "d"], "error: --out-dir: only with --repos FILE"),
     (["--index", "0"], "error: --index: only with --repos FILE"),
     (["--json"], "error: --json: only with --repos FILE"),
     (["--repos", "missing.txt", "--out-dir", "d"], "error: missing.txt: No such file or directory"),
     (["--repos", "r.txt", "--out-dir", "s3:///x"], "error: --out-dir: 's3:///x' names no bucket")],
)  # fmt: skip
def test_fleet_options_that_do_not_fit_are_one_line_errors(args: list[str], message: str) -> None:
    code, _, stderr = mine(*args)
    assert code == 2 and stderr.startswith(message) and stderr.count("\n") == 1
