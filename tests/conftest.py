"""Fixtures shared across the suite: the shared datasets and the two monitoring databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("COMMITRISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def shared_commits_dir() -> Path:
    """`../shared/data/commits` next to the repository (tests and benchmarks only, never the product)."""
    path = ROOT.parent / "shared" / "data" / "commits"
    if not path.is_dir():
        # CI always has them beside the clone: a skip there would hide a broken setup.
        if os.environ.get("CI"):
            pytest.fail(f"shared datasets not found at {path}")
        pytest.skip(f"shared datasets not found at {path}")
    return path


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, shared_commits_dir: Path) -> Path:
    """A models dir trained by the real pipeline on the shared data: 1 (champion, logistic) and 2 (boosting).

    Session-scoped and read-only for tests: copy it (`shutil.copytree`) before changing pointers.
    """
    from training import pipeline
    from training.config import TrainConfig

    models = tmp_path_factory.mktemp("trained") / "models"
    for family, promote in (("logistic_regression", True), ("gradient_boosting", False)):
        config = TrainConfig(
            data=[shared_commits_dir], models_dir=models, budget=2, families=(family,), promote=promote, n_jobs=1
        )
        pipeline.run(config, lambda _message: None)
    return models


@dataclass(frozen=True)
class Database:
    """A throw-away monitoring database: a SQLite file, or a unique schema in the test PostgreSQL."""

    url: str
    schema: str | None


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
