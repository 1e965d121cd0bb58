"""What the pages show: charts with their tables, reasons per listed row, the model list, the monitoring view."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.monitoring.snapshot import Computed
from app.monitoring.timeline import compute_outcomes
from app.monitoring.volume import DAY, count_volume, day_of
from app.ui import views
from app.ui.explanation import Explainer
from tests.support import log_row


def test_band_chart_has_a_table_row_per_day_with_predictions() -> None:
    day = day_of(1_790_000_000)
    chart = views.band_chart(
        [(day, {"low": 1, "medium": 0, "high": 2}), (day + 1, {"low": 0, "medium": 0, "high": 0})], "x"
    )
    assert chart.rows == [("2026-09-21", {"low": 1, "medium": 0, "high": 2})]
    assert "2026-09-21 to 2026-09-22" in chart.caption and 'data-value="2"' in chart.svg


def test_repository_chart_defaults_to_the_last_30_days(client: TestClient) -> None:
    store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    now = time.time()
    store.insert_predictions([log_row(now, "r", "high"), log_row(now - 40 * DAY, "r", "low"), log_row(now, "s")])
    volume = count_volume(store.engine, None, 180, now)
    chart = views.repository_chart(volume, "r", None, None)
    assert len(chart.svg.split('class="bar"')) == 2 and [v for _, v in chart.rows] == [
        {"low": 0, "medium": 0, "high": 1}
    ]
    since = views.repository_chart(volume, "r", now - 45 * DAY, None)
    assert sum(sum(v.values()) for _, v in since.rows) == 2


def test_reasons_come_per_row_and_none_for_a_missing_version(client: TestClient) -> None:
    store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    store.insert_predictions(
        [log_row(1.0, "r", commit_id="a", la=5000.0), {**log_row(2.0, "r", commit_id="b"), "model_version": 9}]
    )
    from app.monitoring.commits import CommitFilter, list_commits

    rows = list_commits(store.engine, CommitFilter("r"), 0, 10)
    reasons = views.reasons(Explainer(client.app.state.services.registry, 3), rows)  # type: ignore[attr-defined]
    by_commit = {row.commit_id: reasons[row.id] for row in rows}
    assert by_commit["b"] is None and any("lines added" in text for text in by_commit["a"] or [])


def test_models_view_lists_versions_roles_and_unreadable_ones(client: TestClient, models_dir: Path) -> None:
    (models_dir / "challenger").write_text("2\n")
    (models_dir / "3").mkdir()
    (models_dir / "3" / "manifest.json").write_text("{}")
    view = views.models_view(client.app.state.services)  # type: ignore[attr-defined]
    assert [v["version"] for v in view["versions"]] == [3, 2, 1]
    assert [v["roles"] for v in view["versions"]] == [[], ["challenger"], ["champion"]]
    assert view["versions"][0]["manifest"] is None and "invalid manifest" in view["versions"][0]["error"]
    assert str(models_dir) not in view["versions"][0]["error"]  # no server path on a page
    assert (view["champion"], view["challengers"], view["served"]) == (1, [2], 1)


def test_monitoring_view_from_the_snapshots(client: TestClient) -> None:
    store = client.app.state.services.monitoring.store  # type: ignore[attr-defined]
    now = time.time()
    store.insert_predictions([log_row(now - k * DAY, "r", "high", 0.9, f"c{k}") for k in range(20)])
    store.upsert_feedback([{"commit_id": f"c{k}", "buggy": k % 2 == 0} for k in range(20)])
    volume = Computed(count_volume(store.engine, None, 180, now), now)
    outcomes = Computed(compute_outcomes(store.engine, now), now)
    view = views.monitoring_view(store.engine, volume, outcomes)
    assert sum(sum(v.values()) for _, v in view["volume_chart"].rows) == 20
    assert sum(sum(v.values()) for _, v in view["band_mix"]) == 20
    assert view["performance_chart"] is not None and view["drift_chart"] is None and view["audit"] == []
    assert len(view["volume_chart"].svg.split('class="bar"')) - 1 == 20  # one bar per day with predictions
