from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.contract import FEATURES
from app.schemas import (
    FLOAT32_MAX,
    BatchIn,
    CommitIn,
    InferRequestIn,
    ReloadIn,
    inline_schema,
    plain_commit,
    request_body,
)


def test_commit_accepts_ints_and_floats_only() -> None:
    commit = CommitIn.model_validate({**dict.fromkeys(FEATURES, 2), "entropy": 0.5})
    assert commit.row()[FEATURES.index("entropy")] == 0.5
    with pytest.raises(ValidationError):
        CommitIn.model_validate({**dict.fromkeys(FEATURES, 2), "la": "2"})
    with pytest.raises(ValidationError):
        CommitIn.model_validate({**dict.fromkeys(FEATURES, 2), "la": 1e39})  # infinite in float32


def test_inline_schema_has_no_refs() -> None:
    for model in (BatchIn, InferRequestIn):
        schema = inline_schema(model)
        assert "$defs" not in schema and "$ref" not in str(schema)
    items = inline_schema(BatchIn)["properties"]["commits"]["items"]
    assert set(FEATURES) <= set(items["required"]) and items["additionalProperties"] is False
    assert request_body(CommitIn)["requestBody"]["required"] is True


@pytest.mark.parametrize("version", [True, False, 2.0, [1], {"n": 1}])
def test_reload_takes_an_integer_or_digits_only(version: object) -> None:
    with pytest.raises(ValidationError, match="expected a positive integer"):
        ReloadIn.model_validate({"version": version})
    assert (
        ReloadIn.model_validate({"version": 3}).version == 3
        and ReloadIn.model_validate({"version": "3"}).version == "3"
    )


def test_v2_lists_are_bounded_before_their_items_are_validated() -> None:
    with pytest.raises(ValidationError) as caught:
        InferRequestIn.model_validate({"inputs": [{"name": "x", "datatype": "FP32", "shape": ["x"] * 100_000}]})
    assert caught.value.error_count() == 1 and caught.value.errors()[0]["type"] == "too_long"


@pytest.mark.parametrize("field", ["commit_id", "repository"])
def test_text_the_log_stores_refuses_the_nul_character_naming_the_field(field: str) -> None:
    body = dict.fromkeys(FEATURES, 1.0) | {field: "a\u0000b"}
    with pytest.raises(ValidationError) as refused:
        CommitIn.model_validate(body)
    [problem] = refused.value.errors()
    assert problem["loc"] == (field,) and "NUL" in problem["msg"]
    assert CommitIn.model_validate(body | {field: "a\u0001b\u00e9"}).model_dump()[field] == "a\u0001b\u00e9"
    too_long = CommitIn.model_json_schema()["properties"][field]["anyOf"][0]["maxLength"] + 1
    with pytest.raises(ValidationError, match="String should have at most"):  # the length limit still comes first
        CommitIn.model_validate(body | {field: "x" * too_long})


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
