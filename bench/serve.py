"""Benchmark the model service with wrk; print a table and append it to BENCHMARKS.md.

Every scenario is measured next to the constant route (`GET /health/live`) of the same server in the same run,
so a busy machine shows up as a slow baseline rather than as a slow service. Two reference servers answer the same
commit with the same champion beside it (issue 18): a hand-written Starlette + orjson + onnxruntime handler
(bench/reference_starlette.py) and a minimal FastAPI app (bench/reference_fastapi.py); the ratios to the
hand-written handler are the figures tracked. Each measurement also records the CPU time the server and wrk used
(the CPU split: both share the machine's cores). `--rounds N` repeats every row, servers alternating (two
workers included), and reports medians; `--profile` adds a py-spy profile of one `/predict` under load, by stage
(bench/hot_path.py).

    .venv/bin/python bench/serve.py                    # trains a model with `commitrisk train` first
    .venv/bin/python bench/serve.py --models models    # or uses an existing models dir (champion served)
    .venv/bin/python bench/serve.py --models models --rounds 3 --profile

Needs `wrk` (Debian: apt-get install -y wrk) and the shared datasets in ../shared/data/commits.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/serve.py`: the bench package is importable

from app.contract import FEATURES  # noqa: E402
from bench import hot_path  # noqa: E402
from bench.machine import describe  # noqa: E402
from bench.service import spawned_workers  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "commits"
LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); if f then wrk.body = f:read("*a"); f:close() end
"""


REFERENCES = {  # label → module, each serving POST /predict and GET /health/live
    "hand-written Starlette + orjson": "bench.reference_starlette",
    "minimal FastAPI": "bench.reference_fastapi",
}
HAND_WRITTEN = "hand-written Starlette + orjson"


@dataclass
class Load:
    """One wrk run: throughput, latency, refusals, requests answered, and the CPU seconds wrk itself used."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    wrk_cpu: float
    spread: str = "-"  # wrk's connections per worker, counted a second into the run (several workers only)


@dataclass
class Result:
    server: str
    workers: int
    scenario: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    baseline_rps: float
    rss_mb: float
    log_dropped: float
    server_cpu_us: float  # server CPU time per answered request
    cpu_split: str  # server / wrk CPU as shares of the machine's cores over the run
    spread: str  # wrk's connections per worker (several workers: all on one leaves the other idle)


def commits(n: int) -> list[dict[str, float | str]]:
    """Real rows from the shared datasets, repeated to n."""
    rows: list[dict[str, float | str]] = []
    for path in sorted(DATA.glob("*.csv")):
        csv.field_size_limit(1 << 30)
        with path.open(newline="") as fh:
            for record in csv.DictReader(fh):
                rows.append({**{f: float(record[f]) for f in FEATURES}, "commit_id": record["commit_hash"]})
    return [rows[i % len(rows)] for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(models: Path, workers: int, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)]
    return launch([*cmd, "--workers", str(workers)], port, work)


def start_reference(module: str, models: Path, work: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", module, "--models", str(models), "--port", str(port)]
    return launch([*cmd, *(["--workers", str(workers)] if workers > 1 else [])], port, work)


def launch(cmd: list[str], port: int, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "COMMITRISK_ADMIN_TOKEN": "bench", "COMMITRISK_DATABASE_URL": f"sqlite:///{work}/p{port}.db"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (work / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not become ready; see {work / f'server-{port}.log'}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def worker_pids(proc: subprocess.Popen[bytes], workers: int) -> set[int]:
    """The processes that serve: the server itself, or uvicorn's spawned workers."""
    return {proc.pid} if workers == 1 else spawned_workers(proc.pid)


def rss_mb(pids: set[int]) -> float:
    """Largest resident set among the worker processes, MB."""
    sizes = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
    return max(sizes)


def established(pids: set[int], port: int) -> list[int]:
    """Established connections to `port` held by each process (sorted, largest first), from /proc."""
    inodes: dict[str, int] = {}
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                inodes[fields[9]] = 0
    counts = []
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts.append(held)
    return sorted(counts, reverse=True)


def wrk(url: str, script: Path | None, connections: int, seconds: int, workers: set[int] | None = None) -> Load:
    """One wrk run; with `workers` (several), how wrk's connections spread over them a second into the run."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spread = "-"
    if workers is not None and len(workers) > 1:
        time.sleep(min(1.0, seconds / 2))
        spread = " / ".join(map(str, established(workers, int(url.split(":")[2].split("/")[0]))))
    out, err = proc.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child waited for meanwhile
    if proc.returncode != 0:
        raise SystemExit(f"error: wrk failed on {url}: {err.strip() or out.strip()}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(rps, percentile("50"), percentile("99"), int(errors.group(1)) if errors else 0, requests,
                usage.ru_utime + usage.ru_stime, spread)  # fmt: skip


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds the processes have used so far (processes that ended count zero)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def loaded(
    url: str, script: Path | None, connections: int, seconds: int, pids: set[int], workers: set[int]
) -> tuple[Load, float, str]:
    """One wrk run with the server's CPU time per request and the CPU split (server / wrk, % of all cores)."""
    before_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = cpu_seconds(pids)
    load = wrk(url, script, connections, seconds, workers)
    server = cpu_seconds(pids) - before
    wrk_cpu = load.wrk_cpu - (before_wrk.ru_utime + before_wrk.ru_stime)
    cores = (os.cpu_count() or 1) * seconds / 100
    split = f"{server / cores:.0f} / {wrk_cpu / cores:.0f}"
    return load, 1e6 * server / max(load.requests, 1), split


def script_for(work: Path, name: str, body: object) -> Path:
    body_path = work / f"{name}.json"
    body_path.write_bytes(json.dumps(body).encode())
    script = work / f"{name}.lua"
    script.write_text(LUA.format(method="POST", body=body_path))
    return script


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


def log_dropped(url: str) -> float:
    """`commitrisk_prediction_log_dropped_total` of the server (summed over workers by the multiprocess mode)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r"^commitrisk_prediction_log_dropped_total(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.MULTILINE)
    return sum(float(value) for value in found)


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
    models: Path, seconds: int, rounds: int, workers: list[int], work: Path, profile: bool
) -> tuple[list[Result], str]:
    """commitrisk with one worker, the reference servers and commitrisk with each other count of `workers`, all
    started together and measured in alternation, `round_steps` after `round_steps`."""
    # (server, workers) → the supervisor, its URL and the worker processes (the supervisor itself with one worker)
    servers: dict[tuple[str, int], tuple[subprocess.Popen[bytes], str, set[int]]] = {}
    try:
        proc, url = start(models, 1, work)
        servers["commitrisk", 1] = proc, url, {proc.pid}
        for label, module in REFERENCES.items():
            proc, url = start_reference(module, models, work)
            servers[label, 1] = proc, url, {proc.pid}
        for count in (w for w in workers if w != 1):
            proc, url = start(models, count, work)
            servers["commitrisk", count] = proc, url, set()
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


def wait_for_workers(url: str, workers: int, timeout: float = 120.0) -> None:
    """Until every worker has loaded the model (its `commitrisk_model_info` series, one per pid, in /metrics): wrk's
    connections stay with the worker that accepted them, and a worker still starting would leave all to the other."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        if (
            len(set(re.findall(r'^commitrisk_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0$', text, re.MULTILINE)))
            >= workers
        ):
            return
        time.sleep(0.5)
    raise SystemExit(f"error: fewer than {workers} workers loaded the model within {timeout:.0f} s at {url}")


def answering_pids(url: str, workers: int, timeout: float = 60.0) -> set[int]:
    """The hand-written handler's worker pids, once each has answered `/pid` (a new connection per ask: the
    kernel hands it to whichever worker accepts first)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"error: fewer than {workers} workers answered within {timeout:.0f} s at {url}")
        seen.add(int(httpx.get(f"{url}/pid", timeout=10).text))
        time.sleep(0.05)
    return seen


def medians(results: list[Result]) -> list[Result]:
    """One row per (server, workers, scenario): the median of its rounds by req/s."""
    groups: dict[tuple[str, int, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.server, r.workers, r.scenario), []).append(r)
    chosen = []
    for rows in groups.values():
        ranked = sorted(rows, key=lambda r: r.rps)
        chosen.append(ranked[(len(ranked) - 1) // 2])
    return chosen


def round_ratios(
    results: list[Result],
    scenario: str,
    base: tuple[str, int, str] = (HAND_WRITTEN, 1, "/predict explain=false"),
    workers: int = 1,
    server: str = "commitrisk",
) -> list[float]:
    """`server`'s req/s of `scenario` with `workers` over the `base` run (server, workers, scenario) measured
    last before it, run by run (`results` in the order measured: `round_steps` puts the base right before; pass
    them reversed for a base measured right after)."""
    ratios = []
    latest: float | None = None
    for r in results:
        if (r.server, r.workers, r.scenario) == base:
            latest = r.rps
        elif (r.server, r.workers, r.scenario) == (server, workers, scenario) and latest:
            ratios.append(r.rps / latest)
    return ratios


def targets(rows: list[Result], results: list[Result] | None = None) -> list[str]:
    """The issue-18 table: ratios to the hand-written handler (met by the median of the per-round ratios when
    `results` holds the rounds), batch p50, 2 workers vs 1 (met / not met)."""
    find = {(r.server, r.workers, r.scenario): r for r in rows}
    hand = find.get((HAND_WRITTEN, 1, "/predict explain=false"))
    lines = ["| target | measured | met |", "|---|---|---|"]

    def row(name: str, value: str, met: bool) -> None:
        lines.append(f"| {name} | {value} | {'met' if met else 'not met'} |")

    plain = find.get(("commitrisk", 1, "/predict explain=false"))
    if hand is not None and plain is not None:
        for scenario, goal in (("/predict explain=false", 0.7), ("/predict (explained)", 0.55),
                               ("/v2/.../infer 1 row", 0.6)):  # fmt: skip
            mine = find[("commitrisk", 1, scenario)]
            ratio = mine.rps / hand.rps
            text = f"{ratio:.2f}× ({mine.rps:,.0f} / {hand.rps:,.0f} req/s)"
            rounds = round_ratios(results or [], scenario)
            if rounds:
                ratio = statistics.median(rounds)
                text += f"; per round {' / '.join(f'{x:.2f}×' for x in rounds)}, median {ratio:.2f}×"
            row(f"`{scenario}` ≥ {goal}× hand-written", text, ratio >= goal)
        row("`/predict explain=false` p99 ≤ 10 ms",
            f"{plain.p99_ms:.2f} ms (hand-written {hand.p99_ms:.2f} ms: {plain.p99_ms / hand.p99_ms:.2f}×)",
            plain.p99_ms <= 10)  # fmt: skip
        fastapi = find.get(("minimal FastAPI", 1, "/predict explain=false"))
        if fastapi is not None:
            lines.append(f"| (minimal FastAPI / hand-written) | {fastapi.rps / hand.rps:.2f}× | - |")
    batch = find.get(("commitrisk", 1, "/predict/batch 1000"))
    if batch is not None:
        row("1,000-commit batch p50 ≤ 25 ms, log on", f"{batch.p50_ms:.1f} ms", batch.p50_ms <= 25)
    two = find.get(("commitrisk", 2, "/predict explain=false"))
    if two is not None and plain is not None:
        ratio = two.rps / plain.rps
        text = f"{ratio:.2f}× (CPU % server / wrk: {two.cpu_split} vs {plain.cpu_split})"
        rounds = round_ratios(results or [], "/predict explain=false", ("commitrisk", 1, "/predict explain=false"), 2)
        if rounds:
            ratio = statistics.median(rounds)
            text += f"; per round {' / '.join(f'{x:.2f}×' for x in rounds)}, median {ratio:.2f}×"
        hand_rounds = round_ratios((results or [])[::-1], "/predict explain=false", workers=2, server=HAND_WRITTEN)
        if hand_rounds:
            text += (f"; the hand-written handler on this host: {' / '.join(f'{x:.2f}×' for x in hand_rounds[::-1])}"
                     f", median {statistics.median(hand_rounds):.2f}×")  # fmt: skip
        row("2 workers ≥ 1.6× 1 worker (`explain=false`)", text, ratio >= 1.6)
    return lines


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


def prepare_models(work: Path, models: Path | None) -> Path:
    """A models dir with at least two versions (a copy of the champion as the next number if needed)."""
    if models is None:
        models = work / "models"
        cmd = [sys.executable, "-m", "training", "train", "--data", str(DATA), "--models", str(models), "--budget", "2"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    else:
        shutil.copytree(models, work / "models")
        models = work / "models"
    versions = sorted(int(p.name) for p in models.iterdir() if p.name.isdigit())
    if len(versions) < 2:
        clone = models / str(versions[-1] + 1)
        shutil.copytree(models / str(versions[-1]), clone)
        manifest = json.loads((clone / "manifest.json").read_text())
        manifest["version"] = versions[-1] + 1
        (clone / "manifest.json").write_text(json.dumps(manifest))
    return models


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
        results, profiled = server_rounds(models, args.seconds, args.rounds, args.workers, work, args.profile)
        before, after = reload_growth(models, args.reloads, work)
    rows = medians(results)
    overrides = ", ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("COMMITRISK_")) or "none"
    lines = [
        f"## Serving — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (`bench/serve.py`)",
        "",
        f"Machine: {info}. Model: {model_type} (version 1 of the models dir). wrk -t1, {args.seconds} s "
        "per row; batches with 1 connection (p50 = one batch's latency). `constant` = `GET /health/live` of "
        f"the same server measured right after. Settings: defaults (prediction log on, SQLite) + {overrides}. "
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
