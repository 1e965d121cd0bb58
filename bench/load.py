"""wrk against a server: the bodies it posts (real commits), one run's throughput and latency, the CPU it cost
the server and wrk, and wrk's connections per worker.

Shared by bench/serve.py and bench/pacing.py. Needs `wrk` (Debian: apt-get install -y wrk).
"""

from __future__ import annotations

import csv
import json
import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from app.contract import FEATURES
from bench.servers import DATA

LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); if f then wrk.body = f:read("*a"); f:close() end
"""


@dataclass
class Load:
    """One wrk run: throughput, latency, refusals, requests answered, and the CPU seconds wrk itself used."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    wrk_cpu: float
    spread: str = "-"  # wrk's connections per worker, counted a second into the run (several workers only)


def script_for(work: Path, name: str, body: object) -> Path:
    body_path = work / f"{name}.json"
    body_path.write_bytes(json.dumps(body).encode())
    script = work / f"{name}.lua"
    script.write_text(LUA.format(method="POST", body=body_path))
    return script


def wrk(url: str, script: Path | None, connections: int, seconds: int, workers: set[int] | None = None) -> Load:
    """One wrk run; with `workers` (several), how wrk's connections spread over them a second into the run."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spread = "-"
    if workers is not None and len(workers) > 1:
        time.sleep(min(1.0, seconds / 2))
        spread = " / ".join(map(str, established(workers, int(url.split(":")[2].split("/")[0]))))
    out, err = proc.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child waited for meanwhile
    if proc.returncode != 0:
        raise SystemExit(f"error: wrk failed on {url}: {err.strip() or out.strip()}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(rps, percentile("50"), percentile("99"), int(errors.group(1)) if errors else 0, requests,
                usage.ru_utime + usage.ru_stime, spread)  # fmt: skip


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds the processes have used so far (processes that ended count zero)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def loaded(
    url: str, script: Path | None, connections: int, seconds: int, pids: set[int], workers: set[int]
) -> tuple[Load, float, str]:
    """One wrk run with the server's CPU time per request and the CPU split (server / wrk, % of all cores)."""
    before_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = cpu_seconds(pids)
    load = wrk(url, script, connections, seconds, workers)
    server = cpu_seconds(pids) - before
    wrk_cpu = load.wrk_cpu - (before_wrk.ru_utime + before_wrk.ru_stime)
    cores = (os.cpu_count() or 1) * seconds / 100
    split = f"{server / cores:.0f} / {wrk_cpu / cores:.0f}"
    return load, 1e6 * server / max(load.requests, 1), split


def established(pids: set[int], port: int) -> list[int]:
    """Established connections to `port` held by each process (sorted, largest first), from /proc."""
    inodes: dict[str, int] = {}
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                inodes[fields[9]] = 0
    counts = []
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts.append(held)
    return sorted(counts, reverse=True)


def rss_mb(pids: set[int]) -> float:
    """Largest resident set among the worker processes, MB."""
    sizes = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
    return max(sizes)


def commits(n: int) -> list[dict[str, float | str]]:
    """Real rows from the shared datasets, repeated to n."""
    rows: list[dict[str, float | str]] = []
    for path in sorted(DATA.glob("*.csv")):
        csv.field_size_limit(1 << 30)
        with path.open(newline="") as fh:
            for record in csv.DictReader(fh):
                rows.append({**{f: float(record[f]) for f in FEATURES}, "commit_id": record["commit_hash"]})
    if not rows:
        raise SystemExit(f"error: no shared datasets at {DATA} (the benchmarks read ../shared beside the checkout)")
    return [rows[i % len(rows)] for i in range(n)]
