"""Late labels and monitoring views: POST /feedback and the /monitoring/* routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from app.api.deps import AdminDep, MonitoringDep, SettingsDep, read_json, validate
from app.errors import BatchTooLarge, InvalidModel, NotEnoughData
from app.monitoring.monitor import Monitoring
from app.monitoring.reports import StoredDriftReport
from app.schemas import ErrorOut

router = APIRouter(tags=["monitoring"])

MAX_FEEDBACK_ITEMS = 50_000
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 409, 413, 422)}
REFRESH_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 503: {"model": ErrorOut}}


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


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


@router.post("/feedback", summary="Upsert late labels (admin)", response_model=FeedbackOut, responses=ERRORS)
async def post_feedback(request: Request, settings: SettingsDep, monitoring: MonitoringDep, _: AdminDep) -> Response:
    """Insert or replace labels by commit id; sending the same labels twice changes nothing."""
    data = await read_json(request, settings.max_body_bytes)
    if isinstance(data, list) and len(data) > MAX_FEEDBACK_ITEMS:
        raise BatchTooLarge(f"{len(data)} labels in one request; the limit is {MAX_FEEDBACK_ITEMS}")
    items = validate(FeedbackIn, data).root
    upserted = await run_in_threadpool(monitoring.store.upsert_feedback, [i.row() for i in items])
    return _json({"received": len(items), "upserted": upserted})


def _newest_report(monitoring: Monitoring, with_html: bool = False) -> StoredDriftReport:
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


@router.post("/monitoring/drift/refresh", summary="Recompute drift now (admin)", responses=REFRESH_ERRORS)
async def refresh_drift(monitoring: MonitoringDep, _: AdminDep) -> Response:
    """Run the drift job (out of process) and answer with its result; 503 without the `monitor` extra."""
    await monitoring.schedule.refresh_drift()
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
