"""Explanations of logged rows: the same factors as /predict, every metric's and dimension's effect, versions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.contract import FEATURES
from app.errors import ModelNotFound
from app.ui.explanation import DIMENSIONS, Explainer


def test_dimensions_cover_the_15_metrics_once() -> None:
    assert sorted(f for names in DIMENSIONS.values() for f in names) == sorted(FEATURES)


def test_the_factors_are_those_predict_answered(client: TestClient, commit: dict[str, Any]) -> None:
    answer = client.post("/predict", json=commit).json()
    registry = client.app.state.services.registry  # type: ignore[attr-defined]
    explanation = Explainer(registry, top_k=3).explain(1, [commit[name] for name in FEATURES])
    assert [(f.feature, f.value, f.median, f.effect, f.reason) for f in explanation.factors] == [
        (f["feature"], f["value"], f["median"], f["effect"], f["reason"]) for f in answer["factors"]
    ]
    assert explanation.probability == pytest.approx(answer["probability"], abs=1e-6)


def test_effects_set_one_metric_or_one_dimension_to_its_training_median(
    client: TestClient, commit: dict[str, Any]
) -> None:
    registry = client.app.state.services.registry  # type: ignore[attr-defined]
    predictor = registry.build(1)
    row = np.array([[commit[name] for name in FEATURES]], dtype=np.float32)
    medians = {f.name: f.median for f in predictor.manifest.features}
    explanation = Explainer(registry, top_k=3).explain(1, row[0].tolist())
    base = predictor.probabilities(row)[0]
    for dimension in explanation.dimensions:
        assert [e.feature for e in dimension.effects] == list(DIMENSIONS[dimension.name])
        changed = row.copy()
        for effect in dimension.effects:
            one = row.copy()
            one[0, FEATURES.index(effect.feature)] = medians[effect.feature]
            assert effect.effect == pytest.approx(base - predictor.probabilities(one)[0], abs=1e-6)
            assert effect.median == pytest.approx(medians[effect.feature])
            changed[0, FEATURES.index(effect.feature)] = medians[effect.feature]
        assert dimension.score == pytest.approx(base - predictor.probabilities(changed)[0], abs=1e-6)
    la = next(e for d in explanation.dimensions for e in d.effects if e.feature == "la")
    assert la.reason.startswith("la = 1,250 (training median ")


def test_other_versions_are_loaded_once_and_missing_ones_explain_nothing(
    client: TestClient, commit: dict[str, Any]
) -> None:
    registry = client.app.state.services.registry  # type: ignore[attr-defined]
    explainer = Explainer(registry, top_k=2)
    assert explainer.predictor(1) is registry.served.champion  # the served model is reused
    two = explainer.predictor(2)
    assert two.version == 2 and explainer.predictor(2) is two
    rows = [[commit[name] for name in FEATURES]] * 2
    reasons = explainer.reasons(2, rows)
    assert reasons is not None and len(reasons) == 2 and len(reasons[0]) >= 1
    assert explainer.reasons(9, rows) is None
    with pytest.raises(ModelNotFound):
        explainer.explain(9, rows[0])
