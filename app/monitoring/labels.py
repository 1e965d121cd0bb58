"""Late labels: the `feedback` table (one row per commit id, last write wins) and what joins it.

Labels arrive weeks after the predictions (SZZ needs the fixing commit). Each label joins ONE logged prediction
of its commit: the one whose `request_id` the label names, else the commit's FIRST prediction. So a client
without the admin token who posts /predict again for a labelled commit (other metrics, other probability) adds a
row that no label joins: monitored performance and the data retraining learns from stay as they were.

That prediction is resolved once, not at every read (`feedback.prediction_id`, schema 8): when the label arrives
(`upsert_feedback`), and for labels still pending (posted before their prediction was logged) at each retention
run of the monitoring job (`release_expired`), which also re-points a label whose prediction retention removed at
the commit's oldest surviving one — the prediction the rule picks among the rows left. Reads join resolved labels
by that indexed id and still apply the rule at read time to the pending ones, so every answer is the rule's, but
one: a label whose commit retention removed entirely is `EXPIRED` and joins nothing, even if the commit is posted
again later (the answer it was about is gone; a new label for the commit resolves afresh).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, Engine, Select, Subquery, Table, exists, func, select, true, update

from app.monitoring.tables import (
    EXPIRED,
    feedback,
    predictions,
    resolve_labels,
    shadow_predictions,
)

RELEASING = -1  # a label being re-resolved by `release_expired`, inside its transaction only
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


def labelled_queries(
    columns: Sequence[Any],
    newest: int | None = None,
    since: float | None = None,
    repository: str | None = None,
    lateral: bool = False,
) -> tuple[Select[Any], Select[Any]]:
    """Two selects of `columns` (of `predictions`) + buggy + the prediction id, one row per label, newest first:
    the resolved labels joined by their indexed `prediction_id`, and the pending ones by the rule (`labelled_ids`);
    each bounded to the `newest` rows, the rows logged `since`, the predictions of `repository`. The two sets are
    disjoint: the caller merges them by id. `lateral` (PostgreSQL): see below."""
    rows, labels = predictions.c, feedback.c
    pending = labelled_ids(predictions, labels.prediction_id.is_(None))
    waiting = select(*columns, pending.c.buggy, rows.id).join(pending, pending.c.id == rows.id)
    if repository is None:
        # The newest labels from their own index first, then each one's row by id and time. LATERAL makes that a
        # lookup per label (in one partition): as a plain join of two columns the planner expects one row and
        # merges or hashes the whole log instead. SQLite only ever loops, and has no LATERAL.
        chosen = select(labels.prediction_id, labels.prediction_time, labels.buggy)
        chosen = chosen.where(labels.prediction_id > EXPIRED)
        if since is not None:
            chosen = chosen.where(labels.prediction_time >= since)
        if newest is not None:
            chosen = chosen.order_by(labels.prediction_id.desc()).limit(newest)
        picked = chosen.subquery()
        on = (rows.id == picked.c.prediction_id) & (rows.time == picked.c.prediction_time)
        if lateral:
            row = select(*columns, rows.id).where(on).limit(1).lateral()  # LIMIT: never flattened back
            *values, key = row.c
            resolved = select(*values, picked.c.buggy, key).select_from(picked).join(row, true())
        else:
            resolved, key = select(*columns, picked.c.buggy, rows.id).join(picked, on), rows.id
    else:  # the repository's newest rows from its (repository, id) index, each looked up among the labels
        resolved = (
            select(*columns, labels.buggy, rows.id)
            .select_from(predictions)
            .join(feedback, labels.prediction_id == rows.id)
        )
        resolved, key = resolved.where(rows.repository == repository), rows.id
        resolved = resolved if since is None else resolved.where(rows.time >= since)
        waiting = waiting.where(rows.repository == repository)
    if since is not None:
        waiting = waiting.where(rows.time >= since)
    if newest is not None:
        resolved = resolved.order_by(key.desc()).limit(newest)
        waiting = waiting.order_by(rows.id.desc()).limit(newest)
    return resolved, waiting


def release_expired(engine: Engine, cutoff: float) -> None:
    """After retention removed rows older than `cutoff`: point each label whose prediction is gone at the commit's
    oldest surviving one (`EXPIRED` when none is left), and resolve the pending ones (logged since, perhaps)."""
    rows, labels = predictions.c, feedback.c
    with engine.begin() as conn:
        oldest = conn.execute(select(func.min(rows.time))).scalar()
        gone = labels.prediction_id > EXPIRED
        if oldest is not None:
            # Older than every surviving row: gone without a look. A partitioned log keeps the partition that
            # straddles the cutoff whole: between the two, look the prediction up (by id and time: one partition).
            alive = exists().where(rows.id == labels.prediction_id, rows.time == labels.prediction_time)
            gone &= (labels.prediction_time < oldest) | ((labels.prediction_time < cutoff) & ~alive)
        # Marked, resolved as a set, the rest expired: in one transaction, so no reader sees the mark.
        conn.execute(update(feedback).where(gone).values(prediction_id=RELEASING, prediction_time=None))
        resolve_labels(conn, labels.prediction_id == RELEASING)
        conn.execute(update(feedback).where(labels.prediction_id == RELEASING).values(prediction_id=EXPIRED))
        resolve_labels(conn)


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
        _resolve_commits(conn, list(by_commit))  # a label may name another request than before: resolve again
    return len(rows)


def _resolve_commits(conn: Connection, commit_ids: Sequence[str]) -> None:
    """`tables.resolve_labels` for the labels of `commit_ids`, one index lookup each (a request's labels)."""
    rows, label = predictions.c, feedback.c
    chosen = (
        select(rows.id)
        .where(rows.commit_id == label.commit_id, label.request_id.is_(None) | (rows.request_id == label.request_id))
        # `+ 0`: the planner must look the commit up by its index, never walk the whole log by id for the first.
        .order_by(rows.id + 0)
        .limit(1)
        .scalar_subquery()
    )
    at = select(rows.time).where(rows.id == label.prediction_id).limit(1).scalar_subquery()
    for start in range(0, len(commit_ids), 1000):  # bound the IN list (SQLite's variable limit)
        some = label.commit_id.in_(commit_ids[start : start + 1000])
        conn.execute(update(feedback).where(some).values(prediction_id=chosen, prediction_time=None))
        conn.execute(update(feedback).where(some, label.prediction_id.is_not(None)).values(prediction_time=at))


def labelled_shadow_scores(engine: Engine, version: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buggy, champion probability, shadow probability) of the labelled shadow pairs of `version` (one per label)."""
    pairs = shadow_predictions.c
    chosen = labelled_ids(shadow_predictions, pairs.shadow_version == version)
    query = select(pairs.probability, pairs.shadow_probability, chosen.c.buggy).join(chosen, chosen.c.id == pairs.id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    values = np.array([(r[0], r[1], bool(r[2])) for r in rows], dtype=np.float64).reshape(len(rows), 3)
    return values[:, 2].astype(bool), values[:, 0], values[:, 1]
