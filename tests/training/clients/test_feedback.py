"""`commitrisk feedback import`: local validation, chunked idempotent upserts into a real app's store."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.main import create_app
from app.settings import Settings
from tests.support import ADMIN_TOKEN, build_model_version
from training.cli import cli
from training.clients.feedback import FeedbackError, post_labels, read_labels


def test_dataset_format_is_accepted(shared_commits_dir: Path) -> None:
    labels = read_labels(shared_commits_dir / "YCSB.csv")
    assert len(labels) == 641 and sum(item["buggy"] for item in labels) == 80
    first = labels[0]
    assert first["repository"] and first["commit_id"].startswith(first["repository"])
    assert "fixed_by" in first  # the initial commit was blamed by later fixes


def test_minimal_format_with_iso_dates(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("commit_id,buggy,labeled_at\nabc,TRUE,2024-01-02T00:00:00+00:00\ndef,0,1700000000\n")
    assert read_labels(path) == [
        {"commit_id": "abc", "buggy": True, "labeled_at": 1704153600.0},
        {"commit_id": "def", "buggy": False, "labeled_at": 1700000000.0},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("commit_id\nabc\n", "missing column 'buggy'"),
        ("commit_id,buggy\nabc,maybe\n", "labels.csv:2: buggy: expected true or false"),
        ("commit_id,buggy\n,true\n", "labels.csv:2: commit_id: empty"),
        ("commit_id,buggy,labeled_at\nabc,true,soon\n", "labeled_at: expected Unix seconds"),
        ("", "empty file"),
    ],
)
def test_bad_label_files_name_line_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(FeedbackError, match=message):
        read_labels(path)


def test_post_labels_upserts_idempotently(tmp_path: Path, shared_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    settings = Settings(
        models_dir=tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'm.db'}", admin_token=ADMIN_TOKEN
    )
    labels = read_labels(shared_commits_dir / "guice.csv")
    with TestClient(create_app(settings)) as client:
        assert post_labels(client, labels, ADMIN_TOKEN) == len(labels)
        assert post_labels(client, labels, ADMIN_TOKEN) == len(labels)
        with pytest.raises(FeedbackError, match="403"):
            post_labels(client, labels[:1], "wrong")
        store = client.app.state.monitoring.store  # type: ignore[attr-defined]
        with store.engine.connect() as conn:
            from sqlalchemy import func, select

            from app.monitoring.tables import feedback

            assert conn.execute(select(func.count()).select_from(feedback)).scalar() == len(labels)


def test_cli_reports_bad_input_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("commit_id,buggy\nabc,maybe\n")
    result = CliRunner().invoke(cli, ["feedback", "import", str(path), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and "buggy" in result.stderr
    missing = CliRunner().invoke(cli, ["feedback", "import", str(tmp_path / "nope.csv"), "--url", "http://x"])
    assert missing.exit_code == 2 and "nope.csv" in missing.stderr


def test_cli_reports_an_unreachable_service(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("commit_id,buggy\nabc,true\n")
    result = CliRunner().invoke(cli, ["feedback", "import", str(path), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "http://127.0.0.1:9" in result.stderr
