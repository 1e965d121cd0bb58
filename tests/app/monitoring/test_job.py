"""The scheduled job: performance and data-quality summaries always, drift when asked and possible."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from app.contract import FEATURES
from app.monitoring.job import DATA_QUALITY, PERFORMANCE, champion_manifest, performance_of, run_job
from app.monitoring.store import Store
from tests.support import Database


def fill(store: Store, commits_dir: Path, n: int) -> None:
    """Log the first `n` synthetic `beta` commits (alternating scores); label every other one."""
    frame = pd.read_csv(commits_dir / "beta.csv", usecols=[*FEATURES, "commit_id", "buggy"]).iloc[:n]
    store.insert_predictions(
        [
            {name: float(row[name]) for name in FEATURES}
            | {"time": time.time(), "commit_id": row["commit_id"], "probability": 0.2 + 0.6 * (i % 2)}
            | {"label": i % 2 == 1, "risk_band": "low", "model_version": 1}
            for i, (_, row) in enumerate(frame.iterrows())
        ]
    )
    store.upsert_feedback(
        [
            {"commit_id": c, "buggy": str(b).lower() == "true"}
            for c, b in zip(frame.commit_id, frame.buggy, strict=True)
        ][::2]
    )


def test_job_without_drift_stores_performance_and_quality(
    database: Database, reference_models: Path, synthetic_commits_dir: Path
) -> None:
    store = Store.open(database.url, schema=database.schema)
    try:
        fill(store, synthetic_commits_dir, 200)
        status = run_job(database.url, str(reference_models), 5000, None, 50, schema=database.schema, drift=False)
        assert status == "skipped" and store.latest_drift_report() is None
        performance = store.latest_summary(PERFORMANCE)
        quality = store.latest_summary(DATA_QUALITY)
        assert performance is not None and performance[1]["labelled_rows"] == 100
        assert performance[1]["window_rows"] == 200 and performance[1]["roc_auc"]["rows"] == 100
        assert quality is not None and quality[1]["rows"] == 200 and quality[1]["model_version"] == 1
    finally:
        store.close()


@pytest.mark.slow
def test_job_with_drift_stores_all_three(
    database: Database, reference_models: Path, synthetic_commits_dir: Path
) -> None:
    store = Store.open(database.url, schema=database.schema)
    try:
        fill(store, synthetic_commits_dir, 300)
        assert run_job(database.url, str(reference_models), 5000, None, 50, schema=database.schema) == "ok"
        latest = store.latest_drift_report()
        assert latest is not None and latest.report["window"]["rows"] == 300
        assert store.latest_summary(PERFORMANCE) is not None
    finally:
        store.close()


def test_champion_manifest_is_none_without_a_model(tmp_path: Path, reference_models: Path) -> None:
    assert champion_manifest(tmp_path / "nothing") is None
    manifest = champion_manifest(reference_models)
    assert manifest is not None and manifest.version == 1


def test_performance_of_one_repository_counts_only_its_predictions(
    database: Database, synthetic_commits_dir: Path
) -> None:
    store = Store.open(database.url, schema=database.schema)
    try:
        fill(store, synthetic_commits_dir, 60)
        # 20 more predictions of another repository, all labelled buggy, scored high.
        store.insert_predictions(
            [dict.fromkeys(FEATURES, 1.0) | {"time": time.time(), "commit_id": f"other-{i}", "repository": "other",
                                             "probability": 0.9, "label": True, "risk_band": "high", "model_version": 1}
             for i in range(20)]
        )  # fmt: skip
        store.upsert_feedback([{"commit_id": f"other-{i}", "buggy": True} for i in range(20)])
        whole = performance_of(store, 5000, None)
        other = performance_of(store, 5000, None, repository="other")
        assert (whole.window_rows, whole.labelled_rows, whole.repository) == (80, 50, None)
        assert (other.window_rows, other.labelled_rows, other.buggy_rows, other.repository) == (20, 20, 20, "other")
        assert other.roc_auc.value is None and other.recall.value == 1.0  # one class: ROC AUC undefined
        unknown = performance_of(store, 5000, None, repository="nowhere")
        assert (unknown.window_rows, unknown.labelled_rows, unknown.precision.value) == (0, 0, None)
    finally:
        store.close()
