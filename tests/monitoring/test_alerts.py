"""Alert rules: promtool validates them and runs their unit tests; every metric they use is exported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support import ROOT, exported_metric_names, referenced_metric_names, tool

MONITORING = ROOT / "monitoring"


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    """Run promtool (missing: fails in CI, skips elsewhere)."""
    binary = tool("promtool", "apt-get install prometheus (scripts/test.sh does)")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml", cwd=MONITORING / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n")
    assert promtool("check", "rules", str(bad)).returncode != 0


def test_every_alert_names_an_exported_metric(tmp_path: Path) -> None:
    exported = exported_metric_names(tmp_path) | {"up"}
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    required = {
        "CommitRiskDown", "CommitRiskNotReady", "CommitRiskHigh5xxRatio", "CommitRiskLatencyBudgetFastBurn",
        "CommitRiskLatencyBudgetSlowBurn", "CommitRiskDataDrift", "CommitRiskDriftJobStale",
        "CommitRiskPerformanceBelowFloor", "CommitRiskPredictionLogDrops",
    }  # fmt: skip
    assert required <= {r.get("alert") for r in alerts}
    for rule in alerts:
        names = referenced_metric_names(rule["expr"])
        assert names <= exported, f"{rule.get('alert') or rule.get('record')}: {sorted(names - exported)}"
