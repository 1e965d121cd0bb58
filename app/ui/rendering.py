"""HTML out: the Jinja2 templates (autoescaped), their formatting filters, and error pages.

A request that accepts `text/html` (a browser) gets an error page with the status of the one table in
app/api/errors.py; any other client gets the one JSON error shape, as on every other route.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.api.errors import render, status_of
from app.errors import CommitRiskError
from app.reasons import format_number
from app.ui.access import CHALLENGE
from app.ui.charts import points

TEMPLATES = Path(__file__).parent / "templates"
BAND_LABELS = {"low": "low risk", "medium": "medium risk", "high": "high risk"}


def utc(seconds: float | None, precision: str = "minutes") -> str:
    """`2026-11-30 01:23 UTC` (or with seconds); an em dash for None."""
    if seconds is None:
        return "—"
    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if precision == "seconds" else "%Y-%m-%d %H:%M UTC")


def day(seconds: float) -> str:
    """`2026-11-30`: the UTC date of a Unix time."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def percent(value: float | None, digits: int = 0) -> str:
    """`12%`; an em dash for None."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def metric(value: float | None, digits: int = 3) -> str:
    """A metric with fixed decimals; an em dash where undefined."""
    return "—" if value is None else f"{value:.{digits}f}"


def count(value: int | None) -> str:
    """Thousands separators."""
    return "—" if value is None else f"{value:,}"


def short_sha(commit_id: str | None) -> str:
    """The SHA part of a commit id (`repo_<sha>` as `commitrisk score` sends it, or a bare SHA), 12 characters."""
    if not commit_id:
        return "—"
    tail = commit_id.rsplit("_", 1)[-1]
    is_sha = len(tail) >= 7 and all(ch in "0123456789abcdef" for ch in tail.lower())
    return (tail if is_sha else commit_id)[:12]


def path_part(value: str) -> str:
    """A path segment: everything escaped, `/` included (the routes decode it again)."""
    return quote(value, safe="")


def query(params: dict[str, Any], **changes: Any) -> str:
    """`?a=1&b=2` from `params` with `changes` applied; empty and None values are left out."""
    merged = {**params, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def environment() -> Environment:
    """The pages' Jinja2 environment: autoescaped HTML, undefined variables fail loudly in tests."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc=utc, day=day, percent=percent, metric=metric, short_sha=short_sha, path_part=path_part, thousands=count,
        number=format_number, points=points,
    )  # fmt: skip
    env.globals.update(query=query, BAND_LABELS=BAND_LABELS)
    return env


def wants_html(request: Request) -> bool:
    """True for browsers (their Accept header names text/html)."""
    return "text/html" in request.headers.get("accept", "")


class Renderer:
    """Renders the pages' templates; one per app."""

    def __init__(self) -> None:
        self.env = environment()

    def page(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """A full page."""
        return HTMLResponse(self.env.get_template(template).render(**context), status_code=status_code)

    def error(self, request: Request, exc: CommitRiskError) -> Response:
        """The error as a page for a browser, as the one JSON shape for anything else."""
        if not wants_html(request):
            return render(exc)
        status = status_of(exc)
        page = self.page("error.html", status, status=status, kind=type(exc).__name__, error=exc, title="Error")
        if status == 401:  # the browser asks for the token (as the password) and sends it with every page
            page.headers["WWW-Authenticate"] = CHALLENGE
        return page
