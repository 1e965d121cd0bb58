"""The one table from domain error to HTTP status, and the handlers that render every error alike.

Body shape everywhere: `{"error": {"type": str, "message": str, "details": list}}`. The one domain-error
handler also counts inputs refused before scoring (REJECTIONS) for /monitoring/data-quality.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app import errors

log = logging.getLogger("commitrisk.api")

STATUS: dict[type[errors.CommitRiskError], int] = {
    errors.MalformedBody: 400,
    errors.InvalidVersion: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.ModelNotFound: 404,
    errors.InvalidModel: 409,  # the request was fine; the model on disk is not
    errors.NotEnoughData: 409,
    errors.BodyTooLarge: 413,
    errors.BatchTooLarge: 413,
    errors.InvalidInput: 422,
    errors.RepositoryError: 503,  # models/ could not be written (permissions, full disk); nothing was changed
    errors.ModelNotReady: 503,
    errors.DriftUnavailable: 503,  # a capability this image lacks (the `monitor` extra), not a server fault
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


def error_response(status: int, kind: str, message: str, details: list[dict[str, Any]]) -> Response:
    """The one error body shape."""
    body = orjson.dumps({"error": {"type": kind, "message": message, "details": details}})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def render(exc: errors.CommitRiskError) -> Response:
    """Response for a domain error in the one body shape, its status from STATUS."""
    return error_response(status_of(exc), type(exc).__name__, exc.message, exc.details)


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


def install_error_handlers(app: FastAPI, on_rejection: Callable[[str], None] | None = None) -> None:
    """Register the handlers: domain errors, request validation, HTTP errors, anything else.

    `on_rejection(reason)` is called for every input a scoring route refuses (see REJECTIONS).
    """

    async def domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.CommitRiskError)
        if on_rejection is not None and request.url.path.startswith(SCORING_PATHS):
            reason = rejection_of(exc)
            if reason is not None:
                on_rejection(reason)
        return render(exc)

    app.add_exception_handler(errors.CommitRiskError, domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
