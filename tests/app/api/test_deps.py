from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.deps import get_metrics, get_monitoring, get_registry, get_settings, parse_json, query_flag, services_of
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


def test_every_dependency_reads_the_one_services_object(client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    services = client.app.state.services  # type: ignore[attr-defined]
    request = Request({"type": "http", "app": client.app, "query_string": b"", "headers": []})
    assert services_of(request) is services
    assert get_settings(request) is services.settings and get_registry(request) is services.registry
    assert get_metrics(request) is services.metrics and get_monitoring(request) is services.monitoring
