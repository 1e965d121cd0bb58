"""A worker SIGKILLed under `--workers 2` (OOM killer, a hung worker): uvicorn's supervisor starts another,
/metrics forgets the dead one's live gauges instead of summing its last values forever, counts the prediction rows
it died holding as dropped (`worker_lost`), and the monitoring job's child process of the dead worker exits with
it instead of idling as an orphan."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import httpx

from app.contract import FEATURES
from bench.service import child_processes
from tests.support import ADMIN_TOKEN, Service, build_model_version, wait_for

COMMIT = dict.fromkeys(FEATURES, 1.0)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def live_series(url: str) -> tuple[float, set[int]]:
    """(commitrisk_http_requests_in_flight, the pids with a commitrisk_model_info series at 1) from one scrape."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    in_flight = float(re.search(r"^commitrisk_http_requests_in_flight (\S+)$", text, re.MULTILINE)[1])  # type: ignore[index]
    pids = {
        int(pid) for pid in re.findall(r'^commitrisk_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0$', text, re.MULTILINE)
    }
    return in_flight, pids


def test_a_killed_worker_leaves_no_live_series_behind(tmp_path: Path) -> None:
    models = tmp_path / "models"
    build_model_version(models, 1)
    server = Service(models, tmp_path, workers=2, COMMITRISK_BODY_TIMEOUT_SECONDS="5")
    held: list[socket.socket] = []
    try:
        before = server.workers()
        wait_for(lambda: live_series(server.url)[1] == before, "both workers' model info", 30)
        host, port = server.url.removeprefix("http://").split(":")
        for _ in range(6):  # requests in flight on the workers when one is killed: bodies that never finish
            sock = socket.create_connection((host, int(port)), timeout=15)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")  # fmt: skip
            held.append(sock)
        wait_for(lambda: live_series(server.url)[0] >= 4, "requests in flight", 30)  # all 6 + the scrape, unless slow
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(server.workers()) == 2 and victim not in server.workers(), "a replacement worker", 60)
        # The survivor answers its held requests with 408 after the body timeout; the victim's died with it.
        # Compared with the workers alive at each scrape: on a loaded machine uvicorn's supervisor may replace a
        # worker again (a replacement that misses its 5 s health check while starting is killed as hung).
        seen: list[tuple[tuple[float, set[int]], set[int]]] = []

        def only_live() -> bool:
            seen.append((live_series(server.url), server.workers()))
            return seen[-1][0] == (1.0, seen[-1][1])

        try:
            wait_for(only_live, "only live workers in /metrics", 60)
        except AssertionError as error:
            raise AssertionError(f"{error}; last (in flight, pids) and workers: {seen[-3:]}\n{server.tail()}") from None
        for _ in range(10):  # every scrape, whichever worker answers it, agrees
            assert only_live(), seen[-1]
        assert victim not in seen[-1][0][1]
        assert httpx.post(f"{server.url}/predict", json=COMMIT).status_code == 200
        assert server.status_500s() == 0
    finally:
        for sock in held:
            sock.close()
        server.stop()


def sample(text: str, name: str) -> float:
    """The value of the one unlabelled sample `name` (or with labels: the whole `name{…}` prefix) in `text`."""
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)[1])  # type: ignore[index]


def unwritten_of(directory: Path, pid: int) -> float:
    """The prediction rows worker `pid` holds unwritten, read from its live gauge file (as a scrape would)."""
    from prometheus_client.mmap_dict import MmapedDict

    path = directory / f"gauge_livesum_{pid}.db"
    values = MmapedDict.read_all_values_from_file(str(path))
    return sum(value for key, value, _, _ in values if "commitrisk_prediction_log_unwritten_rows" in key)


def test_the_rows_a_killed_worker_held_are_counted_as_lost(tmp_path: Path) -> None:
    # The database is down, so every answered prediction waits in its worker's queue (bounded, 50,000 rows).
    models = tmp_path / "models"
    build_model_version(models, 1)
    down = f"sqlite:///{tmp_path / 'missing' / 'p.db'}"
    server = Service(models, tmp_path, workers=2, COMMITRISK_DATABASE_URL=down)
    try:
        answered = 0
        for _ in range(40):  # a new connection each: the kernel spreads them over both workers
            with httpx.Client() as client:
                assert client.post(f"{server.url}/predict", json=COMMIT).status_code == 200
            answered += 1
        directory = tmp_path / f"prometheus-{server.url.rsplit(':', 1)[1]}"
        held = {pid: unwritten_of(directory, pid) for pid in server.workers()}
        assert sum(held.values()) == answered
        victim = max(held, key=lambda pid: held[pid])
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in server.workers() and len(server.workers()) == 2, "a replacement worker", 60)
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        lost = sample(text, 'commitrisk_prediction_log_dropped_total{reason="worker_lost"}')
        assert lost == held[victim] > 0
        assert lost + sample(text, "commitrisk_prediction_log_unwritten_rows") == answered  # nothing unaccounted
        for _ in range(5):  # later scrapes, by either worker, count it once
            again = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert sample(again, 'commitrisk_prediction_log_dropped_total{reason="worker_lost"}') == lost
        assert server.status_500s() == 0
    finally:
        server.stop()


def job_children(pid: int) -> set[int]:
    """The live processes `pid` spawned through multiprocessing (the monitoring job's pool), zombies excluded."""
    return child_processes(pid, b"spawn_main", zombies=False)


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_killed_worker_leaves_no_job_process_behind(tmp_path: Path) -> None:
    models = tmp_path / "models"
    build_model_version(models, 1)
    server = Service(models, tmp_path, workers=2)
    try:
        # A drift run (409 here: too few rows) runs in the worker's job pool, which then keeps an idle child.
        for _ in range(4):
            refreshed = httpx.post(f"{server.url}/monitoring/drift/refresh", headers=AUTH, timeout=120)
            assert refreshed.status_code == 409, refreshed.text
        owners = {pid: job_children(pid) for pid in server.workers()}
        owner, children = next((pid, found) for pid, found in owners.items() if found)
        os.kill(owner, signal.SIGKILL)
        wait_for(lambda: not any(alive(pid) for pid in children), "the dead worker's job process to exit", 30)
        wait_for(lambda: len(server.workers()) == 2, "a replacement worker", 60)
        assert server.status_500s() == 0
    finally:
        server.stop()
