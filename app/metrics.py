"""Prometheus metrics of the service on an injected registry; multiprocess-aware for `--workers N`.

prometheus-client picks its value storage when it is first imported: with PROMETHEUS_MULTIPROC_DIR set,
every worker writes its samples to files there and `exposition` merges them (MultiProcessCollector).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from app.contract import FEATURES
from app.tally import FlushOnCollect, Tally, adder

if TYPE_CHECKING:
    from app.predictor import Prediction, Predictor

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
RELOAD_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# prometheus-client's file of one live-mode gauge of one process, e.g. `gauge_livesum_4242.db`.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_([0-9]+)\.db")
# The prediction log's per-process gauge of rows answered but not yet written (app/monitoring/gauges.py).
UNWRITTEN = "commitrisk_prediction_log_unwritten_rows"


class ServiceMetrics:
    """Every metric the service exports, named per ARCHITECTURE.md (prefix, base units, `_total`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Request counts and latency, probabilities and out-of-range counts go through the tally (app/tally.py);
        # collecting `r` flushes it first.
        self.tally = Tally()
        FlushOnCollect(self.tally, r)
        self.requests = Counter(
            "commitrisk_http_requests_total", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "commitrisk_http_request_duration_seconds", "HTTP request latency by route, method and status",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "commitrisk_http_requests_in_flight", "HTTP requests being served right now",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.add_in_flight = adder(self.in_flight)  # +1 / -1 around every request
        self.predictions = Counter(
            "commitrisk_predictions_total", "Scored commits by model version and risk band",
            ["model_version", "risk_band"], registry=r,
        )  # fmt: skip
        self.probability = Histogram(
            "commitrisk_prediction_probability", "Predicted probability that a commit is bug-inducing",
            buckets=PROBABILITY_BUCKETS, registry=r,
        )  # fmt: skip
        self.out_of_range = Counter(
            "commitrisk_input_out_of_range_total", "Input values outside the model's training [min, max]",
            ["feature"], registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "commitrisk_model_info", "1 for the model version a process serves (0 once replaced)",
            ["version", "model_type"], registry=r, multiprocess_mode="liveall",
        )  # fmt: skip
        self.reloads = Counter(
            "commitrisk_model_reloads_total",
            "Model loads by result (success/failure)",
            ["result"],
            registry=r,
        )
        self.reload_duration = Histogram(
            "commitrisk_model_reload_duration_seconds", "Time to build, self-test and swap a model",
            buckets=RELOAD_BUCKETS, registry=r,
        )  # fmt: skip
        # Label lookups take a lock each; the hot path reuses children instead.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._prediction_adders: dict[tuple[int, str], Callable[[float], None]] = {}
        self._range_children = [self.out_of_range.labels(f) for f in FEATURES]
        for result in ("success", "failure"):
            self.reloads.labels(result)  # export zeros so alerts on increase() see the first failure

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request and its latency."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (self.requests.labels(route, method, code), self.latency.labels(route, method, code))
            self._request_children[key] = children
        tally = self.tally
        tally.add(children[0])
        tally.observe(children[1], seconds)

    def observe_predictions(self, predictions: Sequence[Prediction], out_of_range: dict[int, int]) -> None:
        """Count scored commits by version/band, their probabilities and out-of-range inputs."""
        tally = self.tally
        # The scored-commit counter is written at once: a SIGKILLed worker's count must stay exact, as the log's
        # accounting (written + dropped = scored, docs/monitoring.md) holds over dead workers too.
        if len(predictions) == 1:  # `/predict`: one child, one observation (half the Python of the general loop)
            p = predictions[0]
            self._prediction_adder(p.model_version, p.risk_band)(1.0)
            tally.observe(self.probability, p.probability)
        else:
            self._observe_many(predictions)
        for i, n in out_of_range.items():
            tally.add(self._range_children[i], n)

    def _observe_many(self, predictions: Sequence[Prediction]) -> None:
        bands: dict[tuple[int, str], int] = {}
        key: tuple[int, str]
        observe, probability = self.tally.observe, self.probability
        for p in predictions:
            key = (p.model_version, p.risk_band)
            bands[key] = bands.get(key, 0) + 1
            observe(probability, p.probability)
        for (version, band), n in bands.items():
            self._prediction_adder(version, band)(n)

    def _prediction_adder(self, version: int, band: str) -> Callable[[float], None]:
        key = (version, band)
        add = self._prediction_adders.get(key)
        if add is None:
            add = self._prediction_adders[key] = adder(self.predictions.labels(str(version), band))
        return add

    def observe_reload(self, result: str, seconds: float) -> None:
        """Count one reload attempt (`success` or `failure`) and its duration."""
        self.reloads.labels(result).inc()
        self.reload_duration.observe(seconds)

    def model_swapped(self, previous: Predictor | None, current: Predictor) -> None:
        """Move the info gauge from the replaced model to the new one."""
        if previous is not None:
            self.model_info.labels(str(previous.version), previous.manifest.model_type).set(0)
        self.model_info.labels(str(current.version), current.manifest.model_type).set(1)

    def exposition(self, on_lost: Callable[[float], None] | None = None) -> tuple[bytes, str]:
        """The text exposition (merged over worker processes in multiprocess mode) and its media type.

        `on_lost(rows)`: called first with the unwritten prediction rows of each worker found dead.
        """
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            self.tally.flush()  # the merged registry reads this process's files, not `self.registry`
            forget_dead_processes(directory, on_lost)
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def forget_dead_processes(directory: str, on_lost: Callable[[float], None] | None = None) -> list[int]:
    """Drop the live gauges (in flight, model info) of processes that no longer exist; return their pids.

    A worker that exits cleanly does this in its shutdown (`mark_process_dead`); one that is SIGKILLed (OOM, a
    hung worker killed by uvicorn's supervisor) never runs it, and its last values would be summed forever.
    Its counters and histograms stay: what it counted happened. The prediction rows it had answered but not
    written died with it: `on_lost(rows)` counts them, exactly once however many workers scrape at the same time.
    """
    from prometheus_client import multiprocess

    dead = set()
    for name in os.listdir(directory):
        found = _LIVE_GAUGE_FILE.fullmatch(name)
        if found is not None and not _alive(int(found[1])):
            dead.add(int(found[1]))
    for pid in sorted(dead):
        lost = _claim_unwritten(directory, pid)
        if lost and on_lost is not None:
            on_lost(lost)
        with contextlib.suppress(FileNotFoundError):  # another worker's scrape may remove them first
            multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def _claim_unwritten(directory: str, pid: int) -> float:
    """The unwritten rows in dead `pid`'s livesum file, read by whoever renames the file first (0 for the others)."""
    from prometheus_client.mmap_dict import MmapedDict

    source = os.path.join(directory, f"gauge_livesum_{pid}.db")
    claimed = f"{source}.lost-{os.getpid()}"  # not `*.db`: never merged by a concurrent scrape
    try:
        os.rename(source, claimed)  # atomic: one scraper wins
    except FileNotFoundError:
        return 0.0
    try:
        return sum(
            value
            for key, value, _, _ in MmapedDict.read_all_values_from_file(claimed)
            if json.loads(key)[0] == UNWRITTEN
        )
    finally:
        os.remove(claimed)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: the existence check, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
