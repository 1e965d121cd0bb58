"""The page routes on a real app: HTML for browsers, the one JSON error shape for other clients, no 500."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.contract import FEATURES
from app.main import create_app
from app.settings import Settings
from tests.support import ADMIN_TOKEN

HTML = {"accept": "text/html"}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(params=[False, True], ids=["in-the-worker", "page-process"])
def app_client(models_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """An app whose log is a SQLite file in its own directory, with pages that recount on every view, rendered by
    the app itself or by its page process (app/ui/process.py)."""
    (tmp_path / "db").mkdir()
    settings = Settings(
        models_dir=models_dir, admin_token=ADMIN_TOKEN, database_url=f"sqlite:///{tmp_path / 'db' / 'log.db'}",
        log_flush_seconds=0.02, ui_refresh_seconds=0, ui_labels_refresh_seconds=0, ui_process=request.param,
        ui_process_nice=0,  # not niced below the other test processes (its niceness: test_process.py)
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, n: int, repository: str = "org/app") -> list[dict[str, Any]]:
    answers = []
    for i in range(n):
        body = {name: float((i * 7 + k) % 13) for k, name in enumerate(FEATURES)}
        body |= {"la": float(10 + 300 * (i % 4)), "commit_id": f"{repository}_{i:02d}beef", "repository": repository}
        answers.append(client.post("/predict", json=body).json())
    store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while store.count_predictions() < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return answers


def listed(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-commit-id="')[1:]]


def test_the_pages_render_what_was_posted(app_client: TestClient) -> None:
    answers = post(app_client, 12)
    app_client.post("/feedback", json=[{"commit_id": answers[0]["commit_id"], "buggy": True}], headers=AUTH)
    overview = app_client.get("/ui/", headers=HTML)
    assert overview.status_code == 200 and 'href="/ui/repositories/org%2Fapp"' in overview.text
    page = app_client.get("/ui/repositories/org%2Fapp", params={"per_page": 10}, headers=HTML)
    assert listed(page.text) == [a["commit_id"] for a in reversed(answers)][:10]
    assert "page 1 of 2" in page.text and 'rel="next"' in page.text
    second = app_client.get("/ui/repositories/org/app", params={"per_page": 10, "page": 2}, headers=HTML)
    assert listed(second.text) == [answers[1]["commit_id"], answers[0]["commit_id"]]
    assert "buggy" in second.text  # the label joined on the list
    high = [a["commit_id"] for a in reversed(answers) if a["risk_band"] == "high"]
    filtered = app_client.get("/ui/repositories/org/app", params={"band": "high", "from": "", "to": "", "sha": ""})
    assert listed(filtered.text) == high
    commit = app_client.get(f"/ui/commits/{answers[3]['commit_id']}", headers=HTML)
    assert commit.status_code == 200 and all(f'data-feature="{name}"' in commit.text for name in FEATURES)
    for path in ("/ui/models", "/ui/monitoring"):
        assert app_client.get(path, headers=HTML).status_code == 200


def test_bad_input_is_a_404_or_422_page_or_json(app_client: TestClient) -> None:
    post(app_client, 2)
    cases = [
        ("/ui/repositories/unknown", 404, "NotLogged"),
        ("/ui/commits/unknown", 404, "NotLogged"),
        ("/ui/repositories/org/app?page=0", 422, "InvalidInput"),
        ("/ui/repositories/org/app?page=2", 422, "InvalidInput"),  # past the last page
        ("/ui/repositories/org/app?page=x", 422, "InvalidInput"),
        ("/ui/repositories/org/app?band=urgent", 422, "InvalidInput"),
        ("/ui/repositories/org/app?from=2026-02-30", 422, "InvalidInput"),
        ("/ui/repositories/org/app?from=2026-03-02&to=2026-03-01", 422, "InvalidInput"),
        ("/ui/repositories/org/app?sha=" + "a" * 101, 422, "InvalidInput"),
        ("/ui/models/0/report/roc.png", 400, "InvalidVersion"),
        ("/ui/models/7/report/roc.png", 404, "ModelNotFound"),
        ("/ui/models/1/report/manifest.json", 404, "ModelNotFound"),
        ("/ui/nowhere/at/all", 404, "NotFound"),
        ("/ui/repositories/a%00b", 404, "NotLogged"),  # PostgreSQL refuses NUL in a query: never asked
        ("/ui/commits/a%00b", 404, "NotLogged"),
        ("/ui/repositories/org/app?sha=a%00", 422, "InvalidInput"),
    ]
    for path, status, kind in cases:
        page = app_client.get(path, headers=HTML)
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (status, "text/html"), path
        answer = app_client.get(path)
        assert answer.status_code == status and answer.json()["error"]["type"] == kind, path


def test_report_figures_are_served_from_the_version_directory(app_client: TestClient, models_dir: Path) -> None:
    (models_dir / "1" / "report").mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (models_dir / "1" / "report" / "roc.png").write_bytes(png)
    figure = app_client.get("/ui/models/1/report/roc.png")
    assert figure.status_code == 200 and figure.content == png and figure.headers["content-type"] == "image/png"
    assert 'src="/ui/models/1/report/roc.png"' in app_client.get("/ui/models").text
    assert app_client.get("/ui/models/1/report/..%2Fmanifest.json").status_code == 404


def test_a_database_outage_is_a_503_page(app_client: TestClient, tmp_path: Path) -> None:
    post(app_client, 1)
    shutil.rmtree(tmp_path / "db")
    app_client.app.state.services.monitoring.store.engine.dispose()  # type: ignore[attr-defined]
    page = app_client.get("/ui/repositories/org/app", headers=HTML)
    assert page.status_code == 503 and "DatabaseUnavailable" in page.text


def test_the_pages_are_in_the_openapi_schema_as_html(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    ui = {p for p in paths if p.startswith("/ui/")}
    assert ui == {"/ui/", "/ui/repositories/{repository}", "/ui/commits/{commit_id}", "/ui/models",
                  "/ui/models/{version}/report/{figure}", "/ui/monitoring"}  # fmt: skip
    assert "text/html" in paths["/ui/"]["get"]["responses"]["200"]["content"]
    assert app_client.get("/ui", follow_redirects=False).headers["location"].endswith("/ui/")
