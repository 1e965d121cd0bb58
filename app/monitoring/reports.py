"""Stored results of the scheduled job: drift reports and performance/data-quality summaries.

The newest row of each kind wins, so every worker and replica serves the same cached result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, text, update

from app.monitoring.tables import drift_reports, summaries


@dataclass(frozen=True, slots=True)
class StoredDriftReport:
    """The newest drift run: status ('ok' | 'not_enough_data' | 'error'), its JSON and Evidently HTML."""

    computed_at: float
    status: str
    report: dict[str, Any]
    html: str | None


def save_drift_report(engine: Engine, status: str, report: dict[str, Any], html: str | None = None) -> None:
    """Store one drift run; readers take the newest, and only the newest keeps its (MB-sized) HTML."""
    with engine.begin() as conn:
        new_id = conn.execute(
            insert(drift_reports).values(computed_at=time.time(), status=status, report=json.dumps(report), html=html)
        ).inserted_primary_key
        if html is not None and new_id is not None:
            older = (drift_reports.c.id < new_id[0]) & drift_reports.c.html.is_not(None)
            conn.execute(update(drift_reports).where(older).values(html=None))


def latest_drift_report(engine: Engine, with_html: bool = False) -> StoredDriftReport | None:
    """The newest drift run, or None before the first one."""
    columns = [drift_reports.c.computed_at, drift_reports.c.status, drift_reports.c.report]
    query = select(*columns, drift_reports.c.html if with_html else text("NULL"))
    query = query.order_by(drift_reports.c.id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return StoredDriftReport(float(row[0]), str(row[1]), json.loads(row[2]), row[3])


def save_summary(engine: Engine, kind: str, report: dict[str, Any]) -> None:
    """Store one performance/data-quality result of the scheduled job."""
    with engine.begin() as conn:
        conn.execute(insert(summaries).values(computed_at=time.time(), kind=kind, report=json.dumps(report)))


def latest_summary(engine: Engine, kind: str) -> tuple[float, dict[str, Any]] | None:
    """(computed_at, report) of the newest summary of `kind`, or None."""
    query = select(summaries.c.computed_at, summaries.c.report).where(summaries.c.kind == kind)
    with engine.connect() as conn:
        row = conn.execute(query.order_by(summaries.c.id.desc()).limit(1)).first()
    return None if row is None else (float(row[0]), json.loads(row[1]))
