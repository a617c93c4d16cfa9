"""OpenSSL's own verifier (certdoctor.clients.openssl) for the curl, Python and Node predictions.

Three layers of evidence, each against an oracle that is not certdoctor:

1. the verifier alone, on chains from ``pki_builder`` judged at ``pki_builder.AT``: the X509_V_ERR code and
   depth for path length, name constraints, an intermediate's EKU, AKID≠SKID, the security level, and the
   exact notAfter second — the latter checked against the ``openssl verify -attime`` command;
2. the predictions (``certdoctor.clients.predict``) on the same chains read from files;
3. the predictions against the real curl, Python ``ssl`` and Node, connecting to a TLS server on 127.0.0.1
   that serves each chain (valid now), trusting only its root: same verdict, same error family, and the
   predicted text inside what the client printed (``test_clients_real.mismatch``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

import hostile_servers as hs
import pki_builder as pb
from certdoctor import diagnose
from certdoctor.clients import ClientVerdict, openssl, predict
from realclients import Outcome, Probe
from test_clients_real import mismatch

pytestmark = pytest.mark.skipif(not openssl.available(), reason="no OpenSSL 3 libcrypto on this machine")

HOST = "api.example.test"
PARTIAL_HOST = "api1.example.test"  # matched by the partial wildcard api*.example.test
CLIENTS = ("curl", "python", "node")


# --- chains -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A presented chain (leaf first), its root, and the leaf's key (to serve it)."""

    certs: tuple[x509.Certificate, ...]
    root: pb.Issued
    key: pb.PrivateKey


def _leaf_times(now: datetime | None, expired: bool = False) -> dict[str, datetime]:
    if now is None:
        return {}
    if expired:
        return {"not_before": now - timedelta(days=60), "not_after": now - timedelta(days=1)}
    return {"not_before": now - timedelta(days=1), "not_after": now + timedelta(days=30)}


def _aki_mismatch_leaf(name: str, issuer: pb.Issued, now: datetime | None) -> pb.Issued:
    """A leaf signed by ``issuer`` whose authorityKeyIdentifier names another key."""
    key = pb.ec_key(f"key:{name}")
    times = _leaf_times(now) or {"not_before": pb.AT - timedelta(days=30), "not_after": pb.AT + timedelta(days=60)}
    cert = (
        x509.CertificateBuilder()
        .subject_name(pb.name(name))
        .issuer_name(issuer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(times["not_before"])
        .not_valid_after(times["not_after"])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pb.ec_key("some other key").public_key()),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return pb.Issued(cert, key)


def build(case: str, now: datetime | None = None) -> Case:
    """The chain of one case; ``now`` None: valid around pki_builder.AT, else valid (or expired) at ``now``."""
    root = pb.root(f"Verifier Root {case}")
    times = _leaf_times(now, expired=case == "expired")
    if case == "path-length":
        ca0 = pb.intermediate("Pathlen Zero CA", root, path_length=0)
        ca1 = pb.intermediate("Below Pathlen Zero CA", ca0)
        leaf = pb.leaf(HOST, ca1, **times)
        return Case((leaf.cert, ca1.cert, ca0.cert), root, leaf.key)
    if case in ("name-excluded", "name-not-permitted"):
        constraints = (
            x509.NameConstraints(permitted_subtrees=None, excluded_subtrees=[x509.DNSName("example.test")])
            if case == "name-excluded"
            else x509.NameConstraints(permitted_subtrees=[x509.DNSName("other.test")], excluded_subtrees=None)
        )
        ca = pb.intermediate(f"Constrained CA {case}", root, name_constraints=constraints)
    elif case == "eku-ca":
        ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
        ca = pb.intermediate("Mail And Client CA", root, eku=ekus)
    else:
        ca = pb.intermediate("Verifier CA", root)
    if case == "aki-mismatch":
        leaf = _aki_mismatch_leaf(HOST, ca, now)
    elif case == "weak-key":
        leaf = pb.leaf(HOST, ca, key=pb.rsa_key("verifier-1024", 1024), **times)
    elif case == "partial-wildcard":
        leaf = pb.leaf(PARTIAL_HOST, ca, sans=["api*.example.test"], **times)
    else:
        leaf = pb.leaf(HOST, ca, **times)
    return Case((leaf.cert, ca.cert), root, leaf.key)


def _pem(path: Path, certs: tuple[x509.Certificate, ...] | list[x509.Certificate]) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return str(path)


# --- 1. the verifier alone --------------------------------------------------------------------------------


def _errors(case: Case, client: str, at: datetime = pb.AT, host: str | None = HOST) -> list[tuple[str, int]]:
    result = openssl.verify(case.certs, [(case.root.cert,)], (), at, openssl.SETTINGS[client], host)
    assert result is not None
    return [(e.name, e.depth) for e in result.errors]


@pytest.mark.parametrize(
    ("case", "first"),
    [
        ("path-length", ("PATH_LENGTH_EXCEEDED", 2)),
        ("name-excluded", ("EXCLUDED_VIOLATION", 0)),
        ("name-not-permitted", ("PERMITTED_VIOLATION", 0)),
        ("eku-ca", ("INVALID_PURPOSE", 1)),
        ("aki-mismatch", ("UNABLE_TO_GET_ISSUER_CERT_LOCALLY", 0)),
    ],
)
def test_openssl_raises_what_the_declarative_model_missed(case: str, first: tuple[str, int]) -> None:
    chain = build(case)
    for client in CLIENTS:
        errors = _errors(chain, client)
        assert errors and errors[0] == first, (client, errors)


def test_good_chain_verifies_and_the_built_chain_ends_at_the_root() -> None:
    chain = build("good")
    result = openssl.verify(chain.certs, [(chain.root.cert,)], (), pb.AT, openssl.SETTINGS["python"], HOST)
    assert result is not None and result.ok
    assert result.chain == (*chain.certs, chain.root.cert)


def test_security_level_two_rejects_rsa_1024_for_curl_and_python_not_node() -> None:
    """Debian's SECLEVEL=2 (curl, Python) → EE_KEY_TOO_SMALL; Node's own OpenSSL at level 1 accepts."""
    chain = build("weak-key")
    assert _errors(chain, "curl") == [("EE_KEY_TOO_SMALL", 0)]
    assert _errors(chain, "python") == [("EE_KEY_TOO_SMALL", 0)]
    assert _errors(chain, "node") == []


def test_host_name_is_checked_inside_the_verification_for_python_only() -> None:
    chain = build("good")
    assert _errors(chain, "python", host="other.example.test") == [("HOSTNAME_MISMATCH", 0)]
    assert _errors(chain, "python", host=HOST + ".") == [("HOSTNAME_MISMATCH", 0)]
    assert _errors(chain, "python", host="127.0.0.1") == [("IP_ADDRESS_MISMATCH", 0)]
    assert _errors(chain, "curl", host="other.example.test") == []
    assert _errors(chain, "node", host="other.example.test") == []


def test_node_reports_the_last_error_curl_and_python_the_first() -> None:
    chain = build("good")
    leaf_only = Case(chain.certs[:1], chain.root, chain.key)
    result = openssl.verify(leaf_only.certs, [()], (), pb.AT, openssl.SETTINGS["node"], None)
    assert result is not None
    assert [e.name for e in result.errors] == ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]
    assert result.reported(openssl.SETTINGS["node"]).name == "UNABLE_TO_VERIFY_LEAF_SIGNATURE"  # type: ignore[union-attr]
    assert result.reported(openssl.SETTINGS["python"]).name == "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
@pytest.mark.parametrize("edge", ["not_after", "not_before"])
def test_exact_validity_seconds_agree_with_openssl_verify(tmp_path: Path, edge: str) -> None:
    """At t == notAfter OpenSSL says the certificate has expired (RFC 5280 §4.1.2.5 would still accept it),
    one second earlier it has not; at t == notBefore it is valid, one second earlier not yet. The oracle is
    the ``openssl verify -attime`` command."""
    chain = build("good")
    leaf_cert = chain.certs[0]
    root = _pem(tmp_path / "root.pem", [chain.root.cert])
    untrusted = _pem(tmp_path / "ca.pem", list(chain.certs[1:]))
    leaf = _pem(tmp_path / "leaf.pem", [leaf_cert])
    second = timedelta(seconds=1)
    if edge == "not_after":
        cases = [(leaf_cert.not_valid_after_utc - second, None), (leaf_cert.not_valid_after_utc, "CERT_HAS_EXPIRED")]
    else:
        cases = [
            (leaf_cert.not_valid_before_utc - second, "CERT_NOT_YET_VALID"),
            (leaf_cert.not_valid_before_utc, None),
        ]
    texts = {"CERT_HAS_EXPIRED": "certificate has expired", "CERT_NOT_YET_VALID": "certificate is not yet valid"}
    for at, error in cases:
        argv = ["openssl", "verify", "-attime", str(int(at.timestamp())), "-CAfile", root, "-untrusted", untrusted]
        done = subprocess.run([*argv, leaf], capture_output=True, text=True, timeout=30, check=False)
        said = done.stdout + done.stderr
        assert (done.returncode == 0) == (error is None), said
        assert error is None or texts[error] in said, said
        for client in CLIENTS:
            assert _errors(chain, client, at=at) == ([(error, 0)] if error else []), (client, at)


def test_one_store_build_serves_many_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    """The X509_STORE of a trust store is built once and reused (keyed by the store's roots), and a verdict
    is computed once per (chain, store, time, security level, flags, host)."""
    chain = build("good")
    roots = (chain.root.cert,)
    built: list[int] = []
    runs: list[int] = []
    real_store, real_run = openssl._Store, openssl._run

    def counting_store(anchors):  # type: ignore[no-untyped-def]
        built.append(len(anchors))
        return real_store(anchors)

    def counting_run(*args):  # type: ignore[no-untyped-def]
        runs.append(1)
        return real_run(*args)

    monkeypatch.setattr(openssl, "_Store", counting_store)
    monkeypatch.setattr(openssl, "_run", counting_run)
    at = pb.AT + timedelta(seconds=7)
    for _ in range(3):
        for client in CLIENTS:
            openssl.verify(chain.certs, [roots], (), at, openssl.SETTINGS[client], HOST)
            openssl.verify(chain.certs[:1], [roots], (), at, openssl.SETTINGS[client], HOST)
    assert built == [1]
    assert len(runs) == 2  # one per chain, shared by the three clients (no intermediate anchor, no level error)


# --- 2. predictions from files ----------------------------------------------------------------------------

EXPECTED = {  # problem key, and the text each client prints (Python's line number stripped)
    "path-length": (
        "path-length",
        "curl: (60) SSL certificate problem: path length constraint exceeded",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: path length constraint exceeded",
        "PATH_LENGTH_EXCEEDED: path length constraint exceeded",
    ),
    "name-excluded": (
        "name-constraints",
        "curl: (60) SSL certificate problem: excluded subtree violation",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: excluded subtree violation",
        "UNSPECIFIED: excluded subtree violation",
    ),
    "name-not-permitted": (
        "name-constraints",
        "curl: (60) SSL certificate problem: permitted subtree violation",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: permitted subtree violation",
        "UNSPECIFIED: permitted subtree violation",
    ),
    "eku-ca": (
        "ca-eku",
        "curl: (60) SSL certificate problem: unsuitable certificate purpose",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unsuitable certificate purpose",
        "INVALID_PURPOSE: unsuitable certificate purpose",
    ),
}


def _predict_files(tmp_path: Path, case: Case, at: datetime, name: str = HOST) -> dict[str, ClientVerdict]:
    chain = _pem(tmp_path / "chain.pem", list(case.certs))
    root = _pem(tmp_path / "root.pem", [case.root.cert])
    d = diagnose(files=[chain], name=name, ca_files=[root], at=at, revocation=False, fetch_aia=False)
    return {v.client: v for v in predict(d, CLIENTS)}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_predictions_carry_openssl_errors(tmp_path: Path, case: str) -> None:
    problem, *texts = EXPECTED[case]
    verdicts = _predict_files(tmp_path, build(case), pb.AT)
    for client, text in zip(CLIENTS, texts, strict=True):
        v = verdicts[client]
        assert not v.accepts and v.problem == problem, (client, v)
        assert (v.error or "").replace(" (_ssl.c:1006)", "") == text, (client, v.error)
        assert v.family == "usage"
    assert "path-length-exceeded" in verdicts["curl"].because or case != "path-length"


def test_prediction_at_the_not_after_second_is_expired(tmp_path: Path) -> None:
    case = build("good")
    verdicts = _predict_files(tmp_path, case, case.certs[0].not_valid_after_utc)
    assert {c: (v.accepts, v.problem) for c, v in verdicts.items()} == {c: (False, "expired") for c in CLIENTS}
    assert verdicts["node"].error == "CERT_HAS_EXPIRED: certificate has expired"


def test_trailing_dot_host_prediction(tmp_path: Path) -> None:
    verdicts = _predict_files(tmp_path, build("good"), pb.AT, name=HOST + ".")
    assert verdicts["curl"].accepts and verdicts["node"].accepts
    assert not verdicts["python"].accepts and verdicts["python"].problem == "hostname-trailing-dot"
    assert f"certificate is not valid for '{HOST}.'" in (verdicts["python"].error or "")


# --- 3. against the real clients --------------------------------------------------------------------------

REAL_CASES = (
    "good",
    "path-length",
    "name-excluded",
    "name-not-permitted",
    "eku-ca",
    "aki-mismatch",
    "expired",
    "partial-wildcard",
)


@dataclass(frozen=True)
class Served:
    case: str
    hostname: str
    port: int
    root: str


def _https(ctx: ssl.SSLContext) -> hs.Handler:
    """A TLS server that answers one HTTP request with an empty 200 (curl counts only that as success)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.settimeout(10)
            with contextlib.suppress(OSError, ssl.SSLError):
                hs.read_http_request(tls_conn)  # type: ignore[arg-type]
                tls_conn.sendall(hs.http_head("200 OK", Content_Length="0"))

    return handle


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Served]]:
    """One TLS server on 127.0.0.1 per case, each serving its chain (valid now unless expired)."""
    now = datetime.now(UTC).replace(microsecond=0)
    workdir = tmp_path_factory.mktemp("openssl-verifier")
    servers: list[hs.RawServer] = []
    out: list[Served] = []
    for case in REAL_CASES:
        built = build(case, now)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        chain = _pem(workdir / f"{case}-chain.pem", list(built.certs))
        key = workdir / f"{case}-key.pem"
        key.write_bytes(
            built.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx.load_cert_chain(chain, str(key))
        server = hs.RawServer(_https(ctx))
        servers.append(server)
        root = _pem(workdir / f"{case}-root.pem", [built.root.cert])
        out.append(Served(case, PARTIAL_HOST if case == "partial-wildcard" else HOST, server.port, root))
        if case == "good":
            out.append(Served("trailing-dot", HOST + ".", server.port, root))
            out.append(Served("ip-target", "127.0.0.1", server.port, root))
            # only the intermediate trusted: curl's PARTIAL_CHAIN accepts it as an anchor, Python and Node do not
            anchor = _pem(workdir / "intermediate-anchor.pem", [built.certs[1]])
            out.append(Served("intermediate-anchor", HOST, server.port, anchor))
    yield out
    for server in servers:
        server.close()


def _real(cid: str, probes: list[Probe]) -> list[Outcome]:
    module = {"curl": "curl", "python": "python", "node": "node"}[cid]
    client = importlib.import_module(f"realclients.{module}").CLIENT
    reason = client.unavailable()
    if reason:
        pytest.skip(f"{cid}: {reason}")
    return client.run(probes)


def _predict_live(s: Served) -> dict[str, ClientVerdict]:
    d = diagnose(s.hostname, port=s.port, resolve=["127.0.0.1"], ca_files=[s.root], timeout=5.0, revocation=False)
    return {v.client: v for v in predict(d, CLIENTS)}


@pytest.mark.parametrize("cid", CLIENTS)
def test_predictions_match_real_clients(served: list[Served], cid: str) -> None:
    probes = [Probe(s.case, s.hostname, "127.0.0.1", s.port, s.root) for s in served]
    outcomes = _real(cid, probes)
    problems = []
    rejected = []
    for s, outcome in zip(served, outcomes, strict=True):
        predicted = _predict_live(s)[cid]
        why = mismatch(cid, predicted, outcome)
        if why:
            problems.append(f"{s.case}: {why}")
        if not outcome.accepted:
            rejected.append(s.case)
    assert not problems, "\n".join(problems)
    # the cases the declarative model got wrong are rejected by every real client
    assert {"path-length", "name-excluded", "name-not-permitted", "eku-ca", "aki-mismatch", "expired"} <= set(rejected)
    assert ("trailing-dot" in rejected) == (cid == "python")
    assert ("intermediate-anchor" in rejected) == (cid != "curl")
    assert "ip-target" in rejected


# --- wiring -----------------------------------------------------------------------------------------------


def test_every_problem_the_verifier_maps_to_has_a_family_and_a_text_in_each_openssl_profile() -> None:
    from certdoctor.clients import FAMILIES, PROBLEMS, profile

    keys = {*openssl._PROBLEM_BY_NAME.values(), "openssl-other", "eku", "ca-eku", "expired", "root-expired"}
    for key in keys:
        assert key in PROBLEMS and key in FAMILIES, key
        for cid in CLIENTS:
            assert key in profile(cid).messages, (cid, key)


def test_without_the_library_the_declarative_model_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenSSL 3 libcrypto (e.g. macOS without Homebrew): the profiles' declarative rules still predict."""
    monkeypatch.setattr(openssl, "_LIB", None)
    case = build("expired", pb.AT)
    verdicts = _predict_files(tmp_path, case, pb.AT)
    assert verdicts["curl"].problem == "expired" and verdicts["node"].problem == "expired"
    assert verdicts["python"].error == (
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)"
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_node_wildcard_rule_agrees_with_node_check_server_identity() -> None:
    """The engine's model of Node's partial wildcards against ``tls.checkServerIdentity`` itself."""
    from certdoctor.clients.engine import node_wildcard_match

    cases = [
        ("api*.example.test", "api1.example.test"),
        ("api*.example.test", "api.example.test"),
        ("*i.example.test", "api.example.test"),
        ("a*i.example.test", "ai.example.test"),
        ("b*i.example.test", "api.example.test"),
        ("*.example.test", "api.example.test"),
        ("*.example.test", "a.b.example.test"),
        ("*.test", "x.test"),
        ("x*.test", "xy.test"),
        ("xn--*.example.test", "xn--a.example.test"),
        ("a**.example.test", "abc.example.test"),
        ("API*.Example.test", "api1.example.test"),
        ("api*.example.test", "api1.example.test."),
        ("api*.example.test", "api1.other.test"),
    ]
    program = (
        "const tls = require('tls'); const cases = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(cases.map(([p, h]) =>"
        " tls.checkServerIdentity(h, {subject: {}, subjectaltname: 'DNS:' + p}) === undefined)));"
    )
    done = subprocess.run(
        ["node", "-e", program, json.dumps(cases)], capture_output=True, text=True, timeout=60, check=True
    )
    real = json.loads(done.stdout)
    assert [node_wildcard_match(p, h) for p, h in cases] == real
