"""The one table from domain error to HTTP status, and the handlers that render every error alike.

Body shape everywhere: `{"error": {"type": str, "message": str, "details": list}}`. The one domain-error
handler also counts inputs refused before scoring (REJECTIONS) for /monitoring/data-quality.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app import errors

log = logging.getLogger("commitrisk.api")

# An error body stays small whatever the input: a body with 250,000 unknown keys is one short answer, not 21 MB.
MAX_DETAILS = 50  # details at most (the last one counting those not listed); the message still counts them all
MAX_TEXT = 300  # characters of one detail string at most (an unknown key can be megabytes long)
MAX_MESSAGE = 2000  # characters of the message at most
RETRY_AFTER_SECONDS = 1  # what an Overloaded answer tells the client to wait
EMPTY: Mapping[str, str] = MappingProxyType({})

STATUS: dict[type[errors.CommitRiskError], int] = {
    errors.MalformedBody: 400,
    errors.InvalidVersion: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.ModelNotFound: 404,
    errors.RequestTimeout: 408,  # the body did not arrive in COMMITRISK_BODY_TIMEOUT_SECONDS
    errors.NotLogged: 404,  # a repository or commit the web pages were asked for and the log never saw
    errors.InvalidModel: 409,  # the request was fine; the model on disk is not
    errors.NotEnoughData: 409,
    errors.BodyTooLarge: 413,
    errors.BatchTooLarge: 413,
    errors.UnsupportedMediaType: 415,  # JSON routes read application/json only (no cross-site form posts)
    errors.InvalidInput: 422,
    errors.RepositoryError: 503,  # models/ could not be read or written (permissions, full disk); nothing changed
    errors.ModelNotReady: 503,
    errors.DriftUnavailable: 503,  # a capability this image lacks (the `monitor` extra), not a server fault
    errors.Overloaded: 503,  # COMMITRISK_MAX_CONCURRENT_REQUESTS reached in this process; Retry-After says when
    errors.PagesUnavailable: 503,  # the web pages' process (app/ui/process.py) is (re)starting; scoring goes on
    errors.DatabaseUnavailable: 503,  # the monitoring database is down; scoring goes on, reconnection is automatic
}


# Inputs refused before scoring, by reason, for /monitoring/data-quality (the talk's "data attributes").
REJECTIONS: dict[type[errors.CommitRiskError], str] = {
    errors.InvalidInput: "invalid_input",
    errors.BatchTooLarge: "batch_too_large",
    errors.MalformedBody: "malformed_body",
    errors.BodyTooLarge: "body_too_large",
}
SCORING_PATHS = ("/predict", "/v2/")


def status_of(exc: errors.CommitRiskError) -> int:
    """Status for a domain error: the nearest class in its hierarchy that the table knows (else 500)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def rejection_of(exc: errors.CommitRiskError) -> str | None:
    """The rejection reason of an error that refuses an input (nearest class in REJECTIONS), else None."""
    for cls in type(exc).__mro__:
        if cls in REJECTIONS:
            return REJECTIONS[cls]
    return None


def _short(text: str, hidden: Mapping[str, str]) -> str:
    for secret, label in hidden.items():
        text = text.replace(secret, label)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def truncation(rest: int) -> dict[str, Any]:
    """The last detail of a cut list: how many more there were."""
    return {"field": None, "message": f"{rest:,} more not listed", "type": "truncated"}


def bounded(details: list[dict[str, Any]], hidden: Mapping[str, str] = EMPTY) -> list[dict[str, Any]]:
    """At most MAX_DETAILS details (the last one then a `truncation` counting the rest), strings cut to MAX_TEXT."""
    cut = len(details) > MAX_DETAILS
    listed = [
        {key: _short(value, hidden) if isinstance(value, str) else value for key, value in detail.items()}
        if isinstance(detail, dict)
        else detail
        for detail in details[: MAX_DETAILS - 1 if cut else MAX_DETAILS]
    ]
    if cut:
        listed.append(truncation(len(details) - len(listed)))
    return listed


def error_response(
    status: int,
    kind: str,
    message: str,
    details: list[dict[str, Any]],
    hidden: Mapping[str, str] = EMPTY,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one error body shape, bounded in size; `hidden` strings (e.g. the models path) are replaced by labels."""
    text = _short(message, hidden) if len(message) <= MAX_MESSAGE else _short(message[:MAX_MESSAGE] + "…", hidden)
    body = orjson.dumps({"error": {"type": kind, "message": text, "details": bounded(details, hidden)}})
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500 or status == 408:
        # A pooled client must not reuse this connection: after a server error its state is unknown, and after a
        # body timeout the rest of that body may still arrive. (A 413 keeps it: the server reads and drops the
        # rest, where closing on unread bytes would reset the connection before the client reads the 413.)
        headers["Connection"] = "close"
    return Response(body, status_code=status, media_type="application/json", headers=headers or None)


def render(exc: errors.CommitRiskError, hidden: Mapping[str, str] = EMPTY) -> Response:
    """Response for a domain error in the one body shape, its status from STATUS."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(exc, errors.Overloaded) else None
    return error_response(status_of(exc), type(exc).__name__, exc.message, exc.details, hidden, headers)


def field_details(problems: Iterable[Any]) -> list[dict[str, Any]]:
    """pydantic error dicts → `[{"field": "commits.3.la", "message": …, "type": …}]`."""
    return [
        {
            "field": ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or None,
            "message": problem.get("msg", "invalid value"),
            "type": problem.get("type", "value_error"),
        }
        for problem in problems
    ]


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "MalformedBody", "request body is not valid JSON", field_details(problems))
    return error_response(422, "InvalidInput", "request validation failed", field_details(problems))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    try:
        kind = HTTPStatus(exc.status_code).phrase.replace(" ", "")
    except ValueError:
        kind = "HTTPError"
    return error_response(exc.status_code, kind, str(exc.detail), [])


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "InternalError", "internal server error", [])


def install_error_handlers(
    app: FastAPI,
    on_rejection: Callable[[str], None] | None = None,
    hidden: Callable[[Request], Mapping[str, str]] | None = None,
) -> None:
    """Register the handlers: domain errors, request validation, HTTP errors, anything else.

    `on_rejection(reason)` is called for every input a scoring route refuses (see REJECTIONS); `hidden(request)`
    names the strings a domain error's message must not show this client (e.g. the absolute models path).
    """

    async def domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.CommitRiskError)
        if on_rejection is not None and request.url.path.startswith(SCORING_PATHS):
            reason = rejection_of(exc)
            if reason is not None:
                on_rejection(reason)
        return render(exc, EMPTY if hidden is None else hidden(request))

    app.add_exception_handler(errors.CommitRiskError, domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
