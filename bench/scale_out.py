"""Benchmark scale-out: reload convergence across replicas, and monitoring-job runs per interval per cluster.

Starts R `commitrisk serve --workers W` replicas on one models directory and one PostgreSQL schema, moves the
champion through replica 1 `--reloads` times and measures how long until every replica answers with the new
version; meanwhile the scheduled monitoring job runs every `--interval` s and we count who ran it.

    .venv/bin/python bench/scale_out.py [--replicas 2] [--workers 2] [--reloads 20] [--interval 10]

Needs the test PostgreSQL (postgresql+psycopg://postgres@127.0.0.1:5432/test). The two model versions are trained
by `commitrisk train` on the embedded synthetic default; the traffic is synthetic too.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contract import FEATURES  # noqa: E402
from app.monitoring.store import Store  # noqa: E402
from bench.machine import append, table  # noqa: E402
from bench.replicas import converged, cycles, free_port, ready_version, wait_for  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN_TOKEN = "bench-admin-token"
NOTE = (
    "\n\nThe job never runs twice at once and at most once per interval: a worker's next cycle starts one interval"
    " after its previous cycle ended, and a worker that waited for the holder's job ends with it, so the cluster's"
    " period is the interval plus the job's duration (a few percent at the default 600 s)."
)


def train_versions(models: Path) -> None:
    """Versions 1 (champion) and 2 of the product's own `commitrisk train` on the embedded default data."""
    for family, promote in (("logistic_regression", "--promote"), ("random_forest", "--no-promote")):
        done = subprocess.run(
            [sys.executable, "-m", "training", "train", "--models", str(models), "--family", family, "--budget", "1",
             promote, "--json"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"error: commitrisk train --family {family}: {done.stderr.strip().splitlines()[-1:]}")


def traffic(rows: int) -> list[dict[str, float]]:
    """Feature rows of `rows` synthetic commits (another seed than the training data's)."""
    from training.synthetic.generate import generate
    from training.synthetic.spec import load_default

    frame = generate(load_default(), rows=rows, seed=2024)[list(FEATURES)]
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def main() -> None:
    """Run the benchmark and append its table to BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--interval", type=float, default=10.0, help="COMMITRISK_DRIFT_INTERVAL_SECONDS")
    parser.add_argument("--poll", type=float, default=1.0, help="COMMITRISK_POINTER_POLL_SECONDS")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    tmp = Path(tempfile.mkdtemp(prefix="commitrisk-scale-"))
    models = tmp / "models"
    train_versions(models)
    store = Store.open(url)
    store.insert_predictions(
        [{"time": time.time() - 600 + i, "request_id": None, "commit_id": f"c{i}", "repository": "synthetic",
          **row, "probability": 0.2, "label": False, "risk_band": "low",
          "model_version": 1, "shadow_version": None, "shadow_probability": None}
         for i, row in enumerate(traffic(500))]
    )  # fmt: skip
    store.close()

    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {
        "COMMITRISK_DATABASE_URL": url, "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
        "COMMITRISK_POINTER_POLL_SECONDS": str(args.poll), "COMMITRISK_DRIFT_INTERVAL_SECONDS": str(args.interval),
        "COMMITRISK_DRIFT_MIN_ROWS": "50",
    }  # fmt: skip
    processes, urls = [], []
    for _ in range(args.replicas):
        port = free_port()
        command = [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)]
        log = open(tmp / f"replica-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
        processes.append(
            subprocess.Popen([*command, "--workers", str(args.workers)], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        )  # fmt: skip
        urls.append(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        for u in urls:
            wait_for(lambda u=u: ready_version(u) == 1, f"{u} ready", 120)
        delays = []
        for i in range(args.reloads):
            target = 2 if i % 2 == 0 else 1
            answer = httpx.post(f"{urls[0]}/reload", json={"version": target}, timeout=60,
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            moved = time.monotonic()
            wait_for(lambda t=target: converged(urls, t), "convergence", 60)
            delays.append(time.monotonic() - moved)
        # Let the schedule run for a whole number of intervals past the first run.
        first = min(args.interval, 30.0)
        horizon = first + 5 * args.interval + args.interval / 2
        time.sleep(max(0.0, horizon - (time.monotonic() - started)))
        counts = [cycles(u) for u in urls]
        with engine.connect() as conn:
            runs = conn.execute(
                text(f"SELECT count(*) FROM \"{schema}\".summaries WHERE kind = 'performance'")
            ).scalar()
        elapsed = time.monotonic() - started
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    delays.sort()
    ran = sum(c["ran"] for c in counts)
    skipped = sum(c["skipped"] for c in counts)
    body = (
        f"{args.replicas} `commitrisk serve` replicas × {args.workers} workers, one models directory, one PostgreSQL "
        f"schema; `COMMITRISK_POINTER_POLL_SECONDS={args.poll:g}`, `COMMITRISK_DRIFT_INTERVAL_SECONDS="
        f"{args.interval:g}`. Convergence = from the `/reload` answer on replica 1 until 8 consecutive "
        f"`/health/ready` answers of every replica show the new version ({args.reloads} reloads).\n\n"
        + table(
            ["measure", "value"],
            [
                ["reload convergence, median s", f"{statistics.median(delays):.2f}"],
                ["reload convergence, max s", f"{delays[-1]:.2f}"],
                [
                    "run time s / intervals elapsed since the first run",
                    f"{elapsed:.0f} / {(elapsed - min(args.interval, 30.0)) / args.interval:.1f}",
                ],
                ["scheduled cycles (all workers): ran / skipped", f"{ran:g} / {skipped:g}"],
                ["job runs stored in the database", f"{runs}"],
            ],
        )
        + NOTE
    )
    append("Scale-out (`bench/scale_out.py`)", body)


if __name__ == "__main__":
    main()
