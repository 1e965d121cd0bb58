"""The monitoring routes on a real app: predictions reach the log, feedback joins them, drift and metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as skm

from app.contract import FEATURES
from app.main import create_app
from app.monitoring.store import Store
from app.settings import Settings
from tests.support import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def models_dir(reference_models: Path) -> Path:
    """Version 1 with a drift baseline of synthetic `alpha` commits (read-only: nothing here moves pointers)."""
    return reference_models


def settings_for(models_dir: Path, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "models_dir": models_dir,
        "database_url": f"sqlite:///{tmp_path / 'monitor.db'}",
        "admin_token": ADMIN_TOKEN,
        "drift_window_rows": 1000,
        "drift_min_rows": 50,
        "drift_interval_seconds": 3600,
        "log_flush_seconds": 0.05,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def client(models_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(models_dir, tmp_path))) as c:
        yield c


def commits(path: Path, n: int, newest: bool = False) -> list[dict[str, Any]]:
    """/predict bodies of the first (or the `newest`) `n` commits of a commits CSV."""
    frame = pd.read_csv(path, usecols=[*FEATURES, "commit_id", "repository_id", "buggy"])
    frame = frame.iloc[-n:] if newest else frame.iloc[:n]
    return [
        {name: float(row[name]) for name in FEATURES}
        | {"commit_id": row["commit_id"], "repository": row["repository_id"]}
        for _, row in frame.iterrows()
    ]


def wait_logged(client: TestClient, n: int) -> Store:
    store: Store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while store.count_predictions() < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.count_predictions() == n
    return store


def test_predictions_feedback_performance_and_quality(client: TestClient, synthetic_commits_dir: Path) -> None:
    sent = commits(synthetic_commits_dir / "gamma.csv", 300)
    answer = client.post("/predict/batch", json={"commits": sent})
    assert answer.status_code == 200, answer.text
    client.post("/predict", json=sent[0])  # the same commit scored twice: the newest prediction counts
    store = wait_logged(client, 301)

    labels = pd.read_csv(synthetic_commits_dir / "gamma.csv", usecols=["commit_id", "buggy"]).iloc[:300]
    feedback = [{"commit_id": c, "buggy": str(b).lower() == "true"} for c, b in labels.itertuples(index=False)]
    for _ in range(2):  # idempotent: the same labels twice
        response = client.post("/feedback", json=feedback, headers=AUTH)
        assert response.status_code == 200 and response.json() == {"received": 300, "upserted": 300}

    perf = client.get("/monitoring/performance").json()
    labelled, y = store.labelled_window(rows=1000)
    assert perf["labelled_rows"] == 300 and labelled.rows == 300
    assert perf["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, labelled.probability))
    assert perf["pr_auc"]["value"] == pytest.approx(skm.average_precision_score(y, labelled.probability))
    assert perf["precision"]["value"] == pytest.approx(skm.precision_score(y, labelled.label))
    assert perf["recall"]["value"] == pytest.approx(skm.recall_score(y, labelled.label))
    assert perf["brier"]["value"] == pytest.approx(skm.brier_score_loss(y, labelled.probability))
    assert perf["window_rows"] == 301 and perf["estimated_recall"]["rows"] == 301
    assert 0 <= perf["recall_at_20_effort"]["value"] <= 1

    quality = client.get("/monitoring/data-quality").json()
    manifest = client.app.state.services.registry.require().champion.manifest  # type: ignore[attr-defined]
    la_max = next(f.max for f in manifest.features if f.name == "la")
    expected_above = sum(c["la"] > la_max for c in sent) + (sent[0]["la"] > la_max)
    assert quality["rows"] == 301 and quality["out_of_range"]["la"]["above"] == expected_above
    assert quality["model_version"] == 1


def test_performance_can_be_filtered_by_repository(client: TestClient, synthetic_commits_dir: Path) -> None:
    sent = commits(synthetic_commits_dir / "alpha.csv", 120) + commits(synthetic_commits_dir / "beta.csv", 80)
    assert client.post("/predict/batch", json={"commits": sent}).status_code == 200
    wait_logged(client, 200)
    labels = pd.concat(
        pd.read_csv(synthetic_commits_dir / name, usecols=["commit_id", "buggy"]).iloc[:n]
        for name, n in (("alpha.csv", 120), ("beta.csv", 80))
    )
    feedback = [{"commit_id": c, "buggy": str(b).lower() == "true"} for c, b in labels.itertuples(index=False)]
    assert client.post("/feedback", json=feedback, headers=AUTH).status_code == 200
    beta = sent[-1]["repository"]
    whole = client.get("/monitoring/performance").json()
    one = client.get("/monitoring/performance", params={"repository": beta}).json()
    assert whole["repository"] is None and whole["labelled_rows"] == whole["window_rows"] == 200
    assert one["repository"] == beta and one["labelled_rows"] == one["window_rows"] == 80
    own = [c for c in sent if c["repository"] == beta]
    answers = client.post("/predict/batch", json={"commits": own}).json()["predictions"]
    wait_logged(client, 280)
    y = labels.set_index("commit_id").loc[[c["commit_id"] for c in own], "buggy"].astype(str).str.lower() == "true"
    assert one["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, [a["probability"] for a in answers]))
    # A repository never logged: an empty report (no rows, every metric undefined), not an error.
    unknown = client.get("/monitoring/performance", params={"repository": "never-seen"})
    assert unknown.status_code == 200
    body = unknown.json()
    assert (body["labelled_rows"], body["window_rows"], body["roc_auc"]["value"]) == (0, 0, None)
    too_long = client.get("/monitoring/performance", params={"repository": "x" * 501})
    assert too_long.status_code == 422 and too_long.json()["error"]["details"][0]["field"].endswith("repository")


@pytest.mark.parametrize(
    "body",
    [
        [{"buggy": True}],  # no commit id
        [{"commit_id": "a", "buggy": "maybe"}],
        [{"commit_id": "", "buggy": True}],
        [{"commit_id": "a", "buggy": True, "unknown": 1}],
        {"commit_id": "a", "buggy": True},  # an object, not a list
        [{"commit_id": "a", "buggy": True, "labeled_at": "yesterday"}],
        [{"commit_id": "a", "buggy": "yes"}],  # true or false only
        [{"commit_id": "a", "buggy": 1}],
    ],
)
def test_malformed_feedback_is_422(client: TestClient, body: Any) -> None:
    response = client.post("/feedback", json=body, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "InvalidInput" and error["details"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_label_time_is_422(client: TestClient, value: str) -> None:
    body = f'[{{"commit_id": "a", "buggy": true, "labeled_at": {value}}}]'.encode()
    response = client.post("/feedback", content=body, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["type"] == "InvalidInput"


def test_feedback_needs_the_admin_token(client: TestClient) -> None:
    body = [{"commit_id": "a", "buggy": True}]
    assert client.post("/feedback", json=body).status_code == 401
    assert client.post("/feedback", json=body, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.post("/monitoring/drift/refresh").status_code == 401
    assert (
        client.post("/feedback", content=b"[{", headers={**AUTH, "content-type": "application/json"}).status_code == 400
    )


def test_drift_before_any_run_and_with_too_few_rows(client: TestClient) -> None:
    response = client.get("/monitoring/drift")
    assert response.status_code == 409 and "no drift result yet" in response.json()["error"]["message"]
    refreshed = client.post("/monitoring/drift/refresh", headers=AUTH)
    assert refreshed.status_code == 409
    assert refreshed.json()["error"]["message"] == "not enough data (0 < 50)"
    assert client.get("/monitoring/drift/report").status_code == 409


@pytest.mark.slow
def test_refresh_computes_drift_out_of_process_and_exports_gauges(
    client: TestClient, drifted_commits_dir: Path
) -> None:
    client.post("/predict/batch", json={"commits": commits(drifted_commits_dir / "alpha.csv", 400, newest=True)})
    wait_logged(client, 400)
    response = client.post("/monitoring/drift/refresh", headers=AUTH)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["drift_share"] > 0.5 and report["window"]["rows"] == 400
    assert {f["feature"] for f in report["features"]} == set(FEATURES)
    assert client.get("/monitoring/drift").json() == report
    html = client.get("/monitoring/drift/report")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    exposition = client.get("/metrics").text
    assert f"commitrisk_drift_share {report['drift_share']}" in exposition
    assert 'commitrisk_feature_drifted{feature="la"}' in exposition
    assert "commitrisk_drift_last_run_timestamp_seconds" in exposition
    assert 'commitrisk_model_performance_rows{metric="roc_auc"} 0.0' in exposition
    assert 'commitrisk_prediction_log_dropped_total{reason="queue_full"} 0.0' in exposition


def test_shutdown_flushes_the_log(models_dir: Path, tmp_path: Path, synthetic_commits_dir: Path) -> None:
    # A flush interval far beyond the test: only the lifespan shutdown can write these rows.
    settings = settings_for(models_dir, tmp_path, log_flush_seconds=3600, log_batch_size=100_000)
    with TestClient(create_app(settings)) as c:
        for _ in range(5):
            body = {"commits": commits(synthetic_commits_dir / "beta.csv", 100)}
            assert c.post("/predict/batch", json=body).status_code == 200
    store = Store.open(settings.database_url)
    assert store.count_predictions() == 500
    window = store.window(rows=1)
    assert np.isfinite(window.probability).all() and window.commit_id[0] is not None
    store.close()


def test_log_off_writes_nothing(models_dir: Path, tmp_path: Path, synthetic_commits_dir: Path) -> None:
    settings = settings_for(models_dir, tmp_path, prediction_log=False)
    with TestClient(create_app(settings)) as c:
        assert c.post("/predict/batch", json={"commits": commits(synthetic_commits_dir / "beta.csv", 10)}).is_success
    store = Store.open(settings.database_url)
    assert store.count_predictions() == 0
    store.close()


def test_rejected_inputs_are_counted_by_reason(client: TestClient) -> None:
    assert client.post("/predict", json={"la": -1}).status_code == 422
    assert client.post("/predict", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    too_many = {"commits": [{"la": 1}] * 1001}
    assert client.post("/predict/batch", json=too_many).status_code == 413
    assert client.post("/feedback", json=[{}], headers=AUTH).status_code == 422  # not a scoring route
    exposition = client.get("/metrics").text
    assert 'commitrisk_rejected_inputs_total{reason="invalid_input"} 1.0' in exposition
    assert 'commitrisk_rejected_inputs_total{reason="malformed_body"} 1.0' in exposition
    assert 'commitrisk_rejected_inputs_total{reason="batch_too_large"} 1.0' in exposition
    store: Store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while len(store.rejection_counts(since=0)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    quality = client.get("/monitoring/data-quality").json()
    assert quality["rejected"] == {"invalid_input": 1, "malformed_body": 1, "batch_too_large": 1}


def test_open_inference_protocol_rows_are_logged_too(client: TestClient, synthetic_commits_dir: Path) -> None:
    rows = [[c[name] for name in FEATURES] for c in commits(synthetic_commits_dir / "beta.csv", 3)]
    body = {"inputs": [{"name": "features", "shape": [3, 15], "datatype": "FP32", "data": rows}]}
    assert client.post("/v2/models/commitrisk/infer", json=body).status_code == 200
    store = wait_logged(client, 3)
    window = store.window()
    assert window.commit_id == [None, None, None] and window.features["la"][2] == rows[0][4]


def logged_rows(client: TestClient, n: int) -> None:
    """Wait until the log holds `n` predictions (the writer flushes every 50 ms here)."""
    store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while store.count_predictions() < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.count_predictions() == n


def test_reposting_a_labelled_commit_does_not_change_monitored_recall(client: TestClient) -> None:
    # The probe of issue 13: without a token, post /predict again for a labelled commit with other metrics.
    quiet = {name: 1.0 for name in FEATURES} | {"commit_id": "c-probe", "exp": 500.0, "rexp": 50.0, "sexp": 200.0}
    loud = {name: 5000.0 for name in FEATURES} | {"commit_id": "c-probe", "exp": 0.0, "rexp": 0.0, "sexp": 0.0}
    first = client.post("/predict?explain=false", json=quiet).json()
    assert first["buggy"] is False
    logged_rows(client, 1)
    assert client.post("/feedback", headers=AUTH, json=[{"commit_id": "c-probe", "buggy": True}]).status_code == 200
    assert client.get("/monitoring/performance").json()["recall"] == {"value": 0.0, "rows": 1}
    second = client.post("/predict?explain=false", json=loud).json()  # no token needed to score
    assert second["buggy"] is True
    logged_rows(client, 2)
    assert client.get("/monitoring/performance").json()["recall"] == {"value": 0.0, "rows": 1}  # unchanged
    # Only an admin can move the label, by naming the answer it is about.
    named = [{"commit_id": "c-probe", "buggy": True, "request_id": second["request_id"]}]
    assert client.post("/feedback", headers=AUTH, json=named).status_code == 200
    assert client.get("/monitoring/performance").json()["recall"] == {"value": 1.0, "rows": 1}


@pytest.mark.parametrize("field", ["commit_id", "repository", "fixed_by", "request_id"])
def test_a_label_with_a_nul_character_is_422_naming_the_field(client: TestClient, field: str) -> None:
    item = {"commit_id": "c1", "buggy": True, field: "a\u0000b"}
    response = client.post("/feedback", headers=AUTH, json=[item])
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == [f"0.{field}"]
    assert "NUL" in response.json()["error"]["details"][0]["message"]


def test_database_routes_answer_503_while_it_is_down_and_recover_by_themselves(
    models_dir: Path, tmp_path: Path, synthetic_commits_dir: Path
) -> None:
    directory = tmp_path / "not-yet"  # a SQLite file in a directory that does not exist yet: the database is down
    settings = settings_for(models_dir, tmp_path, database_url=f"sqlite:///{directory / 'm.db'}",
                            database_check_seconds=0.05)  # fmt: skip
    label = [{"commit_id": "c1", "buggy": True}]
    with TestClient(create_app(settings)) as client:
        for body in commits(synthetic_commits_dir / "alpha.csv", 3):
            assert client.post("/predict", json=body).status_code == 200  # scoring needs no database
        calls = [
            client.post("/feedback", headers=AUTH, json=label),
            client.get("/monitoring/performance"),
            client.get("/monitoring/data-quality"),
            client.get("/monitoring/drift"),
            client.get("/monitoring/drift/report"),
            client.post("/monitoring/drift/refresh", headers=AUTH),
            client.post("/retrain", headers=AUTH, json={"reason": "x"}),
            client.get("/retrain/audit"),
        ]
        for response in calls:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] == "DatabaseUnavailable"
        assert client.get("/models").status_code == 200
        directory.mkdir()  # the database comes back: no restart
        deadline = time.monotonic() + 30
        while client.post("/feedback", headers=AUTH, json=label).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health/ready").json()["database"] == "up"
        logged_rows(client, 3)  # the rows answered while it was down were held, then written
        assert client.get("/monitoring/performance").status_code == 200
        assert client.get("/retrain/audit").status_code == 200


def test_logged_answers_which_commits_a_version_has_logged(client: TestClient, synthetic_commits_dir: Path) -> None:
    sent = commits(synthetic_commits_dir / "alpha.csv", 30)
    assert client.post("/predict/batch", json={"commits": sent[:20]}).status_code == 200
    wait_logged(client, 20)
    ids = [c["commit_id"] for c in sent]
    asked = [ids[25], ids[3], ids[3], ids[0], "never-scored"]
    answer = client.post("/monitoring/logged", json={"model_version": 1, "commit_ids": asked})
    assert answer.status_code == 200
    assert answer.json() == {"model_version": 1, "logged": [ids[3], ids[0]]}  # asked order, once each
    other = client.post("/monitoring/logged", json={"model_version": 2, "commit_ids": ids})
    assert other.json() == {"model_version": 2, "logged": []}  # logged by version 1 only
    many = [f"c{i}" for i in range(9_999)]  # more than one statement's worth of parameters
    assert client.post("/monitoring/logged", json={"model_version": 1, "commit_ids": [*many, ids[1]]}).json()[
        "logged"
    ] == [ids[1]]


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [({"model_version": 1, "commit_ids": [f"c{i}" for i in range(10_001)]}, 413, "BatchTooLarge"),
     ({"model_version": 0, "commit_ids": []}, 422, "InvalidInput"),
     ({"model_version": 2**70, "commit_ids": ["a"]}, 422, "InvalidInput"),  # was a 500: integer overflow
     ({"model_version": "1", "commit_ids": []}, 422, "InvalidInput"),
     ({"model_version": 1, "commit_ids": [""]}, 422, "InvalidInput"),
     ({"model_version": 1}, 422, "InvalidInput"),
     ({"model_version": 1, "commit_ids": [], "extra": 1}, 422, "InvalidInput")],
)  # fmt: skip
def test_logged_refuses_bad_questions(client: TestClient, body: dict[str, Any], status: int, kind: str) -> None:
    answer = client.post("/monitoring/logged", json=body)
    assert answer.status_code == status and answer.json()["error"]["type"] == kind
    plain = client.post("/monitoring/logged", content=b"{}", headers={"content-type": "text/plain"})
    assert plain.status_code == 415


def test_logged_needs_a_client_token_when_the_scoring_routes_do(models_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(models_dir, tmp_path, client_tokens="ci-bot"))) as c:
        body = {"model_version": 1, "commit_ids": ["a"]}
        assert c.post("/monitoring/logged", json=body).status_code == 401
        ok = c.post("/monitoring/logged", json=body, headers={"Authorization": "Bearer ci-bot"})
        assert ok.status_code == 200 and ok.json()["logged"] == []
