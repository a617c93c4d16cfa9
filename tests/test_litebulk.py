"""certdoctor.watch.litebulk on SQLite: rows stored exactly as SQLAlchemy stores them (every column type the watch
tables use, NULLs, JSON that needs escaping, times), the new rows' ids in the rows' order after rows were deleted,
and UPDATE by key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from certdoctor.watch import litebulk


def _tables() -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    columns = lambda: (  # noqa: E731
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(16)),
        sa.Column("n", sa.Integer),
        sa.Column("f", sa.Float),
        sa.Column("ok", sa.Boolean),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("doc", sa.JSON),
        sa.Column("text", sa.Text),
    )
    return sa.Table("bulk_probe", metadata, *columns()), sa.Table("orm_probe", metadata, *columns())


def test_rows_as_sqlalchemy_stores_them_ids_in_order_and_update(tmp_path: Path) -> None:
    bulk, plain = _tables()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    at = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
    nasty = {"quote": "\"'{}\\", "unicode": "é\n\t,", "list": [1, "x", None]}
    rows = [
        {"key": "a", "n": 1, "f": 1.5, "ok": True, "at": at, "doc": nasty, "text": 'x,"y"'},
        {"key": "b", "n": None, "f": 2, "ok": False, "at": None, "doc": [], "text": None},
        {"key": "c", "n": -3, "f": None, "ok": True, "at": at, "doc": {"k": ["v"]}, "text": ""},
    ]
    try:
        bulk.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(plain), rows)
            first = litebulk.insert(conn, bulk, rows[:1], ids=True)
            conn.execute(sa.delete(bulk))  # ids continue after the largest ever (or the largest present)
            ids = litebulk.insert(conn, bulk, rows, ids=True)
            assert litebulk.insert(conn, bulk, [], ids=True) == []
            assert litebulk.insert(conn, bulk, rows[:1]) == []
        assert len(first) == 1 and len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
        with engine.connect() as conn:
            got = {r.id: r.key for r in conn.execute(sa.select(bulk.c.id, bulk.c.key))}
            assert [got[i] for i in ids] == ["a", "b", "c"]  # each id is its row's
            names = ", ".join(c.name for c in bulk.c if c.name != "id")
            raw_bulk = conn.exec_driver_sql(f"SELECT {names} FROM bulk_probe ORDER BY id LIMIT 3").all()
            raw_plain = conn.exec_driver_sql(f"SELECT {names} FROM orm_probe ORDER BY id").all()
            assert raw_bulk == raw_plain  # the same text, numbers and NULLs as SQLAlchemy's own INSERT
            assert conn.execute(sa.select(bulk.c.doc).where(bulk.c.id == ids[0])).scalar_one() == nasty
        with engine.begin() as conn:
            litebulk.update(conn, bulk, "id", [{"id": ids[1], "n": 7, "at": at}, {"id": ids[2], "n": 8, "at": None}])
            litebulk.update(conn, bulk, "id", [])
        with engine.connect() as conn:
            after = {r.id: (r.n, r.at) for r in conn.execute(sa.select(bulk.c.id, bulk.c.n, bulk.c.at))}
        assert after[ids[1]] == (7, at.replace(tzinfo=None)) and after[ids[2]] == (8, None)
        assert after[ids[0]] == (1, at.replace(tzinfo=None))  # untouched
    finally:
        engine.dispose()
