"""Fault-injection fixtures: a fresh PostgreSQL database per test, reached through a TCP proxy the test stops and
starts (an outage), and a published model for the real servers (`tests.support.Service`) to serve."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import POSTGRES_URL, Outage, TcpProxy, build_model_version


@pytest.fixture(scope="module")
def fault_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 as champion; read-only for the servers of a module."""
    models = tmp_path_factory.mktemp("fault-models") / "models"
    build_model_version(models, 1)
    return models


@pytest.fixture
def outage() -> Iterator[Outage]:
    """A fresh database (not a schema: the service has no schema setting) behind a started proxy."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"fault_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # CI always has PostgreSQL; a laptop may not
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    target = make_url(POSTGRES_URL).set(database=name)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    try:
        yield Outage(
            target.set(port=proxy.port).render_as_string(hide_password=False),
            target.render_as_string(hide_password=False),
            proxy,
        )
    finally:
        proxy.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
