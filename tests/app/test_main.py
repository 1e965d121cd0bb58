from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from app.contract import FEATURES
from tests.support import ADMIN_TOKEN, REPO


def test_import_and_create_app_load_no_training_libraries(models_dir: Path, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'log.db'}"  # not the default, which would create commitrisk.db in the repo
    code = (
        "import sys; import app.main; from app.settings import Settings;"
        f"app.main.create_app(Settings(models_dir={str(models_dir)!r}, database_url={database!r}));"
        "banned = {'sklearn', 'skl2onnx', 'onnx', 'training'};"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in banned);"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_reads_no_environment_and_loads_no_model() -> None:
    code = "import app.main, sys; print('onnxruntime.capi.onnxruntime_pybind11_state' in sys.modules)"
    env = {"COMMITRISK_MAX_BATCH": "not-a-number", "PATH": "/usr/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr  # a bad variable only matters to create_app_from_env


def test_fuzz_every_route_never_500(settings: Any) -> None:
    """Every operation in the OpenAPI schema, schemathesis-generated (valid and invalid) inputs."""
    from app.main import create_app

    api = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"type", "message", "details"} and isinstance(error["details"], list)

        fuzz()


def test_one_lifespan_runs_the_follower_and_monitoring_then_stops_them(settings: Any, models_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app(settings)
    services = app.state.services
    before = set(threading.enumerate())
    with TestClient(app):
        started = {t for t in threading.enumerate() if t not in before}
        assert {"prediction-log-writer", "commitrisk-monitor"} <= {t.name for t in started}
        (models_dir / "champion").write_text("2\n")  # the pointer follower converges without a request
        deadline = time.monotonic() + 10
        while services.registry.require().champion.version != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert services.registry.require().champion.version == 2
    ours = [t for t in started if t.name in ("prediction-log-writer", "commitrisk-monitor")]
    assert len(ours) == 2 and not any(t.is_alive() for t in ours)
    with pytest.raises(RuntimeError, match="shutdown"):  # the loader thread was stopped with the app
        services.registry.loader.submit(services.registry.sync)


def commit_body(la: float) -> dict[str, Any]:
    return {**dict.fromkeys(FEATURES, 1.0), "la": la}


def test_start_without_model_is_live_not_ready(serve: Callable[..., str], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    url = serve(empty)
    assert httpx.get(f"{url}/health/live").status_code == 200
    ready = httpx.get(f"{url}/health/ready")
    assert ready.status_code == 503 and "no model" in ready.json()["error"]["message"]
    assert httpx.post(f"{url}/predict", json=commit_body(10)).status_code == 503


def test_reload_under_load_with_two_workers(serve: Callable[..., str], models_dir: Path) -> None:
    url = serve(models_dir, workers=2, COMMITRISK_POINTER_POLL_SECONDS="0.2")
    statuses: list[int] = []
    versions: set[int] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                r = http.post("/predict", json=commit_body(300))
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
            for i in range(20):
                r = admin.post("/reload", json={"version": 2 if i % 2 == 0 else 1})
                assert r.status_code == 200, r.text
                time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(statuses) > 100
    assert set(statuses) == {200}
    assert versions <= {1, 2} and versions
    # Every worker converges to the final pointer (version 1) within a few poll intervals.
    deadline = time.monotonic() + 5
    served: dict[int, int] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/models").json()
        served[body["served"]["pid"]] = body["served"]["version"]
        if len(served) == 2 and set(served.values()) == {1}:
            break
    assert len(served) == 2 and set(served.values()) == {1}, served


def test_two_workers_share_one_metrics_view(serve: Callable[..., str], models_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = serve(models_dir, workers=2)

    def one(_: int) -> int:  # a fresh connection each time, concurrently: both workers get some
        assert httpx.post(f"{url}/predict?explain=false", json=commit_body(5)).status_code == 200
        return int(httpx.get(f"{url}/models").json()["served"]["pid"])

    with ThreadPoolExecutor(8) as pool:
        pids = set(pool.map(one, range(60)))
    text = httpx.get(f"{url}/metrics").text
    total = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("commitrisk_predictions_total{")
    )
    assert total == 60  # counted by whichever worker answered, merged by MultiProcessCollector
    info = [line for line in text.splitlines() if line.startswith("commitrisk_model_info{")]
    assert len(info) == len(pids) and all('pid="' in line for line in info)
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_serve_rejects_a_missing_models_dir(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "training", "serve", "--models", str(tmp_path / "nope")]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error: ")


def test_release_memory_hands_freed_heap_pages_back() -> None:
    # In a fresh process: 60 MB in 1 KB blocks (glibc's heap, not pymalloc), every block but each 100th freed —
    # the survivors pin the heap's top, so glibc keeps the freed pages until a trim returns them.
    code = (
        "import re, threading; from app.main import release_memory\n"
        "rss = lambda: int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1]) // 1024\n"
        "blocks = [bytes(1000) + bytes([i % 256]) for i in range(60_000)]\n"
        "kept = blocks[::100]; del blocks\n"
        "before = rss(); trimmed = release_memory(); print(before, rss(), trimmed)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    before, after, trimmed = out.stdout.split()
    assert trimmed == "True" and int(before) - int(after) >= 30, out.stdout  # MB back to the OS


def test_the_lifespan_freezes_the_start_up_heap_and_thaws_it_on_shutdown(settings: Any) -> None:
    import gc

    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app(settings)
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        # The app's own objects are frozen: a full collection no longer walks them (the p99 pauses of bench/serve.py).
        assert gc.get_freeze_count() > 10_000
        assert client.get("/health/live").status_code == 200
    assert gc.get_freeze_count() == 0  # a later app in this process does not keep this one's heap
