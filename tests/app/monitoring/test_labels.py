"""Late labels on SQLite and PostgreSQL: idempotent upserts (last write wins) and the labelled shadow pairs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from app.monitoring import database as db
from app.monitoring.labels import labelled_shadow_scores, upsert_feedback
from app.monitoring.tables import feedback, shadow_predictions
from tests.support import Database


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    connected = db.connect(database.url, database.schema)
    db.migrate(connected)
    yield connected
    connected.dispose()


def labels(engine: Engine) -> dict[str, tuple[object, ...]]:
    columns = (feedback.c.buggy, feedback.c.repository, feedback.c.fixed_by)
    with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(select(feedback.c.commit_id, *columns))}


def test_upsert_is_idempotent_and_the_last_write_wins(engine: Engine) -> None:
    items = [{"commit_id": "c1", "buggy": True, "fixed_by": "abc"}, {"commit_id": "c2", "buggy": False}]
    assert upsert_feedback(engine, items) == 2
    assert upsert_feedback(engine, items) == 2
    assert labels(engine) == {"c1": (True, None, "abc"), "c2": (False, None, None)}
    assert upsert_feedback(engine, [{"commit_id": "c2", "buggy": True, "repository": "r"}]) == 1
    assert labels(engine)["c2"] == (True, "r", None)
    assert upsert_feedback(engine, []) == 0


def test_one_row_per_commit_within_a_request(engine: Engine) -> None:
    twice = [{"commit_id": "c1", "buggy": False}, {"commit_id": "c1", "buggy": True}]
    assert upsert_feedback(engine, twice) == 1  # as a second request would: the later item wins
    assert labels(engine) == {"c1": (True, None, None)}


def test_labelled_shadow_scores_pair_both_probabilities_with_the_label(engine: Engine) -> None:
    pairs = [
        {"time": 1.0, "commit_id": "c1", "model_version": 1, "probability": 0.2, "shadow_version": 2,
         "shadow_probability": 0.7},
        {"time": 1.0, "commit_id": "c2", "model_version": 1, "probability": 0.6, "shadow_version": 2,
         "shadow_probability": 0.1},
        {"time": 1.0, "commit_id": "c1", "model_version": 1, "probability": 0.2, "shadow_version": 3,
         "shadow_probability": 0.4},
        {"time": 1.0, "commit_id": "c9", "model_version": 1, "probability": 0.5, "shadow_version": 2,
         "shadow_probability": 0.5},  # no label yet
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(shadow_predictions.insert(), pairs)
    upsert_feedback(engine, [{"commit_id": "c1", "buggy": True}, {"commit_id": "c2", "buggy": False}])
    y, champion, shadow = labelled_shadow_scores(engine, 2)
    assert sorted(zip(y.tolist(), champion.tolist(), shadow.tolist(), strict=True)) == [
        (False, 0.6, 0.1),
        (True, 0.2, 0.7),
    ]
    y, champion, shadow = labelled_shadow_scores(engine, 7)  # a version never shadowed
    assert y.shape == champion.shape == shadow.shape == (0,)


def test_a_label_joins_one_shadow_pair_per_commit_the_first_or_the_named(engine: Engine) -> None:
    def pair(commit: str, request: str, champion: float, shadow: float) -> dict[str, object]:
        return {"time": 1.0, "request_id": request, "commit_id": commit, "model_version": 1,
                "probability": champion, "shadow_version": 2, "shadow_probability": shadow}  # fmt: skip

    with engine.begin() as conn:  # c1 posted three times (the later posts by anyone, with other metrics)
        conn.execute(shadow_predictions.insert(), [pair("c1", "r1", 0.2, 0.3), pair("c1", "r2", 0.9, 0.8),
                                                   pair("c1", "r3", 0.7, 0.6)])  # fmt: skip
    upsert_feedback(engine, [{"commit_id": "c1", "buggy": True}])
    y, champion, shadow = labelled_shadow_scores(engine, 2)
    assert (y.tolist(), champion.tolist(), shadow.tolist()) == ([True], [0.2], [0.3])  # the first post
    upsert_feedback(engine, [{"commit_id": "c1", "buggy": True, "request_id": "r3"}])
    y, champion, shadow = labelled_shadow_scores(engine, 2)
    assert (champion.tolist(), shadow.tolist()) == ([0.7], [0.6])  # the one the label names
