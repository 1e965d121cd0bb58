"""`GET /models`, `GET /models/{version}` and the admin `POST /reload`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from app.api.body import read_optional_json, validate
from app.api.deps import AdminDep, RegistryDep, ServicesDep, redactor
from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, ModelManifest
from app.errors import CommitRiskError
from app.repository import parse_version
from app.schemas import ErrorOut, ReloadIn, request_body
from app.shadow import shadow_report

router = APIRouter(tags=["models"])


def summary(manifest: ModelManifest) -> dict[str, Any]:
    """What an operator wants at a glance about one version."""
    return {
        "version": manifest.version,
        "created_at": manifest.created_at.isoformat(),
        "model_type": manifest.model_type,
        "threshold": manifest.threshold,
        "bands": {"medium": manifest.bands.medium, "high": manifest.bands.high},
        "train_rows": manifest.window.train_rows,
        "test_window": [manifest.window.test_start.isoformat(), manifest.window.test_end.isoformat()],
        "test_metrics": manifest.test_metrics.model_dump(),
        "warnings": manifest.warnings,
    }


def _pointer(registry: RegistryDep, name: str, redact: Callable[[str], str]) -> int | str | None:
    try:
        return registry.repository.pointer(name)
    except CommitRiskError as exc:
        return f"invalid: {redact(exc.message)}"


def _challengers(registry: RegistryDep, redact: Callable[[str], str]) -> list[int] | str:
    try:
        return list(registry.repository.pointer_list(CHALLENGER_POINTER))
    except CommitRiskError as exc:
        return f"invalid: {redact(exc.message)}"


@router.get(
    "/models",
    summary="Versions on disk, pointers, and what this process serves",
    responses={503: {"model": ErrorOut}},
)
async def list_models(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Each process answers for itself: `served.pid` tells the uvicorn workers apart. The absolute models path
    shows only with the admin token (`<models>` otherwise); 503 when the models directory cannot be read."""
    redact = redactor(request)
    registry = services.registry
    repository = registry.repository
    versions = []
    for number in repository.versions():
        try:
            versions.append(summary(repository.manifest(number)))
        except CommitRiskError as exc:
            details = [{k: redact(v) if isinstance(v, str) else v for k, v in d.items()} for d in exc.details]
            versions.append({"version": number, "error": redact(exc.message), "details": details})
    served = registry.served
    # Live agreement in this process + labelled AUCs (a database read, off the event loop).
    shadows = await asyncio.to_thread(shadow_report, services.shadow, services.monitoring.store.engine)
    return {
        "models_dir": redact(str(repository.root)),
        "versions": versions,
        "champion": _pointer(registry, CHAMPION_POINTER, redact),
        "challenger": _pointer(registry, CHALLENGER_POINTER, redact),  # the newest one (kept for old clients)
        "challengers": _challengers(registry, redact),  # every listed challenger, oldest first; `shadows` = loaded
        "shadows": shadows,
        "served": {
            "pid": os.getpid(),
            "version": served.champion.version if served else None,
            "loaded_at": served.loaded_at if served else None,
            "ready": served is not None,
            "reason": redact(registry.reason) or None,
        },
    }


@router.get(
    "/models/{version}",
    summary="The full manifest of one version",
    responses={code: {"model": ErrorOut} for code in (400, 404, 409, 503)},
)
async def get_model(version: str, registry: RegistryDep) -> dict[str, Any]:
    """400 for a name that is not a version number, 404 when it is not on disk."""
    manifest = registry.repository.manifest(parse_version(version))
    return manifest.model_dump(mode="json")


@router.post(
    "/reload",
    summary="Load the champion (or `version`, moving the champion pointer) — admin",
    responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 415, 422, 503)},
    openapi_extra=request_body(ReloadIn, required=False),
)
async def reload(request: Request, registry: RegistryDep, _: AdminDep) -> dict[str, Any]:
    """Build + self-test first, then swap; on failure the old model keeps serving and the error says why."""
    data = validate(ReloadIn, await read_optional_json(request))
    version = None if data.version is None else parse_version(data.version)
    previous = registry.served.champion.version if registry.served else None
    predictor = await asyncio.wrap_future(registry.loader.submit(registry.reload, version))
    return {
        "version": predictor.version,
        "previous": previous,
        "pid": os.getpid(),
        "champion": registry.repository.pointer(CHAMPION_POINTER),
    }
