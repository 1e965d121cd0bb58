"""Liveness and readiness (ready = a model is loaded and passed its self-test)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import RegistryDep
from app.schemas import ErrorOut

router = APIRouter(tags=["health"])

_LIVE = b'{"status":"live"}'


@router.get("/health/live", summary="The process answers (also the benchmarks' constant route)")
async def live() -> Response:
    """Always 200 while the event loop runs."""
    return Response(_LIVE, media_type="application/json")


@router.get("/health/ready", summary="A self-tested model is loaded", responses={503: {"model": ErrorOut}})
async def ready(registry: RegistryDep) -> dict[str, Any]:
    """200 with the served version, else 503 with the reason."""
    served = registry.require()
    return {"status": "ready", "model_version": served.champion.version}
