"""The monitoring database schema and its ordered migrations (SQLAlchemy Core tables)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)  # fmt: skip
from sqlalchemy.schema import CreateIndex

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
    # Schema 1 logged one shadow here; since schema 2 every shadow's score is a `shadow_predictions` row.
    Column("shadow_version", Integer),
    Column("shadow_probability", Float),
)
# One row per commit and shadow model, with the champion's probability beside it (so a labelled comparison
# joins only `feedback`); bounded by the number of shadows the service loads (COMMITRISK_MAX_SHADOWS).
shadow_predictions = Table(
    "shadow_predictions",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("request_id", String(64)),
    Column("commit_id", String(255), index=True),
    Column("model_version", Integer, nullable=False),
    Column("probability", Float, nullable=False),
    Column("shadow_version", Integer, nullable=False, index=True),
    Column("shadow_probability", Float, nullable=False),
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
    # Since schema 5: the answer (its `request_id`) this label is about; NULL = the commit's first prediction.
    Column("request_id", String(64)),
    # Since schema 8: the logged prediction this label joins (id and time: the time picks its partition), resolved
    # when the label arrives and by the monitoring job (app/monitoring/labels.py); NULL = pending (not logged yet),
    # EXPIRED = retention removed it and every other prediction of the commit.
    Column("prediction_id", BigInteger),
    Column("prediction_time", Float),
)
EXPIRED = 0  # no logged prediction has id 0: ids start at 1
# The labelled window walks labels newest prediction first and joins each label's one prediction by its id.
LABEL_PREDICTION = Index("ix_feedback_prediction_id", feedback.c.prediction_id)
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
# Retrain requests (`POST /retrain`) and one audit record per retrain decision (app/monitoring/retrain_log.py).
retrain_requests = Table(
    "retrain_requests",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("requested_at", Float, nullable=False, index=True),
    Column("reason", String(500), nullable=False),
    Column("requested_by", String(200)),
    Column("consumed_at", Float),
    Column("audit_id", Integer),
)
retrain_audit = Table(
    "retrain_audit",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("fired", String(200), nullable=False),
    Column("champion_version", Integer),
    Column("challenger_version", Integer),
    Column("deployed", String(16)),
    Column("record", Text, nullable=False),
)
# The prediction log's write receipts (app/monitoring/writer.py): each transaction of the log inserts one row and
# deletes its predecessor, so after a connection lost during COMMIT the writer can ask whether that transaction
# landed (its receipt exists) instead of writing its rows twice. At most one row per writer.
log_receipts = Table(
    "log_receipts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("time", Float, nullable=False),
)
schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)


def _shadow_table(conn: Connection) -> None:
    """Create `shadow_predictions` and move schema 1's shadow pairs into it."""
    shadow_predictions.create(conn, checkfirst=True)
    legacy = select(
        predictions.c.time, predictions.c.request_id, predictions.c.commit_id, predictions.c.model_version,
        predictions.c.probability, predictions.c.shadow_version, predictions.c.shadow_probability,
    ).where(predictions.c.shadow_version.is_not(None), predictions.c.shadow_probability.is_not(None))  # fmt: skip
    conn.execute(insert(shadow_predictions).from_select(list(SHADOW_COLUMNS), legacy))


# The web pages list a repository's predictions newest first, filter them by band and commit id and count them
# per day (app/monitoring/commits.py): band and commit id in the index answer those from the index alone.
REPOSITORY_TIME = Index(
    "ix_predictions_repository_time", predictions.c.repository, predictions.c.time, predictions.c.risk_band,
    predictions.c.commit_id, postgresql_include=["id"],  # SQLite's rowid is in every index already
)  # fmt: skip


# A rows-window of one repository (`store.window(repository=…)`, performance per repository) reads its newest rows:
# without this index a repository with a small share of a fleet's log is found by walking the whole log by id.
REPOSITORY_ID = Index("ix_predictions_repository_id", predictions.c.repository, predictions.c.id)

# A SHA search on the web pages is a prefix of the commit id in any case (app/monitoring/commits.py): a range of
# this index. text_pattern_ops: PostgreSQL orders its entries byte by byte whatever the database's collation.
REPOSITORY_SHA = Index(
    "ix_predictions_repository_sha", predictions.c.repository, func.lower(predictions.c.commit_id).label("sha"),
    postgresql_ops={"sha": "text_pattern_ops"},
)  # fmt: skip
# SQLAlchemy cannot reflect an expression index from SQLite, so a `checkfirst` of another index on `predictions`
# warns that it skipped this one (harmless: nothing compares it); migration 7 uses IF NOT EXISTS for that reason.
warnings.filterwarnings(
    "ignore", "Skipped unsupported reflection of expression-based index ix_predictions_repository_sha"
)


def _feedback_request_id(conn: Connection) -> None:
    """Add `feedback.request_id` (databases whose feedback table migration 1 created before the column existed)."""
    schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
    if "request_id" not in {c["name"] for c in inspect(conn).get_columns("feedback", schema=schema)}:
        name = f'"{schema}".feedback' if schema else "feedback"
        conn.execute(text(f"ALTER TABLE {name} ADD COLUMN request_id VARCHAR(64)"))


def _schema_5(conn: Connection) -> None:
    _feedback_request_id(conn)
    log_receipts.create(conn, checkfirst=True)


def resolve_labels(conn: Connection, which: ColumnElement[bool] | None = None) -> None:
    """Point the labels matching `which` (default: the pending ones) at the prediction each joins — the named
    request's, else the commit's first (the rule of `labels.py`; here for migration 8's backfill) — as one grouped
    join, hashed when they are many; a label whose commit has no prediction keeps its `prediction_id`."""
    rows, label = predictions.c, feedback.c
    named = label.request_id.is_(None) | (rows.request_id == label.request_id)
    first = (
        select(label.commit_id, func.min(rows.id).label("id"))
        .select_from(feedback)
        .join(predictions, rows.commit_id == label.commit_id)
        .where(label.prediction_id.is_(None) if which is None else which, named)
        .group_by(label.commit_id)
        .subquery()
    )
    matched = update(feedback).where(label.commit_id == first.c.commit_id)
    conn.execute(matched.values(prediction_id=first.c.id, prediction_time=None))
    timed = update(feedback).where(label.prediction_id == rows.id, label.prediction_time.is_(None))
    conn.execute(timed.values(prediction_time=rows.time))


def _create_index(conn: Connection, index: Index) -> None:
    """CREATE INDEX IF NOT EXISTS: no reflection, which cannot see SQLite's expression indexes."""
    conn.execute(CreateIndex(index, if_not_exists=True))


def _schema_8(conn: Connection) -> None:
    schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
    existing = {c["name"] for c in inspect(conn).get_columns("feedback", schema=schema)}
    name = f'"{schema}".feedback' if schema else "feedback"
    for column, kind in (("prediction_id", "BIGINT"), ("prediction_time", "FLOAT")):
        if column not in existing:
            conn.execute(text(f"ALTER TABLE {name} ADD COLUMN {column} {kind}"))
    _create_index(conn, LABEL_PREDICTION)
    resolve_labels(conn)


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
    (2, "shadow_predictions: one row per commit and shadow model", lambda conn: _shadow_table(conn)),
    # checkfirst: databases where earlier services created these tables outside the migrations keep them.
    (
        3,
        "retrain_requests, retrain_audit",
        lambda conn: metadata.create_all(conn, tables=[retrain_requests, retrain_audit], checkfirst=True),
    ),
    (4, "predictions (repository, time, …) index for the web pages", lambda conn: REPOSITORY_TIME.create(conn, True)),
    (5, "feedback.request_id (a label names the answer it is about); log_receipts", _schema_5),
    # Time partitions (COMMITRISK_LOG_PARTITION) are no numbered step: the setting may change after any version,
    # so `database.migrate` converts or extends them after the numbered steps (app/monitoring/partitions.py).
    (6, "predictions (repository, id) index for per-repository windows", lambda conn: REPOSITORY_ID.create(conn, True)),
    (
        7,
        "predictions (repository, lower(commit_id)) index: SHA search",
        lambda conn: _create_index(conn, REPOSITORY_SHA),
    ),
    (8, "feedback.prediction_id, prediction_time: the prediction each label joins", _schema_8),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
# Insert order of a logged prediction (every column but the id and schema 1's shadow pair).
PREDICTION_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in predictions.columns if c.name not in {"id", "shadow_version", "shadow_probability"}
)
SHADOW_COLUMNS: tuple[str, ...] = tuple(c.name for c in shadow_predictions.columns if c.name != "id")
FEATURE_COLUMNS = tuple(predictions.c[name] for name in FEATURES)
