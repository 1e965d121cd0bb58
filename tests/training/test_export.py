"""ONNX export: contract-shaped graph and probability parity with scikit-learn for every family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from app.contract import FEATURES, INPUT_NAME, LABEL_OUTPUT, PROBABILITY_OUTPUT
from training import calibration, data, export, model
from training.config import ALL_FAMILIES


@pytest.fixture(scope="module")
def commits(synthetic_commits_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic repository's mature commits (≈ 1,460 rows)."""
    frame, _ = data.drop_immature(data.load([synthetic_commits_dir / "alpha.csv"]).frame, 90)
    return data.features(frame), frame["buggy"].to_numpy()


def _fitted(family: str, X: np.ndarray, y: np.ndarray, seed: int, features: str = "relative_churn") -> model.Candidate:
    """A candidate fitted with the family's first seeded setting (members' first settings for the ensemble)."""
    params: dict[str, model.ParamValue] = {"features": features}
    for member in [family] if family != "ensemble" else ["logistic_regression", "random_forest", "gradient_boosting"]:
        setting = model.settings(member, budget=1, seed=seed)[0]  # type: ignore[arg-type]
        params.update({k if family != "ensemble" else f"{member}__{k}": v for k, v in setting.items()})
    return model.fixed(family, params, X, y, seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_export_has_parity_and_contract_io(family: str, commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    candidate = _fitted(family, X[:900], y[:900], 3)
    blob = export.to_onnx(candidate.estimator, len(FEATURES))
    graph = onnx.load_from_string(blob).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert [o.name for o in graph.output] == [LABEL_OUTPUT, PROBABILITY_OUTPUT]
    assert not any(node.op_type == "ZipMap" for node in graph.node)
    parity = export.check_parity(blob, candidate.estimator, X[900:], 1e-5)
    assert parity.rows == len(X) - 900 and parity.max_abs_diff <= 1e-5


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_raw_metric_models_still_export_with_parity(family: str, commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    candidate = _fitted(family, X[:900], y[:900], 3, "raw")
    blob = export.to_onnx(candidate.estimator, len(FEATURES))
    assert not any(node.op_type == "Div" for node in onnx.load_from_string(blob).graph.node)
    assert export.check_parity(blob, candidate.estimator, X[900:], 1e-5).max_abs_diff <= 1e-5


def test_log1p_is_exported_faithfully_on_extreme_values() -> None:
    X = np.array([[0.0] * 15, [1e6] * 15, [0.5] * 15, [3.0] * 15] * 10, dtype=np.float32)
    y = np.array([0, 1, 0, 1] * 10)
    candidate = _fitted("logistic_regression", X, y, 0)
    blob = export.to_onnx(candidate.estimator, 15)
    assert export.check_parity(blob, candidate.estimator, X, 1e-5).max_abs_diff <= 1e-5


def test_parity_failure_is_refused(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    first = _fitted("logistic_regression", X[:600], y[:600], 0)
    other = _fitted("gradient_boosting", X[:600], y[:600], 0)
    blob = export.to_onnx(first.estimator, 15)
    with pytest.raises(export.ExportError, match="ONNX parity failed"):
        export.check_parity(blob, other.estimator, X[600:], 1e-5)
    with pytest.raises(export.ExportError, match="at least one row"):
        export.check_parity(blob, first.estimator, X[:0], 1e-5)


def test_calibrated_model_exports_with_parity_and_same_ranking(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    candidate = _fitted("gradient_boosting", X[:700], y[:700], 0)
    platt = calibration.fit(y[700:900], model.predict(candidate.estimator, X[700:900]))
    assert platt.a > 0 and platt != calibration.IDENTITY
    calibrated = calibration.Calibrated(candidate.estimator, platt)
    blob = export.to_onnx(calibrated, 15)
    graph = onnx.load_from_string(blob).graph
    assert [o.name for o in graph.output] == [LABEL_OUTPUT, PROBABILITY_OUTPUT]
    assert export.check_parity(blob, calibrated, X[900:], 1e-5).max_abs_diff <= 1e-5
    raw, cooked = model.predict(candidate.estimator, X[900:]), export.onnx_probabilities(blob, X[900:])
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(platt.apply(raw), kind="stable"))
    assert np.allclose(cooked, platt.apply(raw), atol=1e-5)


def test_calibrated_ensemble_exports_with_parity_and_no_dead_constants(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    candidate = _fitted("ensemble", X[:700], y[:700], 0)
    platt = calibration.fit(y[700:900], model.predict(candidate.estimator, X[700:900]))
    assert platt != calibration.IDENTITY
    calibrated = calibration.Calibrated(candidate.estimator, platt)
    blob = export.to_onnx(calibrated, len(FEATURES))
    graph = onnx.load_from_string(blob).graph
    assert [o.name for o in graph.output] == [LABEL_OUTPUT, PROBABILITY_OUTPUT]
    # The voting graph reads its own probabilities to make a label: Platt must reroute that read too.
    assert sum(PROBABILITY_OUTPUT in node.output for node in graph.node) == 1
    used = {name for node in graph.node for name in node.input}
    assert all(init.name in used for init in graph.initializer)
    assert export.check_parity(blob, calibrated, X[900:], 1e-5).max_abs_diff <= 1e-5
    labels = _onnx_labels(blob, X[900:])
    assert np.array_equal(labels, (export.onnx_probabilities(blob, X[900:]) >= 0.5).astype(np.int64))


@pytest.mark.parametrize("features", ["relative_churn", "raw"])
def test_a_calibrated_logistic_regression_is_folded_into_its_linear_classifier(
    features: str, commits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = commits
    candidate = _fitted("logistic_regression", X[:700], y[:700], 0, features)
    platt = calibration.fit(y[700:900], model.predict(candidate.estimator, X[700:900]))
    assert platt != calibration.IDENTITY
    calibrated = calibration.Calibrated(candidate.estimator, platt)
    blob = export.to_onnx(calibrated, len(FEATURES))
    graph = onnx.load_from_string(blob).graph
    kinds = [node.op_type for node in graph.node]
    # The scaler and the twelve nodes of the appended map are gone: Platt and scaling live in the coefficients.
    assert kinds[-3:] == ["Add", "Log", "LinearClassifier"] and "Scaler" not in kinds and "Sigmoid" not in kinds
    assert not any(init.name.startswith("platt") for init in graph.initializer)
    assert [o.name for o in graph.output] == [LABEL_OUTPUT, PROBABILITY_OUTPUT]
    # Rows far outside the data too: the appended map clipped them at 1e-6 from 0 and 1, the fold is exact.
    extreme = np.vstack([X[900:], np.full((1, 15), 1e9), np.zeros((1, 15))]).astype(np.float32)
    assert export.check_parity(blob, calibrated, extreme, 1e-5).max_abs_diff <= 1e-5
    labels = _onnx_labels(blob, extreme)
    assert np.array_equal(labels, (export.onnx_probabilities(blob, extreme) >= 0.5).astype(np.int64))


def test_a_graph_without_a_logistic_classifier_is_not_folded(commits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = commits
    forest = export.to_onnx(_fitted("random_forest", X[:600], y[:600], 0).estimator, len(FEATURES))
    with pytest.raises(export.ExportError, match="cannot fold the Platt map"):
        export._fold_platt(forest, calibration.Platt(a=0.5, b=0.1))


def _onnx_labels(blob: bytes, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    (labels,) = session.run([LABEL_OUTPUT], {INPUT_NAME: X.astype(np.float32)})
    return np.asarray(labels)
