"""Databases in the collector: PostgreSQL (SSLRequest, PostgreSQL 17's direct TLS) and MySQL/MariaDB (SSLRequest).

Real servers: PostgreSQL clusters of our own (tests/pgserver.py) with ``ssl = on`` and a good lab chain, one
without its intermediate and an expired one, plus the session's cluster with ``ssl = off``; MariaDB servers of
our own (tests/dbservers.py) with the same chains and one without TLS. Each verdict is asserted finding by finding
and confirmed with the real client (``psql`` with ``sslmode=verify-full``, ``mariadb --ssl-verify-server-cert``).
Debian 12 has no PostgreSQL 17: direct TLS is tested against a protocol-faithful TLS server that selects the ALPN
protocol "postgresql"; servers that misbehave before TLS (an ErrorResponse, bytes after 'S', a 16 MB packet
length, silence) are protocol-faithful asyncio servers of this file.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.collect.starttls import PROTOCOLS, STARTTLS_PORTS, Channel, UpgradeFailed, mysql
from certdoctor.lab import Lab
from certdoctor.pipeline import parse_target, starttls_for
from certdoctor.scan.targets import ScanTarget, parse_line
from dbservers import MariaDB, hosts_namespace_reason, in_hosts_namespace
from dbservers import unavailable_reason as mariadb_unavailable
from pgserver import DATABASE, SUPERUSER, PostgresServer, chmod_boundary
from pgserver import unavailable_reason as postgres_unavailable
from starttls_expect import ACCEPTED, assert_verdict, check_json, ids, lab_argv

CHAINS = ("good-rsa", "incomplete-no-aia", "expired")


def _skip_unless(reason: str | None) -> None:
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but these tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


# --- targets ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "given", "port", "protocol"),
    [
        ("postgres://db.example.com", None, 5432, "postgres"),
        ("postgresql://db.example.com:6543/app?sslmode=verify-full", None, 6543, "postgres"),
        ("postgresql://db.example.com/app?sslnegotiation=direct", None, 5432, "postgres-direct"),
        ("mysql://db.example.com", None, 3306, "mysql"),
        ("db.example.com:5432", None, 5432, "postgres"),
        ("db.example.com:3306", None, 3306, "mysql"),
        ("db.example.com:6432", "postgres", 6432, "postgres"),
        ("db.example.com:5432", "postgres-direct", 5432, "postgres-direct"),
        ("db.example.com:5432", "none", 5432, None),
        ("db.example.com:3307", "MySQL", 3307, "mysql"),
    ],
)
def test_which_protocol_a_database_target_speaks(spec: str, given: str | None, port: int, protocol: str) -> None:
    host, got_port = parse_target(spec)
    assert (host, got_port) == ("db.example.com", port)
    assert (starttls_for(spec, port) if given is None else starttls_for(spec, port, given)) == protocol


def test_scan_lines_and_options_name_database_protocols() -> None:
    lines = {
        "postgres://db.example.com,addr=192.0.2.1": ("postgres", 5432),
        "db.example.com:5432": ("postgres", 5432),
        "db.example.com:3306,addr=192.0.2.1": ("mysql", 3306),
        "db.example.com:4000,starttls=mysql": ("mysql", 4000),
        "db.example.com:5432,starttls=postgres-direct": ("postgres-direct", 5432),
    }
    for line, want in lines.items():
        target = parse_line(1, line)
        assert isinstance(target, ScanTarget) and (target.starttls, target.port) == want, line
    assert STARTTLS_PORTS[5432] == "postgres" and STARTTLS_PORTS[3306] == "mysql"
    from certdoctor.cli.common import starttls_choice

    assert starttls_choice("PostgreSQL") == "postgres" and starttls_choice("postgres-direct") == "postgres-direct"


# --- the negotiators, byte by byte --------------------------------------------------------------------------------


async def converse(
    protocol: str, greeting: bytes, answer: Callable[[bytes], bytes | None]
) -> tuple[list[bytes], UpgradeFailed | None, Channel]:
    """Run ``protocol``'s negotiator against a scripted server: ``greeting`` first, then for each write the
    bytes ``answer`` returns for it (None: the server closes)."""
    loop = asyncio.get_running_loop()
    sent: list[bytes] = []

    def write(data: bytes) -> None:
        sent.append(data)
        reply = answer(data)
        loop.call_soon(channel.feed_eof if reply is None else lambda: channel.feed(reply))

    channel = Channel(protocol, write)
    if greeting:
        channel.feed(greeting)
    try:
        await asyncio.wait_for(PROTOCOLS[protocol].negotiate(channel, 5.0), 5)
    except UpgradeFailed as exc:
        return sent, exc, channel
    return sent, None, channel


def error_response(*fields: tuple[str, str]) -> bytes:
    body = b"".join(k.encode() + v.encode() + b"\0" for k, v in fields) + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


@pytest.mark.parametrize(
    ("answer", "kind", "code", "said"),
    [
        (b"S", None, None, ""),
        (b"N", "refused", "N", "answered N to SSLRequest"),
        (error_response(("S", "FATAL"), ("C", "08P01"), ("M", "unsupported frontend protocol")), "refused", "08P01",
         "FATAL 08P01 unsupported frontend protocol"),
        (b"S\x16\x03\x01", "protocol", "S", "CVE-2021-23214"),
        (b"E\x7f\xff\xff\xff", "protocol", "E", "ErrorResponse of 2147483647 bytes"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "protocol", None, "an HTTP server"),
        (b"\x4a\x00\x00\x00\x0a5.7.44\x00", "protocol", None, "a MySQL/MariaDB server's greeting"),
        (b"\x15\x03\x01\x00\x02\x02\x46", "protocol", None, "--starttls postgres-direct"),
        (b"", "protocol", None, "closed the connection without answering SSLRequest"),
    ],
)  # fmt: skip
def test_postgres_answers(answer: bytes, kind: str | None, code: str | None, said: str) -> None:
    sent, failed, _ = asyncio.run(converse("postgres", b"", lambda _: answer or None))
    assert sent == [struct.pack("!II", 8, 80877103)]  # the SSLRequest, and nothing else
    if kind is None:
        assert failed is None
    else:
        assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, "starttls", code), failed
        assert said in str(failed) + (failed.reply or ""), failed


def handshake_v10(version: bytes = b"10.11.19-MariaDB", caps: int = 0xF7FE | 0x800, extended: bool = True) -> bytes:
    payload = b"\x0a" + version + b"\0" + struct.pack("<I", 7) + b"12345678\0" + struct.pack("<H", caps & 0xFFFF)
    if extended:
        payload += b"\x21" + struct.pack("<HH", 2, caps >> 16) + b"\x15" + b"\0" * 10 + b"123456789012\0"
        payload += b"mysql_native_password\0"
    return struct.pack("<I", len(payload))[:3] + b"\0" + payload


def err_packet(code: int, message: bytes, state: bytes = b"") -> bytes:
    payload = b"\xff" + struct.pack("<H", code) + (b"#" + state if state else b"") + message
    return struct.pack("<I", len(payload))[:3] + b"\0" + payload


def test_mysql_sends_its_ssl_request_after_a_greeting_with_client_ssl() -> None:
    sent, failed, ch = asyncio.run(converse("mysql", handshake_v10(), lambda _: b""))
    assert failed is None and ch.banner == "10.11.19-MariaDB" and "SSL" in ch.offered
    [request] = sent
    assert request[:4] == b"\x20\x00\x00\x01" and len(request) == 36  # 32-byte payload, sequence 1
    flags, max_packet, charset = struct.unpack_from("<IIB", request, 4)
    assert flags & mysql.CLIENT_SSL and flags & mysql.CLIENT_PROTOCOL_41 and max_packet == 1 << 24
    assert charset == 33 and request[13:] == b"\0" * 23


@pytest.mark.parametrize(
    ("greeting", "kind", "stage", "code", "said"),
    [
        (handshake_v10(caps=0xF7FE & ~0x800), "refused", "greeting", "0x0000f7fe", "CLIENT_SSL is not among"),
        (err_packet(1130, b"Host '192.0.2.7' is not allowed to connect to this MariaDB server"), "refused",
         "greeting", "1130", "error 1130: Host '192.0.2.7' is not allowed"),
        (err_packet(1040, b"Too many connections", b"08004"), "refused", "greeting", "1040", "Too many connections"),
        (b"\x10\x00\x00\x00\x095.0.0\x00" + b"x" * 10, "refused", "greeting", "9", "protocol version 9"),
        (b"\xff\xff\xff\x00\x0a", "protocol", "greeting", None, "a greeting packet of 16777215 bytes"),
        (b"\x05\x00\x00\x01\x0aabcd", "protocol", "greeting", None, "packet of sequence 0"),
        (handshake_v10(extended=False)[:12], "protocol", "greeting", None, "closed the connection"),
        (b"\x06\x00\x00\x00\x0a5.7\x00\x01", "protocol", "greeting", None, "cut short"),
        (b"HTTP/1.0 400 Bad Request\r\n\r\n", "protocol", "greeting", None, "an HTTP server"),
        (b"", "protocol", "greeting", None, "without answering"),
    ],
)  # fmt: skip
def test_mysql_failures(greeting: bytes, kind: str, stage: str, code: str | None, said: str) -> None:
    async def run() -> UpgradeFailed | None:
        channel = Channel("mysql", lambda data: None)
        if greeting:
            channel.feed(greeting)
        asyncio.get_running_loop().call_later(0.05, channel.feed_eof)  # then the server hangs up
        try:
            await asyncio.wait_for(PROTOCOLS["mysql"].negotiate(channel, 5.0), 5)
        except UpgradeFailed as exc:
            return exc
        return None

    failed = asyncio.run(run())
    assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, stage, code), failed
    assert said in str(failed), failed


# --- real servers ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_tls(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PostgresServer]]:
    """A cluster with ssl = on for each of CHAINS (PostgreSQL has one certificate per cluster, no SNI)."""
    _skip_unless(postgres_unavailable())
    temp_root = chmod_boundary(tmp_path_factory.getbasetemp())
    servers: dict[str, PostgresServer] = {}
    try:
        for name in CHAINS:
            endpoint = lab.endpoints[name]
            server = PostgresServer(
                tmp_path_factory.mktemp(f"pg-{name}"),
                temp_root=temp_root,
                settings={"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"},
                data_files={"server.crt": endpoint.chain_path, "server.key": endpoint.key_path},
            )
            servers[name] = server.__enter__()
        yield servers
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)


def psql_accepts(root: Path, host: str, port: int, workdir: Path) -> tuple[bool, str]:
    """psql with sslmode=verify-full (libpq checks the chain against ``root`` and the name against ``host``)."""
    dsn = (
        f"host={host} hostaddr=127.0.0.1 port={port} dbname=postgres user={SUPERUSER} sslmode=verify-full "
        f"sslrootcert={root} connect_timeout=10"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "PGCONNECT_TIMEOUT": "10"}
    done = subprocess.run(["psql", dsn, "-Atc", "select 1"], capture_output=True, text=True, timeout=60, env=env)
    return done.returncode == 0 and done.stdout.strip() == "1", done.stderr.strip()


@pytest.mark.parametrize("name", CHAINS)
def test_postgres_with_ssl_agrees_with_psql(
    lab: Lab,
    postgres_tls: dict[str, PostgresServer],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
) -> None:
    port = postgres_tls[name].port
    code, doc = check_json(capsys, lab_argv(lab, "postgres", name, port))
    assert_verdict(doc, code, name, "postgres")
    accepted, said = psql_accepts(lab.root_path, lab.endpoints[name].hostname, port, tmp_path)
    assert accepted == ACCEPTED[name], said
    if not accepted:
        assert "certificate verify failed" in said, said


def test_postgres_without_ssl_refuses(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, lab: Lab
) -> None:
    """The session's cluster runs with ssl = off: it answers N, and psql with sslmode=require stops."""
    code, doc = check_json(capsys, ["check", f"postgresql://127.0.0.1:{postgres_server.port}/{DATABASE}"])
    assert code == 3 and doc["verdict"] == "unreachable" and ids(doc) == ("starttls-refused",)
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"], ev["code"], ev["reply"]) == ("postgres", "starttls", "N", "N")
    assert "answered N to SSLRequest" in ev["error"] and "ssl = on" in doc["findings"][0]["fix"]
    clients = {c["client"]: c["error"] for c in doc["clients"]}
    assert clients["curl"] == 'curl: (1) Protocol "postgres" not supported or disabled in libcurl'
    import psycopg

    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(host="127.0.0.1", port=postgres_server.port, user=SUPERUSER, sslmode="require").close()
    assert str(raised.value) == clients["python"]  # psycopg's own words, as predicted
    from certdoctor.clients.explain import explain

    assert [c.id for c in explain(str(raised.value)).causes][:1] == ["database-tls"]
    dsn = f"host=127.0.0.1 port={postgres_server.port} dbname=postgres user={SUPERUSER} sslmode=require"
    done = subprocess.run(["psql", dsn, "-Atc", "select 1"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "server does not support SSL, but SSL was required" in done.stderr


def test_postgres_text_report_and_scan(
    lab: Lab, postgres_tls: dict[str, PostgresServer], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    name = "incomplete-no-aia"
    host, port = lab.endpoints[name].hostname, postgres_tls[name].port
    code = main(["check", f"{host}:{port}", "--starttls", "postgres", "--resolve", f"{host}:{port}:127.0.0.1",
                 "--ca-file", str(lab.root_path), "--no-revocation"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "via PostgreSQL SSLRequest" in out and "missing-intermediate" in out
    good = lab.endpoints["good-rsa"].hostname
    src, records = tmp_path / "targets.txt", tmp_path / "out.jsonl"
    src.write_text(
        f"postgres://{good}:{postgres_tls['good-rsa'].port},addr=127.0.0.1\n{host}:{port},addr=127.0.0.1,starttls=postgres\n"
    )
    main(["scan", str(src), "--ca-file", str(lab.root_path), "--no-revocation", "-o", str(records), "--no-progress",
          "-q"])  # fmt: skip
    got = sorted(
        (r["line"], r["starttls"], r["verdict"]) for r in map(jsonschemas.loads, records.read_text().splitlines())
    )
    assert got == [(1, "postgres", "valid"), (2, "postgres", "invalid")]


@pytest.fixture(scope="module")
def mariadb_servers(lab: Lab) -> Iterator[dict[str, MariaDB]]:
    """A private MariaDB for each of CHAINS, and one without TLS ("plain")."""
    _skip_unless(mariadb_unavailable())
    servers: dict[str, MariaDB] = {}
    try:
        for name in (*CHAINS, "plain"):
            chain = None if name == "plain" else (lab.endpoints[name].chain_path, lab.endpoints[name].key_path)
            servers[name] = MariaDB(chain).__enter__()
        yield servers
    finally:
        for server in servers.values():
            server.__exit__()


def mariadb_client(host: str, port: int, root: Path, workdir: Path, *tls: str) -> subprocess.CompletedProcess[str]:
    argv = ["mariadb", "--no-defaults", "-h", host, "-P", str(port), "-u", "root", "--connect-timeout=10", *tls]
    return in_hosts_namespace({host: "127.0.0.1"}, [*argv, "-e", "select 1"], workdir)


@pytest.mark.parametrize("name", CHAINS)
def test_mariadb_agrees_with_the_mariadb_client(
    lab: Lab, mariadb_servers: dict[str, MariaDB], capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    port = mariadb_servers[name].port
    code, doc = check_json(capsys, lab_argv(lab, "mysql", name, port))
    assert_verdict(doc, code, name, "mysql")
    info = doc["endpoints"][0]["starttls"]
    assert "MariaDB" in info["banner"] and "SSL" in info["offered"]
    _skip_unless(hosts_namespace_reason())
    host = lab.endpoints[name].hostname
    done = mariadb_client(host, port, lab.root_path, tmp_path, "--ssl-verify-server-cert", f"--ssl-ca={lab.root_path}")
    assert (done.returncode == 0) == ACCEPTED[name], done.stderr
    if not ACCEPTED[name]:
        assert "ERROR 2026" in done.stderr and "certificate" in done.stderr, done.stderr


def test_mariadb_without_tls_and_a_host_it_refuses(
    mariadb_servers: dict[str, MariaDB], capsys: pytest.CaptureFixture[str], tmp_path: Path, lab: Lab
) -> None:
    port = mariadb_servers["plain"].port
    code, doc = check_json(capsys, ["check", f"mysql://127.0.0.1:{port}", "--timeout", "10"])
    assert code == 3 and ids(doc) == ("starttls-refused",)
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"]) == ("mysql", "greeting") and "CLIENT_SSL" in ev["error"]
    assert "MariaDB" in ev["banner"] and "SSL" not in ev["offered"] and "PROTOCOL_41" in ev["offered"]
    assert "ssl_cert" in doc["findings"][0]["fix"]
    # the real client, told to require TLS, stops there too
    done = mariadb_client(
        "127.0.0.1", port, lab.root_path, tmp_path, "--ssl-verify-server-cert", f"--ssl-ca={lab.root_path}"
    )
    assert done.returncode != 0 and "SSL is required, but the server does not support it" in done.stderr, done.stderr
    from certdoctor.clients.explain import explain

    assert explain(done.stderr).best is not None and explain(done.stderr).best.id == "db-ssl-required"
    # without an account for 127.0.0.1 (--skip-name-resolve: TCP clients are known by address), the server
    # greets with ERR 1130
    server = mariadb_servers["plain"]
    for user, host in (line.split("\t") for line in server.sql("SELECT user, host FROM mysql.user").splitlines()):
        if host != "localhost":
            server.sql(f"DROP USER '{user}'@'{host}'")
    code, doc = check_json(capsys, ["check", f"mysql://127.0.0.1:{port}", "--timeout", "10"])
    assert code == 3 and ids(doc) == ("starttls-refused",)
    ev = doc["findings"][0]["evidence"]
    assert (ev["stage"], ev["code"]) == ("greeting", "1130") and "is not allowed to connect" in ev["reply"]
    assert "grant access" in doc["findings"][0]["fix"]
    done = mariadb_client("127.0.0.1", port, lab.root_path, tmp_path)
    assert done.returncode != 0 and "1130" in done.stderr and "is not allowed to connect" in done.stderr


# --- servers that misbehave, and direct TLS --------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def pg_error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(8)
    writer.write(error_response(("S", "FATAL"), ("C", "0A000"), ("M", "SSL not supported by this server")))
    await writer.drain()


async def pg_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(8)
    await asyncio.sleep(60)


async def mysql_huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\xff\xff\xff\x00\x0a" + b"5" * 65_536)  # announces 16 MB, sends 64 kB, then waits
    await writer.drain()
    await asyncio.sleep(60)


async def mysql_drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for byte in handshake_v10():
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.3)


async def mysql_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(60)


FAKES: dict[str, Handler] = {
    "pg-error": pg_error,
    "pg-silent": pg_silent,
    "mysql-huge": mysql_huge,
    "mysql-drip": mysql_drip,
    "mysql-silent": mysql_silent,
}


@pytest.fixture(scope="module")
def fakes(lab: Lab) -> Iterator[tuple[dict[str, int], list[str | None]]]:
    """Every server of FAKES, and "pg-direct" (TLS from the first byte with the good-rsa chain, ALPN
    "postgresql" as PostgreSQL 17 selects it), on 127.0.0.1 in one event loop of its own thread: (name → port,
    the ALPN protocol the direct server selected for each connection)."""
    loop = asyncio.new_event_loop()
    ports: dict[str, int] = {}
    alpn: list[str | None] = []
    servers: list[asyncio.Server] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(lab.endpoints["good-rsa"].chain_path, lab.endpoints["good-rsa"].key_path)
    context.set_alpn_protocols(["postgresql"])

    async def direct(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        alpn.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
        await reader.read(1)  # PostgreSQL 17 closes a direct connection without ALPN "postgresql"

    async def start() -> None:
        for name, handler in {**FAKES, "pg-direct": direct}.items():

            async def guarded(r: asyncio.StreamReader, w: asyncio.StreamWriter, h: Handler = handler) -> None:
                try:
                    await h(r, w)
                except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError, ssl.SSLError):
                    pass
                finally:
                    w.close()

            tls = context if name == "pg-direct" else None
            server = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls)
            servers.append(server)
            ports[name] = server.sockets[0].getsockname()[1]

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield ports, alpn

    async def stop() -> None:
        for server in servers:
            server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_postgres_17_direct_tls_offers_alpn(
    lab: Lab, fakes: tuple[dict[str, int], list[str | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    ports, alpn = fakes
    name, port = "good-rsa", ports["pg-direct"]
    host = lab.endpoints[name].hostname
    url = f"postgresql://{host}:{port}/app?sslnegotiation=direct"
    for argv in (
        ["check", url, *lab_argv(lab, "postgresql", name, port)[2:]],
        lab_argv(lab, "postgres", name, port, "--starttls", "postgres-direct"),
    ):
        code, doc = check_json(capsys, argv)
        assert_verdict(doc, code, name, "postgres-direct")
        assert alpn[-1] == "postgresql"
    # the SSLRequest way against a port that speaks TLS at once: the server waits for a ClientHello
    code, doc = check_json(capsys, lab_argv(lab, "postgres", name, port, "--timeout", "2"))
    assert code == 3 and ids(doc) == ("starttls-wrong-protocol",)
    assert "--starttls postgres-direct" in doc["findings"][0]["detail"], doc["findings"][0]


@pytest.mark.parametrize(
    ("fake", "scheme", "finding", "said"),
    [
        ("pg-error", "postgres", "starttls-refused", "FATAL 0A000 SSL not supported by this server"),
        ("pg-silent", "postgres", "starttls-timeout", "did not send its answer to SSLRequest within 1.5 s"),
        ("mysql-huge", "mysql", "starttls-wrong-protocol", "a greeting packet of 16777215 bytes"),
        ("mysql-drip", "mysql", "starttls-timeout", "did not send its greeting within 1.5 s"),
        ("mysql-silent", "mysql", "starttls-timeout", "the server sent nothing"),
    ],
)
def test_misbehaving_database_servers(
    fakes: tuple[dict[str, int], list[str | None]],
    capsys: pytest.CaptureFixture[str],
    fake: str,
    scheme: str,
    finding: str,
    said: str,
) -> None:
    port = fakes[0][fake]
    code, doc = check_json(capsys, ["check", f"{scheme}://127.0.0.1:{port}", "--timeout", "1.5"])
    assert code == 3 and ids(doc) == (finding,), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert ev["protocol"] == scheme and said in ev["error"], ev
    if fake == "mysql-drip":  # part of a packet had arrived
        assert "byte(s) so far" in ev["error"]


def test_direct_tls_to_a_postgresql_before_17(
    lab: Lab, postgres_tls: dict[str, PostgresServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL 15 reads the ClientHello as a startup packet and closes: the report says to use SSLRequest."""
    name = "good-rsa"
    argv = lab_argv(lab, "postgres", name, postgres_tls[name].port, "--starttls", "postgres-direct")
    code, doc = check_json(capsys, argv)
    assert code == 3 and ids(doc) == ("handshake-failed",), doc["findings"]
    [endpoint] = doc["endpoints"]
    assert "before 17 reads a ClientHello as a startup packet" in endpoint["error"], endpoint
    assert endpoint["starttls"]["protocol"] == "postgres-direct"


def test_inspect_fix_and_watch_speak_the_database_protocols(
    lab: Lab,
    postgres_tls: dict[str, PostgresServer],
    mariadb_servers: dict[str, MariaDB],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    name = "incomplete-no-aia"
    host = lab.endpoints[name].hostname
    pg, my = postgres_tls[name].port, mariadb_servers[name].port
    resolve = ["--resolve", f"{host}:{my}:127.0.0.1"]
    assert main(["inspect", f"{host}:{my}", "--starttls", "mysql", *resolve, "--json"]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert [(c["position"], c["subject"]) for c in doc["certificates"]] == [(0, f"CN={host}")]
    # fix HOST: the chain the PostgreSQL server sends, completed from the intermediate given
    code = main(["fix", f"postgres://{host}:{pg}", "--resolve", f"{host}:{pg}:127.0.0.1", "--intermediates",
                 str(lab.endpoints["good-rsa"].chain_path), "-d", str(tmp_path / "fixed"), "--ca-file",
                 str(lab.root_path), "--json"])  # fmt: skip
    fixed = jsonschemas.loads(capsys.readouterr().out)
    assert code == 0 and fixed["plan"]["complete"] and (tmp_path / "fixed" / "fullchain.pem").exists(), fixed
    # watch: a MariaDB and a PostgreSQL target, by scheme and by option
    db = ["--db", f"sqlite:///{tmp_path / 'watch.db'}"]
    good = lab.endpoints["good-rsa"].hostname
    specs = [f"mysql://{good}:{mariadb_servers['good-rsa'].port},addr=127.0.0.1",
             f"{host}:{pg},addr=127.0.0.1,starttls=postgres"]  # fmt: skip
    assert main(["watch", "add", *specs, *db]) == 0
    capsys.readouterr()
    code, doc = check_json(capsys, ["watch", "run", *db, "--ca-file", str(lab.root_path), "--no-revocation"])
    assert code == 1 and doc["verdicts"] == {"valid": 1, "invalid": 1}, doc
    code, doc = check_json(capsys, ["watch", "status", *db])
    assert {r["target"]: r["verdict"] for r in doc["targets"]} == dict(zip(specs, ["valid", "invalid"], strict=True))
