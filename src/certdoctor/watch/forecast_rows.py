"""The ``forecasts`` table's rows: a target's break forecast as stored, read and written by the store in the same
transaction as the observation it was made with (see :mod:`certdoctor.watch.forecasting` for the rest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import pgbulk
from . import tables as t
from .clock import utc
from .events import FirstBreak

CHUNK = 500  # target ids per IN (...) list


@dataclass(frozen=True)
class ForecastRow:
    """A target's forecast as stored in ``forecasts`` (and carried by an observation across processes).

    ``chain_key``: :func:`chain_key` of the diagnosis it was computed for; ``computed_at``: the observation's
    time (UTC); ``until``: the end of the horizon; ``first_break``: the earliest break (None: no client that
    accepts today breaks before ``until``); ``breaks``: per client family that breaks, in date order, its
    :meth:`certdoctor.forecast.Break.to_dict` with ``client`` (id) and ``name`` added."""

    chain_key: str
    computed_at: datetime
    until: datetime
    first_break: datetime | None
    breaks: tuple[dict[str, Any], ...]

    def first(self) -> tuple[dict[str, Any], ...]:
        """The breaks at ``first_break`` (several clients may break at one instant)."""
        return tuple(b for b in self.breaks if b["at"] == self.breaks[0]["at"]) if self.breaks else ()


def first_break_of(row: ForecastRow | None) -> FirstBreak | None:
    """What events compare of a forecast made with an observation (None: none was made)."""
    if row is None:
        return None
    first = row.first()
    if not first:
        return FirstBreak(None)
    cert = first[0].get("certificate") or {}
    return FirstBreak(
        row.first_break,
        tuple(b["client"] for b in first),
        first[0]["reason_id"],
        first[0]["reason"],
        cert.get("subject"),
    )


def stored_first_breaks(conn: Connection, target_ids: Sequence[int]) -> dict[int, datetime | None]:
    """Target id → the first break of its stored forecast (targets without one are absent)."""

    f = t.forecasts
    out: dict[int, datetime | None] = {}
    for chunk in _chunks(target_ids):
        for r in conn.execute(sa.select(f.c.target_id, f.c.first_break).where(f.c.target_id.in_(chunk))):
            out[r.target_id] = utc(r.first_break)
    return out


def upsert(conn: Connection, rows: Mapping[int, ForecastRow]) -> None:
    """Store each target's forecast, replacing the one it had: INSERT … ON CONFLICT (target_id) DO UPDATE on
    SQLite (≥ 3.24) and PostgreSQL, one statement for the batch; delete then insert elsewhere."""
    if not rows:
        return
    f = t.forecasts
    values = [
        {
            "target_id": tid,
            "computed_at": r.computed_at,
            "chain_key": r.chain_key,
            "until": r.until,
            "first_break": r.first_break,
            "breaks": list(r.breaks),
        }
        for tid, r in rows.items()
    ]
    dialect = conn.dialect.name
    columns = ("computed_at", "chain_key", "until", "first_break", "breaks")
    if dialect == "postgresql":  # one statement of arrays whatever the batch (see pgbulk)
        pgbulk.insert(conn, f, values, conflict=("target_id",), update=columns)
        return
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        stmt = insert(f)
        upsert_stmt = stmt.on_conflict_do_update(
            index_elements=["target_id"], set_={c: stmt.excluded[c] for c in columns}
        ).returning(f.c.target_id)  # RETURNING: many rows per statement (SQLAlchemy's insertmanyvalues)
        conn.execute(upsert_stmt, values).close()
        return
    conn.execute(sa.delete(f).where(f.c.target_id.in_(list(rows))))
    conn.execute(sa.insert(f), values)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]
