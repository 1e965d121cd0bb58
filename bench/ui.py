"""Web pages over a big prediction log: every page's p95 (ratio to /health/live in the same run), the plans of the
page queries, and /predict throughput while pages are browsed (ratio to idle in the same run), with the pages in a
page process and in the worker (bench/browsing.py).

    .venv/bin/python bench/ui.py [--rows 1000000] [--repositories 200] [--requests 200] [--only sqlite|postgresql]

A champion is trained on the shared data (../shared/data/commits); the log is filled with `--rows` predictions of
resampled shared commits scored by it, over `--repositories` repositories (sizes skewed, as in a real fleet) and
the last 90 days, 30% of the commits labelled, 12 drift runs and 10 retrain decisions; then one uvicorn worker
serves it. Needs `wrk`. Appends a section to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contract import FEATURES  # noqa: E402
from bench.browsing import forwarding_cpu, paired, throughput_while_browsing  # noqa: E402
from bench.machine import load_span, publish, table  # noqa: E402
from bench.monitoring import resample  # noqa: E402
from bench.replicas import free_port, wait_for  # noqa: E402
from bench.service import train_champion  # noqa: E402

POSTGRES = os.environ.get("COMMITRISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BENCH_DB = "commitrisk_bench_ui"
DAY = 86_400.0
TARGET_MS = 150.0


def fill(url: str, models: Path, rows: int, repositories: int, now: float) -> dict[str, Any]:
    """The log: scored predictions, labels for 30% of the commits, drift runs and retrain decisions."""
    from app.metrics import ServiceMetrics
    from app.monitoring import retrain_log
    from app.monitoring.store import Store
    from app.registry import ModelRegistry
    from app.repository import ModelRepository

    predictor = ModelRegistry(ModelRepository(models), ServiceMetrics()).build(1)
    rng = np.random.default_rng(16)
    features = resample(rows, seed=16)[list(FEATURES)].to_numpy(np.float64)
    probability = predictor.probabilities(features.astype(np.float32))
    bands = [predictor.manifest.bands.band(p) for p in probability.tolist()]
    # Skewed repository sizes: a few large repositories, a long tail of small ones (Zipf-like weights).
    weights = 1.0 / np.arange(1, repositories + 1) ** 0.8
    repo = rng.choice(repositories, rows, p=weights / weights.sum())
    times = np.sort(now - rng.uniform(0, 90 * DAY, rows))
    # Commit ids as git writes them: 40 hex digits, spread evenly (a SHA search is a prefix of one).
    shas = [hashlib.sha1(i.to_bytes(4, "big")).hexdigest() for i in range(rows)]
    store = Store.open(url)
    started = time.perf_counter()
    for start in range(0, rows, 10_000):
        chunk = range(start, min(rows, start + 10_000))
        store.append_log(
            [(times[i], f"{i:032x}", shas[i], f"org/repo-{repo[i]:03d}", *features[i].tolist(),
              float(probability[i]), bool(probability[i] >= predictor.manifest.threshold), bands[i], 1)
             for i in chunk], (), (),
        )  # fmt: skip
    labelled = np.flatnonzero(rng.uniform(0, 1, rows) < 0.3)
    buggy = rng.uniform(0, 1, len(labelled)) < probability[labelled]
    for start in range(0, len(labelled), 20_000):
        part = labelled[start : start + 20_000]
        items = zip(part.tolist(), buggy[start:].tolist(), strict=False)
        store.upsert_feedback([{"commit_id": shas[i], "buggy": b} for i, b in items])
    filled = time.perf_counter() - started
    for k in range(12):
        drifted = [{"feature": f, "test": "wasserstein", "score_kind": "distance", "score": 0.05 + 0.01 * ((k + j) % 9),
                    "p_value": None, "distance": 0.1, "threshold": 0.1, "drifted": (k + j) % 9 > 4}
                   for j, f in enumerate(FEATURES)]  # fmt: skip
        store.save_drift_report("ok", {"drift_share": 0.3, "features": drifted}, "<html></html>" if k == 11 else None)
    for k in range(10):
        retrain_log.write_audit(store.engine, {"time": now - k * 3600, "action": "none", "reason": "no trigger fired",
                                               "fired": [], "champion_version": 1})  # fmt: skip
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk insert (SQLite: no statistics)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    store.close()
    largest = int(np.bincount(repo).argmax())
    median_repo = f"org/repo-{int(np.argsort(np.bincount(repo, minlength=repositories))[repositories // 2]):03d}"
    # The searched commit: one of the largest repository's, from the middle of the log.
    searched = shas[int(np.flatnonzero(repo == largest)[np.count_nonzero(repo == largest) // 2])]
    return {"fill_seconds": filled, "biggest": f"org/repo-{largest:03d}", "median": median_repo,
            "commit": shas[rows // 2], "sha": searched, "labelled": len(labelled)}  # fmt: skip


def plans(url: str, info: dict[str, Any]) -> list[list[str]]:
    """The database's plan of each page query, reduced to the indexes it names."""
    import re

    from sqlalchemy import create_engine, select

    from app.monitoring import commits, volume
    from app.monitoring.commits import CommitFilter
    from app.monitoring.tables import feedback, predictions

    engine = create_engine(url)
    dialect = engine.dialect.name
    where = CommitFilter(info["biggest"])
    filtered = CommitFilter(info["biggest"], band="high", start=time.time() - 30 * DAY)
    searched = CommitFilter(info["biggest"], sha=info["sha"][:7])
    one_digit = CommitFilter(info["biggest"], sha=info["sha"][:1])
    queries = {
        "repository page: list": commits.list_query(dialect, where, 0, 50),
        "repository page: count": commits.count_query(dialect, where),
        "repository page: band and days": commits.list_query(dialect, filtered, 0, 50),
        "repository page: SHA search (7 digits)": commits.matches_query(dialect, searched, 1000),
        "repository page: SHA search (1 digit)": commits.matches_query(dialect, one_digit, 1000),
        "commit page: its predictions": select(predictions.c.id).where(predictions.c.commit_id == info["commit"]),
        "commit page: its label": select(feedback.c.buggy).where(feedback.c.commit_id == info["commit"]),
        "volume: count one day": volume.day_query(volume.day_of(time.time()) - 1),
    }  # fmt: skip
    rows = []
    with engine.connect() as conn:
        for name, query in queries.items():
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            text = str(conn.exec_driver_sql(("EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN ") + sql).all())
            used = sorted(set(re.findall(r"(ix_\w+|sqlite_autoindex_\w+|feedback_pkey)", text)))
            scan = "full scan!" if re.search(r"SCAN predictions(?! USING)|Seq Scan on predictions", text) else ""
            rows.append([name, ", ".join(used) or "—", scan])
    engine.dispose()
    return rows


def sizes(url: str) -> str:
    """Size of the pages' index next to the predictions table's (SQLite's dbstat, PostgreSQL's relation sizes)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        try:
            if engine.dialect.name == "sqlite":
                size = "SELECT sum(pgsize) FROM dbstat WHERE name = '{}'"
            else:
                size = "SELECT pg_relation_size('{}')"
            index = conn.exec_driver_sql(size.format("ix_predictions_repository_time")).scalar()
            search = conn.exec_driver_sql(size.format("ix_predictions_repository_sha")).scalar()
            whole = conn.exec_driver_sql(size.format("predictions")).scalar()
        except Exception as exc:  # dbstat is a compile-time option of SQLite
            return f"index size unknown ({type(exc).__name__})"
    engine.dispose()
    return (f"the pages' index {index / 2**20:.0f} MiB, the SHA-search index {search / 2**20:.0f} MiB, the predictions"
            f" table {whole / 2**20:.0f} MiB")  # fmt: skip


def serve(models: Path, url: str, ui_process: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """One uvicorn worker on the filled log (the scheduled job off: only the pages and /predict run); its pages in a
    page process, or in the worker itself."""
    port = free_port()
    env = os.environ | {"COMMITRISK_MODELS_DIR": str(models), "COMMITRISK_DATABASE_URL": url,
                        "COMMITRISK_DRIFT_INTERVAL_SECONDS": "86400", "COMMITRISK_MONITORING_JOB": "false",
                        "COMMITRISK_UI_PROCESS": str(ui_process).lower()}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app_from_env", "--factory", "--port", str(port),
         "--no-access-log", "--log-level", "warning"], cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{base}/health/ready").status_code == 200, "the server", 300)
    return process, base


def pages(info: dict[str, Any]) -> dict[str, str]:
    repo = quote(info["biggest"], safe="")
    return {
        "/health/live (reference)": "/health/live",
        "/ui/": "/ui/",
        "repository (largest), page 1": f"/ui/repositories/{repo}",
        "repository (largest), page 20": f"/ui/repositories/{repo}?page=20",
        "repository (largest), band=high, last 30 days": f"/ui/repositories/{repo}?band=high&from="
        + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * DAY)),
        "repository (largest), SHA search (7 digits)": f"/ui/repositories/{repo}?sha={info['sha'][:7]}",
        "repository (largest), SHA search (1 digit)": f"/ui/repositories/{repo}?sha={info['sha'][:1]}",
        "repository (median size)": f"/ui/repositories/{quote(info['median'], safe='')}",
        "commit": f"/ui/commits/{quote(info['commit'], safe='')}",
        "/ui/models": "/ui/models",
        "/ui/monitoring": "/ui/monitoring",
    }  # fmt: skip


def latencies(base: str, paths: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Sequential requests, the pages interleaved round-robin so machine noise hits them alike."""
    found: dict[str, list[float]] = {name: [] for name in paths}
    with httpx.Client(base_url=base, timeout=60, headers={"accept": "text/html"}) as client:
        for name, path in paths.items():  # warm-up: the first view computes the cached aggregates
            started = time.perf_counter()
            assert client.get(path).status_code == 200, path
            found.setdefault("first view: " + name, []).append(time.perf_counter() - started)
        for _ in range(requests):
            for name, path in paths.items():
                started = time.perf_counter()
                response = client.get(path)
                found[name].append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
    return found


def p95(values: list[float]) -> float:
    return float(np.percentile(np.array(values) * 1e3, 95))


def run(name: str, url: str, models: Path, args: argparse.Namespace, work: Path) -> str:
    now = time.time()
    info = fill(url, models, args.rows, args.repositories, now)
    (process, base), (in_worker, worker_base) = serve(models, url), serve(models, url, ui_process=False)
    try:
        paths = pages(info)
        found = latencies(base, paths, args.requests)
        latencies(worker_base, paths, 0)  # the first views compute the cached aggregates: not measured
        pages_only = [path for path in paths.values() if path.startswith("/ui/")]
        forwarding = forwarding_cpu(base, process.pid, pages_only, max(1, args.requests // 4))
        servers = {"by the page process": (base, process.pid, False),
                   "in the worker": (worker_base, in_worker.pid, False),
                   "control: page process browsed directly": (base, process.pid, True)}  # fmt: skip
        browsed = throughput_while_browsing(servers, list(paths.values()), work, args.seconds, args.rounds)
    finally:
        for server in (process, in_worker):
            server.terminate()
            server.wait(timeout=60)
    reference = p95(found["/health/live (reference)"])
    rows = [[page, f"{statistics.median(found[page]) * 1e3:.1f}", f"{p95(found[page]):.1f}",
             f"{p95(found[page]) / reference:.0f}×", "yes" if p95(found[page]) <= TARGET_MS else "**no**",
             f"{found['first view: ' + page][0] * 1e3:.0f}"] for page in paths]  # fmt: skip
    body = (f"#### {name}: {args.rows:,} predictions, {args.repositories} repositories, {info['labelled']:,} labelled"
            f" (filled in {info['fill_seconds']:.0f} s)\n\n")  # fmt: skip
    body += table(["page", "p50 ms", "p95 ms", "p95 / health p95", f"p95 ≤ {TARGET_MS:.0f} ms", "first view ms"], rows)
    body += (f"\n\n{args.requests} sequential requests per page, interleaved; one uvicorn worker, pages as text/html,"
             " rendered by its page process (`COMMITRISK_UI_PROCESS`, the default).\n\n")  # fmt: skip
    body += (f"CPU per page browsed sequentially through the worker (pages of {forwarding[2] / 1024:.0f} KiB on"
             f" average): the worker **{forwarding[0]:.2f} ms** (forwarding), its page process {forwarding[1]:.2f} ms"
             " (rendering).\n\n")  # fmt: skip
    body += table(["page query", "indexes in its plan", ""], plans(url, info)) + f"\n\nDisk: {sizes(url)}."
    body += (
        f"\n\n`/predict` (wrk, 16 connections) idle and while one client browsed every page in a loop, the same"
        f" log served by two servers of one worker each — pages in a page process and in the worker —, in"
        f" {args.rounds} interleaved rounds of {args.seconds} s (medians; CPU seconds summed over the rounds). The"
        " control browses the page process through its socket, bypassing the worker: what remains is the machine's"
        " two cores shared by wrk, the worker, the page process and the browsing client, not the forwarding.\n\n"
    )
    rows = [[name, f"{statistics.median(b.idle):,.0f}", f"{statistics.median(b.busy):,.0f}", f"**{b.ratio:.2f}**",
             "–".join(f"{r:.2f}" for r in (min(b.round_ratios()), max(b.round_ratios()))),
             f"{b.pages:,}", f"{b.idle_cpu:.1f} / {b.worker_cpu:.1f}", f"{b.page_cpu:.1f}"]
            for name, b in browsed.items()]  # fmt: skip
    body += table(["pages rendered", "idle req/s", "browsed req/s", "ratio", "per round", "pages served",
                   "worker CPU s idle / browsed", "page process CPU s"], rows)  # fmt: skip
    control = browsed["control: page process browsed directly"]
    shares = {name: paired(b, control) for name, b in browsed.items() if b is not control}
    body += (
        "\n\nEach round's ratio over the control's in the same round (median, range): "
        + "; ".join(f"{name} **{m:.2f}** ({lo:.2f}–{hi:.2f})" for name, (m, lo, hi) in shares.items())
        + " — 1.00 is a page path that costs `/predict` nothing beyond the cores the browsing client takes."
    )
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repositories", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved idle/browsing /predict rounds")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = work / "models"
        train_champion(models)
        if args.only != "postgresql":
            sections.append(run("SQLite", f"sqlite:///{work / 'log.db'}", models, args, work))
        if args.only != "sqlite":
            from sqlalchemy import create_engine

            admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
                conn.exec_driver_sql(f"CREATE DATABASE {BENCH_DB}")
            try:
                sections.append(run("PostgreSQL", POSTGRES.rsplit("/", 1)[0] + f"/{BENCH_DB}", models, args, work))
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                admin.dispose()
    head = load_span(load) + " (2 shared cores: read the ratios)"
    text = head + "\n\n" + "\n\n".join(sections)
    publish("Web pages (bench/ui.py)", text, args.no_append)


if __name__ == "__main__":
    main()
