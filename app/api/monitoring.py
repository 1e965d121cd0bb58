"""Late labels and monitoring views: POST /feedback and the /monitoring/* routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from app.api.answer import json_answer
from app.api.deps import AdminDep, MonitoringDep, SettingsDep, read_json, validate
from app.api.tokens import require_client
from app.errors import BatchTooLarge, InvalidModel, NotEnoughData, RepositoryError
from app.monitoring.commits import logged_commit_ids
from app.monitoring.monitor import Monitoring
from app.monitoring.reports import StoredDriftReport
from app.repository import MAX_VERSION
from app.schemas import STORABLE, ErrorOut, request_body

router = APIRouter(tags=["monitoring"])

MAX_FEEDBACK_ITEMS = 50_000
MAX_LOGGED_IDS = 10_000  # commit ids one /monitoring/logged question may name
# 503: the monitoring database is down (DatabaseUnavailable), or, for refresh, the `monitor` extra is missing.
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 409, 413, 422, 503)}
# POST /feedback reads a JSON body: 415 for one not declared JSON.
FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 415: {"model": ErrorOut}}


class FeedbackItem(BaseModel):
    """One late label: the SZZ outcome of a commit, joined with ONE of its logged predictions — the one whose
    `request_id` it names, else the commit's first (app/monitoring/labels.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    commit_id: Annotated[str, Field(min_length=1, max_length=200), STORABLE]
    repository: Annotated[str, Field(max_length=500), STORABLE] | None = None
    buggy: Annotated[bool, Field(strict=True)]  # true or false: not "yes", not 1
    fixed_by: Annotated[str, Field(max_length=100_000), STORABLE] | None = Field(
        None, description="';'-separated fixing SHAs"
    )
    labeled_at: datetime | Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = Field(
        None, description="when the label became known (ISO 8601 or Unix seconds; NaN/Infinity refused)"
    )
    request_id: Annotated[str, Field(min_length=1, max_length=64), STORABLE] | None = Field(
        None, description="the answer (its `request_id`) this label is about; default: the commit's first prediction"
    )

    def row(self) -> dict[str, Any]:
        """The `feedback` table row (labeled_at as Unix seconds)."""
        at = self.labeled_at
        return {
            "commit_id": self.commit_id,
            "repository": self.repository,
            "buggy": self.buggy,
            "fixed_by": self.fixed_by or None,
            "labeled_at": at.timestamp() if isinstance(at, datetime) else at,
            "request_id": self.request_id,
        }


FeedbackIn = RootModel[list[FeedbackItem]]


class FeedbackOut(BaseModel):
    received: int
    upserted: int


@router.post("/feedback", summary="Upsert late labels (admin)", response_model=FeedbackOut, responses=FEEDBACK_ERRORS)
async def post_feedback(request: Request, settings: SettingsDep, monitoring: MonitoringDep, _: AdminDep) -> Response:
    """Insert or replace labels by commit id; sending the same labels twice changes nothing."""
    data = await read_json(request, settings.max_body_bytes)
    if isinstance(data, list) and len(data) > MAX_FEEDBACK_ITEMS:
        raise BatchTooLarge(f"{len(data)} labels in one request; the limit is {MAX_FEEDBACK_ITEMS}")
    items = validate(FeedbackIn, data).root
    rows = [i.row() for i in items]
    upserted = await run_in_threadpool(monitoring.use, lambda store: store.upsert_feedback(rows))
    return json_answer({"received": len(items), "upserted": upserted})


def _newest_report(monitoring: Monitoring, with_html: bool = False) -> StoredDriftReport:
    stored = monitoring.use(lambda store: store.latest_drift_report(with_html=with_html))
    if stored is None:
        raise NotEnoughData(
            "no drift result yet: the job runs every "
            f"{monitoring.settings.drift_interval_seconds:g} s (or POST /monitoring/drift/refresh)"
        )
    if stored.status == "not_enough_data":
        raise NotEnoughData(stored.report["message"], stored.report.get("details", []))
    if stored.status != "ok":
        failed = RepositoryError if stored.report.get("error") == RepositoryError.__name__ else InvalidModel
        raise failed(f"drift job failed: {stored.report.get('message')}", stored.report.get("details", []))
    return stored


@router.get("/monitoring/drift", summary="Newest data-drift result (cached)", responses=ERRORS)
async def get_drift(monitoring: MonitoringDep) -> Response:
    """Dataset drift share and per-feature tests of the newest run: champion reference vs logged window."""
    stored = await run_in_threadpool(_newest_report, monitoring)
    return json_answer(stored.report)


@router.get("/monitoring/drift/report", summary="Evidently HTML of the newest drift run", responses=ERRORS)
async def get_drift_report(monitoring: MonitoringDep) -> HTMLResponse:
    """The full Evidently report (self-contained HTML)."""
    stored = await run_in_threadpool(_newest_report, monitoring, True)
    return HTMLResponse(stored.html or "<p>no HTML stored for this run</p>")


@router.post("/monitoring/drift/refresh", summary="Recompute drift now (admin)", responses=ERRORS)
async def refresh_drift(monitoring: MonitoringDep, _: AdminDep) -> Response:
    """Run the drift job (out of process) and answer with its result; 503 without the `monitor` extra."""
    await monitoring.schedule.refresh_drift()
    stored = await run_in_threadpool(_newest_report, monitoring)
    return json_answer(stored.report)


@router.get("/monitoring/data-quality", summary="Rule-based checks over the window", responses=ERRORS)
async def get_data_quality(monitoring: MonitoringDep) -> Response:
    """Values outside the champion's training ranges per feature and rejected inputs by reason."""
    report = await run_in_threadpool(monitoring.data_quality)
    return json_answer(report.model_dump(mode="json"))


RepositoryFilter = Annotated[
    str | None,
    Query(max_length=500, description="only this repository's predictions (as the client sent it)"),
    STORABLE,
]


@router.get("/monitoring/performance", summary="Model performance and label-free estimate", responses=ERRORS)
async def get_performance(monitoring: MonitoringDep, repository: RepositoryFilter = None) -> Response:
    """ROC AUC, PR AUC, precision, recall, Brier, Recall@20%Effort over labelled rows; CBPE estimates.

    With `repository`, over that repository's predictions only; one never logged gives an empty report.
    """
    report = await run_in_threadpool(monitoring.performance, repository)
    return json_answer(report.model_dump(mode="json"))


class LoggedIn(BaseModel):
    """Which of these commits has the log scored by this model version (a backfill's re-run skips them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bounded like version names (app/repository.py): a larger integer would overflow the database's integer.
    model_version: Annotated[int, Field(strict=True, ge=1, lt=MAX_VERSION)]
    commit_ids: list[Annotated[str, Field(min_length=1, max_length=200), STORABLE]]


@router.post(
    "/monitoring/logged",
    summary="Which commits a model version has logged",
    responses={**ERRORS, 415: {"model": ErrorOut}},  # a JSON body, like /feedback
    openapi_extra=request_body(LoggedIn),
)
async def post_logged(request: Request, settings: SettingsDep, monitoring: MonitoringDep) -> Response:
    """The subset of `commit_ids` already logged with `model_version` (read-only; a client token when required)."""
    require_client(request, settings)
    data = await read_json(request, settings.max_body_bytes)
    if isinstance(data, dict) and isinstance(data.get("commit_ids"), list) and len(data["commit_ids"]) > MAX_LOGGED_IDS:
        raise BatchTooLarge(
            f"{len(data['commit_ids'])} commit ids in one request; the limit is {MAX_LOGGED_IDS}",
            [{"field": "commit_ids", "message": f"at most {MAX_LOGGED_IDS} items"}],
        )
    asked = validate(LoggedIn, data)
    ids = list(dict.fromkeys(asked.commit_ids))
    logged = await run_in_threadpool(
        monitoring.use, lambda store: logged_commit_ids(store.engine, asked.model_version, ids)
    )
    return json_answer({"model_version": asked.model_version, "logged": [i for i in ids if i in logged]})
