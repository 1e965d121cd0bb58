"""Fixtures for the service tests: tiny real models published per app.contract, apps, real servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.contract import FEATURES
from tests.support import ADMIN_TOKEN, build_model_version, write_synthetic


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 and 2 (different regularisation, so different probabilities), no pointer; built once."""
    store = tmp_path_factory.mktemp("model-store")
    build_model_version(store, 1, strength=1.0, point=False)
    build_model_version(store, 2, strength=0.001, point=False)
    return store


@pytest.fixture(scope="session")
def reference_models(tmp_path_factory: pytest.TempPathFactory, synthetic_commits_dir: Path) -> Path:
    """Version 1 (champion) whose drift baseline is every other synthetic `alpha` commit; read-only."""
    import pandas as pd

    from app.contract import REFERENCE_FILE

    models = tmp_path_factory.mktemp("reference-models")
    frame = pd.read_csv(synthetic_commits_dir / "alpha.csv", usecols=list(FEATURES))
    frame.iloc[::2].to_parquet(build_model_version(models, 1) / REFERENCE_FILE)
    return models


@pytest.fixture(scope="session")
def drifted_commits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic commits drifting over time (drift=1): their newest rows drift from `reference_models`."""
    return write_synthetic(tmp_path_factory.mktemp("drifted") / "commits", seed=8, drift=1.0)


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
