"""Retraining benchmark: decision time over a large prediction log, and full retrain time per level/window.

    .venv/bin/python bench/retrain.py [--predictions 100000] [--budget 8] [--postgres URL]

Decision = `commitrisk retrain --dry-run`: open the store, read every labelled prediction, cut maturity,
score the newest labelled rows with the champion, read the drift row and the requests, write the audit.
Retrain = `commitrisk retrain --force --deploy none` on the pooled shared data (../shared/data/commits).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contract import FEATURES  # noqa: E402
from bench.machine import append, table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "commits"
DAY = 86_400.0


SHADOW_HEADER = ["serving", "requests", "p50 ms", "p99 ms"]
SHADOW_TEXT = (
    "Shadow cost: sequential single `/predict` calls (explain on) against `commitrisk serve` (1 worker, "
    "prediction log on, HTTP client in the same machine), champion only vs champion + 1, 2 and 3 competing "
    "shadow challengers (all gradient boosting):\n\n"
)


def champion(models: Path, budget: int) -> None:
    """Version 1: gradient boosting (the family `commitrisk train` picks on this data) on the pooled data."""
    from training import pipeline
    from training.config import TrainConfig

    config = TrainConfig(data=[SHARED], models_dir=models, budget=budget, families=("gradient_boosting",))
    pipeline.run(config, lambda _m: None)


def fill_log(url: str, schema: str | None, rows: int, now: float) -> None:
    """`rows` logged predictions spread over the last year, every one labelled, drawn from the shared data."""
    from app.monitoring.store import Store
    from training import data

    frame = data.load([SHARED]).frame
    rng = np.random.default_rng(0)
    picks = frame.iloc[rng.integers(0, len(frame), rows)]
    times = np.sort(now - rng.uniform(0, 365 * DAY, rows))
    store = Store.open(url, schema=schema)
    batch = 10_000
    for start in range(0, rows, batch):
        part = picks.iloc[start : start + batch]
        ids = [f"bench-{i}" for i in range(start, start + len(part))]
        values = part.loc[:, list(FEATURES)].to_numpy(dtype=float)
        store.insert_predictions(
            [
                {
                    **dict(zip(FEATURES, v, strict=True)),
                    "time": float(t),
                    "request_id": None,
                    "commit_id": c,
                    "repository": "bench",
                    "probability": 0.3,
                    "label": False,
                    "risk_band": "low",
                    "model_version": 1,
                }
                for v, t, c in zip(values, times[start : start + batch], ids, strict=True)
            ]
        )
        store.upsert_feedback(
            [
                {"commit_id": c, "buggy": bool(b), "labeled_at": float(t)}
                for c, b, t in zip(ids, part["buggy"], times[start : start + batch], strict=True)
            ]
        )
    store.close()


def decision_seconds(
    models: Path, url: str, schema: str | None, now: float, repeats: int
) -> tuple[float, dict[str, Any]]:
    from training.retrain import decision as retrain
    from training.retrain.policy import RetrainPolicy

    policy = RetrainPolicy(
        models_dir=models, database_url=url, database_schema=schema, dry_run=True, now=now, label_delay_days=30
    )
    seconds, record = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        record = retrain.run(policy, lambda _m: None)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), record


def retrain_seconds(models: Path, level: str, window: str, budget: int) -> tuple[float, dict[str, Any]]:
    from training.retrain import decision as retrain
    from training.retrain.policy import RetrainPolicy

    policy = RetrainPolicy(
        models_dir=models, data=[SHARED], force=True, deploy="none", level=level, window=window, budget=budget
    )
    started = time.perf_counter()
    record = retrain.run(policy, lambda _m: None)
    return time.perf_counter() - started, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--postgres", default=None, help="also time the decision on this PostgreSQL URL")
    parser.add_argument("--shadow-requests", type=int, default=3000, help="0 skips the shadow latency test")
    parser.add_argument("--only-shadow", action="store_true", help="champion + one challenger, shadow test only")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    models = scratch / "models"
    started = time.perf_counter()
    champion(models, budget=4)
    print(f"champion trained in {time.perf_counter() - started:.1f} s", flush=True)
    now = time.time()
    if args.only_shadow:
        for _ in range(3):  # versions 2, 3, 4: the challengers
            retrain_seconds(models, "refit", "fixed", 1)
        rows = shadow_overhead(models, challengers=[2, 3, 4], requests=args.shadow_requests)
        append("Shadow scoring cost (`bench/retrain.py --only-shadow`)", SHADOW_TEXT + table(SHADOW_HEADER, rows))
        return

    decisions = []
    urls = [("SQLite", f"sqlite:///{scratch / 'log.db'}")]
    if args.postgres:
        urls.append(("PostgreSQL", args.postgres))
    for name, url in urls:
        # PostgreSQL: a throw-away schema, dropped afterwards, so the database keeps no benchmark rows.
        schema = f"bench_retrain_{os.getpid()}" if name == "PostgreSQL" else None
        started = time.perf_counter()
        fill_log(url, schema, args.predictions, now)
        filled = time.perf_counter() - started
        try:
            median, record = decision_seconds(models, url, schema, now, repeats=3)
        finally:
            if schema is not None:
                _drop_schema(url, schema)
        perf = next(t for t in record["triggers"] if t["name"] == "performance")
        decisions.append([name, args.predictions, f"{filled:.1f}", f"{median:.2f}", perf["detail"]])
        print(decisions[-1], flush=True)

    runs = []
    for level, window in [("refit", "fixed"), ("search", "fixed"), ("select", "fixed"),
                          ("refit", "dynamic"), ("refit", "selection")]:  # fmt: skip
        seconds, record = retrain_seconds(models, level, window, args.budget)
        comparison = record.get("comparison", {})
        runs.append([level, window, record["window"]["rows"] if "window" in record else "-", f"{seconds:.1f}",
                     record.get("level", "-").split(":")[0], _fmt(comparison.get("challenger_roc_auc")),
                     _fmt(comparison.get("champion_roc_auc")), record["action"]])  # fmt: skip
        print(runs[-1], flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Versions 2… were published by the retrain runs above: up to three of them compete in shadow.
    challengers = [v for v in range(2, 5) if (models / str(v)).is_dir()]
    shadow = shadow_overhead(models, challengers, requests=args.shadow_requests) if args.shadow_requests else []

    body = (
        "Decision (`commitrisk retrain --dry-run`, median of 3; all four triggers evaluated, audit written) "
        f"over {args.predictions:,} logged, labelled predictions:\n\n"
        + table(["database", "predictions", "fill s", "decision s", "performance trigger input"], decisions)
        + f"\n\nFull retrain on the pooled shared data (4,759 commits; 15% held out for champion vs challenger), "
        f"`--force --deploy none`, budget {args.budget} per family, 2 search jobs; champion = gradient boosting:\n\n"
        + table(
            ["level", "window", "train rows", "wall s", "trained", "challenger AUC", "champion AUC", "action"], runs
        )
        + f"\n\nPeak RSS of the benchmark process: {peak:.0f} MiB."
        + ("\n\n" + SHADOW_TEXT + table(SHADOW_HEADER, shadow) if shadow else "")
    )
    append("Retraining (`bench/retrain.py`)", body)


def shadow_overhead(models: Path, challengers: list[int], requests: int) -> list[list[object]]:
    """p50/p99 of single `/predict` calls on a real `commitrisk serve`, with 0, 1, … of `challengers` in shadow."""
    import os
    import subprocess

    import httpx

    from training.data import load

    port = 18765
    env = {**os.environ, "COMMITRISK_ADMIN_TOKEN": "bench", "COMMITRISK_POINTER_POLL_SECONDS": "0.2",
           "COMMITRISK_DATABASE_URL": f"sqlite:///{models.parent / 'serve.db'}"}  # fmt: skip
    cmd = [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    frame = load([SHARED]).frame.sample(requests, random_state=0, replace=True)
    bodies = [dict(zip(FEATURES, row, strict=True)) for row in frame.loc[:, list(FEATURES)].to_numpy().tolist()]
    rows: list[list[object]] = []
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            _wait(lambda: client.get("/health/ready").status_code == 200)
            (models / "challenger").unlink(missing_ok=True)
            for count in range(len(challengers) + 1):
                label = (
                    "champion only" if count == 0 else f"champion + shadows {', '.join(map(str, challengers[:count]))}"
                )
                if count:
                    (models / "challenger").write_text("".join(f"{v}\n" for v in challengers[:count]))
                    _wait(lambda n=count: len(client.get("/models").json().get("shadows", [])) == n)
                for body in bodies[:200]:  # warm-up
                    client.post("/predict", json=body)
                seconds = []
                for body in bodies:
                    started = time.perf_counter()
                    client.post("/predict", json=body).raise_for_status()
                    seconds.append(time.perf_counter() - started)
                ms = np.array(seconds) * 1000
                rows.append([label, requests, f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 99):.2f}"])
                print(rows[-1], flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        (models / "challenger").unlink(missing_ok=True)
    return rows


def _wait(ready: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:  # the server is still starting
            pass
        time.sleep(0.2)
    raise RuntimeError("benchmark server did not become ready")


def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
