"""Metric names a real app exports (families with their sample suffixes), for the config-vs-service tests."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Settings
from tests.app.conftest import build_model_version

SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
METRIC_NAME = re.compile(r"\bcommitrisk_[a-z0-9_]+\b")


def exported_metric_names(tmp_path: Path) -> set[str]:
    """Every sample name the service's /metrics can carry (labelled families show even before use)."""
    models = tmp_path / "models"
    build_model_version(models, 1)
    settings = Settings(models_dir=models, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def referenced_metric_names(expr: str) -> set[str]:
    """`commitrisk_*` metric names in a PromQL expression (recording-rule names use colons, not matched)."""
    return {m for m in METRIC_NAME.findall(expr) if ":" not in m}
