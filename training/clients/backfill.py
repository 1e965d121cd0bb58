"""`commitrisk score --since/--range`: a range's rows scored through `/predict/batch` in chunks, once per model.

Each chunk: ask `POST /monitoring/logged` which of its commits the served version has already logged, then
score the others. A chunk that meets a 503 (overloaded, model not ready, database down) or a broken connection
is retried as a whole with exponential back-off (tenacity), at least the server's Retry-After: asking again
first means a re-sent chunk skips what its lost answer had logged. A re-run of the same range adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from training.clients.score import BANDS, ScoreError, predict_payload
from training.mining.writer import CommitRow

RETRIED_STATUS = frozenset({502, 503, 504})  # the server or its proxy, for now; anything else will not change


class Retryable(ScoreError):
    """A failure that may pass: a 503-like answer or a connection problem; `after` is the server's Retry-After."""

    def __init__(self, message: str, after: float = 0.0) -> None:
        super().__init__(message)
        self.after = after


@dataclass
class BackfillSummary:
    """What a backfill did: commits scored now, already logged (skipped), and the bands of the scored ones."""

    model_version: int | None = None
    scored: int = 0
    already_logged: int = 0
    bands: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BANDS, 0))
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One chunk's outcome: the version that answered, commits skipped as logged, bands of the scored ones."""

    version: int
    already_logged: int
    bands: list[str]


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('type', 'error')}: {error.get('message', '')}"
    except (ValueError, AttributeError):
        return response.reason_phrase


def _call(client: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    """One request; the JSON answer of a 200, Retryable for what may pass, ScoreError for the rest."""
    try:
        response = client.request(method, path, json=body)
    except httpx.TransportError as exc:  # refused, reset, timed out: the server may be restarting
        raise Retryable(f"{client.base_url}{path}: {type(exc).__name__}: {exc}") from exc
    if response.status_code in RETRIED_STATUS:
        try:
            after = float(response.headers.get("retry-after", 0))
        except ValueError:
            after = 0.0
        raise Retryable(f"{client.base_url}{path}: HTTP {response.status_code} {_message(response)}", after)
    if response.status_code != 200:
        raise ScoreError(f"{client.base_url}{path}: HTTP {response.status_code} {_message(response)}")
    try:
        return response.json()
    except ValueError as exc:
        raise ScoreError(f"{client.base_url}{path}: answer is not JSON") from exc


def served_version(client: httpx.Client) -> int:
    """The model version the service scores with (GET /health/ready)."""
    return int(_call(client, "GET", "/health/ready")["model_version"])


def score_chunk(client: httpx.Client, version: int, payloads: list[dict[str, Any]]) -> ChunkResult:
    """Score the chunk's commits not yet logged by `version` (a champion promoted meanwhile answers with its
    own version, taken for the next chunks)."""
    ids = [p["commit_id"] for p in payloads]
    logged = set(_call(client, "POST", "/monitoring/logged", {"model_version": version, "commit_ids": ids})["logged"])
    todo = [p for p in payloads if p["commit_id"] not in logged]
    if not todo:
        return ChunkResult(version, len(payloads), [])
    answer = _call(client, "POST", "/predict/batch?explain=false", {"commits": todo})
    bands = [p["risk_band"] for p in answer["predictions"]]
    return ChunkResult(int(answer["model_version"]), len(payloads) - len(todo), bands)


def backfill(
    url: str,
    rows: list[CommitRow],
    repository_id: str,
    *,
    chunk: int = 500,
    attempts: int = 8,
    timeout: float = 60.0,
    token: str | None = None,
    max_wait: float = 30.0,
    advance: Callable[[int], None] = lambda _n: None,
) -> BackfillSummary:
    """Score `rows` (once per model version) in chunks of `chunk`; `advance` hears each finished chunk's size.

    ScoreError when the service refuses a chunk, or still fails after `attempts` tries of one chunk.
    """
    summary = BackfillSummary()
    # Jitter: clients refused together by an overloaded server do not all come back at the same instant.
    back_off = wait_exponential(multiplier=0.25, max=max_wait) + wait_random(0, 0.25)

    def wait(state: RetryCallState) -> float:
        summary.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        after = exc.after if isinstance(exc, Retryable) else 0.0
        return max(after, back_off(state))

    retrying = Retrying(retry=retry_if_exception_type(Retryable), stop=stop_after_attempt(attempts), wait=wait,
                        reraise=True)  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers) as client:
        version = retrying(served_version, client)
        summary.model_version = version
        for start in range(0, len(rows), chunk):
            payloads = [predict_payload(row, repository_id) for row in rows[start : start + chunk]]
            done = retrying(score_chunk, client, version, payloads)
            version = summary.model_version = done.version
            summary.already_logged += done.already_logged
            summary.scored += len(done.bands)
            for band in done.bands:
                summary.bands[band] += 1
            advance(len(payloads))
    return summary
