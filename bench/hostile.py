"""Hostile clients against one real worker: how long `/health/live` waits while bodies of 250,000 unknown keys are
refused (ratio to idle in the same run), how big and how fast that refusal is, how long a stalled body or a silent
connection is held, and how fast a request beyond the concurrency limit is refused.

    .venv/bin/python bench/hostile.py [--models DIR] [--rounds 5]

Without `--models` a logistic-regression champion is trained on the shared data (../shared/data/commits). The
server runs with COMMITRISK_BODY_TIMEOUT_SECONDS=2, COMMITRISK_HEADER_TIMEOUT_SECONDS=2 and
COMMITRISK_MAX_CONCURRENT_REQUESTS=8 (small, so the run is short). Appends a section to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contract import FEATURES  # noqa: E402
from bench.machine import append, table  # noqa: E402
from bench.replicas import free_port, wait_for  # noqa: E402
from bench.service import train_champion  # noqa: E402

LIMIT = 8
COMMIT = dict.fromkeys(FEATURES, 1.0)


def start(models: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMITRISK_", "PROMETHEUS_"))} | {
        "COMMITRISK_DATABASE_URL": f"sqlite:///{work / 'p.db'}", "COMMITRISK_MONITORING_JOB": "false",
        "COMMITRISK_BODY_TIMEOUT_SECONDS": "2", "COMMITRISK_HEADER_TIMEOUT_SECONDS": "2",
        "COMMITRISK_MAX_CONCURRENT_REQUESTS": str(LIMIT),
    }  # fmt: skip
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "--models", str(models), "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/health/ready").is_success, "the server", 120)
    return proc, url


def refusal_cpu(models: Path, work: Path, body: bytes) -> tuple[float, int, int]:
    """CPU seconds (best of 5) of one refusal of `body` by the whole app in this process (ASGI, no network): the
    event-loop time a worker spends on it, whatever the machine's load; with the status and size of the answer."""
    import asyncio

    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(models_dir=models, database_url=f"sqlite:///{work / 'cpu.db'}", monitoring_job=False))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "path": "/predict",
        "raw_path": b"/predict", "query_string": b"", "root_path": "", "scheme": "http",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    answer: dict[str, int] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["size"] = len(message.get("body", b""))

    async def best() -> float:
        times = []
        for _ in range(5):
            started = time.process_time()
            await app(dict(scope), receive, send)
            times.append(time.process_time() - started)
        return min(times)

    return asyncio.run(best()), answer["status"], answer["size"]


def probe_ms(client: httpx.Client) -> float:
    started = time.perf_counter()
    client.get("/health/live").raise_for_status()
    return (time.perf_counter() - started) * 1000


def slow_socket(url: str, head: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head)
    return sock


def held_seconds(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and the status line it sent first (if any)."""
    started, received = time.perf_counter(), b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return time.perf_counter() - started, received.split(b"\r\n", 1)[0]


def measure(url: str, rounds: int) -> list[list[object]]:
    rows: list[list[object]] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        idle = [probe_ms(client) for _ in range(200)]
        flood_body = orjson.dumps(COMMIT | {f"k{i}": 1 for i in range(250_000)})
        during: list[float] = []
        answers: list[tuple[float, int, int]] = []
        for _ in range(rounds):

            def post() -> None:
                started = time.perf_counter()
                r = httpx.post(f"{url}/predict", content=flood_body, headers={"content-type": "application/json"},
                               timeout=60)  # fmt: skip
                answers.append(((time.perf_counter() - started) * 1000, r.status_code, len(r.content)))

            flood = threading.Thread(target=post)
            flood.start()
            while flood.is_alive():
                during.append(probe_ms(client))
            flood.join()
        rows.append(["`/health/live` p50 / max, idle", f"{statistics.median(idle):.2f} / {max(idle):.2f} ms"])
        rows.append([f"`/health/live` p50 / max while {rounds} bodies of 250,000 unknown keys (3.4 MB) are refused",
                     f"{statistics.median(during):.2f} / {max(during):.2f} ms (max {max(during) / max(idle):.1f}× "
                     f"idle max; {len(during)} probes)"])  # fmt: skip
        rows.append(["that refusal: status, size, time (client side, upload included)",
                     f"{answers[0][1]}, {max(a[2] for a in answers):,} bytes, p50 "
                     f"{statistics.median(a[0] for a in answers):.0f} ms"])  # fmt: skip
        head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        held, status = held_seconds(slow_socket(url, head + b'{"ns": 1'))
        rows.append(
            ["a body declaring 1,000 bytes, sending 8 (timeout 2 s)", f"{status.decode()}, closed after {held:.2f} s"]
        )
        held, status = held_seconds(slow_socket(url, b""))
        rows.append(
            ["a connection that sends nothing (head timeout 2 s)", f"closed after {held:.2f} s {status.decode()}"]
        )
        stalled = [slow_socket(url, head + b"{") for _ in range(LIMIT)]
        wait_for(lambda: client.post("/predict", json=COMMIT).status_code == 503, "the limit", 10)
        refused = []
        for _ in range(100):
            started = time.perf_counter()
            assert client.post("/predict", json=COMMIT).status_code == 503
            refused.append((time.perf_counter() - started) * 1000)
        for sock in stalled:
            sock.close()
        rows.append([f"`/predict` beyond {LIMIT} requests in flight: 503 `Overloaded`, p50 / max",
                     f"{statistics.median(refused):.2f} / {max(refused):.2f} ms"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="existing models dir (default: train one)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="commitrisk-hostile-") as tmp:
        work = Path(tmp)
        models = args.models
        if models is None:
            models = work / "models"
            train_champion(models)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        flood = orjson.dumps(COMMIT | {f"k{i}": 1 for i in range(250_000)})
        cpu, status, size = refusal_cpu(models, work, flood)
        proc, url = start(models, work)
        try:
            rows = measure(url, args.rounds)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        rows.insert(0, ["one refusal of 250,000 unknown keys, in-process: CPU (best of 5), status, answer size",
                        f"{cpu * 1000:.0f} ms, {status}, {size:,} bytes"])  # fmt: skip
    body = (f"One worker (`python -m app`), body and head timeouts 2 s, {LIMIT} requests at once; load average at "
            f"start {load}.\n\n" + table(["scenario", "figure"], rows))  # fmt: skip
    append("Hostile clients (`bench/hostile.py`)", body)


if __name__ == "__main__":
    main()
