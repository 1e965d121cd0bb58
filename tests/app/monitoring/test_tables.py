"""The schema: ordered, append-only migrations that build exactly the declared tables; insert column orders."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from app.contract import FEATURES
from app.monitoring import database as db
from app.monitoring.tables import (
    MIGRATIONS,
    PREDICTION_COLUMNS,
    SCHEMA_VERSION,
    SHADOW_COLUMNS,
    feedback,
    metadata,
    predictions,
    schema_version,
    shadow_predictions,
)
from tests.support import Database, log_row


def test_migrations_are_numbered_one_by_one_from_1() -> None:
    assert [version for version, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len(MIGRATIONS) == SCHEMA_VERSION
    assert all(description for _, description, _ in MIGRATIONS)


def test_running_every_migration_creates_every_declared_table_with_its_columns(tmp_path: Path) -> None:
    # A table declared in `metadata` but created by no migration would exist in tests and never in production.
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    with engine.begin() as conn:
        schema_version.create(conn)
        for _, _, upgrade in MIGRATIONS:
            upgrade(conn)
    found = inspect(engine)
    assert set(found.get_table_names()) == set(metadata.tables)
    for name, table in metadata.tables.items():
        assert [c["name"] for c in found.get_columns(name)] == [c.name for c in table.columns], name
    engine.dispose()


def test_a_logged_prediction_fills_every_required_column() -> None:
    # Every NOT NULL column without a default must be in the insert order, or the writer's INSERT fails.
    required = {c.name for c in predictions.columns if not c.nullable and c.default is None and not c.primary_key}
    assert required <= set(PREDICTION_COLUMNS)
    assert set(FEATURES) <= set(PREDICTION_COLUMNS)
    assert tuple(c.name for c in predictions.columns if c.name in PREDICTION_COLUMNS) == PREDICTION_COLUMNS
    assert not {"id", "shadow_version", "shadow_probability"} & set(PREDICTION_COLUMNS)
    assert predictions.c.shadow_probability.nullable  # kept for schema 1 databases; migration 2 moves its rows


def test_shadow_rows_pair_both_probabilities_in_insert_order() -> None:
    required = {c.name for c in shadow_predictions.columns if not c.nullable and not c.primary_key}
    assert required <= set(SHADOW_COLUMNS)
    assert {"probability", "shadow_probability", "model_version", "shadow_version"} <= set(SHADOW_COLUMNS)
    assert list(SHADOW_COLUMNS) == [c.name for c in shadow_predictions.columns if c.name != "id"]


def test_feedback_is_keyed_by_commit_id_for_idempotent_upserts(tmp_path: Path) -> None:
    assert [c.name for c in feedback.primary_key.columns] == ["commit_id"]
    engine = create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    with engine.begin() as conn:
        feedback.create(conn)
        conn.execute(feedback.insert().values(commit_id="a", buggy=True, received_at=1.0))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the database refuses a second row for a commit
        conn.execute(feedback.insert().values(commit_id="a", buggy=False, received_at=2.0))
    with engine.connect() as conn:
        assert conn.execute(select(feedback.c.buggy)).scalars().all() == [True]
    engine.dispose()


def test_migration_8_points_the_labels_of_an_older_database_at_their_predictions(database: Database) -> None:
    engine = db.connect(database.url, database.schema)
    name = f'"{database.schema}".feedback' if database.schema else "feedback"
    try:
        with engine.begin() as conn:  # schema 7, as the services before schema 8 left it, with rows
            if database.schema is not None:
                conn.execute(text(f'CREATE SCHEMA "{database.schema}"'))
            schema_version.create(conn)
            for version, description, upgrade in MIGRATIONS[:7]:
                upgrade(conn)
                conn.execute(insert(schema_version).values(version=version, description=description, applied_at=0.0))
            index = f'"{database.schema}".ix_feedback_prediction_id' if database.schema else "ix_feedback_prediction_id"
            conn.execute(text(f"DROP INDEX {index}"))
            for column in ("prediction_id", "prediction_time"):
                conn.execute(text(f"ALTER TABLE {name} DROP COLUMN {column}"))
            conn.execute(insert(predictions), [
                log_row(1.0, commit_id="first", probability=0.1), log_row(2.0, commit_id="first", probability=0.9),
                log_row(3.0, commit_id="named", probability=0.2) | {"request_id": "a"},
                log_row(4.0, commit_id="named", probability=0.8) | {"request_id": "b"},
            ])  # fmt: skip
            conn.execute(
                text(
                    f"INSERT INTO {name} (commit_id, buggy, received_at, request_id) VALUES"
                    " ('first', true, 5, NULL), ('named', false, 5, 'b'), ('pending', true, 5, NULL)"
                )
            )
        assert db.migrate(engine) == SCHEMA_VERSION
        query = select(feedback.c.commit_id, feedback.c.prediction_time).order_by(feedback.c.commit_id)
        with engine.connect() as conn:
            assert conn.execute(query).all() == [("first", 1.0), ("named", 4.0), ("pending", None)]
            assert "ix_feedback_prediction_id" in {
                i["name"] for i in inspect(conn).get_indexes("feedback", database.schema)
            }
        assert db.migrate(engine) == SCHEMA_VERSION  # a second start changes nothing
    finally:
        engine.dispose()
