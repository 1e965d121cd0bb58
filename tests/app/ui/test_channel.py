"""The channel to the page process against a real HTTP server on a Unix socket (an asyncio server speaking raw
HTTP/1.1, so each test can choose how it frames, closes or garbles an answer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from app.ui.channel import Channel, ChannelError

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # (request head, writer) → keep the connection


def framed(body: bytes, *headers: bytes) -> bytes:
    lines = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%b\r\n%b" % (len(body), lines, body)


@asynccontextmanager
async def server(path: Path, handler: Handler) -> AsyncIterator[list[int]]:
    """A raw HTTP/1.1 server on `path`; yields the list of connections it accepted (their ordinal numbers)."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted))
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                if not await handler(head, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_unix_server(serve, str(path))
    try:
        yield accepted
    finally:
        listening.close()


def target_of(head: bytes) -> bytes:
    return head.split(b" ", 2)[1]


async def answer_by_target(head: bytes, writer: asyncio.StreamWriter) -> bool:
    target = target_of(head)
    if target == b"/chunked":
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    elif target == b"/big":
        writer.write(framed(bytes(range(256)) * 8192))  # 2 MiB: many reads
    elif target == b"/echo":
        writer.write(framed(head, b"x-kind: echo", b"set-cookie: a=1", b"set-cookie: b=2"))
    else:
        writer.write(framed(b"page " + target))
    return True


def run(coroutine: Coroutine[None, None, None]) -> None:
    # In a thread of its own: a playwright test in the same pytest worker may leave this thread's event loop running.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def test_whole_answers_of_every_framing_over_one_kept_connection(tmp_path: Path) -> None:
    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, answer_by_target) as accepted:
            channel = Channel(str(socket), 5.0)
            plain = await channel.get("/ui/a?b=c", {})
            assert (plain.status, plain.body) == (200, b"page /ui/a?b=c")
            assert (await channel.get("/chunked", {})).body == b"hello world"
            assert (await channel.get("/big", {})).body == bytes(range(256)) * 8192
            echo = await channel.get("/echo", {"accept": "text/html", "cookie": "k=v"})
            assert b"GET /echo HTTP/1.1\r\n" in echo.body and b"accept: text/html\r\n" in echo.body
            assert b"cookie: k=v\r\n" in echo.body
            assert [v for k, v in echo.headers if k == b"set-cookie"] == [b"a=1", b"b=2"]  # repeated headers kept
            assert (b"x-kind", b"echo") in echo.headers
            assert accepted == [0]  # five answers, one connection
            await channel.close()

    run(check())


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(tmp_path: Path) -> None:
    async def close_after_each(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(framed(b"ok"))  # no `connection: close`: the server just drops it afterwards, as on idle timeout
        return False

    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, close_after_each) as accepted:
            channel = Channel(str(socket), 5.0)
            for _ in range(3):
                assert (await channel.get("/ui/", {})).body == b"ok"
                await asyncio.sleep(0.05)  # the close reaches us while the connection is idle
            assert len(accepted) == 3
            await channel.close()

    run(check())


def test_connection_close_is_honoured(tmp_path: Path) -> None:
    async def close_announced(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(framed(b"bye", b"connection: close"))
        return False

    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, close_announced) as accepted:
            channel = Channel(str(socket), 5.0)
            assert [(await channel.get("/", {})).body for _ in range(2)] == [b"bye", b"bye"]
            assert len(accepted) == 2

    run(check())


def test_nothing_listening_is_a_channel_error(tmp_path: Path) -> None:
    async def check() -> None:
        with pytest.raises(ChannelError, match="cannot connect"):
            await Channel(str(tmp_path / "absent"), 5.0).get("/", {})

    run(check())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b",  # cut mid-body
        b"HTTP/1.1 200 OK\r\ncontent-le",  # cut mid-head
        b"",  # closed without a byte
        b"this is not HTTP at all\r\n\r\n",  # garbage
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",  # a broken chunk size
    ],
    ids=["cut-body", "cut-head", "nothing", "garbage", "bad-chunk"],
)
def test_a_broken_answer_is_a_channel_error_and_the_next_get_starts_afresh(tmp_path: Path, answer: bytes) -> None:
    broken = [True]

    async def once_broken(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if broken[0]:
            broken[0] = False
            writer.write(answer)
            return False
        writer.write(framed(b"fine"))
        return True

    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, once_broken):
            channel = Channel(str(socket), 5.0)
            with pytest.raises(ChannelError):
                await channel.get("/", {})
            assert (await channel.get("/", {})).body == b"fine"

    run(check())


def test_a_slow_answer_times_out_and_its_connection_is_not_reused(tmp_path: Path) -> None:
    async def slow_first(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if target_of(head) == b"/slow":
            await asyncio.sleep(1.0)
        writer.write(framed(target_of(head)))
        return True

    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, slow_first) as accepted:
            channel = Channel(str(socket), 5.0)
            with pytest.raises(TimeoutError):
                await channel.get("/slow", {}, timeout=0.2)
            # A reused connection would deliver /slow's late answer as this one's.
            assert (await channel.get("/fast", {})).body == b"/fast"
            assert len(accepted) == 2
            await channel.close()

    run(check())


def test_concurrent_gets_each_get_their_own_answer(tmp_path: Path) -> None:
    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, answer_by_target):
            channel = Channel(str(socket), 5.0)
            answers = await asyncio.gather(*(channel.get(f"/p{i}", {}) for i in range(20)))
            assert [a.body for a in answers] == [b"page /p%d" % i for i in range(20)]
            await channel.close()

    run(check())


def test_a_request_http_cannot_carry_is_refused_before_it_costs_a_kept_connection(tmp_path: Path) -> None:
    async def check() -> None:
        socket = tmp_path / "s"
        async with server(socket, answer_by_target) as accepted:
            channel = Channel(str(socket), 5.0)
            assert (await channel.get("/ui/", {})).body == b"page /ui/"
            with pytest.raises(ChannelError, match="cannot be forwarded"):
                await channel.get("/ui/", {"cookie": "a\x00b"})
            with pytest.raises(ChannelError, match="cannot be forwarded"):
                await channel.get("/ui/ x", {})
            assert (await channel.get("/ui/", {})).body == b"page /ui/"
            assert accepted == [0]  # the kept connection served both good requests
            await channel.close()

    run(check())
