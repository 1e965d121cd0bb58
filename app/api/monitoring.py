"""Late labels and monitoring views: POST /feedback and the /monitoring/* routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from app.api.deps import AdminDep, read_json, validate
from app.api.errors import error_response, render
from app.errors import (
    BatchTooLarge,
    BodyTooLarge,
    CommitRiskError,
    InvalidInput,
    InvalidModel,
    MalformedBody,
    NotEnoughData,
)
from app.monitoring.monitor import DriftUnavailable, Monitoring
from app.schemas import ErrorOut
from app.settings import Settings

router = APIRouter(tags=["monitoring"])

MAX_FEEDBACK_ITEMS = 50_000
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 409, 413, 422)}


class FeedbackItem(BaseModel):
    """One late label: the SZZ outcome of a commit, joined with its predictions by `commit_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    commit_id: str = Field(min_length=1, max_length=200)
    repository: str | None = Field(None, max_length=500)
    buggy: bool
    fixed_by: str | None = Field(None, max_length=100_000, description="';'-separated fixing SHAs")
    labeled_at: datetime | float | None = Field(None, description="when the label became known")

    def row(self) -> dict[str, Any]:
        """The `feedback` table row (labeled_at as Unix seconds)."""
        at = self.labeled_at
        return {
            "commit_id": self.commit_id,
            "repository": self.repository,
            "buggy": self.buggy,
            "fixed_by": self.fixed_by or None,
            "labeled_at": at.timestamp() if isinstance(at, datetime) else at,
        }


FeedbackIn = RootModel[list[FeedbackItem]]


class FeedbackOut(BaseModel):
    received: int
    upserted: int


def get_monitoring(request: Request) -> Monitoring:
    """This process's monitoring (store, log writer, drift schedule)."""
    monitoring: Monitoring = request.app.state.monitoring
    return monitoring


MonitoringDep = Annotated[Monitoring, Depends(get_monitoring)]


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


@router.post("/feedback", summary="Upsert late labels (admin)", response_model=FeedbackOut, responses=ERRORS)
async def post_feedback(request: Request, monitoring: MonitoringDep, _: AdminDep) -> Response:
    """Insert or replace labels by commit id; sending the same labels twice changes nothing."""
    data = await read_json(request, request.app.state.settings.max_body_bytes)
    if isinstance(data, list) and len(data) > MAX_FEEDBACK_ITEMS:
        raise BatchTooLarge(f"{len(data)} labels in one request; the limit is {MAX_FEEDBACK_ITEMS}")
    items = validate(FeedbackIn, data).root
    upserted = await run_in_threadpool(monitoring.store.upsert_feedback, [i.row() for i in items])
    return _json({"received": len(items), "upserted": upserted})


def _newest_report(monitoring: Monitoring, with_html: bool = False) -> Any:
    stored = monitoring.store.latest_drift_report(with_html=with_html)
    if stored is None:
        raise NotEnoughData(
            "no drift result yet: the job runs every "
            f"{monitoring.settings.drift_interval_seconds:g} s (or POST /monitoring/drift/refresh)"
        )
    if stored.status == "not_enough_data":
        raise NotEnoughData(stored.report["message"], stored.report.get("details", []))
    if stored.status != "ok":
        raise InvalidModel(f"drift job failed: {stored.report.get('message')}", stored.report.get("details", []))
    return stored


@router.get("/monitoring/drift", summary="Newest data-drift result (cached)", responses=ERRORS)
async def get_drift(monitoring: MonitoringDep) -> Response:
    """Dataset drift share and per-feature tests of the newest run: champion reference vs logged window."""
    stored = await run_in_threadpool(_newest_report, monitoring)
    return _json(stored.report)


@router.get("/monitoring/drift/report", summary="Evidently HTML of the newest drift run", responses=ERRORS)
async def get_drift_report(monitoring: MonitoringDep) -> HTMLResponse:
    """The full Evidently report (self-contained HTML)."""
    stored = await run_in_threadpool(_newest_report, monitoring, True)
    return HTMLResponse(stored.html or "<p>no HTML stored for this run</p>")


@router.post("/monitoring/drift/refresh", summary="Recompute drift now (admin)", responses=ERRORS)
async def refresh_drift(monitoring: MonitoringDep, _: AdminDep) -> Response:
    """Run the drift job (out of process) and answer with its result."""
    await monitoring.refresh_drift()
    stored = await run_in_threadpool(_newest_report, monitoring)
    return _json(stored.report)


@router.get("/monitoring/data-quality", summary="Rule-based checks over the window", responses=ERRORS)
async def get_data_quality(monitoring: MonitoringDep) -> Response:
    """Values outside the champion's training ranges per feature and rejected inputs by reason."""
    report = await run_in_threadpool(monitoring.data_quality)
    return _json(report.model_dump(mode="json"))


@router.get("/monitoring/performance", summary="Model performance and label-free estimate", responses=ERRORS)
async def get_performance(monitoring: MonitoringDep) -> Response:
    """ROC AUC, PR AUC, precision, recall, Brier, Recall@20%Effort over labelled rows; CBPE estimates."""
    report = await run_in_threadpool(monitoring.performance)
    return _json(report.model_dump(mode="json"))


def install_monitoring(app: FastAPI, settings: Settings, registry: CollectorRegistry) -> Monitoring:
    """Open the store, plug the prediction log into `app.state.prediction_sink`, add these routes, and
    wrap the app's lifespan so the writer/schedule start with it and the log is flushed on shutdown."""
    monitoring = Monitoring(settings, registry)
    app.state.monitoring = monitoring
    app.state.prediction_sink = monitoring.log_batch if settings.prediction_log else None
    app.include_router(router)
    _count_rejections(app, monitoring)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        monitoring.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            await asyncio.to_thread(monitoring.stop)

    app.router.lifespan_context = lifespan
    return monitoring


# Inputs refused before scoring, by reason, for /monitoring/data-quality (the talk's "data attributes").
REJECTIONS: dict[type[CommitRiskError], str] = {
    InvalidInput: "invalid_input",
    BatchTooLarge: "batch_too_large",
    MalformedBody: "malformed_body",
    BodyTooLarge: "body_too_large",
}
SCORING_PATHS = ("/predict", "/v2/")


def _count_rejections(app: FastAPI, monitoring: Monitoring) -> None:
    # More specific than the app's CommitRiskError handler, so these run first and render the same body.
    async def rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CommitRiskError)
        if request.url.path.startswith(SCORING_PATHS):
            reason = next(r for cls, r in REJECTIONS.items() if isinstance(exc, cls))
            monitoring.record_rejection(reason)
        return render(exc)

    for cls in REJECTIONS:
        app.add_exception_handler(cls, rejected)

    async def unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DriftUnavailable)
        return error_response(503, type(exc).__name__, exc.message, exc.details)

    # A capability this image lacks (the `monitor` extra), not a server fault: 503 like ModelNotReady.
    app.add_exception_handler(DriftUnavailable, unavailable)
