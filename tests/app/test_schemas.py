from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.contract import FEATURES
from app.schemas import (
    BatchIn,
    CommitIn,
    InferRequestIn,
    ReloadIn,
    inline_schema,
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
