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

from app.connection import HEADER_TIMEOUT_SECONDS, MAX_HEADER_BYTES, GuardedHttpToolsProtocol, refusal
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


# --- the protocol driven in-process, so its writes can be seen one by one ---


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


def answered(*reads: bytes, sweeps: tuple[float, ...] = ()) -> tuple[bytes, bool]:
    """What the protocol wrote (all writes, in order) and whether it closed the connection, answering `reads`, one
    read each; then the sweeper's checks at `sweeps` seconds after the last read (the default head timeout, so the
    real sweeper never fires meanwhile)."""

    async def stream() -> AsyncIterator[bytes]:
        yield b"part one,"
        yield b"part two"

    async def plain(_: Request) -> Response:
        return Response(b"hello", media_type="text/plain")

    async def streamed(_: Request) -> StreamingResponse:
        return StreamingResponse(stream(), media_type="text/plain")

    asgi = Starlette(routes=[Route("/", plain), Route("/stream", streamed)])

    async def run() -> tuple[bytes, bool]:
        config = uvicorn.Config(asgi, lifespan="off", proxy_headers=False, log_level="warning")
        config.load()
        protocol = GuardedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        for data in reads:
            protocol.data_received(data)
            for _ in range(100):
                await asyncio.sleep(0.01)
                if transport.closed or (protocol.cycle is not None and protocol.cycle.response_complete):
                    break
        now = time.monotonic()
        for at in sweeps:
            protocol.check_head(now + at)
        closed = transport.closed
        protocol.connection_lost(None)
        return b"".join(transport.writes), closed

    return asyncio.run(run())


def test_a_response_is_its_head_then_its_body() -> None:
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(b"\r\n\r\nhello") and not closed


def test_head_and_connection_close_still_behave() -> None:
    sent, _ = answered(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"content-length: 5" in sent and sent.endswith(b"\r\n\r\n")  # no body
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert sent.endswith(b"hello") and closed


def test_a_streamed_response_is_written_as_it_comes() -> None:
    sent, _ = answered(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in sent
    assert b"part one," in sent and b"part two" in sent


# --- the sweeper: a wait for a head is timed from when a sweep first sees it, with no per-request clock ---


def test_a_silent_connection_is_closed_once_a_sweep_has_seen_it_wait_long_enough() -> None:
    assert answered(sweeps=(HEADER_TIMEOUT_SECONDS * 0.9,)) == (b"", False)  # timed from the opening: not yet
    assert answered(sweeps=(HEADER_TIMEOUT_SECONDS * 1.1,)) == (b"", True)  # closed, nothing written: it never asked


def test_an_overdue_head_is_408_and_an_answered_request_starts_a_new_wait() -> None:
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\n", sweeps=(HEADER_TIMEOUT_SECONDS * 1.1,))
    assert sent.startswith(b"HTTP/1.1 408 ") and b"RequestTimeout" in sent and closed
    # The connection answered a request: its old wait is over, the next sweep starts timing a new one.
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", sweeps=(HEADER_TIMEOUT_SECONDS * 1.1,))
    assert sent.endswith(b"hello") and not closed
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", sweeps=(0.0, HEADER_TIMEOUT_SECONDS * 1.1))
    assert closed and b"408" not in sent  # idle since the answer: closed without a word


def test_a_request_being_answered_is_never_timed() -> None:
    sent, closed = answered(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", sweeps=(0.0, HEADER_TIMEOUT_SECONDS * 5))
    assert b"part two" in sent and closed  # answered in full, then idle: closed after the timeout


# --- the head cap counts raw bytes, whatever the reads look like ---


def test_a_huge_head_in_one_read_is_431_and_never_reaches_the_app() -> None:
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200_000 + b"\r\n\r\n")
    assert sent.startswith(b"HTTP/1.1 431 ") and b"HeadersTooLarge" in sent
    assert closed and b"hello" not in sent


def test_a_head_just_under_the_cap_split_at_its_end_is_answered() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
    head += b"a" * (MAX_HEADER_BYTES - len(head) - 4) + b"\r\n\r\n"  # exactly the cap
    sent, closed = answered(head[:-2], head[-2:])  # CRLF CRLF straddles the two reads
    assert sent.startswith(b"HTTP/1.1 200 OK") and not closed
    sent, closed = answered(head[:-4] + b"a\r\n\r\n")  # one byte over
    assert sent.startswith(b"HTTP/1.1 431 ") and closed


def test_a_big_body_and_a_second_request_in_the_same_reads_are_not_a_head() -> None:
    body = b"x" * 200_000
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    sent, closed = answered(post)
    assert sent.startswith(b"HTTP/1.1 405 ") and not closed  # the app answered (no POST route): not a 431
    sent, closed = answered(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sent.count(b"HTTP/1.1 200 OK") == 2 and not closed
