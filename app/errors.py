"""Domain errors of the service. No HTTP here: `app/api/errors.py` maps them to status codes in one table."""

from __future__ import annotations

from typing import Any


class CommitRiskError(Exception):
    """Base of every domain error; `details` is a JSON-serialisable list of specifics."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ModelNotReady(CommitRiskError):
    """No model is loaded (yet), so nothing can be scored."""


class ModelNotFound(CommitRiskError):
    """A version that does not exist on disk was asked for."""


class NotLogged(CommitRiskError):
    """A repository or commit the prediction log holds no prediction for."""


class InvalidVersion(CommitRiskError):
    """A version name that is not a positive integer (e.g. a path like `../x`)."""


class InvalidModel(CommitRiskError):
    """A model version exists but cannot be trusted: bad manifest, corrupt ONNX, failed self-test."""


class RepositoryError(CommitRiskError):
    """The models directory cannot be read or written (permissions, full disk); the message says what failed."""


class InvalidInput(CommitRiskError):
    """The client sent data the model cannot score (wrong shape, non-finite values, negative counts)."""


class BatchTooLarge(CommitRiskError):
    """More commits in one request than the configured maximum."""


class Unauthenticated(CommitRiskError):
    """A protected route (admin, or scoring with client tokens on) was called without a bearer token."""


class Forbidden(CommitRiskError):
    """A protected route was called with a wrong bearer token (or its tokens are not configured)."""


class NotEnoughData(CommitRiskError):
    """A monitoring computation has too few rows to say anything."""


class MalformedBody(CommitRiskError):
    """The request body is not parseable JSON (or not the binary framing it claims)."""


class BodyTooLarge(CommitRiskError):
    """The request body exceeds the configured byte limit."""


class DatabaseUnavailable(CommitRiskError):
    """The monitoring database cannot be reached right now; scoring goes on and the service reconnects by itself."""


class DriftUnavailable(CommitRiskError):
    """This process cannot compute drift: the `monitor` extra (evidently) is not installed."""


class UnsupportedMediaType(CommitRiskError):
    """A body whose Content-Type this route does not read (JSON routes read `application/json` only)."""


class RequestTimeout(CommitRiskError):
    """The request body did not arrive within the configured time."""


class Overloaded(CommitRiskError):
    """This process is already serving its configured maximum of concurrent requests; retry shortly."""


class PagesUnavailable(CommitRiskError):
    """The worker's page process cannot be reached or started right now; the next page request starts it again."""
