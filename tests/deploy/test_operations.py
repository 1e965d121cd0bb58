"""docs/operations.md keeps up with the code: every setting, every alert rule, every deployment artefact."""

from __future__ import annotations

import re

import yaml

from app.settings import Settings
from tests.support import ROOT

DOC = (ROOT / "docs" / "operations.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `(COMMITRISK_[A-Z_]+)`", DOC, re.MULTILINE))
    missing = {f"COMMITRISK_{name.upper()}" for name in Settings.model_fields} - documented
    assert not missing, f"docs/operations.md: settings without a row: {sorted(missing)}"


def test_every_alert_rule_has_a_runbook_entry() -> None:
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}
    headings = set(re.findall(r"^### (\S+)$", DOC, re.MULTILINE))
    assert alerts, "no alert rules found"
    assert not alerts - headings, f"docs/operations.md: alerts without a runbook entry: {sorted(alerts - headings)}"


def test_every_manifest_and_compose_service_is_described() -> None:
    for manifest in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        assert f"`{manifest.name}`" in DOC or manifest.name == "kustomization.yaml", manifest.name
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in services:
        assert f"| `{name}` |" in DOC, name


def test_readme_links_the_operations_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    assert "docs/operations.md" in section
