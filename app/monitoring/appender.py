"""Bulk append of tuples into one table, straight to the database driver (the prediction log's hot write).

SQLite: multi-row INSERT statements. PostgreSQL: one binary COPY per transaction. Measured per logged row (5,120-row
rounds, the `predictions` table and its five indexes): psycopg's pipelined executemany cost ~15 µs of the writer's
CPU (every value adapted to text) and ~20 µs of the server's; binary COPY ~1.3 µs and ~12 µs. On the two cores a
worker shares with its database and load, that CPU is what the log takes from scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Connection, Engine, Float, Integer, String, Table
from sqlalchemy.exc import DBAPIError

from app.monitoring.pacer import unpaced

# Rows per SQLite INSERT statement. Binding a statement's parameters holds the GIL (~0.3 ms for 256 rows × 23,
# 2.6 ms for 1,024), and the writer's pacer (app/monitoring/pacer.py) can only pause between statements.
APPEND_CHUNK = 256
# Rows a COPY sends between two calls of the pace (~0.3 ms of encoding, the GIL held).
COPY_CHUNK = 256


class Appender:
    """Fast bulk append of tuples (in `columns` order) into `table`, straight to the driver."""

    def __init__(self, engine: Engine, schema: str | None, table: Table, columns: Sequence[str]) -> None:
        self.name = name = f'"{schema}".{table.name}' if schema else table.name
        self.mark = mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"  # the driver's placeholder
        self.head = f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
        self.row = f"({', '.join([mark] * len(columns))})"
        self.sql: dict[int, str] = {}
        self.copy_sql = f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        self.copy_types = [binary_type(table.c[c]) for c in columns]

    def append(self, conn: Connection, values: Sequence[tuple[Any, ...]], pace: Callable[[], None] = unpaced) -> None:
        """Insert `values` on `conn` (inside the caller's transaction), calling `pace` between statements."""
        if not values:
            return
        if conn.dialect.name != "sqlite":
            self._copy(conn, values, pace)
            return
        start = 0
        while start < len(values):
            # Power-of-two statement sizes: sqlite3 caches a prepared statement per distinct SQL text, and a
            # statement of n rows costs memory in proportion to n, so at most 11 sizes may ever be cached.
            rows = min(APPEND_CHUNK, 1 << ((len(values) - start).bit_length() - 1))
            chunk = values[start : start + rows]
            conn.exec_driver_sql(self._multi_row_sql(rows), tuple(chain.from_iterable(chunk)))
            start += rows
            pace()

    def _multi_row_sql(self, rows: int) -> str:
        # Straight to the driver (SQLAlchemy's per-row processing cost ~30 µs a row). On SQLite one multi-row INSERT
        # per chunk binds once and runs in C without the GIL, instead of a GIL handoff per row (~3x rows/CPU s).
        sql = self.sql.get(rows)
        if sql is None:
            sql = self.sql[rows] = self.head + ", ".join([self.row] * rows)
        return sql

    def _copy(self, conn: Connection, values: Sequence[tuple[Any, ...]], pace: Callable[[], None]) -> None:
        """One binary COPY of `values` on psycopg's connection, in the caller's transaction. A driver error is raised
        as SQLAlchemy would raise it from a statement (DBAPIError, the connection invalidated when it broke), so the
        writer tells an outage from a refused row exactly as for an INSERT."""
        fairy = conn.connection
        raw: Any = fairy.driver_connection
        try:
            with raw.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                copy.set_types(self.copy_types)
                for start in range(0, len(values), COPY_CHUNK):
                    for row in values[start : start + COPY_CHUNK]:
                        copy.write_row(row)
                    pace()
        except conn.dialect.loaded_dbapi.Error as exc:
            broken = conn.dialect.is_disconnect(exc, fairy.dbapi_connection, None)
            if broken:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                self.copy_sql, None, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=broken,
                dialect=conn.dialect,
            ) from exc  # fmt: skip


def binary_type(column: Column[Any]) -> str:
    """The PostgreSQL type whose binary form a COPY sends for `column` (the server reads it as the column's type)."""
    kind = column.type
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, String):  # VARCHAR and TEXT: the same bytes on the wire; the server checks the length
        return "text"
    raise TypeError(f"column {column.name!r}: no binary COPY type for {kind!r}")
