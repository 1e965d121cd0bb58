"""docs/monitoring.md's metric tables name exactly the Prometheus families the service exports."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.docs.markdown import DOCS, read, section, spans, table_rows

PAGE = DOCS / "monitoring.md"
FAMILY = re.compile(r"^# TYPE (commitrisk_\w+) (\w+)$", re.MULTILINE)


def exported_families(exposition: str) -> set[str]:
    """Family names as the docs write them (counters with `_total`), without prometheus-client's `_created`."""
    return {name for name, _ in FAMILY.findall(exposition) if not name.endswith("_created")}


def documented_families(text: str) -> set[str]:
    """First-column metric names of every table under "Prometheus metrics"."""
    return {
        value
        for row in table_rows(section(text, "Prometheus metrics"))
        for value in spans(row[0])
        if value.startswith("commitrisk_")
    }


def mismatches(exported: set[str], text: str) -> list[str]:
    """Families without a row, and rows for families the service does not export."""
    documented = documented_families(text)
    return [f"{name}: exported, not documented" for name in sorted(exported - documented)] + [
        f"{name}: documented, not exported" for name in sorted(documented - exported)
    ]


def test_every_exported_family_is_documented(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    settings = Settings(models_dir=tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'log.db'}")
    exposition = TestClient(create_app(settings)).get("/metrics").text  # no lifespan: nothing scheduled
    exported = exported_families(exposition)
    assert {"commitrisk_predictions_total", "commitrisk_drift_share"} <= exported
    assert not mismatches(exported, read(PAGE))


def test_a_stale_table_is_reported() -> None:
    exposition = (
        "# TYPE commitrisk_predictions_total counter\n"
        "# TYPE commitrisk_model_reloads_created gauge\n"
        "# TYPE commitrisk_new_gauge gauge\n"
    )
    text = (
        "## Prometheus metrics\n\n| metric | type |\n|---|---|\n"
        "| `commitrisk_predictions_total` | counter |\n| `commitrisk_gone_total` | counter |\n"
    )
    assert mismatches(exported_families(exposition), text) == [
        "commitrisk_new_gauge: exported, not documented",
        "commitrisk_gone_total: documented, not exported",
    ]
