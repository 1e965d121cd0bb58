"""Instructions per request: one request's CPU work counted by valgrind, the same on a quiet or a loaded machine.

req/s on this shared 2-core machine swing with the neighbours' load; the number of instructions a request executes
does not. Each server (commitrisk, the hand-written Starlette + onnxruntime handler of bench/reference_starlette.py)
is driven in-process — its ASGI app called directly, no sockets, its lifespan and log writer thread running — under
`valgrind --tool=callgrind`, once with `--small` and once with `--large` requests: the difference divided by the
difference in requests is one request's instructions, start-up and imports cancelled out. The uvicorn/httptools
part both servers share is not included. `--tree DIR` measures another checkout (e.g. a `git worktree` of an older
commit) beside this one in the same run.

    .venv/bin/python bench/instructions.py [--tree /work/base] [--kinds plain explained v2] [--multiprocess]

Needs `valgrind` (Debian package); slow (~3 min per measurement). Appends the table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import publish, short_commit, table  # noqa: E402
from bench.service import train_champion  # noqa: E402

# No `app` import up here: the child process imports the `app` of the checkout it measures (its working directory).
METRICS = {"ns": 1, "nd": 1, "nf": 3, "entropy": 0.5, "la": 20, "ld": 5, "ha": 1, "hd": 1, "lt": 200, "ndev": 3,
           "age": 10, "nuc": 4, "exp": 50, "rexp": 10, "sexp": 20}  # fmt: skip
KINDS: dict[str, tuple[str, bytes, bytes]] = {
    "plain": ("/predict", b"explain=false", json.dumps({**METRICS, "commit_id": "abc", "repository": "r"}).encode()),
    "explained": ("/predict", b"", json.dumps({**METRICS, "commit_id": "abc", "repository": "r"}).encode()),
    "v2": ("/v2/models/commitrisk/infer", b"", json.dumps({"inputs": [
        {"name": "features", "shape": [1, 15], "datatype": "FP32", "data": list(METRICS.values())}]}).encode()),
}  # fmt: skip
COLLECTED = re.compile(r"Collected : (\d+)")
# One log transaction of 2,047 rows before counting, in both runs alike (statements of APPEND_CHUNK = 256 rows, then
# 128 + 64 + … + 1): the writer prepares each power-of-two multi-row INSERT once (app/monitoring/appender.py), and a
# size first met in only the longer run's larger transactions would count as ~40k instructions per request.
WARM_ROWS = 2 * 1024 - 1


def scope_of(path: str, query: bytes, body: bytes) -> dict[str, Any]:
    """The HTTP scope uvicorn would pass for this request."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "state": {},
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip


def exchange(body: bytes) -> tuple[Any, Any, list[int]]:
    """ASGI `receive` (one message: `body`) and `send` (records each answer's status) for any number of requests."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    return receive, send, statuses


async def warm_log(app: Any, database: Path) -> None:
    """Score WARM_ROWS commits in one batch and wait until the log has written them (one transaction)."""
    import sqlite3

    commits = [{**METRICS, "commit_id": f"warm{i}", "repository": "r"} for i in range(WARM_ROWS)]
    body = json.dumps({"commits": commits}).encode()
    receive, send, statuses = exchange(body)
    await app(scope_of("/predict/batch", b"explain=false", body), receive, send)
    assert statuses == [200], f"warm-up batch: {statuses}"
    for _ in range(3000):  # under valgrind the write takes seconds
        await asyncio.sleep(0.2)
        with sqlite3.connect(database) as db:
            if db.execute("SELECT count(*) FROM predictions").fetchone()[0] >= WARM_ROWS:
                return
    raise AssertionError("the warm-up batch was never written")


async def drive(app: Any, kind: str, requests: int, lifespan: bool, database: Path | None = None) -> None:
    """`requests` requests of `kind` through `app` (after `warm_log` when the log's `database` is given);
    AssertionError unless every one answered 200."""
    if lifespan:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
        )
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
    if database is not None:
        await warm_log(app, database)
    path, query, body = KINDS[kind]
    receive, send, statuses = exchange(body)
    for _ in range(requests):
        await app(scope_of(path, query, body), receive, send)
    if lifespan:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task
    assert set(statuses) == {200}, f"{kind}: statuses {sorted(set(statuses))}"


def child(server: str, kind: str, requests: int, models: str) -> None:
    """The process valgrind runs: build `server`'s app from the checkout in the working directory, drive it."""
    sys.path.insert(0, os.getcwd())
    if server == "reference":
        from bench.reference_starlette import build

        asyncio.run(drive(build(Path(models)), kind, requests, lifespan=False))
        return
    from app.main import create_app
    from app.settings import Settings

    with tempfile.TemporaryDirectory() as work:
        database = Path(work) / "log.db"
        os.environ["COMMITRISK_DATABASE_URL"] = f"sqlite:///{database}"
        # Prediction log on, as served; batches large enough for the warm-up (no cost to a single commit's route).
        app = create_app(Settings(models_dir=Path(models), ui_process=False, max_batch=WARM_ROWS))
        asyncio.run(drive(app, kind, requests, lifespan=True, database=database))


def count(tree: Path, server: str, kind: str, requests: int, models: Path) -> int:
    """Instructions of one whole child run under callgrind."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(Path(__file__)),
           "--child", server, kind, str(requests), str(models)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    run = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    found = COLLECTED.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"bench/instructions.py: {server} {kind} in {tree} failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def per_request(tree: Path, server: str, kind: str, small: int, large: int, models: Path) -> float:
    """Instructions of one request: the difference of a large and a small run over their difference in requests."""
    # Bytecode compiled in one run but not the other (a new checkout, an edited module) would count as requests.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "app"), str(tree / "bench")], check=True)
    return (count(tree, server, kind, large, models) - count(tree, server, kind, small, models)) / (large - small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="existing models dir (default: train one)")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to measure too")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=["plain", "explained", "v2"])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument(
        "--multiprocess", action="store_true", help="prometheus-client's multiprocess mode, as with --workers N > 1"
    )
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("SERVER", "KIND", "REQUESTS", "MODELS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        server, kind, requests, models = args.child
        child(server, kind, int(requests), models)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/instructions.py: valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as work:
        if args.multiprocess:  # inherited by every child (count), as `python -m app --workers 2` sets it
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(work) / "metrics")
            os.mkdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        models = args.models or Path(work) / "models"
        if args.models is None:
            train_champion(models)
        reference = per_request(ROOT, "reference", "plain", args.small, args.large, models)
        rows: list[list[object]] = [
            ["hand-written Starlette + onnxruntime", "/predict", f"{reference / 1000:,.0f}k", "1.00×"]
        ]
        for tree in [ROOT, *args.tree]:
            name = "commitrisk" if tree == ROOT else f"commitrisk at {short_commit(tree)} (`{tree}`)"
            for kind in args.kinds:
                n = per_request(tree, "commitrisk", kind, args.small, args.large, models)
                rows.append([name, f"{KINDS[kind][0]}?{KINDS[kind][1].decode()}".rstrip("?"), f"{n / 1000:,.0f}k",
                             f"{reference / n:.2f}×"])  # fmt: skip
            print(table(["server", "request", "instructions per request", "hand-written / this"], rows), flush=True)
    body = (table(["server", "request", "instructions per request", "hand-written / this"], rows)
            + "\n\nIn-process (ASGI app called directly, lifespan and prediction log on, SQLite"
            + (", prometheus-client in multiprocess mode" if args.multiprocess else "") + "), callgrind, "
            f"({args.large} − {args.small}) requests; the HTTP server's own work, the same for every row, is not "
            "included. The last column is what the instruction counts alone predict for the req/s ratio of "
            "`bench/serve.py` before the server's share. Under valgrind a request takes ~50× longer, so the log "
            "writer's transactions hold a few rows instead of hundreds: the log's share is overstated. Before "
            f"counting, each commitrisk run logs one batch of {WARM_ROWS:,} commits, so that the writer's one-off "
            "statement preparation is the same in both runs.")  # fmt: skip
    publish("Instructions per request (`bench/instructions.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
