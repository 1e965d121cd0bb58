from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.contract import FEATURES
from app.schemas import BatchIn, CommitIn, InferRequestIn, inline_schema, request_body


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
