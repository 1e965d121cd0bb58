"""bench/servers.py: the log database each benchmarked server gets (a SQLite file, or a PostgreSQL database of its
own, dropped after the run)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.servers import log_databases
from tests.support import POSTGRES_URL


def test_each_server_logs_to_a_postgresql_database_of_its_own_dropped_afterwards() -> None:
    with log_databases(None, 2) as sqlite:
        assert sqlite == [{}, {}]  # launch's default: a SQLite file per server
    with log_databases(POSTGRES_URL, 2) as logs:
        urls = [log["COMMITRISK_DATABASE_URL"] for log in logs]
        names = [make_url(u).database for u in urls]
        assert len(set(names)) == 2
        for url in urls:
            engine = create_engine(url)
            with engine.begin() as conn:  # usable: a server can create its tables there
                conn.execute(text("CREATE TABLE t (x int)"))
            engine.dispose()
    engine = create_engine(POSTGRES_URL)
    with engine.connect() as conn:
        left = conn.execute(text("SELECT datname FROM pg_database WHERE datname = ANY(:n)"), {"n": names}).all()
    engine.dispose()
    assert left == []


def test_a_database_url_that_is_not_postgresql_is_refused_by_name() -> None:
    refused = pytest.raises(SystemExit, match=r"--database-url: sqlite:///x\.db: not a PostgreSQL URL")
    with refused, log_databases("sqlite:///x.db", 1):
        pass
