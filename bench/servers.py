"""The servers the serving benches measure: commitrisk (`training serve`, one or several workers) and the reference
handlers, started on free ports with their own log database (a SQLite file, or a PostgreSQL database created for the
run: `log_databases`), waited for, stopped; the models dir they serve."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.service import spawned_workers

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "commits"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    models: Path, workers: int, work: Path, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)]
    return launch([*cmd, "--workers", str(workers)], port, work, extra=extra)


def start_reference(module: str, models: Path, work: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", module, "--models", str(models), "--port", str(port)]
    return launch([*cmd, *(["--workers", str(workers)] if workers > 1 else [])], port, work)


def launch(
    cmd: list[str], port: int, work: Path, root: Path = ROOT, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Run `cmd` in `root` (this checkout, or another's) with `extra` environment; ready when /health/ready is 200."""
    env = {**os.environ, "COMMITRISK_ADMIN_TOKEN": "bench", "COMMITRISK_DATABASE_URL": f"sqlite:///{work}/p{port}.db"}
    env.update(extra or {})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (work / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not become ready; see {work / f'server-{port}.log'}")


@contextlib.contextmanager
def log_databases(url: str | None, count: int) -> Iterator[list[dict[str, str]]]:
    """The extra environment of `count` servers: nothing (each its own SQLite file, `launch`'s default), or with a
    PostgreSQL `url` a database of its own on that server, dropped afterwards."""
    if url is None:
        yield [{} for _ in range(count)]
        return
    if make_url(url).get_backend_name() != "postgresql":
        raise SystemExit(f"error: --database-url: {url}: not a PostgreSQL URL (SQLite is the default)")
    names = [f"bench_ab_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        own = [make_url(url).set(database=name).render_as_string(hide_password=False) for name in names]
        yield [{"COMMITRISK_DATABASE_URL": u} for u in own]
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def worker_pids(proc: subprocess.Popen[bytes], workers: int) -> set[int]:
    """The processes that serve: the server itself, or uvicorn's spawned workers."""
    return {proc.pid} if workers == 1 else spawned_workers(proc.pid)


def wait_for_workers(url: str, workers: int, timeout: float = 120.0) -> None:
    """Until every worker has loaded the model (its `commitrisk_model_info` series, one per pid, in /metrics): wrk's
    connections stay with the worker that accepted them, and a worker still starting would leave all to the other."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        if (
            len(set(re.findall(r'^commitrisk_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0$', text, re.MULTILINE)))
            >= workers
        ):
            return
        time.sleep(0.5)
    raise SystemExit(f"error: fewer than {workers} workers loaded the model within {timeout:.0f} s at {url}")


def answering_pids(url: str, workers: int, timeout: float = 60.0) -> set[int]:
    """The hand-written handler's worker pids, once each has answered `/pid` (a new connection per ask: the
    kernel hands it to whichever worker accepts first)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"error: fewer than {workers} workers answered within {timeout:.0f} s at {url}")
        seen.add(int(httpx.get(f"{url}/pid", timeout=10).text))
        time.sleep(0.05)
    return seen


def prepare_models(work: Path, models: Path | None) -> Path:
    """A models dir with at least two versions (a copy of the champion as the next number if needed)."""
    if models is None:
        models = work / "models"
        cmd = [sys.executable, "-m", "training", "train", "--data", str(DATA), "--models", str(models), "--budget", "2"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    else:
        shutil.copytree(models, work / "models")
        models = work / "models"
    versions = sorted(int(p.name) for p in models.iterdir() if p.name.isdigit())
    if len(versions) < 2:
        clone = models / str(versions[-1] + 1)
        shutil.copytree(models / str(versions[-1]), clone)
        manifest = json.loads((clone / "manifest.json").read_text())
        manifest["version"] = versions[-1] + 1
        (clone / "manifest.json").write_text(json.dumps(manifest))
    return models


def log_dropped(url: str) -> float:
    """`commitrisk_prediction_log_dropped_total` of the server (summed over workers by the multiprocess mode)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r"^commitrisk_prediction_log_dropped_total(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.MULTILINE)
    return sum(float(value) for value in found)
