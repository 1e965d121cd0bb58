from __future__ import annotations

import orjson
import pytest

from app import errors
from app.api.errors import STATUS, field_details, render, status_of


class _Custom(errors.InvalidInput):
    """A subclass nobody put in the table."""


def test_every_domain_error_has_a_status() -> None:
    known = {cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.CommitRiskError)}
    assert known - {errors.CommitRiskError} <= set(STATUS)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.ModelNotReady("x"), 503),
        (errors.ModelNotFound("x"), 404),
        (errors.InvalidVersion("x"), 400),
        (errors.Unauthenticated("x"), 401),
        (errors.Forbidden("x"), 403),
        (errors.BatchTooLarge("x"), 413),
        (_Custom("x"), 422),  # walks the class hierarchy
        (errors.CommitRiskError("x"), 500),
    ],
)
def test_status_table(exc: errors.CommitRiskError, status: int) -> None:
    assert status_of(exc) == status


def test_render_uses_the_one_shape() -> None:
    response = render(errors.InvalidInput("bad", [{"field": "la", "message": "negative"}]))
    assert response.status_code == 422
    assert orjson.loads(response.body) == {
        "error": {
            "type": "InvalidInput",
            "message": "bad",
            "details": [{"field": "la", "message": "negative"}],
        }
    }
    assert render(errors.Unauthenticated("who?")).headers["www-authenticate"] == "Bearer"


def test_field_details_join_paths_and_drop_body() -> None:
    details = field_details([{"loc": ("body", "commits", 3, "la"), "msg": "too small", "type": "ge"}])
    assert details == [{"field": "commits.3.la", "message": "too small", "type": "ge"}]


def test_unknown_routes_and_methods_use_the_shape(client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
    r = client.get("/predict")
    assert r.status_code == 405 and r.json()["error"]["type"] == "MethodNotAllowed"
