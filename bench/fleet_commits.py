"""The prediction log's cost when the commits are a fleet's: a new SHA every request, 200 repositories.

A benchmark posting one commit over and over inserts every row at the same place of each index on `predictions`;
real traffic scatters its rows over five indexes (time, commit id, and three led by the repository), and each
transaction writes every index page its rows touched. This section serves the same model with the log off, on
(default settings) and on with `COMMITRISK_LOG_FLUSH_SECONDS=0.05` (how often the writer committed under load
before it gathered rows for up to 0.5 s), wrk posting a fresh commit id and one of 200 repositories per request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from statistics import median
from typing import Any, Protocol

from bench.machine import table

REPOSITORIES = 200


class LoadedServer(Protocol):
    """What bench/monitoring.py's Server offers."""

    def load(self, script: Path, seconds: int, connections: int) -> tuple[float, float, float, float]: ...
    def metric(self, name: str) -> float: ...
    def stop(self) -> None: ...


def write_script(commit: dict[str, Any], path: Path) -> Path:
    """A wrk script posting `commit`'s metrics with a random 40-hex commit id and one of REPOSITORIES repositories."""
    base = json.dumps({k: v for k, v in commit.items() if k not in ("commit_id", "repository")})[:-1]
    path.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local base = {json.dumps(base)}\nmath.randomseed(7)\n"
        "request = function()\n"
        '  local sha = string.format("%08x%08x%08x%08x%08x", math.random(0, 2147483646), math.random(0, 2147483646),\n'
        "    math.random(0, 2147483646), math.random(0, 2147483646), math.random(0, 2147483646))\n"
        f'  local body = base .. \', "commit_id": "\' .. sha .. \'", "repository": "repo-\' .. '
        f"math.random(1, {REPOSITORIES}) .. '\"}}'\n"
        "  return wrk.format(nil, nil, nil, body)\nend\n"
    )
    return path


def log_cost(
    servers: Mapping[str, Callable[[], LoadedServer]], script: Path, rounds: int, seconds: int, connections: int
) -> str:
    """Interleaved wrk rounds against every server (name → factory); a table with each one's ratio to the first."""
    started = {name: make() for name, make in servers.items()}
    try:
        runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in started}
        for server in started.values():  # warm-up
            server.load(script, 2, connections)
        for _ in range(rounds):
            for name, server in started.items():
                runs[name].append(server.load(script, seconds, connections))
        time.sleep(1.0)  # let the writers drain before reading their counters
        logged = {
            name: (server.metric("commitrisk_prediction_log_written_total"),
                   server.metric("commitrisk_prediction_log_dropped_total"))
            for name, server in started.items()
        }  # fmt: skip
    finally:
        for server in started.values():
            server.stop()
    first = median(r[0] for r in next(iter(runs.values())))
    rows = [
        [name, f"{median(r[0] for r in rs):.0f}", f"{median(r[0] for r in rs) / first:.3f}",
         f"{median(r[2] for r in rs) * 1e3:.2f}", f"{median(r[3] for r in rs):.0f}",
         f"{logged[name][0]:,.0f} / {logged[name][1]:,.0f}"]
        for name, rs in runs.items()
    ]  # fmt: skip
    return "\n\n".join([
        f"Every request a new commit id and one of {REPOSITORIES} repositories ({rounds} interleaved rounds × "
        f"{seconds} s; wrk 1 thread, {connections} connections; rows counted when the load ends):",
        table(["prediction log", "req/s (median)", "ratio to the first row", "p99 ms", "server CPU µs/request",
               "rows written / dropped"], rows),
    ])  # fmt: skip
