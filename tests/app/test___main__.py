"""`python -m app` as a real process: bad input → exit 2 with one line naming it; serves, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.__main__ import ServeError, prepare_multiprocess, settings_for
from tests.support import REPO, free_port, stop_group, wait_for


def run_app(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m app ARGS` to completion, with COMMITRISK_* variables of the caller's environment removed."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COMMITRISK_")} | env
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout
    )


def test_a_missing_models_dir_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    out = run_app("--models", str(missing))
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {missing}: models directory does not exist")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_a_bad_variable_is_one_line_naming_it(tmp_path: Path) -> None:
    out = run_app("--models", str(tmp_path), COMMITRISK_MAX_BATCH="abc")
    assert out.returncode == 2
    assert out.stderr.startswith("error: COMMITRISK_MAX_BATCH: ") and out.stderr.count("\n") == 1


def test_a_client_tokens_file_without_tokens_is_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# rotated soon\n")
    out = run_app("--models", str(tmp_path), COMMITRISK_CLIENT_TOKENS_FILE=str(tokens))
    assert out.returncode == 2
    assert out.stderr == f"error: COMMITRISK_CLIENT_TOKENS_FILE: {tokens}: holds no token\n"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--port", "0", "error: --port: 0 is not a TCP port"), ("--port", "70000", "error: --port: 70000"),
     ("--workers", "0", "error: --workers: 0 must be at least 1")],
)  # fmt: skip
def test_bad_options_are_refused_before_anything_starts(tmp_path: Path, option: str, value: str, message: str) -> None:
    out = run_app("--models", str(tmp_path), option, value)
    assert out.returncode == 2
    assert out.stderr.startswith(message) and out.stderr.count("\n") == 1


def test_a_port_in_use_or_an_unknown_host_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_app("--models", str(tmp_path), "--port", str(port))
    assert out.returncode == 2  # uvicorn's own startup failure would be 3, which means "refused by a gate" here
    assert out.stderr.startswith(f"error: --port: cannot listen on 127.0.0.1:{port}: ") and out.stderr.count("\n") == 1
    unknown = run_app("--models", str(tmp_path), "--host", "no-such-host.invalid")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: --host: 'no-such-host.invalid': ")


def test_serves_and_stops_cleanly_on_sigterm(tmp_path: Path, models_dir: Path) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("COMMITRISK_", "PROMETHEUS_"))}
    environment["COMMITRISK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'p.db'}"
    log = tmp_path / "server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--models", str(models_dir), "--port", str(port)],
            cwd=REPO, env=environment, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/health/live", timeout=1).status_code == 200, "the server", 60)
        assert httpx.get(f"{url}/health/ready").json() == {"status": "ready", "model_version": 1, "database": "up"}
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once the app has shut down (the default disposition ends the process).
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        stop_group(process, timeout=5)
    text = log.read_text()
    assert "Traceback" not in text and "Application shutdown complete" in text and "Finished server process" in text


def isolate(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Unset `name` for this test and restore it afterwards, even when the code under test sets it."""
    monkeypatch.setenv(name, "")  # records the original value (or its absence) for the undo
    monkeypatch.delenv(name)


def test_settings_for_sets_the_models_dir_for_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, "COMMITRISK_MODELS_DIR")
    monkeypatch.setenv("COMMITRISK_MAX_BATCH", "7")
    settings = settings_for(tmp_path)
    assert settings.models_dir == tmp_path.resolve() and settings.max_batch == 7
    assert os.environ["COMMITRISK_MODELS_DIR"] == str(tmp_path.resolve())  # what the factory workers read
    with pytest.raises(ServeError, match="does not exist"):
        settings_for(tmp_path / "nope")


def test_several_workers_get_an_empty_multiprocess_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, "PROMETHEUS_MULTIPROC_DIR")
    assert prepare_multiprocess(1) is None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    made = prepare_multiprocess(2)
    assert made is not None and Path(made).is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == made
    stale = tmp_path / "metrics"
    stale.mkdir()
    (stale / "counter_123.db").write_bytes(b"an earlier run's pid")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(stale))
    assert prepare_multiprocess(1) == str(stale) and list(stale.iterdir()) == []
    os.rmdir(made)
