"""docs/operations.md and docs/deployment.md keep up with the repository: a runbook entry for every alert rule,
every Kubernetes manifest and compose service described, the settings linked rather than copied."""

from __future__ import annotations

import re

import yaml

from tests.docs.markdown import DOCS, README, links, read, section
from tests.support import ROOT

OPERATIONS = DOCS / "operations.md"
DEPLOYMENT = DOCS / "deployment.md"


def alerts() -> set[str]:
    """Alert names of monitoring/alerts.yml."""
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def runbook_entries(text: str) -> set[str]:
    """`### Name` headings of the runbook section."""
    return set(re.findall(r"^### (\S+)$", section(text, "Runbook: alerts"), re.MULTILINE))


def test_every_alert_rule_has_a_runbook_entry() -> None:
    found = alerts()
    assert found, "no alert rules found"
    missing = found - runbook_entries(read(OPERATIONS))
    assert not missing, f"docs/operations.md: alerts without a runbook entry: {sorted(missing)}"


def test_a_missing_runbook_entry_is_seen() -> None:
    text = "# Ops\n\n## Runbook: alerts\n\n### CommitRiskDown\n\nfix it\n\n## After\n\n### NotARunbookEntry\n"
    assert runbook_entries(text) == {"CommitRiskDown"}


def test_every_manifest_and_compose_service_is_described() -> None:
    text = read(DEPLOYMENT)
    manifests = [m.name for m in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")) if m.name != "kustomization.yaml"]
    assert manifests, "no Kubernetes manifests found"
    kubernetes = section(text, "Kubernetes")
    assert not [name for name in manifests if f"| `{name}` |" not in kubernetes], "manifests without a row"
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    compose = section(text, "Docker Compose (one machine)")
    assert not [name for name in services if f"| `{name}` |" not in compose], "compose services without a row"


def test_operations_links_the_settings_instead_of_copying_them() -> None:
    text = read(OPERATIONS)
    assert "configuration.md" in links(section(text, "Settings"))
    assert not re.search(r"^\| `COMMITRISK_", text, re.MULTILINE), "the settings table lives in configuration.md"


def test_readme_links_deployment_and_operations() -> None:
    targets = {target.split("#", 1)[0] for target in links(read(README))}
    assert {"docs/deployment.md", "docs/operations.md"} <= targets
