"""Tests of certdoctor.collect: real TLS and HTTP servers on 127.0.0.1, a throwaway PKI, real stores."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import http.server
import os
import random
import shutil
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from OpenSSL import SSL

from certdoctor.collect import (
    DEFAULT_STORES,
    STORE_NAMES,
    AiaFetcher,
    CertificateParseError,
    ResolveError,
    StoreUnavailable,
    ca_issuer_urls,
    custom_store,
    fetch_chain,
    list_stores,
    load_certificate_files,
    load_chain_file,
    load_store,
    parse_certificates,
    resolve,
)
from certdoctor.collect.stores import _system_bundle

# --------------------------------------------------------------------------------------------- PKI

KEY = ec.generate_private_key(ec.SECP256R1())  # one key for the whole PKI keeps the module fast
NOW = datetime.now(UTC)


def make_cert(
    cn: str,
    issuer: x509.Certificate | None = None,
    *,
    ca: bool = False,
    aia: str | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
    if aia:
        access = x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    return builder.sign(KEY, hashes.SHA256())


ROOT = make_cert("Test Root", ca=True)
INTERMEDIATE = make_cert("Test Intermediate", ROOT, ca=True)
LEAF = make_cert("localhost", INTERMEDIATE, aia="http://127.0.0.1:9/intermediate.cer")


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Files:
    chain: Path  # leaf + intermediate
    key: Path
    long_chain: Path  # leaf + 39 fillers
    fillers: tuple[x509.Certificate, ...]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    base = tmp_path_factory.mktemp("pki")
    key = base / "key.pem"
    key.write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    chain = base / "chain.pem"
    chain.write_bytes(pem(LEAF, INTERMEDIATE))
    fillers = tuple(make_cert(f"filler {i}", ROOT, ca=True) for i in range(39))
    long_chain = base / "long.pem"
    long_chain.write_bytes(pem(LEAF, *fillers))
    return Files(chain, key, long_chain, fillers)


# ------------------------------------------------------------------------------------- TLS servers


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _drain_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        await reader.read()
    writer.close()


async def start_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] = _drain_and_close,
    ctx: ssl.SSLContext | None = None,
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ctx)
    return server, server.sockets[0].getsockname()[1]


def tls_context(chain: Path, key: Path, sni_log: list[str | None] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    if sni_log is not None:

        def record(_sock: Any, name: str | None, _ctx: Any) -> None:
            sni_log.append(name)

        ctx.sni_callback = record
    return ctx


@pytest.fixture(params=["native", "pyopenssl"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of reading the server's certificates and staple: straight from OpenSSL (the default), and
    through pyOpenSSL's public API (where its binding lacks a function)."""
    from certdoctor.collect import handshake

    assert handshake._NATIVE  # the pyOpenSSL this project installs has every function the fast path needs
    if request.param == "pyopenssl":
        monkeypatch.setattr(handshake, "_NATIVE", False)
        monkeypatch.setattr(handshake, "_contexts", {})
    monkeypatch.setattr(handshake, "_PARSED", {})
    return str(request.param)


def test_fetch_chain_returns_chain_in_order(files: Files, reader: str) -> None:
    async def main() -> None:
        server, port = await start_server(ctx=tls_context(files.chain, files.key))
        async with server:
            result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
            again = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
        assert result.ok, result.error
        assert result.certs == (LEAF, INTERMEDIATE)
        # parsed once: the second handshake hands out the same objects
        assert all(a is b for a, b in zip(again.certs, result.certs, strict=True))
        assert result.total_received == 2
        assert result.source == f"127.0.0.1:{port}"
        assert result.address == "127.0.0.1"
        assert result.tls_version == "TLSv1.3"
        assert result.cipher and result.cipher.startswith("TLS_")
        assert result.ocsp_staple is None
        assert 0 < result.elapsed < 5

    run(main())


def test_legacy_only_server_is_reached_on_the_second_client_hello(files: Files) -> None:
    """The first ClientHello offers what common clients offer; a server that shares no cipher suite with it
    (here: only ECDHE-ECDSA-CAMELLIA128-SHA256, not in OpenSSL's default list) gets a second one with every
    suite."""
    connections: list[int] = []

    async def main() -> None:
        ctx = tls_context(files.chain, files.key)
        try:
            ctx.set_ciphers("ECDHE-ECDSA-CAMELLIA128-SHA256:@SECLEVEL=0")
        except ssl.SSLError:  # pragma: no cover
            pytest.skip("the system OpenSSL has no CAMELLIA")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        inner = await asyncio.start_server(_drain_and_close, "127.0.0.1", 0, ssl=ctx)
        tls_port = inner.sockets[0].getsockname()[1]

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)  # a TCP relay in front of the TLS server, to count connections
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", tls_port)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        outer, port = await start_server(relay)
        async with inner, outer:
            result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
            modern = await fetch_chain("127.0.0.1", tls_port, "localhost", 5.0)
        assert result.ok, result.error
        assert result.certs == (LEAF, INTERMEDIATE)
        assert result.cipher == "ECDHE-ECDSA-CAMELLIA128-SHA256" and result.tls_version == "TLSv1.2"
        assert len(connections) == 2  # refused once, then reached
        assert modern.ok

    run(main())

    async def normal() -> None:
        connections.clear()

        async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            writer.close()

        server, port = await start_server(count)
        async with server:
            result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
        # a server that drops the connection (a reset here: it closes with our ClientHello unread) may also be
        # refusing the cipher suites: asked twice, then reported
        assert result.error_kind == "handshake" and "reset" in (result.error or "")
        assert len(connections) == 2

    run(normal())


def test_sni_sent_idna_encoded_and_omitted(files: Files) -> None:
    async def main() -> list[str | None]:
        log: list[str | None] = []
        server, port = await start_server(ctx=tls_context(files.chain, files.key, log))
        async with server:
            for sni in ("example.test", None, "bücher.example.", "127.0.0.1", "[::1]"):
                result = await fetch_chain("127.0.0.1", port, sni, 5.0)
                assert result.ok, result.error
        return log

    assert run(main()) == ["example.test", None, "xn--bcher-kva.example", None, None]


def test_invalid_sni_is_an_error_not_an_exception() -> None:
    result = run(fetch_chain("127.0.0.1", 9, "a..b\u00fc", 1.0))
    assert result.error_kind == "handshake"
    assert "SNI" in (result.error or "")


def test_chain_capped_at_max_certs(files: Files) -> None:
    async def main() -> None:
        server, port = await start_server(ctx=tls_context(files.long_chain, files.key))
        async with server:
            result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
            small = await fetch_chain("127.0.0.1", port, "localhost", 5.0, max_bytes=2000)
        assert result.ok, result.error
        assert result.total_received == 40
        assert len(result.certs) == 32
        assert result.certs[0] == LEAF
        assert list(result.certs[1:]) == list(files.fillers[:31])
        assert small.error_kind == "too-large"
        assert "more than 2000 bytes" in (small.error or "")

    run(main())


def test_legacy_tls10_server_is_accepted(files: Files) -> None:
    ctx = tls_context(files.chain, files.key)
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.warns(DeprecationWarning):
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
    except (ssl.SSLError, ValueError) as exc:  # pragma: no cover - depends on the system OpenSSL
        pytest.skip(f"the system OpenSSL cannot serve TLS 1.0: {exc}")

    async def main() -> None:
        server, port = await start_server(ctx=ctx)
        async with server:
            result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
        if result.error and "version" in result.error:  # pragma: no cover
            pytest.skip(f"TLS 1.0 refused by the server side: {result.error}")
        assert result.ok, result.error
        assert result.tls_version == "TLSv1"

    run(main())


def test_anonymous_cipher_is_no_certificate() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers("aNULL:@SECLEVEL=0")
    except ssl.SSLError:  # pragma: no cover
        pytest.skip("the system OpenSSL has no anonymous ciphers")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    async def main() -> None:
        server, port = await start_server(ctx=ctx)
        async with server:
            result = await fetch_chain("127.0.0.1", port, None, 5.0)
        assert result.error_kind == "no-certificate", result.error
        assert result.certs == ()
        assert result.tls_version == "TLSv1.2"

    run(main())


def test_ocsp_staple_is_recorded(files: Files, reader: str) -> None:
    """A real pyOpenSSL server stapling a (fake) OCSP response."""
    staple = b"\x30\x03\x0a\x01\x06"  # an OCSPResponse "unauthorized"; content does not matter here
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate_chain_file(str(files.chain))
    ctx.use_privatekey_file(str(files.key))
    ctx.set_ocsp_server_callback(lambda _conn, _data: staple)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        sock, _ = listener.accept()  # blocking: pyOpenSSL turns socket timeouts into WantReadError
        conn = SSL.Connection(ctx, sock)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            conn.recv(1024)
        except SSL.Error:
            pass
        finally:
            sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = run(fetch_chain("127.0.0.1", port, "localhost", 5.0))
    finally:
        thread.join(5)
        listener.close()
    assert result.ok, result.error
    assert result.ocsp_staple == staple
    assert result.certs == (LEAF, INTERMEDIATE)


def test_silent_server_times_out() -> None:
    async def main() -> None:
        server, port = await start_server()  # plain TCP, never answers
        async with server:
            started = time.monotonic()
            result = await fetch_chain("127.0.0.1", port, "localhost", 1.0)
            assert time.monotonic() - started < 2.0
        assert result.error_kind == "timeout"
        assert result.error == "no TLS handshake completed within 1.0 s"
        assert result.certs == ()

    run(main())


def test_garbage_and_plain_http_are_not_tls() -> None:
    noise = bytes([0x8F]) + random.Random(1234).randbytes(300)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(noise)
        await writer.drain()
        await _drain_and_close(reader, writer)

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        for handler in (garbage, plain_http):
            server, port = await start_server(handler)
            async with server:
                result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
            assert result.error_kind == "not-tls", result
            assert result.error == "the server did not speak TLS (is this a plain HTTP port?)"

    run(main())


def test_server_closing_mid_handshake() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        writer.close()

    async def main() -> None:
        server, port = await start_server(hang_up)
        async with server:
            result = await fetch_chain("127.0.0.1", port, "localhost", 5.0)
        assert result.error_kind == "handshake"
        assert "closed the connection" in (result.error or "")

    run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_port() -> None:
    port = free_port()
    result = run(fetch_chain("127.0.0.1", port, "localhost", 5.0))
    assert result.error_kind == "connect"
    assert result.error == "connection refused"
    assert result.source == f"127.0.0.1:{port}"


def test_ipv6_source_label() -> None:
    if not socket.has_ipv6:  # pragma: no cover
        pytest.skip("no IPv6")
    result = run(fetch_chain("[::1]", free_port(), None, 2.0))
    assert result.source.startswith("[::1]:")
    assert result.address == "::1"
    assert result.error_kind in ("connect", "timeout")


def test_resolve() -> None:
    assert "127.0.0.1" in run(resolve("localhost", 443, 5.0))
    assert run(resolve("127.0.0.1", 443, 5.0)) == ["127.0.0.1"]
    assert run(resolve("[::1]", 443, 5.0)) == ["::1"]
    assert run(resolve("2001:db8::1", 443, 5.0)) == ["2001:db8::1"]
    with pytest.raises(ResolveError, match=r"no-such-host\.invalid"):
        run(resolve("no-such-host.invalid", 443, 5.0))


# ---------------------------------------------------------------------------------------------- files


def test_parse_pem_with_junk_crlf_and_glued_blocks() -> None:
    leaf_pem, inter_pem, root_pem = pem(LEAF), pem(INTERMEDIATE), pem(ROOT)
    glued = inter_pem.strip() + root_pem  # "-----END CERTIFICATE----------BEGIN CERTIFICATE-----"
    spaced = leaf_pem.replace(b"\n", b"  \r\n ", 5)  # whitespace inside the base64
    data = b"subject=CN=localhost\r\nsome junk: here\r\n" + spaced.replace(b"\n", b"\r\n") + b"more\n" + glued
    assert parse_certificates(data) == [LEAF, INTERMEDIATE, ROOT]


def test_parse_other_armours_and_der() -> None:
    x509_armour = pem(LEAF).replace(b"CERTIFICATE", b"X509 CERTIFICATE")
    assert parse_certificates(x509_armour) == [LEAF]
    assert parse_certificates(der(LEAF)) == [LEAF]
    assert parse_certificates(der(LEAF) + der(INTERMEDIATE) + b"\n") == [LEAF, INTERMEDIATE]
    assert parse_certificates(b"\n" + base64.b64encode(der(ROOT)) + b"\n") == [ROOT]
    # DER whose last byte is whitespace (signatures are random: this was a real bug)
    for cn in (f"ws {i}" for i in range(2000)):
        cert = make_cert(cn)
        if der(cert)[-1:] in (b" ", b"\n", b"\t", b"\r"):
            assert parse_certificates(der(cert)) == [cert]
            break


def test_parse_trusted_certificate() -> None:
    aux = b"\x30\x0c\x30\x0a\x06\x08\x2b\x06\x01\x05\x05\x07\x03\x01"  # trust: serverAuth
    body = base64.encodebytes(der(ROOT) + aux)
    data = b"-----BEGIN TRUSTED CERTIFICATE-----\n" + body + b"-----END TRUSTED CERTIFICATE-----\n"
    assert parse_certificates(data) == [ROOT]


def test_parse_pkcs7() -> None:
    bundle_der = pkcs7.serialize_certificates([LEAF, INTERMEDIATE], serialization.Encoding.DER)
    bundle_pem = pkcs7.serialize_certificates([LEAF, INTERMEDIATE], serialization.Encoding.PEM)
    assert b"-----BEGIN PKCS7-----" in bundle_pem
    # A PKCS#7 bundle is a DER SET OF: the order is the encoding's, not the order of serialisation.
    assert set(parse_certificates(bundle_der)) == {LEAF, INTERMEDIATE}
    assert parse_certificates(b"junk\n" + bundle_pem) == parse_certificates(bundle_der)


def test_parse_errors() -> None:
    key_pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertificateParseError, match=r"^no certificate found \(the file holds a PRIVATE KEY\)$"):
        parse_certificates(key_pem)
    with pytest.raises(CertificateParseError, match="no certificate found"):
        parse_certificates(b"hello, world\n\x00\xff" * 10)
    with pytest.raises(CertificateParseError, match="empty"):
        parse_certificates(b"")
    broken = pem(LEAF) + pem(INTERMEDIATE).replace(b"MII", b"MIJ", 1)
    with pytest.raises(CertificateParseError, match=r"^block 2 is not a valid certificate: "):
        parse_certificates(broken)
    with pytest.raises(CertificateParseError, match="block 2 is truncated"):
        parse_certificates(pem(LEAF) + pem(ROOT)[:300])
    with pytest.raises(CertificateParseError, match="more than 2 certificates"):
        parse_certificates(pem(LEAF, INTERMEDIATE, ROOT), max_certs=2)
    with pytest.raises(CertificateParseError, match="not a valid DER"):
        parse_certificates(b"\x30\x82\x01\x00garbage")


def test_parse_is_linear_on_hostile_input() -> None:
    started = time.monotonic()
    with pytest.raises(CertificateParseError):
        parse_certificates(b"-----BEGIN CERTIFICATE-----\n" * 20_000)
    assert time.monotonic() - started < 2.0


def test_load_chain_file(tmp_path: Path, files: Files) -> None:
    chain = load_chain_file(files.chain)
    assert chain.ok and chain.certs == (LEAF, INTERMEDIATE)
    assert chain.source == str(files.chain) and chain.total_received == 2

    capped = load_chain_file(str(files.long_chain), max_certs=5)
    assert len(capped.certs) == 5 and capped.total_received == 40

    missing = load_chain_file(tmp_path / "missing.pem")
    assert missing.error_kind == "parse" and "missing.pem" in (missing.error or "")
    assert not missing.ok

    keyfile = load_chain_file(files.key)
    assert keyfile.error_kind == "parse"
    assert keyfile.error == "no certificate found (the file holds a PRIVATE KEY)"


def test_load_certificate_files(tmp_path: Path, files: Files) -> None:
    root_file = tmp_path / "root.der"
    root_file.write_bytes(der(ROOT))
    assert load_certificate_files([files.chain, root_file]) == [LEAF, INTERMEDIATE, ROOT]
    with pytest.raises(CertificateParseError, match=r"key\.pem: no certificate found"):
        load_certificate_files([files.key])
    with pytest.raises(CertificateParseError, match="nope"):
        load_certificate_files([tmp_path / "nope"])


# ------------------------------------------------------------------------------------------------ AIA


class AiaHandler(http.server.BaseHTTPRequestHandler):
    counts: ClassVar[Counter[str]] = Counter()
    routes: ClassVar[dict[str, tuple[int, bytes, dict[str, str]]]] = {}

    def do_GET(self) -> None:
        type(self).counts[self.path] += 1
        if self.path == "/slow":
            try:
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"0")
                self.wfile.flush()
                time.sleep(1.5)  # stall past the fetcher's timeout
            except OSError:
                pass
            return
        if self.path == "/stream":  # close-delimited body, no Content-Length
            try:
                self.send_response(200)
                self.end_headers()
                for _ in range(40):
                    self.wfile.write(b"0" * 10_000)
            except OSError:
                pass
            return
        status, body, headers = self.routes.get(self.path, (404, b"not found", {}))
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AiaServer(http.server.ThreadingHTTPServer):
    request_queue_size = 64  # the default backlog of 5 drops SYNs when the test connects 10 at once
    daemon_threads = True
    block_on_close = False


@pytest.fixture(scope="module")
def aia_server() -> Iterator[str]:
    p7c = pkcs7.serialize_certificates([INTERMEDIATE, ROOT], serialization.Encoding.DER)
    AiaHandler.routes = {
        "/der": (200, der(INTERMEDIATE), {"Content-Type": "application/pkix-cert"}),
        "/pem": (200, pem(INTERMEDIATE), {"Content-Type": "application/x-pem-file"}),
        "/p7c": (200, p7c, {"Content-Type": "application/pkcs7-mime"}),
        "/cached": (200, p7c, {"Content-Type": "application/pkcs7-mime"}),
        "/gzip": (200, gzip.compress(der(INTERMEDIATE)), {"Content-Encoding": "gzip"}),
        "/big": (200, b"\x30" * 300_000, {}),
        "/html": (200, b"<html>captive portal</html>", {"Content-Type": "text/html"}),
        "/redirect": (302, b"", {"Location": "/der"}),
        "/loop": (302, b"", {"Location": "/loop"}),
    }
    server = AiaServer(("127.0.0.1", 0), AiaHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_aia_fetches(aia_server: str) -> None:
    paths = ["der", "pem", "p7c", "gzip", "redirect", "missing", "big", "stream", "html", "loop"]

    async def main() -> dict[str, Any]:
        async with AiaFetcher() as fetcher, AiaFetcher(timeout=0.5) as impatient:
            slow = asyncio.ensure_future(impatient.fetch(f"{aia_server}/slow"))
            results = await asyncio.gather(*(fetcher.fetch(f"{aia_server}/{p}") for p in paths))
            results.append(await fetcher.fetch("ftp://127.0.0.1/x.cer"))
            results.append(await slow)
            return dict(zip([*paths, "ftp", "slow"], results, strict=True))

    started = time.monotonic()
    r = run(main())
    assert time.monotonic() - started < 3.0
    for name in ("der", "pem", "gzip", "redirect"):
        assert r[name].certs == (INTERMEDIATE,), (name, r[name].error)
        assert r[name].error is None and r[name].status == 200
    assert r["der"].content_type == "application/pkix-cert"
    assert r["der"].size == len(der(INTERMEDIATE))
    assert set(r["p7c"].certs) == {INTERMEDIATE, ROOT}
    assert r["missing"].status == 404 and r["missing"].error == "HTTP 404 Not Found"
    assert r["big"].error == "response larger than 256 KiB" and not r["big"].certs
    assert r["stream"].error == "response larger than 256 KiB"  # no Content-Length: capped while reading
    assert r["slow"].error == "timed out after 0.5 s"
    assert r["html"].error and "no certificate found" in r["html"].error
    assert r["loop"].error == "more than 3 redirects"
    assert r["ftp"].error == "unsupported URL scheme"


def test_aia_cache_shares_one_request(aia_server: str) -> None:
    url = f"{aia_server}/cached"

    async def main() -> None:
        async with AiaFetcher() as fetcher:
            first, second = await asyncio.gather(fetcher.fetch(url), fetcher.fetch(url))
            third = await fetcher.fetch(url)
        assert first is second is third
        assert set(first.certs) == {INTERMEDIATE, ROOT}

    run(main())
    assert AiaHandler.counts["/cached"] == 1


def test_ca_issuer_urls() -> None:
    assert ca_issuer_urls(LEAF) == ["http://127.0.0.1:9/intermediate.cer"]
    assert ca_issuer_urls(ROOT) == []


# --------------------------------------------------------------------------------------------- stores


@pytest.mark.parametrize("name", ["mozilla", "chrome", "microsoft"])
def test_bundled_stores(name: str) -> None:
    store = load_store(name)
    assert store.name == name
    assert len(store.roots) > 90  # Chrome's root store has ~100 roots (trustifi 43: 99)
    assert all(isinstance(root, x509.Certificate) for root in store.roots)
    assert load_store(name) is store  # cached


def test_mozilla_description() -> None:
    import certifi

    assert load_store("mozilla").description.startswith(f"Mozilla (certifi {certifi.__version__}")
    microsoft = load_store("microsoft")
    assert "server authentication" in microsoft.description


def test_system_store() -> None:
    if _system_bundle() is None:
        pytest.skip("no OS CA bundle on this machine")
    store = load_store("system")
    assert store.roots and os.path.isfile(store.source)


def test_java_store() -> None:
    if not shutil.which("keytool") and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JDK (keytool) on this machine")
    store = load_store("java")
    assert store.name == "java"
    assert len(store.roots) > 50


def test_unknown_store_and_listing() -> None:
    with pytest.raises(StoreUnavailable, match="unknown trust store 'netscape'"):
        load_store("netscape")
    listing = list_stores()
    assert [name for name, _, _ in listing] == list(STORE_NAMES)
    assert set(DEFAULT_STORES) <= set(STORE_NAMES)
    assert dict((name, ok) for name, _, ok in listing)["mozilla"] is True


def test_custom_store() -> None:
    store = custom_store([ROOT, ROOT, INTERMEDIATE], "ca.pem")
    assert store.name == "custom" and store.roots == (ROOT, INTERMEDIATE) and store.source == "ca.pem"
