"""Pure ASGI middleware: request metrics by route template, and the request-body byte limit.

The limit is enforced where the body is read: `receive` raises BodyTooLarge on the first read when the
declared Content-Length is over the limit, or once a chunked body grows past it. The route has been
matched by then, so the 413 is counted under its template, and the domain error handler renders it.
(Routes read bodies with `read_json`/`request.body()`; a FastAPI body parameter would turn it into a 400.)
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyTooLarge
from app.metrics import ServiceMetrics

UNMATCHED = "unmatched"


class ServiceMiddleware:
    """Counts every request under its route template (never the raw URL) and caps body size."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        in_flight = self.metrics.in_flight
        in_flight.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, self._limited(scope, receive), send_status)
        finally:
            in_flight.dec()
            template = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe_request(template, scope["method"], status, time.perf_counter() - started)

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body
        declared = next((value for key, value in scope["headers"] if key == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) <= limit:
            return receive  # the server never delivers more than the declared length
        # Declared too large (or unparsable): refuse on the first read. Chunked: count as it arrives.
        seen = 0 if declared is None else limit + 1

        async def limited() -> Message:
            nonlocal seen
            if seen > limit:
                raise BodyTooLarge(f"request body exceeds {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(f"request body exceeds {limit} bytes")
            return message

        return limited
