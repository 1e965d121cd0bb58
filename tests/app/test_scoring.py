"""The one scoring path: predictions, their metrics and exactly one batch for the sink, whatever the route."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from app.contract import FEATURES
from app.errors import InvalidInput
from app.main import build_services
from app.monitoring.prediction_log import PredictionBatch
from app.scoring import score
from app.services import Services


@pytest.fixture
def services(settings: Any) -> Iterator[Services]:
    """Real services (champion version 1, shadow → prediction log chain), not started: nothing runs behind."""
    built = build_services(settings)
    yield built
    built.monitoring.stop()
    built.registry.loader.shutdown()


def matrices(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    features = np.array(rows, dtype=np.float64)
    return features, features.astype(np.float32)


def test_score_observes_metrics_and_hands_one_batch_to_the_sink(services: Services, commit: dict[str, Any]) -> None:
    received: list[PredictionBatch] = []
    listening = dataclasses.replace(services, sink=received.append)
    predictor = services.registry.require().champion
    big = [float(commit[f]) for f in FEATURES]  # a 1,250-line change by a first-time author
    wild = [*big[:4], 1e9, *big[5:]]  # la far above the training range
    features, matrix = matrices([big, wild])
    predictions, batch = score(listening, predictor, features, matrix, True, "req", ["a", "b"], ["r", None])
    assert received == [batch] and batch.rows == 2 == len(predictions)
    assert batch.features is features and batch.request_id == "req" and batch.model_version == 1
    assert batch.commit_ids == ["a", "b"] and batch.repositories == ["r", None]
    assert batch.probabilities.tolist() == [p.probability for p in predictions]
    assert batch.labels.tolist() == [p.buggy for p in predictions]
    assert batch.risk_bands == [p.risk_band for p in predictions]
    assert predictions[0].factors  # explained: the top factors of a risky commit
    get = services.metrics.registry.get_sample_value
    assert get("commitrisk_prediction_probability_count") == 2
    assert get("commitrisk_input_out_of_range_total", {"feature": "la"}) == 1


def test_unexplained_tensor_scoring_has_no_ids(services: Services) -> None:
    received: list[PredictionBatch] = []
    predictor = services.registry.require().champion
    features, matrix = matrices([[1.0] * len(FEATURES)] * 3)
    predictions, batch = score(dataclasses.replace(services, sink=received.append), predictor, features, matrix, False)
    assert [p.factors for p in predictions] == [[], [], []]
    assert batch.request_id is None and batch.commit_ids is None and received == [batch]


def test_a_bad_matrix_is_refused_before_anything_is_recorded(services: Services) -> None:
    received: list[PredictionBatch] = []
    predictor = services.registry.require().champion
    features, matrix = matrices([[1.0] * (len(FEATURES) - 1)])
    with pytest.raises(InvalidInput, match=r"\[N, 15\]"):
        score(dataclasses.replace(services, sink=received.append), predictor, features, matrix, True)
    assert received == []
    assert services.metrics.registry.get_sample_value("commitrisk_prediction_probability_count") == 0


def test_the_built_chain_logs_what_was_scored(services: Services) -> None:
    predictor = services.registry.require().champion
    features, matrix = matrices([[2.0] * len(FEATURES)] * 4)
    services.monitoring.start(schedule=False)
    score(services, predictor, features, matrix, False, "req", ["a", "b", "c", "d"])
    services.monitoring.log.close()  # flush the write-behind queue
    window = services.monitoring.store.window()
    assert window.rows == 4 and sorted(window.commit_id) == ["a", "b", "c", "d"]  # type: ignore[type-var]
    assert window.features["la"].tolist() == [2.0] * 4
