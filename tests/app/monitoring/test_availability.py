"""Availability: a database that is down is known at once (no exception escapes), every use answers
DatabaseUnavailable without touching it, and the background check migrates and reconnects by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from app.errors import DatabaseUnavailable
from app.monitoring.availability import Availability
from app.monitoring.store import Store
from app.monitoring.tables import SCHEMA_VERSION
from tests.support import Database, TcpProxy, wait_for


def test_a_sqlite_file_in_a_missing_directory_is_down_then_up_once_it_exists(tmp_path: Path) -> None:
    store = Store.unopened(f"sqlite:///{tmp_path / 'later' / 'm.db'}")
    states: list[bool] = []
    availability = Availability(store, check_seconds=3600, on_change=states.append)
    assert availability.check() is False  # no exception: the service starts anyway
    assert availability.state() == "down" and "unable to open database file" in availability.reason
    touched: list[int] = []
    with pytest.raises(DatabaseUnavailable, match="predictions are still answered"):
        availability.use(lambda s: touched.append(1))
    assert touched == []  # answered at once, without trying the database
    (tmp_path / "later").mkdir()
    assert availability.check() is True and availability.state() == "up" and availability.reason == ""
    assert "predictions" in inspect(store.engine).get_table_names()  # migrated on the first success
    assert availability.use(lambda s: s.count_predictions()) == 0
    assert states == [False, True]
    store.close()


def test_the_background_check_reconnects_by_itself(proxied_postgres: tuple[Database, TcpProxy]) -> None:
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    states: list[bool] = []
    availability = Availability(store, check_seconds=0.05, on_change=states.append)
    assert availability.check()
    availability.start()
    try:
        proxy.stop()
        # A use that meets the outage answers DatabaseUnavailable (503), not the driver's error (500) …
        with pytest.raises(DatabaseUnavailable):
            availability.use(lambda s: s.count_predictions())
        assert not availability.up
        # … and so does every use while it lasts, until the background check finds the database back.
        with pytest.raises(DatabaseUnavailable):
            availability.use(lambda s: s.count_predictions())
        proxy.start()
        wait_for(lambda: availability.up, "the background check to reconnect", 30)
        assert availability.use(lambda s: s.count_predictions()) == 0
        assert False in states and states[-1] is True
    finally:
        availability.stop()
        store.close()


def test_errors_that_are_not_outages_propagate_and_leave_it_up(database: Database) -> None:
    store = Store.unopened(database.url, database.schema)
    availability = Availability(store, check_seconds=3600)
    assert availability.check()

    def broken(_: Store) -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        availability.use(broken)
    assert availability.up
    store.close()


def test_a_database_that_is_down_at_start_is_migrated_when_it_comes_up(
    proxied_postgres: tuple[Database, TcpProxy],
) -> None:
    database, proxy = proxied_postgres
    proxy.stop()
    store = Store.unopened(database.url, database.schema, timeout=2)
    availability = Availability(store, check_seconds=0.05)
    assert availability.check() is False and "Connection refused" in availability.reason
    availability.start()
    try:
        proxy.start()
        wait_for(lambda: availability.up, "the first successful check", 30)
        assert availability.use(lambda s: s.version()) == SCHEMA_VERSION  # the whole schema, migrated by the check
    finally:
        availability.stop()
        store.close()
