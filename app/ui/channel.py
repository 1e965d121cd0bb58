"""The worker's HTTP/1.1 channel to its page process: GETs over kept-alive Unix-socket connections, spoken with h11
on asyncio streams.

Why not httpx: a forwarded page is the one thing a worker does for the pages, and it shares the worker's core with
`/predict`. httpx's request and response models, URL parsing and transport layers cost several times the protocol
work itself; h11 (uvicorn's own HTTP/1.1 parser) is the protocol work only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import h11

READ_BYTES = 256 * 1024  # one read's most: a page is 5–200 kB, sent in one or a few writes
IDLE_CONNECTIONS = 4  # connections kept for reuse (more only while pages are fetched concurrently)


class ChannelError(Exception):
    """The page process could not be reached, or it closed or garbled the connection before a whole answer."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One whole HTTP answer: status, headers (lower-case names, as sent), body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Connection:
    """One kept-alive connection: an h11 client state machine over an asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)

    async def exchange(self, request: h11.Request) -> Answer:
        """Send one request and read its whole answer; the connection is ready for the next one if the server keeps
        it."""
        protocol = self.protocol
        self.writer.write(protocol.send(request) + (protocol.send(h11.EndOfMessage()) or b""))
        await self.writer.drain()
        status, answer_headers, body = 0, [], bytearray()
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await self.reader.read(READ_BYTES))  # b"" (end of stream) is an event too
            elif isinstance(event, h11.Response):
                status, answer_headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ChannelError("the page process closed the connection before a whole answer")
            # InformationalResponse (1xx): nothing to keep
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
        return Answer(status, answer_headers, bytes(body))

    @property
    def reusable(self) -> bool:
        """True when the last exchange ended cleanly and the server keeps the connection open."""
        return self.protocol.our_state is h11.IDLE and self.protocol.their_state is h11.IDLE

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Channel:
    """GETs to the HTTP server on one Unix socket, over at most a few kept-alive connections."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._idle: list[_Connection] = []

    async def get(self, target: str, headers: dict[str, str], timeout: float | None = None) -> Answer:
        """The whole answer to `GET target`; raises ChannelError (transport or protocol) or TimeoutError."""
        fields = [(b"host", b"pages")] + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        try:  # validated here, before a connection is taken: a request HTTP cannot carry costs no kept connection
            request = h11.Request(method=b"GET", target=target.encode("latin-1"), headers=fields)
        except h11.LocalProtocolError as exc:
            raise ChannelError(f"this request cannot be forwarded: {exc}") from None
        async with asyncio.timeout(self.timeout if timeout is None else timeout):
            while self._idle:
                connection = self._idle.pop()
                try:
                    return await self._exchange(connection, request)
                except ChannelError:
                    continue  # closed by the server while idle: a GET is safe to send again
            return await self._exchange(await self._open(), request)

    async def _open(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=READ_BYTES)
        except OSError as exc:
            raise ChannelError(f"cannot connect to {self.path}: {exc.strerror or exc}") from None
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, request: h11.Request) -> Answer:
        try:
            answer = await connection.exchange(request)
        except h11.ProtocolError as exc:
            connection.close()
            raise ChannelError(f"the page process answered malformed HTTP: {exc}") from None
        except OSError as exc:  # reset or broken pipe: the process died or closed the connection
            connection.close()
            raise ChannelError(f"the page process connection failed: {exc.strerror or exc}") from None
        except BaseException:  # a timeout or cancellation mid-answer leaves the connection unusable
            connection.close()
            raise
        if connection.reusable and len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    async def close(self) -> None:
        """Close every kept connection."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
            with contextlib.suppress(Exception):
                await connection.writer.wait_closed()
