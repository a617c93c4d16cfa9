"""Bulk writes on SQLite: a batch of rows as one ``executemany`` of plain tuples, each value converted by the
column type's own SQLAlchemy bind processor (the stored text is the same as SQLAlchemy's), with no SQLAlchemy
statement compilation nor per-row parameter processing.

Why: SQLAlchemy builds a parameter dict per row and runs each value through its processors in Python (its
``construct_params``); on a ``watch run`` pass that was a third of the writes' CPU time on SQLite (no round
trip to hide it, as on PostgreSQL, where :mod:`certdoctor.watch.pgbulk` sends arrays instead).

Ids of inserted rows (:func:`insert` with ``ids=True``): SQLite gives a row of an ``INTEGER PRIMARY KEY`` table
without an explicit id the largest id in the table plus one (https://sqlite.org/autoinc.html), and the
connection holds the write lock from its first write to its commit, so the rows of one ``executemany`` get
consecutive ids ending at ``last_insert_rowid()``. SQLAlchemy's own "insertmanyvalues" relies on the same
order when it sorts RETURNING rows by parameter order on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_PROCESSORS: dict[tuple[str, str, str], Callable[[Any], Any] | None] = {}


def _processor(conn: Connection, column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    """The bind processor SQLAlchemy would apply to ``column``'s values on this dialect (None: none)."""
    key = (conn.dialect.name, column.table.name, column.name)
    if key not in _PROCESSORS:
        _PROCESSORS[key] = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return _PROCESSORS[key]


def _tuples(conn: Connection, columns: Sequence[sa.Column[Any]], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    processors = [_processor(conn, c) for c in columns]
    names = [c.name for c in columns]
    if not any(processors):
        return [tuple(r[n] for n in names) for r in rows]
    pairs = list(zip(names, processors, strict=True))
    return [tuple(r[n] if p is None else p(r[n]) for n, p in pairs) for r in rows]


def insert(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, ids: bool = False) -> list[int]:
    """Insert ``rows`` (dicts keyed by column name; every row has the keys of the first) into ``table``.

    Returns: the new rows' ids in ``rows``' order with ``ids`` (``table`` has an ``INTEGER PRIMARY KEY`` named
    ``id``, not in the rows), else []. Raises: what the database raises (the caller's transaction is then rolled
    back)."""
    if not rows:
        return []
    columns = [table.c[name] for name in rows[0]]
    sql = f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) VALUES ({', '.join('?' for _ in columns)})"
    conn.exec_driver_sql(sql, _tuples(conn, columns, rows))
    if not ids:
        return []
    last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    return list(range(last - len(rows) + 1, last + 1))


def update(conn: Connection, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``UPDATE table SET … WHERE key = …`` for each row (dicts keyed by column name, ``key`` among them; every
    row has the keys of the first)."""
    if not rows:
        return
    columns = [table.c[name] for name in rows[0] if name != key]
    sql = f"UPDATE {table.name} SET {', '.join(f'{c.name} = ?' for c in columns)} WHERE {key} = ?"
    conn.exec_driver_sql(sql, _tuples(conn, [*columns, table.c[key]], rows))
