"""`/predict` throughput idle and while one client browses the web pages, with the page process on and off, in
interleaved rounds of one run (bench/ui.py), and where the CPU went (the worker's, its page process's)."""

from __future__ import annotations

import json
import os
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.contract import FEATURES
from bench.monitoring import resample, wrk
from bench.service import child_processes

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of one process so far (0 for none, or one that is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def page_process_of(worker: int) -> int | None:
    """The page process a worker started (app/ui/process.py; its entry app/ui/server.py), if any."""
    found = child_processes(worker, b"app.ui.server", zombies=False)
    return min(found) if found else None


@dataclass
class Browsing:
    """One server's figures: /predict req/s per round idle and while browsed, pages served, CPU while browsed."""

    idle: list[float]
    busy: list[float]
    pages: int = 0
    idle_cpu: float = 0.0  # CPU seconds of the serving worker during the idle rounds
    worker_cpu: float = 0.0  # …during the browsed rounds
    page_cpu: float = 0.0  # …of its page process

    @property
    def ratio(self) -> float:
        return statistics.median(self.busy) / statistics.median(self.idle)

    def round_ratios(self) -> list[float]:
        """Browsed / idle req/s of each round (the two measured back to back)."""
        return [busy / idle for busy, idle in zip(self.busy, self.idle, strict=True)]


def paired(case: Browsing, control: Browsing) -> tuple[float, float, float]:
    """(median, min, max) over the rounds of `case`'s round ratio divided by the control's in the same round: what
    the case costs beyond the cores the browsing itself takes (1.0 = nothing)."""
    shares = [a / b for a, b in zip(case.round_ratios(), control.round_ratios(), strict=True)]
    return statistics.median(shares), min(shares), max(shares)


def page_socket(worker: int) -> str:
    """The Unix socket of a worker's page process (its first argument)."""
    pid = page_process_of(worker)
    assert pid is not None, "no page process: browse the pages once first"
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[3].decode()


def browse_while(base: str, uds: str | None, paths: list[str], stop: threading.Event, served: list[int]) -> None:
    """Request every page in turn until `stop` (one client, as a person clicking through as fast as it answers);
    through `uds` when given (the page process itself, bypassing its worker)."""
    transport = httpx.HTTPTransport(uds=uds) if uds else None
    with httpx.Client(base_url=base, timeout=120, headers={"accept": "text/html"}, transport=transport) as client:
        while not stop.is_set():
            for path in paths:
                client.get(path)
                served[0] += 1


def throughput_while_browsing(
    servers: dict[str, tuple[str, int, bool]], paths: list[str], work: Path, seconds: int, rounds: int
) -> dict[str, Browsing]:
    """wrk /predict (16 connections) idle and while browsed, per case (name → (base URL, worker pid, whether the
    client browses the worker's page process directly)); the rounds interleave the cases and the two states, so the
    other load on a shared machine hits them alike."""
    commit = resample(1, seed=5).iloc[0][list(FEATURES)].to_dict()
    script = work / "predict.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(json.dumps(commit))}\n")  # fmt: skip
    found = {name: Browsing([], []) for name in servers}
    for _ in range(rounds):
        for name, (base, worker, direct) in servers.items():
            result = found[name]
            before = cpu_seconds(worker)
            result.idle.append(wrk(base, script, seconds, 16)[0])
            result.idle_cpu += cpu_seconds(worker) - before
            stop, served = threading.Event(), [0]
            uds = page_socket(worker) if direct else None
            thread = threading.Thread(target=browse_while, args=(base, uds, paths, stop, served))
            thread.start()
            page = page_process_of(worker)
            before = cpu_seconds(worker), cpu_seconds(page)
            result.busy.append(wrk(base, script, seconds, 16)[0])
            page = page or page_process_of(worker)  # started by the first page of the first round
            result.worker_cpu += cpu_seconds(worker) - before[0]
            result.page_cpu += cpu_seconds(page) - (before[1] if before[1] else 0.0)
            stop.set()
            thread.join()
            result.pages += served[0]
    return found


def forwarding_cpu(base: str, worker: int, paths: list[str], rounds: int) -> tuple[float, float, int]:
    """(worker, page process) CPU ms per page and the pages' mean size in bytes, browsing `paths` in turn `rounds`
    times through the worker with nothing else running: what forwarding one page costs the worker."""
    with httpx.Client(base_url=base, timeout=120, headers={"accept": "text/html"}) as client:
        for path in paths:  # the page process is up and its aggregates are cached before measuring
            client.get(path)
        page = page_process_of(worker)
        before = cpu_seconds(worker), cpu_seconds(page)
        size = sum(len(client.get(path).content) for _ in range(rounds) for path in paths)
        spent = cpu_seconds(worker) - before[0], cpu_seconds(page) - before[1]
    pages = rounds * len(paths)
    return spent[0] * 1e3 / pages, spent[1] * 1e3 / pages, size // pages
