"""The prediction log writer's pacing (app/monitoring/pacer.py): `/predict` latency with it, without it, and with
the log off, in one run.

One-worker servers with the same champion are started together and measured in alternation, `--rounds` times:
the service as shipped (writer paced), the same service with the pacer patched out (this script, run as
`--serve-with 0 0`, replaces `Pacer.__call__` with a no-op before serving: a benchmark-only switch, the product has
none), the service with `COMMITRISK_PREDICTION_LOG=false` (no writer at all: the floor), and with `--also
SLICE_MS:PAUSE_MS` the pacer with other slice and pause lengths. wrk -t1 -c16 on
`/predict?explain=false` with one commit, as bench/serve.py. Paired per round, the rounds say whether the pacing
moves p99 beyond this shared machine's noise.

    .venv/bin/python -m bench.pacing [--models DIR] [--rounds 5] [--seconds 10] [--also 1:1 ...] [--no-append]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.load import Load, commits, script_for, wrk
from bench.machine import publish, table
from bench.servers import free_port, launch, stop
from bench.service import train_champion

ROOT = Path(__file__).resolve().parents[1]


def serve_with(models: Path, port: int, slice_ms: float, pause_ms: float) -> None:
    """Serve like `commitrisk serve` (one worker) with the writer's pacer patched: these slice and pause lengths,
    or no pacing at all when both are 0."""
    from app.__main__ import serve
    from app.monitoring import pacer

    if slice_ms == pause_ms == 0:
        pacer.Pacer.__call__ = lambda self: None  # type: ignore[method-assign]
    else:
        made = pacer.Pacer.__init__

        def with_lengths(self: pacer.Pacer, *args: Any, **kwargs: Any) -> None:
            made(self, *args, **kwargs)
            self.slice_seconds, self.pause_seconds = slice_ms / 1000, pause_ms / 1000

        pacer.Pacer.__init__ = with_lengths  # type: ignore[method-assign]
    serve(models, "127.0.0.1", port, 1)


def start_all(models: Path, work: Path, also: list[str]) -> dict[str, tuple[object, str]]:
    """The servers — as shipped, unpaced, log off, then one per `--also` pacing — ready."""
    shipped = [sys.executable, "-m", "training", "serve", "--models", str(models)]

    def patched(slice_ms: str, pause_ms: str) -> list[str]:
        return [sys.executable, "-m", "bench.pacing", "--serve-with", str(models), "{port}", slice_ms, pause_ms]

    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "paced (as shipped)": ([*shipped, "--port", "{port}"], {}),
        "unpaced": (patched("0", "0"), {}),
        "log off": ([*shipped, "--port", "{port}"], {"COMMITRISK_PREDICTION_LOG": "false"}),
        **{f"paced {v} ms": (patched(*v.split(":", 1)), {}) for v in also},
    }
    started: dict[str, tuple[object, str]] = {}
    for name, (cmd, env) in commands.items():
        port = free_port()
        started[name] = launch([arg.replace("{port}", str(port)) for arg in cmd], port, work, extra=env)
    return started


def measure(models: Path, rounds: int, seconds: int, work: Path, also: list[str]) -> dict[str, list[Load]]:
    """Per server, one wrk run per round, servers alternating."""
    script = script_for(work, "one", commits(1)[0])
    servers = start_all(models, work, also)
    loads: dict[str, list[Load]] = {name: [] for name in servers}
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
    unpaced = loads["unpaced"]
    rows = []
    for name, runs in loads.items():
        p99 = [r.p99_ms / u.p99_ms for r, u in zip(runs, unpaced, strict=True)]
        rps = [r.rps / u.rps for r, u in zip(runs, unpaced, strict=True)]
        lower = sum(ratio < 1 for ratio in p99)
        rows.append([name, f"{statistics.median(r.rps for r in runs):,.0f}",
                     f"{statistics.median(r.p50_ms for r in runs):.2f}",
                     f"{statistics.median(r.p99_ms for r in runs):.2f}", " / ".join(f"{r.p99_ms:.1f}" for r in runs),
                     "—" if runs is unpaced else f"{lower} of {rounds}; **{statistics.median(p99):.2f}**",
                     "—" if runs is unpaced else f"**{statistics.median(rps):.2f}** ("
                     + " / ".join(f"{r:.2f}" for r in rps) + ")"])  # fmt: skip
    header = ["server", "req/s (median)", "p50 ms", "p99 ms (median)", "p99 per round",
              "vs unpaced: rounds with lower p99; median p99 ratio",
              "vs unpaced: req/s ratio, median (per round)"]  # fmt: skip
    return (
        f"{onnxruntime_and_load()}. One-worker servers, the same champion, measured in alternation ({rounds} "
        f"rounds × {seconds} s; wrk -t1 -c16, `/predict?explain=false`, one commit; SQLite log); ratios are paired "
        "by round.\n\n" + table(header, rows)
    )


def onnxruntime_and_load() -> str:
    """What bench.machine's line leaves out: the onnxruntime version and the load average."""
    import onnxruntime

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"onnxruntime {onnxruntime.__version__}, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="existing models dir (default: train one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--also", action="append", default=[], metavar="SLICE_MS:PAUSE_MS", help="another pacing")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--serve-with", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_with:
        models, port, slice_ms, pause_ms = args.serve_with
        serve_with(Path(models), int(port), float(slice_ms), float(pause_ms))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = args.models or work / "models"
        if args.models is None:
            train_champion(models)
        loads = measure(models, args.rounds, args.seconds, work, args.also)
    publish("Log writer pacing (`bench/pacing.py`)", report(loads, args.rounds, args.seconds), args.no_append)


if __name__ == "__main__":
    main()
