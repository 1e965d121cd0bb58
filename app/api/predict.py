"""`POST /predict` and `POST /predict/batch`: validate, score with the served champion, answer with orjson."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.answer import json_answer
from app.api.body import parse_json, quick_json, read_json_bytes, validate
from app.api.deps import DirectRoute, flag_parameter, query_flag, services_of
from app.api.tokens import require_client
from app.errors import BatchTooLarge
from app.monitoring.prediction_log import new_request_id, request_ids
from app.plain import plain_batch, plain_commit
from app.predictor import Prediction, Predictor
from app.schemas import BatchIn, BatchOut, CommitIn, ErrorOut, PredictionOut, request_body
from app.scoring import score
from app.services import Services

router = APIRouter(tags=["predict"], route_class=DirectRoute)

# Above this many commits the scoring leaves the event loop so small requests keep flowing.
THREADPOOL_ROWS = 64
# 401/403 only with COMMITRISK_CLIENT_TOKENS set; 415 for a body that is not declared JSON.
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 413, 415, 422, 503)}
EXPLAIN = flag_parameter("explain", True, "false skips the factors (faster)")


_EXPLAIN: dict[bytes, bool] = {}  # query string → `explain`: clients send the same few (parsing costs ~4 µs)


def explain_of(request: Request) -> bool:
    """The `explain` flag of this request (InvalidInput when it is not a boolean)."""
    query = request.scope["query_string"]
    explain = _EXPLAIN.get(query)
    if explain is None:
        explain = query_flag(request, "explain", True)
        if len(_EXPLAIN) < 256:
            _EXPLAIN[query] = explain
    return explain


def answer(request_id: str | None, commit_id: str | None, p: Prediction) -> dict[str, Any]:
    """The JSON object of one prediction (PredictionOut)."""
    return {
        "request_id": request_id,
        "commit_id": commit_id,
        "probability": p.probability,
        "buggy": p.buggy,
        "risk_band": p.risk_band,
        "threshold": p.threshold,
        "model_version": p.model_version,
        "factors": p.factors,
    }


def answers(
    services: Services,
    predictor: Predictor,
    rows: Sequence[Sequence[float]],
    commit_ids: Sequence[str | None],
    repositories: Sequence[str | None],
    explain: bool,
) -> list[dict[str, Any]]:
    """Score commits (their 15 metrics, ids and repositories) through the one scoring path; one answer per commit,
    in order."""
    features = np.array(rows, dtype=np.float64)  # exact inputs, for the log
    request_id = new_request_id()
    predictions, _ = score(
        services, predictor, features, features.astype(np.float32), explain, request_id, commit_ids, repositories
    )
    ids = request_ids(request_id, len(rows))
    return [answer(i, c, p) for i, c, p in zip(ids, commit_ids, predictions, strict=True)]


@router.post(
    "/predict",
    summary="Score one commit",
    response_model=None,
    responses={200: {"model": PredictionOut}, **ERRORS},
    openapi_extra={**request_body(CommitIn), "parameters": [EXPLAIN]},
)
async def predict(request: Request) -> Response:
    """Probability, label, risk band and (unless `explain=false`) the top factors of one commit."""
    services = services_of(request)
    require_client(request, services.settings)
    explain = explain_of(request)
    body = await read_json_bytes(request, services.settings.max_body_bytes)
    row: Sequence[float]
    plain = plain_commit(quick_json(body))
    if plain is None:  # not the common shape: pydantic validates (and words the 400/422)
        commit = validate(CommitIn, parse_json(body))
        row, commit_id, repository = commit.row(), commit.commit_id, commit.repository
    else:
        row, commit_id, repository = plain
    predictor = services.registry.require().champion
    # One commit is tens of microseconds of onnxruntime: a threadpool hop would cost more than it saves.
    [scored] = answers(services, predictor, [row], [commit_id], [repository], explain)
    return json_answer(scored)


@router.post(
    "/predict/batch",
    summary="Score up to max_batch commits, order preserved",
    response_model=None,
    responses={200: {"model": BatchOut}, **ERRORS},
    openapi_extra={**request_body(BatchIn), "parameters": [EXPLAIN]},
)
async def predict_batch(request: Request) -> Response:
    """One answer per commit, in request order; 413 above `max_batch` commits."""
    services = services_of(request)
    require_client(request, services.settings)
    explain = explain_of(request)
    body = await read_json_bytes(request, services.settings.max_body_bytes)
    limit = services.settings.max_batch
    columns = plain_batch(quick_json(body), limit)
    if columns is None:  # not the common shape, or too many commits: parsed and validated as always (400/413/422)
        data = parse_json(body)
        if isinstance(data, dict) and isinstance(data.get("commits"), list) and len(data["commits"]) > limit:
            raise BatchTooLarge(
                f"{len(data['commits'])} commits in one request; the limit is {limit}",
                [{"field": "commits", "message": f"at most {limit} items"}],
            )
        commits = validate(BatchIn, data).commits
        columns = ([c.row() for c in commits], [c.commit_id for c in commits], [c.repository for c in commits])
    predictor = services.registry.require().champion
    if not columns[0]:
        return json_answer({"model_version": predictor.version, "predictions": []})
    if len(columns[0]) > THREADPOOL_ROWS:
        scored = await run_in_threadpool(answers, services, predictor, *columns, explain)
    else:
        scored = answers(services, predictor, *columns, explain)
    return json_answer({"model_version": predictor.version, "predictions": scored})
