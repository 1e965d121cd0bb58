"""The monitoring database itself: connect (SQLite file or PostgreSQL URL), migrate, prune old rows."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from app.monitoring.tables import (
    MIGRATIONS,
    drift_reports,
    predictions,
    rejections,
    schema_version,
    shadow_predictions,
    summaries,
)

MIGRATION_ATTEMPTS = 5
MIGRATION_LOCK = 4242000001  # PostgreSQL advisory key that serialises migrations across processes


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while the writer thread (or another worker) appends; NORMAL is durable in WAL.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def connect(url: str, schema: str | None = None) -> Engine:
    """An engine on `url`; with `schema` (PostgreSQL only) every table lives in that schema, created if needed."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if schema is not None:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def migrate(engine: Engine) -> int:
    """Apply pending migrations in order (serialised across processes); return the schema version."""
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            return _migrate_once(engine)
        except DBAPIError:
            # Two workers starting at once may race on CREATE TABLE (SQLite has no advisory lock).
            if attempt == MIGRATION_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _migrate_once(engine: Engine) -> int:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
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


def version(engine: Engine) -> int:
    """The applied schema version (of a migrated database)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def apply_retention(engine: Engine, retention_days: float, keep_reports: int = 50, now: float | None = None) -> int:
    """Delete logged predictions (with their shadow scores) and rejections older than `retention_days`,
    and all but the newest reports; return the number of predictions deleted."""
    cutoff = (now or time.time()) - retention_days * 86400.0
    with engine.begin() as conn:
        deleted = conn.execute(delete(predictions).where(predictions.c.time < cutoff)).rowcount
        conn.execute(delete(rejections).where(rejections.c.time < cutoff))
        conn.execute(delete(shadow_predictions).where(shadow_predictions.c.time < cutoff))
        keep = select(drift_reports.c.id).order_by(drift_reports.c.id.desc()).limit(keep_reports)
        conn.execute(delete(drift_reports).where(drift_reports.c.id.not_in(keep)))
        keep = select(summaries.c.id).order_by(summaries.c.id.desc()).limit(2 * keep_reports)
        conn.execute(delete(summaries).where(summaries.c.id.not_in(keep)))
    return int(deleted or 0)
