from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.responses import Response

from app.api.deps import DirectRoute
from app.api.errors import install_error_handlers
from app.api.middleware import ServiceApp, ServiceMiddleware
from app.metrics import ServiceMetrics


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


# --- the limits, driven straight through the ASGI interface (a real app; the client side is an asyncio queue) ---


def limited_app(body_timeout: float, max_requests: int) -> tuple[Any, Any]:
    """A FastAPI app with one body-reading route, the one error handlers and the service middleware."""
    app = FastAPI()
    metrics = ServiceMetrics()

    async def echo(request: Request) -> Response:
        return Response(await request.body())

    async def live() -> Response:
        return Response(b"live")

    app.add_api_route("/echo", echo, methods=["POST"])
    app.add_api_route("/health/live", live, methods=["GET"])
    install_error_handlers(app)
    app.add_middleware(
        ServiceMiddleware, metrics=metrics, max_body=1_000_000, body_timeout=body_timeout, max_requests=max_requests
    )
    return app, metrics


async def call(
    app: Any, method: str, path: str, body: asyncio.Queue[bytes | None]
) -> tuple[int, dict[str, str], bytes]:
    """One request; `body` yields chunks (None ends the body). Returns status, headers, body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = await body.get()
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_a_body_that_stops_arriving_is_408_and_closes_the_connection() -> None:
    app, metrics = limited_app(body_timeout=0.2, max_requests=10)

    async def scenario() -> tuple[int, dict[str, str], bytes]:
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        chunks.put_nowait(b'{"partial": ')  # 12 of the 1,000 declared bytes, then nothing
        return await asyncio.wait_for(call(app, "POST", "/echo", chunks), 10)

    status, headers, body = asyncio.run(scenario())
    assert status == 408 and headers["connection"] == "close"
    assert orjson.loads(body)["error"]["type"] == "RequestTimeout"
    assert (
        metrics.registry.get_sample_value(
            "commitrisk_http_requests_total", {"route": "/echo", "method": "POST", "status": "408"}
        )
        == 1
    )


def test_beyond_the_concurrency_limit_a_request_is_refused_at_once() -> None:
    app, metrics = limited_app(body_timeout=30, max_requests=1)

    async def scenario() -> tuple[tuple[int, dict[str, str], bytes], ...]:
        slow: asyncio.Queue[bytes | None] = asyncio.Queue()
        first = asyncio.create_task(call(app, "POST", "/echo", slow))
        await asyncio.sleep(0.05)  # the first request now waits for its body: it holds the only slot
        other: asyncio.Queue[bytes | None] = asyncio.Queue()
        other.put_nowait(None)
        refused = await asyncio.wait_for(call(app, "POST", "/echo", other), 10)
        probe = await asyncio.wait_for(call(app, "GET", "/health/live", asyncio.Queue()), 10)  # exempt
        slow.put_nowait(b"done")
        slow.put_nowait(None)
        served = await asyncio.wait_for(first, 10)
        again = asyncio.Queue[bytes | None]()
        again.put_nowait(None)
        return refused, probe, served, await asyncio.wait_for(call(app, "POST", "/echo", again), 10)

    refused, probe, served, again = asyncio.run(scenario())
    assert refused[0] == 503 and refused[1]["retry-after"] == "1" and refused[1]["connection"] == "close"
    assert orjson.loads(refused[2])["error"]["type"] == "Overloaded"
    assert probe[0] == 200 and served == (200, served[1], b"done") and again[0] == 200
    assert (
        metrics.registry.get_sample_value(
            "commitrisk_http_requests_total", {"route": "/echo", "method": "POST", "status": "503"}
        )
        == 1
    )  # counted under the route it was meant for


def test_an_absurd_content_length_is_refused_not_converted(client: Any) -> None:
    r = client.post(
        "/predict", content=b"{}", headers={"content-type": "application/json", "content-length": "9" * 5000}
    )
    assert r.status_code in (400, 413)


# --- hot routes: the router's match remembered after the first request, answers unchanged ---


def service_middleware(client: Any) -> ServiceMiddleware:
    """The ServiceMiddleware instance of a running TestClient's app."""
    layer = client.app.middleware_stack
    while not isinstance(layer, ServiceMiddleware):
        layer = layer.app
    return layer


BAD_REQUESTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("/predict", b'{"ns": 1}', {"content-type": "application/json"}),  # 14 metrics missing: 422
    ("/predict", b'{"ns": NaN}', {"content-type": "application/json"}),  # NaN named by field: 422
    ("/predict", b"{not json", {"content-type": "application/json"}),  # 400
    ("/predict", b"{}", {"content-type": "text/plain"}),  # 415
    ("/predict?explain=maybe", b"{}", {"content-type": "application/json"}),  # 422 on the query
    ("/predict/batch", b'{"commits": 3}', {"content-type": "application/json"}),  # 422
    ("/v2/models/commitrisk/infer", b'{"inputs": []}', {"content-type": "application/json"}),  # 422
    ("/v2/models/other/infer", b'{"inputs": []}', {"content-type": "application/json"}),  # 404
]


def answers_to(client: Any, commit: dict[str, Any]) -> list[tuple[int, Any]]:
    sent = [client.post(path, content=body, headers=headers) for path, body, headers in BAD_REQUESTS]
    sent.append(client.post("/predict", content=b"x" * 5_000_000, headers={"content-type": "application/json"}))
    good = client.post("/predict?explain=false", json=commit).json()
    return [(r.status_code, r.json()) for r in sent] + [(200, sorted(good))]


def test_hot_routes_answer_alike_before_and_after_their_match_is_kept(client: Any, commit: dict[str, Any]) -> None:
    middleware = service_middleware(client)
    first = answers_to(client, commit)  # through the router: each hot (method, path) is remembered
    assert ("POST", "/predict") in middleware._direct and ("POST", "/v2/models/other/infer") in middleware._direct
    again = answers_to(client, commit)  # straight to the endpoints
    assert [status for status, _ in first] == [422, 422, 400, 415, 422, 422, 422, 404, 413, 200]
    assert again == first  # same statuses, same error bodies, same answer fields
    # Counted under the route template on both paths, the refusals too.
    assert metric_value(client, 'commitrisk_http_requests_total{method="POST",route="/predict",status="422"}') == 6
    assert metric_value(client, 'commitrisk_http_requests_total{method="POST",route="/predict",status="413"}') == 2
    infer = 'commitrisk_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="404"}'
    assert metric_value(client, infer) == 2


def test_only_hot_routes_with_their_method_are_remembered(client: Any) -> None:
    middleware = service_middleware(client)
    client.get("/models/1")
    client.get("/predict")  # 405: the path matches a hot route, the method does not
    client.get("/no/such/route")
    assert middleware._direct == {}
    assert client.get("/predict").status_code == 405


def _failing_after_first(app: ServiceApp) -> list[str]:
    """A hot route on `app` that answers its first request and raises on every later one; returns its call log."""
    calls: list[str] = []

    async def flaky(request: Request) -> Response:
        calls.append(request.url.path)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return Response(b"{}", media_type="application/json")

    app.router.routes.append(DirectRoute("/flaky", flaky, methods=["POST"]))
    return calls


def test_an_unexpected_error_on_the_front_path_is_the_one_500_shape_and_is_counted() -> None:
    app, metrics = ServiceApp(), ServiceMetrics()
    calls = _failing_after_first(app)
    install_error_handlers(app)
    app.add_middleware(ServiceMiddleware, metrics=metrics, max_body=1000)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/flaky").status_code == 200  # through the whole stack: the route is remembered
        assert app.service is not None and app.service.remembers({"method": "POST", "path": "/flaky"})
        for _ in range(2):  # now straight to ServiceMiddleware (front=True)
            r = client.post("/flaky")
            assert r.status_code == 500 and r.headers["connection"] == "close"
            assert r.json()["error"] == {"type": "InternalError", "message": "internal server error", "details": []}
    labels = {"route": "/flaky", "method": "POST", "status": "500"}
    assert metrics.registry.get_sample_value("commitrisk_http_requests_total", labels) == 2
    assert len(calls) == 3


def test_without_an_error_handler_the_front_path_answers_a_plain_500() -> None:
    app = ServiceApp()
    _failing_after_first(app)
    app.add_middleware(ServiceMiddleware, metrics=ServiceMetrics(), max_body=1000)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert [client.post("/flaky").status_code for _ in range(3)] == [200, 500, 500]
        assert client.post("/flaky").text == "Internal Server Error"
