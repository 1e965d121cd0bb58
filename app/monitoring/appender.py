"""Bulk INSERT of tuples into one table, straight to the database driver (the prediction log's hot write)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine

from app.monitoring.pacer import unpaced

# Rows per SQLite INSERT statement. Binding a statement's parameters holds the GIL (~0.3 ms for 256 rows × 23,
# 2.6 ms for 1,024), and the writer's pacer (app/monitoring/pacer.py) can only pause between statements.
APPEND_CHUNK = 256


class Appender:
    """Fast bulk INSERT of tuples into one table, straight to the driver."""

    def __init__(self, engine: Engine, schema: str | None, table: str, columns: Sequence[str]) -> None:
        self.name = name = f'"{schema}".{table}' if schema else table
        self.mark = mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"  # the driver's placeholder
        self.head = f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
        self.row = f"({', '.join([mark] * len(columns))})"
        self.sql: dict[int, str] = {}

    def append(self, conn: Connection, values: Sequence[tuple[Any, ...]], pace: Callable[[], None] = unpaced) -> None:
        """Insert `values` on `conn` (inside the caller's transaction), calling `pace` between statements."""
        if not values:
            return
        if conn.dialect.name != "sqlite":  # psycopg pipelines executemany: ~65k rows/s, faster than VALUES lists
            conn.exec_driver_sql(self._multi_row_sql(1), list(values))
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
