"""Plain bodies: taken only when the request models accept them, with the same values; the rest left to pydantic."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.contract import FEATURES
from app.plain import plain_batch, plain_commit
from app.schemas import FLOAT32_MAX, BatchIn, CommitIn

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**130), max_value=2**130),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, FLOAT32_MAX, 2**128, 2**128 - 2**103, 1e39, 2.0**53 + 1]),
    st.text(max_size=3),
    st.sampled_from(["a" * 200, "a" * 201, "a" * 500, "a" * 501, "a\x00b", "é" * 200]),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def _commit_bodies(draw: st.DrawFn) -> dict[str, object]:
    """Mostly valid commits, with one or two fields changed, dropped or added."""
    body: dict[str, object] = {name: draw(st.floats(0, 1e6) | st.integers(0, 10**6)) for name in FEATURES}
    for name in draw(
        st.lists(st.sampled_from([*FEATURES, "commit_id", "repository", "author_date", "extra"]), max_size=2)
    ):
        if draw(st.booleans()):
            body[name] = draw(_VALUES)
        else:
            body.pop(name, None)
    return body


@hypothesis_settings(max_examples=400, deadline=None, database=None)
@given(_commit_bodies())
def test_plain_commit_accepts_only_what_commit_in_accepts_with_the_same_values(body: dict[str, object]) -> None:
    plain = plain_commit(body)
    try:
        commit = CommitIn.model_validate(body)
    except ValidationError:
        assert plain is None
        return
    if plain is not None:  # None is always allowed: pydantic then decides
        row, commit_id, repository = plain
        assert row == list(commit.row()) and all(type(v) in (int, float) for v in row)
        assert np.array(row, dtype=np.float64).tolist() == list(commit.row())  # what the route scores
        assert (commit_id, repository) == (commit.commit_id, commit.repository)


def test_plain_commit_takes_the_common_body_and_leaves_the_rest_to_pydantic() -> None:
    body = {**dict.fromkeys(FEATURES, 2), "entropy": 0.5, "commit_id": "abc", "repository": "r", "author_date": 1e9}
    row, commit_id, repository = plain_commit(body) or ([], None, None)
    assert row[FEATURES.index("entropy")] == 0.5 and (commit_id, repository) == ("abc", "r")
    assert plain_commit({**body, "la": True}) is None  # a bool is not a number for CommitIn
    assert plain_commit({**body, "unknown": 1}) is None
    assert plain_commit({**body, "commit_id": "a\x00"}) is None
    assert plain_commit([body]) is None


@st.composite
def _batch_bodies(draw: st.DrawFn) -> object:
    """Mostly `{"commits": [...]}` of mostly valid commits; sometimes another key, shape or size."""
    commits = draw(st.lists(_commit_bodies(), max_size=4))
    body: dict[str, object] = {"commits": commits}
    change = draw(st.sampled_from(["none", "none", "none", "extra key", "no list", "no key", "not a dict"]))
    if change == "extra key":
        body["extra"] = 1
    elif change == "no list":
        body["commits"] = draw(_VALUES)
    elif change == "no key":
        body = {}
    elif change == "not a dict":
        return commits
    return body


@hypothesis_settings(max_examples=300, deadline=None, database=None)
@given(_batch_bodies())
def test_plain_batch_accepts_only_what_batch_in_accepts_with_the_same_values(body: object) -> None:
    plain = plain_batch(body, limit=3)
    try:
        commits = BatchIn.model_validate(body).commits
    except ValidationError:
        assert plain is None
        return
    if plain is not None:  # None is always allowed: pydantic then decides (and the route applies the limit)
        rows, ids, repositories = plain
        assert len(rows) <= 3
        assert np.array(rows, dtype=np.float64).reshape(-1, 15).tolist() == [list(c.row()) for c in commits]
        assert ids == [c.commit_id for c in commits] and repositories == [c.repository for c in commits]


def test_plain_batch_leaves_a_batch_over_the_limit_or_with_one_unusual_commit_to_pydantic() -> None:
    commit = {**dict.fromkeys(FEATURES, 1), "commit_id": "a"}
    assert plain_batch({"commits": [commit] * 3}, limit=3) == ([(1,) * 15] * 3, ["a"] * 3, [None] * 3)
    assert plain_batch({"commits": []}, limit=3) == ([], [], [])
    assert plain_batch({"commits": [commit] * 4}, limit=3) is None  # the route refuses it with BatchTooLarge
    assert plain_batch({"commits": [commit, {**commit, "la": True}]}, limit=3) is None
    assert plain_batch({"commits": [commit], "more": []}, limit=3) is None
    assert plain_batch(None, limit=3) is None  # what quick_json gives for NaN or Infinity
