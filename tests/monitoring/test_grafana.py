"""The Grafana provisioning: valid files, and every panel query names a metric the service exports."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.support import ROOT, exported_metric_names, referenced_metric_names

GRAFANA = ROOT / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "commitrisk.json"


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for sub in [panel, *panel.get("panels", [])]:
            for target in sub.get("targets") or []:
                found.append((sub["title"], target["expr"]))
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return exported_metric_names(tmp_path_factory.mktemp("grafana"))


def test_every_panel_query_names_an_exported_metric(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    found = queries(dashboard)
    assert len(found) >= 15
    for title, expr in found:
        names = referenced_metric_names(expr)
        assert names, f"panel {title!r} queries no commitrisk metric: {expr}"
        assert names <= exported, f"panel {title!r}: {sorted(names - exported)} not exported"


def test_dashboard_covers_the_required_views() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(expr for _, expr in queries(dashboard))
    for needed in (
        "commitrisk_http_requests_total",  # traffic, errors
        "commitrisk_http_request_duration_seconds_bucket",  # latency
        "commitrisk_model_info",  # model version
        "commitrisk_predictions_total",  # risk mix
        "commitrisk_prediction_probability_bucket",  # probability distribution
        "commitrisk_feature_drifted",  # drift per feature
        "commitrisk_model_performance",  # performance
    ):
        assert needed in exprs
    assert dashboard["uid"] == "commitrisk" and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = datasource["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "commitrisk.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == source["uid"]
