"""The prediction log's time partitions on PostgreSQL (COMMITRISK_LOG_PARTITION = monthly | daily).

`predictions` and `shadow_predictions` become declaratively partitioned by RANGE of `time`: one partition per
UTC month or day, created ahead of time (`AHEAD` periods) at migration and by the monitoring job, plus a DEFAULT
partition so an insert never fails when a partition is missing (the next `create_ahead` moves its rows out).
Retention drops whole partitions whose upper bound is older than the cutoff, as pg_partman does: no DELETE of
millions of rows, no table bloat; the partition that straddles the cutoff is kept whole until it expires, so a
row lives `retention_days` and at most one period more. SQLite is never partitioned.

`feedback` stays one table: it is keyed by commit id (the upsert's ON CONFLICT), and a partitioned table can only
have unique keys that include the partition key; it holds one row per labelled commit, not one per answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine, MetaData, PrimaryKeyConstraint, Table, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateTable

from app.monitoring.tables import predictions, shadow_predictions

log = logging.getLogger("commitrisk.partitions")

Period = Literal["none", "monthly", "daily"]
PERIODS: tuple[Period, ...] = ("none", "monthly", "daily")
AHEAD = {"monthly": 2, "daily": 14}  # periods created beyond the current one: weeks of slack for a stopped job
# How far back a conversion creates partitions: an older row (a client's clock far off) waits in DEFAULT for
# retention instead of costing one partition per period since 1970.
BACK_DAYS = {"monthly": 3 * 366, "daily": 400}
LOG_TABLES = (predictions, shadow_predictions)
# Creating or dropping a partition locks its parent: waiting behind a long read would queue every insert behind it.
LOCK_TIMEOUT = "5s"
_BOUNDS = re.compile(r"FROM \('?([-0-9.e+]+)'?\) TO \('?([-0-9.e+]+)'?\)")


def period_start(period: Period, t: float) -> datetime:
    """The UTC start of the month or day holding Unix time `t`."""
    moment = datetime.fromtimestamp(t, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1) if period == "monthly" else moment


def next_start(period: Period, start: datetime) -> datetime:
    """The start of the period after the one starting at `start`."""
    if period == "daily":
        return start + timedelta(days=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods(period: Period, first: float, last: float) -> list[tuple[float, float]]:
    """[lo, hi) Unix-second bounds of every period from the one holding `first` to the one holding `last`."""
    start, spans = period_start(period, first), []
    while start.timestamp() <= last:
        end = next_start(period, start)
        spans.append((start.timestamp(), end.timestamp()))
        start = end
    return spans


def _schema(conn: Connection) -> str | None:
    return conn.get_execution_options().get("schema_translate_map", {}).get(None)


def qualified(conn: Connection, name: str) -> str:
    """`name` as SQL, in the engine's schema when it has one (raw SQL is not schema-translated)."""
    schema = _schema(conn)
    return f'"{schema}"."{name}"' if schema else f'"{name}"'


def is_partitioned(conn: Connection, name: str) -> bool:
    """Whether table `name` is a partitioned table (False on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:name))"),
        {"name": qualified(conn, name)},
    )
    return bool(found.scalar())


def bounds(conn: Connection, name: str) -> list[tuple[str, float | None, float | None]]:
    """(partition, lo, hi) of every partition of `name`, oldest first; the DEFAULT partition has no bounds."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:name)"
        ),
        {"name": qualified(conn, name)},
    ).all()
    found: list[tuple[str, float | None, float | None]] = []
    for partition, bound in rows:
        match = _BOUNDS.search(bound)
        found.append((partition, float(match.group(1)), float(match.group(2))) if match else (partition, None, None))
    return sorted(found, key=lambda row: (row[1] is not None, row[1] or 0.0))


def partitioned_table(table: Table) -> Table:
    """`table` declared PARTITION BY RANGE (time): same columns and indexes, primary key (id, time) — PostgreSQL
    requires the partition key in every unique key; ids stay unique, drawn from one sequence."""
    copy = table.to_metadata(MetaData())
    copy.c.time.primary_key = True
    copy.append_constraint(PrimaryKeyConstraint(copy.c.id, copy.c.time))
    copy.dialect_kwargs["postgresql_partition_by"] = "RANGE (time)"
    return copy


def partition_name(table: str, lo: float) -> str:
    """`predictions_p20261101`: the table and the UTC day its partition starts (periods start on whole days)."""
    return f"{table}_p{datetime.fromtimestamp(lo, UTC):%Y%m%d}"


def _gaps(spans: Iterable[tuple[float, float]], taken: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of `spans` no existing partition covers (after a switch between monthly and daily)."""
    gaps = []
    for lo, hi in spans:
        pieces = [(lo, hi)]
        for t_lo, t_hi in taken:
            pieces = [p for a, b in pieces for p in ((a, min(b, t_lo)), (max(a, t_hi), b)) if p[0] < p[1]]
        gaps.extend(pieces)
    return gaps


def create_ahead(conn: Connection, period: Period, now: float, first: float | None = None) -> list[str]:
    """Make sure every partitioned log table has a DEFAULT partition and partitions from the period holding
    `first` (default `now`; at most `BACK_DAYS` back) to `AHEAD` periods after `now`; rows the DEFAULT partition
    holds for a new partition's range move into it. Returns the partitions created."""
    period = "monthly" if period == "none" else period  # partitioned once, kept: see docs/monitoring.md
    created: list[str] = []
    for table in LOG_TABLES:
        if not is_partitioned(conn, table.name):
            continue
        parent, default = qualified(conn, table.name), f"{table.name}_default"
        existing = bounds(conn, table.name)
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        if not any(lo is None for _, lo, _ in existing):
            conn.execute(text(f"CREATE TABLE {qualified(conn, default)} PARTITION OF {parent} DEFAULT"))
        taken = [(lo, hi) for _, lo, hi in existing if lo is not None and hi is not None]
        last = period_start(period, now).timestamp()
        for _ in range(AHEAD[period]):
            last = next_start(period, datetime.fromtimestamp(last, UTC)).timestamp()
        start = now if first is None else max(min(first, now), now - BACK_DAYS[period] * 86400.0)
        for lo, hi in _gaps(periods(period, start, last), taken):
            created.append(_create(conn, table.name, default, lo, hi))
    return created


def _create(conn: Connection, table: str, default: str, lo: float, hi: float) -> str:
    name, parent, spare = partition_name(table, lo), qualified(conn, table), qualified(conn, default)
    in_range, values = f"time >= {lo!r} AND time < {hi!r}", f"FOR VALUES FROM ({lo!r}) TO ({hi!r})"
    if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {spare} WHERE {in_range})")).scalar():
        # PostgreSQL refuses a partition whose rows sit in DEFAULT: build it beside, move them, then attach.
        conn.execute(text(f"CREATE TABLE {qualified(conn, name)} (LIKE {parent} INCLUDING DEFAULTS)"))
        conn.execute(text(f"INSERT INTO {qualified(conn, name)} SELECT * FROM {spare} WHERE {in_range}"))
        conn.execute(text(f"DELETE FROM {spare} WHERE {in_range}"))
        conn.execute(text(f"ALTER TABLE {parent} ATTACH PARTITION {qualified(conn, name)} {values}"))
    else:
        conn.execute(text(f"CREATE TABLE {qualified(conn, name)} PARTITION OF {parent} {values}"))
    return name


def convert(conn: Connection, table: Table, period: Period, now: float) -> None:
    """Turn today's plain `table` into its partitioned form, keeping every row and id (one transaction; the
    copy took 186 s for 10 M rows on the benchmark machine: docs/capacity.md)."""
    name, old = table.name, f"{table.name}_unpartitioned"
    conn.execute(text(f"ALTER TABLE {qualified(conn, name)} RENAME TO {old}"))
    sequence = conn.execute(
        text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": qualified(conn, old)}
    ).scalar()
    if sequence is not None:  # the new table's BIGSERIAL takes the name `<table>_id_seq`
        conn.execute(text(f"ALTER SEQUENCE {sequence} RENAME TO {old}_id_seq"))
    indexes = conn.execute(  # the catalog, not SQLAlchemy's reflection, which skips expression indexes
        text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = to_regclass(:table) AND NOT i.indisprimary"
        ),
        {"table": qualified(conn, old)},
    ).scalars()
    for index in list(indexes):
        conn.execute(text(f"DROP INDEX {qualified(conn, index)}"))
    conn.execute(text(f"ALTER TABLE {qualified(conn, old)} DROP CONSTRAINT IF EXISTS {name}_pkey"))
    target = partitioned_table(table)
    conn.execute(CreateTable(target))
    oldest = conn.execute(text(f"SELECT min(time) FROM {qualified(conn, old)}")).scalar()
    create_ahead(conn, period, now, None if oldest is None else float(oldest))
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    conn.execute(text(f"INSERT INTO {qualified(conn, name)} ({columns}) SELECT {columns} FROM {qualified(conn, old)}"))
    for index in target.indexes:  # built once over the copied rows: several times faster than row by row
        index.create(conn)
    conn.execute(
        text(f"SELECT setval(pg_get_serial_sequence(:table, 'id'), (SELECT max(id) FROM {qualified(conn, old)}))"),
        {"table": qualified(conn, name)},
    )
    conn.execute(text(f"DROP TABLE {qualified(conn, old)}"))
    conn.execute(text(f"ANALYZE {qualified(conn, name)}"))


def ensure_layout(conn: Connection, period: Period | None, now: float) -> None:
    """Partition the log tables when `period` asks for it (converting existing ones) and create partitions ahead;
    None leaves the layout alone (processes that only read or run the job). A no-op on SQLite."""
    if period is None or conn.dialect.name != "postgresql":
        return
    for table in LOG_TABLES:
        if period != "none" and not is_partitioned(conn, table.name):
            convert(conn, table, period, now)
    create_ahead(conn, period, now)


def lock_timed_out(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL's lock_timeout (55P03): a long read held the table; the next run tries again."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"


def drop_expired(engine: Engine, cutoff: float) -> int:
    """Drop every log partition whose range ends at or before `cutoff` (one short transaction each) and delete
    the DEFAULT partitions' older rows; return the predictions removed (the planner's count for a dropped one)."""
    removed = 0
    with engine.connect() as conn:
        tables = [t.name for t in LOG_TABLES if is_partitioned(conn, t.name)]
        expired = [(t, p) for t in tables for p, lo, hi in bounds(conn, t) if hi is not None and hi <= cutoff]
    for table, partition in expired:
        try:
            with engine.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                rows = conn.execute(
                    text("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass(:name)"),
                    {"name": qualified(conn, partition)},
                ).scalar()
                conn.execute(text(f"DROP TABLE {qualified(conn, partition)}"))
        except OperationalError as exc:
            if not lock_timed_out(exc):
                raise
            log.warning("retention: partition %s not dropped this time (a long read holds its table)", partition)
            continue
        removed += int(rows or 0) if table == predictions.name else 0
    with engine.begin() as conn:
        for table in tables:
            deleted = conn.execute(text(f"DELETE FROM {qualified(conn, table + '_default')} WHERE time < {cutoff!r}"))
            removed += deleted.rowcount if table == predictions.name else 0
    return removed
