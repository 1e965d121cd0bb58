"""Retrain requests and audit records round-trip through SQLite and PostgreSQL."""

from __future__ import annotations

from app.monitoring import retrain_log
from app.monitoring.store import Store


def test_requests_are_pending_until_consumed(store: Store) -> None:
    first = retrain_log.request_retrain(store.engine, "drift alert", "alice")
    second = retrain_log.request_retrain(store.engine, "new project")
    pending = retrain_log.pending_requests(store.engine)
    assert [r.id for r in pending] == [first.id, second.id]
    assert pending[0].reason == "drift alert" and pending[0].requested_by == "alice"
    retrain_log.consume_requests(store.engine, [first.id], audit_id=7)
    assert [r.id for r in retrain_log.pending_requests(store.engine)] == [second.id]
    retrain_log.consume_requests(store.engine, [], audit_id=8)  # nothing to do


def test_audit_records_keep_their_full_json_newest_first(store: Store) -> None:
    for action in ("none", "promoted"):
        retrain_log.write_audit(
            store.engine,
            {"time": 1.0, "action": action, "reason": "r", "fired": ["drift", "on_demand"],
             "champion_version": 1, "challenger_version": 2, "deployed": "direct",
             "triggers": [{"name": "drift", "fired": True, "value": 0.6, "threshold": 0.5}]},
        )  # fmt: skip
    records = retrain_log.recent_audit(store.engine, limit=5)
    assert [r["action"] for r in records] == ["promoted", "none"]
    assert records[0]["triggers"][0]["value"] == 0.6 and records[0]["id"] > records[1]["id"]
    assert len(retrain_log.recent_audit(store.engine, limit=1)) == 1
