"""The HTTP/1.1 connection protocol the server runs: uvicorn's httptools protocol plus what it lacks for clients
that misbehave before the app sees a request.

uvicorn bounds the idle time between two requests of a keep-alive connection (`timeout_keep_alive`), but not the
time until a request's head is complete: a fresh connection that sends nothing, or a head that trickles in a
byte at a time (slowloris), holds its socket forever, and a head of any size is buffered. Here a request head must
be complete within `header_timeout` seconds of the connection opening or the previous answer (else 408 and close;
a connection that never started a request is just closed) and within `max_header_bytes` (else 431 and close).
What follows the head (the body, the app) is bounded by the app's own limits (app/api/middleware.py).

One sweeper task per server checks every connection's head deadline a few times per timeout: a timer per
request would cost ~2 µs on every request.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any, cast

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 65_536  # nginx's large_client_header_buffers allow 4 × 8 kB; uvicorn's h11 allows 16 kB
# After a refusal the client may still be sending: its bytes are read and dropped this long before the close, so
# the kernel does not answer them with a reset that would destroy the refusal in flight (nginx's lingering close).
LINGER_SECONDS = 2.0

_sweepers: weakref.WeakKeyDictionary[Any, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def refusal(status: int, reason: str, kind: str, message: str) -> bytes:
    """A complete HTTP/1.1 response in the one error shape that closes the connection."""
    body = orjson.dumps({"error": {"type": kind, "message": message, "details": []}})
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a deadline and a size cap for each request head (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
        max_header_bytes: int = MAX_HEADER_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.head_deadline: float | None = None  # when the head being waited for must be complete
        self._head_bytes = 0  # bytes of the head being received; -1 from its end to the end of its message
        self._tail = b""  # the head's last 3 bytes so far: its end (CRLF CRLF) may straddle two reads
        self._started = False  # a request began: its head timing out earns a 408, silence just a close
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_deadline = time.monotonic() + self.header_timeout
        sweeper = _sweepers.get(self.server_state)
        if sweeper is None or sweeper.done():
            period = min(1.0, self.header_timeout / 4)
            _sweepers[self.server_state] = self.loop.create_task(sweep(self.server_state.connections, period))

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and dropped
        # Counted in the raw bytes, before the parser sees them: a whole head can arrive in one read (its begin and
        # end callbacks then fire inside one parse), and a head over the cap must never reach the app.
        if self._head_bytes >= 0:
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
            self._tail = seen[-3:]
            if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
                message = f"request head exceeds {self.max_header_bytes} bytes"
                self._refuse(refusal(431, "Request Header Fields Too Large", "HeadersTooLarge", message))
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = True
        if self.head_deadline is None:
            self.head_deadline = time.monotonic() + self.header_timeout

    def on_headers_complete(self) -> None:
        self.head_deadline = None
        self._head_bytes = -1
        self._started = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next bytes begin the next head (a pipelined head in the same read goes uncounted: a bounded read).
        self._head_bytes, self._tail = 0, b""

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is None or self.cycle.response_complete:
            # Nothing in progress: what follows (the next head, or the rest of a body refused early) is bounded too.
            self.head_deadline = time.monotonic() + self.header_timeout

    def check_head(self, now: float) -> None:
        """Refuse the connection when its head is overdue at `now` (the sweeper's call)."""
        if self.head_deadline is None or self.head_deadline > now or self.transport.is_closing():
            return
        self.head_deadline = None
        if not self._started:
            self.transport.close()  # never began a request: nobody to answer
            return
        message = f"the request head did not arrive within {self.header_timeout:g} s"
        self._refuse(refusal(408, "Request Timeout", "RequestTimeout", message))

    def _refuse(self, response: bytes) -> None:
        self.head_deadline = None
        self._refused = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete; the client's close (or the linger) ends it
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


async def sweep(connections: set[Any], period: float) -> None:
    """Every `period` seconds, refuse the connections of one server whose request head is overdue."""
    while True:
        await asyncio.sleep(period)
        now = time.monotonic()
        for connection in list(connections):
            if isinstance(connection, GuardedHttpToolsProtocol):
                connection.check_head(now)


class _Held:
    """Stands in for the transport while a response head waits for its body: writes append, a close is noted."""

    def __init__(self, transport: Any, data: bytes = b"") -> None:
        self.transport = transport
        self.data = data
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed or bool(self.transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingCycle(RequestResponseCycle):
    """uvicorn's request cycle, writing a response's head together with its first body bytes.

    uvicorn writes the head at `http.response.start` and the body at `http.response.body`: two `send` calls and,
    with TCP_NODELAY, two segments the client wakes up for. For a response that declares its length (every
    non-streamed answer) the head is held until the first body message and both go out in one write; a streamed
    response (no Content-Length) is written as before.
    """

    held_head: bytes | None = None

    async def send(self, message: Any) -> None:
        if self.held_head is None:
            if message["type"] == "http.response.start" and any(
                key.lower() == b"content-length" for key, _ in message.get("headers", ())
            ):
                transport = self.transport
                held = _Held(transport)
                self.transport = cast(asyncio.Transport, held)
                try:
                    await super().send(message)
                finally:
                    self.transport = transport
                self.held_head = held.data
                return
            await super().send(message)
            return
        transport = self.transport
        held = _Held(transport, self.held_head)
        self.transport = cast(asyncio.Transport, held)
        self.held_head = None
        try:
            await super().send(message)
        finally:
            self.transport = transport
            if not self.disconnected and not transport.is_closing():
                transport.write(held.data)
            if held.closed:
                transport.close()


class ServingProtocol(GuardedHttpToolsProtocol):
    """The protocol `python -m app` runs: the guarded httptools protocol, each response written in one piece."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = CoalescingCycle  # before its task first runs: the ASGI `send` is ours
