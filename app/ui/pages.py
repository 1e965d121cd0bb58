"""The web pages (`/ui/…`): server-rendered HTML over the prediction log, the models directory and monitoring.

Read-only, no JavaScript: forms are plain GET forms, charts inline SVG (app/ui/charts.py). Queries go through
app/monitoring (commits, volume, timeline); the aggregates over the whole log are cached snapshots refreshed in
the background (COMMITRISK_UI_*_REFRESH_SECONDS), everything a filter or a commit selects is read live.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from app.api.deps import services_of
from app.api.errors import error_response, field_details
from app.contract import REPORT_DIR
from app.errors import CommitRiskError, DatabaseUnavailable, InvalidInput, ModelNotFound, NotLogged
from app.monitoring.commits import (
    CommitFilter,
    count_commits,
    label_of,
    list_commits,
    predictions_of,
    repository_logged,
    search_commits,
    shadow_scores_of,
)
from app.monitoring.snapshot import Snapshot
from app.monitoring.timeline import Outcomes, compute_outcomes
from app.monitoring.volume import DAY, Volume, count_volume, newest_first
from app.repository import parse_version
from app.schemas import ErrorOut
from app.services import Services
from app.ui import views
from app.ui.access import require_reader
from app.ui.explanation import Explainer
from app.ui.process import serving_of
from app.ui.rendering import Renderer, wants_html

FIGURE = re.compile(r"[a-z0-9_-]{1,64}\.png")
DATE = r"^(\d{4}-\d{2}-\d{2})?$"
EPOCH = date(1970, 1, 1)
MAX_MATCHES = 1000  # a SHA search lists the newest this many matches
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (404, 422, 503)}
_RENDERER = Renderer()


class PageRoute(APIRoute):
    """A page: domain errors, invalid query parameters and a database outage become an error page (or JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                require_reader(request, services_of(request).settings)
                return await handler(request)
            except RequestValidationError as exc:
                details = field_details(exc.errors())
                error: CommitRiskError = InvalidInput(f"{len(details)} invalid parameter(s)", details)
            except CommitRiskError as exc:
                error = exc
            except (OperationalError, InterfaceError):  # the database is down or unreachable, not a bad query
                error = DatabaseUnavailable("the monitoring database cannot be reached; try again in a moment")
            return _RENDERER.error(request, error)

        return page


def parse_day(value: str | None, field: str) -> float | None:
    """`YYYY-MM-DD` → Unix seconds of its UTC midnight; None for an empty field; InvalidInput for a non-date."""
    if not value:
        return None
    try:
        return float((date.fromisoformat(value) - EPOCH).days * DAY)
    except ValueError:
        raise InvalidInput(f"{field}: not a date", [{"field": field, "message": "expected YYYY-MM-DD"}]) from None


class Pages:
    """The pages of one app: its services, the cached aggregates and the predictors that explain logged rows."""

    def __init__(self, services: Services, forwarded: bool = False) -> None:
        self.services = services
        self.forwarded = forwarded  # a page process: requests come from its worker, which says what it serves
        settings = services.settings
        self.explainer = Explainer(services.registry, settings.explain_top_k)
        self.volume: Snapshot[Volume] = Snapshot(
            "ui-volume", lambda previous: count_volume(self.engine, previous, settings.retention_days),
            settings.ui_refresh_seconds,
        )  # fmt: skip
        self.outcomes: Snapshot[Outcomes] = Snapshot(
            "ui-outcomes", lambda _previous: compute_outcomes(self.engine, time.time()),
            settings.ui_labels_refresh_seconds,
        )  # fmt: skip

    def close(self) -> None:
        """Wait for the cached aggregates' running refreshes and start no more (at shutdown, before the database
        closes)."""
        self.volume.close()
        self.outcomes.close()

    @property
    def engine(self) -> Engine:
        """The monitoring database (read through the monitoring store's engine)."""
        return self.services.monitoring.store.engine

    def overview(self) -> HTMLResponse:
        """`/ui/`: every repository in the log, newest scored first."""
        volume, outcomes = self.volume.get(), self.outcomes.get()
        return _RENDERER.page(
            "overview.html", title="Repositories", nav="repositories", volume=volume, outcomes=outcomes,
            repositories=newest_first(volume.value.by_repository.values()),
        )  # fmt: skip

    def repository(
        self,
        repository: str,
        page: int = Query(1, ge=1, le=1_000_000, description="page number, 1 = newest"),
        per_page: int = Query(50, ge=10, le=200, description="commits per page"),
        band: str | None = Query(None, pattern="^(low|medium|high)?$", description="only this risk band"),
        start: str | None = Query(None, alias="from", pattern=DATE, description="from this UTC day (YYYY-MM-DD)"),
        end: str | None = Query(None, alias="to", pattern=DATE, description="to this UTC day, inclusive"),
        sha: str | None = Query(None, max_length=100, description="commit ids starting with this text"),
    ) -> HTMLResponse:
        """`/ui/repositories/{repository}`: its scored commits, newest first, filtered; per-day volume by band."""
        first, last = parse_day(start, "from"), parse_day(end, "to")
        if first is not None and last is not None and first > last:
            raise InvalidInput("from is after to", [{"field": "from", "message": "must not be after 'to'"}])
        if "\x00" in (sha or ""):  # no database stores a NUL; nothing logged contains one
            raise InvalidInput("sha: contains a NUL character", [{"field": "sha", "message": "not a commit id"}])
        if "\x00" in repository or not repository_logged(self.engine, repository):
            raise NotLogged(f"no prediction logged for repository {repository[:200]!r}")
        where = CommitFilter(repository, band or None, first, None if last is None else last + DAY, sha or None)
        offset = (page - 1) * per_page
        if where.sha:
            rows, total = search_commits(self.engine, where, offset, per_page, MAX_MATCHES)
        else:
            total = count_commits(self.engine, where)
            rows = list_commits(self.engine, where, offset, per_page) if offset < total else []
        pages = max(1, -(-total // per_page))
        if page > pages:
            raise InvalidInput(
                f"page {page} is past the last page ({pages})", [{"field": "page", "message": "too large"}]
            )
        params = {"per_page": per_page, "band": band, "from": start, "to": end, "sha": sha}
        return _RENDERER.page(
            "repository.html", title=repository, nav="repositories", repository=repository, rows=rows, total=total,
            page=page, pages=pages, per_page=per_page, params=params, reasons=views.reasons(self.explainer, rows),
            capped=bool(where.sha) and total >= MAX_MATCHES,
            chart=views.repository_chart(self.volume.get().value, repository, first, last),
            labels=self.outcomes.get().value.by_repository.get(repository),
        )  # fmt: skip

    def commit(self, commit_id: str) -> HTMLResponse:
        """`/ui/commits/{commit_id}`: one commit's score, its metrics and factors, shadows and label."""
        scores = predictions_of(self.engine, commit_id) if "\x00" not in commit_id else []
        if not scores:
            raise NotLogged(f"no prediction logged for commit {commit_id[:200]!r}")
        return _RENDERER.page(
            "commit.html", title=f"Commit {commit_id}", nav="repositories", commit_id=commit_id, scores=scores,
            newest=scores[0], label=label_of(self.engine, commit_id), shadows=shadow_scores_of(self.engine, commit_id),
            **views.commit_view(self.explainer, scores[0]),
        )  # fmt: skip

    def models(self, request: Request) -> HTMLResponse:
        """`/ui/models`: versions, their test metrics and figures, champion and challengers, shadow comparison."""
        serving = serving_of(request) if self.forwarded else None
        return _RENDERER.page("models.html", title="Models", nav="models", **views.models_view(self.services, serving))

    def figure(self, version: str, figure: str) -> FileResponse:
        """A PNG of a version's evaluation report (`models/<N>/report/`); versions are immutable, so cacheable."""
        number = parse_version(version)
        path = self.services.registry.repository.version_dir(number) / REPORT_DIR / figure
        if not FIGURE.fullmatch(figure) or not path.is_file():
            raise ModelNotFound(f"model version {number} has no report figure {figure[:80]!r}")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})

    def monitoring(self) -> HTMLResponse:
        """`/ui/monitoring`: volume and band mix, weekly labelled performance, drift runs, retrain decisions."""
        return _RENDERER.page(
            "monitoring.html", title="Monitoring", nav="monitoring",
            **views.monitoring_view(self.engine, self.volume.get(), self.outcomes.get()),
        )  # fmt: skip

    async def unknown(self, request: Request, path: str) -> Response:
        """Any other path under /ui/: a 404 page (or the JSON error)."""
        message = f"no page at /ui/{path[:200]}"
        if wants_html(request):
            return _RENDERER.page("error.html", 404, status=404, kind="NotFound", message=message, title="Not found")
        return error_response(404, "NotFound", message, [])


def router(pages: Pages, route_class: type[APIRoute] = PageRoute) -> APIRouter:
    """The pages' routes (the catch-all 404 last); `route_class` answers them (app/ui/process.py forwards)."""
    api = APIRouter(tags=["ui"], route_class=route_class, default_response_class=HTMLResponse)
    get: dict[str, Any] = {"methods": ["GET"], "responses": ERRORS}
    api.add_api_route("/ui/", pages.overview, summary="Web page: repositories in the prediction log", **get)
    api.add_api_route("/ui/repositories/{repository:path}", pages.repository, summary="Web page: one repository", **get)
    api.add_api_route("/ui/commits/{commit_id:path}", pages.commit, summary="Web page: one commit", **get)
    api.add_api_route("/ui/models", pages.models, summary="Web page: model versions", **get)
    api.add_api_route(
        "/ui/models/{version}/report/{figure}", pages.figure, summary="A report figure (PNG) of a model version",
        response_class=FileResponse, **get,
    )  # fmt: skip
    api.add_api_route("/ui/monitoring", pages.monitoring, summary="Web page: monitoring over time", **get)
    api.add_api_route("/ui/{path:path}", pages.unknown, methods=["GET"], include_in_schema=False)
    return api
