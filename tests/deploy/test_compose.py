"""docker-compose.yml: valid for `docker-compose config` (Debian's v1, no daemon), wired as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, tool

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def config(project: Path, env_file: Path | None) -> subprocess.CompletedProcess[str]:
    binary = tool("docker-compose", "apt-get install docker-compose (scripts/test.sh does)")
    command = [binary, "--project-directory", str(project), "-f", str(project / "docker-compose.yml")]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run([*command, "config"], capture_output=True, text=True, cwd=project)


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    result = config(ROOT, ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def test_services(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == {"api", "trainer", "monitor", "postgres", "prometheus", "grafana"}


def test_api_uses_the_serve_target_models_volume_postgres_and_the_admin_token(rendered: dict[str, Any]) -> None:
    api = rendered["services"]["api"]
    assert api["build"]["target"] == "serve"
    assert "models:/models:rw" in api["volumes"]
    env = api["environment"]
    assert env["COMMITRISK_DATABASE_URL"].startswith("postgresql+psycopg://commitrisk:change-me-postgres@postgres:")
    assert env["COMMITRISK_ADMIN_TOKEN"] == "change-me-admin-token"  # from the env file
    assert env["COMMITRISK_WORKERS"] == "2"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_trainer_and_monitor_share_the_models_and_database(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert services["trainer"]["build"]["target"] == "trainer"
    assert services["monitor"]["image"] == services["trainer"]["image"]
    assert "commitrisk monitor" in " ".join(services["monitor"]["command"])
    assert services["trainer"]["environment"]["COMMITRISK_SERVICE_URL"] == "http://api:8000"
    urls = {services[s]["environment"]["COMMITRISK_DATABASE_URL"] for s in ("api", "trainer", "monitor")}
    assert len(urls) == 1
    for name in ("trainer", "monitor"):
        assert any(v.startswith("models:/models") for v in services[name]["volumes"])


def test_prometheus_scrapes_the_api_by_the_name_in_monitoring_config(rendered: dict[str, Any]) -> None:
    prometheus_config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    job = next(j for j in prometheus_config["scrape_configs"] if j["job_name"] == "commitrisk")
    host, port = job["static_configs"][0]["targets"][0].split(":")
    api = rendered["services"]["api"]
    assert host == "api" or host in api["networks"]["default"]["aliases"]
    assert port == "8000"
    rules = set(prometheus_config["rule_files"])
    mounted = {Path(v.split(":")[1]).name for v in rendered["services"]["prometheus"]["volumes"]}
    assert rules <= mounted, "every rule file in prometheus.yml must be mounted beside it"


def test_every_mounted_host_path_exists(rendered: dict[str, Any]) -> None:
    for name, service in rendered["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source}"


def test_grafana_is_provisioned_from_monitoring(rendered: dict[str, Any]) -> None:
    volumes = rendered["services"]["grafana"]["volumes"]
    assert any(v.endswith(":/etc/grafana/provisioning:ro") and "monitoring/grafana/provisioning" in v for v in volumes)
    provider = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/dashboards/commitrisk.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(f":{path}:ro") for v in volumes), f"dashboards must be mounted at {path}"


def test_env_example_sets_every_variable_the_compose_file_uses() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = {line.split("=")[0] for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and line[0] != "#"}
    assert used <= example, used - example


def test_missing_secrets_are_refused(tmp_path: Path) -> None:
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    lines = [x for x in ENV_EXAMPLE.read_text().splitlines() if not x.startswith("COMMITRISK_ADMIN_TOKEN=")]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    result = config(tmp_path, tmp_path / ".env")
    assert result.returncode != 0
    assert "set COMMITRISK_ADMIN_TOKEN in .env" in result.stderr
