"""Prediction log, late labels and cached drift reports (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, Select, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from app.contract import FEATURES
from app.monitoring.appender import Appender
from app.monitoring.tables import (
    FEATURE_COLUMNS,
    MIGRATIONS,
    PREDICTION_COLUMNS,
    SHADOW_COLUMNS,
    drift_reports,
    feedback,
    predictions,
    rejections,
    schema_version,
    shadow_predictions,
    summaries,
)


@dataclass(frozen=True, slots=True)
class Window:
    """Logged predictions, newest first: one numpy column per feature plus scores and ids."""

    features: dict[str, np.ndarray]
    probability: np.ndarray
    label: np.ndarray
    time: np.ndarray
    commit_id: list[str | None]

    @property
    def rows(self) -> int:
        """Number of predictions in the window."""
        return len(self.probability)


@dataclass(frozen=True, slots=True)
class StoredDriftReport:
    """The newest drift run: status ('ok' | 'not_enough_data' | 'error'), its JSON and Evidently HTML."""

    computed_at: float
    status: str
    report: dict[str, Any]
    html: str | None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while the writer thread (or another worker) appends; NORMAL is durable in WAL.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """The monitoring database: build with `Store.open(url)`, which also migrates the schema."""

    def __init__(self, engine: Engine, schema: str | None = None) -> None:
        self.engine = engine
        self._appenders = {
            "predictions": Appender(engine, schema, "predictions", PREDICTION_COLUMNS),
            "shadow_predictions": Appender(engine, schema, "shadow_predictions", SHADOW_COLUMNS),
        }

    @classmethod
    def open(cls, url: str, schema: str | None = None) -> Store:
        """Connect to `url` (tables in `schema` when given, PostgreSQL only) and apply pending migrations."""
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        if schema is not None:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            engine = engine.execution_options(schema_translate_map={None: schema})
        store = cls(engine, schema)
        store.migrate()
        return store

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def migrate(self) -> int:
        """Apply pending migrations in order (serialised across processes); return the schema version."""
        for attempt in range(5):
            try:
                return self._migrate_once()
            except DBAPIError:
                # Two workers starting at once may race on CREATE TABLE (SQLite has no advisory lock).
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _migrate_once(self) -> int:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(4242000001)"))
            schema_version.create(conn, checkfirst=True)
            current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
            for version, description, upgrade in MIGRATIONS:
                if version > current:
                    upgrade(conn)
                    conn.execute(
                        insert(schema_version).values(version=version, description=description, applied_at=time.time())
                    )
                    current = version
            return current

    def version(self) -> int:
        """The applied schema version."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)

    def insert_predictions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append prediction rows (keys: the `predictions` columns except `id`; missing ones are NULL)."""
        self.append_log([tuple(row.get(c) for c in PREDICTION_COLUMNS) for row in rows], (), ())

    def append_log(
        self,
        values: Sequence[tuple[Any, ...]],
        shadow_values: Sequence[tuple[Any, ...]],
        rejected: Sequence[dict[str, Any]],
    ) -> None:
        """One transaction of the prediction log: rows in `PREDICTION_COLUMNS` / `SHADOW_COLUMNS` order, rejections."""
        if not (values or shadow_values or rejected):
            return
        with self.engine.begin() as conn:
            self._appenders["predictions"].append(conn, values)
            self._appenders["shadow_predictions"].append(conn, shadow_values)
            if rejected:
                conn.execute(insert(rejections), list(rejected))

    def insert_rejections(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append rejected-input counts (keys: time, reason, count) in one transaction."""
        self.append_log((), (), rows)

    def upsert_feedback(self, items: Iterable[dict[str, Any]]) -> int:
        """Insert or replace labels by commit id (idempotent: the same payload twice changes nothing)."""
        now = time.time()
        # One row per commit id: the last item wins, as a second request would.
        by_commit = {item["commit_id"]: {**item, "received_at": now} for item in items}
        rows = [
            {key: row.get(key) for key in ("commit_id", "repository", "buggy", "fixed_by", "labeled_at")}
            | {"received_at": now}
            for row in by_commit.values()
        ]
        if not rows:
            return 0
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as upsert
            else:
                from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
            stmt = upsert(feedback)
            updates = {c: stmt.excluded[c] for c in ("repository", "buggy", "fixed_by", "labeled_at")}
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[feedback.c.commit_id],
                    set_={**updates, "received_at": stmt.excluded.received_at},
                ),
                rows,
            )
        return len(rows)

    def window(self, rows: int | None = None, days: float | None = None, now: float | None = None) -> Window:
        """The newest `rows` predictions, or those of the last `days` days (days wins when both are set)."""
        query = select(*WINDOW_COLUMNS).order_by(predictions.c.id.desc())
        with self.engine.connect() as conn:
            fetched = conn.execute(_newest(query, rows, days, now)).all()
        return _to_window(fetched)

    def labelled_window(
        self, rows: int | None = None, days: float | None = None, now: float | None = None
    ) -> tuple[Window, np.ndarray]:
        """Predictions joined with their labels (newest prediction per commit) and the `buggy` array."""
        newest = (
            select(func.max(predictions.c.id).label("id"))
            .where(predictions.c.commit_id.is_not(None))
            .group_by(predictions.c.commit_id)
            .subquery()
        )
        query = (
            select(*WINDOW_COLUMNS, feedback.c.buggy)
            .join(newest, newest.c.id == predictions.c.id)
            .join(feedback, feedback.c.commit_id == predictions.c.commit_id)
            .order_by(predictions.c.id.desc())
        )
        with self.engine.connect() as conn:
            fetched = conn.execute(_newest(query, rows, days, now)).all()
        buggy = np.array([bool(row[-1]) for row in fetched], dtype=bool)
        return _to_window([row[:-1] for row in fetched]), buggy

    def rejection_counts(self, since: float) -> dict[str, int]:
        """Rejected inputs per reason since `since` (Unix seconds)."""
        query = (
            select(rejections.c.reason, func.sum(rejections.c.count))
            .where(rejections.c.time >= since)
            .group_by(rejections.c.reason)
        )
        with self.engine.connect() as conn:
            return {reason: int(total) for reason, total in conn.execute(query)}

    def count_predictions(self) -> int:
        """Number of logged predictions."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(predictions)).scalar() or 0)

    def save_drift_report(self, status: str, report: dict[str, Any], html: str | None = None) -> None:
        """Store one drift run; readers take the newest, and only the newest keeps its (MB-sized) HTML."""
        with self.engine.begin() as conn:
            new_id = conn.execute(
                insert(drift_reports).values(
                    computed_at=time.time(), status=status, report=json.dumps(report), html=html
                )
            ).inserted_primary_key
            if html is not None and new_id is not None:
                older = (drift_reports.c.id < new_id[0]) & drift_reports.c.html.is_not(None)
                conn.execute(update(drift_reports).where(older).values(html=None))

    def latest_drift_report(self, with_html: bool = False) -> StoredDriftReport | None:
        """The newest drift run, or None before the first one."""
        columns = [drift_reports.c.computed_at, drift_reports.c.status, drift_reports.c.report]
        query = select(*columns, drift_reports.c.html if with_html else text("NULL"))
        query = query.order_by(drift_reports.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredDriftReport(float(row[0]), str(row[1]), json.loads(row[2]), row[3])

    def save_summary(self, kind: str, report: dict[str, Any]) -> None:
        """Store one performance/data-quality result of the scheduled job."""
        with self.engine.begin() as conn:
            conn.execute(insert(summaries).values(computed_at=time.time(), kind=kind, report=json.dumps(report)))

    def latest_summary(self, kind: str) -> tuple[float, dict[str, Any]] | None:
        """(computed_at, report) of the newest summary of `kind`, or None."""
        query = select(summaries.c.computed_at, summaries.c.report).where(summaries.c.kind == kind)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(summaries.c.id.desc()).limit(1)).first()
        return None if row is None else (float(row[0]), json.loads(row[1]))

    def apply_retention(self, retention_days: float, keep_reports: int = 50, now: float | None = None) -> int:
        """Delete logged predictions (with their shadow scores) and rejections older than `retention_days`,
        and all but the newest reports."""
        cutoff = (now or time.time()) - retention_days * 86400.0
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(predictions).where(predictions.c.time < cutoff)).rowcount
            conn.execute(delete(rejections).where(rejections.c.time < cutoff))
            conn.execute(delete(shadow_predictions).where(shadow_predictions.c.time < cutoff))
            keep = select(drift_reports.c.id).order_by(drift_reports.c.id.desc()).limit(keep_reports)
            conn.execute(delete(drift_reports).where(drift_reports.c.id.not_in(keep)))
            keep = select(summaries.c.id).order_by(summaries.c.id.desc()).limit(2 * keep_reports)
            conn.execute(delete(summaries).where(summaries.c.id.not_in(keep)))
        return int(deleted or 0)


# The columns `_to_window` reads, in its order.
WINDOW_COLUMNS = (*FEATURE_COLUMNS, predictions.c.probability, predictions.c.label, predictions.c.time,
                  predictions.c.commit_id)  # fmt: skip


def _newest(query: Select[Any], rows: int | None, days: float | None, now: float | None) -> Select[Any]:
    """Bound a newest-first query to the last `days` days, else to `rows` rows (days wins when both are set)."""
    if days is not None:
        return query.where(predictions.c.time >= (now or time.time()) - days * 86400.0)
    return query.limit(rows) if rows is not None else query


def _to_window(fetched: Sequence[Sequence[Any]]) -> Window:
    n_features = len(FEATURES)
    values = np.array([row[: n_features + 3] for row in fetched], dtype=np.float64).reshape(
        len(fetched), n_features + 3
    )
    return Window(
        features={name: values[:, i] for i, name in enumerate(FEATURES)},
        probability=values[:, n_features],
        label=values[:, n_features + 1].astype(bool),
        time=values[:, n_features + 2],
        commit_id=[row[n_features + 3] for row in fetched],
    )
