"""Labelled performance by repository and week, and the drift-run history, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app.monitoring import timeline
from app.monitoring.performance import recall_at_effort
from app.monitoring.store import Store
from tests.support import log_row

MONDAY = datetime(2026, 11, 23, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
DAY = 86400.0


def test_week_start_is_monday_midnight_utc() -> None:
    assert timeline.week_start(MONDAY) == MONDAY
    assert timeline.week_start(MONDAY + 6 * DAY + 86399) == MONDAY  # Sunday 23:59:59
    assert timeline.week_start(MONDAY - 1) == MONDAY - 7 * DAY


def test_labelled_metrics_per_repository_and_week(store: Store) -> None:
    rng = np.random.default_rng(3)
    rows, labels, expected = [], [], {}
    for repo, week in (("a", 0), ("b", 1)):
        p = rng.uniform(0, 1, 40)
        y = rng.uniform(0, 1, 40) < p
        effort = rng.integers(1, 50, 40)
        for i in range(40):
            cid = f"{repo}{i}"
            rows.append(
                log_row(MONDAY + week * 7 * DAY + i * 60, repo, "low", float(p[i]), cid, la=float(effort[i]), ld=0.0)
            )
            labels.append({"commit_id": cid, "buggy": bool(y[i])})
        expected[repo] = (float(roc_auc_score(y, p)), recall_at_effort(y, p, effort.astype(float)))
    rows.append(log_row(MONDAY, "a", "low", 0.99, "unlabelled"))
    # A commit scored again (by anyone): the label keeps joining its first prediction, not the later 0.9.
    rows.append(log_row(MONDAY + 3600, "a", "low", 0.9, "a0"))
    store.insert_predictions(rows)
    store.upsert_feedback(labels)
    first = next(r for r in rows if r["commit_id"] == "a0")
    y_a = np.array([lab["buggy"] for lab in labels[:40]])
    p_a = np.array([r["probability"] for r in rows[:40]])
    outcomes = timeline.compute_outcomes(store.engine, as_of=MONDAY + 10 * DAY)
    a, b = outcomes.by_repository["a"], outcomes.by_repository["b"]
    assert (a.rows, b.rows, outcomes.overall.rows) == (40, 40, 80)
    assert a.roc_auc == pytest.approx(roc_auc_score(y_a, p_a)) and first["probability"] != 0.9
    assert b.roc_auc == pytest.approx(expected["b"][0]) and b.recall_at_20_effort == pytest.approx(expected["b"][1])
    assert [w.start for w in outcomes.weeks] == [MONDAY, MONDAY + 7 * DAY]
    assert [w.metrics.rows for w in outcomes.weeks] == [40, 40]
    # Weeks older than the window are left out.
    assert timeline.compute_outcomes(store.engine, as_of=MONDAY + 30 * DAY, weeks=3).weeks == []


def test_no_labels_give_undefined_metrics(store: Store) -> None:
    store.insert_predictions([log_row(MONDAY, "a", "low", 0.2, "x")])
    outcomes = timeline.compute_outcomes(store.engine, as_of=MONDAY)
    assert outcomes.overall.rows == 0 and outcomes.overall.roc_auc is None and outcomes.by_repository == {}


def test_drift_runs_oldest_first_with_failures_kept(store: Store) -> None:
    feature = {"feature": "la", "test": "ks", "score_kind": "p_value", "score": 0.01, "p_value": 0.01,
               "distance": None, "threshold": 0.05, "drifted": True}  # fmt: skip
    store.save_drift_report("ok", {"drift_share": 0.4, "features": [feature]}, "<html/>")
    store.save_drift_report("not_enough_data", {"message": "not enough data (3 < 100)"})
    runs = timeline.drift_runs(store.engine, limit=5)
    assert [r.status for r in runs] == ["ok", "not_enough_data"]
    assert runs[0].drift_share == 0.4 and runs[0].features["la"].drifted and runs[0].features["la"].score == 0.01
    assert runs[1].message == "not enough data (3 < 100)" and runs[1].features == {}
    assert [r.status for r in timeline.drift_runs(store.engine, limit=1)] == ["not_enough_data"]
