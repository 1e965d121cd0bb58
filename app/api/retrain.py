"""`POST /retrain` (admin) records an on-demand retrain request; `GET /retrain/audit` shows the decisions.

The service never trains: it only records the request in the monitoring database, where the next run of
`commitrisk retrain` (the trainer's loop or CronJob) picks it up as the on-demand trigger.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import AdminDep, MonitoringDep, parse_json, validate
from app.monitoring import retrain_log
from app.schemas import ErrorOut

router = APIRouter(tags=["retraining"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 422)}


class RetrainIn(BaseModel):
    """Optional body of POST /retrain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("requested through POST /retrain", min_length=1, max_length=500)
    requested_by: str | None = Field(None, max_length=200)


@router.post("/retrain", status_code=202, summary="Ask the trainer to retrain (admin)", responses=ERRORS)
async def post_retrain(request: Request, monitoring: MonitoringDep, _: AdminDep) -> dict[str, Any]:
    """Queue a request: 202 with its id; the trainer's next run answers it with an audit record."""
    body = await request.body()
    data = validate(RetrainIn, parse_json(body) if body.strip() else {})
    engine = monitoring.store.engine  # its schema, retrain tables included, is migrated at start
    queued = await run_in_threadpool(retrain_log.request_retrain, engine, data.reason, data.requested_by)
    return {"id": queued.id, "requested_at": queued.requested_at, "reason": queued.reason, "status": "queued"}


@router.get("/retrain/audit", summary="Newest retrain decisions with their triggers", responses=ERRORS)
async def get_audit(monitoring: MonitoringDep, limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
    """Each record: time, every trigger (value, threshold, fired), the action taken and versions involved."""
    engine = monitoring.store.engine
    records = await run_in_threadpool(retrain_log.recent_audit, engine, limit)
    pending = await run_in_threadpool(retrain_log.pending_requests, engine)
    return {"records": records, "pending_requests": [r.id for r in pending]}
