"""prometheus.yml is valid, and a real Prometheus server scrapes a real uvicorn service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.contract import FEATURES, REFERENCE_FILE
from tests.support import ADMIN_TOKEN, ROOT, build_model_version, free_port, synthetic_commits, tool

MONITORING = ROOT / "monitoring"
HINT = "apt-get install prometheus (scripts/test.sh does)"


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {seconds} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_promtool_check_config() -> None:
    promtool = tool("promtool", HINT)
    result = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=MONITORING, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """A real uvicorn serving version 1, whose drift reference is the even synthetic rows."""
    models = tmp_path / "models"
    synthetic_commits()[list(FEATURES)].iloc[::2].to_parquet(build_model_version(models, 1) / REFERENCE_FILE)
    port = free_port()
    env = os.environ | {
        "COMMITRISK_MODELS_DIR": str(models),
        "COMMITRISK_DATABASE_URL": f"sqlite:///{tmp_path / 'monitor.db'}",
        "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
        "COMMITRISK_DRIFT_MIN_ROWS": "50",
        "COMMITRISK_LOG_FLUSH_SECONDS": "0.05",
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def prometheus(tmp_path: Path, service: str) -> Iterator[str]:
    """A real Prometheus server scraping `service` every second."""
    binary = tool("prometheus", HINT)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    target = service.removeprefix("http://")
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: commitrisk\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def query_until(prometheus: str, promql: str, value: float | None = None, seconds: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
        result = body["data"]["result"] if body["status"] == "success" else []
        if result and (value is None or float(result[0]["value"][1]) == pytest.approx(value)):
            return list(result)
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never returned {promql!r}")


@pytest.mark.slow
def test_real_prometheus_scrapes_requests_and_drift(service: str, prometheus: str) -> None:
    frame = synthetic_commits()[list(FEATURES)].iloc[1::2].iloc[:200]  # rows the drift reference left out
    commits = [{name: float(v) for name, v in row.items()} for row in frame.to_dict("records")]
    assert httpx.post(f"{service}/predict/batch", json={"commits": commits}, timeout=30).status_code == 200
    for commit in commits[:20]:
        assert httpx.post(f"{service}/predict", json=commit, timeout=10).status_code == 200
    deadline = time.monotonic() + 30
    while True:  # the writer flushes asynchronously; drift needs the rows in the database
        refreshed = httpx.post(
            f"{service}/monitoring/drift/refresh",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=120,
        )
        if refreshed.status_code == 200 and refreshed.json()["window"]["rows"] == 220:
            break
        assert time.monotonic() < deadline, refreshed.text
        time.sleep(0.5)
    share = refreshed.json()["drift_share"]

    # Scrapes from before the traffic/refresh exist too: wait for the values the service now holds.
    query_until(prometheus, 'commitrisk_http_requests_total{route="/predict", status="200"}', 20)
    query_until(prometheus, 'commitrisk_http_requests_total{route="/predict/batch", status="200"}', 1)
    query_until(prometheus, "commitrisk_drift_share", share)
    assert query_until(prometheus, 'commitrisk_feature_drifted{feature="la"}')
    up = query_until(prometheus, 'up{job="commitrisk"}')
    assert up[0]["value"][1] == "1"
