"""Pool, hold-out and windows on small frames: maturity, de-duplication, time order, fixed and dynamic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES
from training import data
from training.retrain import window

DAY = 86_400


def commits(rows: int, start: float = 1.6e9, shift_at: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Dataset-format rows, one a day; `buggy` follows `la` before `shift_at` and `nf` (inverted) after it."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.gamma(2.0, 10.0, rows).round() for name in FEATURES})
    frame.insert(0, "commit_id", [f"c{seed}-{i}" for i in range(rows)])
    frame.insert(1, "repository", "r")
    frame.insert(2, "author_date", (start + np.arange(rows) * DAY).astype(np.int64))
    signal = np.log1p(frame["la"]) - np.log1p(frame["la"]).mean()
    if shift_at is not None:
        late = np.arange(rows) >= shift_at
        signal = np.where(late, -(np.log1p(frame["nf"]) - np.log1p(frame["nf"]).mean()) * 3, signal)
    frame.insert(3, "buggy", (signal + rng.normal(0, 0.5, rows) > 0.4).astype(np.int64))
    frame["effort"] = frame["la"] + frame["ld"]
    return frame


def test_production_frame_has_the_dataset_columns() -> None:
    base = commits(5)
    features = {n: base[n].to_numpy() for n in FEATURES}
    frame = window.production_frame(features, base["author_date"].to_numpy() + 0.5, list(base["commit_id"]),
                                    base["buggy"].to_numpy().astype(bool))  # fmt: skip
    assert list(frame.columns) == list(base.columns)
    assert (frame["repository"] == window.PRODUCTION).all()
    assert frame["author_date"].dtype == np.int64 and frame["buggy"].tolist() == base["buggy"].tolist()
    newest_first = window.production_frame(features, base["author_date"].to_numpy()[::-1], list(base["commit_id"]),
                                           base["buggy"].to_numpy().astype(bool))  # fmt: skip
    assert newest_first["author_date"].is_monotonic_increasing


def test_mature_keeps_only_rows_older_than_the_label_delay() -> None:
    frame = commits(100)
    now = float(frame["author_date"].max())
    kept, dropped = window.mature(frame, now, 30)
    assert dropped == 30 and len(kept) == 70
    assert kept["author_date"].max() <= now - 30 * DAY


def test_pool_deduplicates_by_commit_id_and_keeps_the_production_label() -> None:
    base = commits(50)
    production = base.iloc[40:].copy()
    production["buggy"] = 1 - production["buggy"]  # the later (feedback) label differs
    extra = commits(5, start=2e9, seed=1)
    pool = window.build_pool(data.Dataset(base, data.fingerprint([]), 0), pd.concat([production, extra]), 3)
    assert len(pool.frame) == 55 and pool.duplicates_dropped == 10
    assert pool.frame["author_date"].is_monotonic_increasing
    merged = pool.frame.set_index("commit_id").loc[production["commit_id"], "buggy"]
    assert merged.tolist() == production["buggy"].tolist()
    assert pool.production_immature == 3
    dataset = pool.dataset(pool.frame)
    assert dataset.fingerprint.files[-1].name == "production-feedback"


def test_pool_without_base_data() -> None:
    pool = window.build_pool(None, commits(10), 0)
    assert pool.base_rows == 0 and pool.production_rows == 10 and len(pool.frame) == 10


def test_hold_out_keeps_strict_time_order() -> None:
    older, recent = window.hold_out(commits(100), 0.2)
    assert len(recent) == 20 and len(older) == 80
    assert older["author_date"].max() < recent["author_date"].min()
    with pytest.raises(ValueError, match="too few"):
        window.hold_out(commits(1), 0.2)


def test_fixed_window_by_days_rows_or_everything() -> None:
    frame = commits(100)
    assert len(window.fixed(frame, days=9).frame) == 10  # the newest day and the nine before it
    assert window.fixed(frame, rows=25).frame["commit_id"].tolist() == frame["commit_id"].tail(25).tolist()
    whole = window.fixed(frame)
    assert len(whole.frame) == 100 and whole.description == "all mature rows"
    assert whole.as_json()["rows"] == 100


def test_dynamic_window_prefers_the_recent_concept_after_a_shift() -> None:
    frame = commits(1200, shift_at=900)
    choice = window.dynamic(frame, [200.0, None], "logistic_regression", None, recent_fraction=0.15, seed=0)
    assert choice.strategy == "dynamic"
    assert choice.scores["200d"] is not None and choice.scores["all"] is not None
    assert choice.scores["200d"] > choice.scores["all"]
    assert choice.description.startswith("last 200 days") and len(choice.frame) == 201
    # The chosen size is re-cut to end at the newest row: the final fit sees the scored period too.
    assert choice.frame["author_date"].max() == frame["author_date"].max()


def test_dynamic_window_prefers_all_data_when_nothing_changed() -> None:
    frame = commits(1200)
    choice = window.dynamic(frame, [60.0, None], "logistic_regression", None, recent_fraction=0.15, seed=0)
    assert len(choice.frame) == 1200


def test_dynamic_window_refuses_no_candidates_and_skips_one_class_windows() -> None:
    frame = commits(300)
    with pytest.raises(ValueError, match="candidate"):
        window.dynamic(frame, [], "logistic_regression", None, recent_fraction=0.2, seed=0)
    frame["buggy"] = 0
    choice = window.dynamic(frame, [30.0], "logistic_regression", None, recent_fraction=0.2, seed=0)
    assert choice.scores == {"30d": None} and len(choice.frame) == 300
