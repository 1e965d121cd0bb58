"""POST /retrain records a request (admin only); GET /retrain/audit shows decisions and pending requests."""

from __future__ import annotations

from typing import Any

from app.monitoring import retrain_log


def test_post_retrain_needs_the_admin_token(client: Any) -> None:
    assert client.post("/retrain").status_code == 401
    wrong = client.post("/retrain", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "Forbidden"


def test_post_retrain_queues_a_request_the_audit_view_lists(client: Any, admin: dict[str, str]) -> None:
    answer = client.post("/retrain", headers=admin, json={"reason": "new project onboarded", "requested_by": "ops"})
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "queued" and body["reason"] == "new project onboarded"
    empty = client.post("/retrain", headers=admin)  # no body: the default reason
    assert empty.status_code == 202 and empty.json()["id"] == body["id"] + 1
    audit = client.get("/retrain/audit").json()
    assert audit["pending_requests"] == [body["id"], body["id"] + 1] and audit["records"] == []
    engine = client.app.state.services.monitoring.store.engine
    retrain_log.write_audit(engine, {"time": 1.0, "action": "none", "reason": "no trigger fired", "fired": []})
    assert client.get("/retrain/audit?limit=1").json()["records"][0]["action"] == "none"


def test_post_retrain_refuses_bad_bodies(client: Any, admin: dict[str, str]) -> None:
    bad = client.post("/retrain", headers=admin, json={"reason": ""})
    assert bad.status_code == 422 and bad.json()["error"]["details"]
    extra = client.post("/retrain", headers=admin, json={"reason": "x", "force": True})
    assert extra.status_code == 422
    broken = client.post("/retrain", headers={**admin, "content-type": "application/json"}, content=b"{")
    assert broken.status_code == 400
    assert client.get("/retrain/audit?limit=0").status_code in (400, 422)


def test_a_retrain_reason_with_a_nul_character_is_422_naming_the_field(client: Any, admin: dict[str, str]) -> None:
    for field in ("reason", "requested_by"):
        response = client.post("/retrain", headers=admin, json={field: "a\u0000b"})
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
