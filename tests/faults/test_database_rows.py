"""Rows the database cannot store never cost other clients theirs (PostgreSQL, a real server):
a NUL byte is a 422 naming the field on every route that stores text, and a row the database refuses for any
other reason is isolated by the log writer — its neighbours in the same transaction are written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.contract import FEATURES
from tests.support import ADMIN_TOKEN, Outage, Service, log_accounting, logged_predictions, wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COMMIT = dict.fromkeys(FEATURES, 1.0)


@pytest.fixture
def server(fault_models: Path, tmp_path: Path, outage: Outage) -> Iterator[Service]:
    started = Service(fault_models, tmp_path, COMMITRISK_DATABASE_URL=outage.url)
    yield started
    started.stop()


def test_one_nul_byte_is_a_422_and_costs_no_other_clients_rows(server: Service, outage: Outage) -> None:
    # The probe of issue 13: 30 clean, one "a\u0000b", 30 clean — only 13 of the 60 clean rows used to reach the log.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(30):
            assert client.post("/predict", json=COMMIT | {"commit_id": f"c{i}"}).status_code == 200
        refused = client.post("/predict", json=COMMIT | {"commit_id": "a\u0000b"})
        for i in range(30, 60):
            assert client.post("/predict", json=COMMIT | {"commit_id": f"c{i}"}).status_code == 200
        assert refused.status_code == 422
        assert [d["field"] for d in refused.json()["error"]["details"]] == ["commit_id"]
        batch = client.post("/predict/batch", json={"commits": [COMMIT, COMMIT | {"repository": "r\u0000"}]})
        assert batch.status_code == 422 and batch.json()["error"]["details"][0]["field"] == "commits.1.repository"
        label = client.post("/feedback", headers=AUTH, json=[{"commit_id": "a\u0000b", "buggy": True}])
        assert label.status_code == 422 and label.json()["error"]["details"][0]["field"] == "0.commit_id"
        retrain = client.post("/retrain", headers=AUTH, json={"reason": "x\u0000"})
        assert retrain.status_code == 422 and retrain.json()["error"]["details"][0]["field"] == "reason"
    wait_for(lambda: log_accounting(server.url)[1] == 60, "the 60 clean rows to be written", 30)
    assert logged_predictions(outage.direct) == 60 and log_accounting(server.url) == (60, 60, 0)
    assert server.status_500s() == 0


def test_a_row_the_database_refuses_costs_only_itself(server: Service, outage: Outage) -> None:
    # A row the schema accepts but the database refuses (here: a constraint an operator added). To put it in one
    # transaction with other clients' rows, the test stalls the database: it holds a lock on the log's table
    # while 61 answers queue up behind the writer, then lets go.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/predict", json=COMMIT | {"commit_id": "warm-up"}).status_code == 200
    wait_for(lambda: logged_predictions(outage.direct) == 1, "the table to exist", 30)
    engine = create_engine(outage.direct)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE predictions ADD CONSTRAINT no_poison CHECK (commit_id <> 'poison')"))
        stall = engine.connect()
        transaction = stall.begin()
        stall.execute(text("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE"))
        answers: list[int] = []

        def traffic(ids: list[str]) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                answers.extend(client.post("/predict", json=COMMIT | {"commit_id": c}).status_code for c in ids)

        clients = [threading.Thread(target=traffic, args=([f"c{k}-{i}" for i in range(20)],)) for k in range(3)]
        clients.append(threading.Thread(target=traffic, args=(["poison"],)))
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=60)
        assert answers == [200] * 61  # a stalled log never holds an answer
        transaction.rollback()  # the database answers again
        stall.close()
        wait_for(lambda: (lambda a, w, d: a == w + d)(*log_accounting(server.url)), "the log to catch up", 60)
        assert log_accounting(server.url) == (62, 61, 1)  # the poison row dropped (reason: refused) …
        assert logged_predictions(outage.direct) == 61  # … and every clean row written
        exposition = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'commitrisk_prediction_log_dropped_total{reason="refused"} 1.0' in exposition
        assert server.status_500s() == 0
    finally:
        engine.dispose()
