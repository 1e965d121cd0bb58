"""Rule-based data checks: logged values outside the training ranges, and rejected inputs by reason."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.contract import ModelManifest
from app.monitoring.store import Window


class RangeCount(BaseModel):
    """Rows of one feature below the training minimum / above the training maximum."""

    model_config = ConfigDict(frozen=True)

    min: float
    max: float
    below: int
    above: int
    share: float


class DataQualityReport(BaseModel):
    """GET /monitoring/data-quality: checks over the same window the drift job compares."""

    model_config = ConfigDict(frozen=True)

    rows: int
    model_version: int | None
    out_of_range: dict[str, RangeCount]
    rows_with_any_out_of_range: int
    rejected: dict[str, int]


def summarise(window: Window, manifest: ModelManifest | None, rejected: Mapping[str, int]) -> DataQualityReport:
    """Count each feature's values outside the manifest's [min, max]; no manifest → no range checks."""
    counts: dict[str, RangeCount] = {}
    any_outside = np.zeros(window.rows, dtype=bool)
    for stats in manifest.features if manifest is not None else []:
        values = window.features.get(stats.name)
        if values is None:
            continue
        below, above = values < stats.min, values > stats.max
        any_outside |= below | above
        outside = int(below.sum() + above.sum())
        counts[stats.name] = RangeCount(
            min=stats.min,
            max=stats.max,
            below=int(below.sum()),
            above=int(above.sum()),
            share=outside / window.rows if window.rows else 0.0,
        )
    return DataQualityReport(
        rows=window.rows,
        model_version=manifest.version if manifest is not None else None,
        out_of_range=counts,
        rows_with_any_out_of_range=int(any_outside.sum()),
        rejected=dict(rejected),
    )
