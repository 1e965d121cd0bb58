"""What the infrastructure polls: liveness, readiness (a model is loaded and passed its self-test), /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import MetricsDep, RegistryDep
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
async def ready(registry: RegistryDep) -> dict[str, Any]:
    """200 with the served version, else 503 with the reason."""
    served = registry.require()
    return {"status": "ready", "model_version": served.champion.version}


@router.get("/metrics", tags=["monitoring"], summary="Prometheus exposition")
async def prometheus(metrics: MetricsDep) -> Response:
    """Every `commitrisk_*` family in the text format (merged over the workers in multiprocess mode)."""
    body, media_type = metrics.exposition()
    return Response(body, media_type=media_type)
