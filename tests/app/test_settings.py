"""Settings: COMMITRISK_* variables, documented defaults, bad values refused, nothing read at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings
from tests.support import REPO


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("COMMITRISK_")]:
        monkeypatch.delenv(name)
    settings = Settings()
    assert settings.models_dir == Path("models") and settings.admin_token is None
    assert settings.max_batch == 1000 and settings.database_url == "sqlite:///commitrisk.db"
    assert settings.prediction_log and settings.monitoring_job and settings.drift_window_days is None
    assert settings.log_partition == "none"  # the log is partitioned only when asked (PostgreSQL)


def test_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COMMITRISK_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("COMMITRISK_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("COMMITRISK_PREDICTION_LOG", "false")
    monkeypatch.setenv("COMMITRISK_DRIFT_WINDOW_DAYS", "7")
    monkeypatch.setenv("MAX_BATCH", "5")  # without the prefix: not ours
    settings = Settings()
    assert settings.models_dir == tmp_path and settings.max_batch == 1000
    assert settings.admin_token is not None and settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)  # a secret never reaches a log line
    assert not settings.prediction_log and settings.drift_window_days == 7.0


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAX_BATCH", "abc"), ("MAX_BATCH", "0"), ("MAX_BODY_BYTES", "10"), ("EXPLAIN_TOP_K", "16"),
     ("POINTER_POLL_SECONDS", "0"), ("DRIFT_WINDOW_DAYS", "-1"), ("LOG_PARTITION", "weekly")],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"COMMITRISK_{name}", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == (name.lower(),)


def test_importing_builds_no_instance() -> None:
    code = "import app.settings as s; print([n for n, v in vars(s).items() if isinstance(v, s.Settings)])"
    env = {"COMMITRISK_MAX_BATCH": "not-a-number", "PATH": "/usr/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    ("url", "problem"), [("garbage", "not a database URL"), ("mysql://u:pw@h/db", "databases are not supported")]
)
def test_a_database_url_no_database_can_answer_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as refused:
        Settings(database_url=url)
    [error] = refused.value.errors()
    assert error["loc"] == ("database_url",) and "pw" not in error["msg"]  # what `serve` prints: never the URL


def test_a_database_that_is_only_down_is_no_configuration_error(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'missing' / 'm.db'}", "postgresql+psycopg://u@127.0.0.1:1/db"):
        assert Settings(database_url=url).database_url == url
