"""Each trigger fires exactly when its value crosses its threshold, and says why when it cannot judge."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from training.retrain import triggers

NOW = datetime(2026, 1, 31, tzinfo=UTC).timestamp()


def test_interval_fires_on_an_old_champion_only() -> None:
    old = triggers.interval(datetime(2026, 1, 1, tzinfo=UTC), NOW, 20)
    young = triggers.interval(datetime(2026, 1, 25, tzinfo=UTC), NOW, 20)
    assert old.fired and old.value == pytest.approx(30.0) and old.threshold == 20
    assert not young.fired and young.value == pytest.approx(6.0)


def test_interval_without_champion_fires_and_disabled_never_does() -> None:
    assert triggers.interval(None, NOW, 20).fired
    assert not triggers.interval(None, NOW, None).fired


def _scores(auc_like: float, rows: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.random(rows) < 0.3
    # Mix the label into the score: more weight → higher ROC AUC.
    p = np.clip(auc_like * y + rng.random(rows) * (1 - auc_like), 0, 1)
    return y.astype(np.int64), p


def test_performance_fires_below_the_floor() -> None:
    y, p = _scores(0.05)
    t = triggers.performance(y, p, floor=0.7, champion_test_auc=None, max_drop=None, min_rows=100)
    assert t.fired and t.value is not None and t.value < 0.7 and t.threshold == 0.7


def test_performance_fires_on_a_drop_from_the_champions_own_test_auc() -> None:
    y, p = _scores(0.2)
    t = triggers.performance(y, p, floor=0.5, champion_test_auc=0.99, max_drop=0.05, min_rows=100)
    assert t.value is not None and t.value > 0.5
    assert t.fired and t.threshold == pytest.approx(0.94)
    quiet = triggers.performance(y, p, floor=0.5, champion_test_auc=t.value + 0.01, max_drop=0.05, min_rows=100)
    assert not quiet.fired


def test_performance_does_not_judge_too_few_or_one_class_rows() -> None:
    y, p = _scores(0.05, rows=50)
    few = triggers.performance(y, p, floor=0.99, champion_test_auc=None, max_drop=None, min_rows=100)
    assert not few.fired and few.value is None and "need 100" in few.detail
    one_class = triggers.performance(np.zeros(300, dtype=np.int64), np.full(300, 0.5), floor=0.99,
                                     champion_test_auc=None, max_drop=None, min_rows=100)  # fmt: skip
    assert not one_class.fired
    assert triggers.performance(y, p, floor=None, champion_test_auc=None, max_drop=None, min_rows=1).detail == (
        "disabled"
    )


def test_drift_fires_at_the_threshold_and_ignores_stale_or_missing_results() -> None:
    assert triggers.drift(0.5, NOW - 3600, NOW, 0.5, 7).fired
    assert not triggers.drift(0.4, NOW - 3600, NOW, 0.5, 7).fired
    stale = triggers.drift(0.9, NOW - 30 * 86400, NOW, 0.5, 7)
    assert not stale.fired and "stale" in stale.detail
    assert not triggers.drift(None, None, NOW, 0.5, 7).fired
    assert triggers.drift(0.9, NOW, NOW, None, 7).detail == "disabled"


def test_on_demand_fires_on_force_or_a_pending_request() -> None:
    assert triggers.on_demand(True, []).fired
    assert triggers.on_demand(False, [3, 4]).fired and triggers.on_demand(False, [3, 4]).value == 2
    assert not triggers.on_demand(False, []).fired


def test_every_trigger_serialises_for_the_audit() -> None:
    record = triggers.on_demand(False, [1]).as_json()
    assert set(record) == {"name", "fired", "value", "threshold", "rule", "detail"}
