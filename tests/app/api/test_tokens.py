from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.tokens import check_file, digest, matches, parse
from app.contract import FEATURES
from tests.support import ADMIN_TOKEN

INFER = "/v2/models/commitrisk/infer"


def infer_body(commit: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": [{"name": "features", "shape": [1, 15], "datatype": "FP32", "data": [commit[f] for f in FEATURES]}]
    }


@pytest.fixture
def guarded(settings: Any) -> Iterator[TestClient]:
    """An app whose scoring routes need one of two client tokens."""
    from app.main import create_app

    with TestClient(create_app(settings.model_copy(update={"client_tokens": SecretStr("ci-bot, replay")}))) as client:
        yield client


def test_tokens_are_parsed_from_commas_and_lines() -> None:
    assert parse("a, b,,a\n# a comment, not a token\n  c  \n\n") == (digest("a"), digest("b"), digest("c"))
    assert parse("  ") == ()


def test_matching_compares_every_digest() -> None:
    accepted = (digest("one"), digest("two"))
    assert matches("two", accepted) and not matches("three", accepted) and not matches("", accepted)


def test_scoring_is_open_by_default(client: TestClient, commit: dict[str, Any]) -> None:
    assert client.post("/predict", json=commit).status_code == 200
    assert client.post(INFER, json=infer_body(commit)).status_code == 200


def test_client_tokens_guard_the_scoring_routes(guarded: TestClient, commit: dict[str, Any]) -> None:
    for path, body in (("/predict", commit), ("/predict/batch", {"commits": [commit]}), (INFER, infer_body(commit))):
        missing = guarded.post(path, json=body)
        assert missing.status_code == 401 and missing.json()["error"]["type"] == "Unauthenticated"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = guarded.post(path, json=body, headers={"Authorization": "Bearer ci-bot2"})
        assert wrong.status_code == 403 and wrong.json()["error"] == {
            "type": "Forbidden",
            "message": "wrong client token",
            "details": [],
        }
        for token in ("ci-bot", "replay", ADMIN_TOKEN):
            assert guarded.post(path, json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Reading routes stay open: probes, model metadata, metrics.
    for path in ("/health/live", "/health/ready", "/models/1", "/v2/models/commitrisk", "/metrics"):
        assert guarded.get(path).status_code == 200, path


def test_a_token_file_is_reread_when_it_changes(settings: Any, tmp_path: Path, commit: dict[str, Any]) -> None:
    from app.main import create_app

    tokens = tmp_path / "tokens"
    tokens.write_text("# one per line\nfirst\n")
    with TestClient(create_app(settings.model_copy(update={"client_tokens_file": tokens}))) as client:

        def status(token: str) -> int:
            return client.post("/predict", json=commit, headers={"Authorization": f"Bearer {token}"}).status_code

        assert status("first") == 200 and status("second") == 403
        tokens.write_text("second\n")
        os.utime(tokens, ns=(1, 1))  # a different stamp even within the file system's time resolution
        assert status("first") == 403 and status("second") == 200
        tokens.write_text("")  # caught mid-rewrite: the last tokens read stay accepted
        assert status("second") == 200
        tokens.unlink()
        assert status("second") == 200


def test_a_file_without_tokens_is_refused_at_start(settings: Any, tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ValueError, match=r"COMMITRISK_CLIENT_TOKENS_FILE: .*tokens: holds no token"):
        check_file(settings.model_copy(update={"client_tokens_file": empty}))
    with pytest.raises(ValueError, match="No such file or directory"):
        check_file(settings.model_copy(update={"client_tokens_file": tmp_path / "missing"}))
    check_file(settings)  # not set: nothing to check
