"""Bulk writes on PostgreSQL: a batch of rows as one ``INSERT … SELECT * FROM unnest(%s::T[], …)``, one array
per column, so that a statement's SQL text is the same whatever the batch size.

Why: a multi-row ``INSERT … VALUES (…), (…)`` (SQLAlchemy's "insertmanyvalues") has one placeholder per value;
psycopg caches the conversion of a query only up to 4,096 bytes and 50 parameters
(``psycopg._queries.MAX_CACHED_STATEMENT_LENGTH``/``_PARAMS``) and re-parses a longer one at every execution —
a third of a first ``watch run`` pass's database time. Arrays keep one parameter per column
(PostgreSQL: "unnest(anyarray, anyarray [, …])" in a FROM clause expands several arrays in parallel, §9.19).

Ids are taken from the table's sequence beforehand (:func:`next_ids`), so that the rows' order never depends on
the order of RETURNING.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _cast(conn: Connection, column: sa.Column[Any]) -> str:
    return f"{column.type.compile(dialect=conn.dialect)}[]"


def _values(column: sa.Column[Any], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    name = column.name
    if isinstance(column.type, sa.JSON):  # sent as text, cast to json (SQLAlchemy's own serialiser is json.dumps)
        return [None if r.get(name) is None else json.dumps(r[name]) for r in rows]
    if isinstance(column.type, sa.Float):  # psycopg refuses a list mixing int and float
        return [None if r.get(name) is None else float(r[name]) for r in rows]
    return [r.get(name) for r in rows]


def insert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (dicts keyed by column name; every row has the keys of the first) into ``table`` in one
    statement. ``conflict`` (the columns of a unique index) with ``update`` (columns to overwrite from the new
    row): ``ON CONFLICT (…) DO UPDATE`` (PostgreSQL ≥ 9.5); ``conflict`` alone: ``DO NOTHING``.

    Raises: what the database raises (the caller's transaction is then rolled back)."""
    if not rows:
        return
    columns = [table.c[name] for name in rows[0]]
    names = ", ".join(f'"{c.name}"' for c in columns)
    arrays = ", ".join(f"%b::{_cast(conn, c)}" for c in columns)  # %b: binary, no escaping
    sql = f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays})'
    if conflict:
        target = ", ".join(f'"{c}"' for c in conflict)
        if update:
            sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    conn.exec_driver_sql(sql, tuple(_values(c, rows) for c in columns))


def next_ids(conn: Connection, table: sa.Table, count: int, column: str = "id") -> list[int]:
    """``count`` new values of the sequence behind ``table.column`` (a SERIAL/IDENTITY column), ascending."""
    if count <= 0:
        return []
    result = conn.exec_driver_sql(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", (table.name, column, count)
    )
    return sorted(int(v) for (v,) in result)


def update(conn: Connection, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``UPDATE table SET … FROM unnest(…) WHERE table.key = …``: each row (dicts keyed by column name, the
    keys of the first, ``key`` among them) sets its columns on the row whose ``key`` equals its own."""
    if not rows:
        return
    columns = [table.c[name] for name in rows[0]]
    names = ", ".join(f'"{c.name}"' for c in columns)
    arrays = ", ".join(f"%b::{_cast(conn, c)}" for c in columns)  # %b: binary, no escaping
    sets = ", ".join(f'"{c.name}" = b."{c.name}"' for c in columns if c.name != key)
    sql = (
        f'UPDATE "{table.name}" SET {sets} FROM unnest({arrays}) AS b({names}) WHERE "{table.name}"."{key}" = b."{key}"'
    )
    conn.exec_driver_sql(sql, tuple(_values(c, rows) for c in columns))
