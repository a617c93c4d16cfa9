"""certdoctor.watch.pgbulk on a real PostgreSQL: every column type the watch tables use, NULLs, JSON that needs
escaping, floats mixed with ints, ON CONFLICT, ids from the sequence, UPDATE … FROM unnest."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from certdoctor.watch import pgbulk


def _table() -> sa.Table:
    metadata = sa.MetaData()
    return sa.Table(
        "bulk_probe",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(16), unique=True),
        sa.Column("n", sa.Integer),
        sa.Column("f", sa.Float),
        sa.Column("ok", sa.Boolean),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("doc", sa.JSON),
        sa.Column("text", sa.Text),
    )


def test_insert_upsert_update_and_ids(postgres_url: str) -> None:
    table = _table()
    engine = sa.create_engine(postgres_url)
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    nasty = {"quote": "\"'{}\\", "nul-free": "é\n\t,", "list": [1, "x", None]}
    try:
        table.metadata.create_all(engine)
        with engine.begin() as conn:
            ids = pgbulk.next_ids(conn, table, 3)
            assert ids == sorted(ids) and len(set(ids)) == 3
            rows = [
                {"id": ids[0], "key": "a", "n": 1, "f": 1, "ok": True, "at": at, "doc": nasty, "text": 'x,"y"'},
                {"id": ids[1], "key": "b", "n": None, "f": 2.5, "ok": None, "at": None, "doc": None, "text": None},
                {"id": ids[2], "key": "c", "n": 3, "f": None, "ok": False, "at": at, "doc": [1, 2], "text": ""},
            ]
            pgbulk.insert(conn, table, rows)
            # a conflict on key: "a" is updated, "d" is new
            pgbulk.insert(
                conn,
                table,
                [{"key": "a", "n": 10, "doc": {"v": 2}}, {"key": "d", "n": 4, "doc": None}],
                conflict=("key",),
                update=("n", "doc"),
            )
            pgbulk.insert(conn, table, [{"key": "d", "n": 99}], conflict=("key",))  # DO NOTHING
            pgbulk.update(conn, table, "key", [{"key": "b", "text": "updated", "f": 7}, {"key": "zz", "text": "-"}])
            got = {r.key: r for r in conn.execute(sa.select(table))}
        assert got["a"].n == 10 and got["a"].doc == {"v": 2} and got["a"].f == 1.0 and got["a"].at == at
        assert got["a"].text == 'x,"y"'
        assert got["b"].n is None and got["b"].ok is None and got["b"].text == "updated" and got["b"].f == 7.0
        assert got["c"].doc == [1, 2] and got["c"].ok is False and got["c"].text == ""
        assert got["d"].n == 4 and got["d"].id not in ids
        assert set(got) == {"a", "b", "c", "d"}
        with engine.begin() as conn:  # the JSON survived as written
            pgbulk.update(conn, table, "key", [{"key": "c", "doc": nasty}])
            assert conn.execute(sa.select(table.c.doc).where(table.c.key == "c")).scalar_one() == nasty
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()
