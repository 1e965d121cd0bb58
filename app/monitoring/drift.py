"""Data drift: the champion's reference sample vs a window of logged features → DriftReport (+ HTML).

The only module importing evidently, and only inside functions: evidently (and its scikit-learn) live in
the `monitor` extra, and the computation runs in a child process or in `commitrisk monitor`, never in a
request.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.contract import FEATURES, REFERENCE_FILE
from app.errors import CommitRiskError, NotEnoughData
from app.monitoring.store import Store
from app.repository import ModelRepository

DATASET_DRIFT_SHARE = 0.5  # Evidently's default: the dataset drifts when half its features do


class FeatureDrift(BaseModel):
    """One feature's test: a p-value (drifted when below threshold) or a distance (drifted at/above it)."""

    model_config = ConfigDict(frozen=True)

    feature: str
    test: str
    score_kind: Literal["p_value", "distance"]
    score: float
    p_value: float | None
    distance: float | None
    threshold: float
    drifted: bool


class DriftWindow(BaseModel):
    """Which logged predictions were compared: the newest `size` rows or the last `size` days."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["rows", "days"]
    size: float
    rows: int
    start: datetime | None
    end: datetime | None


class DriftReport(BaseModel):
    """Result of one drift run, as served by GET /monitoring/drift."""

    model_config = ConfigDict(frozen=True)

    computed_at: datetime
    model_version: int
    reference_rows: int
    window: DriftWindow
    dataset_drift: bool
    drift_share: float
    drifted_features: int
    features: list[FeatureDrift]


def evidently_available() -> bool:
    """True when the `monitor` extra (evidently) is installed in this environment."""
    return importlib.util.find_spec("evidently") is not None


def compare(
    reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray]
) -> tuple[list[FeatureDrift], float, str]:
    """Run Evidently's DataDriftPreset on the shared features; return per-feature results, share, HTML."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = [name for name in FEATURES if name in reference and name in current]
    definition = DataDefinition(numerical_columns=names)
    ref = Dataset.from_pandas(pd.DataFrame({n: reference[n] for n in names}), data_definition=definition)
    cur = Dataset.from_pandas(pd.DataFrame({n: current[n] for n in names}), data_definition=definition)
    report = Report([DataDriftPreset(drift_share=DATASET_DRIFT_SHARE)], include_tests=True)
    with warnings.catch_warnings():
        # scipy warns on empty chi-square bins of constant-ish columns; the test result is still defined.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(current_data=cur, reference_data=ref)
    return (*_parse(snapshot.dict(), names), snapshot.get_html_str(as_iframe=False))


def _parse(snapshot: dict[str, Any], names: list[str]) -> tuple[list[FeatureDrift], float]:
    # Per-column drift decisions are the FAIL/SUCCESS of the ValueDrift tests bound to each metric id.
    failed = {
        t["metric_config"]["metric_id"]: t["status"] == "FAIL"
        for t in snapshot.get("tests", [])
        if t.get("id") == "drift"
    }
    features: dict[str, FeatureDrift] = {}
    share = 0.0
    for metric in snapshot["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith("ValueDrift") and config.get("column") in names:
            method, score = str(config["method"]), float(metric["value"])
            is_p = "p_value" in method
            features[config["column"]] = FeatureDrift(
                feature=config["column"],
                test=method,
                score_kind="p_value" if is_p else "distance",
                score=score,
                p_value=score if is_p else None,
                distance=None if is_p else score,
                threshold=float(config["threshold"]),
                drifted=failed.get(metric["id"], False),
            )
    return [features[n] for n in names if n in features], share


def build_report(
    model_version: int,
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    times: np.ndarray,
    window_kind: Literal["rows", "days"],
    window_size: float,
    min_rows: int,
) -> tuple[DriftReport, str]:
    """Compare `current` (logged at `times`) with `reference`; NotEnoughData below `min_rows` rows."""
    n = len(times)
    if n < min_rows:
        raise NotEnoughData(
            f"not enough data ({n} < {min_rows})", [{"rows": n, "min_rows": min_rows, "window": window_kind}]
        )
    features, share, html = compare(reference, current)
    reference_rows = len(next(iter(reference.values())))
    window = DriftWindow(
        kind=window_kind,
        size=window_size,
        rows=n,
        start=datetime.fromtimestamp(float(times.min()), UTC),
        end=datetime.fromtimestamp(float(times.max()), UTC),
    )
    report = DriftReport(
        computed_at=datetime.now(UTC),
        model_version=model_version,
        reference_rows=reference_rows,
        window=window,
        dataset_drift=share >= DATASET_DRIFT_SHARE,
        drift_share=share,
        drifted_features=sum(f.drifted for f in features),
        features=features,
    )
    return report, html


def run_drift_job(
    database_url: str,
    models_dir: str,
    window_rows: int,
    window_days: float | None,
    min_rows: int,
    schema: str | None = None,
) -> str:
    """Compute drift for the champion and store it (newest row wins); return the stored status.

    Top-level and argument-only so it can run in a spawned child process.
    """
    import pandas as pd

    store = Store.open(database_url, schema=schema)
    try:
        try:
            version = ModelRepository(Path(models_dir)).target()
            if version is None:
                raise CommitRiskError(f"no model version in {models_dir}")
            reference_path = ModelRepository(Path(models_dir)).version_dir(version) / REFERENCE_FILE
            if not reference_path.is_file():
                raise CommitRiskError(f"model version {version} has no {REFERENCE_FILE}")
        except CommitRiskError as exc:  # its type too: storage trouble (RepositoryError) is a 503, not a bad model
            store.save_drift_report(
                "error", {"message": exc.message, "details": exc.details, "error": type(exc).__name__}
            )
            return "error"
        frame = pd.read_parquet(reference_path)
        reference = {n: frame[n].to_numpy(dtype=np.float64) for n in FEATURES if n in frame.columns}
        window = store.window(rows=window_rows, days=window_days)
        kind: Literal["rows", "days"] = "days" if window_days is not None else "rows"
        size = window_days if window_days is not None else float(window_rows)
        try:
            report, html = build_report(version, reference, window.features, window.time, kind, size, min_rows)
        except NotEnoughData as exc:
            store.save_drift_report("not_enough_data", {"message": exc.message, "details": exc.details})
            return "not_enough_data"
        store.save_drift_report("ok", report.model_dump(mode="json"), html)
        return "ok"
    finally:
        store.close()
