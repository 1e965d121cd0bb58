"""`POST /predict` and `POST /predict/batch`: validate, score with the served champion, answer with orjson."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import DirectRoute, flag_parameter, query_flag, read_json, validate
from app.errors import BatchTooLarge
from app.monitoring.prediction_log import PredictionBatch, request_ids
from app.predictor import Prediction, Predictor
from app.schemas import BatchIn, BatchOut, CommitIn, ErrorOut, PredictionOut, request_body

router = APIRouter(tags=["predict"], route_class=DirectRoute)

# Above this many commits the scoring leaves the event loop so small requests keep flowing.
THREADPOOL_ROWS = 64
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 413, 422, 503)}
EXPLAIN = flag_parameter("explain", True, "false skips the factors (faster)")


@dataclass(frozen=True, slots=True)
class ScoredCommit:
    """One answered commit: the id its answer carries, its input and its prediction."""

    request_id: str | None
    commit: CommitIn
    prediction: Prediction


def answer(scored: ScoredCommit) -> dict[str, Any]:
    """The JSON object of one prediction (PredictionOut)."""
    p = scored.prediction
    return {
        "request_id": scored.request_id,
        "commit_id": scored.commit.commit_id,
        "probability": p.probability,
        "buggy": p.buggy,
        "risk_band": p.risk_band,
        "threshold": p.threshold,
        "model_version": p.model_version,
        "factors": p.factors,
    }


def score(request: Request, predictor: Predictor, commits: Sequence[CommitIn], explain: bool) -> list[ScoredCommit]:
    """Score commits with one predictor, record metrics, hand the batch to the prediction sink."""
    state = request.app.state
    features = np.array([c.row() for c in commits], dtype=np.float64)  # exact inputs, for the log
    matrix = features.astype(np.float32)
    predictions = predictor.predict(matrix, explain, state.settings.explain_top_k)
    state.metrics.observe_predictions(predictions, predictor.out_of_range(matrix))
    request_id = os.urandom(16).hex()  # uuid4-strength, a third of the cost
    ids = request_ids(request_id, len(commits))
    scored = [ScoredCommit(i, c, p) for i, c, p in zip(ids, commits, predictions, strict=True)]
    sink = state.prediction_sink
    if sink is not None:
        sink(
            PredictionBatch(
                time=time.time(),
                request_id=request_id,
                features=features,
                probabilities=np.fromiter((p.probability for p in predictions), np.float64, len(predictions)),
                labels=np.fromiter((p.buggy for p in predictions), bool, len(predictions)),
                risk_bands=[p.risk_band for p in predictions],
                model_version=predictor.version,
                commit_ids=[c.commit_id for c in commits],
                repositories=[c.repository for c in commits],
            )
        )
    return scored


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


@router.post(
    "/predict",
    summary="Score one commit",
    response_model=None,
    responses={200: {"model": PredictionOut}, **ERRORS},
    openapi_extra={**request_body(CommitIn), "parameters": [EXPLAIN]},
)
async def predict(request: Request) -> Response:
    """Probability, label, risk band and (unless `explain=false`) the top factors of one commit."""
    state = request.app.state
    explain = query_flag(request, "explain", True)
    commit = validate(CommitIn, await read_json(request, state.settings.max_body_bytes))
    predictor = state.registry.require().champion
    # One commit is tens of microseconds of onnxruntime: a threadpool hop would cost more than it saves.
    [scored] = score(request, predictor, [commit], explain)
    return _json(answer(scored))


@router.post(
    "/predict/batch",
    summary="Score up to max_batch commits, order preserved",
    response_model=None,
    responses={200: {"model": BatchOut}, **ERRORS},
    openapi_extra={**request_body(BatchIn), "parameters": [EXPLAIN]},
)
async def predict_batch(request: Request) -> Response:
    """One answer per commit, in request order; 413 above `max_batch` commits."""
    state = request.app.state
    explain = query_flag(request, "explain", True)
    data = await read_json(request, state.settings.max_body_bytes)
    limit = state.settings.max_batch
    if isinstance(data, dict) and isinstance(data.get("commits"), list) and len(data["commits"]) > limit:
        raise BatchTooLarge(
            f"{len(data['commits'])} commits in one request; the limit is {limit}",
            [{"field": "commits", "message": f"at most {limit} items"}],
        )
    batch = validate(BatchIn, data)
    predictor = state.registry.require().champion
    if not batch.commits:
        return _json({"model_version": predictor.version, "predictions": []})
    if len(batch.commits) > THREADPOOL_ROWS:
        scored = await run_in_threadpool(score, request, predictor, batch.commits, explain)
    else:
        scored = score(request, predictor, batch.commits, explain)
    return _json({"model_version": predictor.version, "predictions": [answer(s) for s in scored]})
