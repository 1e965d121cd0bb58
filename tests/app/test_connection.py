"""The connection protocol under a real server (`python -m app`): request heads are bounded in time and size."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from app.connection import refusal
from tests.support import Service, connect, read_response

HEAD_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[Service]:
    work = tmp_path_factory.mktemp("connection")
    service = Service(model_store, work, COMMITRISK_HEADER_TIMEOUT_SECONDS=str(HEAD_TIMEOUT))
    yield service
    service.stop()


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def answer(received: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, orjson.loads(body)


def test_a_refusal_is_a_complete_response_in_the_one_shape() -> None:
    status, headers, body = answer(refusal(431, "Request Header Fields Too Large", "HeadersTooLarge", "too big"))
    assert status == 431 and headers["connection"] == "close" and int(headers["content-length"]) > 0
    assert body == {"error": {"type": "HeadersTooLarge", "message": "too big", "details": []}}


def test_a_connection_that_never_speaks_is_closed(server: Service) -> None:
    with connect(server.url) as sock:
        started = time.monotonic()
        assert until_closed(sock) == b""  # it was held open forever
        assert time.monotonic() - started < 10


def test_a_head_that_trickles_in_is_408(server: Service) -> None:
    with connect(server.url) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")  # …and the blank line never comes
        status, headers, body = answer(until_closed(sock))
    assert status == 408 and headers["connection"] == "close"
    assert body["error"]["type"] == "RequestTimeout"  # type: ignore[index]


def test_a_huge_head_is_431(server: Service) -> None:
    with connect(server.url) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200_000 + b"\r\n\r\n")
        status, _, body = answer(until_closed(sock))
    assert status == 431 and body["error"]["type"] == "HeadersTooLarge"  # type: ignore[index]


def test_keep_alive_requests_and_big_bodies_are_unaffected(server: Service) -> None:
    with connect(server.url) as sock:
        for _ in range(3):  # each request's head is timed from the previous answer, not from the connection
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
            time.sleep(HEAD_TIMEOUT * 0.7)
        body = b"[" + b" " * 300_000 + b"]"  # a body far above the head limit: not a head
        sock.sendall(b"POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        assert read_response(sock)[0] == 422  # read and validated (a list is not a batch)
