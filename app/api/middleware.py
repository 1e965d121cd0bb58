"""Pure ASGI middleware: request metrics by route template, and the limits a reverse proxy would otherwise give.

- Body size: `receive` raises BodyTooLarge on the first read when the declared Content-Length is over the
  limit, or once a chunked body grows past it.
- Body time: `receive` raises RequestTimeout when the body has not fully arrived `body_timeout` seconds after
  the request started (a client declaring 1,000 bytes and sending 8 no longer holds its connection forever).
  One watchdog task per process cancels overdue reads: a timer per read (asyncio.timeout) cost 3.5 µs a request.
- Concurrency: beyond `max_requests` requests in flight in this process, a request is answered 503 Overloaded
  at once, before its body is read; health probes and /metrics are exempt, so an orchestrator still sees a live
  process.

- Hot routes (`DirectRoute`: /predict, /predict/batch, v2 infer) skip the router after their first request: the
  (method, path) → route match and the app's exception handlers are remembered; the endpoint is then called with
  the scope the router would have built, its errors rendered by the same handlers. Metrics and limits are
  unchanged; the route patterns tried in order, two pass-through middleware layers and FastAPI's per-request exit
  stacks (unused by these routes) are not paid again (with the other issue-18 steps: 288 → 186 Python calls per
  `/predict`, measured in-process).

The route has been matched by the time the body is read, so a 408/413 is counted under its template, and the
domain error handler renders it. (Routes read bodies with `read_json`/`request.body()`; a FastAPI body
parameter would turn the errors into a 400.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import DirectRoute
from app.api.errors import render
from app.errors import BodyTooLarge, Overloaded, RequestTimeout
from app.metrics import ServiceMetrics

UNMATCHED = "unmatched"
PROBES = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready", "/metrics"})
MAX_DIRECT = 64  # remembered hot (method, path) pairs at most (v2 names a model in its path)
HANDLERS = "starlette.exception_handlers"  # where ExceptionMiddleware leaves the app's handlers in the scope
MAX_LENGTH_DIGITS = 18  # a Content-Length longer than this is refused, never converted (int() of 5,000 digits raises)


async def call_direct(scope: Scope, receive: Receive, send: Send) -> None:
    """A remembered hot route's endpoint, its errors rendered by the app's handlers as ExceptionMiddleware would
    (an error it has no handler for goes on to the server-error handler, as before)."""
    request = Request(scope, receive, send)
    try:
        response = await scope["endpoint"](request)
    except Exception as exc:
        handler = handler_for(exc, scope[HANDLERS])
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(scope, receive, send)


async def answer_server_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer `exc` as ServerErrorMiddleware would: by the app's handler for Exception, else a plain 500."""
    handler = scope["app"].exception_handlers.get(Exception)
    if handler is None:
        response: Any = PlainTextResponse("Internal Server Error", status_code=500)
    else:
        response = await handler(Request(scope), exc)
    await response(scope, receive, send)


def handler_for(exc: Exception, handlers: tuple[dict[Any, Any], dict[int, Any]]) -> Any:
    """The handler ExceptionMiddleware would pick: by status for an HTTPException, else the nearest class."""
    by_class, by_status = handlers
    if isinstance(exc, HTTPException) and exc.status_code in by_status:
        return by_status[exc.status_code]
    for cls in type(exc).__mro__:
        if cls in by_class:
            return by_class[cls]
    return None


class ServiceMiddleware:
    """Counts every request under its route template (never the raw URL); bounds body size, body time and the
    number of requests served at once."""

    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, max_body: int, body_timeout: float = 30.0, max_requests: int = 256
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.max_requests = max_requests
        self.active = 0  # requests in flight in this process, probes not counted (one event loop: no lock)
        self._reading: dict[asyncio.Task[Any], float] = {}  # tasks waiting for body bytes → their deadline
        self._expired: set[asyncio.Task[Any]] = set()  # …cancelled by the watchdog for being late
        self._watchdog: asyncio.Task[None] | None = None
        # (method, path) → the child scope the router built for a hot route (route, endpoint, path params,
        # the exception handlers): learnt from the first request through the full stack.
        self._direct: dict[tuple[str, str], dict[str, Any]] = {}

    def remembers(self, scope: Scope) -> bool:
        """Whether this HTTP request is for a remembered hot route (ServiceApp then calls it with `front=True`)."""
        return (scope["method"], scope["path"]) in self._direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send, front: bool = False) -> None:
        """Serve one request. `front`: called as the outermost layer (ServiceApp), so an error no handler took is
        answered 500 here by the app's server-error handler, as ServerErrorMiddleware would, then re-raised."""
        if scope["type"] != "http":
            await self.app(scope, self._stopping(receive) if scope["type"] == "lifespan" else receive, send)
            return
        started = time.perf_counter()
        status = 500
        answered = False  # an answer has started: its status is known, and no error answer may follow
        add_in_flight = self.metrics.add_in_flight  # written at once, not tallied: a scrape of any worker sees it exact
        add_in_flight(1.0)

        async def send_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
            await send(message)

        limited = scope["path"] not in PROBES
        try:
            if limited and self.active >= self.max_requests:
                await self._refuse(scope, receive, send_status)
                return
            self.active += limited
            try:
                key = (scope["method"], scope["path"])
                direct = self._direct.get(key)
                if direct is not None:
                    scope.update(direct)
                    try:
                        await call_direct(scope, self._guarded(scope, receive), send_status)
                    except Exception as exc:
                        if front and not answered:
                            await answer_server_error(scope, receive, send_status, exc)
                        raise
                else:
                    await self.app(scope, self._guarded(scope, receive), send_status)
                    self._remember(key, scope)
            finally:
                self.active -= limited
        finally:
            add_in_flight(-1.0)
            template = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe_request(template, scope["method"], status, time.perf_counter() - started)

    def _remember(self, key: tuple[str, str], scope: Scope) -> None:
        """Keep the router's match of a hot route (exact method and path) for the next requests."""
        route = scope.get("route")
        if (
            isinstance(route, DirectRoute)
            and key[0] in (route.methods or ())
            and HANDLERS in scope
            and len(self._direct) < MAX_DIRECT
        ):
            names = ("route", "endpoint", "path_params", "router", HANDLERS)
            self._direct[key] = {name: scope[name] for name in names if name in scope}

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Counted under the route it was meant for (the router has not run yet): match it here, on this rare path.
        app = scope.get("app")
        for route in getattr(getattr(app, "router", None), "routes", ()):
            if route.matches(scope)[0] == Match.FULL:
                scope["route"] = route
                break
        overloaded = Overloaded(
            f"this process is serving {self.active} requests, its limit (COMMITRISK_MAX_CONCURRENT_REQUESTS); "
            "retry shortly"
        )
        await render(overloaded)(scope, receive, send)

    def _guarded(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
                break
        small = (
            declared is not None
            and len(declared) <= MAX_LENGTH_DIGITS
            and declared.isdigit()
            and int(declared) <= limit
        )
        # Declared too large (or unparsable): refuse on the first read. Chunked: count as it arrives.
        seen = 0 if declared is None or small else limit + 1
        deadline = time.monotonic() + self.body_timeout
        complete = False

        async def guarded() -> Message:
            nonlocal seen, complete
            if complete:
                return await receive()  # after the body: disconnect listening, never timed
            if seen > limit:
                raise BodyTooLarge(f"request body exceeds {limit} bytes")
            message = await self._timed(receive, deadline)
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                if not small:  # the server never delivers more than a declared length: count only the others
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise BodyTooLarge(f"request body exceeds {limit} bytes")
            else:
                complete = True
            return message

        return guarded

    async def _timed(self, receive: Receive, deadline: float) -> Message:
        """`receive()`, or RequestTimeout once the watchdog finds it waiting past `deadline`."""
        task = asyncio.current_task()
        assert task is not None
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        self._reading[task] = deadline
        try:
            return await receive()
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # a shutdown, not ours
            self._expired.discard(task)
            task.uncancel()
            raise RequestTimeout(
                f"the request body did not arrive within {self.body_timeout:g} s (COMMITRISK_BODY_TIMEOUT_SECONDS)"
            ) from None
        finally:
            del self._reading[task]

    async def _watch(self) -> None:
        """Cancel every body read past its deadline, a few times per timeout (at most a second late)."""
        period = min(1.0, self.body_timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for task, deadline in self._reading.items():
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    def _stopping(self, receive: Receive) -> Receive:
        """The lifespan's `receive`, stopping the watchdog when the server shuts down."""

        async def lifespan() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self._watchdog is not None:
                self._watchdog.cancel()
            return message

        return lifespan


class ServiceApp(FastAPI):
    """FastAPI whose remembered hot routes enter ServiceMiddleware first.

    In front of user middleware FastAPI puts three layers (server-error rendering, exception telemetry, a body-limit
    scope check) and Starlette's own call: pass-throughs for these routes that cost ~3 µs a request. Every other
    request, and a hot route's first, goes through the whole stack; on this path `ServiceMiddleware`, called with
    `front=True`, renders a server error itself.
    """

    service: ServiceMiddleware | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        layer: Any = stack
        while layer is not None and not isinstance(layer, ServiceMiddleware):
            layer = getattr(layer, "app", None)
        self.service = layer
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        if service is not None and scope["type"] == "http" and not self.root_path and service.remembers(scope):
            scope["app"] = self
            await service(scope, receive, send, front=True)
            return
        await super().__call__(scope, receive, send)
