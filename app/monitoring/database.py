"""The monitoring database itself: connect (SQLite file or PostgreSQL URL), migrate, prune old rows."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError, StatementError

from app.monitoring import partitions
from app.monitoring.partitions import Period
from app.monitoring.tables import (
    MIGRATIONS,
    drift_reports,
    log_receipts,
    predictions,
    rejections,
    schema_version,
    shadow_predictions,
    summaries,
)

log = logging.getLogger("commitrisk.database")

MIGRATION_ATTEMPTS = 5
WAL_ATTEMPTS = 20  # ≈ 10 s of retries in all
MIGRATION_LOCK = 4242000001  # PostgreSQL advisory key that serialises migrations across processes
EXAMPLE_URLS = "sqlite:///commitrisk.db or postgresql+psycopg://user:password@host:5432/db"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while the writer thread (or another worker) appends; NORMAL is durable in WAL.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # Switching a new file to WAL needs an exclusive lock that SQLite does not wait for (no busy handler): workers
    # opening a new database at once retry it instead of failing with "database is locked".
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def connect(url: str, schema: str | None = None, timeout: float = 5.0) -> Engine:
    """An engine on `url` that has not connected yet; with `schema` (PostgreSQL only) every table lives in that
    schema, created by `migrate`. `timeout`: seconds to wait for a PostgreSQL connection before giving up."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # A database that does not answer must cost a request seconds, not the OS's minutes-long TCP timeout;
        # libpq counts whole seconds, at least 2.
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            pool_timeout=timeout,
            connect_args={"connect_timeout": max(2, math.ceil(timeout))},
        )
    if schema is not None:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def check_url(url: str) -> str:
    """`url` when it names a database the service can use (SQLite, or PostgreSQL with an installed driver),
    else ValueError saying why — without repeating the URL, which may hold a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL; expected e.g. {EXAMPLE_URLS}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"{parsed.get_backend_name()!r} databases are not supported; expected e.g. {EXAMPLE_URLS}")
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ValueError(f"the driver of {parsed.drivername!r} is not installed; use postgresql+psycopg://…") from None
    if dialect.is_async:
        raise ValueError(f"{parsed.drivername!r} is an asyncio driver; use postgresql+psycopg://…")
    return url


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be used right now (down, unreachable, locked, full, pool
    exhausted, schema missing), False when it refused the values of a statement (DataError, IntegrityError, or
    a value the driver could not send) — the one rule for "503 and retry later" versus "this row is bad"."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or not isinstance(exc, (DataError, IntegrityError))
    return isinstance(exc, SQLAlchemyError) and not isinstance(exc, StatementError)


def describe(exc: BaseException) -> str:
    """The driver's first line (`OperationalError: connection failed: …`), without SQLAlchemy's SQL and
    parameters (long, and possibly private): for logs, never for clients."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0] if lines else ''}"


def ping(engine: Engine) -> None:
    """One round trip to the database (raises when it cannot be reached)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def migrate(engine: Engine, period: Period | None = None, now: float | None = None) -> int:
    """Apply pending migrations in order (serialised across processes); return the schema version. With `period`
    (COMMITRISK_LOG_PARTITION), also partition the log tables on PostgreSQL and create partitions ahead of `now`
    (`partitions.ensure_layout`); None leaves the layout as it is."""
    ping(engine)  # a database that is down fails here at once, not after the retries below
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            return _migrate_once(engine, period, time.time() if now is None else now)
        except DBAPIError:
            # Two workers starting at once may race on CREATE TABLE (SQLite has no advisory lock).
            if attempt == MIGRATION_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _migrate_once(engine: Engine, period: Period | None, now: float) -> int:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            schema = engine.get_execution_options().get("schema_translate_map", {}).get(None)
            if schema is not None:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
        for version, description, upgrade in MIGRATIONS:
            if version > current:
                upgrade(conn)
                conn.execute(
                    insert(schema_version).values(version=version, description=description, applied_at=time.time())
                )
                current = version
        partitions.ensure_layout(conn, period, now)
        return current


def version(engine: Engine) -> int:
    """The applied schema version (of a migrated database)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def apply_retention(
    engine: Engine,
    retention_days: float,
    keep_reports: int = 50,
    now: float | None = None,
    period: Period | None = None,
) -> int:
    """Remove logged predictions (with their shadow scores) and rejections older than `retention_days`, and all
    but the newest reports; return the number of predictions removed. Partitioned log tables (PostgreSQL) first
    get their partitions ahead of `now` (in `period`), then lose whole expired partitions instead of rows
    (`partitions.drop_expired`); plain ones are deleted from row by row."""
    now = time.time() if now is None else now
    cutoff = now - retention_days * 86400.0
    try:
        with engine.begin() as conn:
            partitioned = {t.name for t in partitions.LOG_TABLES if partitions.is_partitioned(conn, t.name)}
            if partitioned:
                partitions.create_ahead(conn, period or "none", now)
    except OperationalError as exc:  # the DEFAULT partition takes the rows meanwhile
        if not partitions.lock_timed_out(exc):
            raise
        log.warning("partitions not created ahead this time (a long read holds the log table)")
    deleted = partitions.drop_expired(engine, cutoff) if partitioned else 0
    with engine.begin() as conn:
        for table in (predictions, shadow_predictions):
            if table.name not in partitioned:
                removed = conn.execute(delete(table).where(table.c.time < cutoff)).rowcount
                deleted += int(removed or 0) if table is predictions else 0
        conn.execute(delete(rejections).where(rejections.c.time < cutoff))
        conn.execute(delete(log_receipts).where(log_receipts.c.time < cutoff))  # left by writers that were killed
        keep = select(drift_reports.c.id).order_by(drift_reports.c.id.desc()).limit(keep_reports)
        conn.execute(delete(drift_reports).where(drift_reports.c.id.not_in(keep)))
        keep = select(summaries.c.id).order_by(summaries.c.id.desc()).limit(2 * keep_reports)
        conn.execute(delete(summaries).where(summaries.c.id.not_in(keep)))
    return deleted
