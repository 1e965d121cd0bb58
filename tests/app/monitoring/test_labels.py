"""Late labels on SQLite and PostgreSQL: idempotent upserts (last write wins), the labelled shadow pairs, and the
prediction each label joins resolved once (schema 8) answering as the rule applied at every read did."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from app.monitoring import database as db
from app.monitoring.labels import labelled_ids, labelled_shadow_scores, upsert_feedback
from app.monitoring.store import Store
from app.monitoring.tables import EXPIRED, feedback, predictions, shadow_predictions
from tests.support import Database, log_row

DAY = 86400.0


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


def by_rule(engine: Engine) -> list[tuple[object, ...]]:
    """(commit, probability, buggy) of each label's prediction, the rule applied at read time (as before schema 8)."""
    chosen = labelled_ids()
    query = select(predictions.c.commit_id, predictions.c.probability, chosen.c.buggy).join(
        chosen, chosen.c.id == predictions.c.id
    )
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def read(store: Store, **window: object) -> list[tuple[object, ...]]:
    labelled, buggy = store.labelled_window(**window)  # type: ignore[arg-type]
    return sorted(zip(labelled.commit_id, labelled.probability.tolist(), buggy.tolist(), strict=True))


def resolved(engine: Engine) -> dict[str, object]:
    """Commit → the probability of the prediction its label points at (None: pending)."""
    query = select(feedback.c.commit_id, predictions.c.probability).outerjoin(
        predictions, predictions.c.id == feedback.c.prediction_id
    )
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def test_a_label_points_at_its_prediction_when_it_arrives_and_again_when_it_names_another(store: Store) -> None:
    store.insert_predictions([log_row(1.0, commit_id="c1", probability=0.1) | {"request_id": "r1"},
                              log_row(2.0, commit_id="c1", probability=0.9) | {"request_id": "r2"},
                              log_row(3.0, commit_id="c2", probability=0.4) | {"request_id": "r3"}])  # fmt: skip
    store.upsert_feedback([{"commit_id": "c1", "buggy": True}, {"commit_id": "c2", "buggy": False}])
    assert resolved(store.engine) == {"c1": 0.1, "c2": 0.4}  # the first post of c1
    store.upsert_feedback([{"commit_id": "c1", "buggy": True, "request_id": "r2"}])
    assert resolved(store.engine) == {"c1": 0.9, "c2": 0.4}  # the one the label names
    store.upsert_feedback([{"commit_id": "c2", "buggy": True, "request_id": "r1"}])  # another commit's request
    assert resolved(store.engine) == {"c1": 0.9, "c2": None}
    assert read(store) == by_rule(store.engine) == [("c1", 0.9, True)]


def test_a_label_before_its_prediction_is_read_by_the_rule_until_the_job_resolves_it(store: Store) -> None:
    now = time.time()
    store.upsert_feedback([{"commit_id": "early", "buggy": True}, {"commit_id": "never", "buggy": False},
                           {"commit_id": "named", "buggy": False, "request_id": "r9"}])  # fmt: skip
    assert resolved(store.engine) == {"early": None, "never": None, "named": None} and read(store) == []
    store.insert_predictions([log_row(now - 5.0, commit_id="early", probability=0.3),
                              log_row(now - 4.0, commit_id="early", probability=0.8),
                              log_row(now - 3.0, commit_id="named", probability=0.6) | {"request_id": "r8"},
                              log_row(now - 2.0, commit_id="named", probability=0.7) | {"request_id": "r9"},
                              ])  # fmt: skip
    expected = [("early", 0.3, True), ("named", 0.7, False)]
    assert read(store) == by_rule(store.engine) == expected  # still pending, joined at read time
    assert read(store, rows=1) == [("named", 0.7, False)]  # the newest, across resolved and pending
    store.apply_retention(retention_days=30, now=now)  # the monitoring job's run resolves pending labels
    assert resolved(store.engine) == {"early": 0.3, "never": None, "named": 0.7}
    assert read(store) == by_rule(store.engine) == expected


def test_retention_moves_a_label_to_the_oldest_surviving_prediction_of_its_commit(store: Store) -> None:
    now = time.time()
    store.insert_predictions([log_row(now - 40 * DAY, commit_id="reposted", probability=0.1),
                              log_row(now - 10 * DAY, commit_id="reposted", probability=0.5),
                              log_row(now - 40 * DAY, commit_id="expired", probability=0.2),
                              log_row(now - 20 * DAY, commit_id="young", probability=0.3)])  # fmt: skip
    store.upsert_feedback([{"commit_id": c, "buggy": True} for c in ("reposted", "expired", "young")])
    assert resolved(store.engine) == {"reposted": 0.1, "expired": 0.2, "young": 0.3}
    assert store.apply_retention(retention_days=30, now=now) == 2
    assert resolved(store.engine) == {"reposted": 0.5, "expired": None, "young": 0.3}
    assert read(store) == by_rule(store.engine) == [("reposted", 0.5, True), ("young", 0.3, True)]
    with store.engine.connect() as conn:
        query = select(feedback.c.prediction_id).where(feedback.c.commit_id == "expired")
        assert conn.execute(query).scalar() == EXPIRED
    # The one departure from the rule at read time (docs/monitoring.md): the answer a label was about expired
    # with its whole commit, so a later post of the commit joins nothing, until a label is posted again.
    store.insert_predictions([log_row(now, commit_id="expired", probability=0.7)])
    store.apply_retention(retention_days=30, now=now)
    assert ("expired", 0.7, True) in by_rule(store.engine) and ("expired", 0.7, True) not in read(store)
    store.upsert_feedback([{"commit_id": "expired", "buggy": True}])
    assert read(store) == by_rule(store.engine)
