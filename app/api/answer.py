"""JSON answers of the routes: orjson bytes in a Response whose two headers are built directly.

Starlette's `Response.__init__` renders and scans headers generically (~2 µs a request, measured on `/predict`);
an answer here is always bytes with a known type, so its headers are one list literal.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

CONTENT_TYPE = (b"content-type", b"application/json")


class JSONAnswer(Response):
    """`body` (JSON bytes) with `status_code`, Content-Length and Content-Type: application/json."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode("latin-1")), CONTENT_TYPE]


def json_answer(payload: Any, status_code: int = 200) -> JSONAnswer:
    """`payload` (dicts, lists, dataclasses such as Prediction) encoded by orjson as a JSON answer."""
    return JSONAnswer(orjson.dumps(payload), status_code)
