"""Misbehaving HTTP clients against a real uvicorn server: slow bodies, too many at once, amplifying bodies, broken
binary framing, pooled connections after a server error, cross-site bodies, missing client tokens.

Every case ends in a documented answer in the one error shape — never a 500, never a hang (sockets time out).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.contract import FEATURES
from tests.support import Service, build_model_version, connect, read_response, wait_for

BODY_TIMEOUT = 1.0
MAX_REQUESTS = 4
COMMIT = dict.fromkeys(FEATURES, 1.0) | {"commit_id": "abc"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("limits") / "models"
    build_model_version(models, 1)
    build_model_version(models, 2, strength=0.01, point=False)  # on disk, not served
    return models


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[Service]:
    service = Service(
        models, models.parent, COMMITRISK_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        COMMITRISK_MAX_CONCURRENT_REQUESTS=str(MAX_REQUESTS),
    )  # fmt: skip
    yield service
    try:
        assert service.status_500s() == 0  # the target of the whole fault suite
    finally:
        service.stop()


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def slow_request(url: str, sent: bytes = b'{"ns": 1') -> socket.socket:
    """A /predict that declares 1,000 body bytes and sends a few."""
    sock = connect(url)
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    sock.sendall(head + sent)
    return sock


def test_a_body_that_stops_arriving_is_408_and_the_connection_closes(server: Service) -> None:
    sock = slow_request(server.url)
    status, headers, body = read_response(sock)
    assert status == 408 and headers["connection"] == "close"
    assert orjson.loads(body)["error"]["type"] == "RequestTimeout"
    assert closed_by_server(sock)  # it no longer holds a connection (it was held forever)
    sock.close()


def test_beyond_the_concurrency_limit_requests_are_refused_then_served_again(server: Service) -> None:
    slow = [slow_request(server.url) for _ in range(MAX_REQUESTS)]
    try:
        wait_for(lambda: httpx.post(f"{server.url}/predict", json=COMMIT).status_code == 503, "the limit to bite", 10)
        refused = httpx.post(f"{server.url}/predict", json=COMMIT)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "Overloaded" and refused.headers["connection"] == "close"
        assert httpx.get(f"{server.url}/health/live").status_code == 200  # probes are never refused
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        for sock in slow:  # each slow body ends in its 408, which frees its slot
            assert read_response(sock)[0] == 408
    finally:
        for sock in slow:
            sock.close()
    assert httpx.post(f"{server.url}/predict", json=COMMIT).status_code == 200


def test_a_body_of_250000_unknown_keys_is_one_small_answer_while_probes_answer(server: Service) -> None:
    body = orjson.dumps(COMMIT | {f"k{i}": 1 for i in range(250_000)})
    answer: dict[str, Any] = {}

    def post() -> None:
        answer["response"] = httpx.post(
            f"{server.url}/predict", content=body, headers={"content-type": "application/json"}, timeout=30
        )

    flood = threading.Thread(target=post)
    flood.start()
    probes = []
    while flood.is_alive():
        probes.append(httpx.get(f"{server.url}/health/live", timeout=30).status_code)
    flood.join()
    response = answer["response"]
    assert response.status_code == 422 and len(response.content) < 10_000  # was 250,015 details, 21.9 MB
    error = response.json()["error"]
    assert error["message"] == "250,000 invalid field(s) in the request body" and len(error["details"]) == 50
    assert probes and set(probes) == {200}


@pytest.mark.parametrize("value", ["²".encode("latin-1"), b"9" * 5000, b"1e3"])
def test_a_bad_binary_header_is_400_and_the_connection_stays_usable(server: Service, value: bytes) -> None:
    sock = connect(server.url)
    body = b'{"inputs": []}'
    head = b"POST /v2/models/commitrisk/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: " + value
    sock.sendall(head + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    status, _, answer = read_response(sock)
    assert status == 400 and orjson.loads(answer)["error"]["type"] == "MalformedBody"  # it was a 500 and a reset
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[0] == 200
    sock.close()


def test_a_server_error_closes_the_connection_with_a_header(server: Service) -> None:
    with httpx.Client(base_url=server.url) as pooled:
        not_loaded = pooled.get("/v2/models/commitrisk/versions/2/ready")
        assert not_loaded.status_code == 503 and not_loaded.headers["connection"] == "close"
        assert pooled.get("/health/live").status_code == 200  # the pool opened a new connection, no failure
    sock = connect(server.url)
    sock.sendall(b"GET /v2/models/commitrisk/versions/2/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[0] == 503 and closed_by_server(sock)
    sock.close()


def test_cross_site_bodies_and_missing_client_tokens_are_refused(models: Path) -> None:
    service = Service(models, models.parent, COMMITRISK_CLIENT_TOKENS="ci-bot")
    try:
        token = {"Authorization": "Bearer ci-bot"}
        form = {"content-type": "application/x-www-form-urlencoded"}
        assert httpx.post(f"{service.url}/predict", json=COMMIT).status_code == 401
        assert (
            httpx.post(f"{service.url}/predict", json=COMMIT, headers={"Authorization": "Bearer x"}).status_code == 403
        )
        plain = httpx.post(f"{service.url}/predict", content=orjson.dumps(COMMIT), headers=token | form)
        assert plain.status_code == 415 and plain.json()["error"]["type"] == "UnsupportedMediaType"
        assert httpx.post(f"{service.url}/predict", json=COMMIT, headers=token).status_code == 200
        assert service.status_500s() == 0
    finally:
        service.stop()
