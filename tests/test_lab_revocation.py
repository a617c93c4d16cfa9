"""The lab's revocation infrastructure: OCSP responders, CRLs, stapling, and the revocation scenarios.

Cross-checked with the ``openssl`` CLI (ocsp, verify -crl_check, s_client -status) and with cryptography,
over real loopback connections to the session lab.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import io
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

import jsonschemas
from certdoctor.lab import SCENARIOS, Lab
from certdoctor.lab import foreground as lab_foreground
from certdoctor.lab.pki import REVOCATION_SLUGS, cert_pem

NEW_SCENARIOS = {
    "revoked-ocsp": {"revoked", "stapling-absent"},
    "revoked-crl": {"revoked"},
    "revoked-intermediate": {"revoked", "stapling-absent"},
    "good-stapled": set(),
    "stale-staple": {"ocsp-stale"},
    "must-staple": {"must-staple-missing"},
    "ocsp-unreachable": {"revocation-unknown", "stapling-absent"},
    "ocsp-garbage": {"ocsp-invalid", "revocation-unknown", "stapling-absent"},
}
HOUR = dt.timedelta(hours=1)
WEEK = dt.timedelta(days=7)
SLACK = dt.timedelta(minutes=30)  # the lab is made once per test session; the suite runs for minutes


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("no openssl binary on this machine")
    return path


def run_openssl(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([_openssl(), *args], input=stdin, capture_output=True, text=True, timeout=30, check=False)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def near(value: dt.datetime, expected: dt.datetime) -> bool:
    return abs(value - expected) <= SLACK


def leaf(lab: Lab, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(lab.endpoints[name].chain_path.read_bytes())


def ca(lab: Lab, slug: str) -> x509.Certificate:
    assert lab.pki is not None
    return lab.pki.issuers[slug].cert


def write_pem(directory: Path, name: str, *certs: x509.Certificate) -> str:
    path = directory / name
    path.write_bytes(b"".join(cert_pem(c) for c in certs))
    return str(path)


def aia_port(lab: Lab) -> int:
    return int(lab.aia_base_url.rsplit(":", 1)[1])


def http_request(
    lab: Lab, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", aia_port(lab), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def ocsp_request(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None, nonce: bytes = b""
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def post_ocsp(lab: Lab, url: str, der: bytes) -> tuple[int, str, bytes]:
    return http_request(lab, "POST", path_of(url), der, {"Content-Type": "application/ocsp-request"})


def aia_urls(cert: x509.Certificate) -> dict[str, list[str]]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return {}
    out: dict[str, list[str]] = {}
    for description in aia:
        out.setdefault(description.access_method.dotted_string, []).append(description.access_location.value)
    return out


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in point.full_name or ()]


OCSP_OID = x509.AuthorityInformationAccessOID.OCSP.dotted_string
CA_ISSUERS_OID = x509.AuthorityInformationAccessOID.CA_ISSUERS.dotted_string


# --- the table and the certificates ---------------------------------------------------------------------


def test_revocation_scenarios_are_appended_at_the_end() -> None:
    names = SCENARIOS.names()
    after_hostile = names.index("evil-fields") + 1  # later groups of scenarios come after them
    assert names[after_hostile : after_hostile + len(NEW_SCENARIOS)] == list(NEW_SCENARIOS)
    for name, expected in NEW_SCENARIOS.items():
        scenario = SCENARIOS[name]
        assert scenario.expected == frozenset(expected)
        assert not scenario.hostile
        assert scenario.hostname == f"{name}.certdoctor.test"


def test_port_base_keeps_the_old_ports(tmp_path: Path) -> None:
    lab = Lab(tmp_path, port_base=30000)
    assert lab._port_for(SCENARIOS["good-rsa"]) == 30001
    assert lab._port_for(SCENARIOS["evil-fields"]) == 30001 + SCENARIOS.names().index("evil-fields")
    assert lab._port_for(SCENARIOS["revoked-ocsp"]) == 30001 + SCENARIOS.names().index("evil-fields") + 1


def test_revocation_cas(lab: Lab) -> None:
    assert lab.pki is not None
    root = lab.root
    for slug, name in (
        ("lab-revocation-ca", "certdoctor Lab Revocation CA"),
        ("lab-revoked-ca", "certdoctor Lab Revoked CA"),
    ):
        cert = ca(lab, slug)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        assert cert.issuer == root.subject
        assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=5 * 365)
        assert aia_urls(cert) == {
            OCSP_OID: [lab.ocsp_url("lab-root")],
            CA_ISSUERS_OID: [f"{lab.aia_base_url}/lab-root.cer"],
        }
        assert crl_urls(cert) == [lab.crl_url("lab-root")]
        assert lab.pki.status("lab-root", cert.serial_number)[0] == (
            ocsp.OCSPCertStatus.REVOKED if slug == "lab-revoked-ca" else ocsp.OCSPCertStatus.GOOD
        )
    revoked_ca = ca(lab, "lab-revoked-ca")
    when, reason = lab.revoked[revoked_ca.serial_number]
    assert reason == x509.ReasonFlags.ca_compromise
    assert when == lab.pki.now - dt.timedelta(days=2)
    # The older CAs did not change: no revocation pointers.
    for slug in ("lab-rsa-ca", "lab-ecdsa-ca", "lab-expired-ca"):
        assert aia_urls(ca(lab, slug)) == {CA_ISSUERS_OID: [f"{lab.aia_base_url}/lab-root.cer"]}
        assert crl_urls(ca(lab, slug)) == []


def test_delegated_ocsp_signer(lab: Lab) -> None:
    assert lab.pki is not None
    signer = lab.pki.ocsp_signer.cert
    issuer = ca(lab, "lab-revocation-ca")
    assert signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "certdoctor Lab Revocation CA OCSP Responder"
    )
    assert signer.issuer == issuer.subject
    signer.verify_directly_issued_by(issuer)
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    ext = signer.extensions
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert isinstance(ext.get_extension_for_class(x509.OCSPNoCheck).value, x509.OCSPNoCheck)
    assert signer.not_valid_before_utc == lab.pki.now - dt.timedelta(days=1)
    assert signer.not_valid_after_utc - signer.not_valid_before_utc == dt.timedelta(days=365)
    assert lab.pki.status("lab-revocation-ca", signer.serial_number)[0] == ocsp.OCSPCertStatus.GOOD


def test_leaf_revocation_pointers(lab: Lab) -> None:
    revocation_cer = f"{lab.aia_base_url}/lab-revocation-ca.cer"
    expected_ocsp = {
        "revoked-ocsp": lab.ocsp_url("lab-revocation-ca"),
        "revoked-crl": None,
        "revoked-intermediate": lab.ocsp_url("lab-revoked-ca"),
        "good-stapled": lab.ocsp_url("lab-revocation-ca"),
        "stale-staple": lab.ocsp_url("lab-revocation-ca"),
        "must-staple": lab.ocsp_url("lab-revocation-ca"),
        "ocsp-unreachable": lab.unreachable_ocsp_url,
        "ocsp-garbage": f"{lab.aia_base_url}/ocsp-garbage",
    }
    for name, ocsp_url in expected_ocsp.items():
        cert = leaf(lab, name)
        issuer_slug = "lab-revoked-ca" if name == "revoked-intermediate" else "lab-revocation-ca"
        urls = aia_urls(cert)
        assert urls[CA_ISSUERS_OID] == [f"{lab.aia_base_url}/{issuer_slug}.cer"]
        assert urls.get(OCSP_OID) == ([ocsp_url] if ocsp_url else None), name
        assert crl_urls(cert) == ([lab.crl_url("lab-revocation-ca")] if name == "revoked-crl" else []), name
        assert cert.issuer == ca(lab, issuer_slug).subject
        assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        ) == [f"{name}.certdoctor.test"]
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.SERVER_AUTH
        ]
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=90)
        chain = x509.load_pem_x509_certificates(lab.endpoints[name].chain_path.read_bytes())
        assert chain[1:] == [ca(lab, issuer_slug)]
    assert revocation_cer in aia_urls(leaf(lab, "good-stapled"))[CA_ISSUERS_OID]
    assert lab.unreachable_ocsp_url.startswith("http://127.0.0.1:") and lab.unreachable_ocsp_url.endswith("/ocsp")

    feature = leaf(lab, "must-staple").extensions.get_extension_for_class(x509.TLSFeature)
    assert not feature.critical and list(feature.value) == [x509.TLSFeatureType.status_request]
    for name in ("good-stapled", "good-rsa", "revoked-ocsp"):
        with pytest.raises(x509.ExtensionNotFound):
            leaf(lab, name).extensions.get_extension_for_class(x509.TLSFeature)
    # An existing leaf is exactly as before: caIssuers only, no CRL distribution point.
    assert aia_urls(leaf(lab, "good-rsa")) == {CA_ISSUERS_OID: [f"{lab.aia_base_url}/lab-rsa-ca.cer"]}
    assert crl_urls(leaf(lab, "good-rsa")) == []


def test_revoked_serials(lab: Lab) -> None:
    assert lab.pki is not None
    revoked = lab.revoked
    day_ago = lab.pki.now - dt.timedelta(days=1)
    assert revoked[leaf(lab, "revoked-ocsp").serial_number] == (day_ago, x509.ReasonFlags.key_compromise)
    assert revoked[leaf(lab, "revoked-crl").serial_number] == (day_ago, x509.ReasonFlags.superseded)
    assert leaf(lab, "good-stapled").serial_number not in revoked
    assert leaf(lab, "revoked-intermediate").serial_number not in revoked
    assert len(revoked) == 3
    status, _ = lab.pki.status("lab-revoked-ca", leaf(lab, "revoked-intermediate").serial_number)
    assert status == ocsp.OCSPCertStatus.GOOD


# --- OCSP, cross-checked with `openssl ocsp` ------------------------------------------------------------


def test_openssl_ocsp_revoked_leaf_via_delegated_signer(lab: Lab, tmp_path: Path) -> None:
    issuer = write_pem(tmp_path, "issuer.pem", ca(lab, "lab-revocation-ca"))
    result = run_openssl(
        "ocsp",
        "-issuer",
        issuer,
        "-cert",
        str(lab.endpoints["revoked-ocsp"].chain_path),
        "-url",
        lab.ocsp_url("lab-revocation-ca"),
        "-CAfile",
        str(lab.root_path),
        "-resp_text",
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Response verify OK" in out
    assert f"{lab.endpoints['revoked-ocsp'].chain_path}: revoked" in out
    assert "Reason: keyCompromise" in out
    assert "Responder Id: " in out and "Responder Id: O = " not in out  # byKeyHash
    assert "certdoctor Lab Revocation CA OCSP Responder" in out  # the signer certificate is included
    assert "OCSP Nonce" in out  # echoed


def test_openssl_ocsp_good_leaf(lab: Lab, tmp_path: Path) -> None:
    issuer = write_pem(tmp_path, "issuer.pem", ca(lab, "lab-revocation-ca"))
    leaf_path = str(lab.endpoints["good-stapled"].chain_path)
    for digest in ("-sha1", "-sha256"):
        result = run_openssl(
            "ocsp", digest, "-issuer", issuer, "-cert", leaf_path, "-url", lab.ocsp_url("lab-revocation-ca"),
            "-CAfile", str(lab.root_path), "-no_nonce",
        )  # fmt: skip
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert f"{leaf_path}: good" in out and "Response verify OK" in out


def test_openssl_ocsp_revoked_intermediate_at_the_root(lab: Lab, tmp_path: Path) -> None:
    intermediate = write_pem(tmp_path, "revoked-ca.pem", ca(lab, "lab-revoked-ca"))
    result = run_openssl(
        "ocsp", "-issuer", str(lab.root_path), "-cert", intermediate, "-url", lab.ocsp_url("lab-root"),
        "-CAfile", str(lab.root_path), "-resp_text",
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"{intermediate}: revoked" in out and "Reason: cACompromise" in out
    assert "Response verify OK" in out
    assert "Responder Id: O = certdoctor Lab, CN = certdoctor Lab Root CA" in out  # byName


def test_openssl_ocsp_revoked_ca_signs_its_own_responses(lab: Lab, tmp_path: Path) -> None:
    issuer = write_pem(tmp_path, "revoked-ca.pem", ca(lab, "lab-revoked-ca"))
    leaf_path = str(lab.endpoints["revoked-intermediate"].chain_path)
    result = run_openssl(
        "ocsp", "-issuer", issuer, "-verify_other", issuer, "-cert", leaf_path,
        "-url", lab.ocsp_url("lab-revoked-ca"), "-CAfile", str(lab.root_path),
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"{leaf_path}: good" in out and "Response verify OK" in out
    # Asking the wrong CA's responder: unauthorized.
    wrong = run_openssl(
        "ocsp", "-issuer", issuer, "-cert", str(lab.endpoints["revoked-ocsp"].chain_path),
        "-url", lab.ocsp_url("lab-revoked-ca"), "-CAfile", str(lab.root_path),
    )  # fmt: skip
    assert "Responder Error: unauthorized (6)" in wrong.stdout + wrong.stderr


# --- OCSP, checked with cryptography --------------------------------------------------------------------


def test_ocsp_post_responses_in_detail(lab: Lab) -> None:
    assert lab.pki is not None
    cases = [
        ("lab-revocation-ca", leaf(lab, "revoked-ocsp"), ocsp.OCSPCertStatus.REVOKED, lab.pki.ocsp_signer.cert),
        ("lab-revocation-ca", leaf(lab, "good-stapled"), ocsp.OCSPCertStatus.GOOD, lab.pki.ocsp_signer.cert),
        ("lab-revoked-ca", leaf(lab, "revoked-intermediate"), ocsp.OCSPCertStatus.GOOD, ca(lab, "lab-revoked-ca")),
        ("lab-root", ca(lab, "lab-revoked-ca"), ocsp.OCSPCertStatus.REVOKED, lab.root),
        ("lab-root", ca(lab, "lab-rsa-ca"), ocsp.OCSPCertStatus.GOOD, lab.root),
    ]
    for slug, cert, status, signer in cases:
        issuer = ca(lab, slug)
        for algorithm in (hashes.SHA1(), hashes.SHA256()):
            code, ctype, body = post_ocsp(lab, lab.ocsp_url(slug), ocsp_request(cert, issuer, algorithm, b"n" * 16))
            assert (code, ctype) == (200, "application/ocsp-response")
            response = ocsp.load_der_ocsp_response(body)
            assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            assert response.certificate_status == status, (slug, cert.subject)
            assert response.serial_number == cert.serial_number
            assert isinstance(response.hash_algorithm, type(algorithm))
            assert isinstance(response.signature_hash_algorithm, hashes.SHA256)
            assert near(response.this_update_utc, now() - HOUR)
            assert response.next_update_utc is not None and near(response.next_update_utc, now() + WEEK)
            assert near(response.produced_at_utc, now())
            assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
            if slug == "lab-root":
                assert response.responder_name == lab.root.subject and response.responder_key_hash is None
                assert response.certificates == []
            else:
                ski = x509.SubjectKeyIdentifier.from_public_key(signer.public_key())  # type: ignore[arg-type]
                assert response.responder_key_hash == ski.digest and response.responder_name is None
                assert response.certificates == ([signer] if slug == "lab-revocation-ca" else [])
            key = signer.public_key()
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
            else:
                from cryptography.hazmat.primitives.asymmetric import padding

                key.verify(  # type: ignore[call-arg, union-attr]
                    response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256()
                )
            if status == ocsp.OCSPCertStatus.REVOKED:
                when, reason = lab.revoked[cert.serial_number]
                assert response.revocation_time_utc == when and response.revocation_reason == reason


def test_ocsp_unknown_unauthorized_malformed_and_404(lab: Lab) -> None:
    issuer = ca(lab, "lab-revocation-ca")
    # A serial the lab never issued under that CA: unknown.
    stranger = leaf(lab, "good-stapled")
    fake = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            *lab.pki.cert_id_hashes("lab-revocation-ca", hashes.SHA1()),  # type: ignore[union-attr]
            stranger.serial_number + 1,
            hashes.SHA1(),
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = ocsp.load_der_ocsp_response(post_ocsp(lab, lab.ocsp_url("lab-revocation-ca"), fake)[2])
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # A certificate of another CA (lab-rsa-ca) sent to this responder: unauthorized.
    other = ocsp_request(leaf(lab, "good-rsa"), ca(lab, "lab-rsa-ca"))
    response = ocsp.load_der_ocsp_response(post_ocsp(lab, lab.ocsp_url("lab-revocation-ca"), other)[2])
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    # Not an OCSP request: malformedRequest.
    for junk in (b"", b"\x30\x03\x02\x01\x01", b"hello"):
        code, ctype, body = post_ocsp(lab, lab.ocsp_url("lab-root"), junk)
        assert (code, ctype) == (200, "application/ocsp-response")
        assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # No such responder.
    good = ocsp_request(stranger, issuer)
    assert post_ocsp(lab, f"{lab.aia_base_url}/ocsp/lab-rsa-ca", good)[0] == 404
    assert post_ocsp(lab, f"{lab.aia_base_url}/ocsp/nope", good)[0] == 404


def _request_with_base64_specials(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, str]:
    """A DER request whose base64 contains '/', '+' and '=' (found by varying the nonce)."""
    for i in range(10_000):
        der = ocsp_request(cert, issuer, nonce=i.to_bytes(4, "big") + b"certdoctor")
        text = base64.b64encode(der).decode()
        if "/" in text and "+" in text and text.endswith("="):
            return der, text
    raise AssertionError("no suitable nonce")


@pytest.mark.parametrize("route", ["ocsp", "ocsp-get-only"])
def test_ocsp_get(lab: Lab, route: str) -> None:
    cert, issuer = leaf(lab, "revoked-ocsp"), ca(lab, "lab-revocation-ca")
    der, text = _request_with_base64_specials(cert, issuer)
    base = path_of(lab.ocsp_url("lab-revocation-ca", route=route))  # type: ignore[arg-type]
    for encoded in (urllib.parse.quote(text, safe=""), text):
        code, ctype, body = http_request(lab, "GET", f"{base}/{encoded}")
        assert (code, ctype) == (200, "application/ocsp-response")
        response = ocsp.load_der_ocsp_response(body)
        assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert response.serial_number == cert.serial_number
    code, _, body = http_request(lab, "GET", f"{base}/not-base64!")
    assert code == 200
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    code, _, body = post_ocsp(lab, lab.ocsp_url("lab-revocation-ca", route=route), der)  # type: ignore[arg-type]
    if route == "ocsp-get-only":
        assert code == 405
    else:
        assert code == 200 and ocsp.load_der_ocsp_response(body).serial_number == cert.serial_number


def test_ocsp_slow_never_answers(lab: Lab) -> None:
    with socket.create_connection(("127.0.0.1", aia_port(lab)), timeout=5) as sock:
        sock.sendall(b"GET /ocsp-slow/lab-root/AAAA HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert path_of(lab.ocsp_url("lab-root", route="ocsp-slow")) == "/ocsp-slow/lab-root"


def test_ocsp_garbage(lab: Lab) -> None:
    assert lab.ocsp_garbage_url == f"{lab.aia_base_url}/ocsp-garbage"
    bodies = []
    for method, path in (("GET", "/ocsp-garbage"), ("POST", "/ocsp-garbage"), ("PUT", "/ocsp-garbage/x/y")):
        code, ctype, body = http_request(lab, method, path, b"x" if method != "GET" else None)
        assert (code, ctype) == (200, "application/ocsp-response")
        assert len(body) == 2048 and body[0] != 0x30
        with pytest.raises(ValueError):
            ocsp.load_der_ocsp_response(body)
        bodies.append(body)
    assert len(set(bodies)) == 3
    # Other routes still refuse methods other than GET, HEAD and POST.
    assert http_request(lab, "PUT", "/lab-root.cer", b"x")[0] == 405
    assert http_request(lab, "DELETE", "/nope")[0] == 405
    assert http_request(lab, "PUT", "/ocsp/lab-root", b"x")[0] == 405


def test_unreachable_responder_refuses(lab: Lab) -> None:
    url = urllib.parse.urlsplit(lab.unreachable_ocsp_url)
    assert url.hostname == "127.0.0.1" and url.path == "/ocsp"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((url.hostname, url.port), timeout=5).close()


def test_stop_releases_the_unreachable_port_and_slow_connections(tmp_path: Path) -> None:
    lab = Lab(tmp_path, include_hostile=False)
    lab.start()
    port = urllib.parse.urlsplit(lab.unreachable_ocsp_url).port
    assert port is not None
    probe = socket.socket()
    with pytest.raises(OSError):
        probe.bind(("127.0.0.1", port))
    probe.close()
    held = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", aia_port(lab)), timeout=5)
        sock.sendall(b"POST /ocsp-slow/lab-root HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")
        held.append(sock)
    time.sleep(0.2)
    started = time.perf_counter()
    lab.stop()
    assert time.perf_counter() - started < 2
    for sock in held:
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""  # closed without an answer
        sock.close()
    probe = socket.socket()
    probe.bind(("127.0.0.1", port))
    probe.close()


def test_ocsp_response_helper(lab: Lab) -> None:
    assert lab.pki is not None
    cert = leaf(lab, "good-stapled")
    this_update = now().replace(microsecond=0) - dt.timedelta(days=10)
    next_update = now().replace(microsecond=0) - dt.timedelta(days=3)
    response = ocsp.load_der_ocsp_response(
        lab.ocsp_response(cert, "lab-revocation-ca", this_update=this_update, next_update=next_update)
    )
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.this_update_utc == this_update and response.next_update_utc == next_update
    assert response.certificates == [lab.pki.ocsp_signer.cert]
    default = ocsp.load_der_ocsp_response(lab.ocsp_response(leaf(lab, "revoked-ocsp"), "lab-revocation-ca"))
    assert default.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert near(default.this_update_utc, now() - HOUR)
    root_signed = ocsp.load_der_ocsp_response(lab.ocsp_response(ca(lab, "lab-revoked-ca"), "lab-root"))
    assert root_signed.responder_name == lab.root.subject
    with pytest.raises(ValueError):
        lab.ocsp_response(leaf(lab, "good-rsa"), "lab-revocation-ca")


# --- CRLs -----------------------------------------------------------------------------------------------


def test_crls(lab: Lab) -> None:
    expected = {
        "lab-root": {ca(lab, "lab-revoked-ca").serial_number: x509.ReasonFlags.ca_compromise},
        "lab-revocation-ca": {
            leaf(lab, "revoked-ocsp").serial_number: x509.ReasonFlags.key_compromise,
            leaf(lab, "revoked-crl").serial_number: x509.ReasonFlags.superseded,
        },
        "lab-revoked-ca": {},
    }
    assert set(expected) == set(REVOCATION_SLUGS)
    for slug, entries in expected.items():
        issuer = ca(lab, slug)
        code, ctype, der = http_request(lab, "GET", path_of(lab.crl_url(slug)))
        assert (code, ctype) == (200, "application/pkix-crl")
        code, ctype, pem = http_request(lab, "GET", path_of(lab.crl_url(slug, pem=True)))
        assert (code, ctype) == (200, "application/x-pem-file") and pem.startswith(b"-----BEGIN X509 CRL-----")
        for crl in (x509.load_der_x509_crl(der), x509.load_pem_x509_crl(pem)):
            assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            assert crl.issuer == issuer.subject
            assert isinstance(crl.signature_hash_algorithm, hashes.SHA256)
            assert near(crl.last_update_utc, now() - HOUR)
            assert crl.next_update_utc is not None and near(crl.next_update_utc, now() + WEEK)
            assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > 0
            aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            assert aki.key_identifier == ski.digest
            got = {r.serial_number: r.extensions.get_extension_for_class(x509.CRLReason).value.reason for r in crl}
            assert got == entries
            for revoked in crl:
                assert revoked.revocation_date_utc == lab.revoked[revoked.serial_number].time
    assert http_request(lab, "GET", "/crl/lab-rsa-ca.crl")[0] == 404


def test_openssl_verify_with_crls(lab: Lab, tmp_path: Path) -> None:
    def crl_file(slug: str) -> str:
        path = tmp_path / f"{slug}.crl.pem"
        path.write_bytes(http_request(lab, "GET", path_of(lab.crl_url(slug, pem=True)))[2])
        return str(path)

    root = str(lab.root_path)
    revocation_ca = write_pem(tmp_path, "revocation-ca.pem", ca(lab, "lab-revocation-ca"))
    leaf_only = {name: write_pem(tmp_path, f"{name}.pem", leaf(lab, name)) for name in NEW_SCENARIOS}
    crl = crl_file("lab-revocation-ca")

    revoked = run_openssl(
        "verify", "-crl_check", "-CAfile", root, "-untrusted", revocation_ca, "-CRLfile", crl, leaf_only["revoked-crl"]
    )
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr
    good = run_openssl(
        "verify", "-crl_check", "-CAfile", root, "-untrusted", revocation_ca, "-CRLfile", crl, leaf_only["good-stapled"]
    )
    assert good.returncode == 0 and f"{leaf_only['good-stapled']}: OK" in good.stdout

    revoked_ca = write_pem(tmp_path, "revoked-ca.pem", ca(lab, "lab-revoked-ca"))
    intermediate = run_openssl(
        "verify", "-crl_check_all", "-CAfile", root, "-untrusted", revoked_ca,
        "-CRLfile", crl_file("lab-root"), "-CRLfile", crl_file("lab-revoked-ca"), leaf_only["revoked-intermediate"],
    )  # fmt: skip
    out = intermediate.stdout + intermediate.stderr
    assert intermediate.returncode != 0
    assert re.search(r"error 23 at 1 depth lookup: certificate revoked", out), out
    # Only the leaf's own CRL: the leaf itself is fine.
    leaf_level = run_openssl(
        "verify", "-crl_check", "-CAfile", root, "-untrusted", revoked_ca,
        "-CRLfile", crl_file("lab-revoked-ca"), leaf_only["revoked-intermediate"],
    )  # fmt: skip
    assert leaf_level.returncode == 0, leaf_level.stdout + leaf_level.stderr


# --- stapling -------------------------------------------------------------------------------------------


def s_client_status(lab: Lab, name: str) -> str:
    ep = lab.endpoints[name]
    result = run_openssl(
        "s_client", "-connect", f"127.0.0.1:{ep.port}", "-servername", ep.hostname, "-status",
        "-CAfile", str(lab.root_path),
    )  # fmt: skip
    return result.stdout + result.stderr


def _openssl_time(out: str, label: str) -> dt.datetime:
    match = re.search(rf"{label}: (\w{{3}}) +(\d+) (\d\d:\d\d:\d\d) (\d{{4}}) GMT", out)
    assert match, out
    month, day, clock, year = match.groups()
    return dt.datetime.strptime(f"{month} {day} {clock} {year}", "%b %d %H:%M:%S %Y").replace(tzinfo=dt.UTC)


def test_s_client_sees_a_fresh_staple(lab: Lab) -> None:
    out = s_client_status(lab, "good-stapled")
    assert "OCSP Response Status: successful (0x0)" in out
    assert "Cert Status: good" in out
    assert "certdoctor Lab Revocation CA OCSP Responder" in out
    assert "Verify return code: 0 (ok)" in out
    assert near(_openssl_time(out, "This Update"), now() - HOUR)
    assert near(_openssl_time(out, "Next Update"), now() + WEEK)


def test_s_client_sees_a_stale_staple(lab: Lab) -> None:
    out = s_client_status(lab, "stale-staple")
    assert "OCSP Response Status: successful (0x0)" in out and "Cert Status: good" in out
    next_update = _openssl_time(out, "Next Update")
    assert next_update < now() and near(next_update, now() - dt.timedelta(days=3))
    assert near(_openssl_time(out, "This Update"), now() - dt.timedelta(days=10))


@pytest.mark.parametrize("name", ["must-staple", "revoked-ocsp"])
def test_s_client_no_staple(lab: Lab, name: str) -> None:
    out = s_client_status(lab, name)
    assert "OCSP response: no response sent" in out
    assert "Verify return code: 0 (ok)" in out


def _blocking(sock: socket.socket, timeout: int = 10) -> socket.socket:
    """pyOpenSSL wants a blocking socket; a kernel receive timeout keeps a stuck read from hanging."""
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", timeout, 0))
    return sock


def _pyopenssl_staple(lab: Lab, name: str, *, request_status: bool = True) -> tuple[bytes, bytes]:
    """(the staple, the HTTP answer) as a pyOpenSSL client sees them (staple b"" when there is none)."""
    ep = lab.endpoints[name]
    seen: list[bytes] = []

    def callback(conn: SSL.Connection, staple: bytes, data: object) -> bool:
        seen.append(staple)
        return True

    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.load_verify_locations(str(lab.root_path))
    ctx.set_verify(SSL.VERIFY_PEER)
    ctx.set_ocsp_client_callback(callback)
    with socket.create_connection(("127.0.0.1", ep.port), timeout=10) as sock:
        conn = SSL.Connection(ctx, _blocking(sock))
        conn.set_tlsext_host_name(ep.hostname.encode())
        if request_status:
            conn.request_ocsp()
        conn.set_connect_state()
        conn.do_handshake()
        conn.sendall(f"GET / HTTP/1.1\r\nHost: {ep.hostname}\r\n\r\n".encode())
        answer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except (SSL.ZeroReturnError, SSL.SysCallError):
                break
            if not chunk:
                break
            answer += chunk
    return (seen[0] if seen else b""), answer


def test_staple_content(lab: Lab) -> None:
    staple, answer = _pyopenssl_staple(lab, "good-stapled")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"certdoctor lab: good-stapled (127.0.0.1)" in answer
    response = ocsp.load_der_ocsp_response(staple)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf(lab, "good-stapled").serial_number
    assert response.certificates[0].subject == lab.pki.ocsp_signer.cert.subject  # type: ignore[union-attr]
    stale = ocsp.load_der_ocsp_response(_pyopenssl_staple(lab, "stale-staple")[0])
    assert stale.next_update_utc is not None and stale.next_update_utc < now()
    # Nothing is stapled to a client that does not ask.
    staple, answer = _pyopenssl_staple(lab, "good-stapled", request_status=False)
    assert staple == b"" and b"certdoctor lab: good-stapled" in answer


def test_stapling_server_survives_bad_clients(lab: Lab) -> None:
    port = lab.endpoints["good-stapled"].port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # not TLS at all
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        sock.settimeout(5)
        data = sock.recv(4096)
        assert data[:1] in (b"", b"\x15")  # nothing, or a TLS alert
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # connect and leave
    # TLS, then an oversized request head: 400, as the ssl-module servers answer.
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        conn = SSL.Connection(ctx, _blocking(sock))
        conn.set_tlsext_host_name(b"good-stapled.certdoctor.test")
        conn.set_connect_state()
        conn.do_handshake()
        conn.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"certdoctor lab: good-stapled" in _pyopenssl_staple(lab, "good-stapled")[1]


# --- the listing ----------------------------------------------------------------------------------------


def test_json_listing_has_the_revocation_scenarios(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab_foreground._print_json_listing(lab)
    doc = jsonschemas.loads(capsys.readouterr().out)
    scenarios = {s["name"]: s for s in doc["scenarios"]}
    for name, expected in NEW_SCENARIOS.items():
        assert scenarios[name]["expected"] == sorted(expected)
        assert scenarios[name]["port"] == lab.endpoints[name].port
    assert doc["ocsp"]["lab-revocation-ca"] == lab.ocsp_url("lab-revocation-ca")
    assert doc["crl"]["lab-root"] == lab.crl_url("lab-root")


def test_text_listing_has_the_revocation_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    def interrupt() -> None:
        raise KeyboardInterrupt

    console = Console(record=True, width=400, file=io.StringIO())
    monkeypatch.setattr(lab_foreground, "_block_until_interrupted", interrupt)
    assert lab_foreground.serve_foreground(tmp_path, 0, console) == 0
    text = console.export_text()
    for name in NEW_SCENARIOS:
        assert f"https://{name}.certdoctor.test:" in text
    assert "/ocsp/<ca>" in text
