"""Fixtures of the monitoring tests: an opened (migrated) store on each database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.monitoring.store import Store
from tests.support import Database


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    """A Store on the test database (SQLite file or PostgreSQL schema), migrated; closed after the test."""
    opened = Store.open(database.url, schema=database.schema)
    yield opened
    opened.close()
