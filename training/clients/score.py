"""`commitrisk score`'s HTTP side: the /predict request from a mined row, its answer, and the CI verdict."""

from __future__ import annotations

from typing import Any

from app.contract import FEATURES
from training.mining.writer import CommitRow

BANDS = ("low", "medium", "high")


class ScoreError(Exception):
    """The service could not be reached or refused the request; the message is one line."""


def predict_payload(row: CommitRow, repository_id: str) -> dict[str, Any]:
    """The JSON body of POST /predict: the 15 metrics plus the commit's identity and time."""
    payload: dict[str, Any] = {name: row.metrics[name] for name in FEATURES}
    payload["commit_id"] = f"{repository_id}_{row.sha}"
    payload["repository"] = repository_id
    payload["author_date"] = int(row.author_date)
    return payload


def post_predict(url: str, payload: dict[str, Any], timeout: float, token: str | None = None) -> dict[str, Any]:
    """POST the payload to {url}/predict (with the client token, when given) and return the 200 answer; anything
    else is a ScoreError."""
    import httpx

    endpoint = url.rstrip("/") + "/predict"
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        response = httpx.post(endpoint, json=payload, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        raise ScoreError(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        detail = response.reason_phrase
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            detail = f"{error.get('type', 'error')}: {error.get('message', '')}"
        raise ScoreError(f"{endpoint}: HTTP {response.status_code} {detail}")
    if not isinstance(body, dict) or body.get("risk_band") not in BANDS:
        raise ScoreError(f"{endpoint}: answer is not a prediction (no valid risk_band)")
    return body


def fails_gate(band: str, fail_above: str | None) -> bool:
    """True when the risk band is at or above the --fail-above band."""
    return fail_above is not None and BANDS.index(band) >= BANDS.index(fail_above)
