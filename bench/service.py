"""A real `python -m app` server for fault-injection tests and the soak benchmark: start it with its own
environment, find its workers, read its metrics, `kill -9` a worker, stop it.

Benchmarks never import the tests; the tests may import this (tests/support.py re-exports it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.replicas import free_port

ROOT = Path(__file__).resolve().parents[1]


class Service:
    """`python -m app --models M --workers N` in its own process group; the log goes to `work/server-<port>.log`."""

    def __init__(self, models: Path, work: Path, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.models = models
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / f"server-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each server merges only its own workers
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Service:
        """Start the server (returns at once; see `wait`)."""
        command = [sys.executable, "-m", "app", "--models", str(self.models), "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with self.log_path.open("wb") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait(self, path: str = "/health/ready", seconds: float = 60.0) -> float:
        """Seconds from start until `path` answers 200 (RuntimeError with the log if the server exits or stalls)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return time.monotonic() - self.started_at
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{path} did not answer 200 within {seconds} s:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The processes that serve: the server itself, or uvicorn's spawned workers (sorted)."""
        assert self.process is not None
        return [self.process.pid] if self.workers == 1 else sorted(spawned_workers(self.process.pid))

    def kill_worker(self) -> int:
        """`kill -9` one worker (the supervisor restarts it); its pid."""
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (over every worker's)."""
        body = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the process group (SIGKILL after `timeout` s); the server's exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def train_champion(models: Path) -> None:
    """Version 1 in `models`: logistic regression on the pooled shared data (a quick, real champion to serve)."""
    subprocess.run(
        [sys.executable, "-m", "training", "train", "--data", str(ROOT.parent / "shared" / "data" / "commits"),
         "--models", str(models), "--budget", "2", "--family", "logistic_regression", "--json"],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip


def spawned_workers(supervisor: int) -> set[int]:
    """The pids of uvicorn's spawned worker processes of `supervisor` (not multiprocessing's resource tracker)."""
    return child_processes(supervisor, b"spawn_main", exclude=b"resource_tracker")


def child_processes(parent: int, marker: bytes, exclude: bytes | None = None, zombies: bool = True) -> set[int]:
    """The pids of `parent`'s children whose command line holds `marker` (and not `exclude`); `zombies=False`
    leaves out the dead ones their parent has not reaped yet."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text, command = status.read_text(), (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if re.search(rf"PPid:\s+{parent}\n", text) is None or marker not in command:
            continue
        if (exclude is None or exclude not in command) and (zombies or "State:\tZ" not in text):
            found.add(int(status.parent.name))
    return found


def rss_mb(pid: int) -> float:
    """Resident set of one process, MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    return int(match.group(1)) / 1024 if match else 0.0
