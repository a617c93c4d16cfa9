"""The PostgreSQL test server (tests/pgserver.py, the session fixtures ``postgres_server``/``postgres_url``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from pgserver import PostgresServer, chmod_boundary

_TCP_LISTEN = "0A"  # st column of /proc/net/tcp{,6} (include/net/tcp_states.h TCP_LISTEN = 10)


def _listening(port: int) -> list[str]:
    """Local addresses (hex as in /proc/net/tcp{,6}) of the sockets listening on TCP ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, _remote, state = row.split()[1:4]
            address, hex_port = local.split(":")
            if state == _TCP_LISTEN and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_create_insert_read_back(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        meta = sa.MetaData()
        items = sa.Table(
            "items", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text, nullable=False)
        )
        with engine.begin() as conn:
            meta.create_all(conn)
            conn.execute(sa.insert(items), [{"name": "leaf"}, {"name": "intermediate"}])
        with engine.connect() as conn:
            assert conn.execute(sa.select(items.c.name).order_by(items.c.id)).scalars().all() == [
                "leaf",
                "intermediate",
            ]
            assert conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
            assert conn.execute(sa.text("select current_database(), current_user")).one() == (
                "certdoctor_test",
                "certdoctor",
            )
        with engine.begin() as conn:
            meta.drop_all(conn)
    finally:
        engine.dispose()


def test_listens_on_127_0_0_1_only(postgres_server: PostgresServer) -> None:
    engine = sa.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("show listen_addresses")).scalar() == "127.0.0.1"
            assert conn.execute(sa.text("show port")).scalar() == str(postgres_server.port)
    finally:
        engine.dispose()
    # Exactly one listening socket on the port, bound to 127.0.0.1 (0100007F little-endian), no IPv6 one.
    assert _listening(postgres_server.port) == ["0100007F"]
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", postgres_server.port), 2):
        pass
    assert (postgres_server.socket_dir / f".s.PGSQL.{postgres_server.port}").is_socket()


def test_data_dir_in_pytest_temp_dir(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    engine = sa.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            data_directory = Path(conn.execute(sa.text("show data_directory")).scalar())
            fsync = conn.execute(sa.text("show fsync")).scalar()
    finally:
        engine.dispose()
    assert data_directory == postgres_server.data_dir
    assert data_directory.is_relative_to(tmp_path_factory.getbasetemp().resolve())
    assert fsync == "off"
    if os.geteuid() == 0:  # initdb/postgres refuse root: the server runs as an unprivileged account
        assert postgres_server.os_user in ("postgres", "nobody")
        assert data_directory.stat().st_uid != 0
        status = Path(f"/proc/{postgres_server.pid}/status").read_text().splitlines()
        uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
        assert "0" not in uids


@pytest.mark.usefixtures("postgres_server")  # skips (fails under CI=true) as the fixture does
def test_stopped_even_when_the_test_fails(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A second server, stopped by the context manager while an exception propagates: no process is left."""
    temp_root = chmod_boundary(tmp_path_factory.getbasetemp())
    server = PostgresServer(tmp_path, temp_root=temp_root)
    with pytest.raises(RuntimeError, match="a failing test"), server:
        if os.geteuid() == 0:
            # What another pytest session started as root does meanwhile to /tmp/pytest-of-root
            # (_pytest/tmpdir.py): the running server must still answer and still stop.
            temp_root.chmod(0o700)
        engine = sa.create_engine(server.url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
        engine.dispose()
        raise RuntimeError("a failing test")
    assert not Path(f"/proc/{server.pid}").exists()
    assert _listening(server.port) == []
    assert not (server.data_dir / "postmaster.pid").exists()
    assert "database system is shut down" in server.log_tail()
    assert server.stopped_by == "pg_ctl"
