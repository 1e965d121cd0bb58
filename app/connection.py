"""The HTTP/1.1 connection protocol the server runs: uvicorn's httptools protocol plus what it lacks for clients
that misbehave before the app sees a request.

uvicorn bounds the idle time between two requests of a keep-alive connection (`timeout_keep_alive`), but not the
time until a request's head is complete: a fresh connection that sends nothing, or a head that trickles in a
byte at a time (slowloris), holds its socket forever, and a head of any size is buffered. Here a request head must
be complete within `header_timeout` seconds of the connection opening or the previous answer (else 408 and close;
a connection that never started a request is just closed) and within `max_header_bytes` (else 431 and close).
What follows the head (the body, the app) is bounded by the app's own limits (app/api/middleware.py).

One sweeper task per server checks every connection a few times per timeout, from the state uvicorn keeps anyway
(the connection's current request cycle): the request path itself pays for no timer, clock or extra callback.
Each answer is written as uvicorn writes it: its head, then its body. Holding the head back to write both at once
saved a `write` system call but cost more Python than the call. Both together: 8.6 → 1.5 µs per request above
uvicorn's own protocol (`python -m bench.protocol`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 65_536  # nginx's large_client_header_buffers allow 4 × 8 kB; uvicorn's h11 allows 16 kB
# After a refusal the client may still be sending: its bytes are read and dropped this long before the close, so
# the kernel does not answer them with a reset that would destroy the refusal in flight (nginx's lingering close).
LINGER_SECONDS = 2.0
# Sweeps per head timeout: a wait is first seen up to one sweep after it began, so a head is refused between
# `header_timeout` and `header_timeout` × (1 + 2 / SWEEPS) after it was due to start (at most two seconds late).
SWEEPS = 8

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
        self._head_bytes = 0  # bytes of the head being received; -1 from its end to the end of its message
        self._tail = b""  # the head's last 3 bytes so far: its end (CRLF CRLF) may straddle two reads
        self._refused = False
        # (the request cycle, when the sweeper first saw the connection waiting for a head after it): the wait's
        # start as the sweeper knows it; a new cycle means a head arrived since.
        self._waiting: tuple[object, float] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting = (None, time.monotonic())  # the first head is due from the opening
        sweeper = _sweepers.get(self.server_state)
        if sweeper is None or sweeper.done():
            period = min(1.0, self.header_timeout / SWEEPS)
            _sweepers[self.server_state] = self.loop.create_task(sweep(self.server_state.connections, period))

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and dropped
        # Counted in the raw bytes, before the parser sees them: a whole head can arrive in one read (its begin and
        # end callbacks then fire inside one parse), and a head over the cap must never reach the app.
        counted = self._head_bytes
        if counted >= 0:
            if not counted and (end := data.find(b"\r\n\r\n")) >= 0:
                counted = end + 4  # the usual read: a whole head (and its body) at once
            else:
                seen = self._tail + data
                end = seen.find(b"\r\n\r\n")
                counted += len(data) if end < 0 else end + 4 - len(self._tail)
                self._tail = seen[-3:]
            self._head_bytes = counted
            if counted > self.max_header_bytes and not self.transport.is_closing():
                message = f"request head exceeds {self.max_header_bytes} bytes"
                self._refuse(refusal(431, "Request Header Fields Too Large", "HeadersTooLarge", message))
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_bytes = -1  # the parser's word: what follows is this message's body
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next bytes begin the next head (a pipelined head in the same read goes uncounted: a bounded read).
        self._head_bytes, self._tail = 0, b""

    def check_head(self, now: float) -> None:
        """Refuse the connection when it has waited `header_timeout` for a request head at `now` (the sweeper's
        call). It waits from its opening or an answer until a head is complete; what follows the head (the body,
        the app) is the app's to bound."""
        cycle = self.cycle
        busy = self._head_bytes < 0 or (cycle is not None and not cycle.response_complete)
        if busy or self._refused or self.transport.is_closing():
            self._waiting = None  # a request is being received or answered
            return
        waiting = self._waiting
        if waiting is None or waiting[0] is not cycle:  # a new wait: it began at most one sweep ago
            self._waiting = (cycle, now)
            return
        if now - waiting[1] < self.header_timeout:
            return
        self._waiting = None
        if self._head_bytes == 0:
            self.transport.close()  # never began a request: nobody to answer
            return
        message = f"the request head did not arrive within {self.header_timeout:g} s"
        self._refuse(refusal(408, "Request Timeout", "RequestTimeout", message))

    def _refuse(self, response: bytes) -> None:
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
