"""The connection protocol under a real server (`python -m app`): request heads are bounded in time and size."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from app.connection import MAX_HEADER_BYTES, ServingProtocol, refusal
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


# --- each response in one write (ServingProtocol), driven in-process so the writes can be counted ---


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what the protocol writes, one entry per write call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return False  # a refusal then closes at once (no lingering close to wait for)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def writes_for(*reads: bytes) -> tuple[list[bytes], bool]:
    """The writes (and whether the connection was closed) of a ServingProtocol answering `reads`, one read each."""

    async def stream() -> AsyncIterator[bytes]:
        yield b"part one,"
        yield b"part two"

    async def plain(_: Request) -> Response:
        return Response(b"hello", media_type="text/plain")

    async def streamed(_: Request) -> StreamingResponse:
        return StreamingResponse(stream(), media_type="text/plain")

    asgi = Starlette(routes=[Route("/", plain), Route("/stream", streamed)])

    async def run() -> tuple[list[bytes], bool]:
        config = uvicorn.Config(asgi, lifespan="off", proxy_headers=False, log_level="warning")
        config.load()
        protocol = ServingProtocol(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        for data in reads:
            protocol.data_received(data)
            for _ in range(100):
                await asyncio.sleep(0.01)
                if transport.closed or (protocol.cycle is not None and protocol.cycle.response_complete):
                    break
        closed = transport.closed
        protocol.connection_lost(None)
        return transport.writes, closed

    return asyncio.run(run())


def test_a_response_with_a_length_is_written_in_one_piece() -> None:
    writes, closed = writes_for(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\nhello")
    assert not closed


def test_head_and_connection_close_still_behave() -> None:
    writes, _ = writes_for(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(writes) == 1 and b"content-length: 5" in writes[0] and writes[0].endswith(b"\r\n\r\n")  # no body
    writes, closed = writes_for(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert len(writes) == 1 and writes[0].endswith(b"hello") and closed


def test_a_streamed_response_is_written_as_it_comes() -> None:
    writes, _ = writes_for(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in writes[0]
    assert len(writes) >= 3 and b"part one," in writes[1]  # the head went out before the first chunk


# --- the head cap counts raw bytes, whatever the reads look like ---


def test_a_huge_head_in_one_read_is_431_and_never_reaches_the_app() -> None:
    writes, closed = writes_for(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200_000 + b"\r\n\r\n")
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 431 ") and b"HeadersTooLarge" in writes[0]
    assert closed and b"hello" not in writes[0]


def test_a_head_just_under_the_cap_split_at_its_end_is_answered() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
    head += b"a" * (MAX_HEADER_BYTES - len(head) - 4) + b"\r\n\r\n"  # exactly the cap
    writes, closed = writes_for(head[:-2], head[-2:])  # CRLF CRLF straddles the two reads
    assert writes[0].startswith(b"HTTP/1.1 200 OK") and not closed
    writes, closed = writes_for(head[:-4] + b"a\r\n\r\n")  # one byte over
    assert writes[0].startswith(b"HTTP/1.1 431 ") and closed


def test_a_big_body_and_a_second_request_in_the_same_reads_are_not_a_head() -> None:
    body = b"x" * 200_000
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    writes, closed = writes_for(post)
    assert writes[0].startswith(b"HTTP/1.1 405 ") and not closed  # the app answered (no POST route): not a 431
    writes, closed = writes_for(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [w[:15] for w in writes] == [b"HTTP/1.1 200 OK"] * 2 and not closed
