"""Retrain requests (`POST /retrain`) and the retrain audit trail, in the monitoring database.

Both sides use it: the service records requests, the trainer (`commitrisk retrain`) consumes them and writes
one audit record per decision. The tables are part of the monitoring schema (`app/monitoring/tables.py`,
migration 3), so `Store.open` creates them like every other table; `time` columns are Unix seconds like the rest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from app.monitoring.tables import retrain_audit, retrain_requests


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """One pending on-demand request."""

    id: int
    requested_at: float
    reason: str
    requested_by: str | None


def request_retrain(engine: Engine, reason: str, requested_by: str | None = None) -> RetrainRequest:
    """Record an on-demand retrain request; the next trainer run picks it up."""
    now = time.time()
    with engine.begin() as conn:
        key = conn.execute(
            insert(retrain_requests).values(requested_at=now, reason=reason, requested_by=requested_by)
        ).inserted_primary_key
    return RetrainRequest(int(key[0]) if key else 0, now, reason, requested_by)


def pending_requests(engine: Engine) -> list[RetrainRequest]:
    """Requests not yet consumed, oldest first."""
    query = (
        select(retrain_requests.c.id, retrain_requests.c.requested_at, retrain_requests.c.reason)
        .add_columns(retrain_requests.c.requested_by)
        .where(retrain_requests.c.consumed_at.is_(None))
        .order_by(retrain_requests.c.id)
    )
    with engine.connect() as conn:
        return [RetrainRequest(int(r[0]), float(r[1]), str(r[2]), r[3]) for r in conn.execute(query)]


def consume_requests(engine: Engine, ids: list[int], audit_id: int) -> None:
    """Mark requests as answered by the audit record `audit_id`."""
    if ids:
        with engine.begin() as conn:
            conn.execute(
                update(retrain_requests)
                .where(retrain_requests.c.id.in_(ids))
                .values(consumed_at=time.time(), audit_id=audit_id)
            )


def write_audit(engine: Engine, record: dict[str, Any]) -> int:
    """Store one decision (keys: time, action, reason, fired, champion/challenger version, deployed)."""
    fired = record.get("fired") or []
    with engine.begin() as conn:
        key = conn.execute(
            insert(retrain_audit).values(
                time=float(record["time"]),
                action=str(record["action"]),
                reason=str(record["reason"]),
                fired=",".join(fired)[:200],
                champion_version=record.get("champion_version"),
                challenger_version=record.get("challenger_version"),
                deployed=record.get("deployed"),
                record=json.dumps(record, default=str),
            )
        ).inserted_primary_key
    return int(key[0]) if key else 0


def recent_audit(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest audit records (full JSON, plus their `id`), newest first."""
    query = select(retrain_audit.c.id, retrain_audit.c.record).order_by(retrain_audit.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [{"id": int(row[0]), **json.loads(row[1])} for row in conn.execute(query)]
