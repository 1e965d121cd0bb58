"""The blessing rule and the level → pipeline configuration, on real published versions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.contract import MODEL_FILE
from training import assessment, data
from training.config import ALL_FAMILIES
from training.retrain import challenger
from training.retrain.decision import Facts
from training.retrain.policy import RetrainPolicy


@pytest.fixture(scope="module")
def recent(shared_commits_dir: Path) -> pd.DataFrame:
    return data.load([shared_commits_dir / "jedis.csv"]).frame.tail(300).reset_index(drop=True)


def test_blessed_only_when_the_challenger_wins_by_min_delta(trained_models: Path, recent: pd.DataFrame) -> None:
    one = (trained_models / "1" / MODEL_FILE).read_bytes()
    two = (trained_models / "2" / MODEL_FILE).read_bytes()
    itself = challenger.compare(recent, one, one, min_delta=0.0)
    assert itself["delta"] == 0 and itself["blessed"]  # equal is enough at min_delta 0 …
    assert not challenger.compare(recent, one, one, min_delta=0.01)["blessed"]  # … but not at 0.01
    versus = challenger.compare(recent, one, two, min_delta=0.01)
    assert versus["blessed"] == (versus["challenger_roc_auc"] - versus["champion_roc_auc"] >= 0.01)
    assert versus["rows"] == 300 and versus["period_start"] <= versus["period_end"]
    first = challenger.compare(recent, None, two, min_delta=0.5)
    assert first["blessed"] and first["why"] == "no champion to beat"


def test_one_class_recent_period_blesses_nothing(trained_models: Path, recent: pd.DataFrame) -> None:
    one = (trained_models / "1" / MODEL_FILE).read_bytes()
    clean = recent.assign(buggy=0)
    verdict = challenger.compare(clean, one, one, min_delta=0.0)
    assert not verdict["blessed"] and "one class" in verdict["why"]


def test_levels_map_onto_the_pipeline(trained_models: Path) -> None:
    facts = Facts()
    facts.champion, facts.manifest, facts.model_bytes = assessment.load_version(trained_models, None)
    policy = RetrainPolicy(models_dir=trained_models)
    refit, note = challenger.training_config(policy.model_copy(update={"level": "refit"}), facts)
    assert refit.families == (facts.manifest.model_type,) and refit.fixed_params == facts.manifest.params
    assert not refit.promote and note.startswith("refit")
    search, _ = challenger.training_config(policy.model_copy(update={"level": "search"}), facts)
    assert search.families == (facts.manifest.model_type,) and search.fixed_params is None
    select, _ = challenger.training_config(policy.model_copy(update={"level": "select"}), facts)
    assert select.families == ALL_FAMILIES
    first, note = challenger.training_config(policy.model_copy(update={"level": "refit"}), Facts())
    assert first.families == ALL_FAMILIES and "no champion" in note
