"""Late labels: the `feedback` table (one row per commit id, last write wins) and what joins it.

Labels arrive weeks after the predictions (SZZ needs the fixing commit); they are joined with the
prediction log by `commit_id` when a window or a shadow comparison is read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from app.monitoring.tables import feedback, shadow_predictions

LABEL_COLUMNS = ("commit_id", "repository", "buggy", "fixed_by", "labeled_at")


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
    """(buggy, champion probability, shadow probability) of the logged shadow pairs of `version` with a label."""
    pairs = shadow_predictions.c
    query = (
        select(pairs.probability, pairs.shadow_probability, feedback.c.buggy)
        .join(feedback, feedback.c.commit_id == pairs.commit_id)
        .where(pairs.shadow_version == version)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    values = np.array([(r[0], r[1], bool(r[2])) for r in rows], dtype=np.float64).reshape(len(rows), 3)
    return values[:, 2].astype(bool), values[:, 0], values[:, 1]
