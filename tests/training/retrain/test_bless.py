"""The blessing rule on real ONNX models and periods whose ROC AUCs are known in advance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from app.contract import MODEL_FILE
from training import data, export
from training.retrain import bless


@pytest.fixture(scope="module")
def models(trained_models: Path) -> tuple[bytes, bytes]:
    return (trained_models / "1" / MODEL_FILE).read_bytes(), (trained_models / "2" / MODEL_FILE).read_bytes()


@pytest.fixture(scope="module")
def period(synthetic_commits_dir: Path, models: tuple[bytes, bytes]) -> pd.DataFrame:
    """300 recent commits labelled so that model 1 ranks them perfectly (ROC AUC 1) and model 2 does not."""
    frame = data.load([synthetic_commits_dir / "gamma.csv"]).frame.tail(300).reset_index(drop=True)
    one = export.onnx_probabilities(models[0], data.features(frame))
    return frame.assign(buggy=(one >= np.quantile(one, 0.8)).astype(np.int64))


def test_a_better_challenger_is_blessed_and_a_worse_one_is_not(
    period: pd.DataFrame, models: tuple[bytes, bytes]
) -> None:
    one, two = models
    y = period["buggy"].to_numpy()
    two_auc = roc_auc_score(y, export.onnx_probabilities(two, data.features(period)))
    assert 0.5 < two_auc < 0.99  # the fixture's premise: model 2 is clearly worse on this period
    better = bless.compare(period, champion=two, challenger=one, min_delta=0.01)
    assert better.blessed and better.challenger_roc_auc == pytest.approx(1.0)
    assert better.champion_roc_auc == pytest.approx(two_auc, abs=1e-9)
    assert better.delta == pytest.approx(round(1.0 - two_auc, 4))
    assert better.why.startswith("challenger 1.0000 beats champion") and f"(Δ +{1 - two_auc:.4f})" in better.why
    worse = bless.compare(period, champion=one, challenger=two, min_delta=0.01)
    assert not worse.blessed and worse.delta == pytest.approx(round(two_auc - 1.0, 4))
    assert "does not beat champion 1.0000" in worse.why
    # The margin is required, not just a win.
    assert not bless.compare(period, champion=two, challenger=one, min_delta=1.0 - two_auc + 0.01).blessed


def test_equal_models_pass_only_a_zero_margin(period: pd.DataFrame, models: tuple[bytes, bytes]) -> None:
    one, _ = models
    itself = bless.compare(period, one, one, min_delta=0.0)
    assert itself.delta == 0 and itself.blessed
    assert not bless.compare(period, one, one, min_delta=0.01).blessed


def test_without_a_champion_any_defined_challenger_is_blessed(
    period: pd.DataFrame, models: tuple[bytes, bytes]
) -> None:
    first = bless.compare(period, None, models[1], min_delta=0.5)
    assert first.blessed and first.why == "no champion to beat"
    assert first.champion_roc_auc is None and first.delta is None
    assert "delta" not in first.as_json()


def test_a_one_class_recent_period_blesses_nothing(period: pd.DataFrame, models: tuple[bytes, bytes]) -> None:
    one, two = models
    for champion in (two, None):
        verdict = bless.compare(period.assign(buggy=0), champion, one, min_delta=0.0)
        assert not verdict.blessed and "one class" in verdict.why and verdict.challenger_roc_auc is None


def test_the_comparison_record_keeps_its_json_shape(period: pd.DataFrame, models: tuple[bytes, bytes]) -> None:
    verdict = bless.compare(period, models[1], models[0], min_delta=0.01)
    record = verdict.as_json()
    assert list(record) == [
        "period_start", "period_end", "rows", "buggy", "min_delta", "challenger_roc_auc", "champion_roc_auc",
        "delta", "blessed", "why",
    ]  # fmt: skip
    assert record["rows"] == 300 and record["buggy"] == int(period["buggy"].sum())
    assert record["period_start"] == pd.Timestamp(period["author_date"].min(), unit="s", tz="UTC").isoformat()
    assert record["period_start"] <= record["period_end"]
