"""The challenger: the pool, the windows, the level → pipeline configuration and the typed result of `train`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.repository import ModelRepository
from tests.support import private_copy
from training import assessment, data
from training.config import ALL_FAMILIES, QualityGates
from training.retrain import challenger, window
from training.retrain.facts import Facts
from training.retrain.policy import RetrainPolicy

DAY = 86_400


def quiet(_message: str) -> None:
    return None


@pytest.fixture(scope="module")
def champion(trained_models: Path) -> Facts:
    """Facts with the logistic champion of `trained_models` (no database)."""
    version, manifest, model_bytes = assessment.load_version(trained_models, None)
    return Facts(champion=version, manifest=manifest, model_bytes=model_bytes)


@pytest.fixture
def models(trained_models: Path, tmp_path: Path) -> Path:
    return private_copy(trained_models, tmp_path)


def policy(models: Path, synthetic_commits_dir: Path, **values: Any) -> RetrainPolicy:
    defaults: dict[str, Any] = {
        "models_dir": models, "data": [synthetic_commits_dir / "alpha.csv"], "window": "fixed", "level": "refit",
        "budget": 1, "n_jobs": 1,
    }  # fmt: skip
    return RetrainPolicy(**(defaults | values))


def test_levels_map_onto_the_pipeline(trained_models: Path, champion: Facts) -> None:
    assert champion.manifest is not None
    base = RetrainPolicy(models_dir=trained_models)
    refit, note = challenger.training_config(base.model_copy(update={"level": "refit"}), champion)
    assert refit.families == (champion.manifest.model_type,) and refit.fixed_params == champion.manifest.params
    assert not refit.promote and note.startswith("refit")
    search, _ = challenger.training_config(base.model_copy(update={"level": "search"}), champion)
    assert search.families == (champion.manifest.model_type,) and search.fixed_params is None
    select, _ = challenger.training_config(base.model_copy(update={"level": "select"}), champion)
    assert select.families == ALL_FAMILIES
    first, note = challenger.training_config(base.model_copy(update={"level": "refit"}), Facts())
    assert first.families == ALL_FAMILIES and "no champion" in note
    assert all(c.models_dir == trained_models and c.budget == base.budget for c in (refit, search, select, first))


def test_the_pool_adds_mature_production_rows_whose_label_wins(synthetic_commits_dir: Path, tmp_path: Path) -> None:
    loaded = data.load([synthetic_commits_dir / "alpha.csv"]).frame
    base, _ = data.drop_immature(loaded, 90)
    relabelled = base.tail(1).assign(buggy=1 - base["buggy"].iloc[-1], repository=window.PRODUCTION)
    fresh = base.tail(1).assign(commit_id="new-commit", author_date=base["author_date"].max() + 1)
    production = pd.concat([relabelled, fresh], ignore_index=True)
    facts = Facts(production=production, production_immature=4)
    pool = challenger.build_pool(policy(tmp_path, synthetic_commits_dir), facts)
    assert pool.base_rows == len(base) < len(loaded)  # the base is cut for maturity per repository
    assert pool.production_rows == 2 and pool.production_immature == 4 and pool.duplicates_dropped == 1
    assert len(pool.frame) == len(base) + 1 and pool.frame["author_date"].is_monotonic_increasing
    kept = pool.frame.set_index("commit_id").loc[relabelled["commit_id"].iloc[0]]
    assert kept["buggy"] == relabelled["buggy"].iloc[0] and kept["repository"] == window.PRODUCTION
    assert challenger.build_pool(policy(tmp_path, synthetic_commits_dir, data=[]), facts).base_rows == 0
    with pytest.raises(data.DataError, match="no training data"):
        challenger.build_pool(RetrainPolicy(models_dir=tmp_path), Facts())


def test_each_window_strategy_cuts_the_older_rows(synthetic_commits_dir: Path, tmp_path: Path, champion: Facts) -> None:
    pool = challenger.build_pool(policy(tmp_path, synthetic_commits_dir), Facts())
    older, recent = window.hold_out(pool.frame, 0.15)
    fixed, none = challenger.choose_window(
        policy(tmp_path, synthetic_commits_dir, window_rows=300), champion, older, recent, None
    )
    assert fixed.strategy == "fixed" and none is None
    pd.testing.assert_frame_equal(fixed.frame, older.tail(300).reset_index(drop=True))
    days = policy(tmp_path, synthetic_commits_dir, window="dynamic", candidate_days=(365.0, None))
    dynamic, _ = challenger.choose_window(days, champion, older, recent, None)
    assert dynamic.strategy == "dynamic" and set(dynamic.scores) == {"365d", "all"}
    assert dynamic.frame["author_date"].max() == older["author_date"].max()
    weighted, selection = challenger.choose_window(
        policy(tmp_path, synthetic_commits_dir, window="selection"), champion, older, recent, None
    )
    assert weighted.strategy == "selection" and len(weighted.frame) == len(older)
    assert "weight" in weighted.frame.columns and "weight" not in older.columns  # the input is not modified
    assert selection is not None and selection["production_source"].startswith(f"features of the {len(recent)}")


def test_train_publishes_an_unpromoted_challenger_held_out_from_its_judging_period(
    models: Path, synthetic_commits_dir: Path, champion: Facts
) -> None:
    messages: list[str] = []
    challenge = challenger.train(
        policy(models, synthetic_commits_dir, window_rows=800), champion, None, messages.append
    )
    published = challenge.published
    assert published is not None and challenge.refused is None
    assert published.version == 3 and published.outcome.manifest.version == 3
    assert not published.config.promote and ModelRepository(models).pointer() == 1
    assert challenge.window is not None and len(challenge.window.frame) == 800
    assert challenge.window.frame["author_date"].max() < published.recent["author_date"].min()
    record = challenge.as_record()
    assert list(record) == ["data", "window", "level"]  # no selection facts for a fixed window
    assert record["data"]["holdout_rows"] == len(published.recent) and record["data"]["production_rows"] == 0
    assert record["window"]["rows"] == 800 and record["level"].startswith("refit: logistic_regression")
    assert messages[0] == f"window: last 800 rows (800 rows); {record['level']}"


def test_a_refusal_is_a_result_that_keeps_what_was_done(
    models: Path, synthetic_commits_dir: Path, champion: Facts
) -> None:
    strict = policy(models, synthetic_commits_dir, gates=QualityGates(min_test_roc_auc=0.999))
    refused = challenger.train(strict, champion, None, quiet)
    assert refused.published is None and refused.refused is not None
    assert refused.refused.startswith("no challenger: test ROC AUC") and "min_test_roc_auc 0.999" in refused.refused
    assert list(refused.as_record()) == ["data", "window", "level"]
    assert ModelRepository(models).versions() == [1, 2]  # nothing was published
    nothing = challenger.train(RetrainPolicy(models_dir=models), Facts(), None, quiet)
    assert nothing.as_record() == {} and nothing.refused is not None and "no training data" in nothing.refused
