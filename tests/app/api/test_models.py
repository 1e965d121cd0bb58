from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def reload_failures(client: Any) -> float:
    text = client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith('commitrisk_model_reloads_total{result="failure"}'))
    return float(line.split()[-1])


def test_models_lists_versions_pointer_and_this_process(client: Any) -> None:
    body = client.get("/models").json()
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert body["champion"] == 1 and body["challenger"] is None
    assert body["served"]["version"] == 1 and body["served"]["ready"] is True
    assert isinstance(body["served"]["pid"], int)
    assert "roc_auc" in body["versions"][0]["test_metrics"]


def test_models_reports_a_broken_version_without_failing(client: Any, models_dir: Path) -> None:
    (models_dir / "2" / "manifest.json").write_text("{}")
    versions = client.get("/models").json()["versions"]
    assert versions[1]["version"] == 2 and "invalid" in versions[1]["error"]


def test_model_manifest_and_bad_names(client: Any) -> None:
    assert client.get("/models/2").json()["version"] == 2
    assert client.get("/models/9").status_code == 404
    for name in ("..", "..%2F..%2Fetc%2Fpasswd", "-1", "1.0", "%2e%2e"):
        r = client.get(f"/models/{name}")
        assert r.status_code in (400, 404), name
        assert "error" in r.json()
    assert client.get("/models/abc").json()["error"]["type"] == "InvalidVersion"


def test_reload_needs_the_admin_token(client: Any) -> None:
    r = client.post("/reload")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.post("/reload", headers={"Authorization": "Basic abc"}).status_code == 401


def test_reload_without_configured_token_is_forbidden(models_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(
        create_app(Settings(models_dir=models_dir, database_url=f"sqlite:///{models_dir.parent}/p.db"))
    ) as client:
        assert client.post("/reload", headers={"Authorization": "Bearer x"}).status_code == 403


def test_reload_to_a_version_moves_the_pointer(client: Any, admin: dict[str, str], models_dir: Path) -> None:
    r = client.post("/reload", json={"version": 2}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["previous"] == 1 and r.json()["champion"] == 2
    assert (models_dir / "champion").read_text().strip() == "2"
    assert client.post("/predict?explain=false", json=_commit()).json()["model_version"] == 2
    assert client.post("/reload", headers=admin).json()["version"] == 2  # no body: the pointer


def test_reload_rejects_bad_versions(client: Any, admin: dict[str, str]) -> None:
    assert client.post("/reload", json={"version": "../x"}, headers=admin).status_code == 400
    assert client.post("/reload", json={"version": 0}, headers=admin).status_code == 400
    assert client.post("/reload", json={"version": 3}, headers=admin).status_code == 404
    assert client.post("/reload", json={"v": 3}, headers=admin).status_code == 422
    assert (
        client.post("/reload", content=b"{", headers={**admin, "content-type": "application/json"}).status_code == 400
    )


def test_corrupt_model_on_reload_keeps_old_model(client: Any, admin: dict[str, str], models_dir: Path) -> None:
    onnx = models_dir / "2" / "model.onnx"
    onnx.write_bytes(b"\x00" * 64)
    r = client.post("/reload", json={"version": 2}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["type"] == "InvalidModel"
    assert "sha256" in r.json()["error"]["message"]
    assert client.get("/health/ready").json()["model_version"] == 1
    assert client.post("/predict", json=_commit()).json()["model_version"] == 1
    assert reload_failures(client) == 1
    assert (models_dir / "champion").read_text().strip() == "1"


def test_feature_mismatch_on_reload_keeps_old_model(client: Any, admin: dict[str, str], models_dir: Path) -> None:
    path = models_dir / "2" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["features"][0]["name"] = "subsystems"
    path.write_text(json.dumps(manifest))
    r = client.post("/reload", json={"version": 2}, headers=admin)
    assert r.status_code == 409 and "feature" in r.json()["error"]["message"]
    assert client.get("/models").json()["served"]["version"] == 1
    assert reload_failures(client) == 1


def _commit() -> dict[str, Any]:
    from app.contract import FEATURES

    return dict.fromkeys(FEATURES, 1.0)


def test_the_absolute_models_path_shows_only_to_the_admin(client: Any, admin: dict[str, str], models_dir: Path) -> None:
    root = str(models_dir.resolve())
    (models_dir / "challenger").write_text("nope\n")
    anonymous = client.get("/models")
    assert anonymous.json()["models_dir"] == "<models>" and root not in anonymous.text
    assert anonymous.json()["challenger"].startswith("invalid: <models>/challenger: pointer holds 'nope'")
    assert client.get("/models", headers=admin).json()["models_dir"] == root
    missing = client.get("/models/9").json()["error"]["message"]
    assert missing == "<models>: version 9 does not exist"
    assert root in client.get("/models/9", headers=admin).json()["error"]["message"]


def test_versions_are_integers_only(client: Any, admin: dict[str, str]) -> None:
    assert client.get("/models/1%0A").json()["error"]["type"] == "InvalidVersion"  # not version 1 + a newline
    assert client.get("/v2/models/commitrisk/versions/1%0A/ready").status_code == 400
    for version in ("true", "1.0", '"1\\n"', "[1]", "9" * 5000):
        body = f'{{"version": {version}}}'.encode()
        r = client.post("/reload", content=body, headers={**admin, "content-type": "application/json"})
        kind = r.json()["error"]["type"]  # a 5,000-digit number is no JSON integer pydantic reads: MalformedBody
        assert r.status_code in (400, 422) and kind in ("InvalidInput", "InvalidVersion", "MalformedBody"), version[:9]
    assert client.get("/models").json()["champion"] == 1  # none of them moved the pointer


def test_a_pipeline_version_shows_its_per_repository_evidence(trained_models: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings
    from tests.support import private_copy

    models = private_copy(trained_models, tmp_path)
    settings = Settings(models_dir=models, database_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(settings)) as client:
        body = client.get("/models/1").json()
    protocol = body["protocol"]
    assert [f["protocol"] for f in protocol["forward"]["folds"]] == ["forward"] * 3
    assert all(
        f["roc_auc"] is not None and f["baseline_roc_auc"] is not None for f in protocol["leave_one_out"]["folds"]
    )
    assert protocol["choice"].startswith("logistic_regression") and body["explanation"]["method"] == "linear"
    assert all(c["verdict"] for c in body["candidates"])
