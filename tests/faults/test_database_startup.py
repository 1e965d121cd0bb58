"""`serve` without its database: PostgreSQL not listening, a SQLite file in a missing directory — ready and
scoring at once, `database: down` in readiness and /metrics, every answered prediction held and written once the
database is back (no restart, one or two workers); a URL no database can answer is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.contract import FEATURES
from tests.support import REPO, Outage, Service, free_port, log_accounting, logged_predictions, wait_for

COMMIT = dict.fromkeys(FEATURES, 1.0) | {"commit_id": "c"}


def database_states(url: str, asks: int = 8) -> set[str]:
    """`database` of /health/ready over several asks (workers share the port: each answers some)."""
    states = set()
    for _ in range(asks):
        response = httpx.get(f"{url}/health/ready", timeout=10)
        assert response.status_code == 200, response.text
        states.add(response.json()["database"])
    return states


def serve_while_down_then_recover(server: Service, bring_back: object, written_to: str) -> None:
    """The common script: ready and scoring while down, then the database comes back and gets every row."""
    assert database_states(server.url) == {"down"}
    assert "commitrisk_database_up 0.0" in httpx.get(f"{server.url}/metrics", timeout=10).text
    for i in range(20):
        response = httpx.post(f"{server.url}/predict", json=COMMIT | {"commit_id": f"c{i}"}, timeout=10)
        assert response.status_code == 200, response.text
    assert callable(bring_back)
    bring_back()
    wait_for(lambda: database_states(server.url) == {"up"}, "every worker to reconnect", 60)
    wait_for(lambda: (lambda a, w, d: a == w + d)(*log_accounting(server.url)), "the held rows to be written", 60)
    answered, written, dropped = log_accounting(server.url)
    assert answered >= 20 and dropped == 0  # held through the outage, none dropped …
    assert logged_predictions(written_to) == written == answered  # … and all of them in the database
    assert server.status_500s() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_serves_while_postgresql_is_not_listening(
    fault_models: Path, tmp_path: Path, outage: Outage, workers: int
) -> None:
    outage.proxy.stop()  # nothing listens on the service's database port
    started = time.monotonic()
    server = Service(fault_models, tmp_path, workers=workers, COMMITRISK_DATABASE_URL=outage.url,
                     COMMITRISK_DATABASE_CHECK_SECONDS="0.2")  # fmt: skip
    try:
        wait_for(lambda: httpx.post(f"{server.url}/predict", json=COMMIT).status_code == 200, "a first answer", 60)
        # No timing assert (bench/soak.py measures start-up); the bound only says it does not hang.
        assert time.monotonic() - started < 60
        serve_while_down_then_recover(server, outage.proxy.start, outage.direct)
    finally:
        server.stop()


def test_serves_while_the_sqlite_directory_is_missing(fault_models: Path, tmp_path: Path) -> None:
    directory = tmp_path / "volume-not-mounted-yet"
    url = f"sqlite:///{directory / 'commitrisk.db'}"
    server = Service(fault_models, tmp_path, COMMITRISK_DATABASE_URL=url, COMMITRISK_DATABASE_CHECK_SECONDS="0.2")
    try:
        wait_for(lambda: httpx.get(f"{server.url}/health/ready").status_code == 200, "readiness", 60)
        serve_while_down_then_recover(server, directory.mkdir, url)
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["garbage", "mysql://u:secret@db/x", "postgresql+psycopg_async://u:secret@db/x"])
@pytest.mark.parametrize("entry", [["-m", "app"], ["-m", "training", "serve"]])
def test_a_url_no_database_can_answer_is_one_line_and_exit_2(fault_models: Path, url: str, entry: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *entry, "--models", str(fault_models), "--port", str(free_port())],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "COMMITRISK_DATABASE_URL": url},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: COMMITRISK_DATABASE_URL: "), done.stderr
    assert "secret" not in done.stderr  # the URL may hold a password: never echoed
