"""Shadow scoring on a real app: challengers never change the answer; agreement, latency, log and labelled
comparison are recorded per shadow; several compete (bounded); a missing or equal challenger is no shadow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.contract import FEATURES
from app.monitoring.tables import shadow_predictions
from tests.support import build_model_version


def commits(n: int) -> list[dict[str, Any]]:
    """Distinct commits, from small tidy changes to large scattered ones."""
    rows = []
    for i in range(n):
        scale = 1 + i
        values = [
            1,
            1 + i % 3,
            scale,
            0.5,
            10 * scale**2,
            5 * scale,
            scale,
            scale,
            50 * scale,
            i,
            10.0,
            i,
            100 // scale,
            1,
            2,
        ]
        rows.append({**dict(zip(FEATURES, values, strict=True)), "commit_id": f"c{i}", "repository": "demo"})
    return rows


def answers(client: Any, batch: list[dict[str, Any]]) -> list[tuple[float, bool, str, int]]:
    body = client.post("/predict/batch", json={"commits": batch}).json()
    return [(p["probability"], p["buggy"], p["risk_band"], p["model_version"]) for p in body["predictions"]]


def logged_shadow_rows(client: Any, expected: int) -> list[Any]:
    engine = client.app.state.services.monitoring.store.engine
    pairs = shadow_predictions.c
    query = select(pairs.probability, pairs.shadow_version, pairs.shadow_probability, pairs.commit_id)
    deadline = time.monotonic() + 30
    while True:  # the log is written behind the requests
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_shadow_scores_every_request_without_changing_the_answer(
    client: Any, models_dir: Path, admin: dict[str, str]
) -> None:
    registry = client.app.state.services.registry
    batch = commits(12)
    before = answers(client, batch)
    (models_dir / "challenger").write_text("2\n")
    assert registry.sync_shadow()
    assert [p.version for p in registry.served.shadows] == [2]
    assert answers(client, batch) == before  # same probabilities, labels, bands, version 1
    single = client.post("/predict", json=batch[0]).json()
    assert (single["probability"], single["model_version"]) == (before[0][0], 1)

    exposition = client.get("/metrics").text
    assert 'commitrisk_shadow_predictions_total{version="2"} 13.0' in exposition
    assert 'commitrisk_shadow_latency_seconds_count{version="2"} 2.0' in exposition
    assert "commitrisk_shadow_failures_total 0.0" in exposition

    rows = logged_shadow_rows(client, 13)
    assert len(rows) == 13 and {r[1] for r in rows} == {2}
    assert any(abs(r[0] - r[2]) > 1e-6 for r in rows)  # version 2 is a different model

    labels = [{"commit_id": c["commit_id"], "buggy": i % 2 == 0} for i, c in enumerate(batch)]
    assert client.post("/feedback", json=labels, headers=admin).status_code == 200
    listed = client.get("/models").json()
    (shadow,) = listed["shadows"]
    assert shadow["version"] == 2 and listed["challenger"] == 2
    assert shadow["live"]["scored"] == 13 and 0.0 <= shadow["live"]["agreement"] <= 1.0
    assert shadow["labelled"]["rows"] >= 12
    assert shadow["labelled"]["champion_roc_auc"] is not None and shadow["labelled"]["shadow_roc_auc"] is not None


def test_removing_the_challenger_pointer_drops_the_shadow(client: Any, models_dir: Path) -> None:
    registry = client.app.state.services.registry
    (models_dir / "challenger").write_text("2\n")
    assert registry.sync_shadow()
    (models_dir / "challenger").unlink()
    assert registry.sync_shadow() and registry.served.shadows == ()
    assert not registry.sync_shadow()  # nothing changed since


def test_a_missing_or_self_challenger_is_no_shadow(client: Any, models_dir: Path) -> None:
    registry = client.app.state.services.registry
    (models_dir / "challenger").write_text("7\n")  # not on disk
    assert not registry.sync_shadow() and registry.served.shadows == ()
    (models_dir / "challenger").write_text("1\n")  # the champion itself
    assert not registry.sync_shadow() and registry.served.shadows == ()
    assert client.post("/predict", json=commits(1)[0]).status_code == 200
    assert client.get("/models").json()["shadows"] == []


def test_the_shadow_survives_a_champion_reload(client: Any, models_dir: Path, admin: dict[str, str]) -> None:
    registry = client.app.state.services.registry
    (models_dir / "challenger").write_text("2\n")
    registry.sync_shadow()
    assert client.post("/reload", headers=admin).status_code == 200
    assert [p.version for p in registry.served.shadows] == [2]


def test_several_challengers_compete_side_by_side(client: Any, models_dir: Path, admin: dict[str, str]) -> None:
    build_model_version(models_dir, 3, strength=0.05, point=False)
    registry = client.app.state.services.registry
    batch = commits(10)
    before = answers(client, batch)
    (models_dir / "challenger").write_text("2\n3\n")
    assert registry.sync_shadow()
    assert [p.version for p in registry.served.shadows] == [2, 3]
    assert answers(client, batch) == before

    rows = logged_shadow_rows(client, 20)
    assert sorted((r[1], r[3]) for r in rows) == sorted((v, c["commit_id"]) for v in (2, 3) for c in batch)
    by_version = {v: {r[3]: r[2] for r in rows if r[1] == v} for v in (2, 3)}
    assert by_version[2] != by_version[3]  # each shadow logged its own probabilities
    exposition = client.get("/metrics").text
    assert 'commitrisk_shadow_predictions_total{version="2"} 10.0' in exposition
    assert 'commitrisk_shadow_predictions_total{version="3"} 10.0' in exposition

    labels = [{"commit_id": c["commit_id"], "buggy": i % 3 == 0} for i, c in enumerate(batch)]
    assert client.post("/feedback", json=labels, headers=admin).status_code == 200
    listed = client.get("/models").json()
    assert listed["challengers"] == [2, 3]
    shadows = {s["version"]: s for s in listed["shadows"]}
    assert set(shadows) == {2, 3}
    for shadow in shadows.values():
        assert shadow["live"]["scored"] == 10 and shadow["labelled"]["rows"] == 10
        assert shadow["labelled"]["champion_roc_auc"] is not None and shadow["labelled"]["shadow_roc_auc"] is not None
    assert shadows[2]["labelled"]["champion_roc_auc"] == shadows[3]["labelled"]["champion_roc_auc"]


def test_shadows_are_bounded_to_the_newest_challengers(models_dir: Path, settings: Any) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    build_model_version(models_dir, 3, strength=0.05, point=False)
    (models_dir / "challenger").write_text("2\n3\n")
    with TestClient(create_app(settings.model_copy(update={"max_shadows": 1}))) as bounded:
        assert [p.version for p in bounded.app.state.services.registry.served.shadows] == [3]
    with TestClient(create_app(settings.model_copy(update={"max_shadows": 0}))) as off:
        assert off.app.state.services.registry.served.shadows == ()


def test_a_broken_challenger_does_not_take_the_others_down(client: Any, models_dir: Path) -> None:
    build_model_version(models_dir, 3, strength=0.05, point=False)
    (models_dir / "3" / "model.onnx").write_bytes(b"not an onnx file")
    registry = client.app.state.services.registry
    (models_dir / "challenger").write_text("2\n3\n")
    assert registry.sync_shadow()
    assert [p.version for p in registry.served.shadows] == [2]
    assert client.post("/predict", json=commits(1)[0]).status_code == 200


def test_an_unreadable_challenger_pointer_keeps_the_champion_serving(client: Any, models_dir: Path) -> None:
    registry = client.app.state.services.registry
    (models_dir / "challenger").write_text("2\n../x\n")
    assert not registry.sync_shadow() and registry.served.shadows == ()
    assert client.post("/predict", json=commits(1)[0]).status_code == 200


def test_v2_infer_is_shadowed_and_logged_without_commit_ids(client: Any, models_dir: Path) -> None:
    (models_dir / "challenger").write_text("2\n")
    assert client.app.state.services.registry.sync_shadow()
    rows = [[float(v) for k, v in c.items() if k in FEATURES] for c in commits(3)]
    tensor = {"name": "features", "shape": [3, len(FEATURES)], "datatype": "FP32", "data": rows}
    assert client.post("/v2/models/commitrisk/infer", json={"inputs": [tensor]}).status_code == 200
    logged = logged_shadow_rows(client, 3)
    assert len(logged) == 3 and {(r[1], r[3]) for r in logged} == {(2, None)}
    assert 'commitrisk_shadow_predictions_total{version="2"} 3.0' in client.get("/metrics").text


def test_models_still_answers_when_the_labelled_comparison_cannot_reach_the_database(
    models_dir: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    (models_dir / "challenger").write_text("2\n")
    database = f"sqlite:///{tmp_path / 'missing' / 'p.db'}"  # a directory that does not exist: the database is down
    with TestClient(create_app(Settings(models_dir=models_dir, database_url=database))) as client:
        assert client.post("/predict", json=commits(1)[0]).status_code == 200
        listed = client.get("/models")
        assert listed.status_code == 200
        (shadow,) = listed.json()["shadows"]
        assert shadow["live"]["scored"] == 1 and shadow["labelled"]["error"] == "database unavailable"
