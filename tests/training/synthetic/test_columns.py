"""Identity columns of synthetic commits: well-formed and consistent with the metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.synthetic.columns import identities
from training.synthetic.generate import generate
from training.synthetic.spec import load_default

FIX_WORDS = r"\b(?:fix|bug|crash|wrong|npe|resolve)\b"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate(load_default(), 6000, seed=5, repositories=3)


def test_ids_are_well_formed_and_unique(frame: pd.DataFrame) -> None:
    assert frame["repository_id"].nunique() == 3
    assert frame["repository_id"].str.fullmatch(r"[0-9a-f]{24}").all()
    assert frame["commit_hash"].str.fullmatch(r"[0-9a-f]{40}").all() and frame["commit_hash"].is_unique
    assert (frame["author_email"].str.fullmatch(r"dev\d+@example\.com")).all()


def test_authors_are_skewed_like_real_projects(frame: pd.DataFrame) -> None:
    spec = load_default()
    for _, rows in frame.groupby("repository_id"):
        top = rows["author_email"].value_counts(normalize=True).iloc[0]
        assert top == pytest.approx(spec.top_author_share, abs=0.05)
        assert rows["author_email"].nunique() <= spec.authors_per_repository


def test_files_agree_with_the_counts(frame: pd.DataFrame) -> None:
    for row in frame.itertuples():
        paths = row.files.split(";")
        counted = [p for p in paths if p.endswith(".java")]
        assert len(paths) == row.files_count and len(counted) == row.nf
        assert len({p.rsplit("/", 1)[0] for p in counted}) == row.nd
        assert len({p.split("/", 1)[0] for p in counted}) == row.ns


def test_fixed_by_names_a_later_fix_of_the_same_repository(frame: pd.DataFrame) -> None:
    position = {sha: i for i, sha in enumerate(frame["commit_hash"])}
    linked = 0
    for i, row in enumerate(frame.itertuples()):
        assert (row.fixed_by != "") == row.buggy
        if row.fixed_by in position:
            fix = frame.iloc[position[row.fixed_by]]
            assert position[row.fixed_by] > i and fix["repository_id"] == row.repository_id
            assert fix["is_fix_commit"]
            linked += 1
    # Only the newest buggy commits of a repository, with no later fix, get an unknown SHA.
    assert linked > 0.9 * frame["buggy"].sum()


def test_messages_carry_a_fix_word_exactly_for_fix_commits(frame: pd.DataFrame) -> None:
    has_word = frame["commit_message"].str.contains(FIX_WORDS, case=False, regex=True)
    assert (has_word == frame["is_fix_commit"]).all()
    assert frame["commit_message"].str.len().le(70).all()


def test_identities_without_any_fix_commit_still_fill_fixed_by() -> None:
    rows = 50
    base = pd.DataFrame(
        {"author_date": np.arange(rows), "buggy": np.ones(rows, bool), "is_fix_commit": np.zeros(rows, bool),
         "ns": 1, "nd": 1, "nf": 1, "files_count": 2}
    )  # fmt: skip
    out = identities(load_default(), base, np.zeros(rows, np.int64), np.random.default_rng(0))
    assert out["fixed_by"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert (out["files"] == "mod0/pkg0/Source0.java;mod0/docs/notes0.md").all()
