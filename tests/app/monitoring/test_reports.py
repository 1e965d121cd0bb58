"""Stored job results on SQLite and PostgreSQL: the newest drift report (only it keeps its HTML), summaries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from app.monitoring import database as db
from app.monitoring import reports
from app.monitoring.tables import drift_reports
from tests.support import Database


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    connected = db.connect(database.url, database.schema)
    db.migrate(connected)
    yield connected
    connected.dispose()


def test_only_the_newest_drift_report_keeps_its_html(engine: Engine) -> None:
    assert reports.latest_drift_report(engine) is None
    reports.save_drift_report(engine, "ok", {"a": 1}, html="<html>old</html>")
    reports.save_drift_report(engine, "not_enough_data", {"message": "not enough data (3 < 100)"})
    latest = reports.latest_drift_report(engine, with_html=True)
    assert latest is not None and latest.status == "not_enough_data" and latest.html is None
    assert latest.report == {"message": "not enough data (3 < 100)"}
    reports.save_drift_report(engine, "ok", {"a": 2}, html="<html>new</html>")
    with engine.connect() as conn:
        htmls = conn.execute(select(drift_reports.c.html).order_by(drift_reports.c.id)).scalars().all()
    assert htmls == [None, None, "<html>new</html>"]
    newest = reports.latest_drift_report(engine, with_html=True)
    assert newest is not None and newest.report == {"a": 2} and newest.html == "<html>new</html>"
    without = reports.latest_drift_report(engine)  # the MB-sized HTML is not read unless asked for
    assert without is not None and without.html is None and without.computed_at == newest.computed_at


def test_the_newest_summary_of_each_kind_wins(engine: Engine) -> None:
    assert reports.latest_summary(engine, "performance") is None
    reports.save_summary(engine, "performance", {"n": 1})
    reports.save_summary(engine, "data_quality", {"n": 2})
    reports.save_summary(engine, "performance", {"n": 3})
    performance = reports.latest_summary(engine, "performance")
    quality = reports.latest_summary(engine, "data_quality")
    assert performance is not None and performance[1] == {"n": 3}
    assert quality is not None and quality[1] == {"n": 2} and quality[0] <= performance[0]
