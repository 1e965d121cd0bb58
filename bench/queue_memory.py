"""What an outage's held log rows leave in a worker: RSS and pymalloc arenas before, during and after.

    .venv/bin/python bench/queue_memory.py [--rate 2000] [--outage-seconds 30] [--variants packed,unpacked]

One child process per variant runs the real prediction log (PredictionLog, Availability, Store) against a fresh
PostgreSQL database reached through a TCP proxy (bench/proxy.py), with one traffic thread submitting single-commit
batches built as app/scoring.py builds them (plus the request's own garbage: the JSON body parsed, the answer
encoded) at `--rate` requests/s. The parent stops the proxy for `--outage-seconds` (the queue fills up to
`--queue-rows`), starts it again, waits until the held rows are written, then `--after-seconds` more. Figures are
taken after glibc's `malloc_trim` (the service runs it every 30 s). `--keep-every K` keeps one small object of every
K-th request for good: the long-lived allocations a real worker makes while rows are held (a cache entry, a pooled
connection, a reloaded model). Variants: `packed` (the default log: held rows packed into buffers) and `unpacked`
(`pack_rows=0`: held as queued, not packed — single commits in blocks since 2026-12-02). `submit` is timed on the
traffic thread (the /predict hot path), by phase. Appends the table to BENCHMARKS.md unless --no-append.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contract import FEATURES  # noqa: E402
from app.monitoring.availability import Availability  # noqa: E402
from app.monitoring.prediction_log import PACK_ROWS, PredictionBatch, PredictionLog, new_request_id  # noqa: E402
from app.monitoring.store import Store  # noqa: E402
from bench.machine import load_span, publish, table  # noqa: E402
from bench.proxy import TcpProxy  # noqa: E402
from bench.soak import POSTGRES, drop_database, fresh_database  # noqa: E402

VARIANTS = {"packed": PACK_ROWS, "unpacked": 0}
POINTS = ("warm", "held", "drained", "after")  # when the parent asks for figures


def rss_mb() -> float:
    """This process's resident set after `malloc_trim`, MB."""
    ctypes.CDLL(None).malloc_trim(ctypes.c_size_t(0))
    match = re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def arenas_mb() -> float:
    """pymalloc's arenas currently allocated, MB (`sys._debugmallocstats` writes them to fd 2)."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()
    current = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
    size = re.search(r"arenas \* ([\d,]+) bytes/arena", text)
    if current is None or size is None:
        return 0.0
    return int(current.group(1).replace(",", "")) * int(size.group(1).replace(",", "")) / 2**20


def request(n: int, body: bytes, keep: list[object], keep_every: int) -> PredictionBatch:
    """One /predict's batch, built as app/api/predict.py and app/scoring.py build it, with its garbage."""
    data = orjson.loads(body)
    data["commit_id"] = f"q{n}"
    features = np.array([[float(data[f]) for f in FEATURES]], dtype=np.float64)
    batch = PredictionBatch(
        time=time.time(), request_id=new_request_id(), features=features,
        probabilities=np.fromiter((0.25 + (n % 7) / 100,), np.float64, 1), labels=np.fromiter((n % 3 == 0,), bool, 1),
        risk_bands=["medium"], model_version=1, commit_ids=[data["commit_id"]], repositories=[data["repository"]],
    )  # fmt: skip
    orjson.dumps({"request_id": batch.request_id, "commit_id": data["commit_id"], "probability": 0.25})
    if keep_every and n % keep_every == 0:
        keep.append({"commit_id": data["commit_id"], "at": time.time()})
    return batch


def child(url: str, variant: str, args: argparse.Namespace) -> None:
    """Answer `measure POINT`, `pending` and `stop` on stdin while a thread submits traffic."""
    store = Store.unopened(url, timeout=2)
    availability = Availability(store, check_seconds=args.check_seconds)
    availability.check()
    availability.start()
    log = PredictionLog(
        store, args.queue_rows, availability=availability, retry_seconds=args.check_seconds,
        pack_rows=VARIANTS[variant],
    )  # fmt: skip
    log.start()
    body = orjson.dumps({f: 1.0 + i for i, f in enumerate(FEATURES)} | {"commit_id": "x", "repository": "bench"})
    keep: list[object] = []
    # Submit times (ns) in one preallocated array: a list of ints would itself be small objects that stay.
    times = np.zeros(int(args.rate * 600), dtype=np.int64)
    counter = [0, 0]  # requests submitted, index where the current phase's times begin
    stop = threading.Event()

    def traffic() -> None:
        start, n = time.monotonic(), 0
        while not stop.is_set():
            batch = request(n, body, keep, args.keep_every)
            began = time.perf_counter_ns()
            log.submit(batch)
            times[n % len(times)] = time.perf_counter_ns() - began
            n += 1
            counter[0] = n
            if n % 20 == 0:
                stop.wait(max(0.0, start + n / args.rate - time.monotonic()))

    def phase() -> str:
        """p50 / p99 µs of the submits since the last call."""
        first, last = counter[1], counter[0]
        counter[1] = last
        sample = times[first % len(times) : last % len(times)] if last - first < len(times) else times
        if not len(sample):
            return "- -"
        return " ".join(f"{v / 1000:.1f}" for v in np.percentile(sample, [50, 99]))

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    for line in sys.stdin:
        command = line.split()
        if command[0] == "measure":
            print(f"{rss_mb():.1f} {arenas_mb():.1f} {log.pending()} {phase()}", flush=True)
        elif command[0] == "pending":
            print(log.pending(), flush=True)
        else:
            stop.set()
            thread.join()
            log.close()
            availability.stop()
            store.close()
            print(f"{counter[0]} {log.written} {log.dropped}", flush=True)
            return


def run(variant: str, url: str, proxy: TcpProxy, args: argparse.Namespace) -> dict[str, list[str]]:
    """One child through warm-up, outage, write-back and after; its answers at each point."""
    command = [sys.executable, __file__, "--child", url, "--variant", variant, *forwarded(args)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def ask(line: str) -> list[str]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().split()

    found: dict[str, list[str]] = {}
    time.sleep(args.warmup_seconds)
    found["warm"] = ask("measure warm")
    proxy.stop()
    time.sleep(args.outage_seconds)
    found["held"] = ask("measure held")
    proxy.start()
    began = time.monotonic()
    # Written back once no more than a second of traffic is queued (at most 5 minutes).
    while int(ask("pending")[0]) > args.rate and time.monotonic() - began < 300:
        time.sleep(0.5)
    found["drain"] = [f"{time.monotonic() - began:.1f}"]
    found["drained"] = ask("measure drained")
    time.sleep(args.after_seconds)
    found["after"] = ask("measure after")
    found["counts"] = ask("stop")
    proc.wait(60)
    return found


def forwarded(args: argparse.Namespace) -> list[str]:
    names = ("rate", "queue_rows", "check_seconds", "keep_every")
    return [part for name in names for part in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]


def report(results: dict[str, dict[str, list[str]]], args: argparse.Namespace, load: str) -> str:
    """The Markdown table: RSS / arenas at each point, growth, rows accounted, write-back time, submit p50 / p99."""
    rows = []
    for variant, r in results.items():
        rss = {point: float(r[point][0]) for point in POINTS}
        arenas = {point: float(r[point][1]) for point in POINTS}
        submitted, written, dropped = (int(c) for c in r["counts"])
        rows.append([
            variant, *(f"{rss[p]:.1f} / {arenas[p]:.0f}" for p in POINTS),
            f"**{rss['after'] - rss['warm']:+.1f}** / {arenas['after'] - arenas['warm']:+.0f}",
            f"{int(r['held'][2]):,}", f"{submitted:,} / {written:,} / {dropped:,} / {submitted - written - dropped}",
            r["drain"][0], *(" / ".join(r[p][3:5]) for p in ("held", "drained", "after")),
        ])  # fmt: skip
    header = ["variant", "warm: RSS / arenas MB", "outage end", "written back", f"{args.after_seconds:g} s later",
              "growth", "rows held", "submitted / written / dropped / unaccounted", "write-back s",
              "submit p50 / p99 µs: outage", "write-back", "after"]  # fmt: skip
    intro = (
        f"One process per variant: single-commit batches at {args.rate:,.0f}/s, queue bound {args.queue_rows:,} "
        f"rows, PostgreSQL behind a proxy stopped for {args.outage_seconds:g} s after {args.warmup_seconds:g} s of "
        f"warm-up. RSS after `malloc_trim`; arenas: pymalloc's; growth: {args.after_seconds:g} s after the write-back "
        f"against warm. One small object of every {args.keep_every}th request kept for good (0: none). {load}.\n\n"
    )
    return intro + table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--queue-rows", type=int, default=50_000, help="COMMITRISK_LOG_QUEUE_SIZE")
    parser.add_argument("--check-seconds", type=float, default=1.0, help="COMMITRISK_DATABASE_CHECK_SECONDS")
    parser.add_argument("--keep-every", type=int, default=200, help="keep one object of every K-th request (0: none)")
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--outage-seconds", type=float, default=30.0)
    parser.add_argument("--after-seconds", type=float, default=20.0)
    parser.add_argument("--variants", default="packed,unpacked", help=f"comma-separated, of {sorted(VARIANTS)}")
    parser.add_argument("--database", default=POSTGRES, help="a PostgreSQL URL whose server gets a fresh database")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.variant, args)
        return
    before = os.getloadavg()[0]
    results = {}
    for variant in args.variants.split(","):
        name, direct = fresh_database(args.database)
        target = make_url(direct)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
        try:
            url = target.set(port=proxy.port).render_as_string(hide_password=False)
            results[variant] = run(variant, url, proxy, args)
        finally:
            proxy.stop()
            drop_database(args.database, name)
    body = report(results, args, load_span(before))
    publish("Held log rows and worker memory (`bench/queue_memory.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
