"""`commitrisk feedback import`: local validation, chunked idempotent upserts into a real app's store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.support import ADMIN_TOKEN, build_model_version, free_port
from training.clients.feedback import FeedbackError, import_feedback, post_labels, read_labels


def test_dataset_format_is_accepted(synthetic_commits_dir: Path) -> None:
    path = synthetic_commits_dir / "alpha.csv"
    frame = pd.read_csv(path)
    labels = read_labels(path)
    assert len(labels) == len(frame) and sum(item["buggy"] for item in labels) == int(frame["buggy"].sum())
    assert [item["commit_id"] for item in labels] == frame["commit_id"].tolist()
    assert {item["repository"] for item in labels} == set(frame["repository_id"])  # repository_id is read too
    blamed = [item for item in labels if "fixed_by" in item]
    assert len(blamed) == frame["fixed_by"].notna().sum() > 0
    assert all(item["buggy"] for item in blamed)  # only defect-inducing commits are blamed by a fix


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


def test_post_labels_upserts_idempotently(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    build_model_version(tmp_path / "models", 1)
    settings = Settings(
        models_dir=tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'm.db'}", admin_token=ADMIN_TOKEN
    )
    labels = read_labels(synthetic_commits_dir / "beta.csv")
    with TestClient(create_app(settings)) as client:
        assert post_labels(client, labels, ADMIN_TOKEN) == len(labels)
        assert post_labels(client, labels, ADMIN_TOKEN) == len(labels)
        with pytest.raises(FeedbackError, match="403"):
            post_labels(client, labels[:1], "wrong")
        store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
        with store.engine.connect() as conn:
            from sqlalchemy import func, select

            from app.monitoring.tables import feedback

            assert conn.execute(select(func.count()).select_from(feedback)).scalar() == len(labels)


def test_import_reads_everything_before_sending_anything(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("commit_id,buggy\nabc,true\ndef,maybe\n")
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FeedbackError, match=r"labels.csv:3: buggy"):  # the bad line, not the unreachable service
        import_feedback(path, nobody, ADMIN_TOKEN)
    path.write_text("commit_id,buggy\nabc,true\n")
    with pytest.raises(FeedbackError, match=f"^{nobody}: "):
        import_feedback(path, nobody, ADMIN_TOKEN, timeout=5)
