from __future__ import annotations

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import errors
from app.api.errors import (
    MAX_DETAILS,
    MAX_MESSAGE,
    MAX_TEXT,
    REJECTIONS,
    STATUS,
    bounded,
    error_response,
    field_details,
    install_error_handlers,
    rejection_of,
    render,
    status_of,
)


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


@pytest.mark.parametrize(
    ("exc", "status"),
    [(errors.RequestTimeout("x"), 408), (errors.UnsupportedMediaType("x"), 415), (errors.Overloaded("x"), 503),
     (errors.RepositoryError("x"), 503)],
)  # fmt: skip
def test_status_of_the_limits(exc: errors.CommitRiskError, status: int) -> None:
    assert status_of(exc) == status


def test_server_errors_and_timeouts_close_the_connection() -> None:
    assert render(errors.ModelNotReady("loading")).headers["connection"] == "close"
    assert render(errors.RequestTimeout("slow")).headers["connection"] == "close"
    assert error_response(500, "InternalError", "boom", []).headers["connection"] == "close"
    assert "connection" not in render(errors.InvalidInput("bad")).headers  # a 4xx keeps a pooled connection usable
    overloaded = render(errors.Overloaded("busy"))
    assert overloaded.status_code == 503 and overloaded.headers["retry-after"] == "1"


def test_error_bodies_stay_small() -> None:
    huge_key = "k" * 3_000_000
    details = [{"field": huge_key, "message": "Extra inputs are not permitted"}] + [
        {"field": f"f{i}"} for i in range(99)
    ]
    response = render(errors.InvalidInput("x" * 10_000, details))
    body = orjson.loads(response.body)["error"]
    assert len(response.body) < 20_000
    assert len(body["message"]) <= MAX_MESSAGE + 1 and len(body["details"]) == MAX_DETAILS
    assert body["details"][0]["field"] == "k" * (MAX_TEXT - 1) + "…"
    assert body["details"][-1] == {"field": None, "message": "51 more not listed", "type": "truncated"}
    assert bounded([{"field": "a"}]) == [{"field": "a"}]


def test_hidden_strings_are_replaced_in_messages_and_details() -> None:
    exc = errors.ModelNotFound("/srv/models: version 9 does not exist", [{"field": "/srv/models/9", "n": 9}])
    body = orjson.loads(render(exc, {"/srv/models": "<models>"}).body)["error"]
    assert body["message"] == "<models>: version 9 does not exist"
    assert body["details"] == [{"field": "<models>/9", "n": 9}]
