"""`create_app(settings)`: builds the services, the prediction sink chain, ONE lifespan, and adds the routes.

Importing this module loads no model and reads no environment; `create_app_from_env` is the uvicorn factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from app.api import health, models, monitoring, predict, retrain, v2
from app.api.deps import hidden_paths
from app.api.errors import install_error_handlers
from app.api.middleware import ServiceApp, ServiceMiddleware
from app.metrics import ServiceMetrics
from app.monitoring.monitor import Monitoring
from app.registry import ModelRegistry
from app.repository import ModelRepository
from app.services import Services
from app.settings import Settings
from app.shadow import ShadowMetrics, ShadowSink
from app.ui import pages
from app.ui.process import PageProcess

log = logging.getLogger("commitrisk.main")


async def follow_pointer(registry: ModelRegistry, seconds: float) -> None:
    """Every `seconds`, converge to the champion pointer (off the request path, on the loader thread)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.wrap_future(registry.loader.submit(registry.sync))
        except Exception:  # a bad disk moment must not kill the loop that would recover from it
            log.exception("pointer check failed")


# HEAP: the lifespan moves everything start-up built (modules, the app, the champion) out of the garbage collector's
# view (`gc.freeze`). A full collection walks every tracked object: with the start-up heap in view, under load it
# paused requests for ~50 ms about once a second (`/predict` p99 50 ms → 6 ms frozen; bench/serve.py).

# How often each process hands freed heap memory back to the OS (see `release_memory`).
TRIM_SECONDS = 30.0


def release_memory() -> bool:
    """Return the heap pages freed since the last call to the OS (glibc's `malloc_trim`); False where there is none.

    glibc keeps what a burst freed (an outage's held log rows, a big batch, a /metrics merge) in the arena of the
    thread that allocated it, and this service allocates on many threads: without a trim a worker's RSS ratchets
    up over days though the live Python heap does not grow (bench/soak.py).
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): their allocators return memory themselves
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


async def trim_memory(seconds: float) -> None:
    """Every `seconds`, `release_memory` off the event loop (it walks every arena: milliseconds)."""
    while True:
        await asyncio.sleep(seconds)
        if not await asyncio.to_thread(release_memory):
            return


def build_services(settings: Settings) -> Services:
    """The services of one app; loads the current champion if there is one (nothing is started yet)."""
    metrics = ServiceMetrics()
    registry = ModelRegistry(
        ModelRepository(settings.models_dir),
        metrics,
        settings.ort_intra_op_threads,
        settings.ort_inter_op_threads,
        settings.max_shadows,
    )
    registry.sync()  # a failure leaves the app live but not ready, with the reason
    monitoring = Monitoring(settings, metrics.registry)
    # Where an answered batch goes, in order: the challengers score it in shadow (never changing the
    # answer), then the prediction log queues it for the writer thread (when the log is on).
    log_sink = monitoring.log.submit if settings.prediction_log else None
    shadow = ShadowSink(registry, ShadowMetrics(metrics.registry, metrics.tally), log_sink)
    return Services(settings, metrics, registry, monitoring, shadow, sink=shadow)


def lifespan_of(
    services: Services, ui: pages.Pages, page_process: PageProcess | None = None, pages_only: bool = False
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The app's one lifespan: monitoring (log writer + job schedule, not in a page process), the pointer follower
    and the heap trim run with it; shutdown stops the page process, those two and the loader thread, waits for the
    pages' cache refreshes, flushes the log, and drops this pid's live gauges."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.monitoring.start(schedule=not pages_only)
        services.metrics.tally.start()
        gc.collect()
        gc.freeze()  # see `HEAP`
        follower = asyncio.create_task(follow_pointer(services.registry, services.settings.pointer_poll_seconds))
        trimmer = asyncio.create_task(trim_memory(TRIM_SECONDS))
        try:
            yield
        finally:
            if page_process is not None:
                await page_process.stop()
            for task in (follower, trimmer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            gc.unfreeze()  # an app built again in this process (tests) must not keep this one's heap forever
            services.registry.loader.shutdown(wait=False)
            await asyncio.to_thread(ui.close)  # a refresh reads the database that monitoring.stop closes
            await asyncio.to_thread(services.monitoring.stop)  # every queued prediction is written first
            services.metrics.tally.stop()  # this process's last counts reach its files before they are closed
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())

    return lifespan


def create_app(settings: Settings, pages_only: bool = False) -> FastAPI:
    """A ready-to-serve app for these settings; loads the current champion if there is one. `pages_only`: the app of
    a page process (app/ui/process.py): the pages and the health routes, no monitoring schedule."""
    services = build_services(settings)
    ui = pages.Pages(services, forwarded=pages_only)
    page_process = PageProcess(services) if settings.ui_process and not pages_only else None
    app = ServiceApp(
        title="commitrisk",
        summary="Just-in-time defect prediction: how likely is this commit to introduce a bug?",
        version="0.1.0",
        lifespan=lifespan_of(services, ui, page_process, pages_only),
        # Our Prometheus metrics are the source of truth; keep FastAPI's OpenTelemetry hook off the hot path.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.services = services
    # The service's own routes go straight onto the app's route list: FastAPI's include_router wraps each
    # router in a lazily matched layer that costs ~40 µs per request (measured), more than scoring a commit.
    # The routers already carry their prefix and tags, so paths and the OpenAPI schema are the same.
    routers = (health.router,) if pages_only else (predict.router, models.router, health.router, v2.router,
                                                   retrain.router, monitoring.router)  # fmt: skip
    for router in routers:
        app.router.routes.extend(router.routes)
    # The web pages (/ui/…), read-only; with a page process they are matched here and rendered there.
    route_class = pages.PageRoute if page_process is None else page_process.route_class()
    app.router.routes.extend(pages.router(ui, route_class).routes)
    install_error_handlers(app, on_rejection=services.monitoring.record_rejection, hidden=hidden_paths)
    app.add_middleware(
        ServiceMiddleware,
        metrics=services.metrics,
        max_body=settings.max_body_bytes,
        body_timeout=settings.body_timeout_seconds,
        max_requests=settings.max_concurrent_requests,
    )
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory (`app.main:create_app_from_env`, factory=True): settings from COMMITRISK_* env."""
    return create_app(Settings())
