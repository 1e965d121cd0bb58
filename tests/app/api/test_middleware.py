from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def metric_value(client: Any, prefix: str) -> float:
    lines = [x for x in client.get("/metrics").text.splitlines() if x.startswith(prefix)]
    return sum(float(x.split()[-1]) for x in lines)


def test_declared_oversize_body_is_413_before_reading(client: Any) -> None:
    limit = client.app.state.services.settings.max_body_bytes
    r = client.post("/predict", content=b"x" * (limit + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "BodyTooLarge"
    assert metric_value(client, 'commitrisk_http_requests_total{method="POST",route="/predict",status="413"}') == 1


def test_streamed_oversize_body_is_413(client: Any) -> None:
    limit = client.app.state.services.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_streamed_small_body_is_replayed(client: Any, commit: dict[str, Any]) -> None:
    import json

    payload = json.dumps(commit).encode()

    def chunks() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_requests_are_counted_by_route_template(client: Any) -> None:
    client.get("/models/1")
    client.get("/models/2")
    client.get("/no/such/route")
    assert metric_value(client, 'commitrisk_http_requests_total{method="GET",route="/models/{version}"') == 2
    assert metric_value(client, 'commitrisk_http_requests_total{method="GET",route="unmatched",status="404"}') == 1
    assert metric_value(client, "commitrisk_http_requests_in_flight") == 1  # the /metrics request itself
