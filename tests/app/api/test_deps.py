from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.deps import parse_json, query_flag
from app.errors import InvalidInput, MalformedBody


def request_with(query: bytes) -> Request:
    return Request({"type": "http", "query_string": query, "headers": []})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", True),
        (b"explain=false", False),
        (b"explain=0", False),
        (b"explain=TRUE", True),
        (b"other=1", True),
    ],
)
def test_query_flag(query: bytes, expected: bool) -> None:
    assert query_flag(request_with(query), "explain", True) is expected


def test_query_flag_rejects_garbage() -> None:
    with pytest.raises(InvalidInput):
        query_flag(request_with(b"explain=perhaps"), "explain", True)


def test_parse_json_keeps_non_finite_for_validation() -> None:
    assert parse_json(b'{"a": NaN}')["a"] != parse_json(b'{"a": NaN}')["a"]
    with pytest.raises(MalformedBody):
        parse_json(b"{'a': 1}")


def test_admin_routes_share_the_dependency(client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    assert client.post("/reload", headers={"Authorization": "Bearer "}).status_code == 401
