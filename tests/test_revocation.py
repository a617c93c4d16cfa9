"""Revocation against the lab's real OCSP responders, CRLs and stapling servers, cross-checked with openssl."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

import jsonschemas
from certdoctor import diagnose, diagnose_async
from certdoctor.cli import main
from certdoctor.collect.revocation import RevocationFetcher
from certdoctor.lab import Lab
from certdoctor.lab.pki import certs_pem
from certdoctor.revocation import evaluate_crl, evaluate_ocsp

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


def check(lab: Lab, name: str, **extra: Any):
    ep = lab.endpoints[name]
    kw: dict[str, Any] = {"ca_files": [str(lab.root_path)], "timeout": 5.0, "resolve": list(ep.addresses)}
    kw.update(extra)
    return diagnose(f"{ep.hostname}:{ep.port}", **kw)


def one(d, fid: str):
    matches = [f for f in d.findings if f.id == fid]
    assert len(matches) == 1, f"{fid}: {d.ids()}"
    return matches[0]


def statuses(d) -> list[tuple[int, str, str | None]]:
    (report,) = d.reports
    return [(s.depth, s.status, s.decided_by.source if s.decided_by else None) for s in report.revocation]


def chain_of(lab: Lab, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(lab.endpoints[name].chain_path.read_bytes())


# --- every scenario, with its evidence --------------------------------------------------------------------


def test_revoked_leaf_by_ocsp_names_date_reason_and_delegated_responder(lab: Lab) -> None:
    d = check(lab, "revoked-ocsp")
    assert set(d.ids()) == {"revoked", "stapling-absent"} and d.exit_code == 1
    f = one(d, "revoked")
    assert f.severity.value == "error" and f.cert_position == 0
    assert f.evidence["source"] == "ocsp" and f.evidence["reason"] == "keyCompromise"
    assert f.evidence["url"] == lab.ocsp_url("lab-revocation-ca")
    assert f.evidence["signer"].startswith("delegated responder CN=certdoctor Lab Revocation CA OCSP Responder")
    revoked_at = dt.datetime.fromisoformat(f.evidence["revoked_at"])
    assert dt.timedelta(hours=20) < dt.datetime.now(dt.UTC) - revoked_at < dt.timedelta(days=2)
    assert "keyCompromise" in f.detail and "with a new private key" in f.fix
    # the intermediate is good according to the root's responder, which signs itself
    assert statuses(d) == [(0, "revoked", "ocsp"), (1, "good", "ocsp")]
    (report,) = d.reports
    assert report.revocation[1].decided_by.signer == "the issuer"


def test_revoked_leaf_found_in_the_crl_only(lab: Lab) -> None:
    d = check(lab, "revoked-crl")
    assert d.ids() == ["revoked"]
    f = one(d, "revoked")
    assert f.evidence["source"] == "crl" and f.evidence["reason"] == "superseded"
    assert f.evidence["url"] == lab.crl_url("lab-revocation-ca")
    assert statuses(d)[0] == (0, "revoked", "crl")


def test_revoked_intermediate(lab: Lab) -> None:
    d = check(lab, "revoked-intermediate")
    assert set(d.ids()) == {"revoked", "stapling-absent"}
    f = one(d, "revoked")
    assert f.cert_position == 1 and f.evidence["depth"] == 1
    assert f.evidence["reason"] == "cACompromise" and f.evidence["url"] == lab.ocsp_url("lab-root")
    assert "Certificate Lab Revoked CA" in f.detail or "certdoctor Lab Revoked CA" in f.detail
    assert "intermediate" in f.fix
    assert statuses(d) == [(0, "good", "ocsp"), (1, "revoked", "ocsp")]


def test_good_staple_answers_for_the_leaf_without_querying_the_responder(lab: Lab) -> None:
    d = check(lab, "good-stapled")
    assert d.findings == () and d.exit_code == 0
    assert statuses(d) == [(0, "good", "staple"), (1, "good", "ocsp")]
    leaf = d.reports[0].chain.certs[0]
    assert not any(f"{leaf.serial_number:x}" in key for key in d.evidence.revocation)
    staple = d.reports[0].revocation[0].decided_by
    assert staple.signer.startswith("delegated responder") and staple.staple_sources == (d.evidence.chains[0].source,)


def test_stale_staple_is_reported_and_the_responder_asked_instead(lab: Lab) -> None:
    d = check(lab, "stale-staple")
    assert d.ids() == ["ocsp-stale"]
    f = one(d, "ocsp-stale")
    assert f.evidence["source"] == "staple" and f.evidence["status"] == "good" and f.evidence["stale"] is True
    next_update = dt.datetime.fromisoformat(f.evidence["next_update"])
    assert dt.timedelta(days=2) < dt.datetime.now(dt.UTC) - next_update < dt.timedelta(days=4)
    assert "not being refreshed" in f.detail
    assert statuses(d)[0] == (0, "good", "ocsp")


def test_must_staple_without_staple(lab: Lab) -> None:
    d = check(lab, "must-staple")
    assert d.ids() == ["must-staple-missing"] and d.exit_code == 1
    f = one(d, "must-staple-missing")
    assert f.severity.value == "error" and f.sources == tuple(c.source for c in d.evidence.chains)
    assert "MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING" in f.detail
    firefox = next(v for v in d.clients if v.client == "firefox")
    assert not firefox.accepts and firefox.error == "MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING"
    assert firefox.because == ("must-staple-missing",)
    assert all(v.accepts for v in d.clients if v.client != "firefox")


def test_unreachable_responder(lab: Lab) -> None:
    d = check(lab, "ocsp-unreachable")
    assert set(d.ids()) == {"revocation-unknown", "stapling-absent"} and d.exit_code == 0
    f = one(d, "revocation-unknown")
    assert f.cert_position == 0
    assert lab.unreachable_ocsp_url in f.detail and "connection refused" in f.detail
    assert "soft-fail" in f.detail and "Could not determine revocation status" in f.detail
    (answer,) = f.evidence["answers"]
    assert answer["error_kind"] == "fetch" and answer["url"] == lab.unreachable_ocsp_url


def test_garbage_responder(lab: Lab) -> None:
    d = check(lab, "ocsp-garbage")
    assert set(d.ids()) == {"ocsp-invalid", "revocation-unknown", "stapling-absent"}
    f = one(d, "ocsp-invalid")
    assert f.severity.value == "warning" and f.evidence["error_kind"] == "parse"
    assert f.evidence["url"].endswith("/ocsp-garbage") and "not an OCSP response (2048 bytes" in f.detail


def test_clients_connect_to_a_revoked_server_and_say_so(lab: Lab) -> None:
    d = check(lab, "revoked-ocsp")
    curl = next(v for v in d.clients if v.client == "curl")
    assert curl.accepts and "revoked" in curl.note and "checks no revocation" in curl.note
    chrome = next(v for v in d.clients if v.client == "chrome")
    assert chrome.accepts and "CRLSet" in chrome.note


# --- options ------------------------------------------------------------------------------------------------


def test_no_revocation_skips_lookups_but_still_judges_the_staple(lab: Lab) -> None:
    d = check(lab, "revoked-ocsp", revocation=False)
    assert d.ids() == ["stapling-absent"] and dict(d.evidence.revocation) == {}
    assert statuses(d) == [(0, "unchecked", None), (1, "unchecked", None)]
    stapled = check(lab, "good-stapled", revocation=False)
    assert statuses(stapled)[0] == (0, "good", "staple") and stapled.findings == ()


def test_slow_responder_is_bounded_by_the_revocation_timeout(lab: Lab, tmp_path: Path) -> None:
    leaf, _key = lab.pki.issue_leaf(
        key_name="leaf-slow-ocsp",
        issuer="lab-revocation-ca",
        dns_names=["slow-ocsp.certdoctor.test"],
        common_name="slow-ocsp.certdoctor.test",
        ocsp_url=f"{lab.aia_base_url}/ocsp-slow/lab-revocation-ca",
    )
    chain = tmp_path / "slow.pem"
    chain.write_bytes(certs_pem([leaf, lab.pki.issuers["lab-revocation-ca"].cert]))
    started = time.perf_counter()
    d = diagnose(files=[str(chain)], ca_files=[str(lab.root_path)], revocation_timeout=1.0)
    assert time.perf_counter() - started < 3.5
    f = one(d, "revocation-unknown")
    assert "timed out after" in f.detail
    assert "stapling-absent" not in d.ids()  # a file has no handshake, so no staple to miss


def test_cli_flags_and_json(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ep = lab.endpoints["revoked-crl"]
    argv = ["check", f"{ep.hostname}:{ep.port}", "--resolve", ep.resolve_arg(), "--ca-file", str(lab.root_path)]
    assert main([*argv, "--json", "--no-clients"]) == 1
    doc = jsonschemas.loads(capsys.readouterr().out)
    rev = doc["chains"][0]["revocation"]
    assert [(r["depth"], r["status"], r["source"]) for r in rev] == [(0, "revoked", "crl"), (1, "good", "ocsp")]
    assert rev[0]["crl_urls"] == [lab.crl_url("lab-revocation-ca")] and rev[0]["reason"] == "superseded"
    assert main([*argv, "--json", "--no-clients", "--no-revocation"]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert doc["findings"] == [] and doc["chains"][0]["revocation"][0]["status"] == "unchecked"
    assert main([*argv, "--no-clients", "--no-color", "--revocation-timeout", "2"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"revoc\. +#0 ✗ revoked \(CRL \d{4}-\d\d-\d\d, superseded\) · #1 ✓ good \(OCSP\)", out)


# --- collection: cache, POST/GET, limits -------------------------------------------------------------------


def test_shared_fetcher_caches_responses_until_next_update(lab: Lab) -> None:
    async def go() -> tuple[Any, Any, dict[str, int]]:
        async with RevocationFetcher() as fetcher:
            first = await diagnose_async(
                *_args(lab, "revoked-ocsp"), revocation_fetcher=fetcher, **_kw(lab, "revoked-ocsp")
            )
            second = await diagnose_async(
                *_args(lab, "revoked-ocsp"), revocation_fetcher=fetcher, **_kw(lab, "revoked-ocsp")
            )
            third = await diagnose_async(
                *_args(lab, "revoked-intermediate"), revocation_fetcher=fetcher, **_kw(lab, "revoked-intermediate")
            )
            assert third.ids().count("revoked") == 1
            return first, second, fetcher.stats

    first, second, stats = asyncio.run(go())
    assert not any(f.cached for f in first.evidence.revocation.values())
    assert all(f.cached for f in second.evidence.revocation.values())
    assert second.ids() == first.ids()
    # revoked-ocsp: leaf + intermediate; revoked-intermediate: leaf + its (different) intermediate
    assert stats == {"ocsp_hits": 2, "ocsp_queries": 4, "crl_hits": 0, "crl_downloads": 0}


def _args(lab: Lab, name: str) -> tuple[str]:
    return (f"{lab.endpoints[name].hostname}:{lab.endpoints[name].port}",)


def _kw(lab: Lab, name: str) -> dict[str, Any]:
    return {"resolve": list(lab.endpoints[name].addresses), "ca_files": [str(lab.root_path)], "clients": False}


def test_post_refused_falls_back_to_get(lab: Lab) -> None:
    leaf = chain_of(lab, "good-stapled")[0]
    issuer = lab.pki.issuers["lab-revocation-ca"].cert
    url = f"{lab.aia_base_url}/ocsp-get-only/lab-revocation-ca"

    async def go():
        async with RevocationFetcher() as fetcher:
            return await fetcher.ocsp(url, leaf, issuer)

    got = asyncio.run(go())
    assert got.method == "GET" and got.error is None
    answer = evaluate_ocsp(got.data, leaf, issuer, dt.datetime.now(dt.UTC), url=url)
    assert answer.status == "good" and answer.error is None


def test_oversized_and_slow_answers_are_errors(lab: Lab) -> None:
    leaf = chain_of(lab, "good-stapled")[0]
    issuer = lab.pki.issuers["lab-revocation-ca"].cert
    lab.add_route("/huge-ocsp", lambda request: _response(200_000))
    lab.add_route("/huge.crl", lambda request: _response(3_000_000))

    async def go():
        async with RevocationFetcher(timeout=1.0, max_crl_bytes=1_000_000) as fetcher:
            return await asyncio.gather(
                fetcher.ocsp(f"{lab.aia_base_url}/huge-ocsp", leaf, issuer),
                fetcher.crl(f"{lab.aia_base_url}/huge.crl"),
                fetcher.ocsp(f"{lab.aia_base_url}/ocsp-slow/x", leaf, issuer),
            )

    started = time.perf_counter()
    huge, crl, slow = asyncio.run(go())
    assert time.perf_counter() - started < 3
    assert huge.error == "response larger than 64 KiB" and huge.data is None
    assert crl.error == "response larger than 1000000 bytes"
    assert slow.error == "timed out after 1 s"


def _response(size: int):
    from certdoctor.lab.servers import HttpResponse

    return HttpResponse(200, b"\x30" * size, "application/ocsp-response")


# --- validation of what responders send --------------------------------------------------------------------


def _signed_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    key: Any,
    responder: x509.Certificate,
    *,
    extra_certs: list[x509.Certificate] | None = None,
    serial_of: x509.Certificate | None = None,
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=serial_of or cert,
        issuer=issuer,
        algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(days=1),
        revocation_time=None,
        revocation_reason=None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
    if extra_certs:
        builder = builder.certificates(extra_certs)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_responses_from_the_wrong_signer_or_about_another_certificate_are_invalid(lab: Lab) -> None:
    leaf = chain_of(lab, "good-stapled")[0]
    other = chain_of(lab, "revoked-ocsp")[0]
    ca = lab.pki.issuers["lab-revocation-ca"]
    unrelated = lab.pki.issuers["unrelated-ca"]
    now = dt.datetime.now(dt.UTC)

    # signed by a CA that has nothing to do with this certificate
    bad = _signed_response(leaf, ca.cert, unrelated.key, unrelated.cert, extra_certs=[unrelated.cert])
    a = evaluate_ocsp(bad, leaf, ca.cert, now)
    assert a.error_kind == "responder" and "not issued by the certificate's issuer" in a.error

    # a "delegated responder" the CA issued without the OCSP-signing EKU (a server certificate)
    server_cert, server_key = lab.pki.issue_leaf(
        key_name="leaf-not-ocsp-signer", issuer="lab-revocation-ca", dns_names=["x.test"], common_name="x.test"
    )
    a = evaluate_ocsp(
        _signed_response(leaf, ca.cert, server_key, server_cert, extra_certs=[server_cert]), leaf, ca.cert, now
    )
    assert a.error_kind == "responder" and "id-kp-OCSPSigning" in a.error

    # claims to be the CA, but the signature was tampered with (the signature is the last field)
    genuine = _signed_response(leaf, ca.cert, ca.key, ca.cert)
    forged = genuine[:-1] + bytes([genuine[-1] ^ 0x01])
    a = evaluate_ocsp(forged, leaf, ca.cert, now)
    assert a.error_kind == "signature"

    # correctly signed, but about another certificate
    wrong = _signed_response(leaf, ca.cert, ca.key, ca.cert, serial_of=other)
    a = evaluate_ocsp(wrong, leaf, ca.cert, now)
    assert a.error_kind == "certid" and f"{other.serial_number:x}" in a.error

    # and the real thing passes
    good = _signed_response(leaf, ca.cert, ca.key, ca.cert)
    a = evaluate_ocsp(good, leaf, ca.cert, now)
    assert a.status == "good" and a.error is None and a.signer == "the issuer"


def test_crl_from_another_issuer_or_with_a_bad_signature_is_rejected(lab: Lab) -> None:
    import httpx

    leaf = chain_of(lab, "revoked-crl")[0]
    ca = lab.pki.issuers["lab-revocation-ca"].cert
    now = dt.datetime.now(dt.UTC)
    root_crl = httpx.get(lab.crl_url("lab-root"), timeout=5).content
    a = evaluate_crl(root_crl, leaf, ca, now, url="x")
    assert a.error_kind == "issuer"
    own = httpx.get(lab.crl_url("lab-revocation-ca", pem=True), timeout=5).content
    a = evaluate_crl(own, leaf, ca, now, url="x")
    assert a.status == "revoked" and a.reason == "superseded"  # PEM is accepted too
    a = evaluate_crl(own, leaf, lab.pki.issuers["lab-rsa-ca"].cert, now, url="x")
    assert a.error_kind == "signature"
    a = evaluate_crl(own, leaf, ca, now + dt.timedelta(days=30), url="x")
    assert a.status == "revoked" and a.stale  # revocations stay true in an old CRL
    good_leaf = chain_of(lab, "good-stapled")[0]
    a = evaluate_crl(own, good_leaf, ca, now + dt.timedelta(days=30), url="x")
    assert a.status == "good" and a.stale and not a.definitive


# --- cross-checks with OpenSSL -----------------------------------------------------------------------------


def _pem(tmp_path: Path, name: str, *certs: x509.Certificate) -> str:
    path = tmp_path / f"{name}.pem"
    path.write_bytes(certs_pem(certs))
    return str(path)


def _openssl_ocsp(tmp_path: Path, lab: Lab, cert: x509.Certificate, issuer: x509.Certificate, url: str) -> str:
    out = subprocess.run(
        [
            OPENSSL or "openssl",
            "ocsp",
            "-issuer",
            _pem(tmp_path, "issuer", issuer),
            "-cert",
            _pem(tmp_path, "cert", cert),
            "-url",
            url,
            "-CAfile",
            str(lab.root_path),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert "Response verify OK" in out.stderr + out.stdout, out.stderr
    match = re.search(r"cert\.pem: (good|revoked|unknown)", out.stdout) or re.search(
        r": (good|revoked|unknown)\n", out.stdout
    )
    assert match, out.stdout
    return match.group(1)


@needs_openssl
@pytest.mark.parametrize(
    ("scenario", "depth", "slug"),
    [
        ("revoked-ocsp", 0, "lab-revocation-ca"),
        ("good-stapled", 0, "lab-revocation-ca"),
        ("revoked-intermediate", 1, "lab-root"),
        ("revoked-intermediate", 0, "lab-revoked-ca"),
    ],
)
def test_openssl_ocsp_agrees(lab: Lab, tmp_path: Path, scenario: str, depth: int, slug: str) -> None:
    d = check(lab, scenario, revocation=True)
    status = d.reports[0].revocation[depth]
    theirs = _openssl_ocsp(tmp_path, lab, status.cert, status.issuer, lab.ocsp_url(slug))
    if scenario == "good-stapled":  # certdoctor used the staple; the responder must say the same
        assert status.decided_by.source == "staple"
    assert theirs == status.status


def _openssl_verify(
    lab: Lab, tmp_path: Path, flag: str, crls: Path, leaf: x509.Certificate, intermediate: x509.Certificate
) -> subprocess.CompletedProcess[str]:
    argv = [OPENSSL or "openssl", "verify", flag, "-CAfile", str(lab.root_path)]
    argv += ["-untrusted", _pem(tmp_path, "intermediate", intermediate), "-CRLfile", str(crls)]
    return subprocess.run(
        [*argv, _pem(tmp_path, "leaf", leaf)], capture_output=True, text=True, timeout=20, check=False
    )


@needs_openssl
@pytest.mark.parametrize(("scenario", "expected"), [("revoked-crl", "revoked"), ("good-stapled", "good")])
def test_openssl_verify_crl_check_agrees(lab: Lab, tmp_path: Path, scenario: str, expected: str) -> None:
    import httpx

    leaf, intermediate = chain_of(lab, scenario)[:2]
    crl = tmp_path / "ca.crl.pem"
    crl.write_bytes(httpx.get(lab.crl_url("lab-revocation-ca", pem=True), timeout=5).content)
    out = _openssl_verify(lab, tmp_path, "-crl_check", crl, leaf, intermediate)
    theirs = "revoked" if "certificate revoked" in out.stdout + out.stderr else ("good" if out.returncode == 0 else "?")
    ours = evaluate_crl(crl.read_bytes(), leaf, intermediate, dt.datetime.now(dt.UTC), url="file")
    assert theirs == expected == ours.status, out.stdout + out.stderr


@needs_openssl
def test_openssl_verify_crl_check_all_agrees_on_the_revoked_intermediate(lab: Lab, tmp_path: Path) -> None:
    import httpx

    leaf, intermediate = chain_of(lab, "revoked-intermediate")[:2]
    crls = tmp_path / "crls.pem"
    crls.write_bytes(
        httpx.get(lab.crl_url("lab-root", pem=True), timeout=5).content
        + httpx.get(lab.crl_url("lab-revoked-ca", pem=True), timeout=5).content
    )
    out = _openssl_verify(lab, tmp_path, "-crl_check_all", crls, leaf, intermediate)
    assert out.returncode != 0 and "certificate revoked" in out.stdout + out.stderr
    assert "at 1 depth" in out.stdout + out.stderr  # openssl blames the intermediate, as certdoctor does
    d = check(lab, "revoked-intermediate")
    assert [s.status for s in d.reports[0].revocation] == ["good", "revoked"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _s_server(lab: Lab, tmp_path: Path, scenario: str, status_file: Path, **kw: Any):
    """Serve ``scenario``'s chain with `openssl s_server -status_file` and check it with certdoctor."""
    ep = lab.endpoints[scenario]
    _leaf, *intermediates = chain_of(lab, scenario)
    port = _free_port()
    server = subprocess.Popen(
        [
            OPENSSL or "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(ep.chain_path),
            "-cert_chain",
            _pem(tmp_path, "intermediates", *intermediates),
            "-key",
            str(ep.key_path),
            "-status_file",
            str(status_file),
            "-www",
            "-quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        return diagnose(f"{ep.hostname}:{port}", resolve=["127.0.0.1"], ca_files=[str(lab.root_path)], **kw)
    finally:
        server.terminate()
        server.wait(timeout=5)


@needs_openssl
def test_staple_served_by_openssl_s_server_is_parsed_and_validated(lab: Lab, tmp_path: Path) -> None:
    leaf = chain_of(lab, "good-stapled")[0]
    staple = tmp_path / "staple.der"
    staple.write_bytes(lab.ocsp_response(leaf, "lab-revocation-ca"))
    stale = tmp_path / "stale.der"
    now = dt.datetime.now(dt.UTC)
    stale.write_bytes(
        lab.ocsp_response(
            leaf, "lab-revocation-ca", this_update=now - dt.timedelta(days=9), next_update=now - dt.timedelta(days=2)
        )
    )
    for status_file, expected in ((staple, []), (stale, ["ocsp-stale"])):
        d = _s_server(lab, tmp_path, "good-stapled", status_file, revocation=False, clients=False)
        assert d.evidence.chains[0].ocsp_staple == status_file.read_bytes()
        assert d.ids() == expected
        leaf_status = d.reports[0].revocation[0]
        assert leaf_status.answers[0].source == "staple" and leaf_status.answers[0].status == "good"
        assert leaf_status.status == ("good" if not expected else "unknown")  # a stale staple decides nothing


@needs_openssl
def test_revoked_or_foreign_staple_makes_firefox_refuse(lab: Lab, tmp_path: Path) -> None:
    revoked_leaf = chain_of(lab, "revoked-ocsp")[0]
    revoked = tmp_path / "revoked.der"
    revoked.write_bytes(lab.ocsp_response(revoked_leaf, "lab-revocation-ca"))
    d = _s_server(lab, tmp_path, "revoked-ocsp", revoked, revocation=False)
    assert d.ids() == ["revoked"] and one(d, "revoked").evidence["source"] == "staple"
    firefox = next(v for v in d.clients if v.client == "firefox")
    assert not firefox.accepts and firefox.error == "SEC_ERROR_REVOKED_CERTIFICATE"
    assert firefox.because == ("revoked",)
    # the staple of another certificate (a server that kept its old staple after a certificate change)
    foreign = tmp_path / "foreign.der"
    foreign.write_bytes(lab.ocsp_response(chain_of(lab, "good-stapled")[0], "lab-revocation-ca"))
    d = _s_server(lab, tmp_path, "revoked-ocsp", foreign, revocation=False)
    f = one(d, "ocsp-invalid")
    assert f.severity.value == "error" and f.evidence["error_kind"] == "certid" and f.evidence["source"] == "staple"
    firefox = next(v for v in d.clients if v.client == "firefox")
    assert firefox.error == "SEC_ERROR_OCSP_UNKNOWN_CERT"
