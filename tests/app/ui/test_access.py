"""With client tokens on, the pages need one (bearer, or HTTP Basic with the token as password); off, they are open."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from app.main import create_app
from app.settings import Settings
from app.ui.access import basic_password
from tests.support import ADMIN_TOKEN

HTML = {"accept": "text/html"}


def basic(password: str, user: str = "me") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def request(authorization: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/ui/", "headers": [(b"authorization", authorization.encode())]}
    )


@pytest.mark.parametrize(
    ("header", "password"),
    [("Basic " + base64.b64encode(b"u:s3cret:x").decode(), "s3cret:x"), ("Basic !!!", None),
     ("Basic " + base64.b64encode(b"no-colon").decode(), None), ("Bearer abc", None), ("", None)],
)  # fmt: skip
def test_basic_password(header: str, password: str | None) -> None:
    assert basic_password(request(header)) == password


def test_the_pages_need_a_client_token_when_tokens_are_on(models_dir: Path, tmp_path: Path) -> None:
    settings = Settings(models_dir=models_dir, admin_token=ADMIN_TOKEN, client_tokens="reader-1,reader-2",
                        database_url=f"sqlite:///{tmp_path / 'log.db'}")  # fmt: skip
    with TestClient(create_app(settings)) as client:
        page = client.get("/ui/models", headers=HTML)
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic ")
        answer = client.get("/ui/models")
        assert answer.status_code == 401 and answer.json()["error"]["type"] == "Unauthenticated"
        assert client.get("/ui/models", headers=HTML | basic("wrong")).status_code == 403
        for headers in (basic("reader-2"), {"Authorization": "Bearer reader-1"}, basic(ADMIN_TOKEN)):
            assert client.get("/ui/models", headers=HTML | headers).status_code == 200
        assert client.get("/ui/models/1/report/roc.png").status_code == 401  # figures too
        assert client.get("/ui/nowhere", headers=HTML).status_code == 401


def test_the_pages_are_open_while_client_tokens_are_off(client: TestClient) -> None:
    assert client.get("/ui/models", headers=HTML).status_code == 200
