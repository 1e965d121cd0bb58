"""The prediction log at fleet volume on PostgreSQL: 10 M logged predictions, plain tables vs monthly partitions.

    .venv/bin/python -m bench.log_volume [--rows 10000000] [--days 180] [--seconds 10] [--rounds 3] [--models DIR]

Generates the log server-side (INSERT … SELECT FROM generate_series: 2,000 repositories, a label for a share of
the commits older than the label delay), copies it into a second schema and converts that one to monthly
partitions (timed: what an operator's migration costs), then measures in one run on both: the drift sample and
labelled-window queries (the monitoring job's reads, per repository too), retention of the oldest month (DELETE vs
dropping a partition), and `/predict` throughput of a real server on each (wrk, interleaved rounds). Needs `wrk`
and PostgreSQL (COMMITRISK_TEST_POSTGRES_URL); drops its schemas at the end; appends a section to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.contract import FEATURES
from app.monitoring import database, labels, partitions
from app.monitoring.job import performance_of
from app.monitoring.store import Store
from app.monitoring.tables import resolve_labels
from bench.machine import load_span, publish, table
from bench.monitoring import prepare_models, resample, wrk
from bench.service import Service

ROOT = Path(__file__).resolve().parents[1]
URL = os.environ.get("COMMITRISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY = 86400.0
REPOSITORIES = 2000
CHUNK = 1_000_000


def generate(engine: Engine, rows: int, days: float, now: float, label_share: float, label_delay: float) -> float:
    """`rows` predictions evenly over the last `days` days (deterministic hashes of the row number), and labels
    pointed at their predictions as migration 8's backfill does (returns the seconds that took)."""
    span = days * DAY
    h = "abs(hashint8(g * 16 + {k}))"
    features = ", ".join(f"({h.format(k=k)} % {100 if k % 3 else 1000})::float8" for k in range(len(FEATURES)))
    p = f"(({h.format(k=15)} % 10000) / 10000.0)"
    columns = "time, request_id, commit_id, repository, " + ", ".join(FEATURES)
    columns += ", probability, label, risk_band, model_version"
    with engine.begin() as conn:
        target = partitions.qualified(conn, "predictions")
        labels = partitions.qualified(conn, "feedback")
        # Bulk load as an operator restoring a dump would: indexes dropped, rebuilt once over the rows.
        indexes = conn.execute(text(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = to_regclass(:table) AND NOT i.indisprimary"
        ), {"table": target}).all()  # fmt: skip
        for name, _ in indexes:
            conn.execute(text(f"DROP INDEX {partitions.qualified(conn, name)}"))
    for start in range(1, rows + 1, CHUNK):
        end = min(start + CHUNK - 1, rows)
        with engine.begin() as conn:
            conn.execute(text(
                f"INSERT INTO {target} ({columns}) SELECT {now - span!r} + g * {span / rows!r}, 'r' || g, 'c' || g,"
                f" 'repo-' || (g % {REPOSITORIES}), {features}, {p}, {p} >= 0.5,"
                f" CASE WHEN {p} >= 0.6 THEN 'high' WHEN {p} >= 0.3 THEN 'medium' ELSE 'low' END, 1"
                f" FROM generate_series({start}, {end}) g"
            ))  # fmt: skip
        print(f"  generated {end:,} rows", flush=True)
    matured = now - label_delay * DAY
    with engine.begin() as conn:
        for _, definition in indexes:
            conn.execute(text(definition))
        conn.execute(text(
            f"INSERT INTO {labels} (commit_id, repository, buggy, labeled_at, received_at)"
            f" SELECT commit_id, repository, abs(hashint8(id * 7)) % 10 < 3, time + 30 * 86400, time + 90 * 86400"
            f" FROM {target} WHERE time < {matured!r} AND abs(hashint8(id * 5)) % 1000 < {int(label_share * 1000)}"
        ))  # fmt: skip
    start = time.perf_counter()
    with engine.begin() as conn:
        resolve_labels(conn)  # the labels arrived before schema 8: every one pending
    return time.perf_counter() - start


def timed(operation: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(first run s, median of the warm runs s, the result)."""
    times, result = [], None
    for _ in range(repeat + 1):
        start = time.perf_counter()
        result = operation()
        times.append(time.perf_counter() - start)
    return times[0], median(times[1:]), result


def queries(store: Store, now: float) -> dict[str, Callable[[], Any]]:
    """The monitoring reads that scan the log: the job's drift sample and labelled window, per repository too."""
    return {
        "drift sample: newest 5,000 rows": lambda: store.window(rows=5000).rows,
        "drift sample: last 7 days": lambda: store.window(days=7.0, now=now).rows,
        "drift sample: one repository's newest 5,000": lambda: store.window(rows=5000, repository="repo-7").rows,
        "labelled window: newest 5,000": lambda: store.labelled_window(rows=5000)[0].rows,
        "labelled window: last 120 days": lambda: store.labelled_window(days=120.0, now=now)[0].rows,
        "labelled window: one repository's newest 5,000": lambda: (
            store.labelled_window(rows=5000, repository="repo-7")[0].rows
        ),
        "performance job (both windows)": lambda: performance_of(store, 5000, None).labelled_rows,
    }


def start_server(models: Path, work: Path, schema: str, partition: str) -> Service:
    """One worker logging to a PostgreSQL schema (search_path), the monitoring job off; returns once the log is up."""
    env = {
        "COMMITRISK_DATABASE_URL": f"{URL}?options=-csearch_path%3D{schema}",
        "COMMITRISK_LOG_PARTITION": partition,
        "COMMITRISK_MONITORING_JOB": "false",
        "COMMITRISK_DRIFT_INTERVAL_SECONDS": "86400",
    }
    server = Service(models, work, env=env).start()
    server.wait(seconds=120)
    deadline = time.monotonic() + 120
    while "up" not in httpx.get(f"{server.url}/health/ready").text:  # ready to score first; the log right after
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{server.url}: the database never came up:\n{server.log()}")
        time.sleep(0.3)
    return server


def throughput(models: Path, schemas: dict[str, tuple[str, str]], args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "predict.lua"
        commit = resample(1, seed=4).iloc[0].to_dict() | {"repository": "repo-1"}
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(commit))}\n"
        )
        work = Path(tmp)
        servers = {name: start_server(models, work, schema, part) for name, (schema, part) in schemas.items()}
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
        try:
            for server in servers.values():
                wrk(server.url, script, 2, args.connections)  # warm-up
            for _ in range(args.rounds):  # interleaved: machine noise hits both alike
                for name, server in servers.items():
                    runs[name].append(wrk(server.url, script, args.seconds, args.connections))
        finally:
            for server in servers.values():
                server.stop()
    rows = [[name, f"{median(r[0] for r in rs):.0f}", f"{median(r[1] for r in rs) * 1e3:.2f}",
             f"{median(r[2] for r in rs) * 1e3:.2f}"] for name, rs in runs.items()]  # fmt: skip
    plain, split = (median(r[0] for r in rs) for rs in runs.values())
    body = table(["log tables", "/predict req/s (median)", "p50 ms", "p99 ms"], rows)
    return body + (
        f"\n\nratio partitioned / plain: **{split / plain:.3f}** ({args.rounds} interleaved rounds × {args.seconds} s,"
        f" wrk 1 thread, {args.connections} connections, prediction log on, both logs holding the generated rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="logged predictions to generate")
    parser.add_argument("--days", type=float, default=180.0, help="the span they cover (the default retention)")
    parser.add_argument("--label-share", type=float, default=0.2, help="share of matured commits with a label")
    parser.add_argument("--models", type=Path, help="models dir with a champion (default: train one)")
    parser.add_argument("--repeat", type=int, default=2, help="warm runs of each query after the first")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk: not installed (apt-get install wrk)")
    load_before = os.getloadavg()[0]
    now = time.time()
    names = {"plain": f"bench_log_plain_{os.getpid()}", "monthly partitions": f"bench_log_part_{os.getpid()}"}
    stores = {name: Store.open(URL, schema=schema) for name, schema in names.items()}
    plain, split = stores["plain"], stores["monthly partitions"]
    sections = []
    try:
        start = time.perf_counter()
        backfills = [  # the same rows in both: deterministic hashes of the row number
            generate(store.engine, args.rows, args.days, now, args.label_share, 90.0) for store in stores.values()
        ]
        generated = (time.perf_counter() - start - sum(backfills)) / 2
        with plain.engine.connect() as conn:
            labelled = conn.execute(text(f"SELECT count(*) FROM {partitions.qualified(conn, 'feedback')}")).scalar()
        start = time.perf_counter()
        database.migrate(split.engine, "monthly", now=now)  # the conversion an operator runs once
        converted = time.perf_counter() - start
        for store in stores.values():  # as autovacuum would have: visibility map and statistics
            with store.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                for t in ("predictions", "feedback"):
                    conn.execute(text(f"VACUUM ANALYZE {partitions.qualified(conn, t)}"))
        with split.engine.connect() as conn:
            ranged = [b for b in partitions.bounds(conn, "predictions") if b[1] is not None]
        sections.append(
            f"{args.rows:,} predictions over {args.days:.0f} days, {REPOSITORIES:,} repositories, {labelled:,} labels"
            f" ({args.label_share:.0%} of the commits older than 90 days); generated in {generated:.0f} s per schema"
            f" (INSERT … SELECT FROM generate_series, indexes rebuilt after). Pointing every label at its prediction"
            f" (migration 8's backfill, `tables.resolve_labels`): **{median(backfills):.0f} s** (median of"
            f" {' and '.join(f'{b:.0f}' for b in backfills)} s). Converting the second schema to"
            f" {len(ranged)} monthly partitions"
            f' (`database.migrate(engine, "monthly")` on the plain schema with its rows): **{converted:.0f} s**.'
        )
        rows = []
        measured = {name: queries(store, now) for name, store in stores.items()}
        for label in measured["plain"]:
            cells: list[object] = [label]
            for name in stores:
                first, warm, result = timed(measured[name][label], args.repeat)
                cells += [f"{first * 1e3:.0f}", f"{warm * 1e3:.0f}"]
            rows.append([*cells, result])
        sections.append(f"### Monitoring reads (ms: first run, median of {args.repeat} warm runs)\n\n" + table(
            ["query", "plain first", "plain warm", "partitioned first", "partitioned warm", "rows"], rows
        ))  # fmt: skip
        # Retention of the oldest month: the job's run the day that month's partition expires.
        later = float(ranged[0][2] or now) + 180 * DAY
        retention = []
        for name, store in stores.items():  # Store.apply_retention's two steps, timed apart
            start = time.perf_counter()
            removed = database.apply_retention(store.engine, 180.0, now=later, period=store.partition)
            dropped = time.perf_counter() - start
            with store.engine.connect() as conn:
                released = conn.execute(text(
                    f"SELECT count(*) FROM {partitions.qualified(conn, 'feedback')} f WHERE f.prediction_id > 0"
                    f" AND f.prediction_time < (SELECT min(time) FROM {partitions.qualified(conn, 'predictions')})"
                )).scalar()  # fmt: skip
            start = time.perf_counter()
            labels.release_expired(store.engine, later - 180 * DAY)
            retention.append([name, f"{dropped:.2f}", f"{removed:,}", f"{time.perf_counter() - start:.2f}",
                              f"{released:,}"])  # fmt: skip
        sections.append("### Retention of the oldest month\n\n" + table(
            ["log tables", "rows removed s", "predictions removed", "labels re-pointed s", "labels of removed rows"],
            retention,
        ) + "\n\nPlain tables DELETE the rows; partitioned ones DROP the month's partition (the removed count is"
            " the planner's estimate there). Then the labels that joined a removed prediction move to their"
            " commit's oldest surviving one, or expire (`labels.release_expired`, the same job run).")  # fmt: skip
        models = prepare_models(Path(tempfile.mkdtemp()) / "models", args.models)
        sections.append("### /predict throughput\n\n" + throughput(
            models, {"plain": (names["plain"], "none"), "monthly partitions": (names["monthly partitions"], "monthly")},
            args,
        ))  # fmt: skip
        shutil.rmtree(models.parent, ignore_errors=True)
    finally:
        for name, store in stores.items():
            with store.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{names[name]}" CASCADE'))
            store.close()
    load = load_span(load_before) + " (2 cores shared with"
    sections.insert(0, load + " other jobs: read the plain/partitioned ratios of one run, not absolute figures)")
    publish("Prediction log at fleet volume (bench/log_volume.py)", "\n\n".join(sections), args.no_append)


if __name__ == "__main__":
    main()
