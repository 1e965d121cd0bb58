"""Rule-based data checks: values outside the manifest's training ranges, rejections passed through."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.contract import FEATURES, ModelManifest
from app.monitoring.quality import summarise
from app.monitoring.store import Window
from tests.support import build_model_version


def window(values: dict[str, list[float]]) -> Window:
    n = len(next(iter(values.values())))
    columns = {name: np.asarray(values.get(name, [1.0] * n), dtype=float) for name in FEATURES}
    return Window(columns, np.full(n, 0.5), np.zeros(n, bool), np.arange(n, dtype=float), [None] * n)


def test_counts_below_and_above_the_training_range(tmp_path: Path) -> None:
    version = build_model_version(tmp_path / "models", 1)
    manifest = ModelManifest.model_validate_json((version / "manifest.json").read_text())
    la = next(f for f in manifest.features if f.name == "la")
    rows = window({"la": [la.min - 1, la.max + 1, la.max + 2, la.median]})
    report = summarise(rows, manifest, {"invalid_input": 3})
    assert report.out_of_range["la"].below == 1 and report.out_of_range["la"].above == 2
    assert report.out_of_range["la"].share == 0.75 and report.rows == 4
    assert report.rows_with_any_out_of_range >= 3 and report.rejected == {"invalid_input": 3}
    assert set(report.out_of_range) == set(FEATURES) and report.model_version == 1


def test_without_a_model_or_rows_nothing_is_counted(tmp_path: Path) -> None:
    report = summarise(window({"la": []}), None, {})
    assert report.rows == 0 and report.out_of_range == {} and report.model_version is None
