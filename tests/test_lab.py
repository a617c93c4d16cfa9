"""The lab behaves as described: real TLS on loopback, checked with curl, OpenSSL (pyOpenSSL) and ssl."""

from __future__ import annotations

import datetime as dt
import http.client
import io
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store
from OpenSSL import SSL
from rich.console import Console

from certdoctor.lab import SCENARIOS, Lab, LabStartError, serve_foreground
from certdoctor.lab import foreground as lab_foreground
from certdoctor.lab.pki import LabPKI

CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(lab: Lab, name: str) -> subprocess.CompletedProcess[str]:
    argv = lab.endpoints[name].curl_argv(lab.root_path)
    argv[1:1] = ["--max-time", "10"]
    argv[0] = CURL
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


def presented_chain(
    address: str, port: int, server_name: str | None, *, timeout: float = 5.0
) -> list[x509.Certificate]:
    """The certificates a server sends, in order, duplicates kept (no verification)."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    with socket.create_connection((address, port), timeout=timeout) as sock:
        # pyOpenSSL wants a blocking socket; a kernel receive timeout keeps a stuck read from hanging.
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(timeout), 0))
        conn = SSL.Connection(ctx, sock)
        if server_name is not None:
            conn.set_tlsext_host_name(server_name.encode())
        conn.set_connect_state()
        conn.do_handshake()
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        conn.shutdown()
    return list(chain)


def fingerprints(certs: list[x509.Certificate]) -> list[bytes]:
    return [c.fingerprint(hashes.SHA256()) for c in certs]


def chain_file(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def common_names(certs: list[x509.Certificate]) -> list[str]:
    return [str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) for c in certs]


def sans(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


# --- the scenario table ---------------------------------------------------------------------------------


def test_scenario_table_is_consistent() -> None:
    names = SCENARIOS.names()
    assert len(names) == len(set(names))
    assert SCENARIOS["expired"].expected == frozenset({"expired"})
    assert SCENARIOS["multi-address"].expected == frozenset({"endpoints-differ", "expired"})
    assert SCENARIOS["no-sni"].check_args == ("--no-sni",)
    assert {s.name for s in SCENARIOS if s.hostile} == {
        "stall",
        "garbage",
        "huge-chain",
        "many-certs",
        "evil-fields",
    }
    for scenario in SCENARIOS:
        assert scenario.description.endswith(".")
        host = scenario.hostname.removesuffix(".") if scenario.name == "trailing-dot" else scenario.hostname
        assert host.endswith(".certdoctor.test") or host == "127.0.0.1"


def test_endpoints_and_commands(lab: Lab, lab_root: Path) -> None:
    assert set(lab.endpoints) == set(SCENARIOS.names())
    assert lab_root.is_file()
    assert x509.load_pem_x509_certificate(lab_root.read_bytes()) == lab.root
    ports = [e.port for e in lab.endpoints.values()]
    assert len(set(ports)) == len(ports)

    wrong = lab.endpoints["wrong-host"]
    host = "wrong-host.certdoctor.test"
    assert wrong.check_argv(lab_root) == [
        "check",
        f"{host}:{wrong.port}",
        "--resolve",
        f"{host}:{wrong.port}:127.0.0.1",
        "--ca-file",
        str(lab_root),
    ]
    assert wrong.curl_argv(lab_root) == [
        "curl",
        "-sS",
        "--cacert",
        str(lab_root),
        "--resolve",
        f"{host}:{wrong.port}:127.0.0.1",
        f"https://{host}:{wrong.port}/",
    ]
    ip = lab.endpoints["ip-no-san"]
    assert ip.check_argv(lab_root) == ["check", f"127.0.0.1:{ip.port}", "--ca-file", str(lab_root)]
    assert ip.curl_argv(lab_root)[-1] == f"https://127.0.0.1:{ip.port}/"
    assert lab.endpoints["no-sni"].check_argv(lab_root)[-1] == "--no-sni"
    multi = lab.endpoints["multi-address"]
    assert multi.addresses == ("127.0.0.1", "127.0.0.2")
    assert f"multi-address.certdoctor.test:{multi.port}:127.0.0.1,127.0.0.2" in multi.check_argv(lab_root)
    assert f"multi-address.certdoctor.test:{multi.port}:127.0.0.1" in multi.curl_argv(lab_root)


# --- curl, the reference client -------------------------------------------------------------------------

GOOD = [s.name for s in SCENARIOS if not s.expected and not s.hostile] + ["evil-fields"]


@pytest.mark.parametrize("name", GOOD)
def test_curl_accepts_good_scenarios(lab: Lab, name: str) -> None:
    result = curl(lab, name)
    assert result.returncode == 0, result.stderr
    assert f"certdoctor lab: {name} " in result.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("expired", "expired"),
        ("wrong-host", "no alternative certificate subject name"),
        ("incomplete-no-aia", "unable to get local issuer certificate"),
        ("incomplete-aia", "unable to get local issuer certificate"),
        ("self-signed", ""),
        ("untrusted-root", ""),
        ("sha1", "too weak"),
        ("client-auth-eku", ""),
        ("expired-intermediate", "expired"),
        ("issuer-not-ca", ""),
    ],
)
def test_curl_rejects_broken_scenarios(lab: Lab, name: str, message: str) -> None:
    result = curl(lab, name)
    assert result.returncode == 60, (result.returncode, result.stderr)
    assert message in result.stderr


# --- what exactly is sent -------------------------------------------------------------------------------

TLS_SCENARIOS = [s.name for s in SCENARIOS if s._spec.kind == "tls" and s.name != "huge-chain"]


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_presented_chain_is_the_chain_file(lab: Lab, name: str) -> None:
    ep = lab.endpoints[name]
    sni = None if "--no-sni" in ep.scenario.check_args or ep.hostname == "127.0.0.1" else ep.hostname
    sent = presented_chain(ep.addresses[0], ep.port, sni)
    assert fingerprints(sent) == fingerprints(chain_file(ep.chain_path))
    key = serialization.load_pem_private_key(ep.key_path.read_bytes(), None)
    assert key.public_key() == sent[0].public_key()


def test_chain_order_and_duplicates_are_sent_as_configured(lab: Lab) -> None:
    def names(scenario: str) -> list[str]:
        ep = lab.endpoints[scenario]
        return common_names(presented_chain("127.0.0.1", ep.port, ep.hostname))

    assert names("wrong-order") == [
        "wrong-order.certdoctor.test",
        "certdoctor Lab Policy CA",
        "certdoctor Lab Issuing CA 2",
    ]
    assert names("good-two-level") == [
        "good-two-level.certdoctor.test",
        "certdoctor Lab Issuing CA 2",
        "certdoctor Lab Policy CA",
    ]
    # OpenSSL neither dedupes nor reorders the configured chain.
    assert names("duplicate-cert") == [
        "duplicate-cert.certdoctor.test",
        "certdoctor Lab RSA CA",
        "certdoctor Lab RSA CA",
    ]
    assert names("root-included") == [
        "root-included.certdoctor.test",
        "certdoctor Lab RSA CA",
        "certdoctor Lab Root CA",
    ]
    assert names("extra-cert")[-1] == "certdoctor Unrelated CA"
    assert names("incomplete-aia") == ["incomplete-aia.certdoctor.test"]
    many = names("many-certs")
    assert len(many) == 52 and len(set(many)) == 52
    assert lab.endpoints["many-certs"].chain_path.stat().st_size < 100_000


def test_openssl_s_client_sees_the_duplicate(lab: Lab) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary")
    ep = lab.endpoints["duplicate-cert"]
    out = subprocess.run(
        [openssl, "s_client", "-showcerts", "-servername", ep.hostname, "-connect", f"127.0.0.1:{ep.port}"],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    ).stdout
    subjects = [line.strip() for line in out.splitlines() if line.strip()[:4] in ("0 s:", "1 s:", "2 s:")]
    assert [s.split("CN = ")[-1] for s in subjects] == [
        "duplicate-cert.certdoctor.test",
        "certdoctor Lab RSA CA",
        "certdoctor Lab RSA CA",
    ]


def test_multi_address_serves_different_leaves(lab: Lab) -> None:
    ep = lab.endpoints["multi-address"]
    first = presented_chain("127.0.0.1", ep.port, ep.hostname)[0]
    second = presented_chain("127.0.0.2", ep.port, ep.hostname)[0]
    assert first.fingerprint(hashes.SHA256()) != second.fingerprint(hashes.SHA256())
    now = dt.datetime.now(dt.UTC)
    assert first.not_valid_after_utc > now
    assert second.not_valid_after_utc < now
    assert sans(first) == sans(second) == ["multi-address.certdoctor.test"]
    other = chain_file(ep.chain_path.with_name("multi-address@127.0.0.2.pem"))[0]
    assert other == second


def test_no_sni_gets_the_default_certificate(lab: Lab) -> None:
    ep = lab.endpoints["no-sni"]
    assert sans(presented_chain("127.0.0.1", ep.port, None)[0]) == ["default.certdoctor.test"]
    assert sans(presented_chain("127.0.0.1", ep.port, ep.hostname)[0]) == ["no-sni.certdoctor.test"]


# --- certificates ---------------------------------------------------------------------------------------

VERIFIES = ["good-rsa", "good-ecdsa", "good-two-level", "wildcard", "expiring-soon", "evil-fields"]
VERIFIES += ["wrong-order", "extra-cert", "root-included", "duplicate-cert", "long-validity", "many-certs"]


@pytest.mark.parametrize("name", VERIFIES)
def test_good_chains_pass_the_web_pki_policy(lab: Lab, name: str) -> None:
    ep = lab.endpoints[name]
    certs = chain_file(ep.chain_path)
    verifier = PolicyBuilder().store(Store([lab.root])).build_server_verifier(DNSName(ep.hostname))
    verified = verifier.verify(certs[0], certs[1:])
    assert verified[-1] == lab.root


def test_certificate_details(lab: Lab) -> None:
    def leaf(name: str) -> x509.Certificate:
        return chain_file(lab.endpoints[name].chain_path)[0]

    good = leaf("good-rsa")
    ext = good.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ext.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == f"{lab.aia_base_url}/lab-rsa-ca.cer"
    assert good.not_valid_after_utc - good.not_valid_before_utc == dt.timedelta(days=90)

    sha1 = leaf("sha1")
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)
    rsa_ca = chain_file(lab.endpoints["sha1"].chain_path)[1]
    # cryptography no longer verifies SHA-1 certificate signatures itself; check the raw signature.
    rsa_ca.public_key().verify(  # type: ignore[call-arg, union-attr]
        sha1.signature, sha1.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1()
    )

    assert leaf("rsa-1024").public_key().key_size == 1024
    assert leaf("cn-only").extensions.get_extension_for_oid(x509.ExtensionOID.KEY_USAGE)
    with pytest.raises(x509.ExtensionNotFound):
        leaf("cn-only").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    with pytest.raises(x509.ExtensionNotFound):
        leaf("incomplete-no-aia").extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    long = leaf("long-validity")
    assert long.not_valid_after_utc - long.not_valid_before_utc == dt.timedelta(days=825)
    evil_leaf = leaf("evil-fields")
    assert evil_leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["evil-fields.certdoctor.test", '"><img src=x onerror=alert(1)>', "<script>alert(2)</script>"]
    evil = evil_leaf.subject
    assert "\x1b[2J" in evil.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert "\x1b]8;;" in evil.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value

    not_a_ca = chain_file(lab.endpoints["issuer-not-ca"].chain_path)[1]
    assert not not_a_ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    expired_ca = chain_file(lab.endpoints["expired-intermediate"].chain_path)[1]
    assert expired_ca.not_valid_after_utc < dt.datetime.now(dt.UTC) - dt.timedelta(days=9)


def test_aia_server(lab: Lab) -> None:
    port = int(lab.aia_base_url.rsplit(":", 1)[1])

    def get(path: str) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            conn.close()

    status, ctype, body = get("/lab-rsa-ca.cer")
    assert (status, ctype) == (200, "application/pkix-cert")
    rsa_ca = x509.load_der_x509_certificate(body)
    assert rsa_ca == chain_file(lab.endpoints["good-rsa"].chain_path)[1]
    status, _, body = get("/untrusted-root.cer")
    assert status == 200 and x509.load_der_x509_certificate(body).subject == x509.load_der_x509_certificate(body).issuer
    assert get("/nope.cer")[0] == 404


# --- hostile servers ------------------------------------------------------------------------------------


def test_stall_accepts_and_says_nothing(lab: Lab) -> None:
    with socket.create_connection(("127.0.0.1", lab.endpoints["stall"].port), timeout=2) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_garbage_is_not_tls(lab: Lab) -> None:
    ctx = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", lab.endpoints["garbage"].port), timeout=5) as sock,
        pytest.raises(ssl.SSLError),
    ):
        ctx.wrap_socket(sock, server_hostname="garbage.certdoctor.test")


def test_huge_chain_exceeds_client_limits(lab: Lab) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", lab.endpoints["huge-chain"].port), timeout=10) as sock,
        pytest.raises(ssl.SSLError, match=r"EXCESSIVE_MESSAGE_SIZE|excessive message size"),
    ):
        ctx.wrap_socket(sock, server_hostname="huge-chain.certdoctor.test")


# --- lifecycle ------------------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_restart_reuses_the_root_and_is_faster(tmp_path: Path) -> None:
    with Lab(tmp_path, include_hostile=False) as first:
        fingerprint = first.root.fingerprint(hashes.SHA256())
        first_seconds = first.start_seconds
        first_port = first.endpoints["good-rsa"].port
    assert first_seconds is not None
    with Lab(tmp_path, include_hostile=False) as second:
        assert second.root.fingerprint(hashes.SHA256()) == fingerprint
        assert second.pki is not None and second.pki.root_reused and second.pki.keys.generated == 0
        assert second.start_seconds is not None and second.start_seconds < first_seconds
        result = curl(second, "good-two-level")
        assert result.returncode == 0, result.stderr
    # Stopped: nothing listens any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", first_port), timeout=1).close()


def test_root_is_renewed_when_it_expires_soon(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = LabPKI(tmp_path, "http://127.0.0.1:1")
    assert not first.root_reused
    again = LabPKI(tmp_path, "http://127.0.0.1:2", now=now + dt.timedelta(days=1))
    assert again.root_reused and again.root.cert == first.root.cert
    late = LabPKI(tmp_path, "http://127.0.0.1:3", now=first.root.cert.not_valid_after_utc - dt.timedelta(days=29))
    assert not late.root_reused and late.root.cert != first.root.cert
    (tmp_path / "lab-root.pem").unlink()
    assert not LabPKI(tmp_path, "http://127.0.0.1:4").root_reused


def test_busy_port_is_a_clear_error(tmp_path: Path, busy_port: int) -> None:
    with pytest.raises(LabStartError, match=rf"127\.0\.0\.1:{busy_port}.*already in use"):
        Lab(tmp_path, port_base=busy_port).start()


def test_serve_foreground(tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(record=True, width=400, file=io.StringIO())
    err = Console(record=True, width=400, file=io.StringIO())
    assert serve_foreground(tmp_path, busy_port, console, err=err) == 2
    assert "already in use" in err.export_text()
    assert console.export_text() == ""

    def interrupt() -> None:
        raise KeyboardInterrupt

    console = Console(record=True, width=400, file=io.StringIO())
    monkeypatch.setattr(lab_foreground, "_block_until_interrupted", interrupt)
    started = time.perf_counter()
    assert serve_foreground(tmp_path, 0, console) == 0
    assert time.perf_counter() - started < 15
    text = console.export_text()
    assert "certdoctor check" in text and "curl -sS --cacert" in text
    assert "wrong-host" in text and "stall" in text
    assert str(tmp_path / "lab-root.pem") in text
