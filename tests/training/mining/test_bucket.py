"""Fleet mining into an S3-compatible bucket: a real S3 HTTP server (moto's server mode) stands in for S3/MinIO."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.support import ROOT, GitScript, free_port, two_repositories
from training.cli import cli
from training.mining.bucket import BucketUrl
from training.mining.dataset import mine as mine_alone
from training.mining.repository import MiningError


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """An S3 endpoint on a local port: boto3 talks HTTP to it as to MinIO or AWS."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """boto3's standard variables pointed at the server (our processes and the test's client read the same)."""
    import boto3

    for name, value in {"AWS_ENDPOINT_URL_S3": s3_server, "AWS_ACCESS_KEY_ID": "fleet", "AWS_REGION": "us-east-1",
                        "AWS_SECRET_ACCESS_KEY": "secret", "AWS_CONFIG_FILE": "/nonexistent",
                        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_MAX_ATTEMPTS": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh bucket with versioning on, so every PUT of a key is counted."""
    name = f"fleet-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def puts(s3: Any, bucket: str) -> dict[str, int]:
    """Key → how many times it was written."""
    counts: dict[str, int] = {}
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def mine(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["mine", *map(str, args), "--no-progress"])
    return result.exit_code, result.stdout, result.stderr


def fleet(tmp_path: Path) -> Path:
    """Two repositories, one a path and one a URL (cloned), each with a commit of its own."""
    two_repositories(tmp_path)
    listed = tmp_path / "repos.txt"
    listed.write_text(f"one\nfile://{tmp_path}/two two\n")
    return listed


def test_the_url_names_a_bucket_and_a_prefix() -> None:
    assert BucketUrl.parse("s3://b/fleet/2026/") == BucketUrl("b", "fleet/2026")
    assert BucketUrl.parse("s3://b/fleet").key(".fleet/x.json") == "fleet/.fleet/x.json"
    root = BucketUrl.parse("s3://b")
    assert root.key("x.csv") == "x.csv" and root.url("x.csv") == "s3://b/x.csv"
    with pytest.raises(MiningError, match=r"^--out-dir: 's3:///x' names no bucket"):
        BucketUrl.parse("s3:///x")


def test_a_fleet_in_the_bucket_holds_what_a_local_folder_holds(tmp_path: Path, s3: Any, bucket: str) -> None:
    listed = fleet(tmp_path)
    code, stdout, stderr = mine("--repos", listed, "--out-dir", f"s3://{bucket}/fleet", "--jobs", "2")
    assert code == 0, stderr
    assert "2 mined, 0 skipped, 0 failed" in stdout
    code, _, stderr = mine("--repos", listed, "--out-dir", tmp_path / "data", "--jobs", "2")
    assert code == 0, stderr
    local = {str(p.relative_to(tmp_path / "data")) for p in (tmp_path / "data").rglob("*")
             if p.is_file() and ".repos" not in p.parts}  # fmt: skip
    assert {k.removeprefix("fleet/") for k in puts(s3, bucket)} == local  # same layout, no temp object
    assert set(puts(s3, bucket).values()) == {1}  # each object written once
    for name in ("one", "two"):
        assert body(s3, bucket, f"fleet/{name}.csv") == (tmp_path / "data" / f"{name}.csv").read_bytes()
        marker = json.loads(body(s3, bucket, f"fleet/.fleet/{name}.json"))
        here = json.loads((tmp_path / "data" / ".fleet" / f"{name}.json").read_text())
        assert {k: marker[k] for k in ("tips", "options", "rows")} == {k: here[k] for k in ("tips", "options", "rows")}


def test_unchanged_repositories_are_skipped_and_a_new_commit_continues_incrementally(
    tmp_path: Path, s3: Any, bucket: str
) -> None:
    listed, out_dir = fleet(tmp_path), f"s3://{bucket}/fleet"
    for index in ("0", "1"):
        code, _, stderr = mine("--repos", listed, "--out-dir", out_dir, "--index", index)
        assert code == 0, stderr
    written = puts(s3, bucket)
    code, _, stderr = mine("--repos", listed, "--out-dir", out_dir, "--index", "1")
    assert code == 0 and stderr == "two: already mined at these refs; skipped\n"
    assert puts(s3, bucket) == written  # nothing uploaded again
    s = GitScript(tmp_path / "one")
    s.write("extra.py", s.read("extra.py") + "more = 2\n")
    s.commit("More", "zoe@x.org", 120)
    code, stdout, stderr = mine("--repos", listed, "--out-dir", out_dir, "--index", "0", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["walked"] == 1  # continued from the bucket's state, in a new temp staging folder
    again = puts(s3, bucket)
    assert {k: again[k] - written[k] for k in again} == {
        "fleet/one.csv": 1, "fleet/one.csv.state": 1, "fleet/.fleet/one.json": 1,
        "fleet/two.csv": 0, "fleet/two.csv.state": 0, "fleet/.fleet/two.json": 0,
    }  # fmt: skip
    mine_alone(tmp_path / "one", tmp_path / "alone.csv", repository_id="one")
    assert body(s3, bucket, "fleet/one.csv") == (tmp_path / "alone.csv").read_bytes()


def test_the_bucket_not_a_stale_staging_folder_is_the_truth(tmp_path: Path, s3: Any, bucket: str) -> None:
    listed, out_dir, staging = fleet(tmp_path), f"s3://{bucket}/fleet", tmp_path / "staging"
    assert mine("--repos", listed, "--out-dir", out_dir, "--index", "1", "--cache-dir", staging)[0] == 0
    assert (staging / "two.git").is_dir() and (staging / ".fleet" / "two.json").is_file()  # kept for next time
    for key in ("fleet/two.csv", "fleet/two.csv.state", "fleet/.fleet/two.json"):
        s3.delete_object(Bucket=bucket, Key=key)  # someone emptied the bucket's copy
    code, stdout, stderr = mine("--repos", listed, "--out-dir", out_dir, "--index", "1", "--cache-dir", staging,
                                "--json")  # fmt: skip
    assert code == 0 and json.loads(stdout)["status"] == "mined", stderr
    assert body(s3, bucket, "fleet/two.csv") == (staging / "two.csv").read_bytes()


def test_a_missing_bucket_and_refused_credentials_exit_2_in_one_line(
    tmp_path: Path, s3: Any, s3_server: str, bucket: str
) -> None:
    listed = fleet(tmp_path)
    code, _, stderr = mine("--repos", listed, "--out-dir", "s3://no-such-bucket/fleet", "--index", "0")
    assert (code, stderr) == (2, "error: s3://no-such-bucket: no such bucket\n")
    httpx.post(f"{s3_server}/moto-api/reset-auth", content=b"0").raise_for_status()  # check every signature
    try:
        code, _, stderr = mine("--repos", listed, "--out-dir", f"s3://{bucket}/fleet", "--index", "1")
    finally:
        httpx.post(f"{s3_server}/moto-api/reset-auth", content=b"inf").raise_for_status()
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"error: s3://{bucket}/fleet/.fleet/two.json: access denied (InvalidAccessKeyId: ")


def test_an_unreachable_endpoint_exits_1_before_any_clone(
    tmp_path: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed, cache = fleet(tmp_path), tmp_path / "staging"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    code, _, stderr = mine("--repos", listed, "--out-dir", "s3://fleet/x", "--index", "1", "--cache-dir", cache)
    assert code == 1 and stderr.count("\n") == 1, stderr  # the Job retries it
    assert stderr.startswith("error: s3://fleet/x/.fleet/two.json: endpoint unreachable (Could not connect")
    assert not (cache / "two.git").exists()


@pytest.mark.slow
def test_a_killed_pod_resumes_from_the_state_it_put_in_the_bucket(tmp_path: Path, s3: Any, bucket: str) -> None:
    import signal
    import time

    from bench.make_repo import build

    build(tmp_path / "big", 3000, seed=5)
    listed = tmp_path / "repos.txt"
    listed.write_text("big\n")
    command = [sys.executable, "-m", "training", "mine", "--repos", str(listed), "--out-dir", f"s3://{bucket}/f",
               "--index", "0", "--checkpoint", "150", "--workers", "1", "--json", "--no-progress"]  # fmt: skip
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while "f/big.csv.state" not in puts(s3, bucket) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # as a node loss or an OOM kill would
    first.communicate()
    assert first.returncode == -signal.SIGKILL, "the pod finished before it could be killed"
    assert set(puts(s3, bucket)) == {"f/big.csv.state"}  # no CSV, no marker: nothing claims a finished mine
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)  # another pod: a new staging folder
    assert resumed.returncode == 0, resumed.stderr
    assert 0 < json.loads(resumed.stdout)["walked"] < 3000  # continued from the checkpoint, not from scratch
    mine_alone(tmp_path / "big", tmp_path / "alone.csv", repository_id="big")
    assert body(s3, bucket, "f/big.csv") == (tmp_path / "alone.csv").read_bytes()
