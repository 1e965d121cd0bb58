"""The prediction log's store: one engine on the monitoring database (SQLite file by default, PostgreSQL by URL).

`Store` appends the log and reads its windows itself; labels, stored reports and retention live in their own
modules (labels, reports, database) and are reachable from here so a caller holds one handle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, Select, func, insert, select

from app.contract import FEATURES
from app.monitoring import database, labels, reports
from app.monitoring.appender import Appender
from app.monitoring.pacer import unpaced
from app.monitoring.partitions import Period
from app.monitoring.reports import StoredDriftReport
from app.monitoring.tables import (
    FEATURE_COLUMNS,
    PREDICTION_COLUMNS,
    SHADOW_COLUMNS,
    log_receipts,
    predictions,
    rejections,
    shadow_predictions,
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


class Store:
    """The monitoring database: build with `Store.open(url)`, which also migrates the schema."""

    def __init__(self, engine: Engine, schema: str | None = None, partition: Period | None = None) -> None:
        self.engine = engine
        # COMMITRISK_LOG_PARTITION, applied by `migrate` and `apply_retention`; None: the layout is left alone.
        self.partition = partition
        self._predictions = Appender(engine, schema, predictions, PREDICTION_COLUMNS)
        self._shadows = Appender(engine, schema, shadow_predictions, SHADOW_COLUMNS)
        # Each transaction's receipt row, straight to the driver too: building, coercing and compiling two Core
        # statements cost more than writing the rows of a small transaction.
        self._receipts = Appender(engine, schema, log_receipts, [log_receipts.c.id.name, log_receipts.c.time.name])
        self._forget_receipt = f"DELETE FROM {self._receipts.name} WHERE id = {self._receipts.mark}"

    @classmethod
    def open(cls, url: str, schema: str | None = None, partition: Period | None = None) -> Store:
        """Connect to `url` (tables in `schema` when given, PostgreSQL only) and apply pending migrations."""
        engine = database.connect(url, schema)
        database.migrate(engine, partition)
        return cls(engine, schema, partition)

    @classmethod
    def unopened(
        cls, url: str, schema: str | None = None, timeout: float = 5.0, partition: Period | None = None
    ) -> Store:
        """A store that has not connected yet (the service's: `Availability.check` connects and migrates)."""
        return cls(database.connect(url, schema, timeout), schema, partition)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def migrate(self) -> int:
        """Apply pending migrations and the partition layout (see `database.migrate`); return the schema version."""
        return database.migrate(self.engine, self.partition)

    def version(self) -> int:
        """The applied schema version."""
        return database.version(self.engine)

    def ping(self) -> None:
        """One round trip to the database (raises when it cannot be reached)."""
        database.ping(self.engine)

    # --- the prediction log: appended by app/monitoring/prediction_log.py's writer, read as windows ---

    def append_log(
        self,
        values: Sequence[tuple[Any, ...]],
        shadow_values: Sequence[tuple[Any, ...]],
        rejected: Sequence[dict[str, Any]],
        receipt: str | None = None,
        previous: str | None = None,
        pace: Callable[[], None] = unpaced,
    ) -> None:
        """One transaction of the prediction log: rows in `PREDICTION_COLUMNS` / `SHADOW_COLUMNS` order, rejections;
        with `receipt`, also that `log_receipts` row (and `previous` one deleted): see `landed`. `pace` is called
        between statements (the writer's `Pacer`)."""
        if not (values or shadow_values or rejected):
            return
        with self.engine.begin() as conn:
            self._predictions.append(conn, values, pace)
            self._shadows.append(conn, shadow_values, pace)
            if rejected:
                conn.execute(insert(rejections), list(rejected))
            if receipt is not None:
                self._receipts.append(conn, [(receipt, time.time())])
            if previous is not None:
                conn.exec_driver_sql(self._forget_receipt, (previous,))

    def landed(self, receipt: str) -> bool:
        """Whether the transaction that carried `receipt` was committed (asked after its connection was lost)."""
        with self.engine.connect() as conn:
            return conn.execute(select(log_receipts.c.id).where(log_receipts.c.id == receipt)).first() is not None

    def insert_predictions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append prediction rows (keys: the `predictions` columns except `id`; missing ones are NULL)."""
        self.append_log([tuple(row.get(c) for c in PREDICTION_COLUMNS) for row in rows], (), ())

    def insert_rejections(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append rejected-input counts (keys: time, reason, count) in one transaction."""
        self.append_log((), (), rows)

    def window(
        self,
        rows: int | None = None,
        days: float | None = None,
        now: float | None = None,
        repository: str | None = None,
    ) -> Window:
        """The newest `rows` predictions, or those of the last `days` days (days wins when both are set);
        only those of `repository` when given."""
        query = _of(select(*WINDOW_COLUMNS).order_by(predictions.c.id.desc()), repository)
        with self.engine.connect() as conn:
            fetched = conn.execute(_newest(query, rows, days, now)).all()
        return _to_window(fetched)

    def labelled_window(
        self,
        rows: int | None = None,
        days: float | None = None,
        now: float | None = None,
        repository: str | None = None,
    ) -> tuple[Window, np.ndarray]:
        """Labelled predictions and the `buggy` array: each label joins one prediction (`labels.labelled_queries`:
        the one it names by request id, else the commit's first), so re-posting a commit changes nothing."""
        since = None if days is None else (now or time.time()) - days * 86400.0
        newest = rows if days is None else None
        fetched: list[Any] = []
        with self.engine.connect() as conn:
            lateral = conn.dialect.name == "postgresql"
            for query in labels.labelled_queries(WINDOW_COLUMNS, newest, since, repository, lateral):
                fetched += conn.execute(query).all()
        fetched.sort(key=lambda row: -row[-1])  # resolved and pending labels, newest prediction first
        fetched = fetched[:newest] if newest is not None else fetched
        buggy = np.array([bool(row[-2]) for row in fetched], dtype=bool)
        return _to_window([row[:-2] for row in fetched]), buggy

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

    # --- the rest of the database, on this engine (one handle for training/, bench/ and the job) ---

    def upsert_feedback(self, items: Iterable[dict[str, Any]]) -> int:
        """Insert or replace labels by commit id (see `labels.upsert_feedback`)."""
        return labels.upsert_feedback(self.engine, items)

    def save_drift_report(self, status: str, report: dict[str, Any], html: str | None = None) -> None:
        """Store one drift run (see `reports.save_drift_report`)."""
        reports.save_drift_report(self.engine, status, report, html)

    def latest_drift_report(self, with_html: bool = False) -> StoredDriftReport | None:
        """The newest drift run, or None before the first one."""
        return reports.latest_drift_report(self.engine, with_html)

    def save_summary(self, kind: str, report: dict[str, Any]) -> None:
        """Store one performance/data-quality result of the scheduled job."""
        reports.save_summary(self.engine, kind, report)

    def latest_summary(self, kind: str) -> tuple[float, dict[str, Any]] | None:
        """(computed_at, report) of the newest summary of `kind`, or None."""
        return reports.latest_summary(self.engine, kind)

    def apply_retention(self, retention_days: float, keep_reports: int = 50, now: float | None = None) -> int:
        """Remove rows older than `retention_days` (whole partitions when partitioned) and all but the newest reports,
        creating partitions ahead first (see `database.apply_retention`); then re-resolve the labels that joined a
        removed prediction, and the pending ones (`labels.release_expired`)."""
        now = time.time() if now is None else now
        removed = database.apply_retention(self.engine, retention_days, keep_reports, now, self.partition)
        labels.release_expired(self.engine, now - retention_days * 86400.0)
        return removed


# The columns `_to_window` reads, in its order.
WINDOW_COLUMNS = (*FEATURE_COLUMNS, predictions.c.probability, predictions.c.label, predictions.c.time,
                  predictions.c.commit_id)  # fmt: skip


def _of(query: Select[Any], repository: str | None) -> Select[Any]:
    """The predictions of one repository (as the client sent it), or all when None."""
    return query if repository is None else query.where(predictions.c.repository == repository)


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
