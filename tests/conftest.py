"""Fixtures shared across the suite: synthetic and shared datasets, trained models, the two databases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    ADMIN_TOKEN,
    COMMITS_DIR,
    POSTGRES_URL,
    REPO,
    Database,
    GitScript,
    PredictServer,
    TcpProxy,
    free_port,
    stop_group,
    write_synthetic,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reads `../shared` carries the `shared` marker, so `-m "not shared"` deselects them."""
    for item in items:
        if "shared_commits_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)


@pytest.fixture(scope="session")
def shared_commits_dir() -> Path:
    """`../shared/data/commits` next to the repository (tests and benchmarks only, never the product).

    Missing → the test fails (never skips: a skip would hide a broken CI setup); deselect such tests
    explicitly with `-m "not shared"` on a machine without the shared data.
    """
    if not COMMITS_DIR.is_dir():
        pytest.fail(f"shared datasets not found at {COMMITS_DIR}; deselect these tests with -m 'not shared'")
    return COMMITS_DIR


@pytest.fixture(scope="session")
def synthetic_commits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded synthetic datasets in the shared CSV format, one file per repository (see `write_synthetic`)."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "commits")


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, synthetic_commits_dir: Path) -> Path:
    """A models dir trained by the real pipeline on `synthetic_commits_dir`: 1 (champion, logistic), 2 (boosting).

    Session-scoped and read-only for tests: copy it (`shutil.copytree`) before changing pointers.
    """
    from training import pipeline
    from training.config import TrainConfig

    models = tmp_path_factory.mktemp("trained") / "models"
    for family, promote in (("logistic_regression", True), ("gradient_boosting", False)):
        config = TrainConfig(
            data=[synthetic_commits_dir], models_dir=models, budget=2, families=(family,), promote=promote, n_jobs=1
        )
        pipeline.run(config, lambda _message: None)
    return models


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Each store test runs on both databases; the PostgreSQL schema is dropped afterwards."""
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'monitor.db'}", None)
        return
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # CI always has PostgreSQL; a laptop may not
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    try:
        yield Database(POSTGRES_URL, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def proxied_postgres() -> Iterator[tuple[Database, TcpProxy]]:
    """A throw-away schema in the test PostgreSQL reached through a TCP proxy that the test stops and starts
    (an outage: connections reset, new ones refused)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # CI always has PostgreSQL; a laptop may not
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    target = make_url(POSTGRES_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    try:
        yield Database(target.set(port=proxy.port).render_as_string(hide_password=False), schema), proxy
    finally:
        proxy.stop()
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def script(tmp_path: Path) -> GitScript:
    """An empty repository on branch main."""
    return GitScript(tmp_path / "repo")


@pytest.fixture
def predict_server() -> Iterator[PredictServer]:
    """A real HTTP server on 127.0.0.1 answering POST /predict."""
    server = PredictServer()
    yield server
    server.close()


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
