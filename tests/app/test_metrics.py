from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import generate_latest

from app.metrics import ServiceMetrics, forget_dead_processes
from app.predictor import Predictor, feature_matrix
from app.registry import ModelRegistry
from app.repository import ModelRepository
from tests.support import REPO


def loaded(models_dir: Path) -> tuple[ServiceMetrics, Predictor]:
    metrics = ServiceMetrics(CollectorRegistry())
    registry = ModelRegistry(ModelRepository(models_dir), metrics)
    registry.sync()
    return metrics, registry.require().champion


def test_observations_land_on_the_injected_registry(models_dir: Path) -> None:
    metrics, predictor = loaded(models_dir)
    row = [f.median for f in predictor.manifest.features]
    wild = [*row[:4], 10.0**9, *row[5:]]
    matrix = feature_matrix([row, wild, wild])
    predictions = predictor.predict(matrix, explain=False)
    metrics.observe_predictions(predictions, predictor.out_of_range(matrix))
    metrics.observe_request("/predict", "POST", 200, 0.003)
    get = metrics.registry.get_sample_value
    assert sum(get("commitrisk_predictions_total", {"model_version": "1", "risk_band": b}) or 0
               for b in ("low", "medium", "high")) == 3  # fmt: skip
    assert get("commitrisk_prediction_probability_count") == 3
    assert get("commitrisk_input_out_of_range_total", {"feature": "la"}) == 2
    assert get("commitrisk_input_out_of_range_total", {"feature": "ns"}) == 0
    labels = {"route": "/predict", "method": "POST", "status": "200"}
    assert get("commitrisk_http_requests_total", labels) == 1
    assert get("commitrisk_http_request_duration_seconds_bucket", {**labels, "le": "0.005"}) == 1
    assert get("commitrisk_model_reloads_total", {"result": "failure"}) == 0


def test_two_instances_in_one_process_keep_separate_registries(models_dir: Path) -> None:
    first, predictor = loaded(models_dir)
    second, _ = loaded(models_dir)  # on a shared (global) registry this would raise "Duplicated timeseries"
    assert first.registry is not second.registry
    matrix = feature_matrix([[f.median for f in predictor.manifest.features]])
    first.observe_predictions(predictor.predict(matrix, explain=False), {})
    first.observe_request("/predict", "POST", 200, 0.001)
    labels = {"route": "/predict", "method": "POST", "status": "200"}
    assert first.registry.get_sample_value("commitrisk_http_requests_total", labels) == 1
    assert second.registry.get_sample_value("commitrisk_http_requests_total", labels) is None
    assert first.registry.get_sample_value("commitrisk_prediction_probability_count") == 1
    assert second.registry.get_sample_value("commitrisk_prediction_probability_count") == 0
    for metrics in (first, second):  # each loaded version 1 once, on its own registry
        assert metrics.registry.get_sample_value("commitrisk_model_reloads_total", {"result": "success"}) == 1


def test_exposition_passes_promtool(models_dir: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool missing: apt-get install -y prometheus")
    metrics, predictor = loaded(models_dir)
    matrix = feature_matrix([[f.median for f in predictor.manifest.features]])
    metrics.observe_predictions(predictor.predict(matrix, explain=False), {})
    metrics.observe_request("/models/{version}", "GET", 404, 0.001)
    body, media_type = metrics.exposition()
    assert media_type.startswith("text/plain")
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    names = {line.split()[2] for line in body.decode().splitlines() if line.startswith("# TYPE")}
    assert all(name.startswith("commitrisk_") for name in names)


WORKER = """
import os, sys, time
from app.metrics import ServiceMetrics
metrics = ServiceMetrics()
metrics.in_flight.inc()
metrics.model_info.labels("1", "logreg").set(1)
metrics.reloads.labels("success").inc()
print(os.getpid(), flush=True)
if sys.argv[1] == "die":
    os._exit(0)  # like a SIGKILLed worker: its shutdown (mark_process_dead) never runs
time.sleep(60)
"""


def test_the_live_gauges_of_a_dead_process_are_dropped(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = [sys.executable, "-c", WORKER]
    dead = int(subprocess.run([*run, "die"], env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    alive = subprocess.Popen([*run, "live"], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert alive.stdout is not None
        live_pid = int(alive.stdout.readline())
        assert forget_dead_processes(str(tmp_path)) == [dead]
        assert forget_dead_processes(str(tmp_path)) == []  # nothing left to drop
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=str(tmp_path))
        text = generate_latest(merged).decode()
        assert "commitrisk_http_requests_in_flight 1.0" in text  # the live process only, not 2
        info = [line for line in text.splitlines() if line.startswith("commitrisk_model_info{")]
        assert len(info) == 1 and f'pid="{live_pid}"' in info[0]
        assert 'commitrisk_model_reloads_total{result="success"} 2.0' in text  # what the dead one counted stays
    finally:
        alive.kill()
        alive.wait()


LOST_WORKER = """
import os
from prometheus_client import CollectorRegistry
from app.metrics import ServiceMetrics
from app.monitoring.gauges import MonitoringMetrics
registry = CollectorRegistry()
ServiceMetrics(registry).in_flight.inc()
MonitoringMetrics(registry).log_unwritten.inc(7)  # answered, queued, never written: then killed
print(os.getpid(), flush=True)
os._exit(0)
"""


def test_a_dead_workers_unwritten_rows_are_counted_once_however_many_scrape(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = [sys.executable, "-c", LOST_WORKER]
    dead = int(subprocess.run(run, env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    lost: list[float] = []
    assert forget_dead_processes(str(tmp_path), lost.append) == [dead]
    assert forget_dead_processes(str(tmp_path), lost.append) == []  # a second scrape finds nothing to count
    assert lost == [7.0]
    assert not [name for name in os.listdir(tmp_path) if "livesum" in name]  # the claimed file is gone too


def test_forgetting_counts_only_the_dead(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = LOST_WORKER.replace("os._exit(0)", "import time; time.sleep(60)")
    alive = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert alive.stdout is not None
        int(alive.stdout.readline())
        lost: list[float] = []
        assert forget_dead_processes(str(tmp_path), lost.append) == [] and lost == []
    finally:
        alive.kill()
        alive.wait()


KILLED_SCORER = """
import os
from prometheus_client import CollectorRegistry
from app.metrics import ServiceMetrics
from app.predictor import Prediction
metrics = ServiceMetrics(CollectorRegistry())
metrics.observe_request("/predict", "POST", 200, 0.002)
metrics.observe_predictions([Prediction(0.9, True, "high", 0.5, 1, [])] * 3, {})
os._exit(0)  # SIGKILL-like: no flush, no shutdown
"""


def test_a_killed_workers_scored_commits_are_exact_though_its_tallied_series_may_lag(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", KILLED_SCORER], env=env, cwd=REPO, check=True)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=str(tmp_path))
    text = generate_latest(merged).decode()
    # Written at once: the log's accounting (written + dropped = scored) holds over a SIGKILL.
    assert 'commitrisk_predictions_total{model_version="1",risk_band="high"} 3.0' in text
    # Tallied (app/tally.py): lost with the process when it dies before the next flush, by design.
    assert "commitrisk_prediction_probability_count 0.0" in text
    assert 'commitrisk_http_requests_total{method="POST",route="/predict",status="200"} 0.0' in text
