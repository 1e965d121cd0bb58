"""`commitrisk score`, `replay` and `feedback import` against real services, real repositories, bad inputs."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.monitoring.store import Store
from tests.support import (
    ADMIN_TOKEN,
    ROOT,
    GitScript,
    PredictServer,
    build_history,
    build_model_version,
    free_port,
    wait_for,
)
from tests.support import prediction as answer
from training.cli import cli


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def labelled_csv(path: Path, rows: int, source: Path) -> Path:
    """The first `rows` commits of a synthetic dataset file (the shared CSV format)."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return path


# ---- score ---------------------------------------------------------------------------------------------------


def test_score_prints_the_verdict_and_gates_ci(script: GitScript, predict_server: PredictServer) -> None:
    sha = build_history(script)
    predict_server.answer = answer("medium")
    result = invoke("score", "--url", predict_server.url, "--repo", script.path, "--repository-id", "demo")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"commit {sha['c17'][:12]}: medium risk (probability 0.50, threshold 0.40, model v3)\n"
        "  - la = 120 (median 10) raises risk\n"
        f"  details: {predict_server.url}/ui/commits/x\n"  # the commit's web page (the stub answers commit_id x)
    )
    body = predict_server.requests[-1]["body"]
    assert isinstance(body, dict)
    assert (body["commit_id"], body["repository"], body["la"], body["exp"]) == (f"demo_{sha['c17']}", "demo", 2, 6)
    at_medium = invoke("score", "--url", predict_server.url, "--repo", script.path, "--fail-above", "medium")
    assert at_medium.exit_code == 1 and at_medium.stdout.startswith(f"commit {sha['c17'][:12]}: medium risk")
    assert invoke("score", "--url", predict_server.url, "--repo", script.path, "--fail-above", "high").exit_code == 0


def test_score_json_and_another_revision(script: GitScript, predict_server: PredictServer) -> None:
    sha = build_history(script)
    predict_server.answer = answer("high")
    result = invoke("score", "--url", predict_server.url, "--repo", script.path, "--rev", sha["c7"], "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == answer("high")
    assert predict_server.requests[-1]["body"]["nuc"] == 5  # type: ignore[index]


def test_a_merge_commit_has_nothing_to_score(script: GitScript, predict_server: PredictServer) -> None:
    sha = build_history(script)
    result = invoke("score", "--url", predict_server.url, "--repo", script.path, "--rev", sha["m12"],
                    "--fail-above", "medium")  # fmt: skip
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == f"commit {sha['m12'][:12]} is a merge commit: nothing to score\n"
    assert predict_server.requests == []  # nothing was sent


def test_score_reuses_a_mining_state(script: GitScript, tmp_path: Path, predict_server: PredictServer) -> None:
    build_history(script)
    state = tmp_path / "mine.state"
    assert invoke("mine", script.path, "--out", tmp_path / "o.csv", "--state", state, "--no-progress").exit_code == 0
    script.write("lib/Helpers.py", script.read("lib/Helpers.py") + "h10 = 10\n")
    new = script.commit("More helpers", "alice@x.org", 19)
    assert invoke("score", "--url", predict_server.url, "--repo", script.path, "--state", state).exit_code == 0
    assert predict_server.requests[-1]["body"]["commit_id"] == f"repo_{new}"  # type: ignore[index]
    assert predict_server.requests[-1]["body"]["nuc"] == 6  # type: ignore[index]


def test_service_failures_are_one_line_exit_2(script: GitScript, predict_server: PredictServer) -> None:
    build_history(script)
    predict_server.status = 500
    predict_server.answer = {"error": {"type": "InternalError", "message": "boom", "details": []}}
    result = invoke("score", "--url", predict_server.url, "--repo", script.path)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {predict_server.url}/predict: HTTP 500 InternalError: boom\n"
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = invoke("score", "--url", nobody, "--repo", script.path, "--timeout", "5")
    assert unreachable.exit_code == 2 and unreachable.stderr.startswith(f"error: {nobody}/predict: ConnectError")
    assert unreachable.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fail-above", "low"], "error: --fail-above: expected 'medium' or 'high', got 'low'\n"),
     (["--rev", "nope"], "error: --rev: 'nope' names no commit in the repository\n")],
)  # fmt: skip
def test_bad_score_options_are_one_line_exit_2(
    script: GitScript, predict_server: PredictServer, args: list[str], message: str
) -> None:
    build_history(script)
    result = invoke("score", "--url", predict_server.url, "--repo", script.path, *args)
    assert (result.exit_code, result.stderr) == (2, message)
    assert predict_server.requests == []


def test_score_refuses_empty_missing_and_shallow_repositories(script: GitScript, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    empty = invoke("score", "--url", url, "--repo", script.path)
    assert (empty.exit_code, empty.stderr) == (2, f"error: {script.path}: no commits yet\n")
    none = invoke("score", "--url", url, "--repo", tmp_path / "missing")
    assert none.exit_code == 2 and none.stderr == f"error: {tmp_path / 'missing'}: no such directory\n"
    for day in range(2):
        script.write("a.py", f"x = {day}\n")
        script.commit("c", "a@x.org", day)
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{script.path}", str(clone)], check=True)
    shallow = invoke("score", "--url", url, "--repo", clone)
    assert shallow.exit_code == 2 and "shallow clone" in shallow.stderr and shallow.stderr.count("\n") == 1


# ---- feedback import -----------------------------------------------------------------------------------------


def test_feedback_import_upserts_into_a_real_service(
    tmp_path: Path, serve: Callable[..., str], synthetic_commits_dir: Path
) -> None:
    build_model_version(tmp_path / "models", 1)
    url = serve(tmp_path / "models")
    labels = labelled_csv(tmp_path / "labels.csv", 300, synthetic_commits_dir / "alpha.csv")
    for _ in range(2):  # idempotent: the second import upserts the same rows again
        result = invoke("feedback", "import", labels, "--url", url, env={"COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN})
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"{labels}: 300 labels sent, 300 upserted\n"
    refused = invoke("feedback", "import", labels, "--url", url, "--token", "wrong")
    assert refused.exit_code == 2 and refused.stderr == "error: POST /feedback: 403 wrong admin token\n"


def test_feedback_import_reports_bad_files_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("commit_id,buggy\nabc,maybe\n")
    result = invoke("feedback", "import", path, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}:2: buggy: expected true or false, got 'maybe'\n"
    missing = invoke("feedback", "import", tmp_path / "nope.csv", "--url", "http://x")
    assert missing.exit_code == 2 and missing.stderr == f"error: {tmp_path / 'nope.csv'}: No such file or directory\n"


def test_feedback_import_reports_an_unreachable_service(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("commit_id,buggy\nabc,true\n")
    nobody = f"http://127.0.0.1:{free_port()}"
    result = invoke("feedback", "import", path, "--url", nobody)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {nobody}: ") and result.stderr.count("\n") == 1


# ---- replay --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_replay_against_a_real_uvicorn(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    port = free_port()
    env = os.environ | {
        "COMMITRISK_MODELS_DIR": str(tmp_path / "models"),
        "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        data = labelled_csv(tmp_path / "alpha.csv", 120, synthetic_commits_dir / "alpha.csv")
        result = invoke("replay", data, "--url", url, "--label-delay-days", "7", "--no-progress",
                        env={"COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN})  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith(f"{data}: 120 predicted, 0 rejected, ")
        sent = int(result.stdout.split(", ")[2].split()[0])
        assert sent > 0 and result.stdout.endswith(f"{sent} labels sent, {120 - sent} still immature\n")
        # --speed paces by dataset time: a huge speed is still fast, and still complete.
        fast = invoke("replay", data, "--url", url, "--speed", "1e12", "--no-progress", "--token", ADMIN_TOKEN)
        assert fast.exit_code == 0 and "120 predicted" in fast.stdout
        no_token = invoke("replay", data, "--url", url, "--no-progress", env={"COMMITRISK_ADMIN_TOKEN": ""})
        assert no_token.exit_code == 2 and "401" in no_token.stderr and no_token.stderr.count("\n") == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    assert store.count_predictions() >= 240  # the shutdown flushed the log
    store.close()


def test_replay_refuses_bad_datasets_and_unreachable_services(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("commit_id,buggy,author_date\nabc,true,1\n")
    result = invoke("replay", bad, "--url", "http://127.0.0.1:9", "--no-progress")
    assert (result.exit_code, result.stderr) == (2, f"error: {bad}: missing column 'ns'\n")
    nobody = f"http://127.0.0.1:{free_port()}"
    data = labelled_csv(tmp_path / "alpha.csv", 20, synthetic_commits_dir / "alpha.csv")
    down = invoke("replay", data, "--url", nobody, "--no-progress")
    assert down.exit_code == 2 and down.stderr.startswith(f"error: {nobody}: ") and down.stderr.count("\n") == 1
    negative = invoke("replay", data, "--url", nobody, "--speed", "-1")
    assert negative.exit_code == 2 and "--speed" in negative.stderr


# ---- the whole path ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mine_train_serve_score_end_to_end(tmp_path: Path) -> None:
    """Mined output feeds `commitrisk train` unchanged; the served model then scores a commit via `score`."""
    from bench.make_repo import build

    repo = tmp_path / "generated"
    build(repo, 1500, seed=11)
    data = tmp_path / "commits.csv"
    mined = subprocess.run([sys.executable, "-m", "training", "mine", str(repo), "--out", str(data), "--no-state",
                            "--no-progress"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert mined.returncode == 0, mined.stderr
    models = tmp_path / "models"
    train = [sys.executable, "-m", "training", "train", "--data", str(data), "--models", str(models),
             "--family", "logistic_regression", "--budget", "1", "--min-test-roc-auc", "0"]  # fmt: skip
    done = subprocess.run(train, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The prediction log goes to tmp_path: never a commitrisk.db in the repository.
    env = {**os.environ, "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}"}
    server = subprocess.Popen([sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
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
        with data.open(encoding="utf-8", newline="") as handle:
            newest = max(csv.DictReader(handle), key=lambda r: int(r["author_date"]))["commit_hash"]
        score = [sys.executable, "-m", "training", "score", "--url", url, "--repo", str(repo), "--rev", newest,
                 "--json"]  # fmt: skip
        done = subprocess.run(score, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        scored = json.loads(done.stdout)
        assert scored["commit_id"] == f"generated_{newest}"
        assert scored["risk_band"] in ("low", "medium", "high") and 0 <= scored["probability"] <= 1
        gate = subprocess.run([*score[:-1], "--fail-above", "medium"], capture_output=True, text=True, cwd=ROOT)
        assert gate.returncode == (0 if scored["risk_band"] == "low" else 1), gate.stderr
        assert gate.stdout.startswith(f"commit {newest[:12]}: {scored['risk_band']} risk")
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---- score --since / --range (backfill) ------------------------------------------------------------------


def logged_count(url: str) -> int:
    """Rows in the server's prediction log, from its own counter."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return int(float(re.search(r"^commitrisk_prediction_log_written_total (\S+)$", text, re.MULTILINE)[1]))  # type: ignore[index]


@pytest.mark.slow
def test_backfill_scores_a_range_once_with_a_summary(script: GitScript, tmp_path: Path) -> None:
    from tests.support import Service

    sha = build_history(script)
    models = tmp_path / "models"
    build_model_version(models, 1)
    service = Service(models, tmp_path, COMMITRISK_CLIENT_TOKENS="ci-bot")
    try:
        base = ["score", "--url", service.url, "--repo", script.path, "--no-progress"]
        env = {"COMMITRISK_CLIENT_TOKEN": "ci-bot"}
        result = invoke(*base, "--since", "2020-09-24", "--chunk", "2", env=env)  # day 11 on
        assert result.exit_code == 0, result.stderr
        text = result.stdout
        assert "Backfill of repo (model v1)" in text and "0 retries" in text
        for label, count in (("in range", 8), ("scored now", 6), ("already logged", 0), ("not scorable", 2)):
            assert re.search(rf"{label}.*\s{count}\s", text), (label, text)
        # The log is write-behind: the re-run below skips what is logged, so let the writer catch up first.
        wait_for(lambda: logged_count(service.url) == 6, "the six scored commits in the log", 30)
        again = invoke(*base, "--range", f"{sha['c9']}..HEAD", "--json", env=env)
        assert again.exit_code == 0, again.stderr
        summary = json.loads(again.stdout)
        # c10 … c17 again plus nothing new: all already logged by version 1
        assert summary | {"seconds": 0} == {
            "repository": "repo", "commits": 8, "scored": 0, "already_logged": 6, "not_scorable": 2, "low": 0,
            "medium": 0, "high": 0, "model_version": 1, "retries": 0, "seconds": 0,
        }  # fmt: skip
        refused = invoke(*base, "--since", "2020-09-24")  # no token: the client routes want one
        assert refused.exit_code == 2 and refused.stderr.startswith(f"error: {service.url}/monitoring/logged: HTTP 401")
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--since", "2024-01-01", "--fail-above", "high"], "error: --fail-above: gates one commit; not with"),
     (["--since", "2024-01-01", "--range", "a..b"], "error: --since/--range: give exactly one of them"),
     (["--range", "HEAD"], "error: --range: expected A..B (two revisions), got 'HEAD'")],
)  # fmt: skip
def test_bad_backfill_options_are_one_line_exit_2(script: GitScript, args: list[str], message: str) -> None:
    build_history(script)
    result = invoke("score", "--url", "http://127.0.0.1:9", "--repo", script.path, "--no-progress", *args)
    assert result.exit_code == 2 and result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_backfill_against_a_service_that_is_down_is_one_line_exit_2(script: GitScript) -> None:
    build_history(script)
    result = invoke("score", "--url", "http://127.0.0.1:9", "--repo", script.path, "--no-progress",
                    "--since", "2020-01-01", "--attempts", "1")  # fmt: skip
    assert result.exit_code == 2 and result.stderr.startswith("error: http://127.0.0.1:9/health/ready: ConnectError")
