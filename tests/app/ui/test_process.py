"""The page process on real servers (`python -m app`, uvicorn): pages answer as without it, from another process at
the configured niceness, restarted when it died, a 503 page when it cannot start, gone with its worker."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.contract import FEATURES
from app.settings import Settings
from app.ui.process import child_environment, request_target, serving_of
from bench.service import child_processes
from tests.support import Service, connect, logged_predictions, read_response, wait_for

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? UTC")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def page_processes(worker: int) -> set[int]:
    """Live page processes whose parent is `worker`."""
    return child_processes(worker, b"app.ui.server", zombies=False)


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def post(service: Service, n: int) -> list[str]:
    ids = []
    for i in range(n):
        body = {name: float((i * 7 + k) % 13) for k, name in enumerate(FEATURES)}
        body |= {"la": float(10 + 300 * (i % 4)), "commit_id": f"org/app_{i:02d}beef", "repository": "org/app"}
        answer = httpx.post(f"{service.url}/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        ids.append(body["commit_id"])
    return ids


def serve(models: Path, tmp_path: Path, workers: int = 1, **env: str) -> Service:
    settings = {"COMMITRISK_LOG_FLUSH_SECONDS": "0.05", "COMMITRISK_UI_REFRESH_SECONDS": "0",
                "COMMITRISK_UI_LABELS_REFRESH_SECONDS": "0"}  # fmt: skip
    return Service(models, tmp_path, workers, **(settings | env))


@pytest.fixture
def pair(models_dir: Path, tmp_path: Path) -> Iterator[tuple[Service, Service]]:
    """Two servers on one log and one models directory (v2 in shadow): pages in a page process, and in the worker."""
    (models_dir / "challenger").write_text("2\n")
    (models_dir / "1" / "report").mkdir()
    (models_dir / "1" / "report" / "roc.png").write_bytes(PNG)
    database = f"sqlite:///{tmp_path / 'log.db'}"
    on = serve(models_dir, tmp_path, COMMITRISK_DATABASE_URL=database, COMMITRISK_UI_PROCESS_NICE="15")
    off = serve(models_dir, tmp_path, COMMITRISK_DATABASE_URL=database, COMMITRISK_UI_PROCESS="false")
    try:
        yield on, off
    finally:
        on.stop()
        off.stop()


def test_pages_answer_as_in_the_worker_from_a_process_at_the_configured_niceness(
    pair: tuple[Service, Service], tmp_path: Path
) -> None:
    on, off = pair
    ids = post(on, 5)
    assert post(off, 5) == ids  # both workers scored the same commits: the same live shadow counts
    wait_for(lambda: logged_predictions(f"sqlite:///{tmp_path / 'log.db'}") == 10, "the log")
    assert page_processes(on.process.pid) == set()  # started by the first page request, not before
    paths = ["/ui/", "/ui/repositories/org%2Fapp", "/ui/repositories/org/app?per_page=10&band=&sha=org",
             f"/ui/commits/{ids[2]}", "/ui/models", "/ui/monitoring", "/ui/nowhere", "/ui/commits/unknown",
             "/ui/repositories/org/app?page=x", "/ui/models/1/report/roc.png"]  # fmt: skip
    for path in paths:
        for accept in (HTML, JSON):
            mine, theirs = httpx.get(on.url + path, headers=accept), httpx.get(off.url + path, headers=accept)
            assert mine.status_code == theirs.status_code, path
            for header in ("content-type", "content-length", "cache-control", "www-authenticate"):
                assert mine.headers.get(header) == theirs.headers.get(header), (path, header)
            if mine.headers["content-type"].startswith("image/"):
                assert mine.content == theirs.content == PNG
            else:
                assert STAMP.sub("…", mine.text) == STAMP.sub("…", theirs.text), path
    for server in (on, off):  # a dot segment as sent (httpx would resolve it): the unknown page, in both
        with connect(server.url) as sock:
            sock.sendall(b"GET /ui/../models HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n")
            status, _, body = read_response(sock)
        assert status == 404 and b"no page at /ui/../models" in body
    models = httpx.get(on.url + "/ui/models", headers=HTML).text
    assert '<td class="num">5</td>' in models  # the worker's live shadow count, not the page process's zero
    [pid] = page_processes(on.process.pid)
    assert pid != on.process.pid and os.getpriority(os.PRIO_PROCESS, pid) == 15
    assert page_processes(off.process.pid) == set()
    metrics = httpx.get(on.url + "/metrics").text  # the worker counts the pages it answered, by route template
    assert 'commitrisk_http_requests_total{method="GET",route="/ui/commits/{commit_id:path}",status="200"} 2.0' in (
        metrics
    ), [line for line in metrics.splitlines() if "/ui/" in line]


def test_a_killed_page_process_is_restarted_by_the_next_page_and_never_twice(models_dir: Path, tmp_path: Path) -> None:
    service = serve(models_dir, tmp_path)
    try:
        answers: list[int] = []
        threads = [
            threading.Thread(target=lambda: answers.append(httpx.get(service.url + "/ui/", timeout=60).status_code))
            for _ in range(8)
        ]
        for thread in threads:  # eight first page requests at once: one page process starts
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * 8
        [first] = page_processes(service.process.pid)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not alive(first), "the page process to die", 10)
        assert httpx.get(service.url + "/ui/models", headers=HTML, timeout=60).status_code == 200
        [second] = page_processes(service.process.pid)
        assert second != first
        assert service.status_500s() == 0
    finally:
        service.stop()


def test_a_page_process_that_cannot_start_is_a_503_page_and_scoring_goes_on(models_dir: Path, tmp_path: Path) -> None:
    # A Unix socket path is at most 107 bytes: under this temp directory the page process cannot listen, and exits.
    deep = tmp_path / ("t" * 120)
    deep.mkdir()
    service = serve(models_dir, tmp_path, TMPDIR=str(deep))
    try:
        page = httpx.get(service.url + "/ui/", headers=HTML, timeout=60)
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "PagesUnavailable" in page.text and "(re)starting" in page.text
        answer = httpx.get(service.url + "/ui/models", timeout=60)
        assert answer.status_code == 503 and answer.json()["error"]["type"] == "PagesUnavailable"
        assert post(service, 1)
        assert page_processes(service.process.pid) == set()
        assert service.status_500s() == 0
    finally:
        service.stop()


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL])
def test_the_page_process_ends_with_its_worker(models_dir: Path, tmp_path: Path, signal_number: int) -> None:
    service = serve(models_dir, tmp_path)
    try:
        assert httpx.get(service.url + "/ui/", timeout=60).status_code == 200
        [pid] = page_processes(service.process.pid)
        socket = Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[3].decode())
        assert socket.name == "pages.sock" and socket.exists()
        os.kill(service.process.pid, signal_number)  # the worker alone: SIGTERM shuts down, SIGKILL ends it at once
        service.process.wait(timeout=30)
        wait_for(lambda: not alive(pid), "the page process to end", 10)
        if signal_number == signal.SIGTERM:  # its shutdown also removed the socket's private directory
            assert not socket.parent.exists()
    finally:
        service.stop()


def test_the_access_rule_applies_through_the_page_process(models_dir: Path, tmp_path: Path) -> None:
    service = serve(models_dir, tmp_path, COMMITRISK_CLIENT_TOKENS="reader-1")
    try:
        page = httpx.get(service.url + "/ui/models", headers=HTML, timeout=60)
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic ")
        assert httpx.get(service.url + "/ui/models", headers=HTML, auth=("me", "wrong")).status_code == 403
        assert httpx.get(service.url + "/ui/models", headers=HTML, auth=("me", "reader-1")).status_code == 200
        assert httpx.get(service.url + "/ui/", headers={"Authorization": "Bearer reader-1"}).status_code == 200
        assert httpx.get(service.url + "/ui/models/1/report/roc.png").status_code == 401
    finally:
        service.stop()


def test_page_processes_write_no_samples_into_the_workers_metrics_directory(models_dir: Path, tmp_path: Path) -> None:
    service = serve(models_dir, tmp_path, workers=2)
    try:
        for _ in range(20):  # connections spread over both workers
            assert httpx.get(service.url + "/ui/", timeout=60).status_code == 200
        workers = service.workers()
        pages = set().union(*(page_processes(worker) for worker in workers))
        assert pages and all(len(page_processes(worker)) <= 1 for worker in workers)
        files = list((tmp_path / f"prometheus-{service.url.rsplit(':', 1)[1]}").glob("*.db"))
        writers = {int(m[1]) for f in files if (m := re.search(r"_(\d+)\.db$", f.name))}
        assert writers and writers <= workers and not writers & pages
    finally:
        service.stop()


def test_the_page_process_gets_the_workers_settings_with_its_own_parts_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = Settings(models_dir=tmp_path, admin_token="s3cret", client_tokens="a,b", drift_window_days=None,
                      ui_refresh_seconds=0, log_partition="daily", access_log=True)  # fmt: skip
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("COMMITRISK_DRIFT_WINDOW_DAYS", "3")  # an inherited variable the explicit settings override
    env = child_environment(worker)
    assert "PROMETHEUS_MULTIPROC_DIR" not in env and "COMMITRISK_DRIFT_WINDOW_DAYS" not in env
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    off = {"ui_process": False, "prediction_log": False, "monitoring_job": False}
    assert child.model_dump() | {"admin_token": None, "client_tokens": None} == worker.model_dump() | off | {
        "admin_token": None, "client_tokens": None}  # fmt: skip
    assert child.admin_token is not None and child.admin_token.get_secret_value() == "s3cret"
    assert child.client_tokens is not None and child.client_tokens.get_secret_value() == "a,b"


@pytest.mark.parametrize(
    ("raw", "query", "target"),
    [(b"/ui/repositories/org%2Fapp", b"page=2&sha=ab", "/ui/repositories/org%2Fapp?page=2&sha=ab"),
     (b"/ui/../predict", b"", "/ui/%2E%2E/predict"), (b"/ui/./x/..", b"", "/ui/%2E/x/%2E%2E"),
     (b"/ui/a..b/.c", b"", "/ui/a..b/.c")],
)  # fmt: skip
def test_the_request_target_is_forwarded_as_sent(raw: bytes, query: bytes, target: str) -> None:
    assert request_target({"raw_path": raw, "path": raw.decode(), "query_string": query}) == target


def test_a_malformed_serving_header_is_ignored() -> None:
    from starlette.requests import Request

    def serving(value: bytes) -> object:
        scope = {"type": "http", "method": "GET", "path": "/ui/models", "headers": [(b"x-commitrisk-serving", value)]}
        return serving_of(Request(scope))

    found = serving(b'{"served": 3, "live": {"4": [10, 9]}}')
    assert found is not None and (found.served, found.live) == (3, {4: [10, 9]})  # type: ignore[attr-defined]
    assert serving(b"not json") is None and serving(b'{"served": 1}') is None and serving(b"[1]") is None
