"""Probes of running `commitrisk serve` replicas over HTTP, shared by bench/scale_out.py and the scale-out test.

Benchmarks never import the tests; the tests may import these.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for the next replica)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 180.0) -> Any:
    """Poll `condition` until it returns something truthy (bounded: fails after `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.TransportError:  # not listening yet, or restarting
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ready_version(url: str) -> int | None:
    """The model version one worker behind `url` serves, or None while it is not ready."""
    response = httpx.get(f"{url}/health/ready", timeout=5)
    return response.json()["model_version"] if response.status_code == 200 else None


def converged(urls: list[str], version: int) -> bool:
    """Every worker behind every URL serves `version` (several answers each: workers share the port)."""
    return all(ready_version(url) == version for url in urls for _ in range(8))


def cycles(url: str) -> dict[str, float]:
    """commitrisk_monitoring_cycles_total by result, summed over the replica's workers."""
    body = httpx.get(f"{url}/metrics", timeout=5).text
    found = {"ran": 0.0, "skipped": 0.0}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "commitrisk_monitoring_cycles_total":
                found[sample.labels["result"]] += sample.value
    return found
