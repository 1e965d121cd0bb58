"""Exact linear explanations: the terms of a pipeline-trained logistic model add up to its served log-odds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.contract import FEATURES, LinearExplanation, LinearTerm, ModelManifest
from app.explanation import LinearExplainer
from app.predictor import Predictor
from tests.support import load_commits


@pytest.fixture(scope="module")
def logistic(trained_models: Path) -> tuple[ModelManifest, Predictor]:
    """Version 1 of `trained_models`: a calibrated logistic regression published by the real pipeline."""
    manifest = ModelManifest.model_validate_json((trained_models / "1" / "manifest.json").read_text())
    return manifest, Predictor.load(manifest, (trained_models / "1" / "model.onnx").read_bytes())


def test_contributions_add_up_to_the_served_log_odds(logistic: tuple[ModelManifest, Predictor]) -> None:
    manifest, predictor = logistic
    assert manifest.model_type == "logistic_regression" and manifest.explanation is not None
    explainer = LinearExplainer(manifest.explanation)
    x = load_commits()[0][:500]
    served = predictor.probabilities(x)
    logits = manifest.explanation.intercept + explainer.contributions(x).sum(axis=1)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), served, atol=1e-4)
    np.testing.assert_allclose(explainer.probabilities(x), served, atol=1e-4)
    # A term at its typical value contributes nothing.
    names = explainer.names
    assert names[: len(FEATURES)] == list(FEATURES)
    typical = np.array([explainer.typical[: len(FEATURES)]], dtype=np.float32)
    if len(names) == len(FEATURES):  # raw metrics: every term is one metric, so the row is all-typical
        np.testing.assert_allclose(explainer.contributions(typical), 0.0, atol=1e-5)


def test_terms_are_metrics_or_floored_ratios_on_their_own_scale() -> None:
    explanation = LinearExplanation(
        intercept=-1.0,
        terms=[
            LinearTerm(name="la", numerator=["la"], mean=2.0, scale=1.5, coefficient=0.5),
            LinearTerm(name="la+ld/nf", numerator=["la", "ld"], denominator="nf", mean=1.0, scale=2.0,
                       coefficient=-0.25),
            LinearTerm(name="age", numerator=["age"], log1p=False, mean=10.0, scale=5.0, coefficient=0.1),
        ],
    )  # fmt: skip
    explainer = LinearExplainer(explanation)
    row = dict.fromkeys(FEATURES, 0.0) | {"la": 9.0, "ld": 3.0, "nf": 0.0, "age": 20.0}
    x = np.array([[row[f] for f in FEATURES]], dtype=np.float32)
    np.testing.assert_allclose(explainer.terms(x), [[9.0, 12.0, 20.0]])  # nf = 0 floors to 1
    expected = [0.5 * (np.log1p(9.0) - 2.0) / 1.5, -0.25 * (np.log1p(12.0) - 1.0) / 2.0, 0.1 * (20.0 - 10.0) / 5.0]
    np.testing.assert_allclose(explainer.contributions(x), [expected])
    np.testing.assert_allclose(explainer.probabilities(x), 1 / (1 + np.exp(1.0 - sum(expected))))
    assert explainer.typical == pytest.approx([np.expm1(2.0), np.expm1(1.0), 10.0])


def test_terms_naming_unknown_metrics_are_refused() -> None:
    bad = LinearExplanation(intercept=0.0, terms=[LinearTerm(name="x", numerator=["bogus"], mean=0, scale=1,
                                                             coefficient=1)])  # fmt: skip
    with pytest.raises(ValueError, match="unknown metrics: \\['bogus'\\]"):
        LinearExplainer(bad)
    with pytest.raises(ValueError, match="no terms"):
        LinearExplainer(LinearExplanation(intercept=0.0, terms=[]))


def test_raw_metric_terms_take_the_shortcut_with_the_same_values() -> None:
    def explanation(log1p: bool, reorder: bool) -> LinearExplanation:
        names = list(reversed(FEATURES)) if reorder else list(FEATURES)
        return LinearExplanation(
            intercept=-0.5,
            terms=[
                LinearTerm(name=n, numerator=[n], log1p=log1p, mean=0.3 * i, scale=1.0 + i, coefficient=0.1 - 0.02 * i)
                for i, n in enumerate(names)
            ],
        )

    x = np.array([[float(i * 7 % 11) + 0.25 for i in range(len(FEATURES))], [0.0] * len(FEATURES)], dtype=np.float32)
    for log1p in (True, False):
        direct = LinearExplainer(explanation(log1p, reorder=False))
        assert direct._identity  # the terms are the metrics, in order: no arithmetic on them
        np.testing.assert_array_equal(direct.terms(x), x)
        reordered = LinearExplainer(explanation(log1p, reorder=True))  # the same terms, computed the long way
        assert not reordered._identity
        np.testing.assert_array_equal(reordered.terms(x)[:, ::-1], x)
        terms, contributions = direct.terms_and_contributions(x)
        np.testing.assert_array_equal(terms, x)
        np.testing.assert_allclose(contributions, direct.contributions(x))
        scaled = np.log1p(x.astype(np.float64)) if log1p else x.astype(np.float64)
        means = np.array([0.3 * i for i in range(len(FEATURES))])
        scales = np.array([1.0 + i for i in range(len(FEATURES))])
        coefficients = np.array([0.1 - 0.02 * i for i in range(len(FEATURES))])
        np.testing.assert_allclose(contributions, coefficients * (scaled - means) / scales)


def test_one_row_as_lists_is_the_array_computation_to_the_bit() -> None:
    def explanation(log1p: bool) -> LinearExplanation:
        terms = [LinearTerm(name=n, numerator=[n], log1p=log1p, mean=0.3 * i, scale=1.0 + i, coefficient=0.1 - 0.02 * i)
                 for i, n in enumerate(FEATURES)]  # fmt: skip
        return LinearExplanation(intercept=-0.5, terms=terms)

    rng = np.random.default_rng(7)
    # Exponential values with zeros: math.log1p and numpy's differ in the last bit on ~4% of these.
    rows = (rng.exponential(50, (200, len(FEATURES))) * rng.integers(0, 2, (200, len(FEATURES)))).astype(np.float32)
    for log1p in (True, False):
        explainer = LinearExplainer(explanation(log1p))
        for row in rows:
            one = row[None, :]
            terms, contributions = explainer.terms_and_contributions(one)
            assert explainer.terms_and_contribution_lists(one) == (terms.tolist(), contributions.tolist())
        terms, contributions = explainer.terms_and_contributions(rows)  # many rows: the arrays, as lists
        assert explainer.terms_and_contribution_lists(rows) == (terms.tolist(), contributions.tolist())
