from __future__ import annotations

import asyncio
from typing import Any

import orjson

from app.api.answer import JSONAnswer, json_answer
from app.predictor import Prediction


def _sent(response: JSONAnswer) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    asyncio.run(response({"type": "http"}, receive, send))
    return messages


def test_an_answer_sends_its_bytes_with_length_and_json_type() -> None:
    body = '{"a":"é"}'.encode()
    start, sent = _sent(JSONAnswer(body, 201))
    assert start["status"] == 201 and sent["body"] == body
    assert dict(start["headers"]) == {b"content-length": str(len(body)).encode(), b"content-type": b"application/json"}


def test_json_answer_encodes_predictions_as_the_route_answers_them() -> None:
    p = Prediction(0.25, False, "low", 0.5, 3, [])
    response = json_answer({"p": p})
    assert orjson.loads(response.body) == {
        "p": {
            "probability": 0.25,
            "buggy": False,
            "risk_band": "low",
            "threshold": 0.5,
            "model_version": 3,
            "factors": [],
        }
    }
    assert response.headers["content-type"] == "application/json"
