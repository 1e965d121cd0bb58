"""Late labels: the `feedback` table (one row per commit id, last write wins) and what joins it.

Labels arrive weeks after the predictions (SZZ needs the fixing commit). Each label joins ONE logged prediction
of its commit: the one whose `request_id` the label names, else the commit's FIRST prediction. So a client
without the admin token who posts /predict again for a labelled commit (other metrics, other probability) adds a
row that no label joins: monitored performance and the data retraining learns from stay as they were.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, Subquery, Table, func, select, true

from app.monitoring.tables import feedback, predictions, shadow_predictions

LABEL_COLUMNS = ("commit_id", "repository", "buggy", "fixed_by", "labeled_at", "request_id")


def labelled_ids(table: Table = predictions, where: ColumnElement[bool] | None = None) -> Subquery:
    """(id, buggy) of the one row of `table` (predictions or shadow_predictions, filtered by `where`) each label
    joins: the row with the request id the label names, else the commit's first row.

    One join and one aggregate over the labelled commits' rows only (never the whole log), so the planner cannot
    turn it into a rescan of an aggregate per label (seen at 40,000 rows: 60 s instead of milliseconds).
    """
    rows, labels = table.c, feedback.c
    named = labels.request_id.is_(None) | (labels.request_id == rows.request_id)
    return (
        select(func.min(rows.id).label("id"), labels.buggy)
        .join(feedback, labels.commit_id == rows.commit_id)
        .where(named, true() if where is None else where)
        .group_by(labels.commit_id, labels.buggy)
        .subquery()
    )


def upsert_feedback(engine: Engine, items: Iterable[dict[str, Any]]) -> int:
    """Insert or replace labels by commit id (idempotent: the same payload twice changes nothing)."""
    now = time.time()
    # One row per commit id: the last item wins, as a second request would.
    by_commit = {item["commit_id"]: item for item in items}
    rows = [{key: row.get(key) for key in LABEL_COLUMNS} | {"received_at": now} for row in by_commit.values()]
    if not rows:
        return 0
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        stmt = upsert(feedback)
        updates = {c: stmt.excluded[c] for c in LABEL_COLUMNS if c != "commit_id"}
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[feedback.c.commit_id],
                set_={**updates, "received_at": stmt.excluded.received_at},
            ),
            rows,
        )
    return len(rows)


def labelled_shadow_scores(engine: Engine, version: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buggy, champion probability, shadow probability) of the labelled shadow pairs of `version` (one per label)."""
    pairs = shadow_predictions.c
    chosen = labelled_ids(shadow_predictions, pairs.shadow_version == version)
    query = select(pairs.probability, pairs.shadow_probability, chosen.c.buggy).join(chosen, chosen.c.id == pairs.id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    values = np.array([(r[0], r[1], bool(r[2])) for r in rows], dtype=np.float64).reshape(len(rows), 3)
    return values[:, 2].astype(bool), values[:, 0], values[:, 1]
