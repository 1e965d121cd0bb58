"""Benchmark the model service with wrk; print a table and append it to BENCHMARKS.md.

Every scenario is measured next to the constant route (`GET /health/live`) of the same server in the same run,
so a busy machine shows up as a slow baseline rather than as a slow service. Two reference servers answer the same
commit with the same champion beside it (issue 18): a hand-written Starlette + orjson + onnxruntime handler
(bench/reference_starlette.py) and a minimal FastAPI app (bench/reference_fastapi.py); the ratios to the
hand-written handler are the figures tracked. Each measurement also records the CPU time the server and wrk used
(the CPU split: both share the machine's cores). `--rounds N` repeats every row, servers alternating (two
workers included), and reports medians; `--profile` adds a py-spy profile of one `/predict` under load, by stage
(bench/hot_path.py); `--database-url` logs to PostgreSQL (what docker-compose deploys) instead of SQLite.

    .venv/bin/python bench/serve.py                    # trains a model with `commitrisk train` first
    .venv/bin/python bench/serve.py --models models    # or uses an existing models dir (champion served)
    .venv/bin/python bench/serve.py --models models --rounds 3 --profile
    .venv/bin/python bench/serve.py --models models --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Needs `wrk` (Debian: apt-get install -y wrk) and the shared datasets in ../shared/data/commits.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/serve.py`: the bench package is importable

from app.contract import FEATURES  # noqa: E402
from bench import hot_path  # noqa: E402
from bench.load import commits, loaded, rss_mb, script_for, wrk  # noqa: E402
from bench.machine import describe  # noqa: E402
from bench.ratios import HAND_WRITTEN, Result, medians, targets  # noqa: E402
from bench.servers import (  # noqa: E402
    answering_pids,
    log_databases,
    log_dropped,
    prepare_models,
    start,
    start_reference,
    stop,
    wait_for_workers,
    worker_pids,
)

REFERENCES = {  # label → module, each serving POST /predict and GET /health/live
    HAND_WRITTEN: "bench.reference_starlette",
    "minimal FastAPI": "bench.reference_fastapi",
}


def scenarios(work: Path) -> list[tuple[str, str, Path, int]]:
    """(label, path, wrk script, connections); batches run one at a time so p50 is a batch's own latency."""
    one = commits(1)[0]
    row = [[float(one[f]) for f in FEATURES]]
    infer = {"inputs": [{"name": "features", "shape": [1, 15], "datatype": "FP32", "data": row}]}
    return [
        ("/predict explain=false", "/predict?explain=false", script_for(work, "one", one), 16),
        ("/predict (explained)", "/predict", script_for(work, "one", one), 16),
        ("/v2/.../infer 1 row", "/v2/models/commitrisk/infer", script_for(work, "infer", infer), 16),
        (
            "/predict/batch 100",
            "/predict/batch?explain=false",
            script_for(work, "b100", {"commits": commits(100)}),
            1,
        ),
        (
            "/predict/batch 1000",
            "/predict/batch?explain=false",
            script_for(work, "b1k", {"commits": commits(1000)}),
            1,
        ),
        (
            "/predict/batch 1000 explained",
            "/predict/batch",
            script_for(work, "b1k", {"commits": commits(1000)}),
            1,
        ),
    ]


def measure(url: str, pids: set[int], server: str, workers: int, seconds: int,
            chosen: list[tuple[str, str, Path, int]], serving: set[int] | None = None) -> list[Result]:  # fmt: skip
    """Each scenario, then the same server's constant route, with CPU figures and log rows dropped; `serving`:
    the worker processes among `pids` (their connections are counted when there are several)."""
    results = []
    for label, path, script, connections in chosen:
        wrk(f"{url}{path}", script, connections, 2)  # warm-up
        dropped = log_dropped(url) if server == "commitrisk" else 0.0
        load, cpu_us, split = loaded(f"{url}{path}", script, connections, seconds, pids, serving or pids)
        dropped = (log_dropped(url) - dropped) if server == "commitrisk" else 0.0
        baseline = wrk(f"{url}/health/live", None, connections, seconds).rps
        results.append(Result(server, workers, label, connections, load.rps, load.p50_ms, load.p99_ms, load.errors,
                              baseline, rss_mb(pids), dropped, cpu_us, split, load.spread))  # fmt: skip
        print(f"  {server[:14]:14s} {workers}w {label:30s} {load.rps:8.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
              f"p99 {load.p99_ms:6.2f} ms  cpu {cpu_us:5.0f} µs/req  split {split}  conns {load.spread}  "
              f"(constant route {baseline:.0f} req/s)", flush=True)  # fmt: skip
    return results


def round_steps(workers: list[int]) -> list[tuple[str, int, str]]:
    """One round's runs as (server, workers, scenario), in order: the hand-written handler right before each
    one-worker single-commit scenario and two workers right after one, so every tracked ratio compares runs
    seconds apart (the host's speed drifts within minutes)."""
    plain, explained, v2 = "/predict explain=false", "/predict (explained)", "/v2/.../infer 1 row"
    more = [w for w in workers if w != 1]
    # The hand-written handler's own scaling right before its one-worker run: what this host gives any server.
    steps = [*((HAND_WRITTEN, w, plain) for w in more), (HAND_WRITTEN, 1, plain), ("commitrisk", 1, plain)]
    steps += [("commitrisk", w, plain) for w in more]
    for scenario in (explained, v2):
        steps += [(HAND_WRITTEN, 1, plain), ("commitrisk", 1, scenario)]
    steps += [(label, 1, plain) for label in REFERENCES if label != HAND_WRITTEN]
    batches = ("/predict/batch 100", "/predict/batch 1000", "/predict/batch 1000 explained")
    steps += [("commitrisk", 1, scenario) for scenario in batches]
    steps += [("commitrisk", w, scenario) for w in more for scenario in (explained, v2, *batches)]
    return steps


def server_rounds(
    models: Path,
    seconds: int,
    rounds: int,
    workers: list[int],
    work: Path,
    profile: bool,
    database_url: str | None = None,
) -> tuple[list[Result], str]:
    """commitrisk with one worker, the reference servers and commitrisk with each other count of `workers`, all
    started together and measured in alternation, `round_steps` after `round_steps`. `database_url`: a PostgreSQL
    server on which each commitrisk server logs to a database of its own (default: a SQLite file each)."""
    # (server, workers) → the supervisor, its URL and the worker processes (the supervisor itself with one worker)
    servers: dict[tuple[str, int], tuple[subprocess.Popen[bytes], str, set[int]]] = {}
    counts = [1, *(w for w in workers if w != 1)]
    with log_databases(database_url, len(counts)) as logs:  # dropped after the servers' `finally` stops them
        log_of = dict(zip(counts, logs, strict=True))
        try:
            proc, url = start(models, 1, work, log_of[1])
            servers["commitrisk", 1] = proc, url, {proc.pid}
            for label, module in REFERENCES.items():
                proc, url = start_reference(module, models, work)
                servers[label, 1] = proc, url, {proc.pid}
            for count in (w for w in workers if w != 1):
                proc, url = start(models, count, work, log_of[count])
                servers["commitrisk", count] = proc, url, set()  # registered first: stopped if the wait fails
                wait_for_workers(url, count)
                servers["commitrisk", count] = proc, url, worker_pids(proc, count)
                proc, url = start_reference(REFERENCES[HAND_WRITTEN], models, work, count)
                servers[HAND_WRITTEN, count] = proc, url, set()
                servers[HAND_WRITTEN, count] = proc, url, answering_pids(url, count)
            every = {s[0]: s for s in scenarios(work)}
            results: list[Result] = []
            for _ in range(rounds):
                for server, count, scenario in round_steps(workers):
                    proc, url, serving = servers[server, count]
                    results += measure(url, serving | {proc.pid}, server, count, seconds, [every[scenario]], serving)
            proc, url, _ = servers["commitrisk", 1]
            chosen = [every["/predict explain=false"], every["/predict (explained)"]]
            profiled = profile_of(proc.pid, url, chosen, seconds, work) if profile else ""
            return results, profiled
        finally:
            for proc, _, _ in servers.values():
                stop(proc)


def profile_of(pid: int, url: str, chosen: list[tuple[str, str, Path, int]], seconds: int, work: Path) -> str:
    """py-spy profiles of the given scenarios under load, by stage (Markdown)."""
    if not hot_path.available():
        return "Profile skipped: py-spy is not installed (`pip install py-spy`).\n"
    parts: list[str] = []
    for label, path, script, connections in chosen:
        runner = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds + 3}s", "-s", str(script),
                                   f"{url}{path}"], stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(1)
        samples = hot_path.record(pid, seconds, work / f"profile-{len(parts)}.txt")
        out, _ = runner.communicate()
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        table = hot_path.table(hot_path.stages(samples), int(rps * seconds))
        parts.append(f"Profile of `{label}` (py-spy, {seconds} s at 1 kHz, {rps:,.0f} req/s meanwhile; µs are "
                     f"wall time per request, the writer thread's time included):\n\n{table}\n")  # fmt: skip
        print("\n" + parts[-1], flush=True)
    return "\n".join(parts)


def reload_growth(models: Path, reloads: int, work: Path) -> tuple[float, float]:
    """Worker RSS (MB) before and after `reloads` alternating POST /reload, one worker."""
    proc, url = start(models, 1, work)
    try:
        pids = worker_pids(proc, 1)
        versions = sorted(int(p.name) for p in models.iterdir() if p.name.isdigit())[-2:]
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer bench"}, timeout=60) as admin:
            for i in range(20):  # allocator warm-up
                admin.post("/reload", json={"version": versions[i % len(versions)]}).raise_for_status()
            before = rss_mb(pids)
            for i in range(reloads):
                admin.post("/reload", json={"version": versions[i % len(versions)]}).raise_for_status()
            return before, rss_mb(pids)
    finally:
        stop(proc)


def machine() -> str:
    """bench.machine's line (with the speed index), the onnxruntime version and the load average."""
    import onnxruntime

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{describe()}, onnxruntime {onnxruntime.__version__}, load average {load}"


def log_cost(models: Path, rounds: int, seconds: int, work: Path) -> str:
    """Saturating 1,000-commit batches with the prediction log on and off, alternating; a markdown table."""
    script = script_for(work, "b1k", {"commits": commits(1000)})
    rows = []
    for _ in range(rounds):
        for log_on in (True, False):
            os.environ["COMMITRISK_PREDICTION_LOG"] = str(log_on).lower()
            proc, url = start(models, 1, work)
            try:
                path = f"{url}/predict/batch?explain=false"
                wrk(path, script, 1, 2)  # warm-up
                dropped = log_dropped(url)
                measured = wrk(path, script, 1, seconds)
                rps, p50 = measured.rps, measured.p50_ms
                lost = f"{log_dropped(url) - dropped:,.0f}" if log_on else "-"
                rows.append(f"| {'on' if log_on else 'off'} | {rps:.1f} | {p50:.1f} | {lost} | "
                            f"{rss_mb(worker_pids(proc, 1)):.0f} |")  # fmt: skip
                print(rows[-1], flush=True)
            finally:
                stop(proc)
                os.environ.pop("COMMITRISK_PREDICTION_LOG")
    header = "| prediction log | req/s | p50 ms | log rows dropped | worker RSS MB |\n|---|---|---|---|---|\n"
    return header + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="existing models dir (default: train one)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="rounds, servers alternating (medians)")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of one /predict under load, by stage")
    parser.add_argument("--reloads", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server the commitrisk servers log to (a database each, dropped after); default SQLite",
    )
    parser.add_argument(
        "--log-cost", type=int, metavar="ROUNDS", help="only: 1,000-commit batches with the log on vs off, alternating"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("error: wrk: not installed (apt-get install -y wrk)")
    if args.log_cost:
        with tempfile.TemporaryDirectory(prefix="commitrisk-bench-") as tmp:
            models = prepare_models(Path(tmp), args.models)
            body = log_cost(models, args.log_cost, args.seconds, Path(tmp))
        text = (
            f"## Serving — prediction log cost on batches, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
            f"(`bench/serve.py --log-cost {args.log_cost}`)\n\nMachine: {machine()}. Saturating "
            "`/predict/batch?explain=false` of 1,000 commits (wrk -t1 -c1, 1 worker, SQLite), log on and off "
            f"alternating, {args.seconds} s each.\n\n{body}\n"
        )
        print("\n" + text)
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
        return
    with tempfile.TemporaryDirectory(prefix="commitrisk-bench-") as tmp:
        work = Path(tmp)
        models = prepare_models(work, args.models)
        model_type = json.loads((models / "1" / "manifest.json").read_text())["model_type"]
        info = machine()
        results, profiled = server_rounds(
            models, args.seconds, args.rounds, args.workers, work, args.profile, args.database_url
        )
        before, after = reload_growth(models, args.reloads, work)
    rows = medians(results)
    log = "SQLite" if args.database_url is None else "PostgreSQL, a database per server"
    overrides = ", ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("COMMITRISK_")) or "none"
    lines = [
        f"## Serving — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (`bench/serve.py`)",
        "",
        f"Machine: {info}. Model: {model_type} (version 1 of the models dir). wrk -t1, {args.seconds} s "
        "per row; batches with 1 connection (p50 = one batch's latency). `constant` = `GET /health/live` of "
        f"the same server measured right after. Settings: defaults (prediction log on, {log}) + {overrides}. "
        f"Rows: median of {args.rounds} rounds, servers alternating. `server CPU` = CPU time of the "
        "server's processes per answered request; `CPU split` = server / wrk CPU as % of all cores during the run.",
        "",
        *targets(rows, results),
        "",
        "| server | workers | scenario | conns | req/s | p50 ms | p99 ms | non-2xx | constant req/s | server CPU "
        "µs/req | CPU split % | connections per worker | worker RSS MB | log rows dropped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.server} | {r.workers} | {r.scenario} | {r.connections} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
        f"{r.p99_ms:.2f} | {r.errors} | {r.baseline_rps:,.0f} | {r.server_cpu_us:,.0f} | {r.cpu_split} | {r.spread} | "
        f"{r.rss_mb:.0f} | {r.log_dropped:,.0f} |"
        for r in rows
    ]
    if profiled:
        lines += ["", profiled]
    lines += ["", f"RSS of one worker over {args.reloads} reloads: {before:.0f} MB → {after:.0f} MB "
              f"(growth {after - before:+.1f} MB).", ""]  # fmt: skip
    table = "\n".join(lines)
    print("\n" + table)
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write(("\n" if args.out.exists() and args.out.stat().st_size else "") + table)


if __name__ == "__main__":
    main()
