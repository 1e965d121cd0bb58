"""Evidently drift on synthetic commits: same distribution → low drift, drifted commits → drift; the stored job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES
from app.errors import NotEnoughData
from app.monitoring.drift import build_report, compare, evidently_available, run_drift_job
from app.monitoring.store import Store
from tests.support import Database, build_model_version


def features(path: Path, newest: int | None = None) -> dict[str, np.ndarray]:
    """The feature columns of a commits CSV (oldest first), or of its `newest` rows."""
    frame = pd.read_csv(path, usecols=list(FEATURES))
    if newest is not None:
        frame = frame.iloc[-newest:]
    return {name: frame[name].to_numpy(dtype=np.float64) for name in FEATURES}


def half(columns: dict[str, np.ndarray], start: int) -> dict[str, np.ndarray]:
    return {name: values[start::2] for name, values in columns.items()}


def test_evidently_is_installed_for_the_monitor_extra() -> None:
    assert evidently_available()


def test_same_distribution_shows_low_drift_drifted_commits_drift(
    synthetic_commits_dir: Path, drifted_commits_dir: Path
) -> None:
    alpha = features(synthetic_commits_dir / "alpha.csv")
    reference = half(alpha, 0)
    same, same_share, html = compare(reference, half(alpha, 1))
    other, other_share, _ = compare(reference, features(drifted_commits_dir / "alpha.csv", newest=500))
    assert same_share < 0.3 and other_share > 0.5
    assert [f.feature for f in same] == list(FEATURES)
    assert sum(f.drifted for f in other) / len(FEATURES) == pytest.approx(other_share)
    for f in same + other:
        assert (f.p_value is None) != (f.distance is None)
        # The stored drifted flag agrees with the test's own rule.
        assert f.drifted == (f.score < f.threshold if f.score_kind == "p_value" else f.score >= f.threshold)
    assert "<html" in html.lower()


def test_build_report_refuses_too_few_rows() -> None:
    reference = {name: np.arange(200.0) for name in FEATURES}
    current = {name: np.arange(5.0) for name in FEATURES}
    with pytest.raises(NotEnoughData, match=r"not enough data \(5 < 100\)"):
        build_report(1, reference, current, np.arange(5.0), "rows", 5000, min_rows=100)


def test_build_report_describes_the_window(synthetic_commits_dir: Path) -> None:
    columns = features(synthetic_commits_dir / "beta.csv")
    times = np.linspace(1.6e9, 1.6e9 + 86400, len(columns["la"]))
    report, _ = build_report(7, columns, columns, times, "days", 1.0, min_rows=100)
    assert report.model_version == 7 and report.window.rows == len(times)
    assert report.window.kind == "days" and report.drift_share == 0.0 and not report.dataset_drift
    assert report.window.start is not None and report.window.start.timestamp() == pytest.approx(1.6e9)
    assert report.reference_rows == len(times)


def log_rows(store: Store, columns: dict[str, np.ndarray]) -> None:
    n = len(columns["la"])
    rows = [
        {name: float(columns[name][i]) for name in FEATURES}
        | {"time": 1.7e9 + i, "request_id": None, "commit_id": f"c{i}", "repository": None}
        | {"probability": 0.3, "label": False, "risk_band": "low", "model_version": 1}
        for i in range(n)
    ]
    store.insert_predictions(rows)


@pytest.mark.slow
def test_drift_job_stores_a_report_the_api_can_serve(
    database: Database, reference_models: Path, drifted_commits_dir: Path
) -> None:
    models = reference_models  # version 1, its reference: synthetic `alpha` commits
    store = Store.open(database.url, schema=database.schema)
    try:
        log_rows(store, features(drifted_commits_dir / "gamma.csv", newest=633))
        args = (database.url, str(models), 500, None, 100)
        assert run_drift_job(*args, schema=database.schema) == "ok"
        stored = store.latest_drift_report(with_html=True)
        assert stored is not None and stored.status == "ok" and stored.html
        assert stored.report["drift_share"] > 0.5 and stored.report["window"]["rows"] == 500
        assert {f["feature"] for f in stored.report["features"] if f["drifted"]} >= {"la"}
        assert json.loads(json.dumps(stored.report))["model_version"] == 1
        # A window larger than the log but a minimum above it: a stored "not enough data" answer.
        assert run_drift_job(database.url, str(models), 5000, None, 10_000, schema=database.schema) == (
            "not_enough_data"
        )
        latest = store.latest_drift_report()
        assert latest is not None and latest.report["message"] == f"not enough data ({633} < 10000)"
    finally:
        store.close()


def test_drift_job_without_a_reference_stores_an_error(database: Database, tmp_path: Path) -> None:
    models = tmp_path / "models"
    build_model_version(models, 2)  # a model without reference.parquet
    assert run_drift_job(database.url, str(models), 100, None, 1, schema=database.schema) == "error"
    store = Store.open(database.url, schema=database.schema)
    stored = store.latest_drift_report()
    store.close()
    assert stored is not None and "reference.parquet" in stored.report["message"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_drift_job(database.url, str(empty), 100, None, 1, schema=database.schema) == "error"
