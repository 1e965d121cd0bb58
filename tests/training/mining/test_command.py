"""`commitrisk mine` and `commitrisk score` end to end on real repositories (and a real local server)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, GitScript, PredictServer, build_history, prediction
from training.mining.command import run_mine, run_score
from training.mining.repository import MiningError, open_repository
from training.mining.writer import COLUMNS


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def grow(script: GitScript, start_day: int) -> None:
    """More history on top of build_history: a branch off an old commit is *not* made here."""
    script.write("lib/Helpers.py", script.read("lib/Helpers.py").replace("h1 = 1\n", ""))
    script.commit("Fix helper off-by-one", "bob@x.org", start_day)  # blames c8 (which added h1)
    script.switch("topic", create=True)
    script.write("src/core/App.java", script.read("src/core/App.java") + "int a99 = 99;\n")
    script.commit("Topic work", "carol@x.org", start_day + 1)
    script.switch("main")
    script.merge("topic", "Merge topic", "bob@x.org", start_day + 2)


def test_a_second_mine_continues_and_equals_a_full_mine(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    state, out = tmp_path / "mine.state", tmp_path / "part.csv"
    assert run_mine(script.path, out, state_path=state, progress=False) == 0
    first = read(out)
    assert len(first) == 14
    grow(script, 20)
    assert run_mine(script.path, out, state_path=state, progress=False) == 0
    full = tmp_path / "full.csv"
    assert run_mine(script.path, full, progress=False) == 0
    assert out.read_bytes() == full.read_bytes()
    rows = {r["commit_hash"]: r for r in read(full)}
    assert len(rows) == 16
    assert rows[sha["c8"]]["buggy"] == "true"  # labelled by a fix mined in the second run
    fix = next(h for h, r in rows.items() if r["commit_message"] == "Fix helper off-by-one")
    assert rows[sha["c8"]]["fixed_by"] == fix


def test_a_branch_off_an_old_commit_falls_back_to_a_full_mine(
    script: GitScript, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sha = build_history(script)
    state, out = tmp_path / "mine.state", tmp_path / "out.csv"
    assert run_mine(script.path, out, state_path=state, progress=False) == 0
    script.git("branch", "old", sha["c5"])
    script.switch("old")
    script.write("src/core/App.java", script.read("src/core/App.java") + "int late = 1;\n")
    script.commit("Late work on an old base", "dave@x.org", 30)
    assert run_mine(script.path, out, state_path=state, progress=False) == 0
    assert "re-mining" in capfd.readouterr().err
    full = tmp_path / "full.csv"
    assert run_mine(script.path, full, progress=False) == 0
    assert out.read_bytes() == full.read_bytes()


def test_a_deleted_branch_disappears_from_a_continued_mine(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    script.switch("doomed", create=True)
    text = script.read("src/core/App.java").splitlines(keepends=True)
    script.write("src/core/App.java", "".join(text[:3] + text[4:]))  # deletes line 4 (from c1)
    doomed = script.commit("Fix a4 on a doomed branch", "bob@x.org", 20)
    script.switch("main")
    state, out = tmp_path / "mine.state", tmp_path / "out.csv"
    assert run_mine(script.path, out, state_path=state, progress=False) == 0
    assert {r["commit_hash"]: r["fixed_by"] for r in read(out)}[sha["c1"]] == f"{sha['c7']};{doomed}"
    script.git("branch", "-D", "doomed")
    assert run_mine(script.path, out, state_path=state, progress=False) == 0
    full = tmp_path / "full.csv"
    assert run_mine(script.path, full, progress=False) == 0
    assert out.read_bytes() == full.read_bytes()
    assert {r["commit_hash"]: r["fixed_by"] for r in read(out)}[sha["c1"]] == sha["c7"]


def test_options_since_fix_list_and_branches(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    fixes = tmp_path / "fixes.txt"
    fixes.write_text(f"# tracker\n{sha['c13']}\n")
    out = tmp_path / "out.csv"
    assert run_mine(script.path, out, since="2020-09-26", fix_shas=fixes, progress=False,
                    repository_id="demo") == 0  # fmt: skip
    rows = read(out)
    assert {r["commit_hash"] for r in rows} == {sha[n] for n in ("c13", "c14", "c16", "c17")}
    assert {r["commit_hash"] for r in rows if r["is_fix_commit"] == "true"} == {sha["c13"]}
    assert all(r["commit_id"] == f"demo_{r['commit_hash']}" for r in rows)
    script.git("branch", "-D", "feature", "ff")
    script.switch("side", create=True)
    script.write("side.py", "x = 1\n")
    side = script.commit("side", "e@x.org", 40)
    script.switch("main")
    assert run_mine(script.path, out, branches="HEAD", progress=False) == 0
    assert side not in {r["commit_hash"] for r in read(out)}
    assert run_mine(script.path, out, branches="all", labels=False, progress=False) == 0
    assert side in {r["commit_hash"] for r in read(out)}
    assert all(r["buggy"] == "false" for r in read(out))  # --no-labels


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"since": "last week"}, "error: --since: 'last week' is not an ISO date"),
     ({"fix_shas": Path("/nonexistent/fixes.txt")}, "error: /nonexistent/fixes.txt:"),
     ({"branches": "both"}, "error: --branches: expected 'all' or 'HEAD'")],
)  # fmt: skip
def test_bad_options_are_one_line_errors(
    script: GitScript, tmp_path: Path, capfd: pytest.CaptureFixture[str], kwargs: dict, message: str
) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    assert run_mine(script.path, tmp_path / "o.csv", progress=False, **kwargs) == 2
    err = capfd.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_an_unwritable_output_is_a_one_line_error(
    script: GitScript, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert run_mine(script.path, blocker / "out.csv", progress=False) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_not_a_repository_and_shallow_clones_exit_2(
    script: GitScript, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run_mine(tmp_path, tmp_path / "o.csv", progress=False) == 2
    assert capfd.readouterr().err == f"error: {tmp_path}: not a git repository\n"
    for day in range(2):
        script.write("a.py", f"x = {day}\n")
        script.commit("c", "a@x.org", day)
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{script.path}", str(clone)], check=True)
    assert run_score(clone, "http://127.0.0.1:9") == 2
    assert "shallow clone" in capfd.readouterr().err
    state = tmp_path / "bad.state"
    state.write_text("junk")
    assert run_mine(script.path, tmp_path / "o.csv", state_path=state, progress=False) == 2
    assert "not a commitrisk mining state file" in capfd.readouterr().err


def test_a_repository_without_commits_writes_the_header_only(script: GitScript, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    assert run_mine(script.path, out, state_path=tmp_path / "s", progress=False) == 0
    assert read(out) == []
    assert run_score(script.path, "http://127.0.0.1:9") == 2  # nothing to score is an error for score


def test_mining_this_projects_own_repository(tmp_path: Path) -> None:
    try:
        repo = open_repository(ROOT)
    except MiningError as exc:  # e.g. a CI checkout made with --depth 1
        pytest.skip(str(exc))
    out = tmp_path / "own.csv"
    assert run_mine(ROOT, out, state_path=None, progress=False) == 0
    rows = read(out)
    if not repo.is_empty and not repo.head_is_unborn:
        assert all(repo.get(r["commit_hash"]) is not None for r in rows)
        assert all(int(r["nf"]) >= 1 for r in rows)


def test_score_posts_head_and_gates_ci(
    script: GitScript, tmp_path: Path, predict_server: PredictServer, capfd: pytest.CaptureFixture[str]
) -> None:
    sha = build_history(script)
    predict_server.answer = prediction("medium")
    assert run_score(script.path, predict_server.url, repository_id="demo") == 0
    out = capfd.readouterr().out
    assert out.startswith(f"commit {sha['c17'][:12]}: medium risk (probability 0.50")
    body = predict_server.requests[-1]["body"]
    assert isinstance(body, dict)
    assert (body["commit_id"], body["repository"], body["la"], body["exp"]) == (
        f"demo_{sha['c17']}",
        "demo",
        2,
        6,
    )
    assert run_score(script.path, predict_server.url, fail_above="medium") == 1
    assert run_score(script.path, predict_server.url, fail_above="high") == 0
    capfd.readouterr()
    assert run_score(script.path, predict_server.url, rev=sha["c7"], as_json=True) == 0
    assert json.loads(capfd.readouterr().out)["risk_band"] == "medium"
    assert predict_server.requests[-1]["body"]["nuc"] == 5  # type: ignore[index]
    assert run_score(script.path, predict_server.url, rev=sha["m12"]) == 0  # a merge: nothing to score
    assert "is a merge commit: nothing to score" in capfd.readouterr().err
    assert run_score(script.path, predict_server.url, fail_above="low") == 2
    assert capfd.readouterr().err == "error: --fail-above: expected 'medium' or 'high', got 'low'\n"
    predict_server.status = 500
    predict_server.answer = {"error": {"type": "InternalError", "message": "boom", "details": []}}
    assert run_score(script.path, predict_server.url) == 2
    assert capfd.readouterr().err == f"error: {predict_server.url}/predict: HTTP 500 InternalError: boom\n"


def test_score_reuses_the_mining_state(script: GitScript, tmp_path: Path, predict_server: PredictServer) -> None:
    sha = build_history(script)
    state = tmp_path / "mine.state"
    assert run_mine(script.path, tmp_path / "o.csv", state_path=state, progress=False) == 0
    script.write("lib/Helpers.py", script.read("lib/Helpers.py") + "h10 = 10\n")
    new = script.commit("More helpers", "alice@x.org", 19)
    assert run_score(script.path, predict_server.url, state_path=state) == 0
    assert predict_server.requests[-1]["body"]["commit_id"] == f"repo_{new}"  # type: ignore[index]
    assert predict_server.requests[-1]["body"]["nuc"] == 6  # type: ignore[index]
    assert run_score(script.path, predict_server.url, rev=sha["c16"], state_path=state) == 0
    assert predict_server.requests[-1]["body"]["exp"] == 8  # type: ignore[index]


def test_the_cli_runs_mine(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out = tmp_path / "cli.csv"
    done = subprocess.run([sys.executable, "-m", "training", "mine", str(script.path), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(read(out)) == 14
    assert (tmp_path / "cli.csv.state").exists()


@pytest.mark.slow
def test_mine_train_serve_score_end_to_end(tmp_path: Path) -> None:
    """Mined output feeds `commitrisk train` unchanged; the served model then scores a commit via `score`."""
    import socket
    import time

    import httpx

    from bench.make_repo import build

    repo = tmp_path / "generated"
    build(repo, 1500, seed=11)
    data = tmp_path / "commits.csv"
    assert run_mine(repo, data, state_path=None, progress=False) == 0
    rows = read(data)
    assert len(rows) > 1000 and any(r["buggy"] == "true" for r in rows)
    models = tmp_path / "models"
    train = [sys.executable, "-m", "training", "train", "--data", str(data), "--models", str(models),
             "--family", "logistic_regression", "--budget", "1", "--min-test-roc-auc", "0"]  # fmt: skip
    done = subprocess.run(train, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("service did not become ready")
        newest = max(rows, key=lambda r: int(r["author_date"]))["commit_hash"]
        score = [sys.executable, "-m", "training", "score", "--url", url, "--repo", str(repo), "--rev", newest,
                 "--json"]  # fmt: skip
        done = subprocess.run(score, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["commit_id"] == f"generated_{newest}"
        assert answer["risk_band"] in ("low", "medium", "high") and 0 <= answer["probability"] <= 1
        gate = subprocess.run([*score[:-1], "--fail-above", "medium"], capture_output=True, text=True, cwd=ROOT)
        assert gate.returncode == (0 if answer["risk_band"] == "low" else 1), gate.stderr
        assert gate.stdout.startswith(f"commit {newest[:12]}: {answer['risk_band']} risk")
    finally:
        server.terminate()
        server.wait(timeout=30)
