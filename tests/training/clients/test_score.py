"""The /predict request built from a mined row, the CI gate, and HTTP failures (real local server)."""

from __future__ import annotations

import pytest

from app.contract import FEATURES
from tests.support import PredictServer, prediction
from training.clients.score import ScoreError, fails_gate, post_predict, predict_payload
from training.mining.writer import CommitRow

ROW = CommitRow("ab" * 20, 1_600_000_000, "Ann", "a@x", "msg", False, ["a.py"],
                {name: float(i) for i, name in enumerate(FEATURES)})  # fmt: skip


def test_payload_has_the_15_metrics_and_the_commit_identity() -> None:
    payload = predict_payload(ROW, "demo")
    assert set(payload) == {*FEATURES, "commit_id", "repository", "author_date"}
    assert payload["commit_id"] == "demo_" + "ab" * 20
    assert (payload["repository"], payload["author_date"], payload["la"]) == ("demo", 1_600_000_000, 4.0)


def test_prediction_is_posted_to_predict(predict_server: PredictServer) -> None:
    predict_server.answer = prediction("medium")
    answer = post_predict(predict_server.url + "/", predict_payload(ROW, "demo"), timeout=5)
    assert answer["risk_band"] == "medium"
    assert answer == prediction("medium")
    assert predict_server.requests == [{"path": "/predict", "body": predict_payload(ROW, "demo")}]


@pytest.mark.parametrize(
    ("band", "fail_above", "fails"),
    [("low", None, False), ("high", None, False), ("low", "medium", False), ("medium", "medium", True),
     ("high", "medium", True), ("medium", "high", False), ("high", "high", True)],
)  # fmt: skip
def test_gate_fails_at_or_above_the_band(band: str, fail_above: str | None, fails: bool) -> None:
    assert fails_gate(band, fail_above) is fails


def test_service_errors_become_one_line(predict_server: PredictServer) -> None:
    predict_server.status = 503
    predict_server.answer = {"error": {"type": "ModelNotReady", "message": "no champion", "details": []}}
    with pytest.raises(ScoreError, match=r"/predict: HTTP 503 ModelNotReady: no champion$"):
        post_predict(predict_server.url, predict_payload(ROW, "demo"), timeout=5)
    predict_server.status = 200
    predict_server.answer = {"unexpected": True}
    with pytest.raises(ScoreError, match="not a prediction"):
        post_predict(predict_server.url, predict_payload(ROW, "demo"), timeout=5)


def test_an_unreachable_service_is_an_error() -> None:
    server = PredictServer()
    url = server.url
    server.close()  # nothing listens on that port any more
    with pytest.raises(ScoreError, match="ConnectError"):
        post_predict(url, predict_payload(ROW, "demo"), timeout=5)


def test_an_error_without_the_error_shape_names_the_status(predict_server: PredictServer) -> None:
    predict_server.status = 502
    predict_server.answer = "bad gateway from a proxy"  # type: ignore[assignment]
    with pytest.raises(ScoreError, match=r"/predict: HTTP 502 Bad Gateway$"):
        post_predict(predict_server.url, predict_payload(ROW, "demo"), timeout=5)
    predict_server.status = 200
    predict_server.answer = prediction("low") | {"risk_band": "extreme"}
    with pytest.raises(ScoreError, match=r"no valid risk_band"):
        post_predict(predict_server.url, predict_payload(ROW, "demo"), timeout=5)
