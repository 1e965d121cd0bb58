"""training/evaluate.py: hand-computed effort-aware examples, scikit-learn parity, edge cases, bands."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from training import evaluate as ev

# Five commits A–E, total effort 100, 3 buggy. Density p / effort: A .18, B .06, C .02, D .015, E .02 (C and E
# tie: input order keeps C first). Model order A B C E D: efforts 5 10 40 25 20 → cumulative effort share
# .05 .15 .55 .80 1; labels 0 1 1 1 0 → cumulative recall 0 1/3 2/3 1 1.
Y = np.array([0, 1, 1, 0, 1])
P = np.array([0.9, 0.6, 0.8, 0.3, 0.5])
EFFORT = np.array([5.0, 10.0, 40.0, 20.0, 25.0])


def test_hand_example_ranking_breaks_ties_by_input_order() -> None:
    assert ev.model_ranking(P, EFFORT).tolist() == [0, 1, 2, 4, 3]
    assert ev.optimal_ranking(Y, EFFORT).tolist() == [1, 4, 2, 0, 3]  # B .1, E .04, C .025, then clean A, D
    assert ev.worst_ranking(Y, EFFORT).tolist() == [0, 3, 2, 4, 1]


def test_hand_example_effort_curve() -> None:
    x, recall = ev.effort_curve(Y, P, EFFORT)
    np.testing.assert_allclose(x, [0, 0.05, 0.15, 0.55, 0.80, 1.0])
    np.testing.assert_allclose(recall, [0, 0, 1 / 3, 2 / 3, 1, 1])


def test_hand_example_recall_at_20_effort() -> None:
    # Within 20 of 100 lines: A and B (15 lines) → 1 of 3 buggy commits; C would bring 55.
    assert ev.recall_at_effort(Y, P, EFFORT) == pytest.approx(1 / 3)
    assert ev.recall_at_effort(Y, P, EFFORT, share=0.55) == pytest.approx(2 / 3)  # boundary is inclusive


def test_hand_example_effort_at_20_recall() -> None:
    # 20% of 3 buggy = 0.6 → the first buggy commit (B) is found after A + B = 15 of 100 lines.
    assert ev.effort_at_recall(Y, P, EFFORT) == pytest.approx(0.15)
    assert ev.effort_at_recall(Y, P, EFFORT, share=0.5) == pytest.approx(0.55)  # 1.5 → 2 buggy: A B C


def test_hand_example_popt() -> None:
    # Areas (trapezoids, in 120ths): model 1/60 + .2 + 5/24 + .2 = 75; optimal order B E C A D → 87;
    # worst order A D C E B → 33. Popt = 1 − (87 − 75) / (87 − 33) = 7/9.
    assert ev.area(*ev.effort_curve(Y, P, EFFORT)) == pytest.approx(75 / 120)
    assert ev.area(*ev.cumulative_recall(Y, EFFORT, ev.optimal_ranking(Y, EFFORT))) == pytest.approx(87 / 120)
    assert ev.area(*ev.cumulative_recall(Y, EFFORT, ev.worst_ranking(Y, EFFORT))) == pytest.approx(33 / 120)
    assert ev.popt(Y, P, EFFORT) == pytest.approx(7 / 9)


def test_hand_example_ifa() -> None:
    assert ev.ifa(Y, P, EFFORT) == 1  # A (clean) is inspected before B
    assert ev.ifa(Y, np.array([0.1, 0.2, 0.3, 0.9, 0.05]), EFFORT) == 2  # D .045, A .02 clean, then B .02


def test_evaluate_hand_example_at_threshold() -> None:
    m = ev.evaluate(Y, P, EFFORT, threshold=0.55)  # predicts A B C buggy: tp 2 (B, C), fp 1 (A), fn 1 (E)
    assert (m.rows, m.buggy) == (5, 3)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    assert m.mcc == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))
    assert m.brier == pytest.approx(np.mean((P - Y) ** 2))
    assert m.roc_auc == pytest.approx(3 / 6)  # buggy above clean: B, C and E beat D, none beats A
    assert (m.recall_at_20_effort, m.effort_at_20_recall, m.ifa) == (pytest.approx(1 / 3), 0.15, 1)
    assert m.popt == pytest.approx(7 / 9)


def test_zero_effort_counts_as_one_line() -> None:
    y = np.array([1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    zero = np.zeros(5)
    # Every commit costs 1: the ranking is by p, and 20% effort is the first of five commits.
    assert ev.model_ranking(p, zero).tolist() == [0, 1, 2, 3, 4]
    assert ev.recall_at_effort(y, p, zero) == pytest.approx(0.5)
    assert ev.effort_at_recall(y, p, zero) == pytest.approx(0.2)
    assert ev.ifa(y, p, zero) == 0
    # A zero-churn commit ranks as if it had 1 line: density .3 beats .5 / 10.
    assert ev.model_ranking(np.array([0.5, 0.3]), np.array([10.0, 0.0])).tolist() == [1, 0]


def test_popt_is_one_for_optimal_and_zero_for_worst_ranking() -> None:
    effort = np.array([10.0, 50.0, 5.0, 30.0, 5.0])
    y = np.array([1, 0, 1, 0, 0])
    density = y / effort
    assert ev.popt(y, density / density.max(), effort) == pytest.approx(1.0)
    worst = np.where(y == 1, 0.0, 1.0) / effort  # clean first, buggy last with the largest effort first
    assert ev.popt(y, worst / worst.max(), effort) == pytest.approx(0.0)


def test_effort_metrics_are_bounded_on_random_data() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(2, 60))
        y = (rng.random(n) < 0.3).astype(int)
        y[0] = 1
        p = np.round(rng.random(n), 1)  # many ties
        effort = rng.integers(0, 200, n).astype(float)
        m = ev.evaluate(y, p, effort, 0.5)
        assert 0.0 <= (m.recall_at_20_effort or 0.0) <= 1.0
        assert 0.0 < (m.effort_at_20_recall or 0.0) <= 1.0
        assert m.popt is None or -1e-9 <= m.popt <= 1 + 1e-9
        assert m.ifa is not None and 0 <= m.ifa <= n - int(y.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    y = (rng.random(n) < 0.25).astype(int)
    p = np.clip(np.round(rng.random(n) * 0.6 + y * 0.3, 2), 0, 1)  # rounded: ties across classes
    m = ev.evaluate(y, p, rng.integers(1, 100, n).astype(float), threshold=0.45)
    predicted = (p >= 0.45).astype(int)
    assert m.roc_auc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m.pr_auc == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert m.brier == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    assert m.f1 == pytest.approx(skm.f1_score(y, predicted), abs=1e-12)
    assert m.precision == pytest.approx(skm.precision_score(y, predicted), abs=1e-12)
    assert m.recall == pytest.approx(skm.recall_score(y, predicted), abs=1e-12)
    assert m.mcc == pytest.approx(skm.matthews_corrcoef(y, predicted), abs=1e-12)


def test_curves_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.4).astype(int)
    p = np.round(rng.random(300), 2)
    fpr, tpr = ev.roc_points(y, p)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    recall, precision = ev.pr_points(y, p)
    sk_precision, sk_recall, _ = skm.precision_recall_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(recall, sk_recall[::-1])
    np.testing.assert_allclose(precision, sk_precision[::-1])


def test_roc_auc_is_the_area_under_the_roc_curve_and_the_services_figure() -> None:
    from app.monitoring import performance

    rng = np.random.default_rng(7)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.round(rng.random(400) * 0.7 + y * 0.2, 2)  # ties across classes
    auc = ev.roc_auc(y, p)
    assert auc == pytest.approx(ev.area(*ev.roc_points(y, p)), abs=1e-12)
    assert auc == performance.roc_auc(y, p)  # training and monitoring report the same number
    assert ev.roc_auc(y, 1 - p) == pytest.approx(1 - auc, abs=1e-12)
    assert ev.roc_auc(np.ones(5, dtype=int), np.linspace(0, 1, 5)) is None
    with pytest.raises(ValueError, match="0/1"):
        ev.roc_auc([0, 2, 1], [0.1, 0.2, 0.3])  # validated before computing, unlike the service's helper
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        ev.roc_auc([0, 1], [0.5, 1.5])


def test_calibration_bins_match_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    p = rng.random(400)
    y = (rng.random(400) < p).astype(int)
    mean_p, rate, counts = ev.calibration_bins(y, p)
    sk_rate, sk_mean = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(mean_p, sk_mean)
    np.testing.assert_allclose(rate, sk_rate)
    assert counts.sum() == 400
    assert ev.calibration_bins([1], [1.0])[2].tolist() == [1.0]  # p = 1 lands in the last bin


def test_one_class_gives_none_where_undefined() -> None:
    effort = np.array([3.0, 4.0, 5.0])
    clean = ev.evaluate(np.zeros(3, dtype=int), np.array([0.2, 0.7, 0.4]), effort, 0.5)
    assert (clean.rows, clean.buggy) == (3, 0)
    assert clean.brier == pytest.approx((0.04 + 0.49 + 0.16) / 3)
    assert clean.precision == 0.0  # one false positive
    undefined = (
        "roc_auc",
        "pr_auc",
        "recall",
        "mcc",
        "recall_at_20_effort",
        "effort_at_20_recall",
        "popt",
        "ifa",
    )
    assert all(getattr(clean, name) is None for name in undefined)
    buggy = ev.evaluate(np.ones(3, dtype=int), np.array([0.2, 0.7, 0.4]), np.array([5.0, 5.0, 5.0]), 0.5)
    assert buggy.roc_auc is None and buggy.mcc is None
    assert buggy.pr_auc == pytest.approx(1.0) and buggy.ifa == 0
    assert buggy.popt is None  # equal efforts, all buggy: every order is optimal and worst at once


def test_no_predicted_positive_leaves_precision_undefined() -> None:
    m = ev.evaluate(np.array([1, 0, 0]), np.array([0.3, 0.2, 0.1]), np.ones(3), threshold=0.9)
    assert m.precision is None
    assert (m.recall, m.f1, m.mcc) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("y", "p", "effort", "message"),
    [
        ([], [], [], "empty input"),
        ([0, 1], [0.5], [1, 1], "length mismatch"),
        ([0, 2], [0.5, 0.5], [1, 1], "0/1"),
        ([0, 1], [0.5, 1.5], [1, 1], r"\[0, 1\]"),
        ([0, 1], [0.5, np.nan], [1, 1], r"\[0, 1\]"),
        ([0, 1], [0.5, 0.5], [1, -1], ">= 0"),
        ([0, 1], [0.5, 0.5], [1], "effort must be"),
        ([[0, 1]], [[0.5, 0.5]], [1, 1], "1-D"),
    ],
)
def test_bad_inputs_raise_clear_errors(y: list[int], p: list[float], effort: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ev.evaluate(np.array(y), np.array(p), np.array(effort), 0.5)


def test_bad_threshold_and_shares_raise() -> None:
    with pytest.raises(ValueError, match="threshold"):
        ev.evaluate(Y, P, EFFORT, threshold=1.5)
    with pytest.raises(ValueError, match="share"):
        ev.recall_at_effort(Y, P, EFFORT, share=0.0)
    with pytest.raises(ValueError, match="both"):
        ev.roc_points(np.zeros(3), np.zeros(3))


def test_inputs_are_not_mutated() -> None:
    y, p, effort = Y.copy(), P.copy(), np.array([0.0, 10.0, 40.0, 20.0, 25.0])
    before = (y.copy(), p.copy(), effort.copy())
    ev.evaluate(y, p, effort, 0.5)
    ev.choose_bands(y, p, ev.choose_threshold(y, p))
    for after, original in zip((y, p, effort), before, strict=True):
        np.testing.assert_array_equal(after, original)


def test_choose_threshold_maximises_f1() -> None:
    # Thresholds .9 .8 .7 .6 .1 give F1 .5 .8 .667 .857 .75 → 0.6.
    assert ev.choose_threshold(np.array([1, 1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.1])) == 0.6


def test_choose_threshold_ties_take_the_higher_threshold() -> None:
    # F1 at .9 = 2/3 and at .6 = 2/3 (.8 → .5, .7 → .4).
    assert ev.choose_threshold(np.array([1, 0, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6])) == 0.9


def test_choose_threshold_falls_back_with_one_class() -> None:
    assert ev.choose_threshold(np.zeros(4), np.array([0.1, 0.9, 0.5, 0.2])) == ev.FALLBACK_THRESHOLD
    assert ev.choose_threshold(np.ones(2), np.array([0.1, 0.9])) == ev.FALLBACK_THRESHOLD


def test_chosen_threshold_beats_every_grid_threshold_on_its_data() -> None:
    rng = np.random.default_rng(11)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(rng.random(400) * 0.7 + y * 0.2, 0, 1)
    best = ev.choose_threshold(y, p)
    best_f1 = skm.f1_score(y, p >= best)
    assert all(skm.f1_score(y, p >= t) <= best_f1 + 1e-12 for t in np.linspace(0, 1, 201))


# Five buggy validation commits at .95 .9 .8 .5 .2: recall reaches 80% (4 of 5) at p = .5.
BAND_Y = np.array([1, 1, 0, 1, 0, 1, 0, 1])
BAND_P = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.5, 0.3, 0.2])


def test_bands_medium_where_recall_reaches_80_percent() -> None:
    bands = ev.choose_bands(BAND_Y, BAND_P, threshold=0.8)
    assert (bands.medium, bands.high) == (0.5, 0.8)
    assert "80%" in bands.rule
    assert [bands.band(p) for p in (0.81, 0.8, 0.6, 0.5, 0.49)] == ["high", "high", "medium", "medium", "low"]


def test_bands_use_lower_neighbour_when_threshold_already_reaches_80_percent() -> None:
    assert ev.choose_bands(BAND_Y, BAND_P, threshold=0.3).medium == 0.2
    assert ev.choose_bands(BAND_Y, BAND_P, threshold=0.2).medium == 0.2  # nothing lower: empty medium band


def test_bands_without_buggy_validation_commits() -> None:
    bands = ev.choose_bands(np.zeros(3), np.array([0.1, 0.2, 0.3]), threshold=0.5)
    assert bands.medium == bands.high == 0.5
    assert "no buggy" in bands.rule


def test_bands_properties_on_random_data() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(1, 80))
        y = (rng.random(n) < rng.random()).astype(int)
        p = np.round(rng.random(n), int(rng.integers(1, 4)))
        threshold = ev.choose_threshold(y, p)
        bands = ev.choose_bands(y, p, threshold)
        assert 0.0 <= bands.medium <= bands.high <= 1.0
        assert bands.high == threshold
        # Only the data passed decides: the cut point is one of its probabilities (or the threshold).
        assert bands.medium in set(p.tolist()) | {threshold}
