"""What the infrastructure polls: liveness, readiness (a model is loaded and passed its self-test), /metrics.

Readiness is about scoring only: a process whose monitoring database is down still scores, so it stays ready and
says `"database": "down"` in the details (the log holds or counts its rows; app/monitoring/availability.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import ServicesDep
from app.errors import ModelNotReady
from app.monitoring.writer import WORKER_LOST
from app.schemas import ErrorOut

router = APIRouter()  # tags per route: /metrics belongs to "monitoring" in the OpenAPI schema

_LIVE = b'{"status":"live"}'


@router.get("/health/live", tags=["health"], summary="The process answers (also the benchmarks' constant route)")
async def live() -> Response:
    """Always 200 while the event loop runs."""
    return Response(_LIVE, media_type="application/json")


@router.get(
    "/health/ready", tags=["health"], summary="A self-tested model is loaded", responses={503: {"model": ErrorOut}}
)
async def ready(services: ServicesDep) -> dict[str, Any]:
    """200 with the served version and the database's state (`up`/`down`), else 503 with the reason."""
    database = services.monitoring.availability.state()
    try:
        served = services.registry.require()
    except ModelNotReady as exc:
        raise ModelNotReady(exc.message, [*exc.details, {"database": database}]) from None
    return {"status": "ready", "model_version": served.champion.version, "database": database}


@router.get("/metrics", tags=["monitoring"], summary="Prometheus exposition")
async def prometheus(services: ServicesDep) -> Response:
    """Every `commitrisk_*` family in the text format (merged over the workers in multiprocess mode)."""
    lost = services.monitoring.metrics.log_dropped.labels(WORKER_LOST)
    body, media_type = services.metrics.exposition(on_lost=lost.inc)
    return Response(body, media_type=media_type)
