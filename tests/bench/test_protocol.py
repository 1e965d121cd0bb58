"""bench/protocol.py: each protocol answers every request in-process, and another checkout's protocol loads."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.connection import GuardedHttpToolsProtocol
from bench.protocol import per_request_us, protocol_of

ROOT = Path(__file__).resolve().parents[2]


def measured(protocol_class: Any, requests: int) -> tuple[float, float]:
    """`per_request_us` on a thread of its own: another test may have left an event loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, per_request_us(protocol_class, requests)).result()


def test_both_protocols_answer_every_request_head_then_body() -> None:
    for protocol_class in (HttpToolsProtocol, GuardedHttpToolsProtocol):
        cost, writes = measured(protocol_class, 200)
        assert cost > 0 and writes == 2  # the head, then the body


def test_a_checkouts_protocol_is_the_one_its_server_runs() -> None:
    loaded = protocol_of(ROOT)
    assert loaded.__name__ == "GuardedHttpToolsProtocol" and loaded is not GuardedHttpToolsProtocol  # its own copy
    cost, writes = measured(loaded, 50)
    assert cost > 0 and writes == 2
