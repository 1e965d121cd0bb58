"""Manifest parts on small frames: feature statistics, the drift reference, the self-test, importances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from app.contract import FEATURES
from training import data, export, manifest


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"commit_id": [f"c{i}" for i in range(rows)], "repository": "r"})
    frame["author_date"] = np.arange(rows, dtype=np.int64) * 3600
    frame["buggy"] = (rng.random(rows) < 0.3).astype(np.int64)
    for name in FEATURES:
        frame[name] = rng.integers(0, 100, rows).astype(np.float64)
    frame["effort"] = frame["la"] + frame["ld"]
    return frame


def test_feature_stats_follow_the_contract_order_in_float32() -> None:
    frame = _frame(101)
    frame["entropy"] = np.linspace(0.0, 1.0, 101) + 1e-9  # below float32 resolution at 1.0
    stats = manifest.feature_stats(frame)
    assert [s.name for s in stats] == list(FEATURES)
    la = stats[FEATURES.index("la")]
    assert (la.min, la.max, la.median) == (frame["la"].min(), frame["la"].max(), frame["la"].median())
    assert la.quantiles["p25"] == pytest.approx(frame["la"].quantile(0.25))
    assert list(la.quantiles) == list(manifest.QUANTILES)
    entropy = stats[FEATURES.index("entropy")]
    assert entropy.max == float(np.float32(1.0 + 1e-9))  # what the float32 model input can hold


def test_reference_sample_is_seeded_bounded_and_time_ordered() -> None:
    frame = _frame(500)
    sample = manifest.reference_sample(frame, 100, seed=3)
    assert len(sample) == 100 and list(sample.columns) == manifest.REFERENCE_COLUMNS
    assert sample["author_date"].is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, manifest.reference_sample(frame, 100, seed=3))
    assert not sample["commit_id"].equals(manifest.reference_sample(frame, 100, seed=4)["commit_id"])
    whole = manifest.reference_sample(frame, 1000, seed=3)
    assert len(whole) == 500 and list(whole["commit_id"]) == list(frame["commit_id"])
    assert "effort" in frame.columns  # the input keeps its columns


def test_self_test_rows_are_scored_by_the_exact_onnx_file() -> None:
    frame = _frame(300)
    X, y = frame[list(FEATURES)].to_numpy(np.float32), frame["buggy"].to_numpy()
    blob = export.to_onnx(LogisticRegression(max_iter=1000).fit(X, y), len(FEATURES))
    test = manifest.self_test(blob, frame, rows=8)
    assert len(test.rows) == len(test.probabilities) == 8 and len(test.rows[0]) == len(FEATURES)
    np.testing.assert_allclose(test.probabilities, export.onnx_probabilities(blob, X[:8]), rtol=0, atol=0)


def test_importances_rank_the_feature_that_carries_the_signal_first() -> None:
    frame = _frame(2000, seed=1)
    X = frame[list(FEATURES)].to_numpy(np.float32)
    y = (X[:, FEATURES.index("la")] + np.random.default_rng(2).normal(0, 10, 2000) > 60).astype(int)
    weights = manifest.importances(LogisticRegression(max_iter=2000).fit(X, y), X, y, seed=0)
    assert list(weights) == list(FEATURES)
    assert max(weights, key=weights.__getitem__) == "la" and weights["la"] > 0.1
    assert all(abs(v) < 0.05 for k, v in weights.items() if k != "la")


def test_library_versions_name_everything_that_shaped_the_model_file() -> None:
    import sklearn

    found = manifest.library_versions()
    assert set(found) == {"python", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "commitrisk"}
    assert found["scikit-learn"] == sklearn.__version__ and found["numpy"] == np.__version__
    assert found["python"].count(".") == 2


@pytest.mark.parametrize("features", ["raw", "relative_churn"])
def test_a_calibrated_logistic_model_is_described_by_exact_linear_terms(features: str) -> None:
    from app.explanation import LinearExplainer
    from training import calibration, model

    frame = _frame(600, seed=2)
    X, y = data.features(frame), frame["buggy"].to_numpy()
    fitted = model.fixed("logistic_regression", {"features": features, "clf__C": 0.5}, X, y, seed=0)
    final = calibration.Calibrated(fitted.estimator, calibration.Platt(a=0.7, b=-0.3))
    explanation = manifest.linear_explanation(final)
    assert explanation is not None
    names = [t.name for t in explanation.terms]
    assert names == list(FEATURES) + ([] if features == "raw" else ["la/lt", "ld/lt", "lt/nf", "nuc/nf", "la+ld/nf"])
    # The terms reproduce the calibrated probabilities the exported model serves.
    np.testing.assert_allclose(LinearExplainer(explanation).probabilities(X), final.predict_proba(X)[:, 1], atol=1e-5)


def test_models_that_are_not_linear_have_no_linear_explanation() -> None:
    from training import calibration, model

    frame = _frame(300)
    X, y = data.features(frame), frame["buggy"].to_numpy()
    forest = model.fixed("random_forest", {"features": "raw", "n_estimators": 10}, X, y, seed=0)
    assert manifest.linear_explanation(calibration.Calibrated(forest.estimator, calibration.IDENTITY)) is None
