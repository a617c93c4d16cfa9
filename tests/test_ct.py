"""Certificate Transparency (certdoctor.ct, checks/ct.py): the lab's CT scenarios with and without a log list and
a public marking, the per-client verdicts, SCT parsing and verification (embedded, TLS-delivered in TLS 1.2 and
1.3, and in a stapled OCSP response), the log list reader, a scan record's SCT counts, and OpenSSL's own SCT
validation (``s_client -ct``) as the oracle that the lab's SCTs are well formed.

Real Chromium cannot be the oracle here: it enforces CT only for roots of its built-in store (a root added
locally, as the lab's is, is exempt), so it accepts every lab scenario; the conformance suite
(test_clients_real.py) checks exactly that, since it judges the lab root as private. The same holds for
Firefox (135+ enforces CT for roots of Mozilla's Root CA Program only)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import jsonschemas
from certdoctor import ct
from certdoctor.cli import main
from certdoctor.errors import InputError
from certdoctor.lab import Lab
from certdoctor.lab.ctlog import LOG_LIST_NAME, LOG_NAMES

CT_IDS = {"ct-sct-missing", "ct-policy-not-met", "ct-sct-invalid-signature"}


def log_list(lab: Lab) -> Path:
    return lab.root_path.with_name(LOG_LIST_NAME)


def base_argv(lab: Lab, scenario: str) -> list[str]:
    """check arguments without the scenario's own CT arguments (--treat-as-public-root, --ct-log-list)."""
    ep = lab.endpoints[scenario]
    return ["check", ep.target, "--resolve", ep.resolve_arg(), "--ca-file", str(lab.root_path), "--no-revocation"]


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, jsonschemas.loads(capsys.readouterr().out)


def ct_ids(doc: dict[str, Any]) -> set[str]:
    return {f["id"] for f in doc["findings"] if f["id"] in CT_IDS}


def finding(doc: dict[str, Any], fid: str) -> dict[str, Any]:
    return next(f for f in doc["findings"] if f["id"] == fid)


def clients(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["client"]: c for c in doc["clients"]}


# --- the scenarios as the lab checks them (public marking and log list) -----------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expected", "verified"),
    [
        ("ct-ok", set(), [True, True]),
        ("ct-too-few", {"ct-policy-not-met"}, [True]),
        ("ct-bad-sct", {"ct-policy-not-met", "ct-sct-invalid-signature"}, [True, False]),
    ],
)
def test_scenarios_with_log_list(
    lab: Lab, capsys: pytest.CaptureFixture[str], scenario: str, expected: set[str], verified: list[bool]
) -> None:
    ep = lab.endpoints[scenario]
    assert ep.scenario.expected == frozenset(expected)
    code, doc = run(capsys, ep.check_argv(lab.root_path))
    assert ct_ids(doc) == expected
    assert code == (1 if "ct-policy-not-met" in expected else 0)
    info = doc["chains"][0]["ct"]
    assert info["public"] is True and info["signatures_verified"] is True
    assert info["log_list"] == str(log_list(lab))
    assert [s["verified"] for s in info["scts"]] == verified
    assert {s["source"] for s in info["scts"]} == {"embedded"}
    assert all(s["signature_algorithm"] == "ECDSA-SHA256" for s in info["scts"])
    assert all(len(base64.b64decode(s["log_id"])) == 32 for s in info["scts"])
    assert info["lifetime_days"] == 91  # 90 days, notBefore through notAfter inclusive (Apple's count)
    if scenario == "ct-ok":
        assert info["policy_failures"] == [] and info["counted"] == info["distinct_logs"] == 2
        assert {s["operator"] for s in info["scts"]} == {
            "certdoctor Lab Log Operator A",
            "certdoctor Lab Log Operator B",
        }
    else:
        f = finding(doc, "ct-policy-not-met")
        assert f["severity"] == "error" and f["certificate"]["position"] == 0
        rules = {x["rule"] for x in f["evidence"]["failures"]}
        assert rules == {
            "chrome-embedded-sct-count",
            "chrome-log-operator-diversity",
            "firefox-embedded-sct-count",
            "firefox-log-operator-diversity",
            "apple-embedded-sct-count",
        }
        assert f["evidence"]["clients"] == ["chrome", "firefox", "safari"] and f["evidence"]["counted"] == 1
        assert "chrome-embedded-sct-count" not in f["detail"]  # the rule's words, not its id
        assert "Chrome: 2 embedded SCTs from distinct logs" in f["detail"]
    if scenario == "ct-bad-sct":
        bad = finding(doc, "ct-sct-invalid-signature")
        assert bad["severity"] == "warning"
        assert bad["evidence"]["sct"]["verified"] is False
        assert bad["evidence"]["sct"]["log"] == "certdoctor lab log lab-ct-log-2"


def test_per_client_verdicts(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = run(capsys, lab.endpoints["ct-too-few"].check_argv(lab.root_path))
    by = clients(doc)
    assert by["chrome"]["accepts"] is False
    assert by["chrome"]["error"] == "net::ERR_CERTIFICATE_TRANSPARENCY_REQUIRED"
    assert by["chrome"]["because"] == ["ct-policy-not-met"] and by["chrome"]["family"] == "policy"
    assert by["safari"]["accepts"] is False and by["safari"]["because"] == ["ct-policy-not-met"]
    assert by["firefox"]["accepts"] is False and by["firefox"]["because"] == ["ct-policy-not-met"]
    assert by["firefox"]["error"] == "MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_TRANSPARENCY"
    assert by["firefox"]["family"] == "policy"
    for cid in ("curl", "python", "node", "java", "go", "dotnet"):
        assert by[cid]["accepts"] is True, cid
    assert sorted(doc["rejected_by"]) == ["chrome", "firefox", "safari"] and doc["verdict"] == "invalid"
    _, ok = run(capsys, lab.endpoints["ct-ok"].check_argv(lab.root_path))
    assert all(c["accepts"] for c in ok["clients"]) and ok["verdict"] == "valid"


def test_without_log_list_counts_but_does_not_verify(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    public = ["--treat-as-public-root", str(lab.root_path)]
    # the bad SCT is not detected: both count, the policy is met
    code, doc = run(capsys, [*base_argv(lab, "ct-bad-sct"), *public])
    assert ct_ids(doc) == set() and code == 0
    info = doc["chains"][0]["ct"]
    assert info["signatures_verified"] is False and info["log_list"] is None
    assert info["sct_count"] == info["counted"] == 2
    assert [s["verified"] for s in info["scts"]] == [None, None]
    assert all(s["problem"] == "not verified: no --ct-log-list" and s["log"] is None for s in info["scts"])
    # too few SCTs is seen without a log list (the operator rule is not evaluated: operators are unknown)
    _, doc = run(capsys, [*base_argv(lab, "ct-too-few"), *public])
    assert ct_ids(doc) == {"ct-policy-not-met"}
    rules = {x["rule"] for x in finding(doc, "ct-policy-not-met")["evidence"]["failures"]}
    assert rules == {"chrome-embedded-sct-count", "firefox-embedded-sct-count", "apple-embedded-sct-count"}
    assert "signatures not verified (no --ct-log-list)" in finding(doc, "ct-policy-not-met")["detail"]
    main([*base_argv(lab, "ct-too-few"), *public])
    text = capsys.readouterr().out
    assert "CT     1 SCT(s) (embedded) from 1 log(s) · signatures not verified (no --ct-log-list)" in text
    assert "Chrome ✗" in text and "Firefox ✗" in text and "Apple ✗" in text


def test_private_root_gets_no_ct_finding(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """Browsers enforce CT for publicly trusted roots only: the lab root given by --ca-file is private."""
    for scenario in ("ct-too-few", "good-rsa"):
        code, doc = run(capsys, [*base_argv(lab, scenario), "--ct-log-list", str(log_list(lab))])
        assert ct_ids(doc) == set() and code == 0
        assert doc["chains"][0]["ct"]["public"] is False
        assert all(c["accepts"] for c in doc["clients"])
    _, doc = run(capsys, base_argv(lab, "good-rsa"))
    assert doc["chains"][0]["ct"]["sct_count"] == 0
    main(base_argv(lab, "good-rsa"))
    assert "  CT  " not in capsys.readouterr().out  # no SCT and not public: no CT line
    main(base_argv(lab, "ct-too-few"))
    assert "not publicly trusted: browsers do not enforce CT" in capsys.readouterr().out


def test_no_sct_at_all_under_a_public_root(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, [*base_argv(lab, "good-rsa"), "--treat-as-public-root", str(lab.root_path)])
    assert ct_ids(doc) == {"ct-sct-missing"} and code == 1
    f = finding(doc, "ct-sct-missing")
    assert f["evidence"]["sct_count"] == 0 and f["evidence"]["clients"] == ["chrome", "firefox", "safari"]
    by = clients(doc)
    assert by["chrome"]["error"] == "net::ERR_CERTIFICATE_TRANSPARENCY_REQUIRED"
    assert by["chrome"]["because"] == ["ct-sct-missing"]
    assert by["safari"]["accepts"] is False and by["curl"]["accepts"] is True
    assert by["firefox"]["error"] == "MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_TRANSPARENCY"


def test_bad_log_list_is_a_usage_error(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(log_list(lab).read_text())
    doc["operators"][0]["logs"][0]["log_id"] = base64.b64encode(b"\0" * 32).decode()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="log_id is not the SHA-256 of the key"):
        ct.load_log_list(bad)
    assert main([*base_argv(lab, "ct-ok"), "--ct-log-list", str(bad)]) == 2
    assert "--ct-log-list" in capsys.readouterr().err
    with pytest.raises(InputError, match="no operators list"):
        (tmp_path / "x.json").write_text("{}")
        ct.load_log_list(tmp_path / "x.json")
    listed = ct.load_log_list(log_list(lab))
    assert len(listed.logs) == len(LOG_NAMES) and {log.state for log in listed.logs.values()} == {"usable"}


# --- parsing and verification without a server --------------------------------------------------------------------


def leaf_and_issuer(lab: Lab, scenario: str) -> tuple[x509.Certificate, x509.Certificate]:
    certs = x509.load_pem_x509_certificates(lab.endpoints[scenario].chain_path.read_bytes())
    return certs[0], certs[1]


def test_tls_encoded_list_parses_like_the_embedded_one(lab: Lab) -> None:
    leaf, _ = leaf_and_issuer(lab, "ct-ok")
    ext = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
    der = ext.value.public_bytes()  # OCTET STRING { SignedCertificateTimestampList }
    assert der[0] == 0x04
    raw = der[3:] if der[1] == 0x81 else der[2:]
    parsed = ct.parse_sct_list(raw, "tls")
    embedded = ct.embedded_scts(leaf)
    assert [(s.log_id, s.timestamp, s.signature) for s in parsed] == [
        (s.log_id, s.timestamp, s.signature) for s in embedded
    ]
    with pytest.raises(ValueError):
        ct.parse_sct_list(raw[:-3], "tls")


def _tls_sct(key: ec.EllipticCurvePrivateKey, leaf: x509.Certificate, millis: int) -> bytes:
    """An SCT over an x509_entry (RFC 6962 §3.2), as a log returns it for a certificate (TLS/OCSP delivery)."""
    der = leaf.public_bytes(serialization.Encoding.DER)
    signed = bytes([0, 0]) + struct.pack(">QH", millis, 0) + len(der).to_bytes(3, "big") + der + b"\0\0"
    sig = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = bytes([0]) + hashlib.sha256(spki).digest() + struct.pack(">Q", millis) + b"\0\0\x04\x03"
    body += len(sig).to_bytes(2, "big") + sig
    return len(body).to_bytes(2, "big") + body


def test_tls_delivered_scts_verify_and_meet_both_policies(lab: Lab) -> None:
    """Two SCTs over the certificate itself (x509_entry), from logs of two operators, as a server would send in
    the TLS extension: both verify and meet Chrome's and Apple's rules for delivered SCTs, even on a leaf
    without embedded SCTs."""
    leaf, issuer = leaf_and_issuer(lab, "good-rsa")
    keys = [lab.pki.keys.get(name, "ec256") for name in ("lab-ct-log-1", "lab-ct-log-2")]
    entries = b"".join(_tls_sct(k, leaf, 1_700_000_000_000 + i) for i, k in enumerate(keys))  # type: ignore[arg-type]
    listed = ct.load_log_list(log_list(lab))
    report = ct.evaluate(leaf, issuer, tls_scts=len(entries).to_bytes(2, "big") + entries, logs=listed, public=True)
    assert [(s.source, s.verified) for s in report.scts] == [("tls", True), ("tls", True)]
    assert report.failures == ()
    # one delivered SCT only: Chrome wants 2 logs; Apple 2 SCTs in all
    one = _tls_sct(keys[0], leaf, 1_700_000_000_000)  # type: ignore[arg-type]
    report = ct.evaluate(leaf, issuer, tls_scts=len(one).to_bytes(2, "big") + one, logs=listed, public=True)
    assert {f.client for f in report.failures} == {"chrome", "firefox", "safari"}
    # the same SCT presented as embedded does not verify: it signs the certificate, not the precertificate
    assert ct.signed_data(report.scts[0], leaf, None)[:2] == b"\0\0"


def test_lifetime_and_thresholds() -> None:
    """Chrome and Apple: 2 embedded SCTs up to 180 days of validity, 3 beyond (with no log list, operators are
    unknown and only the counts are judged)."""
    sct = ct.Sct(b"\1" * 32, ct._EPOCH, "embedded", 4, 3, b"")
    two = [sct, ct.Sct(b"\2" * 32, ct._EPOCH, "embedded", 4, 3, b"")]
    assert ct._chrome(two, 180) == [] and ct._apple(two, 180) == []
    assert [f.required for f in ct._chrome(two, 181)] == [3]
    assert [f.required for f in ct._apple(two, 181)] == [3]


@contextlib.contextmanager
def _serve(ctx: Any) -> Iterator[int]:
    """A TLS server on 127.0.0.1 (an ephemeral port, yielded) that runs ``ctx`` (a pyOpenSSL server context) for
    each connection, one at a time, until the block ends."""
    from OpenSSL import SSL

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.setblocking(True)  # pyOpenSSL needs a blocking socket (a timeout makes it non-blocking)
            conn = SSL.Connection(ctx, sock)
            conn.set_accept_state()
            try:
                conn.do_handshake()
                conn.shutdown()
            except (SSL.Error, OSError):
                pass  # e.g. certdoctor's second handshake (offering ECDSA only) to a server with an RSA key
            sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def _public_check_argv(lab: Lab, host: str, port: int, *extra: str) -> list[str]:
    """check arguments for a test server on ``port``, the lab root treated as public, the lab log list given."""
    argv = ["check", f"{host}:{port}", "--resolve", f"{host}:{port}:127.0.0.1", "--ca-file", str(lab.root_path)]
    return [*argv, "--treat-as-public-root", str(lab.root_path), "--ct-log-list", str(log_list(lab)), *extra]


def test_firefox_policy_rules() -> None:
    """Mozilla's CT policy (CTPolicyEnforcer.cpp, bug 1912120): Retired logs count for embedded SCTs only, next to
    at least one Admissible (qualified, usable, readonly) log; delivered SCTs need 2 Admissible logs of 2
    operators; 2 embedded logs up to 180 days of validity, 3 beyond; 2 distinct operators."""

    def sct(n: int, source: ct.SctSource, operator: str, state: str) -> ct.Sct:
        log = ct.CtLog(bytes([n]) * 32, b"", f"log {n}", operator, state)
        return ct.Sct(log.log_id, ct._EPOCH, source, 4, 3, b"", verified=True, log=log)

    usable_a, retired_b = sct(1, "embedded", "A", "usable"), sct(2, "embedded", "B", "retired")
    assert ct._firefox([usable_a, retired_b], 90) == [] and ct._chrome([usable_a, retired_b], 90) == []
    retired = [sct(3, "embedded", "A", "retired"), retired_b]
    assert [f.rule for f in ct._firefox(retired, 90)] == ["firefox-admissible-log"]
    assert ct._chrome(retired, 90) == []  # Chrome counts Retired logs for embedded SCTs
    same_operator = [usable_a, sct(4, "embedded", "A", "qualified")]
    assert [f.rule for f in ct._firefox(same_operator, 90)] == ["firefox-log-operator-diversity"]
    assert [(f.rule, f.required, f.seen) for f in ct._firefox([usable_a, retired_b], 200)] == [
        ("firefox-embedded-sct-count", 3, 2)
    ]
    delivered = [sct(5, "ocsp", "A", "usable"), sct(6, "tls", "B", "readonly")]
    assert ct._firefox(delivered, 400) == []
    one = [delivered[0], sct(7, "tls", "B", "retired")]  # a Retired log does not count for delivered SCTs
    assert [(f.rule, f.seen) for f in ct._firefox(one, 90)] == [
        ("firefox-delivered-sct-count", 1),
        ("firefox-log-operator-diversity", 1),
    ]
    # without a log list: logs and operators unknown, only the counts are judged
    unknown = [ct.Sct(bytes([n]) * 32, ct._EPOCH, "embedded", 4, 3, b"") for n in (1, 2)]
    assert ct._firefox(unknown, 90) == [] and [f.required for f in ct._firefox(unknown, 181)] == [3]


def test_scts_in_the_tls_extension_are_collected(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """A TLS 1.2 server (OpenSSL through pyOpenSSL, its custom server extension API) that answers the
    ClientHello's signed_certificate_timestamp extension with two SCTs over its certificate: certdoctor collects
    them (source "tls"), verifies them, and the good-rsa leaf, which embeds none, meets both CT policies."""
    from OpenSSL import SSL
    from OpenSSL._util import ffi, lib

    ep = lab.endpoints["good-rsa"]
    leaf, _ = leaf_and_issuer(lab, "good-rsa")
    keys = [lab.pki.keys.get(name, "ec256") for name in ("lab-ct-log-1", "lab-ct-log-2")]
    entries = b"".join(_tls_sct(k, leaf, 1_700_000_000_000 + i) for i, k in enumerate(keys))  # type: ignore[arg-type]
    data = len(entries).to_bytes(2, "big") + entries
    buf = ffi.new("unsigned char[]", data)

    @ffi.callback("int (*)(SSL *, unsigned int, unsigned char **, size_t *, int *, void *)")
    def add(_ssl: Any, _type: int, out: Any, outlen: Any, _al: Any, _arg: Any) -> int:
        out[0] = buf
        outlen[0] = len(data)
        return 1

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate_chain_file(str(ep.chain_path))
    ctx.use_privatekey_file(str(ep.key_path))
    assert lib.SSL_CTX_add_server_custom_ext(ctx._context, 18, add, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL) == 1
    with _serve(ctx) as port:
        code, doc = run(capsys, _public_check_argv(lab, ep.hostname, port, "--no-revocation"))
    assert doc["chains"], [(e["error"], e["error_kind"]) for e in doc["endpoints"]]
    info = doc["chains"][0]["ct"]
    assert doc["endpoints"][0]["tls_version"] == "TLSv1.2"
    assert [(s["source"], s["verified"]) for s in info["scts"]] == [("tls", True), ("tls", True)]
    assert ct_ids(doc) == set() and code == 0 and info["policy_failures"] == []


# --- a scan record carries the SCT counts ------------------------------------------------------------------------


def test_scan_record_carries_sct_count(lab: Lab, tmp_path: Path) -> None:
    src = tmp_path / "hosts.txt"
    src.write_text("".join(lab.endpoints[n].scan_line + "\n" for n in ("ct-ok", "ct-bad-sct", "good-rsa")))
    out = tmp_path / "out.jsonl"
    argv = ["scan", str(src), "--ca-file", str(lab.root_path), "-o", str(out), "--no-progress", "-q"]
    argv += ["--treat-as-public-root", str(lab.root_path), "--ct-log-list", str(log_list(lab)), "--no-revocation"]
    assert main(argv) == 1
    records = {r["target"].split(".")[0]: r for r in map(jsonschemas.loads, out.read_text().splitlines())}
    assert records["ct-ok"]["ct"] == {
        "sct_count": 2,
        "distinct_logs": 2,
        "signatures_verified": True,
        "invalid": 0,
        "policy_failures": [],
    }
    assert records["ct-bad-sct"]["ct"]["invalid"] == 1
    assert "chrome-embedded-sct-count" in records["ct-bad-sct"]["ct"]["policy_failures"]
    assert records["good-rsa"]["ct"]["sct_count"] == 0
    assert {f["id"] for f in records["good-rsa"]["findings"]} == {"ct-sct-missing"}


# --- OpenSSL as the oracle: its own SCT validation (s_client -ct) ------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_validates_the_lab_scts_as_certdoctor_does(lab: Lab, tmp_path: Path) -> None:
    """OpenSSL's CT code (ct/ct_sct.c, ct_vfy.c) validates each SCT it receives against a CT log file: it agrees
    with certdoctor on which SCTs verify (so the lab's precertificate signing is RFC 6962's, not only ours)."""
    for scenario, statuses in (("ct-ok", ["valid", "valid"]), ("ct-bad-sct", ["valid", "invalid"])):
        ep = lab.endpoints[scenario]
        assert _openssl_sct_statuses(lab, tmp_path, ep.port, ep.hostname) == sorted(statuses), scenario


def _openssl_sct_statuses(lab: Lab, tmp_path: Path, port: int, host: str, *extra: str) -> list[str]:
    """The sorted "SCT validation status" lines of ``openssl s_client -ct`` against 127.0.0.1:``port``, with the
    lab log list as its CT log file."""
    listed = json.loads(log_list(lab).read_text())
    logs = [entry for op in listed["operators"] for entry in op["logs"]]
    conf = "enabled_logs=" + ",".join(f"l{i}" for i in range(len(logs))) + "\n"
    conf += "".join(f"[l{i}]\ndescription = {e['description']}\nkey = {e['key']}\n" for i, e in enumerate(logs))
    (tmp_path / "ct.cnf").write_text(conf)
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host, "-ct", *extra]
    got = subprocess.run(
        [*argv, "-ctlogfile", str(tmp_path / "ct.cnf"), "-CAfile", str(lab.root_path)],
        input=b"",
        capture_output=True,
        timeout=30,
    ).stdout.decode()
    return sorted(line.split(": ")[1] for line in got.splitlines() if "SCT validation status" in line)


# --- SCTs in a stapled OCSP response (RFC 6962 §3.3) ---------------------------------------------------------------

OCSP_SCT_OID = bytes.fromhex("060a2b06010401d679020405")  # OBJECT IDENTIFIER 1.3.6.1.4.1.11129.2.4.5


def _der(tag: int, content: bytes) -> bytes:
    """One DER element (definite length)."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _elements(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The DER elements of ``data`` in order: (tag, content, whole encoding); single-byte tags only."""
    out = []
    pos = 0
    while pos < len(data):
        tag, first = data[pos], data[pos + 1]
        if first < 0x80:
            size, head = first, 2
        else:
            n = first & 0x7F
            size, head = int.from_bytes(data[pos + 2 : pos + 2 + n], "big"), 2 + n
        end = pos + head + size
        out.append((tag, data[pos + head : end], data[pos:end]))
        pos = end
    return out


def _with_ocsp_scts(response: bytes, sct_list: bytes, key: Any) -> bytes:
    """``response`` (a successful DER OCSPResponse with one SingleResponse and no singleExtensions) with the SCT
    list added as its single extension (RFC 6962 §3.3: extnValue is an OCTET STRING holding the TLS-encoded
    SignedCertificateTimestampList), the ResponseData re-signed with ``key`` (SHA-256, the same algorithm)."""
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    ((_, outer, _),) = _elements(response)
    status, (_, response_bytes, _) = _elements(outer)[0][2], _elements(outer)[1]
    ((_, rb, _),) = _elements(response_bytes)
    rb_type, (_, basic_der, _) = _elements(rb)[0][2], _elements(rb)[1]
    ((_, basic, _),) = _elements(basic_der)
    tbs, alg, _sig, *certs = _elements(basic)
    fields = _elements(tbs[1])
    singles = next(i for i, f in enumerate(fields) if f[0] == 0x30 and _elements(f[1])[0][0] == 0x30)
    (single,) = _elements(fields[singles][1])
    assert not any(tag == 0xA1 for tag, _, _ in _elements(single[1]))  # no singleExtensions yet
    extension = _der(0x30, OCSP_SCT_OID + _der(0x04, _der(0x04, sct_list)))
    new_single = _der(0x30, single[1] + _der(0xA1, _der(0x30, extension)))
    fields[singles] = (0x30, b"", _der(0x30, new_single))
    new_tbs = _der(0x30, b"".join(f[2] for f in fields))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    new_basic = _der(0x30, new_tbs + alg[2] + _der(0x03, b"\0" + signature) + b"".join(c[2] for c in certs))
    new_rb = _der(0x30, rb_type + _der(0x04, new_basic))
    return _der(0x30, status + _der(0xA0, new_rb))


def _ocsp_staple_with_scts(lab: Lab, logs: tuple[str, ...]) -> tuple[x509.Certificate, x509.Certificate, bytes]:
    """The good-stapled scenario's leaf and issuer, and a fresh staple of its CA's responder carrying SCTs (over
    the certificate, an x509_entry) from ``logs``."""
    from certdoctor.lab.pki import REVOCATION_CA

    leaf, issuer = leaf_and_issuer(lab, "good-stapled")
    keys = [lab.pki.keys.get(name, "ec256") for name in logs]
    entries = b"".join(_tls_sct(k, leaf, 1_700_000_000_000 + i) for i, k in enumerate(keys))  # type: ignore[arg-type]
    plain = lab.pki.ocsp_response(leaf, REVOCATION_CA)
    signer = lab.pki.responders[REVOCATION_CA].signer.key
    return leaf, issuer, _with_ocsp_scts(plain, len(entries).to_bytes(2, "big") + entries, signer)


def test_ocsp_delivered_scts_parse_and_the_response_stays_valid(lab: Lab) -> None:
    """The edited response still parses with cryptography and its signature verifies with the responder's
    certificate; certdoctor reads its SCTs as source "ocsp" and verifies them over the certificate itself."""
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509 import ocsp

    leaf, issuer, staple = _ocsp_staple_with_scts(lab, ("lab-ct-log-1", "lab-ct-log-2"))
    response = ocsp.load_der_ocsp_response(staple)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    ext = response.single_extensions.get_extension_for_class(x509.SignedCertificateTimestamps)
    assert len(ext.value) == 2
    signer = response.certificates[0] if response.certificates else issuer
    key = signer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    listed = ct.load_log_list(log_list(lab))
    report = ct.evaluate(leaf, issuer, staple=staple, logs=listed, public=True)
    assert [(s.source, s.verified) for s in report.scts] == [("ocsp", True), ("ocsp", True)]
    assert report.failures == ()
    # signed over the certificate (x509_entry, entry type 0), not the precertificate
    assert ct.signed_data(report.scts[0], leaf, None)[10:12] == b"\0\0"
    one = ct.evaluate(leaf, issuer, staple=_ocsp_staple_with_scts(lab, ("lab-ct-log-1",))[2], logs=listed, public=True)
    assert {f.client for f in one.failures} == {"chrome", "firefox", "safari"}


def test_scts_in_a_stapled_ocsp_response_are_collected(
    lab: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A server (the lab's stapling OpenSSL context) stapling a response of the leaf's own OCSP responder that
    carries two SCTs in its single extension: certdoctor collects them (source "ocsp"), verifies them over the
    certificate, and the good-stapled leaf, which embeds none, meets both CT policies; the staple itself stays
    good (no revocation finding). OpenSSL's own CT code (s_client -ct -status, which reads SCTs from the
    stapled response too, ct/ct_oct.c) agrees that both verify."""
    from certdoctor.lab.memtls import openssl_context

    ep = lab.endpoints["good-stapled"]
    _, _, staple = _ocsp_staple_with_scts(lab, ("lab-ct-log-1", "lab-ct-log-2"))
    ctx = openssl_context(ep.chain_path, ep.key_path, lambda: staple)
    with _serve(ctx) as port:
        code, doc = run(capsys, _public_check_argv(lab, ep.hostname, port))
        statuses = _openssl_sct_statuses(lab, tmp_path, port, ep.hostname, "-status")
    assert doc["chains"], [(e["error"], e["error_kind"]) for e in doc["endpoints"]]
    info = doc["chains"][0]["ct"]
    assert [(s["source"], s["verified"]) for s in info["scts"]] == [("ocsp", True), ("ocsp", True)]
    assert info["counted"] == info["distinct_logs"] == 2 and info["signatures_verified"] is True
    assert {s["operator"] for s in info["scts"]} == {
        "certdoctor Lab Log Operator A",
        "certdoctor Lab Log Operator B",
    }
    assert info["policy_failures"] == [] and ct_ids(doc) == set()
    assert not [f["id"] for f in doc["findings"] if f["id"].startswith(("ocsp", "staple", "revocation"))]
    leaf_status = doc["chains"][0]["revocation"][0]  # the re-signed staple is still a good, verified answer
    answer = leaf_status["answers"][0]
    assert (leaf_status["source"], leaf_status["status"], answer["error"]) == ("staple", "good", None)
    assert answer["signer"].startswith("delegated responder") and code == 0
    assert statuses == ["valid", "valid"]


# --- a real server sending SCTs in the TLS extension: openssl s_server -serverinfo (TLS 1.2 and TLS 1.3) --------

# SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO | SSL_EXT_TLS1_3_CERTIFICATE (openssl/ssl.h): a SERVERINFOV2
# block with this context is sent in the ServerHello of TLS 1.2 and the leaf's CertificateEntry of TLS 1.3
# (ssl_rsa.c, serverinfo_srv_add_cb), when the ClientHello carries the (empty) extension.
_SERVERINFO_CONTEXT = 0x0080 | 0x0100 | 0x1000


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize(("version", "flag"), [("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-no_tls1_3")])
def test_scts_from_openssl_s_server_serverinfo(
    lab: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path, version: str, flag: str
) -> None:
    """OpenSSL's own server (s_server -serverinfo, a SERVERINFOV2 file holding the signed_certificate_timestamp
    extension) delivers two SCTs over its certificate: in TLS 1.3 inside the leaf's CertificateEntry (read from
    the decrypted Certificate message), in TLS 1.2 in the ServerHello. certdoctor collects both (source "tls"),
    verifies them against the lab log list, and the good-rsa leaf, which embeds none, meets every CT policy."""
    from netutil import free_port, wait_for_port

    ep = lab.endpoints["good-rsa"]
    leaf, _ = leaf_and_issuer(lab, "good-rsa")
    keys = [lab.pki.keys.get(name, "ec256") for name in ("lab-ct-log-1", "lab-ct-log-2")]
    entries = b"".join(_tls_sct(k, leaf, 1_700_000_000_000 + i) for i, k in enumerate(keys))  # type: ignore[arg-type]
    data = len(entries).to_bytes(2, "big") + entries
    block = struct.pack(">IHH", _SERVERINFO_CONTEXT, 18, len(data)) + data
    serverinfo = tmp_path / "serverinfo.pem"
    body = base64.encodebytes(block).decode()
    serverinfo.write_text(f"-----BEGIN SERVERINFOV2 FOR CT-----\n{body}-----END SERVERINFOV2 FOR CT-----\n")
    certs = x509.load_pem_x509_certificates(ep.chain_path.read_bytes())
    (tmp_path / "leaf.pem").write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "rest.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs[1:]))
    port = free_port()
    argv = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(tmp_path / "leaf.pem")]
    argv += ["-cert_chain", str(tmp_path / "rest.pem"), "-key", str(ep.key_path), "-serverinfo", str(serverinfo)]
    server = subprocess.Popen([*argv, flag, "-www", "-quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        code, doc = run(capsys, _public_check_argv(lab, ep.hostname, port, "--no-revocation"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert doc["chains"], [(e["error"], e["error_kind"]) for e in doc["endpoints"]]
    assert doc["endpoints"][0]["tls_version"] == version
    info = doc["chains"][0]["ct"]
    assert [(s["source"], s["verified"]) for s in info["scts"]] == [("tls", True), ("tls", True)]
    assert info["counted"] == info["distinct_logs"] == 2
    assert ct_ids(doc) == set() and code == 0 and info["policy_failures"] == []


def test_tls13_certificate_message_parsing() -> None:
    """RFC 8446 §4.4.2: the SCT list is taken from the first CertificateEntry's extensions only."""
    from certdoctor.collect.handshake import tls13_certificate_scts

    def entry(cert: bytes, exts: bytes) -> bytes:
        return len(cert).to_bytes(3, "big") + cert + len(exts).to_bytes(2, "big") + exts

    sct_list = b"\x00\x03\x00\x01\x00"
    ext = struct.pack(">HH", 5, 1) + b"\x00" + struct.pack(">HH", 18, len(sct_list)) + sct_list
    entries = entry(b"leaf", ext) + entry(b"ca", b"")
    body = b"\x00" + len(entries).to_bytes(3, "big") + entries
    message = b"\x0b" + len(body).to_bytes(3, "big") + body
    assert tls13_certificate_scts(message) == sct_list
    other = entry(b"leaf", b"") + entry(b"ca", struct.pack(">HH", 18, len(sct_list)) + sct_list)
    body = b"\x00" + len(other).to_bytes(3, "big") + other
    assert tls13_certificate_scts(b"\x0b" + len(body).to_bytes(3, "big") + body) is None  # not the leaf's
    assert tls13_certificate_scts(message[:-3]) is None  # truncated
    assert tls13_certificate_scts(b"\x02" + message[1:]) is None  # not a Certificate message
