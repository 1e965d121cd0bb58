from __future__ import annotations

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import errors
from app.api.errors import REJECTIONS, STATUS, field_details, install_error_handlers, rejection_of, render, status_of


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
        (errors.DriftUnavailable("x"), 503),
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


def test_rejection_reasons_walk_the_hierarchy() -> None:
    assert rejection_of(_Custom("x")) == "invalid_input"
    assert rejection_of(errors.BodyTooLarge("x")) == "body_too_large"
    assert rejection_of(errors.ModelNotReady("x")) is None  # not the input's fault
    assert set(REJECTIONS.values()) == {"invalid_input", "batch_too_large", "malformed_body", "body_too_large"}


def test_the_one_handler_counts_rejections_on_scoring_routes_only() -> None:
    reasons: list[str] = []
    app = FastAPI()
    install_error_handlers(app, on_rejection=reasons.append)
    raised = {"bad": errors.InvalidInput("bad"), "big": errors.BatchTooLarge("big"), "late": errors.ModelNotReady("no")}

    async def fail(kind: str) -> None:
        raise raised[kind]

    for path in ("/predict/{kind}", "/v2/models/{kind}", "/feedback/{kind}"):
        app.add_api_route(path, fail, methods=["POST"])
    with TestClient(app) as client:
        assert client.post("/predict/bad").status_code == 422
        assert client.post("/v2/models/big").status_code == 413
        assert client.post("/predict/late").status_code == 503
        answer = client.post("/feedback/bad")  # not a scoring route: rendered alike, not counted
    assert answer.status_code == 422 and answer.json()["error"] == {
        "type": "InvalidInput",
        "message": "bad",
        "details": [],
    }
    assert reasons == ["invalid_input", "batch_too_large"]
