"""The monitoring database schema and its ordered migrations (SQLAlchemy Core tables)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import BigInteger, Boolean, Column, Connection, Float, Integer, MetaData, String, Table, Text

from app.contract import FEATURES

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for a long-lived log.
_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

# `time` columns are Unix seconds (UTC): compact, index-friendly and identical on both databases.
predictions = Table(
    "predictions",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("request_id", String(64)),
    Column("commit_id", String(255), index=True),
    Column("repository", String(255)),
    *(Column(name, Float, nullable=False) for name in FEATURES),
    Column("probability", Float, nullable=False),
    Column("label", Boolean, nullable=False),
    Column("risk_band", String(8), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("shadow_version", Integer),
    Column("shadow_probability", Float),
)
feedback = Table(
    "feedback",
    metadata,
    Column("commit_id", String(255), primary_key=True),
    Column("repository", String(255)),
    Column("buggy", Boolean, nullable=False),
    Column("fixed_by", Text),
    Column("labeled_at", Float),
    Column("received_at", Float, nullable=False),
)
rejections = Table(
    "rejections",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("reason", String(64), nullable=False),
    Column("count", Integer, nullable=False),
)
# One row per drift run; the newest row wins, so every replica serves the same cached result.
drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("computed_at", Float, nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("report", Text, nullable=False),
    Column("html", Text),
)
# Performance and data-quality results of the scheduled job, by kind; the newest row of a kind wins.
summaries = Table(
    "summaries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("computed_at", Float, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("report", Text, nullable=False),
)
schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)

# Ordered migrations: (version, description, upgrade). Append only; never edit an applied one.
Migration = tuple[int, str, Callable[[Connection], None]]
MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        "predictions, feedback, rejections, drift_reports, summaries",
        lambda conn: metadata.create_all(
            conn, tables=[predictions, feedback, rejections, drift_reports, summaries], checkfirst=True
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
# Insert order of a logged prediction (every column but the id).
PREDICTION_COLUMNS: tuple[str, ...] = tuple(c.name for c in predictions.columns if c.name != "id")
FEATURE_COLUMNS = tuple(predictions.c[name] for name in FEATURES)
