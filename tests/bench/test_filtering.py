"""Training-row filters: each reads the training rows only, drops what it names; the model still scores every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import filtering
from bench.filtering import FILTERS, Filtered, Rows
from bench.variants import _logistic
from training import data

DAY = 86_400


@pytest.fixture(scope="module")
def shared(shared_commits_dir: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The shared commits (time-ordered) and their `fixed_by` texts."""
    frame = data.load([shared_commits_dir]).frame
    return frame, filtering.fixed_by(frame, shared_commits_dir)


def _frame(rows: list[tuple[str, str, float, int, float]]) -> tuple[pd.DataFrame, pd.Series]:
    """(repository, SHA, author day, buggy, la) per commit (ld 0, nf 1: all `Rows.of` reads); `fixed_by` empty."""
    frame = pd.DataFrame({
        "commit_id": [f"{r}_{sha}" for r, sha, *_ in rows],
        "repository": [r for r, *_ in rows],
        "author_date": [int(day * DAY) for _, _, day, _, _ in rows],
        "buggy": [b for *_, b, _ in rows],
        "la": [la for *_, la in rows],
        "ld": 0.0,
        "nf": 1.0,
    })  # fmt: skip
    return frame, pd.Series([""] * len(rows))


def test_fixed_by_reads_the_csv_column_by_commit_id(
    shared: tuple[pd.DataFrame, pd.Series], shared_commits_dir: Path
) -> None:
    frame, texts = shared
    assert (texts != "").to_numpy().tolist() == frame["buggy"].astype(bool).tolist()
    rows = Rows.of(frame, texts)
    first = int(np.argmin(np.where(frame["repository"] == "5ffe1bc58e3f65b96a5eb9c5", frame["author_date"], np.inf)))
    assert rows.hashes[first] == "fdbdc025a06ceef9537d13d5e016668e625cf4f8"  # HikariCP's "initial commit"
    assert len(rows.fixes[first]) == 8 and rows.fixes[first][0] == "e9606f20685ef240571a1b4139caa204e07f02f9"
    unknown = frame.head(1).assign(commit_id="nowhere_0")
    assert filtering.fixed_by(unknown, shared_commits_dir).tolist() == [""]


def test_first_commits_drop_each_repositorys_earliest_training_rows(shared: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, texts = shared
    rows = Rows.of(frame, texts)
    at = np.arange(len(frame))[::-1]  # any order: the filter sorts by date itself
    y = frame["buggy"].to_numpy()[at]
    dropped = at[~filtering.first_commits(1)(rows, at, y)]
    assert sorted(frame["commit_id"].iloc[dropped]) == sorted(frame.groupby("repository")["commit_id"].first())
    assert frame["buggy"].iloc[dropped].all()  # every repository's import commit is labelled buggy
    assert (~filtering.first_commits(50)(rows, at, y)).sum() == 4 * 50


def test_size_filters_use_the_training_rows_threshold() -> None:
    frame, texts = _frame([("a", f"{i:x}", i, 0, float(i)) for i in range(100)])
    rows = Rows.of(frame, texts)
    small, everything = np.arange(50), np.arange(100)
    y = np.zeros(100, dtype=np.int64)
    # The 95th percentile of 0..49 is 46.55: rows 47..49 go; of 0..99, rows 95..99 go.
    assert np.flatnonzero(~filtering.churn_within_quantile(0.95)(rows, small, y[:50])).tolist() == [47, 48, 49]
    assert np.flatnonzero(~filtering.churn_within_quantile(0.95)(rows, everything, y)).tolist() == [95, 96, 97, 98, 99]
    assert np.flatnonzero(~filtering.churn_at_most(97)(rows, everything, y)).tolist() == [98, 99]
    assert filtering.files_at_most(1)(rows, everything, y).all()


def test_late_fixes_are_dated_by_training_rows_or_bounded_by_the_newest() -> None:
    frame, texts = _frame([
        ("a", "early", 0, 1, 1), ("a", "late", 0, 1, 1), ("a", "open", 300, 1, 1), ("a", "fix", 400, 0, 1),
        ("b", "fix", 10, 0, 1),
    ])  # fmt: skip
    # `early` is fixed by `fix` (day 400); `late` and `open` by `elsewhere`, not among the training rows; b's row
    # of the same SHA is another repository's commit and must not date a's fix.
    texts = pd.Series(["fix", "elsewhere", "elsewhere", "", ""])
    rows = Rows.of(frame, texts)
    at, y = np.arange(5), frame["buggy"].to_numpy()
    assert filtering.fixed_within(365.25)(rows, at, y).tolist() == [False, False, True, True, True]
    assert filtering.fixed_within(500)(rows, at, y).all()
    without_the_fix = np.array([0, 1, 2, 4])  # `early`'s delay is then bounded by a's newest row (day 300) only
    assert filtering.fixed_within(365.25)(rows, without_the_fix, y[without_the_fix]).all()


def test_many_and_wide_fixes_drop_buggy_rows_only() -> None:
    shas = [f"{i:x}" for i in range(14)]
    frame, _ = _frame([("a", s, i, int(i < 12), 1) for i, s in enumerate(shas)])
    # `wide` blames rows 0..10 (11 commits); row 0 also has a narrow fix; row 11 is blamed by 6 narrow fixes.
    texts = pd.Series(["wide;n0", *(["wide"] * 10), "n1;n2;n3;n4;n5;n6", "", ""])
    rows = Rows.of(frame, texts)
    at, y = np.arange(14), frame["buggy"].to_numpy()
    assert np.flatnonzero(~filtering.narrow_fixes(10)(rows, at, y)).tolist() == list(range(1, 11))
    assert filtering.narrow_fixes(10)(rows, at[5:], y[5:]).all()  # among these rows `wide` blames 6 only
    assert np.flatnonzero(~filtering.blamed_by_at_most(5)(rows, at, y)).tolist() == [11]
    both = filtering.every(filtering.narrow_fixes(10), filtering.blamed_by_at_most(5))(rows, at, y)
    assert np.flatnonzero(~both).tolist() == list(range(1, 12))


def test_no_filter_reads_a_row_outside_the_training_rows(shared: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, texts = shared
    at = np.arange(0, len(frame) // 2)
    y = frame["buggy"].to_numpy()[at]
    outside = frame.index >= len(frame) // 2
    # The test rows changed beyond recognition: huge, a year earlier, fixing every training row.
    changed = frame.assign(
        la=np.where(outside, 1e6, frame["la"]),
        nf=np.where(outside, 1e3, frame["nf"]),
        author_date=np.where(outside, frame["author_date"] - 365 * DAY, frame["author_date"]),
    )
    hashes = Rows.of(frame, texts).hashes
    retexted = texts.where(~outside, ";".join(hashes[at]))
    for name, keep in FILTERS.items():
        before = keep(Rows.of(frame, texts), at, y)
        assert np.array_equal(before, keep(Rows.of(changed, retexted), at, y)), name
        assert not before.all() or name == "commits of > 10,000 changed lines", name


def test_filtered_fits_on_the_kept_rows_and_scores_every_row(shared: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, texts = shared
    logs = np.log1p(data.features(frame).astype(np.float64))
    y = frame["buggy"].to_numpy()
    variants = filtering.filtering_variants(frame, logs, _logistic, texts)
    assert list(variants) == [f"log1p, trained without {name}" for name in FILTERS]
    inputs, make = variants["log1p, trained without commits of > 100 files"]
    assert np.array_equal(inputs[:, :-1], logs) and inputs[:, -1].tolist() == list(range(len(frame)))
    train, test = np.arange(3000), np.arange(3000, len(frame))
    fitted = make(0.01).fit(inputs[train], y[train])
    kept = frame["nf"].to_numpy()[train] <= 100
    assert 0 < (~fitted.kept_).sum() < 10 and np.array_equal(fitted.kept_, kept)
    alone = _logistic(0.01).fit(logs[train][kept], y[train][kept])
    assert np.allclose(fitted.predict_proba(inputs[test]), alone.predict_proba(logs[test]))
    everything = Filtered(_logistic(0.01), lambda rows, at, y: np.ones(len(at), dtype=bool), Rows.of(frame, texts))
    plain = _logistic(0.01).fit(logs[train], y[train])
    assert np.allclose(
        everything.fit(inputs[train], y[train]).predict_proba(inputs[test]), plain.predict_proba(logs[test])
    )


def test_a_filter_that_leaves_one_class_fits_on_every_row(shared: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, texts = shared
    logs = np.log1p(data.features(frame).astype(np.float64))
    inputs, y = np.column_stack([logs, np.arange(len(frame))]), frame["buggy"].to_numpy()
    clean_only = Filtered(_logistic(1.0), lambda rows, at, y: y == 0, Rows.of(frame, texts)).fit(inputs, y)
    assert clean_only.kept_.all() and clean_only.classes_.tolist() == [0, 1]


def test_removed_tables_every_filter(shared_commits_dir: Path) -> None:
    text = filtering.removed()
    for name in FILTERS:
        assert f"| {name} |" in text
    assert "| each repository's first commit | 3.5 | 0.0 | 3.5 | 0.0 |" in text
