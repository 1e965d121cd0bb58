"""The page process: each serving worker answers `/ui/…` by forwarding the request to a process of its own, so
rendering pages never takes the CPU `/predict` runs on (COMMITRISK_UI_PROCESS).

The page process is the same app (`create_app(settings, pages_only=True)`: the pages and the health routes, no
prediction log writer, no monitoring schedule) served by uvicorn on a Unix socket in a private temp directory. A
worker starts it on its first page request, at nice COMMITRISK_UI_PROCESS_NICE (not SCHED_IDLE: pages still render on
a busy machine, only behind scoring); the kernel kills it with its worker (PR_SET_PDEATHSIG), the worker's shutdown
stops it, and the next page request starts it again if it died — one at a time per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, MutableMapping
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from app.errors import PagesUnavailable
from app.services import Services
from app.settings import Settings
from app.ui.channel import Channel, ChannelError
from app.ui.rendering import Renderer
from app.ui.views import Serving

log = logging.getLogger("commitrisk.pages")

START_SECONDS = 60.0  # longest a page request waits for the page process to answer its first probe
PAGE_SECONDS = 120.0  # longest one page may take (a process's first view computes its cached aggregates: seconds)
STOP_SECONDS = 5.0  # how long shutdown waits for the page process to exit before killing it
RETRY_SECONDS = 2.0  # after a failed start, pages answer 503 at once for this long (no spawn per request)
SOCKET = "pages.sock"
SERVING_HEADER = "x-commitrisk-serving"  # the worker's served version and live shadow counts (views.Serving)
# What a page reads of a request (rendering.wants_html, access.require_reader) and what a file answer honours.
FORWARDED = frozenset({"accept", "accept-language", "authorization", "cookie", "if-modified-since", "if-none-match",
                       "if-range", "range"})  # fmt: skip
NOT_RETURNED = frozenset({b"content-length", b"transfer-encoding", b"content-encoding", b"date", b"server"})
RESTARTING = "the page process of this worker is (re)starting; try again in a moment"
CHILD = "app.ui.server"  # run as `python -m app.ui.server SOCKET WORKER_PID NICENESS`


def child_environment(settings: Settings) -> dict[str, str]:
    """The page process's environment: this worker's settings as COMMITRISK_* variables (explicit settings too), with
    the log writer, the monitoring job and a page process of its own off, and without PROMETHEUS_MULTIPROC_DIR (its
    samples would be merged into /metrics as if it were a serving worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMITRISK_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"COMMITRISK_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    off = ("COMMITRISK_UI_PROCESS", "COMMITRISK_PREDICTION_LOG", "COMMITRISK_MONITORING_JOB")
    env |= dict.fromkeys(off, "false")
    return env


def request_target(scope: MutableMapping[str, Any]) -> str:
    """The request's path as the client sent it (`%2F` kept) and its query; `.` and `..` segments escaped, so that
    nothing on the way resolves them to a path outside /ui/ (the page process answers them as any unknown page)."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    path = b"/".join(b"%2E" * len(part) if part in (b".", b"..") else part for part in raw.split(b"/"))
    query: bytes = scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def serving_header(services: Services) -> str:
    """What only the worker knows for /ui/models: the version it serves and its shadows' live counts."""
    served = services.registry.served
    live = {str(version): counts for version, counts in list(services.shadow.live.items())}
    return json.dumps({"served": None if served is None else served.champion.version, "live": live})


def serving_of(request: Request) -> Serving | None:
    """The Serving a forwarded request carries (None without one, or a malformed one)."""
    text = request.headers.get(SERVING_HEADER)
    if not text:
        return None
    try:
        found = json.loads(text)
        return Serving(found["served"], {int(k): [int(n) for n in v] for k, v in found["live"].items()})
    except (ValueError, TypeError, KeyError):
        return None


class PageProcess:
    """One worker's page process: started lazily, restarted when it died, stopped with the worker."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.process: subprocess.Popen[bytes] | None = None
        self.directory: Path | None = None
        self._client: Channel | None = None
        self._starting: asyncio.Task[Channel] | None = None
        self._failed_at = -RETRY_SECONDS  # monotonic time of the last failed start
        self._renderer = Renderer()

    def route_class(self) -> type[APIRoute]:
        """The page routes' class in the worker: matched here (their template labels the request metrics), answered
        by the page process."""
        forward = self.forward

        class ForwardedRoute(APIRoute):
            def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
                return forward

        return ForwardedRoute

    async def forward(self, request: Request) -> Response:
        """The page process's answer to this GET; the 503 PagesUnavailable page (or JSON) when it cannot give one."""
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED}
        headers[SERVING_HEADER] = serving_header(self.services)
        target = request_target(request.scope)
        try:
            try:
                answer = await (await self.client()).get(target, headers=headers)
            except ChannelError:
                if self.process is None or self.process.poll() is None:
                    raise  # alive but not answering: no second try
                answer = await (await self.client()).get(target, headers=headers)  # it died: start it, once more
        except (ChannelError, PagesUnavailable, TimeoutError) as exc:
            log.warning("page %s not answered: %s", request.url.path[:200], str(exc) or type(exc).__name__)
            return self._renderer.error(request, PagesUnavailable(RESTARTING))
        response = Response(answer.body, status_code=answer.status)
        response.raw_headers += [(name, value) for name, value in answer.headers if name not in NOT_RETURNED]
        return response

    async def client(self) -> Channel:
        """The client of a running page process, starting one first if there is none (one start at a time)."""
        if self._client is not None and self.process is not None and self.process.poll() is None:
            return self._client
        if self._starting is None or self._starting.done():
            if time.monotonic() - self._failed_at < RETRY_SECONDS:
                raise PagesUnavailable("the page process failed to start moments ago")
            self._starting = asyncio.get_running_loop().create_task(self._start())
            self._starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.wait_for(asyncio.shield(self._starting), START_SECONDS)

    async def _start(self) -> Channel:
        try:
            return await self._spawn()
        except PagesUnavailable:
            self._failed_at = time.monotonic()
            raise

    async def _spawn(self) -> Channel:
        await self._discard()
        try:
            self.directory = Path(tempfile.mkdtemp(prefix="commitrisk-pages-"))  # 0700: only this user connects
            socket = self.directory / SOCKET
            nice = str(self.settings.ui_process_nice)
            # Spawned from the event loop's thread, which lives as long as the worker: the parent-death signal
            # fires when the thread that created the child ends.
            self.process = subprocess.Popen(
                [sys.executable, "-m", CHILD, str(socket), str(os.getpid()), nice],
                env=child_environment(self.settings), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            raise PagesUnavailable(f"the page process cannot start: {exc}") from None
        client = Channel(str(socket), PAGE_SECONDS)
        deadline = time.monotonic() + START_SECONDS
        try:
            while (code := self.process.poll()) is None:
                with contextlib.suppress(ChannelError, TimeoutError):
                    if (await client.get("/health/live", {}, timeout=2.0)).status == 200:
                        break
                if time.monotonic() > deadline:
                    self.process.kill()  # wedged: the next start begins afresh
                    raise PagesUnavailable(f"the page process did not answer within {START_SECONDS:g} s")
                await asyncio.sleep(0.05)
            else:
                raise PagesUnavailable(f"the page process exited with status {code} while starting")
        except BaseException:
            await client.close()
            raise
        self._client = client
        log.info("page process %d serves the pages of worker %d", self.process.pid, os.getpid())
        return client

    async def _discard(self) -> None:
        """Stop the current page process (if any), close its client, remove its directory."""
        client, process, directory = self._client, self.process, self.directory
        self._client, self.process, self.directory = None, None, None
        if client is not None:
            await client.close()
        if process is not None and process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + STOP_SECONDS
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                process.kill()
                await asyncio.to_thread(process.wait)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    async def stop(self) -> None:
        """At the worker's shutdown: no start under way, no page process left, no socket directory."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        await self._discard()
