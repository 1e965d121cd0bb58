"""The connection protocol's own cost per request: uvicorn's httptools protocol vs the one `python -m app` runs.

Each protocol answers keep-alive `GET` requests of a constant Starlette route in-process — `data_received` with
the whole request, the ASGI task run to its answer, written to a transport that only keeps the bytes — so what
differs between rows is the protocol's Python, not the network or the app. `--tree DIR` adds the protocol of
another checkout (e.g. a `git worktree` of an older commit: its `ServingProtocol` when it has one, else its
`GuardedHttpToolsProtocol`) to the same run. Rounds alternate the protocols; the table has medians.

    .venv/bin/python -m bench.protocol [--rounds 7] [--requests 20000] [--tree /work/old] [--no-append]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.connection import GuardedHttpToolsProtocol
from bench.machine import publish, table

REQUEST = b"GET /health/live HTTP/1.1\r\nHost: bench\r\n\r\n"


ADDRESSES = {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}


class KeepingTransport(asyncio.Transport):
    """A transport that keeps what is written (and counts the writes); never closes on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.written, self.writes, self.closed = bytearray(), 0, False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ADDRESSES.get(name, default)

    def pause_reading(self) -> None:
        """Reading is never paused here: every request is fed by the caller."""

    resume_reading = pause_reading


def app() -> Starlette:
    """The constant route every protocol serves."""

    async def live(_: Request) -> Response:
        return Response(b'{"live":true}', media_type="application/json")

    return Starlette(routes=[Route("/health/live", live)])


async def per_request_us(protocol_class: Any, requests: int) -> tuple[float, float]:
    """(CPU µs per request, writes per answer) of `protocol_class` answering `requests` keep-alive requests;
    AssertionError unless every answer is a complete 200."""
    config = uvicorn.Config(app(), lifespan="off", proxy_headers=False, log_level="warning")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = KeepingTransport()
    protocol.connection_made(transport)
    started = time.thread_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        while not protocol.cycle.response_complete:
            await asyncio.sleep(0)
    spent = time.thread_time() - started
    answers = bytes(transport.written).count(b"HTTP/1.1 200 OK\r\n")
    assert answers == requests and not transport.closed, f"{answers} of {requests} answered"
    protocol.connection_lost(None)
    return spent / requests * 1e6, transport.writes / requests


def protocol_of(tree: Path) -> Any:
    """The protocol `python -m app` ran in the checkout `tree`."""
    spec = importlib.util.spec_from_file_location(f"connection_{abs(hash(tree))}", tree / "app" / "connection.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench/protocol.py: no app/connection.py in {tree}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "ServingProtocol", None) or module.GuardedHttpToolsProtocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per protocol per round")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout's protocol too")
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    protocols = {"uvicorn's httptools protocol (no guards)": HttpToolsProtocol,
                 "commitrisk (`app/connection.py`)": GuardedHttpToolsProtocol}  # fmt: skip
    for tree in args.tree:
        protocols[f"commitrisk at `{tree}`"] = protocol_of(tree)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in protocols}
    for _ in range(args.rounds):
        for name, protocol_class in protocols.items():
            found[name].append(asyncio.run(per_request_us(protocol_class, args.requests)))
    base = statistics.median(t[0] for t in found[next(iter(protocols))])
    rows = []
    for name, timings in found.items():
        cost = statistics.median(t[0] for t in timings)
        rows.append([name, f"{cost:.1f}", f"{cost - base:+.1f}", f"{timings[0][1]:.0f}"])
    body = table(["protocol", "CPU µs per request", "vs uvicorn's", "writes per answer"], rows)
    body += (f"\n\nIn-process: {args.requests:,} keep-alive `GET` requests of a constant route per protocol and round, "
             f"median of {args.rounds} alternating rounds (asyncio's own event loop; a write here costs no system "
             "call, so a protocol that saves one is not credited for it).")  # fmt: skip
    publish("Connection protocol per request (`bench/protocol.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
