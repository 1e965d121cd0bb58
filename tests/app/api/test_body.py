from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.body import unknown_fields, validate
from app.api.errors import MAX_DETAILS
from app.contract import FEATURES
from app.errors import InvalidInput
from app.schemas import BatchIn, CommitIn

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"],
)
def test_scoring_routes_read_json_bodies_only(client: TestClient, commit: dict[str, Any], content_type: str) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    for path, body in (("/predict", commit), ("/predict/batch", {"commits": [commit]})):
        r = client.post(path, content=orjson.dumps(body), headers=headers)
        assert r.status_code == 415, r.text  # what a form on another web site can post is never read
        error = r.json()["error"]
        assert error["type"] == "UnsupportedMediaType" and error["details"][0]["field"] == "content-type"


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8", "application/x+json"])
def test_json_media_types_are_read(client: TestClient, commit: dict[str, Any], content_type: str) -> None:
    r = client.post("/predict", content=orjson.dumps(commit), headers={"content-type": content_type})
    assert r.status_code == 200, r.text


def test_an_optional_body_may_be_empty_without_a_type(client: TestClient, admin: dict[str, str]) -> None:
    assert client.post("/reload", headers=admin).status_code == 200  # no body: reload the champion
    r = client.post("/reload", content=b'{"version": 1}', headers={**admin, "content-type": "text/plain"})
    assert r.status_code == 415


def test_a_body_of_250000_unknown_keys_is_one_short_answer(client: TestClient, commit: dict[str, Any]) -> None:
    body = dict(commit) | {f"k{i}": 1 for i in range(250_000)}
    r = client.post("/predict", content=orjson.dumps(body), headers=JSON)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["message"] == "250,000 invalid field(s) in the request body"
    assert len(error["details"]) == MAX_DETAILS  # the first 49, then one entry counting the rest
    assert error["details"][0] == {
        "field": "k0",
        "message": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    }
    assert error["details"][-1] == {"field": None, "message": "249,951 more not listed", "type": "truncated"}
    assert len(r.content) < 10_000  # was 21.9 MB
    assert client.get("/health/live").status_code == 200


def test_unknown_keys_are_found_in_nested_models() -> None:
    one = {f: 1.0 for f in FEATURES}
    batch = {"commits": [one, one, one | {f"x{i}": 0 for i in range(100)}], "extra": 1}
    assert unknown_fields(BatchIn, batch, 3) == ["extra", "commits.2.x0", "commits.2.x1"]
    assert unknown_fields(CommitIn, one, 10) == []
    assert unknown_fields(BatchIn, {"commits": "not a list"}, 10) == []


def test_few_errors_keep_every_pydantic_detail() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate(CommitIn, {"la": -1, "nope": 1})
    fields = {d["field"] for d in caught.value.details}
    assert {
        "la",
        "nope",
        "ns",
    } <= fields and caught.value.message == f"{len(FEATURES) + 1} invalid field(s) in the request body"


def test_many_errors_without_unknown_keys_are_capped_when_rendered(client: TestClient) -> None:
    r = client.post("/predict/batch", content=orjson.dumps({"commits": [{}] * 100}), headers=JSON)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["message"] == "1,500 invalid field(s) in the request body"  # 15 missing metrics × 100 commits
    assert len(error["details"]) == MAX_DETAILS and error["details"][0]["field"] == "commits.0.ns"
    assert error["details"][-1]["message"] == "1,451 more not listed"
