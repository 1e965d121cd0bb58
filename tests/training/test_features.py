"""Relative churn: hand-worked ratios, the floor for new files and empty commits, and its ONNX twin."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from app.contract import FEATURES
from training import export, model
from training import features as churn

AT = {name: i for i, name in enumerate(FEATURES)}


def commit(**metrics: float) -> list[float]:
    row = [0.0] * len(FEATURES)
    for name, value in metrics.items():
        row[AT[name]] = value
    return row


def test_ratios_are_appended_in_order_with_hand_worked_values() -> None:
    X = np.array([
        commit(la=30, ld=10, lt=200, nf=4, nuc=6),  # an ordinary change
        commit(la=50, ld=0, lt=0, nf=1, nuc=0),  # a new file: lt = 0, the floor of 1 applies
        commit(),  # nothing touched: nf = 0 too
    ])  # fmt: skip
    out = churn.RelativeChurn().fit(X).transform(X)
    assert out.shape == (3, len(FEATURES) + len(churn.RATIOS))
    assert np.array_equal(out[:, : len(FEATURES)], X)
    assert churn.RATIO_NAMES == ("la/lt", "ld/lt", "lt/nf", "nuc/nf", "la+ld/nf")
    assert np.allclose(out[0, len(FEATURES) :], [30 / 200, 10 / 200, 200 / 4, 6 / 4, 40 / 4])
    assert np.allclose(out[1, len(FEATURES) :], [50, 0, 0, 0, 50])
    assert np.array_equal(out[2, len(FEATURES) :], np.zeros(len(churn.RATIOS)))
    assert np.all(np.isfinite(out))


def test_ratios_are_computed_in_float32_like_the_onnx_input() -> None:
    X = np.array([commit(la=1, lt=3, nf=7, nuc=1)])
    out = churn.RelativeChurn().fit(X).transform(X)
    assert out[0, len(FEATURES)] == float(np.float32(1) / np.float32(3))


def test_a_matrix_without_the_fifteen_metrics_is_refused() -> None:
    with pytest.raises(ValueError, match="needs the 15 metrics, got 3 columns"):
        churn.RelativeChurn().fit(np.zeros((2, 3)))


def test_onnx_graph_computes_the_same_ratios_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5000, size=(400, len(FEATURES))).astype(np.float32)
    X[::7, AT["lt"]] = 0
    X[::11, AT["nf"]] = 0
    X[::13] = 0
    y = (X[:, AT["la"]] / np.maximum(X[:, AT["lt"]], 1) > 5).astype(int)
    # A tree splits on a ratio: a one-ulp difference between numpy and onnxruntime would flip some leaves.
    candidate = model.fixed("random_forest", {"features": "relative_churn", "n_estimators": 30}, X, y, seed=0)
    blob = export.to_onnx(candidate.estimator, len(FEATURES))
    assert export.check_parity(blob, candidate.estimator, X, 1e-6).max_abs_diff <= 1e-6
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    names = [node.op_type for node in __import__("onnx").load_from_string(blob).graph.node]
    assert "Div" in names and session.get_inputs()[0].shape[1] == len(FEATURES)
