"""Monitoring overheads: /predict with the prediction log on vs off, p99 while a drift job runs, drift job
time for 5k reference × 10k / 50k current rows, and store size per million predictions.

    .venv/bin/python bench/monitoring.py [--models DIR] [--seconds 10] [--rounds 3]

Needs `wrk` (apt-get install wrk) and the shared datasets; appends a section to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.contract import FEATURES, REFERENCE_FILE
from app.monitoring.drift import run_drift_job
from app.monitoring.store import Store
from bench.fleet_commits import log_cost, write_script
from bench.machine import load_span, publish, table
from bench.service import train_champion

ROOT = Path(__file__).resolve().parents[1]
COMMITS = ROOT.parent / "shared" / "data" / "commits"
TOKEN = "bench-token"
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
BURNER = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True:\n    pass\n"


def resample(rows: int, seed: int) -> pd.DataFrame:
    """`rows` commits drawn with replacement from the shared datasets (features only)."""
    frame = pd.concat(pd.read_csv(f, usecols=list(FEATURES)) for f in sorted(COMMITS.glob("*.csv")))
    return frame.sample(rows, replace=True, random_state=seed).reset_index(drop=True)


def prepare_models(target: Path, source: Path | None) -> Path:
    """A models dir whose champion has a 5,000-row reference sample (trained here when none is given)."""
    if source is None:
        source = target.parent / "trained"
        train_champion(source)
    version = (source / "champion").read_text().strip()
    shutil.copytree(source / version, target / version)
    (target / "champion").write_text(f"{version}\n")
    resample(5000, seed=1).to_parquet(target / version / REFERENCE_FILE)
    return target


class Server:
    """One uvicorn process (one worker, no access log) on a free port."""

    def __init__(self, models: Path, database: Path, log: bool, flush: float | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = (
            os.environ
            | {
                "COMMITRISK_MODELS_DIR": str(models),
                "COMMITRISK_DATABASE_URL": f"sqlite:///{database}",
                "COMMITRISK_PREDICTION_LOG": "true" if log else "false",
                "COMMITRISK_ADMIN_TOKEN": TOKEN,
                "COMMITRISK_DRIFT_WINDOW_ROWS": "50000",
                "COMMITRISK_DRIFT_INTERVAL_SECONDS": "86400",  # only the benchmark triggers drift runs
            }
            | ({"COMMITRISK_LOG_FLUSH_SECONDS": str(flush)} if flush is not None else {})
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory", "--port",
             str(self.port), "--no-access-log", "--log-level", "warning"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.url} did not become ready")

    def metric(self, name: str) -> float:
        """Sum of every sample of `name`, whatever its labels (the dropped counter has a `reason`)."""
        text = httpx.get(f"{self.url}/metrics").text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads; not its children)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def load(self, script: Path, seconds: int, connections: int) -> tuple[float, float, float, float]:
        """wrk against /predict: (req/s, p50 s, p99 s, server CPU µs per request)."""
        before = self.cpu_seconds()
        rps, p50, p99 = wrk(self.url, script, seconds, connections)
        return rps, p50, p99, (self.cpu_seconds() - before) / (rps * seconds) * 1e6

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def wrk(url: str, script: Path, seconds: int, connections: int) -> tuple[float, float, float]:
    """(requests/s, p50 s, p99 s) of POST /predict from one wrk thread."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"{url}/predict"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * UNITS[unit]

    return rps, pct("50"), pct("99")


def log_on_vs_off(models: Path, work: Path, script: Path, args: argparse.Namespace) -> tuple[str, Server]:
    off = Server(models, work / "off.db", log=False)
    on = Server(models, work / "on.db", log=True)
    results: dict[str, list[tuple[float, float, float, float]]] = {"off": [], "on": []}
    for server in (off, on):  # warm-up
        wrk(server.url, script, 2, args.connections)
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        results["off"].append(off.load(script, args.seconds, args.connections))
        results["on"].append(on.load(script, args.seconds, args.connections))
    off.stop()
    time.sleep(1.0)  # let the writer drain before reading its counters
    dropped, written = (
        on.metric("commitrisk_prediction_log_dropped_total"),
        on.metric("commitrisk_prediction_log_written_total"),
    )
    rows = [
        [name, f"{median(r[0] for r in runs):.0f}", f"{median(r[1] for r in runs) * 1e3:.2f}",
         f"{median(r[2] for r in runs) * 1e3:.2f}", f"{median(r[3] for r in runs):.0f}"]
        for name, runs in results.items()
    ]  # fmt: skip
    ratio = median(r[0] for r in results["on"]) / median(r[0] for r in results["off"])
    body = table(["prediction log", "req/s (median)", "p50 ms", "p99 ms", "server CPU µs/request"], rows)
    body += f"\n\nratio on/off: **{ratio:.3f}** (target ≥ 0.9); rows logged {written:,.0f}, dropped **{dropped:.0f}**"
    body += f" ({args.rounds} interleaved rounds × {args.seconds} s; wrk 1 thread, {args.connections} connections)"
    return body, on


def p99_during_drift(on: Server, script: Path, args: argparse.Namespace) -> str:
    idle: list[tuple[float, float, float, float]] = []
    busy: list[tuple[float, float, float, float]] = []
    control: list[tuple[float, float, float, float]] = []
    runs: list[float] = []

    def drift_loop(stop: threading.Event) -> None:
        with httpx.Client(timeout=600) as client:
            while not stop.is_set():
                started = time.monotonic()
                r = client.post(f"{on.url}/monitoring/drift/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
                if r.status_code == 200:
                    runs.append(time.monotonic() - started)

    for _ in range(args.rounds):  # interleaved idle/busy rounds, so other load on the machine hits both
        idle.append(on.load(script, args.seconds, args.connections))
        stop = threading.Event()
        thread = threading.Thread(target=drift_loop, args=(stop,))
        thread.start()
        time.sleep(1.0)  # the child process is starting
        busy.append(on.load(script, args.seconds, args.connections))
        stop.set()
        thread.join()
        # Control: any CPU-bound process at SCHED_IDLE (a bare busy loop, no memory traffic, no database).
        burner = subprocess.Popen([sys.executable, "-c", BURNER])
        time.sleep(0.5)
        control.append(on.load(script, args.seconds, args.connections))
        burner.kill()
        burner.wait()
    rows = [
        [name, f"{median(r[0] for r in rs):.0f}", f"{median(r[1] for r in rs) * 1e3:.2f}",
         f"{median(r[2] for r in rs) * 1e3:.2f}", " / ".join(f"{r[2] * 1e3:.1f}" for r in rs),
         f"{median(r[3] for r in rs):.0f}"]
        for name, rs in (("idle", idle), ("drift job running", busy), ("control: SCHED_IDLE busy loop", control))
    ]  # fmt: skip
    ratio = median(r[2] for r in busy) / median(r[2] for r in idle)
    control_ratio = median(r[2] for r in control) / median(r[2] for r in idle)
    window = httpx.get(f"{on.url}/monitoring/drift").json()["window"]["rows"]
    body = table(
        ["/predict while", "req/s", "p50 ms", "p99 ms (median)", "p99 per round", "server CPU µs/request"], rows
    )
    body += (f"\n\np99 ratio drift/idle: **{ratio:.2f}** (target ≤ 1.2); {len(runs)} drift jobs ran during the"
             f" {args.rounds} busy rounds ({window:,} logged rows vs 5,000 reference, {median(runs or [0]):.1f} s"
             " each under full /predict load, child process at SCHED_IDLE); control busy loop / idle:"
             f" **{control_ratio:.2f}**")  # fmt: skip
    return body


def drift_job_times(models: Path, work: Path) -> str:
    store = Store.open(f"sqlite:///{work / 'drift.db'}")
    current = resample(50_000, seed=2)
    now = time.time()
    records = current.to_dict("records")
    rows = [
        {k: float(v) for k, v in r.items()}
        | {"time": now - 50_000 + i, "commit_id": f"c{i}", "probability": 0.3, "label": False}
        | {"risk_band": "low", "model_version": 1}
        for i, r in enumerate(records)
    ]
    for start in range(0, len(rows), 5000):
        store.insert_predictions(rows[start : start + 5000])
    store.close()
    result = []
    run_drift_job(f"sqlite:///{work / 'drift.db'}", str(models), 1000, None, 100)  # warm-up: imports
    for n in (10_000, 50_000):
        started = time.perf_counter()
        status = run_drift_job(f"sqlite:///{work / 'drift.db'}", str(models), n, None, 100)
        result.append([f"5,000 × {n:,}", status, f"{time.perf_counter() - started:.1f}"])
    body = table(["reference × current rows", "status", "job seconds (read window + Evidently + HTML + store)"], result)
    return body + (
        "\n\n(in-process, as `commitrisk monitor` runs it, after a warm-up run that imports evidently;"
        " the service's spawned child also pays a few seconds of imports per run)"
    )


def store_size(work: Path, rows: int = 200_000) -> str:
    frame = resample(rows, seed=3)
    now = time.time()
    batch = [
        {k: float(v) for k, v in r.items()}
        | {"time": now + i * 0.01, "request_id": f"{i:032x}", "commit_id": f"repo_{i:040x}",
           "repository": "5ffe1bc68e3f65b96a5eb9e5", "probability": 0.3, "label": False, "risk_band": "low",
           "model_version": 1}
        for i, r in enumerate(frame.to_dict("records"))
    ]  # fmt: skip
    result = []
    path = work / "size.db"
    store = Store.open(f"sqlite:///{path}")
    started = time.perf_counter()
    for start in range(0, rows, 1000):
        store.insert_predictions(batch[start : start + 1000])
    seconds = time.perf_counter() - started
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    size = path.stat().st_size
    result.append(["SQLite (WAL)", f"{size / rows * 1e6 / 2**20:.0f} MiB", f"{rows / seconds:,.0f}"])
    url = os.environ.get("COMMITRISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"bench_{os.getpid()}"
    try:
        pg = Store.open(url, schema=schema)
    except Exception as exc:  # the SQLite figure still stands
        result.append(["PostgreSQL", f"unavailable: {exc}".splitlines()[0], "-"])
    else:
        started = time.perf_counter()
        for start in range(0, rows, 1000):
            pg.insert_predictions(batch[start : start + 1000])
        seconds = time.perf_counter() - started
        with pg.engine.begin() as conn:
            size = conn.exec_driver_sql(f"SELECT pg_total_relation_size('\"{schema}\".predictions')").scalar()
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        pg.close()
        result.append(
            [
                "PostgreSQL (table + indexes)",
                f"{int(size) / rows * 1e6 / 2**20:.0f} MiB",
                f"{rows / seconds:,.0f}",
            ]
        )
    return table(["database", "size per 1M predictions", "insert rows/s (batches of 1,000)"], result) + (
        f"\n\n(extrapolated from {rows:,} rows with 40-hex commit ids, 32-hex request ids and a repository)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="models dir with a champion (default: train one)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk: not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = prepare_models(work / "models", args.models)
        commit = resample(1, seed=4).iloc[0].to_dict()
        script = work / "predict.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(commit))}\n"
        )
        sections = []
        load_before = os.getloadavg()[0]
        body, on = log_on_vs_off(models, work, script, args)
        sections.append("### /predict throughput, prediction log on vs off\n\n" + body)
        fleet = write_script(commit, work / "fleet.lua")
        servers = {
            "off": lambda: Server(models, work / "fleet-off.db", log=False),
            "on": lambda: Server(models, work / "fleet-on.db", log=True),
            "on, COMMITRISK_LOG_FLUSH_SECONDS=0.05": lambda: Server(
                models, work / "fleet-005.db", log=True, flush=0.05
            ),
        }
        cost = log_cost(servers, fleet, args.rounds, args.seconds, args.connections)
        sections.append("### /predict throughput with a fleet's commits (bench/fleet_commits.py)\n\n" + cost)
        try:
            sections.append("### /predict latency while a drift job runs\n\n" + p99_during_drift(on, script, args))
        finally:
            on.stop()
        sections.append("### Drift job time\n\n" + drift_job_times(models, work))
        sections.append("### Store size\n\n" + store_size(work))
    load = load_span(load_before) + " (2 cores are shared"
    sections.insert(0, load + " with whatever else runs: read ratios, not absolute figures)")
    publish("Monitoring (bench/monitoring.py)", "\n\n".join(sections), args.no_append)


if __name__ == "__main__":
    main()
