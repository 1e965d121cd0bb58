from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from app.contract import FEATURES, ModelManifest
from app.errors import InvalidInput, InvalidModel
from app.predictor import Predictor, feature_matrix


def load(models_dir: Path, version: int = 1, **changes: Any) -> Predictor:
    raw = json.loads((models_dir / str(version) / "manifest.json").read_text())
    raw.update(changes)
    manifest = ModelManifest.model_validate(raw)
    return Predictor.load(manifest, (models_dir / str(version) / "model.onnx").read_bytes())


def test_scores_match_the_self_test(models_dir: Path) -> None:
    predictor = load(models_dir)
    test = predictor.manifest.self_test
    got = predictor.probabilities(np.asarray(test.rows, dtype=np.float32))
    assert np.allclose(got, test.probabilities, atol=1e-6)


def test_predict_labels_bands_and_explains(models_dir: Path, commit: dict[str, Any]) -> None:
    predictor = load(models_dir)
    matrix = feature_matrix([[commit[f] for f in FEATURES]] * 3)
    explained = predictor.predict(matrix, explain=True, top_k=3)
    plain = predictor.predict(matrix, explain=False)
    assert len(explained) == 3 and all(p.factors == [] for p in plain)
    first = explained[0]
    assert first.probability == pytest.approx(plain[0].probability, abs=1e-6)
    assert first.buggy == (first.probability >= predictor.manifest.threshold)
    assert first.risk_band == predictor.manifest.bands.band(first.probability)
    effects = [f.effect for f in first.factors]
    assert all(e > 0 for e in effects)
    top = effects[:3]
    assert top == sorted(top, reverse=True)
    la = next(f for f in first.factors if f.feature == "la")
    assert la.reason.startswith("1,250 lines added (typical:")


def test_out_of_range_counts_per_feature(models_dir: Path) -> None:
    predictor = load(models_dir)
    row = [f.median for f in predictor.manifest.features]
    wild = list(row)
    wild[FEATURES.index("la")] = 10**9
    assert predictor.out_of_range(feature_matrix([row])) == {}
    assert predictor.out_of_range(feature_matrix([wild])) == {FEATURES.index("la"): 1}
    assert predictor.out_of_range(feature_matrix([wild, wild, row])) == {FEATURES.index("la"): 2}


def test_wrong_shape_is_invalid_input(models_dir: Path) -> None:
    with pytest.raises(InvalidInput):
        load(models_dir).predict(np.zeros((2, 14), dtype=np.float32))


def test_checksum_mismatch_is_rejected(models_dir: Path) -> None:
    with pytest.raises(InvalidModel, match="sha256"):
        load(models_dir, onnx_sha256="0" * 64)


def test_feature_list_mismatch_is_rejected(models_dir: Path) -> None:
    raw = json.loads((models_dir / "1" / "manifest.json").read_text())
    raw["features"][0]["name"] = "lines"
    with pytest.raises(InvalidModel, match="feature list"):
        load(models_dir, features=raw["features"])


def test_failed_self_test_is_rejected(models_dir: Path) -> None:
    raw = json.loads((models_dir / "1" / "manifest.json").read_text())
    raw["self_test"]["probabilities"][0] += 0.01
    with pytest.raises(InvalidModel, match="self-test failed") as info:
        load(models_dir, self_test=raw["self_test"])
    assert info.value.details[0]["field"] == "self_test.rows.0"


def test_corrupt_onnx_is_rejected(models_dir: Path) -> None:
    import hashlib

    blob = b"not an onnx graph"
    manifest = ModelManifest.model_validate(
        {
            **json.loads((models_dir / "1" / "manifest.json").read_text()),
            "onnx_sha256": hashlib.sha256(blob).hexdigest(),
        }
    )
    with pytest.raises(InvalidModel, match="onnxruntime cannot load"):
        Predictor.load(manifest, blob)


def test_a_linear_model_is_explained_by_its_exact_contributions(trained_models: Path, commit: dict[str, Any]) -> None:
    predictor = load(trained_models)
    explanation = predictor.manifest.explanation
    assert explanation is not None  # the pipeline publishes its logistic models with their terms
    matrix = feature_matrix([[commit[f] for f in FEATURES]])
    (answer,) = predictor.predict(matrix, explain=True, top_k=3)
    assert answer.factors and all(f.contribution is not None and f.contribution > 0 for f in answer.factors)
    top = [f.contribution for f in answer.factors][:3]
    assert top == sorted(top, reverse=True)
    logit = np.log(answer.probability / (1 - answer.probability))
    for factor in answer.factors:
        term = next(t for t in explanation.terms if t.name == factor.feature)
        # coefficient × deviation on the model's own scale, nothing perturbed.
        expected = term.coefficient * (np.log1p(factor.value) - term.mean) / term.scale
        assert factor.contribution == pytest.approx(expected, abs=1e-5)
        assert factor.median == pytest.approx(np.expm1(term.mean))
        assert factor.effect == pytest.approx(answer.probability - 1 / (1 + np.exp(-(logit - expected))), abs=1e-5)
    la = next(f for f in answer.factors if f.feature == "la")
    assert la.reason.startswith("1,250 lines added (typical:")


def test_perturbation_explains_models_without_linear_terms(models_dir: Path, commit: dict[str, Any]) -> None:
    predictor = load(models_dir)  # published by the test helper: no `explanation` in its manifest
    assert predictor.manifest.explanation is None
    (answer,) = predictor.predict(feature_matrix([[commit[f] for f in FEATURES]]), explain=True)
    assert answer.factors and all(f.contribution is None for f in answer.factors)


def test_an_explanation_that_does_not_reproduce_the_model_is_rejected(trained_models: Path) -> None:
    raw = json.loads((trained_models / "1" / "manifest.json").read_text())
    raw["explanation"]["terms"][4]["coefficient"] += 0.5  # `la`: no longer the model's
    with pytest.raises(InvalidModel, match="linear explanation does not reproduce"):
        load(trained_models, explanation=raw["explanation"])
    raw["explanation"]["terms"][0]["numerator"] = ["bogus"]
    with pytest.raises(InvalidModel, match=r"explanation is unusable: .*unknown metrics"):
        load(trained_models, explanation=raw["explanation"])


def test_remembered_reasons_read_as_freshly_formatted_ones(trained_models: Path, commit: dict[str, Any]) -> None:
    first, again = load(trained_models), load(trained_models)
    rows = [[commit[f] for f in FEATURES], [commit[f] * 3 for f in FEATURES], [commit[f] for f in FEATURES]]
    warm = first.predict(feature_matrix(rows), explain=True, top_k=5)  # the third row reuses the first's reasons
    assert warm[0] == warm[2] and first._reasons
    cold = [again.predict(feature_matrix([row]), explain=True, top_k=5)[0] for row in rows]
    # onnxruntime sums a batch's dot products in another order than one row's: the probabilities agree to float32
    # precision, not bit for bit (a few 1e-8); every reason, factor and band is the same.
    assert [p.probability for p in warm] == pytest.approx([p.probability for p in cold], rel=1e-6)
    assert [replace(p, probability=0.0) for p in warm] == [replace(p, probability=0.0) for p in cold]


@pytest.mark.parametrize("explain", [False, True])
def test_scores_hands_back_the_probabilities_the_predictions_carry(
    models_dir: Path, commit: dict[str, Any], explain: bool
) -> None:
    predictor = load(models_dir)  # a perturbation-explained model: its probabilities are a column of the block
    rows = [[commit[f] for f in FEATURES], [1.0] * len(FEATURES), [0.0] * len(FEATURES)]
    predictions, probabilities = predictor.scores(feature_matrix(rows), explain)
    assert probabilities.dtype == np.float64 and (probabilities.flags.owndata or not explain)  # not a view of a block
    assert probabilities.tolist() == [p.probability for p in predictions]
    assert (probabilities >= predictor.threshold).tolist() == [p.buggy for p in predictions]


def test_an_explained_prediction_encodes_as_its_fields(trained_models: Path, commit: dict[str, Any]) -> None:
    predictor = load(trained_models)
    rows = [[commit[f] for f in FEATURES], [0.0] * len(FEATURES)]  # the second: exp = 0 fires a rule
    for row in rows:
        (answer,) = predictor.predict(feature_matrix([row]), explain=True, top_k=3)
        assert answer.factors
        # orjson encodes a Factor from its __dict__ (app/api/predict.py answers with them as they are)
        assert orjson.loads(orjson.dumps(answer.factors)) == [asdict(f) for f in answer.factors]
        assert [f.contribution for f in answer.factors[:3]] == sorted(
            (f.contribution for f in answer.factors[:3]), reverse=True
        )
