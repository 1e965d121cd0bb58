"""Fixtures for the service tests: tiny real models (scikit-learn → skl2onnx) published per app.contract.

The one place test models are made; swap `build_model_version` for the real trainer when it lands.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from app.contract import FEATURES, MANIFEST_FILE, MODEL_FILE, ModelManifest
from tests.processes import stop_group

REPO = Path(__file__).resolve().parents[2]
COMMITS_DIR = REPO.parent / "shared" / "data" / "commits"
ADMIN_TOKEN = "test-admin-token"


def load_commits(data_dir: Path = COMMITS_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Path]]:
    """(features float32 [N, 15], buggy labels, author dates, files) from the shared CSV dumps."""
    import pandas as pd

    files = sorted(data_dir.glob("*.csv"))
    frame = pd.concat([pd.read_csv(f, usecols=[*FEATURES, "buggy", "author_date"]) for f in files])
    frame = frame.sort_values("author_date")
    labels = frame["buggy"].astype(str).str.lower().eq("true").to_numpy()
    return frame[list(FEATURES)].to_numpy(np.float32), labels, frame["author_date"].to_numpy(), files


def build_model_version(
    models_dir: Path, version: int, kind: str = "logreg", strength: float = 1.0, point: bool = True
) -> Path:
    """Train a tiny classifier, export it to ONNX and publish `models_dir/<version>/` (temp dir + rename)."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, dates, files = load_commits()
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
            "repositories": [f.stem for f in files],
        },
        "data": {
            "sha256": hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest(),
            "files": [{"name": f.name, "sha256": "0" * 64, "rows": 0} for f in files],
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


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 and 2 (different regularisation, so different probabilities), no pointer; built once."""
    if not COMMITS_DIR.is_dir():
        pytest.skip(f"shared datasets not found at {COMMITS_DIR}")
    store = tmp_path_factory.mktemp("model-store")
    build_model_version(store, 1, strength=1.0, point=False)
    build_model_version(store, 2, strength=0.001, point=False)
    return store


@pytest.fixture
def models_dir(model_store: Path, tmp_path: Path) -> Path:
    """A private copy of the store with the champion pointer on version 1."""
    target = tmp_path / "models"
    shutil.copytree(model_store, target)
    (target / "champion").write_text("1\n")
    return target


@pytest.fixture
def settings(models_dir: Path) -> Any:
    from app.settings import Settings

    database = f"sqlite:///{models_dir.parent / 'predictions.db'}"
    return Settings(models_dir=models_dir, admin_token=ADMIN_TOKEN, pointer_poll_seconds=0.1, database_url=database)


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    """A TestClient around `create_app(settings)` with its lifespan running."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def commit() -> dict[str, Any]:
    """A valid /predict body: a big change by a first-time author to files touched yesterday."""
    values = [2, 3, 4, 1.5, 1250, 40, 6, 3, 800, 4, 0.8, 12, 0, 0, 0]
    return {**dict(zip(FEATURES, values, strict=True)), "commit_id": "abc123", "repository": "demo"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start `commitrisk serve` (a real uvicorn) in its own process group; returns its base URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(models: Path, workers: int = 1, **env: str) -> str:
        port = free_port()
        database = f"sqlite:///{models.parent / f'predictions-{port}.db'}"
        environment = {
            **os.environ,
            "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN,
            "COMMITRISK_DATABASE_URL": database,
            **env,
        }
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = open(models.parent / f"server-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
        cmd = [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)]
        cmd += ["--workers", str(workers)]
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(models.parent / f'server-{port}.log').read_text()}")
            try:
                if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start within 60 s")

    yield start
    for proc in started:
        stop_group(proc, timeout=15)
