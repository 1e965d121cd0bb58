"""The schema: ordered, append-only migrations and the 15 feature columns of the prediction log."""

from __future__ import annotations

from app.contract import FEATURES
from app.monitoring.tables import MIGRATIONS, PREDICTION_COLUMNS, SCHEMA_VERSION, SHADOW_COLUMNS, feedback, predictions


def test_migrations_are_numbered_one_by_one() -> None:
    assert [version for version, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1][0] == SCHEMA_VERSION


def test_prediction_log_has_every_feature_and_no_longer_writes_schema_1_shadow_columns() -> None:
    names = set(predictions.c.keys())
    assert set(FEATURES) <= names
    assert {"time", "request_id", "commit_id", "repository", "probability", "label", "risk_band"} <= names
    assert "model_version" in PREDICTION_COLUMNS
    assert not {"id", "shadow_version", "shadow_probability"} & set(PREDICTION_COLUMNS)
    assert predictions.c.shadow_probability.nullable  # kept for schema 1 databases; migration 2 moves its rows


def test_shadow_rows_pair_both_probabilities() -> None:
    assert SHADOW_COLUMNS == (
        "time", "request_id", "commit_id", "model_version", "probability", "shadow_version", "shadow_probability",
    )  # fmt: skip


def test_feedback_is_keyed_by_commit_id_for_idempotent_upserts() -> None:
    assert [c.name for c in feedback.primary_key.columns] == ["commit_id"]
