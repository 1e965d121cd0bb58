"""A/B of one worker's `/predict` throughput: this checkout against others, paired round by round.

Each server is `python -m app` (one worker, its own SQLite log, the same champion) run from its checkout with this
venv: this checkout, every `--tree DIR` (e.g. a `git worktree` of an older commit) and, with `--log-off`, this
checkout with COMMITRISK_PREDICTION_LOG=false. All are started at once and measured one at a time, rounds
alternating their order (wrk -t1 -c16 after a 2-s warm-up). On a shared host whose speed drifts by ±20 % within
minutes, only the paired ratio means much: each round's servers ran within seconds of each other; the table gives
the median over rounds and every round's ratio. `--database-url` (a PostgreSQL server, as docker-compose deploys):
each server logs to a database of its own created there for the run and dropped after it.

    .venv/bin/python -m bench.ab --models models --tree /work/old [--rounds 10] [--seconds 4] [--log-off]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.load import commits, loaded, script_for
from bench.machine import publish, short_commit, table
from bench.servers import ROOT, free_port, launch, log_databases, stop

THIS = "this checkout"
LOG_OFF = "this checkout, log off"


def servers(trees: list[Path], log_off: bool) -> dict[str, tuple[Path, dict[str, str]]]:
    """Name → (checkout, extra environment) of every server compared; this checkout first (the base)."""
    found: dict[str, tuple[Path, dict[str, str]]] = {THIS: (ROOT, {})}
    for tree in trees:
        if not (tree / "app" / "__main__.py").is_file():
            raise SystemExit(f"error: --tree: {tree}: no app/__main__.py (not a commitrisk checkout)")
        found[f"`{tree}` at {short_commit(tree) or '?'}"] = (tree, {})
    if log_off:
        found[LOG_OFF] = (ROOT, {"COMMITRISK_PREDICTION_LOG": "false"})
    return found


def order(names: list[str], round_index: int) -> list[str]:
    """The servers in the order round `round_index` measures them: forwards, then backwards, alternately."""
    return names if round_index % 2 == 0 else names[::-1]


def paired(rps: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per server, each round's req/s divided by the base's (the first server) in the same round."""
    base = next(iter(rps.values()))
    return {name: [mine / theirs for mine, theirs in zip(runs, base, strict=True)] for name, runs in rps.items()}


def measure(
    models: Path,
    compared: dict[str, tuple[Path, dict[str, str]]],
    rounds: int,
    seconds: int,
    work: Path,
    path: str,
    database_url: str | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """(req/s, p99 ms, server CPU µs per request) per server and round."""
    script = script_for(work, "one", commits(1)[0])
    started: dict[str, tuple[subprocess.Popen[bytes], str]] = {}

    def stop_all() -> None:
        for proc, _ in started.values():
            stop(proc)

    with contextlib.ExitStack() as stack:
        logs = stack.enter_context(log_databases(database_url, len(compared)))
        stack.callback(stop_all)  # before the databases are dropped
        for (name, (root, extra)), log in zip(compared.items(), logs, strict=True):
            port = free_port()
            cmd = [sys.executable, "-m", "app", "--models", str(models), "--port", str(port)]
            started[name] = launch(cmd, port, work, root, {**log, **extra})
        rps: dict[str, list[float]] = {name: [] for name in compared}
        p99: dict[str, list[float]] = {name: [] for name in compared}
        cpu: dict[str, list[float]] = {name: [] for name in compared}
        for index in range(rounds):
            for name in order(list(compared), index):
                proc, url = started[name]
                loaded(f"{url}{path}", script, 16, 2, {proc.pid}, set())  # warm-up
                load, per_request, _ = loaded(f"{url}{path}", script, 16, seconds, {proc.pid}, set())
                rps[name].append(load.rps)
                p99[name].append(load.p99_ms)
                cpu[name].append(per_request)
                print(f"  round {index + 1}: {name:40s} {load.rps:7.0f} req/s  p99 {load.p99_ms:5.2f} ms  "
                      f"{per_request:6.1f} CPU µs/request", flush=True)  # fmt: skip
    return rps, p99, cpu


def report(
    rps: dict[str, list[float]],
    p99: dict[str, list[float]],
    cpu: dict[str, list[float]],
    path: str,
    log: str = "SQLite log",
) -> str:
    """The Markdown body: medians per server and the paired ratios to this checkout."""
    ratios = paired(rps)
    rows: list[list[object]] = [
        [name, f"{statistics.median(rps[name]):,.0f}", f"{statistics.median(p99[name]):.2f}",
         f"{statistics.median(cpu[name]):.1f}",
         "—" if name == THIS else f"**{statistics.median(ratios[name]):.3f}** ("
         + " / ".join(f"{r:.2f}" for r in ratios[name]) + ")"]
        for name in rps
    ]  # fmt: skip
    header = ["server", "req/s (median)", "p99 ms (median)", "server CPU µs/request", "÷ this checkout, paired"]
    rounds = len(next(iter(rps.values())))
    return (
        f"One-worker servers, the same champion, `{path}` with one commit (wrk -t1 -c16, {log}), {rounds} rounds "
        "alternating the order; a ratio below 1 means slower than this checkout.\n\n" + table(header, rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="models dir with a champion")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to compare")
    parser.add_argument("--log-off", action="store_true", help="also this checkout with the prediction log off")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--path", default="/predict?explain=false")
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to log to (a database per server, dropped after); default SQLite"
    )
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    if not (args.models / "champion").exists():
        raise SystemExit(f"error: --models: {args.models}: no champion pointer (train one first)")
    compared = servers(args.tree, args.log_off)
    if len(compared) < 2:
        raise SystemExit("error: nothing to compare: give --tree DIR and/or --log-off")
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        rps, p99, cpu = measure(
            args.models, compared, args.rounds, args.seconds, Path(tmp), args.path, args.database_url
        )
    log = "SQLite log" if args.database_url is None else "PostgreSQL log, a database per server"
    publish("A/B of `/predict` throughput (`bench/ab.py`)", report(rps, p99, cpu, args.path, log), args.no_append)


if __name__ == "__main__":
    main()
