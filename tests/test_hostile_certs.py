"""Hostile certificates (issue 15 items 1 and 10): names cryptography loads but cannot decode on first access, and
keys it cannot parse. Every command reports them as a ``malformed-certificate`` finding, with the undecodable
bytes escaped, from a file, a live server and an AIA download; none crashes (exit 70) or calls them unreachable.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

import jsonschemas
from certdoctor import certinfo
from certdoctor.cli import main
from hostile_der import (
    IA5,
    O_OID,
    P256_OID,
    TELETEX,
    UNKNOWN_CURVE_OID,
    UTF8,
    attr,
    name,
    pem,
    rewrite,
    tlv,
)
from pki_builder import intermediate, leaf, root

HOST = "hostile.test"
AT = "2026-03-01T12:00:00Z"  # pki_builder.AT: the leaves are valid then
ROOT = root("Hostile Root")
CA = intermediate("Hostile CA", ROOT)
LEAF = leaf(HOST, CA)

# Subjects cryptography loads but cannot decode: (raw Name DER, what the rendering must show)
NAMES = {
    "teletex-8bit": (name(attr(TELETEX, b"caf\xe9.test")), "CN=<undecodable TeletexString: 0x636166e92e74657374>"),
    "ia5-8bit": (name(attr(IA5, b"caf\xe9.test")), "CN=<undecodable IA5String: 0x636166e92e74657374>"),
    "utf8-invalid": (name(attr(UTF8, b"\xff\xfe.test")), "CN=<undecodable UTF8String: 0xfffe2e74657374>"),
    "empty-rdn": (name(attr(UTF8, b"x.test"), tlv(0x31, b"")), "<empty RDN>,CN=x.test"),
    "mixed": (
        name(attr(UTF8, b"Good Org", O_OID), attr(TELETEX, b"\x80")),
        "CN=<undecodable TeletexString: 0x80>,O=Good Org",
    ),
}


# Other undecodable fields: kind -> the field malformed-certificate names
FIELDS = {"bad-key": "subjectPublicKeyInfo", "bad-san": "extensions"}


def hostile_leaf(kind: str) -> x509.Certificate:
    if kind == "bad-key":
        return rewrite(LEAF, CA.key, replace=(P256_OID, UNKNOWN_CURVE_OID))
    if kind == "bad-san":  # a dNSName (IA5String) with a byte >= 0x80
        return rewrite(LEAF, CA.key, replace=(b"\x82\x0chostile.test", b"\x82\x0chostil\xe9.test"))
    return rewrite(LEAF, CA.key, subject=NAMES[kind][0])


def write(tmp_path: Path, filename: str, data: bytes) -> str:
    path = tmp_path / filename
    path.write_bytes(data)
    return str(path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


def malformed(doc: dict) -> dict:
    found = [f for f in doc["findings"] if f["id"] == "malformed-certificate"]
    assert len(found) == 1, [f["id"] for f in doc["findings"]]
    return found[0]


# --- certinfo: every accessor answers, undecodable values escaped -------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_certinfo_renders_undecodable_names_with_escaped_bytes(kind: str) -> None:
    cert = hostile_leaf(kind)
    with pytest.raises(ValueError):
        cert.subject  # noqa: B018 - the premise: cryptography loads it but cannot decode the name
    shown = NAMES[kind][1]
    assert certinfo.subject(cert) == shown
    assert certinfo.display_name(cert) == shown
    assert certinfo.issuer(cert) == "CN=Hostile CA"
    assert certinfo.summary(cert)["subject"] == shown
    assert certinfo.signed_by(cert, CA.cert) and not certinfo.is_self_issued(cert)
    assert certinfo.subject_der(cert) == NAMES[kind][0]
    fields = certinfo.malformed_fields(cert)
    assert [f for f, _ in fields] == ["subject"]


def test_undecodable_issuer_still_links_to_its_issuer() -> None:
    """A CA whose own subject cannot be decoded: the leaf's issuer is the same raw name, and the path is built."""
    raw = NAMES["teletex-8bit"][0]
    ca = rewrite(CA, ROOT.key, subject=raw)
    child = rewrite(LEAF, CA.key, issuer=raw)
    assert certinfo.issuer_is_subject_of(child, ca) and certinfo.signed_by(child, ca)
    assert certinfo.issuer(child) == NAMES["teletex-8bit"][1]
    assert [f for f, _ in certinfo.malformed_fields(child)] == ["issuer"]


def test_unparsable_key_is_named() -> None:
    cert = hostile_leaf("bad-key")
    with pytest.raises(UnsupportedAlgorithm):
        cert.public_key()
    assert certinfo.key_str(cert) == "unknown"
    assert certinfo.public_key(cert) is None and not certinfo.same_public_key(cert, LEAF.key.public_key())
    ((field, problem),) = certinfo.malformed_fields(cert)
    assert field == "subjectPublicKeyInfo" and "1.2.840.10045.3.1.99" in problem


# --- check / inspect / fix from a file ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*sorted(NAMES), *sorted(FIELDS)])
def test_check_file_reports_a_malformed_certificate(kind: str, tmp_path: Path, capsys) -> None:
    chain = write(tmp_path, "chain.pem", pem(hostile_leaf(kind), CA.cert))
    ca_file = write(tmp_path, "root.pem", pem(ROOT.cert))
    code, out, _ = run(["check", chain, "--name", HOST, "--ca-file", ca_file, "--at", AT, "--json"], capsys)
    assert code == 1
    doc = jsonschemas.loads(out)
    assert doc["verdict"] == "invalid"
    finding = malformed(doc)
    assert finding["severity"] == "error" and finding["certificate"]["position"] == 0
    assert [f["field"] for f in finding["evidence"]["fields"]] == [FIELDS.get(kind, "subject")]
    if kind in NAMES:
        assert doc["chains"][0]["presented"][0]["subject"] == NAMES[kind][1]
    code, out, _ = run(["check", chain, "--name", HOST, "--ca-file", ca_file, "--at", AT, "--no-color"], capsys)
    assert code == 1 and "malformed-certificate" in out


@pytest.mark.parametrize("kind", ["teletex-8bit", "empty-rdn", "bad-key", "bad-san"])
def test_inspect_file_describes_a_malformed_certificate(kind: str, tmp_path: Path, capsys) -> None:
    chain = write(tmp_path, "chain.pem", pem(hostile_leaf(kind), CA.cert))
    code, out, _ = run(["inspect", chain, "--at", AT, "--no-color"], capsys)
    assert code == 0
    if kind in NAMES:
        assert NAMES[kind][1] in out
    code, out, _ = run(["inspect", chain, "--at", AT, "--json"], capsys)
    assert code == 0
    json.loads(out)


@pytest.mark.parametrize("kind", ["teletex-8bit", "bad-key", "bad-san"])
def test_fix_from_files_survives_a_malformed_certificate(kind: str, tmp_path: Path, capsys) -> None:
    files = [
        write(tmp_path, "leaf.pem", pem(hostile_leaf(kind))),
        write(tmp_path, "ca.pem", pem(CA.cert)),
        write(tmp_path, "root.pem", pem(ROOT.cert)),
    ]
    out_dir = tmp_path / "out"
    code, out, _ = run(["fix", *files, "-d", str(out_dir), "--ca-file", files[2], "--no-aia", "--json"], capsys)
    assert code in (0, 1)
    json.loads(out)


# --- a live server, and an intermediate downloaded via AIA ----------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[callable]:
    """serve(chain) -> port: a TLS server on 127.0.0.1 presenting ``chain`` (leaf key: LEAF's) to each client."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def serve(*certs: x509.Certificate) -> int:
        chain = write(tmp_path, f"served{len(threads)}.pem", pem(*certs))
        key = tmp_path / "leaf.key"
        key.write_bytes(
            LEAF.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, str(key))
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        sockets.append(listener)

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                try:
                    conn.settimeout(5)
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except OSError:
                    pass
                finally:
                    conn.close()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        threads.append(thread)
        return listener.getsockname()[1]

    yield serve
    stop.set()
    for t in threads:
        t.join(5)
    for s in sockets:
        s.close()


@pytest.fixture
def aia_server() -> Iterator[callable]:
    """publish(der) -> URL: an HTTP server on 127.0.0.1 that serves ``der`` at that URL."""
    blobs: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = blobs.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/pkix-cert")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def publish(der: bytes) -> str:
        path = f"/ca{len(blobs)}.cer"
        blobs[path] = der
        return f"http://127.0.0.1:{httpd.server_address[1]}{path}"

    yield publish
    httpd.shutdown()
    thread.join(5)
    httpd.server_close()


@pytest.mark.parametrize("kind", ["teletex-8bit", "empty-rdn"])
def test_check_and_inspect_a_live_server(kind: str, tls_server, tmp_path: Path, capsys) -> None:
    port = tls_server(hostile_leaf(kind), CA.cert)
    ca_file = write(tmp_path, "root.pem", pem(ROOT.cert))
    target = [f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--ca-file", ca_file, "--at", AT]
    code, out, _ = run(["check", *target, "--json"], capsys)
    assert code == 1
    doc = jsonschemas.loads(out)
    assert doc["verdict"] == "invalid"
    malformed(doc)
    code, out, _ = run(["inspect", f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--at", AT], capsys)
    assert code == 0 and NAMES[kind][1] in out


def test_scan_calls_a_malformed_certificate_invalid_not_unreachable(tls_server, tmp_path: Path, capsys) -> None:
    port = tls_server(hostile_leaf("teletex-8bit"), CA.cert)
    targets = write(tmp_path, "targets.txt", f"{HOST}:{port},addr=127.0.0.1\n".encode())
    ca_file = write(tmp_path, "root.pem", pem(ROOT.cert))
    code, out, _ = run(
        ["scan", targets, "--jsonl", "--ca-file", ca_file, "--at", AT, "--no-progress", "-w", "1"], capsys
    )
    (record,) = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert code == 1
    assert record["verdict"] == "invalid", record
    assert "malformed-certificate" in json.dumps(record)


def test_undecodable_intermediate_downloaded_via_aia(tls_server, aia_server, tmp_path: Path, capsys) -> None:
    """The server sends only its leaf; the intermediate fetched from the AIA URL has an undecodable subject (and
    the leaf's issuer is that same raw name, so the two link)."""
    raw = NAMES["ia5-8bit"][0]
    ca = rewrite(CA, ROOT.key, subject=raw)
    url = aia_server(ca.public_bytes(serialization.Encoding.DER))
    with_aia = leaf(HOST, CA, aia_ca_issuers=url)
    child = rewrite(with_aia, CA.key, issuer=raw)
    port = tls_server(child)
    ca_file = write(tmp_path, "root.pem", pem(ROOT.cert))
    target = [f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--ca-file", ca_file]
    code, out, _ = run(["check", *target, "--at", AT, "--json", "--no-revocation"], capsys)
    assert code == 1
    doc = jsonschemas.loads(out)
    found = {
        (f["certificate"].get("position"), field["field"])
        for f in doc["findings"]
        if f["id"] == "malformed-certificate"
        for field in f["evidence"]["fields"]
    }
    assert found == {(0, "issuer"), (None, "subject")}  # the leaf's issuer, the downloaded CA's subject
    assert "missing-intermediate" in [f["id"] for f in doc["findings"]]
    assert NAMES["ia5-8bit"][1] in json.dumps(doc)
    code, out, _ = run(["fix", *target, "-d", str(tmp_path / "out"), "--json"], capsys)
    assert code in (0, 1)
    json.loads(out)
