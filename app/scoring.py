"""The one scoring path of every route: score → observe metrics → hand the answered batch to the sink.

`/predict`, `/predict/batch` and `/v2/.../infer` call `score`; the sink (app/main.py's chain: shadow scoring,
then the prediction log) never blocks and never changes the answer. Tuned for the hot path: one
PredictionBatch and a few arrays per request, no per-commit objects beyond the predictions themselves.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from app.monitoring.prediction_log import PredictionBatch
from app.predictor import Prediction, Predictor
from app.services import Services


def score(
    services: Services,
    predictor: Predictor,
    features: np.ndarray,
    matrix: np.ndarray,
    explain: bool,
    request_id: str | None = None,
    commit_ids: Sequence[str | None] | None = None,
    repositories: Sequence[str | None] | None = None,
) -> tuple[list[Prediction], PredictionBatch]:
    """Score `matrix` (float32 [n, 15]; `features` the same values as logged, float64) with `predictor`.

    Records the prediction metrics, hands the batch to the services' sink and returns both: the predictions
    for a JSON answer, the batch (probabilities, labels as arrays) for a tensor answer.
    """
    predictions, probabilities = predictor.scores(matrix, explain, services.settings.explain_top_k)
    services.metrics.observe_predictions(predictions, predictor.out_of_range(matrix))
    batch = PredictionBatch(
        time=time.time(),
        request_id=request_id,
        features=features,
        probabilities=probabilities,
        labels=probabilities >= predictor.threshold,  # each prediction's `buggy`: the same comparison
        risk_bands=[p.risk_band for p in predictions],
        model_version=predictor.version,
        commit_ids=commit_ids,
        repositories=repositories,
    )
    services.sink(batch)
    return predictions, batch
