"""Backfill scoring against a real server: every commit of the range logged once, re-runs add nothing, a 503 or a
dropped connection mid-way is retried."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bench.proxy import TcpProxy
from tests.support import Service, build_model_version, connect, wait_for
from training.clients.backfill import BackfillSummary, Retryable, backfill, served_version
from training.clients.score import ScoreError
from training.mining.backfill import RangeRows, range_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("backfill") / "models"
    build_model_version(models, 1)
    return models


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> RangeRows:
    from bench.make_repo import build

    repo = tmp_path_factory.mktemp("backfill-repo") / "generated"
    build(repo, 400, seed=11)
    return range_rows(repo, since="2000-01-01")


def logged(service: Service) -> list[tuple[str, int]]:
    """(commit_id, times logged) of the server's prediction log."""
    port = service.url.rsplit(":", 1)[1]
    engine = create_engine(f"sqlite:///{service.log_path.parent / f'predictions-{port}.db'}")  # Service's log
    try:
        with engine.connect() as conn:
            return [(r[0], int(r[1])) for r in conn.execute(text(
                "SELECT commit_id, count(*) FROM predictions GROUP BY commit_id"))]  # fmt: skip
    finally:
        engine.dispose()


def wait_logged(service: Service, n: int) -> list[tuple[str, int]]:
    wait_for(lambda: len(logged(service)) >= n, f"{n} commits in the log", 20)
    return logged(service)


@pytest.fixture
def service(models: Path, tmp_path: Path) -> Iterator[Service]:
    started = Service(models, tmp_path, COMMITRISK_MAX_CONCURRENT_REQUESTS="1", COMMITRISK_BODY_TIMEOUT_SECONDS="30",
                      COMMITRISK_MAX_BATCH="200")  # fmt: skip
    yield started
    started.stop()


def test_every_commit_of_the_range_is_logged_once_and_a_re_run_adds_nothing(
    service: Service, history: RangeRows
) -> None:
    rows, seen = history.rows, []
    assert len(rows) > 300
    first = backfill(service.url, rows, history.repository_id, chunk=64, advance=seen.append)
    assert (first.scored, first.already_logged, first.model_version, first.retries) == (len(rows), 0, 1, 0)
    assert sum(first.bands.values()) == len(rows) and sum(seen) == len(rows) and max(seen) == 64
    found = wait_logged(service, len(rows))
    assert sorted(c for c, _ in found) == sorted(f"{history.repository_id}_{r.sha}" for r in rows)
    assert {n for _, n in found} == {1}
    again = backfill(service.url, rows, history.repository_id, chunk=100)
    assert (again.scored, again.already_logged) == (0, len(rows))
    assert logged(service) == found  # nothing added
    partly = backfill(service.url, rows[:10], history.repository_id + "-other", chunk=100)
    assert partly.scored == 10  # the same SHAs of another repository are other commits


def hold_the_only_slot(url: str) -> socket.socket:
    """A request that declares a body it does not send: it holds the one request slot (503 for the others)."""
    sock = connect(url)
    sock.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    wait_for(lambda: httpx.post(f"{url}/monitoring/logged", json={}).status_code == 503, "the server to be full", 10)
    return sock


def test_a_503_mid_way_is_retried_and_nothing_is_lost_or_doubled(service: Service, history: RangeRows) -> None:
    rows, blocked = history.rows, []

    def after_chunk(_n: int) -> None:
        if not blocked:  # after the first chunk the server refuses everything for a second
            blocked.append(hold_the_only_slot(service.url))
            threading.Timer(1.0, blocked[0].close).start()

    summary = backfill(service.url, rows, history.repository_id, chunk=100, max_wait=0.5, advance=after_chunk)
    assert summary.retries >= 1 and summary.scored == len(rows)
    assert {n for _, n in wait_logged(service, len(rows))} == {1}


def test_a_dropped_connection_mid_way_is_retried(service: Service, history: RangeRows) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port).start()
    rows, cut = history.rows, []

    def after_chunk(_n: int) -> None:
        if not cut:
            cut.append(True)
            proxy.stop()  # connections reset, new ones refused …
            threading.Timer(1.0, proxy.start).start()  # … for a second

    try:
        summary = backfill(f"http://127.0.0.1:{proxy.port}", rows, history.repository_id, chunk=100, max_wait=0.5,
                           advance=after_chunk)  # fmt: skip
    finally:
        proxy.stop()
    assert summary.retries >= 1 and summary.scored == len(rows)
    assert {n for _, n in wait_logged(service, len(rows))} == {1}


def test_a_service_that_stays_down_fails_after_the_attempts(history: RangeRows) -> None:
    with pytest.raises(Retryable, match=r"^http://127.0.0.1:9/health/ready: ConnectError"):
        backfill("http://127.0.0.1:9", history.rows, "r", attempts=2, max_wait=0.1)


def test_a_refused_chunk_is_an_error_at_once(service: Service, history: RangeRows) -> None:
    with pytest.raises(ScoreError, match=r"/predict/batch\?explain=false: HTTP 413 BatchTooLarge: ") as caught:
        backfill(service.url, history.rows, history.repository_id, chunk=250)
    assert not isinstance(caught.value, Retryable)
    with httpx.Client(base_url=service.url) as client:
        assert served_version(client) == 1
    assert BackfillSummary().bands == {"low": 0, "medium": 0, "high": 0}
