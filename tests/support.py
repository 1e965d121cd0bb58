"""Helpers shared by the test suite: real processes, databases, models, git repositories and HTTP peers.

Fixtures live in the `conftest.py` files and build on these; test modules import helpers from here only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from app.contract import FEATURES, MANIFEST_FILE, MODEL_FILE, ModelManifest

# Re-exported: one free-port probe, one polling loop and the outage proxy for tests and benchmarks (benchmarks never
# import tests).
from bench.proxy import TcpProxy as TcpProxy
from bench.replicas import free_port as free_port
from bench.replicas import wait_for as wait_for
from bench.service import spawned_workers

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT
COMMITS_DIR = ROOT.parent / "shared" / "data" / "commits"
POSTGRES_URL = os.environ.get("COMMITRISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-admin-token"
VENV_BIN = Path(sys.executable).parent
DAY = 86400
T0 = 1_600_000_000  # 2020-09-13T12:26:40Z: commit k of a GitScript is authored at T0 + day * DAY
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
METRIC_NAME = re.compile(r"\bcommitrisk_[a-z0-9_]+\b")


SYNTHETIC_REPOSITORIES = ("alpha", "beta", "gamma")


def write_synthetic(
    directory: Path,
    rows: int = 4500,
    seed: int = 7,
    drift: float = 0.0,
    names: tuple[str, ...] = SYNTHETIC_REPOSITORIES,
) -> Path:
    """`<name>.csv` per repository from the embedded synthetic generator: same arguments, same bytes."""
    from training.synthetic.generate import generate, write_csv
    from training.synthetic.spec import load_default

    frame = generate(load_default(), rows=rows, seed=seed, repositories=len(names), drift=drift)
    for name, (_, part) in zip(names, frame.groupby("repository_id", sort=True), strict=True):
        write_csv(part.reset_index(drop=True), directory / f"{name}.csv")
    return directory


def private_copy(models: Path, tmp_path: Path) -> Path:
    """A test's own copy of a read-only models directory built once per module or session."""
    target = tmp_path / "models"
    shutil.copytree(models, target)
    return target


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the process group started with `start_new_session=True`; SIGKILL it after `timeout` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def tool(name: str, hint: str) -> str:
    """Path of a command-line tool (the venv's first); a missing one fails in CI and skips elsewhere."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found: {hint}")
        pytest.skip(f"{name} not found: {hint}")
    return found


@dataclass(frozen=True)
class Database:
    """A throw-away monitoring database: a SQLite file, or a unique schema in the test PostgreSQL."""

    url: str
    schema: str | None


@dataclass(frozen=True)
class Outage:
    """A throw-away PostgreSQL database: `url` goes through `proxy` (stop it and the database is down for whoever
    uses `url`), `direct` does not (for the test's own checks)."""

    url: str
    direct: str
    proxy: TcpProxy


@functools.cache
def synthetic_commits() -> pd.DataFrame:
    """The seeded synthetic commits the tiny test models learn from, oldest first (built once per process).

    The same rows as `write_synthetic`'s defaults, i.e. the `synthetic_commits_dir` fixture's three files.
    """
    from training.synthetic.generate import generate
    from training.synthetic.spec import load_default

    frame = generate(load_default(), rows=4500, seed=7, repositories=len(SYNTHETIC_REPOSITORIES))
    # The same repository names as `write_synthetic` gives its files (ids in sorted order → alpha, beta, gamma).
    names = dict(zip(sorted(frame["repository_id"].unique()), SYNTHETIC_REPOSITORIES, strict=True))
    return frame.assign(repository_id=frame["repository_id"].map(names))


def load_commits() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(features float32 [N, 15], buggy labels, author dates, repository names) of `synthetic_commits()`."""
    frame = synthetic_commits()
    labels = frame["buggy"].to_numpy(bool)
    names = sorted(frame["repository_id"].unique())
    return frame[list(FEATURES)].to_numpy(np.float32), labels, frame["author_date"].to_numpy(), names


def build_model_version(
    models_dir: Path, version: int, kind: str = "logreg", strength: float = 1.0, point: bool = True
) -> Path:
    """Train a tiny classifier on `synthetic_commits()`, export it to ONNX, publish `models_dir/<version>/`.

    Published like the product does it (temp dir + rename); `point` also moves the champion pointer to it.
    """
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, dates, repositories = load_commits()
    cut = int(len(x) * 0.8)
    if kind == "forest":
        clf: Any = RandomForestClassifier(n_estimators=int(100 * strength), max_depth=8, random_state=version)
    else:
        clf = LogisticRegression(C=strength, max_iter=500)
    model = make_pipeline(StandardScaler(), clf).fit(x[:cut], y[:cut])
    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        final_types=[("label", Int64TensorType([None])), ("probabilities", FloatTensorType([None, 2]))],
        options={type(clf): {"zipmap": False}},
        target_opset=17,
    )
    blob = onx.SerializeToString()
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    sample = x[cut : cut + 8]
    probs = session.run(["probabilities"], {"features": sample})[0][:, 1]
    test_p = session.run(["probabilities"], {"features": x[cut:]})[0][:, 1]
    auc = float(roc_auc_score(y[cut:], test_p))
    stamp = lambda s: datetime.fromtimestamp(int(s), UTC).isoformat()  # noqa: E731
    metrics = {"rows": int(len(x) - cut), "buggy": int(y[cut:].sum()), "roc_auc": auc}
    manifest = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "model_type": kind,
        "params": {"strength": strength},
        "features": [
            {
                "name": name,
                "min": float(x[:cut, i].min()),
                "max": float(x[:cut, i].max()),
                "mean": float(x[:cut, i].mean()),
                "median": float(np.median(x[:cut, i])),
                "quantiles": {f"p{q:02d}": float(np.quantile(x[:cut, i], q / 100)) for q in (1, 50, 99)},
            }
            for i, name in enumerate(FEATURES)
        ],
        "threshold": 0.5,
        "bands": {"medium": 0.3, "high": 0.6, "rule": "fixed cut points for tests"},
        "validation_metrics": metrics,
        "test_metrics": metrics,
        "candidates": [{"name": kind, "validation_roc_auc": auc, "params": {}, "fit_seconds": 0.1}],
        "window": {
            "split": "chronological",
            "train_start": stamp(dates[0]),
            "train_end": stamp(dates[cut - 1]),
            "test_start": stamp(dates[cut]),
            "test_end": stamp(dates[-1]),
            "train_rows": cut,
            "validation_rows": 0,
            "test_rows": int(len(x) - cut),
            "label_delay_days": 90.0,
            "immature_rows_dropped": 0,
            "duplicate_rows_dropped": 0,
            "repositories": repositories,
        },
        "data": {
            "sha256": hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest(),
            "files": [{"name": f"{name}.csv", "sha256": "0" * 64, "rows": 0} for name in repositories],
        },
        "libraries": {"onnxruntime": ort.__version__},
        "onnx_sha256": hashlib.sha256(blob).hexdigest(),
        "self_test": {"rows": sample.tolist(), "probabilities": probs.tolist(), "tolerance": 1e-4},
    }
    ModelManifest.model_validate(manifest)  # the helper must honour the contract it stands in for
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / MODEL_FILE).write_bytes(blob)
    (tmp / MANIFEST_FILE).write_text(ModelManifest.model_validate(manifest).model_dump_json(indent=2))
    tmp.rename(models_dir / str(version))
    if point:
        (models_dir / "champion").write_text(f"{version}\n")
    return models_dir / str(version)


class GitScript:
    """Builds a history step by step: write/remove/move files, then commit with a fixed author and day."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "core.quotePath", "false")

    def git(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> str:
        """Run git in the repository; return its stdout."""
        full = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
        done = subprocess.run(["git", *args], cwd=self.path, env=full, input=stdin, capture_output=True,
                              check=True)  # fmt: skip
        return done.stdout.decode("utf-8", "replace").strip()

    def write(self, name: str | bytes, content: str | bytes) -> None:
        """Create or overwrite a file (bytes names allow non-UTF-8 paths)."""
        target = os.path.join(os.fsencode(self.path), os.fsencode(name))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)

    def read(self, name: str) -> str:
        """A file's current text."""
        return (self.path / name).read_text()

    def remove(self, name: str) -> None:
        """Delete a tracked file."""
        self.git("rm", "-q", name)

    def move(self, old: str, new: str) -> None:
        """Rename a tracked file."""
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def _env(self, email: str, name: str, day: float) -> dict[str, str]:
        when = f"@{int(T0 + day * DAY)} +0000"
        env: dict[str, str] = {}
        for role in ("AUTHOR", "COMMITTER"):
            env |= {f"GIT_{role}_NAME": name, f"GIT_{role}_EMAIL": email, f"GIT_{role}_DATE": when}
        return env

    def commit(self, message: str | bytes, email: str, day: float, name: str = "") -> str:
        """Commit everything in the work tree; return the SHA."""
        self.git("add", "-A")
        raw = message.encode() if isinstance(message, str) else message
        env = self._env(email, name or email.split("@")[0], day)
        self.git("commit", "-q", "--allow-empty", "-F", "-", env=env, stdin=raw)
        return self.git("rev-parse", "HEAD")

    def rewrite_message(self, raw: bytes) -> str:
        """Replace HEAD's message by raw bytes as-is (git itself would transcode non-UTF-8 to UTF-8)."""
        full = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
        run = {"cwd": self.path, "env": full, "capture_output": True, "check": True}
        body = subprocess.run(["git", "cat-file", "commit", "HEAD"], **run).stdout  # type: ignore[call-overload]
        header = body.split(b"\n\n", 1)[0]
        made = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                              input=header + b"\n\n" + raw, **run)  # type: ignore[call-overload]  # fmt: skip
        sha = made.stdout.decode().strip()
        self.git("update-ref", "HEAD", sha)
        return sha

    def merge(self, branch: str, message: str, email: str, day: float) -> str:
        """A merge commit (never a fast-forward) of `branch` into the current branch."""
        self.git("merge", "-q", "--no-ff", "-m", message, branch, env=self._env(email, email.split("@")[0], day))
        return self.git("rev-parse", "HEAD")

    def switch(self, branch: str, create: bool = False) -> None:
        """Move the work tree to another branch of this test repository."""
        self.git("switch", "-q", *(["-c"] if create else []), branch)


class PredictServer:
    """A tiny real HTTP server standing in for the service's /predict (records bodies, answers as told)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        self.status = 200
        self.answer: dict[str, object] = prediction("low")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                server.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                payload = json.dumps(server.answer).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def prediction(band: str) -> dict[str, object]:
    """A /predict answer in the service's documented shape."""
    return {
        "request_id": "r-1", "commit_id": "x", "probability": {"low": 0.1, "medium": 0.5, "high": 0.9}[band],
        "buggy": band == "high", "risk_band": band, "threshold": 0.4, "model_version": 3,
        "factors": [{"feature": "la", "value": 120.0, "median": 10.0, "effect": 0.2,
                     "reason": "la = 120 (median 10) raises risk"}],
    }  # fmt: skip


def log_row(
    t: float,
    repository: str | None = "repo",
    band: str = "low",
    probability: float = 0.1,
    commit_id: str | None = None,
    **features: float,
) -> dict[str, object]:
    """One `predictions` row as the prediction log writes it (features 1.0 unless given), for store-level tests."""
    return {name: float(features.get(name, 1.0)) for name in FEATURES} | {
        "time": t, "request_id": None, "commit_id": commit_id, "repository": repository, "probability": probability,
        "label": probability >= 0.5, "risk_band": band, "model_version": 1,
    }  # fmt: skip


def exported_metric_names(tmp_path: Path) -> set[str]:
    """Every sample name the service's /metrics can carry (labelled families show even before use)."""
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from app.main import create_app
    from app.settings import Settings

    models = tmp_path / "models"
    build_model_version(models, 1)
    settings = Settings(models_dir=models, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def referenced_metric_names(expr: str) -> set[str]:
    """`commitrisk_*` metric names in a PromQL expression (recording-rule names use colons, not matched)."""
    return {m for m in METRIC_NAME.findall(expr) if ":" not in m}


ALICE, ALICE_CAPS, BOB = "alice@x.org", "Alice@X.org", "bob@x.org"


def app_source(lines: dict[int, str], count: int) -> str:
    """App.java: `int aN = N;` per line unless overridden."""
    return "".join(lines.get(i, f"int a{i} = {i};") + "\n" for i in range(1, count + 1))


def build_history(s: GitScript) -> dict[str, str]:
    """The scripted history of issue 6; returns the SHAs by name."""
    sha: dict[str, str] = {}
    s.write("src/main/App.java", app_source({}, 10))
    s.write("README.md", "# demo\n")
    s.write("pom.xml", "<project/>\n")
    sha["c1"] = s.commit("Initial import", ALICE, 0)

    s.write("src/main/App.java", app_source({3: "int a3 = 30;"}, 12))
    s.write("lib/Util.py", "".join(f"u{i} = {i}\n" for i in range(1, 21)))
    s.write("src/test/java/com/x/FooTest.java", "class FooTest {\n}\n")
    s.write("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    sha["c2"] = s.commit("Add util and tests", BOB, 1)

    s.write("src/main/App.java", app_source({3: "int a3 = 30;", 5: "int  a5 =  5;"}, 12))  # whitespace only
    s.write("lib/Util.py", "".join(f"u{i} = {i}\n" for i in range(1, 21) if i != 2))
    sha["c3"] = s.commit("Tidy util", ALICE_CAPS, 3)

    s.move("src/main/App.java", "src/core/App.java")  # pure rename
    s.write("docs/guide.md", "guide\n")
    sha["c4"] = s.commit("Move app to core", ALICE, 4)

    s.move("lib/Util.py", "lib/Helpers.py")  # rename with an edit
    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "u21 = 21\n")
    s.write("src/core/App.java", app_source({1: "int a1 = 100;", 3: "int a3 = 30;", 5: "int  a5 =  5;"}, 12))
    sha["c5"] = s.commit("Rename util to helpers", ALICE, 6)

    s.remove("lib/Helpers.py")
    s.write("scripts/run", "#!/bin/sh\necho hi\n")
    sha["c6"] = s.commit("Remove helpers, add run script", BOB, 7)

    text = s.read("src/core/App.java").splitlines(keepends=True)
    s.write("src/core/App.java", "".join(text[:1] + text[3:]))  # deletes line 2 (c1) and line 3 (c2)
    sha["c7"] = s.commit("Fix wrong value in App", ALICE, 8)

    s.write("lib/Helpers.py", "".join(f"h{i} = {i}\n" for i in range(1, 6)))  # re-added
    s.write("README.md", "# demo\nmore\n")
    sha["c8"] = s.commit("Re-add helpers", BOB, 9)

    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h6 = 6\n")
    sha["c9"] = s.commit("Correct the helper", ALICE, 10)

    s.switch("feature", create=True)
    s.write("src/core/App.java", s.read("src/core/App.java") + "int a13 = 13;\n")
    sha["c10"] = s.commit("Extend app on feature", BOB, 11)
    s.switch("main")
    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h7 = 7\n")
    sha["c11"] = s.commit("Extend helpers", ALICE, 12)
    sha["m12"] = s.merge("feature", "Merge branch feature", ALICE, 13)

    s.write("src/core/App.java", s.read("src/core/App.java") + "int a14 = 14;\n")
    sha["c13"] = s.commit("Extend app again", BOB, 14)

    s.switch("ff", create=True)
    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h8 = 8\n")
    sha["c14"] = s.commit("Helpers on ff", ALICE, 15)
    s.switch("main")
    sha["m15"] = s.merge("ff", "Merge branch ff", BOB, 16)  # fast-forwardable: history follows ff

    s.write("lib/Helpers.py", s.read("lib/Helpers.py") + "h9 = 9\n")
    long = "Improve the helpers so that every single helper handles all of the corner cases nicely"
    sha["c16"] = s.commit(long + "\n\nBody text.", ALICE, 17)

    s.write(b"src/caf\xe9.py", "x = 1\ny = 2\n")  # a path that is not UTF-8
    s.commit("placeholder", BOB, 18)
    sha["c17"] = s.rewrite_message(b"Caf\xe9 support\n")  # a message that is not UTF-8 either
    return sha


def two_repositories(folder: Path) -> None:
    """`folder/one` and `folder/two`: the scripted history, each with a last commit of its own (a fleet's pair)."""
    for name, day in (("one", 0), ("two", 40)):
        s = GitScript(folder / name)
        build_history(s)
        s.write("extra.py", f"day = {day}\n")
        s.commit(f"Extra {name}", "zoe@x.org", 60 + day)


def blobless_clone(source: GitScript, target: Path) -> Path:
    """A bare `git clone --filter=blob:none` of `source` (over file://, so the filter applies): commits and
    trees only, every blob left with its promisor remote, as CI checkouts often are."""
    source.git("config", "uploadpack.allowFilter", "true")
    source.git("config", "uploadpack.allowAnySHA1InWant", "true")
    source.git("clone", "-q", "--bare", "--filter=blob:none", f"file://{source.path}", str(target))
    return target


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword (upper case), its `--flags`, its arguments (a list in exec form)."""

    keyword: str
    flags: dict[str, str]
    args: str | list[str]


@dataclass(frozen=True)
class Stage:
    """One build stage: its name (`AS name`, else its index), its base (image or stage) and its instructions."""

    name: str
    base: str
    instructions: list[Instruction]


# What `${PATH}` is in the python:*-slim base images (the only base variable an ENV of ours extends).
BASE_IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}


class Dockerfile:
    """A Dockerfile read as the builder reads it: stages, inherited ENV/USER/CMD, and the stages one depends on."""

    def __init__(self, text: str) -> None:
        self.stages: dict[str, Stage] = {}
        args: dict[str, str] = {}  # global ARG defaults, usable in FROM
        current: list[Instruction] | None = None
        for line in _logical_lines(text):
            keyword, _, rest = line.partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            flags: dict[str, str] = {}
            while rest.startswith("--"):
                flag, _, rest = rest.partition(" ")
                name, _, value = flag[2:].partition("=")
                flags[name], rest = value, rest.strip()
            if keyword == "FROM":
                words = expand(rest, args).split()
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(self.stages))
                current = []
                self.stages[name] = Stage(name, words[0], current)
            elif current is None:
                if keyword == "ARG":
                    key, _, default = rest.partition("=")
                    args[key] = default
            else:
                if keyword == "HEALTHCHECK" and rest.upper().startswith("CMD "):
                    rest = rest[4:].strip()
                current.append(Instruction(keyword, flags, _exec_form(rest)))

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        return cls(path.read_text(encoding="utf-8"))

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, base first."""
        stages = [self.stages[name]]
        while stages[0].base in self.stages:
            stages.insert(0, self.stages[stages[0].base])
        return stages

    def instructions(self, name: str, keyword: str) -> list[Instruction]:
        """Every `keyword` instruction along the stage's chain, in build order."""
        return [i for stage in self.chain(name) for i in stage.instructions if i.keyword == keyword]

    def last(self, name: str, keyword: str) -> Instruction | None:
        """The instruction in force for the stage (CMD, HEALTHCHECK, USER, WORKDIR are inherited)."""
        found = self.instructions(name, keyword)
        return found[-1] if found else None

    def env(self, name: str) -> dict[str, str]:
        """The environment the stage's containers start with (ENV along the chain, `${VAR}` expanded)."""
        env = dict(BASE_IMAGE_ENV)
        for instruction in self.instructions(name, "ENV"):
            words = shlex.split(str(instruction.args))
            pairs = [w.partition("=") for w in words] if "=" in words[0] else [(words[0], "=", " ".join(words[1:]))]
            for key, _, value in pairs:
                env[key] = expand(value, env)
        return env

    def user(self, name: str) -> str:
        """The user the stage's containers run as (`root` when no USER is in force)."""
        found = self.last(name, "USER")
        return str(found.args) if found else "root"

    def reaches(self, name: str) -> set[str]:
        """The stages whose content can end up in this one (FROM and COPY --from, transitively), itself included."""
        found: set[str] = set()
        todo = [name]
        while todo:
            stage = self.stages[todo.pop()]
            if stage.name not in found:
                found.add(stage.name)
                todo += [
                    s for s in (stage.base, *(i.flags.get("from", "") for i in stage.instructions)) if s in self.stages
                ]
        return found


def _logical_lines(text: str) -> list[str]:
    """Instructions one per line: comments dropped (also inside continuations), `\\` continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines + ([pending.strip()] if pending.strip() else [])


def _exec_form(rest: str) -> str | list[str]:
    """A JSON array (exec form) as a list; anything else (shell form) as the text."""
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except json.JSONDecodeError:
            return rest
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return rest


def expand(text: str, env: dict[str, str]) -> str:
    """`$VAR` and `${VAR}` replaced from `env` (unknown ones by nothing, as a shell does)."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), ""), text)


def simple_commands(command: str | list[str]) -> list[list[str]]:
    """The simple commands a RUN/CMD runs: exec form as is; shell form (or `sh -c`) split at `;`, `&&`, `||`, `|`.

    A leading `exec` is dropped; words keep `$VAR` references unexpanded (expand them with `expand`).
    """
    if isinstance(command, list):
        if command[:2] not in (["sh", "-c"], ["/bin/sh", "-c"]):
            return [command]
        command = command[2]
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in (";", "&&", "||", "|", "&"):
            commands.append([])
        elif word != "exec" or commands[-1]:
            commands[-1].append(word)
    return [c for c in commands if c]


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length from a raw socket: status, lower-case headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of a response"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def connect(url: str) -> socket.socket:
    """A raw TCP connection to a service URL; reads time out after 15 s, so a held connection fails, never hangs."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def no_dac_override() -> list[str]:
    """A command prefix that runs a program without root's permission override (file modes then apply to it, as
    to a service user); empty when the tests do not run as root."""
    if os.geteuid() != 0:
        return []
    return [tool("setpriv", "util-linux"), "--bounding-set", "-dac_override,-dac_read_search"]


class Service:
    """A real `python -m app` (uvicorn) in its own process group: its URL, its log, its worker processes."""

    def __init__(
        self, models: Path, workdir: Path, workers: int = 1, prefix: list[str] | None = None, **env: str
    ) -> None:
        for _ in range(3):  # a free port can be taken by another test's server before ours binds it: try another
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            self.log_path = workdir / f"server-{port}.log"
            environment = {k: v for k, v in os.environ.items() if not k.startswith(("COMMITRISK_", "PROMETHEUS_"))}
            environment |= {
                "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
                "COMMITRISK_DATABASE_URL": f"sqlite:///{workdir / f'predictions-{port}.db'}",
                "COMMITRISK_MONITORING_JOB": "false",
                # A page process niced below the other test processes of a busy CI machine could starve past the
                # tests' timeouts; the niceness itself is tested where it is set (tests/app/ui/test_process.py).
                "COMMITRISK_UI_PROCESS_NICE": "0",
                **env,
            }
            if workers > 1:
                environment["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / f"prometheus-{port}")
            cmd = [*(prefix or []), sys.executable, "-m", "app", "--models", str(models), "--port", str(port)]
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    [*cmd, "--workers", str(workers)], cwd=REPO, env=environment, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            if self._answers(workers):
                return
            self.stop()
            if "cannot listen" not in self.log_path.read_text():
                break
        raise AssertionError(f"server did not start:\n{self.log_path.read_text()}")

    def _answers(self, workers: int, seconds: float = 90) -> bool:
        """True once the server answers with all its workers up; False as soon as it exits, or after `seconds`."""
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/health/live").is_success and (workers == 1 or len(self.workers()) == workers):
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        return False

    def workers(self) -> set[int]:
        """The pids of uvicorn's worker processes (children of the supervisor running the app)."""
        return spawned_workers(self.process.pid)

    def tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's log (for a failing test's message)."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def status_500s(self) -> float:
        """How many 500 answers /metrics counts (the fault suite's target: none)."""
        import httpx

        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        lines = [line for line in text.splitlines() if line.startswith("commitrisk_http_requests_total{")]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if 'status="500"' in line)

    def stop(self) -> None:
        stop_group(self.process, timeout=15)


def logged_predictions(database_url: str) -> int:
    """Rows in the `predictions` table of the database at `database_url`."""
    from sqlalchemy import create_engine, func, select

    from app.monitoring.tables import predictions

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(predictions)).scalar() or 0)
    finally:
        engine.dispose()


def log_accounting(url: str) -> tuple[float, float, float]:
    """(answered, written, dropped) predictions of the server at `url`, over every worker: the scored commits
    and the log's two counters. The fault suite's invariant: written + dropped = answered."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    found = {"commitrisk_predictions_total": 0.0, "commitrisk_prediction_log_written_total": 0.0,
             "commitrisk_prediction_log_dropped_total": 0.0}  # fmt: skip
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return (
        found["commitrisk_predictions_total"],
        found["commitrisk_prediction_log_written_total"],
        found["commitrisk_prediction_log_dropped_total"],
    )
