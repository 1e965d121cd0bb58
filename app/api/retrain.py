"""`POST /retrain` (admin) records an on-demand retrain request; `GET /retrain/audit` shows the decisions.

The service never trains: it only records the request in the monitoring database, where the next run of
`commitrisk retrain` (the trainer's loop or CronJob) picks it up as the on-demand trigger.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import AdminDep, MonitoringDep, read_optional_json, validate
from app.monitoring import retrain_log
from app.schemas import STORABLE, ErrorOut

router = APIRouter(tags=["retraining"])
# 503: the monitoring database, which holds requests and the audit, is down (DatabaseUnavailable).
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 422, 503)}
# POST /retrain reads an optional JSON body: 415 for one not declared JSON.
REQUEST_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 415: {"model": ErrorOut}}


class RetrainIn(BaseModel):
    """Optional body of POST /retrain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Annotated[str, Field(min_length=1, max_length=500), STORABLE] = "requested through POST /retrain"
    requested_by: Annotated[str, Field(max_length=200), STORABLE] | None = None


@router.post("/retrain", status_code=202, summary="Ask the trainer to retrain (admin)", responses=REQUEST_ERRORS)
async def post_retrain(request: Request, monitoring: MonitoringDep, _: AdminDep) -> dict[str, Any]:
    """Queue a request: 202 with its id; the trainer's next run answers it with an audit record."""
    data = validate(RetrainIn, await read_optional_json(request))  # 415 for a body not declared JSON
    # The store's schema, retrain tables included, is migrated once the database first answers.
    queued = await run_in_threadpool(
        monitoring.use, lambda store: retrain_log.request_retrain(store.engine, data.reason, data.requested_by)
    )
    return {"id": queued.id, "requested_at": queued.requested_at, "reason": queued.reason, "status": "queued"}


@router.get("/retrain/audit", summary="Newest retrain decisions with their triggers", responses=ERRORS)
async def get_audit(monitoring: MonitoringDep, limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
    """Each record: time, every trigger (value, threshold, fired), the action taken and versions involved."""
    records, pending = await run_in_threadpool(
        monitoring.use,
        lambda store: (retrain_log.recent_audit(store.engine, limit), retrain_log.pending_requests(store.engine)),
    )
    return {"records": records, "pending_requests": [r.id for r in pending]}
