"""The prediction log writer's pacing (app/monitoring/pacer.py): `/predict` latency with it, without it, and with
the log off, in one run.

Three one-worker servers with the same champion are started together and measured in alternation, `--rounds`
times: the service as shipped (writer paced), the same service with the pacer patched out (this script, run as
`--serve-unpaced`, replaces `Pacer.__call__` with a no-op before serving: a benchmark-only switch, the product has
none), and the service with `COMMITRISK_PREDICTION_LOG=false` (no writer at all: the floor). wrk -t1 -c16 on
`/predict?explain=false` with one commit, as bench/serve.py. Paired per round, the rounds say whether the pacing
moves p99 beyond this shared machine's noise.

    .venv/bin/python -m bench.pacing [--models DIR] [--rounds 5] [--seconds 10] [--no-append]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.machine import publish, table
from bench.serve import Load, commits, free_port, launch, machine, script_for, stop, wrk
from bench.service import train_champion

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("paced (as shipped)", "unpaced", "log off")


def serve_unpaced(models: Path, port: int) -> None:
    """Serve like `commitrisk serve` (one worker) with the writer's pacer patched out."""
    from app.__main__ import serve
    from app.monitoring import pacer

    pacer.Pacer.__call__ = lambda self: None  # type: ignore[method-assign]
    serve(models, "127.0.0.1", port, 1)


def start_all(models: Path, work: Path) -> dict[str, tuple[object, str]]:
    """The three servers, ready."""
    started: dict[str, tuple[object, str]] = {}
    for name in SERVERS:
        port = free_port()
        if name == "unpaced":
            cmd = [sys.executable, "-m", "bench.pacing", "--serve-unpaced", str(models), str(port)]
        else:
            cmd = [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)]
        if name == "log off":
            os.environ["COMMITRISK_PREDICTION_LOG"] = "false"
        try:
            started[name] = launch(cmd, port, work)
        finally:
            os.environ.pop("COMMITRISK_PREDICTION_LOG", None)
    return started


def measure(models: Path, rounds: int, seconds: int, work: Path) -> dict[str, list[Load]]:
    """Per server, one wrk run per round, servers alternating."""
    script = script_for(work, "one", commits(1)[0])
    servers = start_all(models, work)
    loads: dict[str, list[Load]] = {name: [] for name in SERVERS}
    try:
        for _ in range(rounds):
            for name, (_, url) in servers.items():
                wrk(f"{url}/predict?explain=false", script, 16, 2)  # warm-up
                loads[name].append(wrk(f"{url}/predict?explain=false", script, 16, seconds))
                last = loads[name][-1]
                print(f"  {name:20s} {last.rps:7.0f} req/s  p50 {last.p50_ms:6.2f} ms  p99 {last.p99_ms:6.2f} ms",
                      flush=True)  # fmt: skip
    finally:
        for proc, _ in servers.values():
            stop(proc)  # type: ignore[arg-type]
    return loads


def report(loads: dict[str, list[Load]], rounds: int, seconds: int) -> str:
    """The Markdown section: per server medians and per-round p99, and the paired comparison."""
    rows = []
    for name, runs in loads.items():
        per_round = " / ".join(f"{r.p99_ms:.1f}" for r in runs)
        rows.append([name, f"{statistics.median(r.rps for r in runs):,.0f}",
                     f"{statistics.median(r.p50_ms for r in runs):.2f}",
                     f"{statistics.median(r.p99_ms for r in runs):.2f}", per_round])  # fmt: skip
    paced, unpaced = loads["paced (as shipped)"], loads["unpaced"]
    lower = sum(p.p99_ms < u.p99_ms for p, u in zip(paced, unpaced, strict=True))
    ratios = [p.p99_ms / u.p99_ms for p, u in zip(paced, unpaced, strict=True)]
    rps = [p.rps / u.rps for p, u in zip(paced, unpaced, strict=True)]
    return (
        f"Machine: {machine()}. Three one-worker servers, the same champion, measured in alternation ({rounds} "
        f"rounds × {seconds} s; wrk -t1 -c16, `/predict?explain=false`, one commit; SQLite log).\n\n"
        + table(["server", "req/s (median)", "p50 ms", "p99 ms (median)", "p99 per round"], rows)
        + f"\n\nPaced vs unpaced, round by round: p99 lower in **{lower} of {rounds}** rounds, p99 ratio median "
        f"**{statistics.median(ratios):.2f}** ({' / '.join(f'{r:.2f}' for r in ratios)}), req/s ratio median "
        f"{statistics.median(rps):.2f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="existing models dir (default: train one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--serve-unpaced", nargs=2, metavar=("MODELS", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_unpaced:
        serve_unpaced(Path(args.serve_unpaced[0]), int(args.serve_unpaced[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = args.models or work / "models"
        if args.models is None:
            train_champion(models)
        loads = measure(models, args.rounds, args.seconds, work)
    publish("Log writer pacing (`bench/pacing.py`)", report(loads, args.rounds, args.seconds), args.no_append)


if __name__ == "__main__":
    main()
