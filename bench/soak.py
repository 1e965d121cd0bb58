"""Soak benchmark: mixed traffic for minutes, with reloads, a database outage and a worker kill in the middle.

    .venv/bin/python bench/soak.py [--minutes 10] [--workers 2] [--connections 8] [--outage-seconds 30]

A real `python -m app --workers N` on a fresh PostgreSQL database reached through a TCP proxy (bench/proxy.py).
Traffic: /predict (explained or not), /predict/batch, v2 infer, /feedback, the monitoring views, GET /models,
readiness; a `/reload` every 30 s alternating versions 1 and 2; at 40% of the run the proxy stops for
`--outage-seconds` (PostgreSQL "crashes": connections reset, new ones refused); at 65% one worker is SIGKILLed.
Prints answered requests, non-2xx inside / outside the outage window, predictions answered vs rows logged and
dropped, a worker's RSS every minute and its growth (median before the outage → median at the end); first, seconds
from start to ready-and-scoring (1 worker and N) with the database up and down. Appends the table to BENCHMARKS.md
(not with --no-append).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.monitoring.tables import predictions  # noqa: E402
from bench.machine import publish, table  # noqa: E402
from bench.proxy import TcpProxy  # noqa: E402
from bench.scale_out import traffic  # noqa: E402
from bench.service import Service, rss_mb  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOKEN = "soak-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RELOAD_EVERY = 30.0
TRACE_SECONDS = 10.0
WARM_UP_SECONDS = 60.0
RSS_WINDOW_SECONDS = 120.0
RECONNECT_SECONDS = 10.0
# (kind, weight): what one request of the mix is.
MIX = [("predict", 45), ("predict_fast", 20), ("batch", 8), ("v2", 7), ("feedback", 6), ("view", 6),
       ("models", 4), ("ready", 4)]  # fmt: skip
VIEWS = ("/monitoring/performance", "/monitoring/data-quality", "/monitoring/drift", "/retrain/audit")


@dataclass
class Tally:
    """What the clients saw: statuses by kind, predictions answered, non-2xx and transport errors by time."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    answered: int = 0  # commits scored in 200 answers
    failures: list[tuple[float, str, int]] = field(default_factory=list)  # (time, kind, status; 0 = transport)
    labelled: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors and non-2xx answers by type


@dataclass
class Timeline:
    """When the injected faults happened (monotonic seconds)."""

    outage: tuple[float, float] = (0.0, 0.0)
    kill: float = 0.0
    killed: int = 0  # the worker's pid
    rss_after_outage: dict[int, float] = field(default_factory=dict)  # 20 s after the database came back
    rss_trace: list[tuple[float, dict[int, float]]] = field(default_factory=list)  # (seconds into the run, pid → MB)
    reloads: Counter[int] = field(default_factory=Counter)
    started: float = 0.0  # monotonic start of the traffic
    survivor: int = 0  # the first workers' pid that was not killed


async def one_request(client: httpx.AsyncClient, rows: list[dict[str, float]], tally: Tally, n: int) -> None:
    kind = random.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
    row = rows[n % len(rows)]
    commit_id = f"s{n}"
    scored = 0
    if kind in ("predict", "predict_fast"):
        path = "/predict" if kind == "predict" else "/predict?explain=false"
        request = client.post(path, json=row | {"commit_id": commit_id, "repository": "soak"})
        scored = 1
    elif kind == "batch":
        batch = [rows[(n + k) % len(rows)] | {"commit_id": f"{commit_id}-{k}"} for k in range(20)]
        request, scored = client.post("/predict/batch?explain=false", json={"commits": batch}), 20
    elif kind == "v2":
        data = [v for k in range(5) for v in rows[(n + k) % len(rows)].values()]
        tensor = {"name": "features", "shape": [5, len(row)], "datatype": "FP32", "data": data}
        request, scored = client.post("/v2/models/commitrisk/infer", json={"inputs": [tensor]}), 5
    elif kind == "feedback":
        labels = [{"commit_id": c, "buggy": random.random() < 0.3} for c in tally.labelled[-20:]] or [
            {"commit_id": "s0", "buggy": False}
        ]
        request = client.post("/feedback", headers=AUTH, json=labels)
    elif kind == "view":
        request = client.get(random.choice(VIEWS))
    else:
        request = client.get("/models" if kind == "models" else "/health/ready")
    try:
        response = await request
    except httpx.TransportError as exc:
        tally.failures.append((time.monotonic(), kind, 0))
        tally.errors[type(exc).__name__] += 1
        return
    tally.statuses[(kind, response.status_code)] += 1
    if response.status_code == 200:
        tally.answered += scored
        if kind == "predict":
            tally.labelled.append(commit_id)
    elif not (kind == "view" and response.status_code == 409):  # 409: no drift result yet, documented
        tally.failures.append((time.monotonic(), kind, response.status_code))
        try:
            tally.errors[f"{response.status_code} {response.json()['error']['type']}"] += 1
        except (ValueError, KeyError, TypeError):
            tally.errors[f"{response.status_code} (no error body)"] += 1


async def clients(url: str, rows: list[dict[str, float]], tally: Tally, until: float, connections: int) -> None:
    """`connections` clients of one kept-alive connection each, which they replace every RECONNECT_SECONDS (as
    pooled clients do): after the kill the replacement worker gets its share of the traffic back, instead of the
    survivor serving every connection to the end — a doubled load would read as memory growth."""
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def loop() -> None:
        while time.monotonic() < until:
            async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
                replaced = time.monotonic() + RECONNECT_SECONDS
                while time.monotonic() < min(until, replaced):
                    await one_request(client, rows, tally, next(counter))

    await asyncio.gather(*(loop() for _ in range(connections)))


async def faults(
    server: Service, proxy: TcpProxy, timeline: Timeline, start: float, seconds: float, outage: float
) -> None:
    """Reloads every RELOAD_EVERY s; the outage at 40%, the kill at 65% of the run."""
    reloads = [(start + t, "reload") for t in range(int(RELOAD_EVERY), int(seconds), int(RELOAD_EVERY))]
    events = sorted([(start + 0.40 * seconds, "outage"), (start + 0.65 * seconds, "kill"), *reloads])
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        for at, event in events:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if event == "reload":
                version = 2 if sum(timeline.reloads.values()) % 2 == 0 else 1  # the champion starts at 1
                try:
                    response = await client.post("/reload", headers=AUTH, json={"version": version})
                except httpx.TransportError:  # its pooled connection went to the killed worker: once more
                    response = await client.post("/reload", headers=AUTH, json={"version": version})
                timeline.reloads[response.status_code] += 1
            elif event == "outage":
                proxy.stop()
                began = time.monotonic()
                await asyncio.sleep(outage)
                proxy.start()
                timeline.outage = (began, time.monotonic())
                await asyncio.sleep(20)  # the held rows are written meanwhile
                timeline.rss_after_outage = {pid: rss_mb(pid) for pid in server.worker_pids()}
            else:
                timeline.kill = time.monotonic()
                timeline.killed = await asyncio.to_thread(server.kill_worker)


def settled(trace: list[tuple[float, dict[int, float]]], pid: int, start: float, end: float) -> float:
    """The median of `pid`'s RSS samples taken from `start` to `end` seconds into the run (0 without any)."""
    found = [sample[pid] for elapsed, sample in trace if start <= elapsed < end and pid in sample]
    return statistics.median(found) if found else 0.0


def train_versions(models: Path) -> None:
    """Versions 1 (champion) and 2 of the product's `commitrisk train`, both logistic regressions: reloads swap
    models of the same size, so a change of worker RSS is the service's, not a bigger model's."""
    for promote in ("--promote", "--no-promote"):
        done = subprocess.run(
            [sys.executable, "-m", "training", "train", "--models", str(models), "--family", "logistic_regression",
             "--budget", "1", promote, "--json"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"error: commitrisk train: {done.stderr.strip().splitlines()[-1:]}")


def startup(models: Path, work: Path, workers: int, url: str) -> float:
    """Seconds from process start until /health/ready and a /predict both answer 200."""
    server = Service(models, work, workers, {"COMMITRISK_DATABASE_URL": url, "COMMITRISK_MONITORING_JOB": "false"})
    server.start()
    try:
        server.wait("/health/ready")
        body = traffic(1)[0]
        while httpx.post(f"{server.url}/predict", json=body, timeout=10).status_code != 200:
            time.sleep(0.02)
        return time.monotonic() - server.started_at
    finally:
        server.stop()


def logged(url: str) -> tuple[int, int]:
    """(rows in the log, rows whose request id is logged more than once: written twice)."""
    twice = (
        select(predictions.c.request_id, (func.count() - 1).label("extra"))
        .where(predictions.c.request_id.is_not(None))
        .group_by(predictions.c.request_id)
        .having(func.count() > 1)
        .subquery()
    )
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = int(conn.execute(select(func.count()).select_from(predictions)).scalar() or 0)
            return rows, int(conn.execute(select(func.coalesce(func.sum(twice.c.extra), 0))).scalar() or 0)
    finally:
        engine.dispose()


def metrics(url: str) -> dict[str, float]:
    """The log's counters and the scored-commit count, summed over workers (dropped per reason too)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            if sample.name == "commitrisk_prediction_log_dropped_total":
                found[f"dropped:{sample.labels['reason']}"] += sample.value
                found["dropped"] += sample.value
            elif sample.name in ("commitrisk_prediction_log_written_total", "commitrisk_predictions_total"):
                found[sample.name.split("_")[-2]] += sample.value  # written / predictions
    return found


def caught_up(url: str, seconds: float = 120.0) -> dict[str, float]:
    """The log's counters once every answered row is written or dropped — or, since the rows a killed worker held
    are neither, once they stopped changing for 5 s (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    counts, steady_since = metrics(url), time.monotonic()
    while counts["written"] + counts["dropped"] < counts["predictions"] and time.monotonic() < deadline:
        time.sleep(1.0)
        found = metrics(url)
        if (found["written"], found["dropped"]) != (counts["written"], counts["dropped"]):
            steady_since = time.monotonic()
        elif time.monotonic() - steady_since >= 5.0:
            return found
        counts = found
    return counts


def fresh_database(base: str) -> tuple[str, str]:
    """A new database next to `base` (its name, its URL)."""
    name = f"soak_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_database(base: str, name: str) -> None:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def report(
    args: argparse.Namespace,
    tally: Tally,
    timeline: Timeline,
    counts: dict[str, float],
    rows: tuple[int, int],
    rss: tuple[float, float, float, float],
    boot: tuple[float, ...],
    load: float,
) -> str:
    """The Markdown table of one run."""
    grace = args.check_seconds + 2.0  # 503s until each worker's next check sees the database back
    inside = [f for f in tally.failures if timeline.outage[0] <= f[0] <= timeline.outage[1] + grace]
    killed = [f for f in tally.failures if f[2] == 0 and timeline.kill <= f[0] <= timeline.kill + 10]
    outside = [f for f in tally.failures if f not in inside and f not in killed]
    elsewhere = [f for f in outside if not f[2]]
    statuses: Counter[int] = Counter()
    for (_, status), n in tally.statuses.items():
        statuses[status] += n
    by_status = ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items()))
    in_outage = ", ".join(f"{kind} {status or 'reset'}: {n}" for (kind, status), n in
                          Counter((f[1], f[2]) for f in inside).items())  # fmt: skip
    reasons = [f"{k.split(':')[1]} {v:,.0f}" for k, v in sorted(counts.items()) if k.startswith("dropped:") and v]
    unaccounted = tally.answered - rows[0] - counts["dropped"]
    outage = timeline.outage[1] - timeline.outage[0]

    first = {pid for _, found in timeline.rss_trace[:1] for pid in found} | {timeline.survivor, timeline.killed}
    replacement_trace = [(elapsed, {pid: mb for pid, mb in found.items() if pid not in first})
                         for elapsed, found in timeline.rss_trace if set(found) - first]  # fmt: skip

    def minute(at: float) -> str:
        return f"{(at - timeline.started) / 60:.1f} min"

    lines: list[list[object]] = [
        ["run", f"{args.minutes:g} min, {args.workers} workers, {args.connections} connections; outage {outage:.0f} s "
                f"at 40%, `kill -9` of a worker at 65%, {sum(timeline.reloads.values())} reloads "
                f"(statuses {dict(timeline.reloads)})"],
        ["requests answered (by status)", f"{sum(statuses.values()):,} ({by_status})"],
        ["non-2xx outside the outage window", f"{len([f for f in outside if f[2]]):,}"],
        [f"non-2xx inside the outage window (+{grace:.0f} s)", f"{len(inside):,} ({in_outage or 'none'})"],
        ["transport errors within 10 s of the worker kill / elsewhere (by type)",
         f"{len(killed):,} / {len(elsewhere):,} ({dict(tally.errors)}; elsewhere at kill "
         f"{', '.join(f'{f[0] - timeline.kill:+.0f} s' for f in elsewhere[:5]) or '-'})"],
        ["500 answers", f"{statuses.get(500, 0):,}"],
        ["predictions answered (client) / scored (server)", f"{tally.answered:,} / {counts['predictions']:,.0f}"],
        ["rows logged / dropped / unaccounted; rows written twice",
         f"{rows[0]:,} / {counts['dropped']:,.0f} ({', '.join(reasons) or 'none'}) / {unaccounted:,.0f}; {rows[1]:,}"],
        ["the survivor's RSS: median from the warm-up to the outage → 20 s after the outage → median of the last "
         f"{min(RSS_WINDOW_SECONDS, 0.3 * args.minutes * 60) / 60:g} min (growth); the replacement at the end",
         f"{rss[0]:.0f} → {rss[1]:.0f} → {rss[2]:.0f} MB (**{rss[2] - rss[0]:+.1f} MB**); {rss[3]:.0f} MB"],
        [f"survivor's RSS each minute (MB; outage at {minute(timeline.outage[0])}, kill at {minute(timeline.kill)})",
         " → ".join(f"{found[timeline.survivor]:.0f}" for elapsed, found in timeline.rss_trace
                    if timeline.survivor in found and round(elapsed) % 60 < TRACE_SECONDS)],
        ["the replacement's RSS each minute (MB)",
         " → ".join(f"{max(found.values()):.0f}" for elapsed, found in replacement_trace
                    if round(elapsed) % 60 < TRACE_SECONDS) or "-"],
        ["start → ready and scoring, database up / down: 1 worker; "
         f"{args.workers} workers (medians of 3, alternating; 1-min load average {load:.1f} after them)",
         f"{boot[0]:.2f} s / {boot[1]:.2f} s; {boot[2]:.2f} s / {boot[3]:.2f} s"],
    ]  # fmt: skip
    return table(["figure", "value"], lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--check-seconds", type=float, default=1.0, help="COMMITRISK_DATABASE_CHECK_SECONDS")
    parser.add_argument("--models", type=Path, help="reuse a models directory with versions 1 and 2")
    parser.add_argument("--database", default=POSTGRES, help="a PostgreSQL URL whose server gets a fresh database")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    if args.workers < 2:
        parser.error("--workers: at least 2 (one of them is killed; uvicorn's supervisor restarts it)")
    work = Path(tempfile.mkdtemp(prefix="commitrisk-soak-"))
    models = args.models or work / "models"
    if args.models is None:
        print("training versions 1 and 2 …", flush=True)
        train_versions(models)
    name, direct = fresh_database(args.database)
    target = make_url(direct)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    via_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        # One worker and `--workers`, database up and down, alternating, so a busy moment of the machine does not
        # land on one side only: (1 worker up, down, N workers up, down), medians of 3.
        starts: dict[tuple[int, bool], list[float]] = defaultdict(list)
        for _ in range(3):
            for workers in (1, args.workers):
                for up in (False, True):
                    (proxy.start if up else proxy.stop)()
                    starts[(workers, up)].append(startup(models, work, workers, via_proxy))
        boot = tuple(statistics.median(starts[(w, up)]) for w in (1, args.workers) for up in (True, False))
        load = os.getloadavg()[0]
        env = {"COMMITRISK_DATABASE_URL": via_proxy, "COMMITRISK_ADMIN_TOKEN": TOKEN,
               "COMMITRISK_DATABASE_CHECK_SECONDS": str(args.check_seconds),
               "COMMITRISK_DRIFT_INTERVAL_SECONDS": "120"}  # fmt: skip
        before = logged(direct)[0]  # rows the start-up probes above logged: not the soak's
        server = Service(models, work, args.workers, env).start()
        server.wait()
        rows = traffic(2000)
        seconds = args.minutes * 60
        tally, timeline = Tally(), Timeline()

        async def run() -> None:
            start = timeline.started = time.monotonic()
            await asyncio.gather(
                clients(server.url, rows, tally, start + seconds, args.connections),
                faults(server, proxy, timeline, start, seconds, args.outage_seconds),
            )

        # The first workers, after a warm-up: the first allocations (sessions, caches, pools) are not growth.
        async def first_workers() -> list[int]:
            await asyncio.sleep(min(WARM_UP_SECONDS, seconds / 10))
            return server.worker_pids()

        # Every worker's RSS every TRACE_SECONDS: when growth happens (warm-up, outage, write-back, steady) says
        # what it is.
        async def trace() -> None:
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < seconds:
                timeline.rss_trace.append((elapsed, {pid: rss_mb(pid) for pid in server.worker_pids()}))
                await asyncio.sleep(TRACE_SECONDS)

        async def everything() -> list[int]:
            started, _, _ = await asyncio.gather(first_workers(), run(), trace())
            return started

        print(f"soaking for {args.minutes:g} min on {server.url} …", flush=True)
        at_start = asyncio.run(everything())
        # RSS when the traffic stops: before this script's own /metrics scrapes below (each merges every worker's
        # files: a burst of allocations that is the scraper's, not the soak's).
        now = server.worker_pids()
        survivor = timeline.survivor = next(pid for pid in at_start if pid != timeline.killed)
        replacements = [pid for pid in now if pid not in at_start]
        # One sample swings ±10 MB with what a worker holds at that moment (two models during a reload, a
        # monitoring view's window): growth compares medians of the trace, from the warm-up to the outage and over
        # the last RSS_WINDOW_SECONDS.
        rss = (
            settled(timeline.rss_trace, survivor, min(WARM_UP_SECONDS, seconds / 10), 0.4 * seconds),
            timeline.rss_after_outage.get(survivor, 0.0),
            settled(timeline.rss_trace, survivor, seconds - min(RSS_WINDOW_SECONDS, 0.3 * seconds), seconds),
            max((rss_mb(pid) for pid in replacements), default=0.0),
        )
        counts = caught_up(server.url)
        server.stop()
        rows_logged, twice = logged(direct)
        body = report(args, tally, timeline, counts, (rows_logged - before, twice), rss, boot, load)
    finally:
        proxy.stop()
        drop_database(args.database, name)
    publish("Soak (`bench/soak.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
