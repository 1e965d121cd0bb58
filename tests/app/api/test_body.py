from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.requests import ClientDisconnect, Request

from app.api.body import quick_json, receive_body, unknown_fields, validate
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


def _request(messages: list[dict[str, Any]]) -> Request:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type", b"application/json")]}
    return Request(scope, receive)


def test_a_body_in_several_messages_is_read_whole_and_kept_for_request_body() -> None:
    request = _request(
        [{"type": "http.request", "body": b'{"a":', "more_body": True}, {"type": "http.request", "body": b"1}"}]
    )
    assert asyncio.run(receive_body(request)) == b'{"a":1}'
    assert asyncio.run(request.body()) == b'{"a":1}'  # Starlette's own reader sees the same bytes


def test_a_client_gone_before_its_body_arrived_is_a_disconnect() -> None:
    request = _request([{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnect):
        asyncio.run(receive_body(request))


@pytest.mark.parametrize("body", [b'{"la": NaN}', b'{"la": Infinity}', b'{"la": 1e400}', b"{", b"\xff"])
def test_quick_json_leaves_what_orjson_refuses_to_parse_json(body: bytes) -> None:
    assert quick_json(body) is None


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "true", '"2"', "-1"])
def test_predict_words_the_error_of_an_unusual_metric_as_before(
    client: TestClient, commit: dict[str, Any], value: str
) -> None:
    body = orjson.dumps({**commit, "la": 0}).replace(b'"la":0', b'"la":' + value.encode())
    r = client.post("/predict", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == ["la"]
