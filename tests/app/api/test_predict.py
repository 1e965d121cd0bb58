from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from app.contract import FEATURES


def test_predict_answers_the_contract(client: Any, commit: dict[str, Any]) -> None:
    r = client.post("/predict", json=commit)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"request_id", "commit_id", "probability", "buggy", "risk_band", "threshold",
                         "model_version", "factors"}  # fmt: skip
    assert body["commit_id"] == "abc123" and body["model_version"] == 1
    assert 0 <= body["probability"] <= 1 and body["risk_band"] in {"low", "medium", "high"}
    assert body["buggy"] == (body["probability"] >= body["threshold"])
    assert body["factors"], "a 1,250-line change by a first-time author must have reasons"
    for factor in body["factors"]:
        assert set(factor) == {"feature", "value", "median", "effect", "reason", "contribution"}
        assert factor["feature"] in FEATURES and factor["effect"] > 0 and factor["reason"]
        assert factor["contribution"] is None  # a model without linear terms is explained by perturbation
    reasons = " | ".join(f["reason"] for f in body["factors"])
    assert "1,250 lines added" in reasons


def test_explain_false_skips_factors(client: Any, commit: dict[str, Any]) -> None:
    explained = client.post("/predict", json=commit).json()
    plain = client.post("/predict?explain=false", json=commit).json()
    assert plain["factors"] == []
    assert plain["probability"] == pytest.approx(explained["probability"], abs=1e-6)
    assert client.post("/predict?explain=maybe", json=commit).status_code == 422


def test_optional_fields_may_be_omitted(client: Any, commit: dict[str, Any]) -> None:
    metrics_only = {f: commit[f] for f in FEATURES}
    r = client.post("/predict", json={**metrics_only, "author_date": 1_700_000_000})
    assert r.status_code == 200 and r.json()["commit_id"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"la": -1}, "la"),
        ({"la": "12"}, "la"),
        ({"la": True}, "la"),
        ({"la": None}, "la"),
        ({"surprise": 1}, "surprise"),
        ({"author_date": "yesterday"}, "author_date"),
        ({"commit_id": 5}, "commit_id"),
    ],
)
def test_bad_fields_are_422_with_the_field_named(
    client: Any, commit: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    r = client.post("/predict", json={**commit, **change})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["type"] == "InvalidInput"
    assert field in [d["field"] for d in error["details"]]


def test_missing_fields_are_listed(client: Any, commit: dict[str, Any]) -> None:
    r = client.post("/predict", json={"ns": 1})
    assert r.status_code == 422
    missing = {d["field"] for d in r.json()["error"]["details"] if d["type"] == "missing"}
    assert missing == set(FEATURES) - {"ns"}


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_422(client: Any, commit: dict[str, Any], literal: bytes) -> None:
    import json

    body = json.dumps({**commit, "la": 0}).replace('"la": 0', '"la": ' + literal.decode()).encode()
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "la"


@pytest.mark.parametrize("body", [b"{", b"", b"not json", b'{"la": 1,}'])
def test_malformed_json_is_400(client: Any, body: bytes) -> None:
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "MalformedBody"


def test_non_object_json_is_422(client: Any) -> None:
    assert client.post("/predict", json=[1, 2, 3]).status_code == 422


def test_batch_preserves_order(client: Any, commit: dict[str, Any]) -> None:
    small = {**commit, "la": 1, "nf": 1, "entropy": 0, "exp": 500, "commit_id": "small"}
    commits = [commit, small, commit, small]
    single = [client.post("/predict?explain=false", json=c).json()["probability"] for c in commits]
    r = client.post("/predict/batch", json={"commits": commits})
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == 1
    assert [p["commit_id"] for p in body["predictions"]] == ["abc123", "small", "abc123", "small"]
    assert [p["probability"] for p in body["predictions"]] == pytest.approx(single, abs=1e-6)
    assert len({p["request_id"] for p in body["predictions"]}) == 4


def test_batch_limits_and_errors(client: Any, commit: dict[str, Any]) -> None:
    assert client.post("/predict/batch", json={"commits": []}).json()["predictions"] == []
    big = client.post("/predict/batch", json={"commits": [commit] * 1001})
    assert big.status_code == 413 and big.json()["error"]["type"] == "BatchTooLarge"
    bad = client.post("/predict/batch", json={"commits": [commit, {**commit, "ld": -3}]})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "commits.1.ld"
    assert client.post("/predict/batch", json={"items": []}).status_code == 422


def test_a_batch_answers_the_same_through_the_checked_path_and_through_pydantic(
    client: Any, commit: dict[str, Any]
) -> None:
    received: list[Any] = []
    client.app.state.services = dataclasses.replace(client.app.state.services, sink=received.append)
    commits = [commit, {**commit, "la": 7, "entropy": 0.25, "commit_id": "b", "repository": "r"}]
    # An int author_date beyond 2**53 is valid but not what the checked path takes: this batch goes to pydantic.
    unusual = [commits[0], {**commits[1], "author_date": 2**60}]
    plain, validated = (client.post("/predict/batch", json={"commits": c}).json() for c in (commits, unusual))
    strip = [{k: v for k, v in p.items() if k != "request_id"} for p in plain["predictions"]]
    assert strip == [{k: v for k, v in p.items() if k != "request_id"} for p in validated["predictions"]]
    assert (
        received[0].features.tolist()
        == received[1].features.tolist()
        == [[float(c[f]) for f in FEATURES] for c in commits]
    )
    assert received[0].commit_ids == received[1].commit_ids == ["abc123", "b"]
    assert received[0].repositories == received[1].repositories


def test_a_batch_with_nan_is_refused_naming_the_field(client: Any, commit: dict[str, Any]) -> None:
    body = json.dumps({"commits": [commit, commit]}).replace('"la": 1250', '"la": NaN', 1).encode()
    assert b"NaN" in body
    r = client.post("/predict/batch", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "commits.0.la"


def test_large_batch_is_scored_off_the_loop_and_matches(client: Any, commit: dict[str, Any]) -> None:
    r = client.post("/predict/batch", json={"commits": [commit] * 200})
    assert r.status_code == 200
    probabilities = {p["probability"] for p in r.json()["predictions"]}
    assert len(probabilities) == 1


def test_prediction_sink_receives_one_batch_per_request(client: Any, commit: dict[str, Any]) -> None:
    received: list[Any] = []
    # The services are built once per app; a list stands in for the sink chain (shadow → log) here.
    client.app.state.services = dataclasses.replace(client.app.state.services, sink=received.append)
    one = client.post("/predict", json=commit).json()
    two = client.post("/predict/batch", json={"commits": [commit, {**commit, "commit_id": "def456"}]}).json()
    assert [b.rows for b in received] == [1, 2]
    single, batch = received
    assert single.commit_ids == ["abc123"] and single.model_version == 1 and single.request_id == one["request_id"]
    assert single.probabilities.tolist() == [one["probability"]] and single.risk_bands == [one["risk_band"]]
    assert single.features.tolist() == [[float(commit[f]) for f in FEATURES]]  # the exact inputs, float64
    assert batch.commit_ids == ["abc123", "def456"]
    assert [p["request_id"] for p in two["predictions"]] == [f"{batch.request_id}-0", f"{batch.request_id}-1"]


def test_no_model_is_503_with_reason(tmp_path: Any, commit: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(models_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/p.db"))) as client:
        r = client.post("/predict", json=commit)
        assert r.status_code == 503
        assert "no model version is published" in r.json()["error"]["message"]
        assert client.post("/predict/batch", json={"commits": [commit]}).status_code == 503


def test_reasons_print_huge_values_in_scientific_notation(client: Any, commit: dict[str, Any]) -> None:
    huge = {**commit, "la": 3.4e38, "lt": 1.2e38}
    factors = client.post("/predict", json=huge).json()["factors"]
    reasons = " ".join(f["reason"] for f in factors)
    assert factors and not re.search(r"[0-9,]{20,}", reasons), reasons
    assert "e+38" in reasons
