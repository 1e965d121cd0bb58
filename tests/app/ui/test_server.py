"""The page process's entry: serves the pages-only app on a Unix socket, niced, and only for its own worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import REPO


def test_settle_lowers_priority_but_never_raises_it_and_checks_the_parent() -> None:
    code = (
        "import os; from app.ui.server import settle;"
        "os.setpriority(os.PRIO_PROCESS, 0, 12);"
        "print(settle(os.getppid(), 5), os.getpriority(os.PRIO_PROCESS, 0), settle(1, 15),"
        " os.getpriority(os.PRIO_PROCESS, 0))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "12", "False", "15"]  # 5 would raise it: kept at 12


def test_an_orphaned_start_exits_at_once_without_serving(tmp_path: Path) -> None:
    socket = tmp_path / "pages.sock"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "app.ui.server", str(socket), "1", "10"],  # pid 1 is not our parent
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and not socket.exists(), done.stderr
    assert time.monotonic() - started < 30


def test_it_serves_the_pages_only_app_on_its_socket(models_dir: Path, tmp_path: Path) -> None:
    socket = tmp_path / "pages.sock"
    env = {**os.environ, "COMMITRISK_MODELS_DIR": str(models_dir), "COMMITRISK_UI_PROCESS": "false",
           "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Through `exec` in a shell: the server replaces the shell, so its parent is this test, whose pid is $PPID.
    child = subprocess.Popen(
        ["/bin/sh", "-c", f'exec "{sys.executable}" -m app.ui.server {socket} $PPID 10'],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        transport = httpx.HTTPTransport(uds=str(socket))
        with httpx.Client(transport=transport, base_url="http://pages") as client:
            deadline = time.monotonic() + 60
            while not socket.exists() and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.05)
            assert socket.exists(), child.stdout.read() if child.stdout else ""
            page = client.get("/ui/models", headers={"accept": "text/html"})
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert client.get("/health/live").status_code == 200
            assert client.post("/predict", json={}).status_code in (404, 405)  # no scoring routes there
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == 10
    finally:
        child.kill()
        child.wait()
