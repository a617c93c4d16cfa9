"""One unit test per registered check: evidence built in memory (certificates from ``pki_builder``, model objects
from ``certdoctor.model``), judged by ``certdoctor.api.judge``; no network, no lab servers, no files.

Every test declares the check ids it covers with ``@covers(...)``; ``test_every_registered_check_has_a_unit_test``
fails, naming the id, when a check is registered without one.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

import certdoctor
import hostile_der
from certdoctor import certinfo
from certdoctor.api import Diagnosis, judge
from certdoctor.checks import REGISTRY, ChainContext, load_all, registry, run_chain_checks
from certdoctor.clients.reactions import CLIENT_IDS
from certdoctor.collect.caa import CaaEvidence, CaaLookup, CaaRecord
from certdoctor.lab.pki import with_serial
from certdoctor.model import (
    AiaFetch,
    ClientAuth,
    DeployedFile,
    Evidence,
    Finding,
    PemIssue,
    PresentedChain,
    RevocationFetch,
    Severity,
    StartTls,
    Target,
    TrustStore,
)
from certdoctor.paths import StoreIndex, analyse
from certdoctor.revocation import ocsp_key
from pki_builder import AT, CLIENT_AUTH, SERVER_AUTH, intermediate, issue, leaf, ocsp_response, root, rsa_key

# --- which test covers which check ----------------------------------------------------------------------------

COVERS: dict[str, list[str]] = {}  # check id -> the tests of this file that assert its finding
F = TypeVar("F", bound=Callable[..., Any])


def covers(*ids: str) -> Callable[[F], F]:
    """Declare that the decorated test builds evidence for, and asserts the finding of, each of ``ids``."""

    def mark(test: F) -> F:
        for check_id in ids:
            COVERS.setdefault(check_id, []).append(test.__name__)
        return test

    return mark


# --- a small in-memory PKI, shared by the tests -----------------------------------------------------------------

NAME = "leaf.test"
NET = "192.0.2.10:443"
NET2 = "192.0.2.11:443"
FILE = "chain.pem"
OCSP_URL = "http://ocsp.unit.test/ca"
AIA_URL = "http://aia.unit.test/ca.cer"

ROOT = root("Unit Root")
CA = intermediate("Unit CA", ROOT)
LEAF = leaf(NAME, CA)
OTHER_ROOT = root("Other Root")
OTHER_CA = intermediate("Other CA", OTHER_ROOT)


def served(*certs: x509.Certificate, source: str = NET, **kw: Any) -> PresentedChain:
    """A chain as presented by a network address (``source`` ip:port) or, for ``address=None``, a file."""
    address = kw.pop("address", source.rpartition(":")[0])
    kw.setdefault("total_received", len(certs))
    return PresentedChain(source=source, address=address, certs=certs, tls_version="TLSv1.3", **kw)


def store(*roots: x509.Certificate, name: str = "test") -> TrustStore:
    return TrustStore(name=name, description=f"unit store {name}", roots=roots)


def evidence(
    *chains: PresentedChain, name: str | None = NAME, stores: tuple[TrustStore, ...] | None = None, **kw: Any
) -> Evidence:
    files = tuple(c.source for c in chains if c.address is None)
    target = Target(name, files=files) if files else Target(name, addresses=tuple(c.address for c in chains))
    stores = (store(ROOT.cert),) if stores is None else stores
    return Evidence(target=target, at=AT, chains=chains, stores=stores, **kw)


def check(*certs: x509.Certificate, **kw: Any) -> Diagnosis:
    """Judge one chain served by one address: ``source``, ``address``, ``total_received`` and ``ocsp_staple`` go
    to :func:`served`, other keyword arguments to :func:`evidence`."""
    chain_kw = {k: kw.pop(k) for k in ("source", "address", "total_received", "ocsp_staple") if k in kw}
    clients = kw.pop("verdict_clients", None)
    return judge(evidence(served(*certs, **chain_kw), **kw), clients=clients)


def one(d: Diagnosis, check_id: str) -> Finding:
    found = [f for f in d.findings if f.id == check_id]
    assert len(found) == 1, f"{check_id}: {d.ids()}"
    return found[0]


def fp(cert: x509.Certificate) -> str:
    return certinfo.fingerprint(cert)


def test_clean_chain_has_no_findings() -> None:
    """The builder's defaults are a clean chain: any finding below comes from the defect each test adds."""
    d = check(LEAF.cert, CA.cert)
    assert d.findings == () and d.valid
    assert [v.ok for v in d.reports[0].analysis.verdicts] == [True]


# --- validity ---------------------------------------------------------------------------------------------------


@covers("expired")
def test_expired() -> None:
    cert = leaf("expired.test", CA, not_before=AT - timedelta(days=100), not_after=AT - timedelta(days=10)).cert
    d = check(cert, CA.cert, name="expired.test")
    assert d.ids() == ["expired"]
    f = one(d, "expired")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.cert_subject == "CN=expired.test"
    assert f.sources == (NET,) and f.cert_fingerprint == fp(cert)
    assert f.evidence == {"not_after": (AT - timedelta(days=10)).isoformat(), "checked_at": AT.isoformat()}


@covers("not-yet-valid")
def test_not_yet_valid() -> None:
    start = AT + timedelta(days=2)
    cert = leaf("early.test", CA, not_before=start).cert
    d = check(cert, CA.cert, name="early.test")
    assert d.ids() == ["not-yet-valid"]
    f = one(d, "not-yet-valid")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"not_before": start.isoformat(), "checked_at": AT.isoformat()}


@covers("expiring-soon")
def test_expiring_soon() -> None:
    cert = leaf("soon.test", CA, not_after=AT + timedelta(days=10)).cert
    d = check(cert, CA.cert, name="soon.test")
    assert d.ids() == ["expiring-soon"] and d.valid
    f = one(d, "expiring-soon")
    assert f.severity is Severity.WARNING and f.cert_position == 0
    assert f.evidence == {"not_after": (AT + timedelta(days=10)).isoformat(), "days_left": 10.0}
    assert check(cert, CA.cert, name="soon.test", warn_days=7).ids() == []


@covers("intermediate-expired")
def test_intermediate_expired() -> None:
    old_ca = intermediate("Unit Old CA", ROOT, not_after=AT - timedelta(days=1))
    cert = leaf(NAME, old_ca, not_before=AT - timedelta(days=40), not_after=AT + timedelta(days=50)).cert
    d = check(cert, old_ca.cert)
    assert d.ids() == ["intermediate-expired"]
    f = one(d, "intermediate-expired")
    assert f.severity is Severity.ERROR and f.cert_position == 1 and f.cert_subject == "CN=Unit Old CA"
    assert f.evidence["origin"] == "presented" and f.evidence["not_after"] == (AT - timedelta(days=1)).isoformat()


@covers("validity-too-long")
def test_validity_too_long_is_an_error_only_under_a_public_root() -> None:
    cert = leaf("long.test", CA, not_after=AT + timedelta(days=470)).cert  # 500 days in all
    private = check(cert, CA.cert, name="long.test")
    assert private.ids() == ["validity-too-long"]
    f = one(private, "validity-too-long")
    assert f.severity is Severity.WARNING and f.cert_position == 0
    assert f.evidence == {"validity_days": 500, "public_roots": []}
    public = check(cert, CA.cert, name="long.test", stores=(store(ROOT.cert, name="mozilla"),))
    f = one(public, "validity-too-long")
    assert f.severity is Severity.ERROR and f.evidence == {"validity_days": 500, "public_roots": ["mozilla"]}


# --- names ------------------------------------------------------------------------------------------------------


@covers("hostname-mismatch")
def test_hostname_mismatch() -> None:
    d = check(LEAF.cert, CA.cert, name="other.test")
    assert d.ids() == ["hostname-mismatch"]
    f = one(d, "hostname-mismatch")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {
        "requested_name": "other.test",
        "dns_names": [NAME],
        "ip_addresses": [],
        "common_names": [NAME],
        "has_subject_alt_name": True,
    }


@covers("no-subject-alt-name")
def test_no_subject_alt_name() -> None:
    cert = leaf("cn-only.test", CA, sans=None).cert
    d = check(cert, CA.cert, name=None)
    assert d.ids() == ["no-subject-alt-name"]
    f = one(d, "no-subject-alt-name")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.cert_subject == "CN=cn-only.test"
    assert f.evidence == {"common_names": ["cn-only.test"]}
    # with a name to check, hostname-mismatch explains it instead
    assert check(cert, CA.cert, name="cn-only.test").ids() == ["hostname-mismatch"]


# --- the chain as sent --------------------------------------------------------------------------------------------


@covers("self-signed")
def test_self_signed() -> None:
    cert = leaf("self.test", None).cert
    d = check(cert, name="self.test")
    assert d.ids() == ["self-signed"]
    f = one(d, "self-signed")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"subject": "CN=self.test", "sha256": fp(cert)}
    assert check(cert, name="self.test", stores=(store(cert),)).ids() == []  # trusted on purpose


@covers("untrusted-root")
def test_untrusted_root_sent_by_the_server() -> None:
    d = check(LEAF.cert, CA.cert, ROOT.cert, stores=(store(OTHER_ROOT.cert),))
    assert sorted(d.ids()) == ["contains-root", "untrusted-root"]
    f = one(d, "untrusted-root")
    assert f.severity is Severity.ERROR and f.cert_position == 2 and f.cert_subject == "CN=Unit Root"
    assert f.evidence == {"root_subject": "CN=Unit Root", "root_sha256": fp(ROOT.cert), "stores": "test"}


@covers("untrusted-root")
def test_untrusted_root_missing_from_some_stores_is_a_warning() -> None:
    d = check(LEAF.cert, CA.cert, stores=(store(ROOT.cert, name="a"), store(OTHER_ROOT.cert, name="b")))
    assert d.ids() == ["untrusted-root"]
    f = one(d, "untrusted-root")
    assert f.severity is Severity.WARNING and f.cert_position is None and f.cert_subject == "CN=Unit Root"
    assert f.evidence == {"trusted_by": ["a"], "not_trusted_by": ["b"]}


@covers("missing-intermediate")
def test_missing_intermediate_fetched_via_aia() -> None:
    cert = leaf("aia.test", CA, aia_ca_issuers=AIA_URL).cert
    aia = {AIA_URL: AiaFetch(AIA_URL, certs=(CA.cert,), status=200)}
    d = check(cert, name="aia.test", aia=aia)
    assert d.ids() == ["missing-intermediate"]
    f = one(d, "missing-intermediate")
    assert f.severity is Severity.ERROR and f.cert_position is None and f.cert_subject == "CN=Unit CA"
    assert f.evidence == {"missing": ["CN=Unit CA"], "aia_urls": [AIA_URL], "fetched_sha256": [fp(CA.cert)]}
    (verdict,) = d.reports[0].analysis.verdicts
    assert not verdict.ok and verdict.ok_with_aia


@covers("missing-intermediate")
def test_missing_intermediate_without_aia() -> None:
    d = check(LEAF.cert)
    assert d.ids() == ["missing-intermediate"]
    f = one(d, "missing-intermediate")
    assert f.cert_position == 0 and "no AIA caIssuers URL" in f.detail
    assert f.evidence == {"issuer": "CN=Unit CA", "aia_urls": [], "aia_results": []}


@covers("wrong-order")
def test_wrong_order() -> None:
    ca1 = intermediate("Unit CA 1", ROOT)
    ca2 = intermediate("Unit CA 2", ca1)
    cert = leaf(NAME, ca2).cert
    d = check(cert, ca1.cert, ca2.cert)
    assert d.ids() == ["wrong-order"] and d.valid
    f = one(d, "wrong-order")
    assert f.severity is Severity.WARNING and f.cert_position is None
    assert f.evidence == {
        "sent_order": [f"CN={NAME}", "CN=Unit CA 1", "CN=Unit CA 2"],
        "path_positions": [0, 2, 1],
        "tls_version": "TLSv1.3",
    }
    # TLS 1.3 only requires the leaf first (RFC 8446 §4.4.2): the text says so instead of citing TLS 1.2's rule
    assert "On this TLS 1.3 connection the server certificate comes first" in f.detail
    assert "TLS 1.2 (RFC 5246 §7.4.2) requires" not in f.detail


@covers("duplicate-cert")
def test_duplicate_cert() -> None:
    d = check(LEAF.cert, CA.cert, CA.cert)
    assert d.ids() == ["duplicate-cert"]
    f = one(d, "duplicate-cert")
    assert f.severity is Severity.WARNING and f.cert_position == 1
    assert f.evidence == {"count": 2, "positions": [1, 2]}


@covers("extra-cert")
def test_extra_cert() -> None:
    d = check(LEAF.cert, CA.cert, OTHER_CA.cert)
    assert d.ids() == ["extra-cert"]
    f = one(d, "extra-cert")
    assert f.severity is Severity.WARNING and f.cert_position == 2 and f.cert_subject == "CN=Other CA"
    assert f.evidence == {"unrelated": ["CN=Other CA"]}


@covers("contains-root")
def test_contains_root() -> None:
    d = check(LEAF.cert, CA.cert, ROOT.cert)
    assert d.ids() == ["contains-root"] and d.valid
    f = one(d, "contains-root")
    assert f.severity is Severity.INFO and f.cert_position == 2 and f.cert_subject == "CN=Unit Root"
    assert f.evidence == {"trusted_by": ["test"]}


@covers("issuer-not-ca")
def test_issuer_not_ca() -> None:
    not_ca = leaf("not-a-ca.test", CA)  # an end-entity certificate whose key signs the leaf
    cert = leaf(NAME, not_ca).cert
    d = check(cert, not_ca.cert, CA.cert)
    assert d.ids() == ["issuer-not-ca"]
    f = one(d, "issuer-not-ca")
    assert f.severity is Severity.ERROR and f.cert_position == 1 and f.cert_subject == "CN=not-a-ca.test"
    assert f.evidence == {"basic_constraints": "CA:FALSE", "key_usage": ["digital_signature"]}


@covers("chain-truncated")
def test_chain_truncated() -> None:
    d = check(LEAF.cert, CA.cert, total_received=40)
    assert d.ids() == ["chain-truncated"]
    f = one(d, "chain-truncated")
    # the standard allows it, but Java refuses more than 10 certificates: an error that names Java
    assert f.severity is Severity.ERROR and f.cert_position is None and f.rejected_by == ("java",)
    assert f.evidence == {"received": 40, "analysed": 2}
    assert one(check(LEAF.cert, CA.cert, total_received=40, verdict_clients=("curl",)), "chain-truncated").severity is (
        Severity.WARNING
    )


# --- constraints ----------------------------------------------------------------------------------------------


@covers("name-constraints-violated")
def test_name_constraints_violated() -> None:
    permitted = x509.NameConstraints(permitted_subtrees=[x509.DNSName("allowed.test")], excluded_subtrees=None)
    constrained = intermediate("Unit Constrained CA", ROOT, name_constraints=permitted)
    cert = leaf("www.elsewhere.test", constrained).cert
    d = check(cert, constrained.cert, name="www.elsewhere.test")
    assert d.ids() == ["name-constraints-violated"]
    f = one(d, "name-constraints-violated")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.cert_subject == "CN=www.elsewhere.test"
    assert f.evidence == {
        "constrained_by": "CN=Unit Constrained CA",
        "violations": ["DNS:www.elsewhere.test is outside the permitted subtrees allowed.test"],
    }
    inside = leaf("www.allowed.test", constrained).cert
    assert check(inside, constrained.cert, name="www.allowed.test").ids() == []


@covers("path-length-exceeded")
def test_path_length_exceeded() -> None:
    ca1 = intermediate("Unit Pathlen0 CA", ROOT, path_length=0)
    ca2 = intermediate("Unit Sub CA", ca1)
    cert = leaf(NAME, ca2).cert
    d = check(cert, ca2.cert, ca1.cert)
    assert d.ids() == ["path-length-exceeded"]
    f = one(d, "path-length-exceeded")
    assert f.severity is Severity.ERROR and f.cert_position == 2 and f.cert_subject == "CN=Unit Pathlen0 CA"
    assert f.evidence == {"path_len_constraint": 0, "intermediates_below": 1}
    # pathlen 0 directly above the leaf is fine
    assert check(leaf(NAME, ca1).cert, ca1.cert).ids() == []


PRIVATE_OID = "1.3.6.1.4.1.55555.7.1"


@covers("unknown-critical-extension")
def test_unknown_critical_extension() -> None:
    private = x509.UnrecognizedExtension(ObjectIdentifier(PRIVATE_OID), b"\x05\x00")
    cert = leaf(NAME, CA, extensions=[(private, True)]).cert
    d = check(cert, CA.cert)
    assert d.ids() == ["unknown-critical-extension"]
    f = one(d, "unknown-critical-extension")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"critical_oids": [PRIVATE_OID]}
    # the same extension, not critical, is ignored by everyone
    assert check(leaf(NAME, CA, extensions=[(private, False)]).cert, CA.cert).ids() == []


@covers("root-expired")
def test_root_expired() -> None:
    old_root = root("Unit Expired Root", not_before=AT - timedelta(days=3650), not_after=AT - timedelta(days=1))
    ca = intermediate("Unit CA under expired root", old_root)
    d = check(leaf(NAME, ca).cert, ca.cert, stores=(store(old_root.cert),))
    assert d.ids() == ["root-expired"]
    f = one(d, "root-expired")
    assert f.severity is Severity.ERROR and f.cert_position is None and f.cert_subject == "CN=Unit Expired Root"
    assert f.cert_fingerprint == fp(old_root.cert)
    assert f.evidence == {
        "not_before": (AT - timedelta(days=3650)).isoformat(),
        "not_after": (AT - timedelta(days=1)).isoformat(),
    }


# --- crypto and usage -------------------------------------------------------------------------------------------


@covers("weak-signature")
def test_weak_signature() -> None:
    rsa_ca = intermediate("Unit RSA CA", ROOT, key=rsa_key("unit rsa ca"))
    cert = leaf(NAME, rsa_ca, sha1=True).cert
    d = check(cert, rsa_ca.cert)
    assert d.ids() == ["weak-signature"]
    f = one(d, "weak-signature")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"signature_algorithm": "sha1WithRSAEncryption", "hash": "sha1"}


@covers("weak-key")
def test_weak_key() -> None:
    cert = leaf(NAME, CA, key=rsa_key("weak leaf", 1024)).cert
    d = check(cert, CA.cert)
    assert d.ids() == ["weak-key"]
    f = one(d, "weak-key")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"key_type": "RSA", "key_bits": 1024}


@covers("malformed-certificate")
def test_malformed_certificate() -> None:
    """A leaf whose subject cryptography cannot decode, and one whose public key it cannot parse (an unknown
    curve): both are errors naming the field; the raw bytes are escaped."""
    subject = hostile_der.name(hostile_der.attr(hostile_der.TELETEX, b"caf\xe9"))
    cert = hostile_der.rewrite(LEAF, CA.key, subject=subject)
    d = check(cert, CA.cert)
    assert d.ids() == ["malformed-certificate"]
    f = one(d, "malformed-certificate")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.cert_subject == "CN=<undecodable TeletexString: 0x636166e9>"
    assert f.evidence == {
        "fields": [{"field": "subject", "problem": "CN is <undecodable TeletexString: 0x636166e9> (bytes >= 0x80)"}]
    }
    assert "OpenSSL 3 and Go accept it" in f.detail
    bad_key = hostile_der.rewrite(LEAF, CA.key, replace=(hostile_der.P256_OID, hostile_der.UNKNOWN_CURVE_OID))
    d = check(bad_key, CA.cert)
    assert d.ids() == ["malformed-certificate"]
    f = one(d, "malformed-certificate")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    ((field,),) = [[x["field"] for x in f.evidence["fields"]]]
    assert field == "subjectPublicKeyInfo" and "Go refuses to parse" in f.detail


@covers("missing-server-auth-eku")
def test_missing_server_auth_eku() -> None:
    d = check(leaf(NAME, CA, eku=[CLIENT_AUTH]).cert, CA.cert)
    assert d.ids() == ["missing-server-auth-eku"]
    f = one(d, "missing-server-auth-eku")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"extended_key_usage": ["clientAuth"], "certificate": "leaf", "position": 0}
    assert check(leaf(NAME, CA, eku=[CLIENT_AUTH, SERVER_AUTH]).cert, CA.cert).ids() == []


@covers("missing-server-auth-eku")
def test_missing_server_auth_eku_on_an_intermediate() -> None:
    """EKU chaining: an intermediate restricted to e-mail and client authentication spoils its leaves."""
    email_ca = intermediate("Email CA", ROOT, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION, CLIENT_AUTH])
    d = check(leaf(NAME, email_ca).cert, email_ca.cert)
    assert d.ids() == ["missing-server-auth-eku"]
    f = one(d, "missing-server-auth-eku")
    assert f.severity is Severity.ERROR and f.cert_position == 1 and f.cert_subject == "CN=Email CA"
    assert f.evidence == {
        "extended_key_usage": ["emailProtection", "clientAuth"],
        "certificate": "intermediate",
        "position": 1,
        "subject": "CN=Email CA",
    }
    assert "Java accepts" in f.detail and "INVALID_PURPOSE" in f.detail
    server_ca = intermediate("Server CA", ROOT, eku=[SERVER_AUTH, CLIENT_AUTH])
    assert check(leaf(NAME, server_ca).cert, server_ca.cert).ids() == []


@covers("ed25519-key")
def test_ed25519_key() -> None:
    ed_leaf = leaf(NAME, CA, key=ed25519.Ed25519PrivateKey.generate())
    d = check(ed_leaf.cert, CA.cert)
    assert d.ids() == ["ed25519-key"]  # the verifier's refusal is explained: no verification-failed
    f = one(d, "ed25519-key")
    assert f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence == {"key_type": "Ed25519", "position": 0}
    assert "ERR_SSL_VERSION_OR_CIPHER_MISMATCH" in f.detail


@covers("negative-serial")
def test_negative_serial() -> None:
    negative = with_serial(LEAF.cert, -4242, CA.key)
    d = check(negative, CA.cert)
    assert d.ids() == ["negative-serial"]  # a warning; the verifier's refusal adds no verification-failed
    assert d.verdict.value == "valid"
    f = one(d, "negative-serial")
    assert f.severity is Severity.WARNING and f.cert_position == 0
    assert f.evidence == {"serial": "-4242", "position": 0}
    assert check(with_serial(LEAF.cert, 4242, CA.key), CA.cert).ids() == []


@covers("hostname-trailing-dot")
def test_hostname_trailing_dot() -> None:
    d = check(LEAF.cert, CA.cert, name=NAME + ".")
    assert d.ids() == ["hostname-trailing-dot"]
    f = one(d, "hostname-trailing-dot")
    assert f.severity is Severity.ERROR and f.rejected_by == ("python",)  # the others strip the dot
    assert f.evidence == {"requested_name": NAME + ".", "matched_name": NAME}
    assert "Python" in f.detail
    assert check(leaf("other.test", CA).cert, CA.cert, name=NAME + ".").ids() == ["hostname-mismatch"]


@covers("cross-signed-root")
def test_cross_signed_root() -> None:
    old_root = root("Old Root")
    for until, expired in ((AT + timedelta(days=300), False), (AT - timedelta(days=30), True)):
        cross = issue("Unit Root", issuer=old_root, key=ROOT.key, ca=True, not_after=until)
        d = check(LEAF.cert, CA.cert, cross.cert)
        assert d.ids() == ["cross-signed-root"] and d.verdict.value == "valid"
        f = one(d, "cross-signed-root")
        assert f.severity is Severity.INFO and f.cert_position == 2
        assert f.evidence["issued_by"] == '"Old Root"' and f.evidence["expired"] is expired
        assert "unrelated" not in f.detail and "trust only" in f.detail


@covers("leaf-is-ca")
def test_leaf_is_ca() -> None:
    validity = {"not_before": AT - timedelta(days=30), "not_after": AT + timedelta(days=60)}
    ca_leaf = issue(NAME, issuer=CA, ca=True, path_length=0, sans=[NAME], eku=[SERVER_AUTH], **validity)
    d = check(ca_leaf.cert, CA.cert)
    assert d.ids() == ["leaf-is-ca"]
    f = one(d, "leaf-is-ca")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.cert_subject == f"CN={NAME}"
    assert f.evidence == {"basic_constraints": "CA:TRUE, pathlen:0"}


# --- revocation -----------------------------------------------------------------------------------------------

OCSP_LEAF = leaf("ocsp.test", CA, ocsp_url=OCSP_URL)


def fetched(data: bytes | None, error: str | None = None) -> dict[str, RevocationFetch]:
    """The evidence of one OCSP query about OCSP_LEAF."""
    key = ocsp_key(OCSP_URL, OCSP_LEAF.cert, CA.cert)
    return {key: RevocationFetch("ocsp", OCSP_URL, key, data=data, error=error, status=200 if data else None)}


@covers("revoked")
def test_revoked() -> None:
    revoked_at = AT - timedelta(days=2)
    data = ocsp_response(
        OCSP_LEAF.cert,
        CA,
        status=ocsp.OCSPCertStatus.REVOKED,
        revoked_at=revoked_at,
        reason=x509.ReasonFlags.key_compromise,
    )
    d = check(OCSP_LEAF.cert, CA.cert, name="ocsp.test", revocation=fetched(data), revocation_checked=True)
    assert sorted(d.ids()) == ["revoked", "stapling-absent"]
    f = one(d, "revoked")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.cert_subject == "CN=ocsp.test"
    ev = dict(f.evidence)
    (answer,) = ev.pop("answers")
    assert ev == {
        "depth": 0,
        "revoked_at": revoked_at.isoformat(),
        "reason": "keyCompromise",
        "source": "ocsp",
        "url": OCSP_URL,
        "signer": "the issuer",
    }
    assert answer["status"] == "revoked" and answer["source"] == "ocsp"


@covers("revocation-unknown")
def test_revocation_unknown() -> None:
    kw: dict[str, Any] = {"name": "ocsp.test", "revocation": fetched(None, "connection refused")}
    d = check(OCSP_LEAF.cert, CA.cert, revocation_checked=True, **kw)
    assert sorted(d.ids()) == ["revocation-unknown", "stapling-absent"]
    f = one(d, "revocation-unknown")
    assert f.severity is Severity.WARNING and f.cert_position == 0
    ev = dict(f.evidence)
    (answer,) = ev.pop("answers")
    assert ev == {"depth": 0, "ocsp_urls": [OCSP_URL], "crl_urls": []}
    assert answer["error_kind"] == "fetch" and answer["error"] == "connection refused" and answer["url"] == OCSP_URL
    # --no-revocation: nothing was looked up, so nothing is unknown
    assert check(OCSP_LEAF.cert, CA.cert, revocation_checked=False, **kw).ids() == ["stapling-absent"]


@covers("ocsp-stale")
def test_stale_staple() -> None:
    staple = ocsp_response(OCSP_LEAF.cert, CA, this_update=AT - timedelta(days=6), next_update=AT - timedelta(days=2))
    d = check(OCSP_LEAF.cert, CA.cert, name="ocsp.test", ocsp_staple=staple)
    assert d.ids() == ["ocsp-stale"]
    f = one(d, "ocsp-stale")
    assert f.severity is Severity.WARNING and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence["source"] == "staple" and f.evidence["status"] == "good" and f.evidence["stale"] is True
    assert f.evidence["next_update"] == (AT - timedelta(days=2)).isoformat()
    assert f.evidence["stapled_by"] == [NET]


@covers("ocsp-invalid")
def test_invalid_staple_is_an_error() -> None:
    foreign = ocsp_response(OCSP_LEAF.cert, CA, signer=OTHER_CA)  # signed by a CA that may not answer for it
    d = check(OCSP_LEAF.cert, CA.cert, name="ocsp.test", ocsp_staple=foreign)
    assert d.ids() == ["ocsp-invalid"]
    f = one(d, "ocsp-invalid")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence["source"] == "staple" and f.evidence["error_kind"] == "responder"
    assert f.evidence["status"] is None and f.evidence["stapled_by"] == [NET]


@covers("ocsp-invalid")
def test_invalid_fetched_response_is_a_warning() -> None:
    d = check(OCSP_LEAF.cert, CA.cert, name="ocsp.test", revocation=fetched(b"<html>captive portal</html>"))
    assert sorted(d.ids()) == ["ocsp-invalid", "stapling-absent"]
    f = one(d, "ocsp-invalid")
    assert f.severity is Severity.WARNING and f.cert_position == 0
    assert f.evidence["source"] == "ocsp" and f.evidence["error_kind"] == "parse" and f.evidence["url"] == OCSP_URL


@covers("must-staple-missing")
def test_must_staple_missing() -> None:
    cert = leaf("staple.test", CA, ocsp_url=OCSP_URL, must_staple=True).cert
    d = check(cert, CA.cert, name="staple.test")
    assert d.ids() == ["must-staple-missing"]
    f = one(d, "must-staple-missing")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence == {"unstapled_sources": [NET], "ocsp_urls": [OCSP_URL]}
    # a file presents no staple and is not expected to
    assert check(cert, CA.cert, name="staple.test", source=FILE, address=None).ids() == []


@covers("stapling-absent")
def test_stapling_absent() -> None:
    d = check(OCSP_LEAF.cert, CA.cert, name="ocsp.test")
    assert d.ids() == ["stapling-absent"] and d.valid
    f = one(d, "stapling-absent")
    assert f.severity is Severity.INFO and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence == {"unstapled_sources": [NET], "ocsp_urls": [OCSP_URL]}
    good = ocsp_response(OCSP_LEAF.cert, CA)
    assert check(OCSP_LEAF.cert, CA.cert, name="ocsp.test", ocsp_staple=good).ids() == []


# --- CAA (RFC 8659): evidence as certdoctor.collect.caa gathers it; tests/test_caa.py looks it up for real -----


def _caa(*lookups: CaaLookup, issuers: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> CaaEvidence:
    return CaaEvidence("192.0.2.53:53", lookups, issuers)


UNIT_CA_KNOWN = (("Unit CA", ("ca.unit.test",)),)  # the unit CA has no O=: --caa-issuer matches its CN


@covers("caa-issuer-not-authorized")
def test_caa_issuer_not_authorized() -> None:
    other = CaaLookup(NAME, NAME, queried=(NAME, "test"), relevant="test", records=(CaaRecord(0, "issue", "x.test"),))
    d = check(LEAF.cert, CA.cert, caa=_caa(other, issuers=UNIT_CA_KNOWN))
    f = one(d, "caa-issuer-not-authorized")
    assert f.severity is Severity.INFO and d.valid and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence["authorized"] == ["x.test"] and f.evidence["issuer_domains"] == ["ca.unit.test"]
    assert "no client looks CAA up" in f.detail
    assert check(LEAF.cert, CA.cert, caa=_caa(other)).ids() == []  # an unknown issuer is not compared
    ours = dataclasses.replace(other, records=(CaaRecord(0, "issue", "ca.unit.test; accounturi=x"),))
    assert check(LEAF.cert, CA.cert, caa=_caa(ours, issuers=UNIT_CA_KNOWN)).ids() == []
    records = (*ours.records, CaaRecord(0, "issuewild", ";"))
    wild = CaaLookup("*.w.test", "w.test", True, relevant="w.test", records=records)
    f = one(check(LEAF.cert, CA.cert, caa=_caa(wild, issuers=UNIT_CA_KNOWN)), "caa-issuer-not-authorized")
    assert f.evidence["tag"] == "issuewild" and f.evidence["authorized"] == [""]


@covers("caa-lookup-failed")
def test_caa_lookup_failed() -> None:
    failed = CaaLookup(NAME, NAME, queried=(NAME,), error=f"{NAME}: SERVFAIL", error_kind="servfail")
    f = one(check(LEAF.cert, CA.cert, caa=_caa(failed)), "caa-lookup-failed")
    assert f.severity is Severity.INFO and f.evidence["error_kind"] == "servfail"
    assert f.evidence["resolver"] == "192.0.2.53:53"
    assert check(LEAF.cert, CA.cert, caa=_caa(CaaLookup(NAME, NAME, queried=(NAME, "test")))).ids() == []


@covers("caa-critical-unknown")
def test_caa_critical_unknown() -> None:
    records = (CaaRecord(128, "tbs", "x"), CaaRecord(128, "issue", "ca.unit.test"))
    lookup = CaaLookup(NAME, NAME, queried=(NAME,), relevant=NAME, records=records)
    f = one(check(LEAF.cert, CA.cert, caa=_caa(lookup, issuers=UNIT_CA_KNOWN)), "caa-critical-unknown")
    assert f.severity is Severity.INFO and [r["tag"] for r in f.evidence["records"]] == ["tbs"]


# --- the safety net -------------------------------------------------------------------------------------------

# basicConstraints must be critical in a CA certificate (RFC 5280 §4.2.1.9); no check but the safety net says so
LAX_CA = issue(
    "Unit Lax CA",
    issuer=ROOT,
    ca=True,
    basic_constraints=False,
    extensions=[(x509.BasicConstraints(ca=True, path_length=None), False)],
)


@covers("verification-failed")
def test_verification_failed() -> None:
    d = check(leaf(NAME, LAX_CA).cert, LAX_CA.cert)
    assert d.ids() == ["verification-failed"]
    f = one(d, "verification-failed")
    assert f.severity is Severity.ERROR and f.cert_position is None and f.sources == (NET,)
    assert list(f.evidence) == ["validator_errors"] and list(f.evidence["validator_errors"]) == ["test"]
    assert "incorrect criticality" in f.evidence["validator_errors"]["test"]


def test_verification_failed_stays_silent_when_another_error_explains_the_rejection() -> None:
    expired = leaf(NAME, LAX_CA, not_before=AT - timedelta(days=100), not_after=AT - timedelta(days=10)).cert
    assert check(expired, LAX_CA.cert).ids() == ["expired"]


# --- target checks ------------------------------------------------------------------------------------------------


@covers("endpoints-differ")
def test_endpoints_differ() -> None:
    renewed = leaf(NAME, CA, not_before=AT - timedelta(days=1))
    d = judge(evidence(served(LEAF.cert, CA.cert), served(renewed.cert, CA.cert, source=NET2)))
    assert d.ids() == ["endpoints-differ"]
    f = one(d, "endpoints-differ")
    assert f.severity is Severity.WARNING and f.cert_position is None and f.sources == (NET, NET2)
    rows = f.evidence["endpoints"]
    assert [r["sources"] for r in rows] == [[NET], [NET2]]
    assert [r["leaf_sha256"] for r in rows] == [fp(LEAF.cert), fp(renewed.cert)]
    assert [r["chain_length"] for r in rows] == [2, 2]


@covers("served-differs-from-expected")
def test_served_differs_from_expected() -> None:
    wanted = leaf(NAME, CA, not_before=AT - timedelta(days=1))
    d = check(LEAF.cert, CA.cert, expected=(wanted.cert,), expected_source="new.pem")
    assert d.ids() == ["served-differs-from-expected"]
    f = one(d, "served-differs-from-expected")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence == {
        "served_sha256": fp(LEAF.cert),
        "expected_sha256": fp(wanted.cert),
        "served_not_after": LEAF.cert.not_valid_after_utc.isoformat(),
        "expected_not_after": wanted.cert.not_valid_after_utc.isoformat(),
    }
    assert "not reloaded" in f.detail


def deployed_file(*certs: x509.Certificate, path: str = "/etc/nginx/fullchain.pem", **kw: Any) -> DeployedFile:
    """A deployed file as collect.deployed reads it (leaf: the first certificate unless ``leaf_index``)."""
    kw.setdefault("leaf_index", 0 if certs else None)
    return DeployedFile(path, mtime=AT - timedelta(hours=1), size=1000, format="pem", certs=certs, **kw)


RENEWED = leaf(NAME, CA, not_before=AT - timedelta(days=1))


@covers("not-reloaded")
def test_not_reloaded() -> None:
    d = check(LEAF.cert, CA.cert, deployed=(deployed_file(RENEWED.cert, CA.cert),), server_type="nginx")
    assert d.ids() == ["not-reloaded"]
    f = one(d, "not-reloaded")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.sources == (NET,) and f.rejected_by == ()
    assert "nginx -t && nginx -s reload" in f.fix
    ev = f.evidence
    assert (ev["served_sha256"], ev["deployed_sha256"]) == (fp(LEAF.cert), fp(RENEWED.cert))
    assert ev["deployed_path"] == "/etc/nginx/fullchain.pem" and ev["addresses"] == [NET] and ev["stale"] == "leaf"
    assert ev["deployed_mtime"] == (AT - timedelta(hours=1)).isoformat()
    assert ev["served_not_before"] < ev["deployed_not_before"]
    # the fix follows the server type
    assert "apachectl configtest" in one(check(LEAF.cert, CA.cert, deployed=(deployed_file(RENEWED.cert, CA.cert),),
                                                server_type="apache"), "not-reloaded").fix  # fmt: skip
    haproxy = check(LEAF.cert, CA.cert, deployed=(deployed_file(RENEWED.cert, CA.cert),), server_type="haproxy")
    assert "set ssl cert /etc/nginx/fullchain.pem" in one(haproxy, "not-reloaded").fix
    assert "commit ssl cert" in one(haproxy, "not-reloaded").fix
    # HAProxy's set ssl cert payload replaces the whole entry: it carries the key (beside the file: FILE.key, where
    # HAProxy looks for it; else the --key file), without the empty lines that would end it (test_deployed_haproxy)
    fix = one(haproxy, "not-reloaded").fix
    assert "$(grep -hv '^[[:space:]]*$' /etc/nginx/fullchain.pem /etc/nginx/fullchain.pem.key)" in fix
    with_key = deployed_file(RENEWED.cert, CA.cert, path="/etc/haproxy/site.pem", has_key=True)
    fix = one(check(LEAF.cert, CA.cert, deployed=(with_key,), server_type="haproxy"), "not-reloaded").fix
    assert (
        "$(grep -hv '^[[:space:]]*$' /etc/haproxy/site.pem)\\n" in fix and "abort ssl cert /etc/haproxy/site.pem" in fix
    )
    separate = deployed_file(RENEWED.cert, CA.cert, path="/etc/haproxy/site.pem", key_source="/etc/keys/site.key")
    fix = one(check(LEAF.cert, CA.cert, deployed=(separate,), server_type="haproxy"), "not-reloaded").fix
    assert "/etc/haproxy/site.pem /etc/keys/site.key)" in fix
    # in sync: nothing
    assert check(LEAF.cert, CA.cert, deployed=(deployed_file(LEAF.cert, CA.cert),)).ids() == []
    # --expect FILE and --deployed FILE: one finding, the deployment's
    both = check(
        LEAF.cert,
        CA.cert,
        deployed=(deployed_file(RENEWED.cert, CA.cert),),
        expected=(RENEWED.cert, CA.cert),
        expected_source="/etc/nginx/fullchain.pem",
    )
    assert both.ids() == ["not-reloaded"]


@covers("served-not-deployed")
def test_served_not_deployed() -> None:
    other = leaf("other.test", CA)
    d = check(other.cert, CA.cert, deployed=(deployed_file(LEAF.cert, CA.cert),), server_type="lb")
    f = one(d, "served-not-deployed")
    assert f.severity is Severity.ERROR and f.sources == (NET,)
    assert f.evidence["served_sha256"] == fp(other.cert) and f.evidence["deployed_sha256"] == fp(LEAF.cert)
    assert "re-upload" in f.fix
    assert "hostname-mismatch" in d.ids()  # what clients reject, the served chain's own finding


@covers("partially-reloaded")
def test_partially_reloaded() -> None:
    ev = evidence(
        served(RENEWED.cert, CA.cert, source=NET),
        served(LEAF.cert, CA.cert, source=NET2),
        deployed=(deployed_file(RENEWED.cert, CA.cert),),
    )
    d = judge(ev)
    assert sorted(d.ids()) == ["endpoints-differ", "partially-reloaded"]
    f = one(d, "partially-reloaded")
    assert f.sources == (NET2,) and f.evidence["reloaded_addresses"] == [NET]
    assert f.evidence["served_sha256"] == fp(LEAF.cert)


@covers("deployed-file-unreadable")
def test_deployed_file_unreadable() -> None:
    broken = DeployedFile("/etc/nginx/x.pem", error="/etc/nginx/x.pem: no certificate found", error_kind="parse")
    d = check(LEAF.cert, CA.cert, deployed=(broken,))
    f = one(d, "deployed-file-unreadable")
    assert f.sources == ("/etc/nginx/x.pem",) and f.evidence["error_kind"] == "parse"
    assert f.severity is Severity.ERROR


@covers("deployed-file-problem")
def test_deployed_file_problem() -> None:
    # the renewal on disk lacks its intermediate: clients will refuse it once the server reloads
    d = check(LEAF.cert, CA.cert, deployed=(deployed_file(RENEWED.cert),))
    assert sorted(d.ids()) == ["deployed-file-problem", "not-reloaded"]
    f = one(d, "deployed-file-problem")
    assert f.evidence["problem"] == "missing-intermediate" and f.severity is Severity.WARNING
    assert f.sources == ("/etc/nginx/fullchain.pem",)
    # a key that does not belong to the deployed leaf: the reload would fail
    d = check(LEAF.cert, CA.cert, deployed=(deployed_file(LEAF.cert, CA.cert, key_matches=False, key_source="k"),))
    f = one(d, "deployed-file-problem")
    assert f.evidence["problem"] == "key-mismatch" and f.severity is Severity.ERROR


@covers("served-differs-from-expected")
def test_served_chain_differs_from_expected_is_a_warning() -> None:
    d = check(LEAF.cert, CA.cert, expected=(LEAF.cert, CA.cert, ROOT.cert), expected_source="full.pem")
    f = one(d, "served-differs-from-expected")
    assert f.severity is Severity.WARNING and f.cert_position is None
    assert f.evidence == {
        "served": [fp(LEAF.cert), fp(CA.cert)],
        "expected": [fp(LEAF.cert), fp(CA.cert), fp(ROOT.cert)],
    }


def failed(kind: str | None, error: str, source: str = NET) -> Diagnosis:
    address = None if source == FILE else source.rpartition(":")[0]
    chain = PresentedChain(source=source, address=address, error=error, error_kind=kind)
    return judge(evidence(chain))


@covers("connection-failed")
@pytest.mark.parametrize("kind", ["resolve", "connect", "timeout"])
def test_connection_failed(kind: str) -> None:
    d = failed(kind, "connection refused")
    assert d.ids() == ["connection-failed"] and d.exit_code == 3
    f = one(d, "connection-failed")
    assert f.severity is Severity.ERROR and f.sources == (NET,) and f.cert_position is None
    assert f.detail == f"{NET}: connection refused"
    assert f.evidence == {"error_kind": kind, "error": "connection refused"}


@covers("handshake-failed")
@pytest.mark.parametrize("kind", ["handshake", "too-large", "not-tls", None])
def test_handshake_failed(kind: str | None) -> None:
    d = failed(kind, "alert handshake_failure")
    assert d.ids() == ["handshake-failed"]
    f = one(d, "handshake-failed")
    assert f.severity is Severity.ERROR and f.sources == (NET,) and f.cert_position is None
    assert f.evidence == {"error_kind": kind, "error": "alert handshake_failure"}


@covers("unreadable-file")
def test_unreadable_file() -> None:
    d = failed("parse", "no certificate found", source=FILE)
    assert d.ids() == ["unreadable-file"]
    f = one(d, "unreadable-file")
    assert f.severity is Severity.ERROR and f.sources == (FILE,) and f.cert_position is None
    assert f.evidence == {"error": "no certificate found"}


@covers("no-certificate")
def test_no_certificate() -> None:
    d = failed("no-certificate", "the server sent no certificate (anonymous cipher suite)")
    assert d.ids() == ["no-certificate"]
    f = one(d, "no-certificate")
    assert f.severity is Severity.ERROR and f.sources == (NET,)
    assert f.evidence == {
        "error_kind": "no-certificate",
        "error": "the server sent no certificate (anonymous cipher suite)",
    }


def upgrade_failed(kind: str, error: str, info: StartTls) -> Diagnosis:
    chain = PresentedChain(source=NET, address=NET.rpartition(":")[0], error=error, error_kind=kind, starttls=info)  # type: ignore[arg-type]
    return judge(evidence(chain))


@covers("starttls-refused")
def test_starttls_refused_says_what_the_server_said() -> None:
    info = StartTls(
        "smtp",
        banner="220 mx.test ESMTP",
        stage="starttls",
        code="454",
        reply="454 4.7.0 TLS not available due to local problem",
        offered=("PIPELINING", "STARTTLS"),
    )
    d = upgrade_failed("starttls-refused", "SMTP STARTTLS: the server refused STARTTLS: 454 4.7.0 …", info)
    assert d.ids() == ["starttls-refused"] and d.exit_code == 3 and d.verdict.value == "unreachable"
    f = one(d, "starttls-refused")
    assert f.severity is Severity.ERROR and f.sources == (NET,) and f.cert_position is None
    assert "220 mx.test ESMTP" in f.detail and "RFC 3207" in f.citation
    assert f.evidence == {
        "error_kind": "starttls-refused",
        "error": "SMTP STARTTLS: the server refused STARTTLS: 454 4.7.0 …",
        "protocol": "smtp",
        "banner": "220 mx.test ESMTP",
        "stage": "starttls",
        "code": "454",
        "reply": "454 4.7.0 TLS not available due to local problem",
        "offered": ["PIPELINING", "STARTTLS"],
    }
    # curl --ssl-reqd stops with its own words (measured in test_starttls); browsers do not speak SMTP; the other
    # families' mail libraries refuse or not depending on whether TLS is required
    assert "curl" in f.rejected_by and not {"chrome", "firefox", "safari"} & set(f.rejected_by)
    said = {v.client: v.error for v in d.clients}
    assert said["curl"] == "curl: (64) STARTTLS denied, code 454" and set(said) == set(CLIENT_IDS)


@covers("starttls-wrong-protocol")
def test_starttls_wrong_protocol() -> None:
    info = StartTls("imap", stage="greeting", reply="HTTP/1.1 400 Bad Request")
    d = upgrade_failed("starttls-protocol", "IMAP STARTTLS: the server does not speak IMAP", info)
    assert d.ids() == ["starttls-wrong-protocol"]
    f = one(d, "starttls-wrong-protocol")
    assert f.evidence["protocol"] == "imap" and f.evidence["reply"] == "HTTP/1.1 400 Bad Request"
    assert f.evidence["banner"] is None and f.evidence["error_kind"] == "starttls-protocol"


@pytest.mark.parametrize(
    ("protocol", "error", "says", "not_said"),
    [
        (  # the ports of the protocol claimed, and of what answered: nothing about the others
            "imap",
            "IMAP STARTTLS: the server does not speak IMAP: it answered 'HTTP/1.1 400 Bad Request' (an HTTP server; "
            "an IMAP greeting is '* OK', '* PREAUTH' or '* BYE', RFC 3501 §7.1)",
            ["IMAP with STARTTLS on 143 (imap://), with TLS from the first byte on 993 (imaps://)", "https:// on 443"],
            ["POP3", "LDAP", "SMTP", "587"],
        ),
        (
            "smtp",
            "SMTP STARTTLS: the server does not speak SMTP: it answered '+OK Dovecot ready.' (a POP3 server; an SMTP "
            "reply starts with a three-digit code, RFC 5321 §4.2)",
            [
                "SMTP with STARTTLS on 25 or 587 (smtp://, the submission port 587 or the relay port 25), with TLS "
                "from the first byte on 465 (smtps://)",
                "What answered is a POP3 server: POP3 with STLS on 110 (pop3://), with TLS from the first byte on "
                "995 (pop3s://)",
            ],
            ["IMAP", "LDAP", "NNTP"],
        ),
        (
            "nntp",
            "NNTP STARTTLS: the server speaks TLS from the first byte on this port (implicit TLS), not NNTP with "
            "STARTTLS",
            ["NNTP with STARTTLS on 119 (nntp://)", "This port speaks TLS from the first byte: check it as nntps://"],
            ["SMTP", "IMAP", "IRC"],
        ),
        (
            "mysql",
            "MySQL SSLRequest: the server does not speak MySQL: it sent 'HTTP/1.1 400' (an HTTP server; ...)",
            ["MySQL and MariaDB on 3306 (mysql://)", "A connection pooler or proxy"],
            ["PostgreSQL", "SMTP", "--starttls none"],
        ),
    ],
)
def test_starttls_wrong_protocol_fix_names_the_ports_that_matter(
    protocol: str, error: str, says: list[str], not_said: list[str]
) -> None:
    d = upgrade_failed("starttls-protocol", error, StartTls(protocol, stage="greeting", reply="x"))
    fix = one(d, "starttls-wrong-protocol").fix
    assert all(s in fix for s in says) and not any(s in fix for s in not_said), fix


@covers("starttls-timeout")
def test_starttls_timeout() -> None:
    info = StartTls("pop3", stage="greeting", reply="+OK slo")
    d = upgrade_failed("starttls-timeout", "POP3 STLS: the server did not send its greeting within 1 s", info)
    assert d.ids() == ["starttls-timeout"]
    f = one(d, "starttls-timeout")
    assert f.evidence["stage"] == "greeting" and f.evidence["reply"] == "+OK slo"


@covers("proxy-failed")
def test_proxy_failed_quotes_the_status_line() -> None:
    error = "the proxy http://proxy.test:3128 refused CONNECT 192.0.2.10:443: HTTP/1.1 403 Forbidden"
    chain = PresentedChain(
        source=NET, address="192.0.2.10", error=error, error_kind="proxy", proxy="http://proxy.test:3128"
    )
    d = judge(evidence(chain))
    assert d.ids() == ["proxy-failed"] and d.exit_code == 3 and d.verdict.value == "unreachable"
    f = one(d, "proxy-failed")
    assert f.severity is Severity.ERROR and "HTTP/1.1 403 Forbidden" in f.detail and "NO_PROXY" in f.fix
    assert f.evidence == {"error_kind": "proxy", "error": error, "proxy": "http://proxy.test:3128"}
    assert f.rejected_by == ()


@covers("key-types-differ")
def test_key_types_differ_names_the_broken_certificate() -> None:
    ecdsa = served(LEAF.cert, source=NET, key_type="ECDSA")  # without its intermediate
    rsa = served(LEAF.cert, CA.cert, source=f"{NET} (RSA)", key_type="RSA", key_type_only=True)  # complete
    d = judge(evidence(ecdsa, rsa))
    assert d.ids() == ["missing-intermediate", "key-types-differ"]
    assert one(d, "missing-intermediate").sources == (NET,)
    f = one(d, "key-types-differ")
    assert f.severity is Severity.WARNING and f.sources == (NET, f"{NET} (RSA)") and f.rejected_by == ()
    assert f.evidence["broken_key_type"] == "ECDSA" and f.evidence["errors"] == {
        "ECDSA": ["missing-intermediate"],
        "RSA": [],
    }
    # the two certificates of one server are not two addresses
    assert "endpoints-differ" not in d.ids()
    # both fine: nothing to say
    assert judge(evidence(served(LEAF.cert, CA.cert, key_type="ECDSA"), rsa)).ids() == []


CA_NAMES = ("CN=Clients CA,O=Unit", "CN=Unit Root")


def asked(auth: ClientAuth, *more: PresentedChain) -> Diagnosis:
    return judge(evidence(served(LEAF.cert, CA.cert, client_auth=auth), *more))


@covers("client-certificate-required")
def test_client_certificate_required_names_the_cas_the_server_accepts() -> None:
    d = asked(ClientAuth(CA_NAMES, sent=False, refused="tlsv13 alert certificate required"))
    assert d.ids() == ["client-certificate-required"] and d.exit_code == 1
    f = one(d, "client-certificate-required")
    assert f.severity is Severity.ERROR and f.sources == (NET,) and "RFC 8446" in f.citation
    assert "CN=Clients CA,O=Unit; CN=Unit Root" in f.detail and "tlsv13 alert certificate required" in f.detail
    assert "ssl_verify_client optional" in f.fix and "--cert" in f.fix
    assert f.evidence == {
        "ca_names": list(CA_NAMES),
        "sent": False,
        "refused": "tlsv13 alert certificate required",
        "tls_version": "TLSv1.3",
    }
    # every client without a certificate fails the same way: the table names them all
    assert set(f.rejected_by) == set(CLIENT_IDS)
    # a request without CA names: any certificate the server can verify
    d = asked(ClientAuth((), sent=False, refused="alert handshake failure"))
    assert "named no CA" in one(d, "client-certificate-required").detail


@covers("client-certificate-requested")
def test_client_certificate_requested_but_optional_is_a_warning() -> None:
    d = asked(ClientAuth(CA_NAMES, sent=False, refused=None), served(LEAF.cert, CA.cert, source=NET2))
    assert d.ids() == ["client-certificate-requested"] and d.valid
    f = one(d, "client-certificate-requested")
    assert f.severity is Severity.WARNING and f.sources == (NET,) and f.rejected_by == ()
    assert "ssl_verify_client" in f.detail
    # sent and accepted: nothing to say
    assert asked(ClientAuth(CA_NAMES, sent=True, refused=None)).ids() == []


@covers("client-certificate-rejected")
def test_client_certificate_rejected() -> None:
    d = asked(ClientAuth(CA_NAMES, sent=True, refused="tlsv1 alert unknown ca"))
    assert d.ids() == ["client-certificate-rejected"] and not d.valid
    f = one(d, "client-certificate-rejected")
    assert f.severity is Severity.ERROR and f.evidence["sent"] is True and "unknown ca" in f.detail


def from_file(*issues: PemIssue, **kw: Any) -> Diagnosis:
    return judge(evidence(served(LEAF.cert, CA.cert, source=FILE, address=None, pem_issues=issues), **kw))


@covers("pem-format")
def test_pem_format_severity_per_problem() -> None:
    d = from_file(PemIssue("crlf", "Windows line endings"), PemIssue("glued", "two blocks on one line", line=12))
    assert d.ids() == ["pem-format", "pem-format"]
    by_problem = {f.evidence["problem"]: f for f in d.findings}
    assert by_problem["glued"].severity is Severity.ERROR
    assert by_problem["glued"].evidence == {"file": FILE, "problem": "glued", "line": 12}
    assert by_problem["crlf"].severity is Severity.WARNING
    assert by_problem["crlf"].evidence == {"file": FILE, "problem": "crlf", "line": None}
    assert all(f.sources == (FILE,) and f.cert_position is None for f in d.findings)


@covers("key-in-cert-file")
def test_key_in_cert_file() -> None:
    d = from_file(PemIssue("private-key", "a PRIVATE KEY block", line=30))
    assert d.ids() == ["key-in-cert-file"]
    f = one(d, "key-in-cert-file")
    assert f.severity is Severity.WARNING and f.sources == (FILE,)
    assert f.evidence == {"file": FILE, "line": 30}


@covers("key-mismatch")
def test_key_mismatch() -> None:
    d = check(LEAF.cert, CA.cert, key_public=OTHER_CA.key.public_key(), key_source="server.key")
    assert d.ids() == ["key-mismatch"]
    f = one(d, "key-mismatch")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and f.sources == (NET,)
    assert f.evidence == {"key": "server.key", "certificate_sha256": fp(LEAF.cert)}
    # the intermediate's key: the certificates are in the wrong order
    swapped = one(check(LEAF.cert, CA.cert, key_public=CA.key.public_key(), key_source="k"), "key-mismatch")
    assert "wrong order" in swapped.detail
    assert check(LEAF.cert, CA.cert, key_public=LEAF.key.public_key(), key_source="k").ids() == []


# --- Certificate Transparency ----------------------------------------------------------------------------------


class _Keys:
    """What certdoctor.lab.ctlog.embed_scts asks of a lab PKI: its log keys (``keys.get``) and ``now``."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.keys = self
        self.now = AT
        self._keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("log-a", "log-b")}

    def get(self, name: str, _kind: str) -> Any:
        return self._keys[name]


CT_LOGS = _Keys()


def _ct_leaf(*logs: str) -> x509.Certificate:
    from certdoctor.lab.ctlog import embed_scts
    from certdoctor.lab.pkitypes import Issuer

    return embed_scts(CT_LOGS, LEAF.cert, Issuer("unit-ca", CA.cert, CA.key), logs)  # type: ignore[arg-type]


def _ct_log_list() -> Any:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    from certdoctor.ct import CtLog, LogList

    logs = {}
    for name, operator in (("log-a", "Operator A"), ("log-b", "Operator B")):
        spki = (
            CT_LOGS.get(name, "ec256")
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        log_id = hashlib.sha256(spki).digest()
        logs[log_id] = CtLog(log_id, spki, name, operator, "usable")
    return LogList(logs, "unit-log-list.json")


PUBLIC = (store(ROOT.cert, name="mozilla"),)  # the unit root as a public store's: the CT policies apply


@covers("ct-sct-missing")
def test_ct_no_sct_under_a_public_root() -> None:
    d = check(LEAF.cert, CA.cert, stores=PUBLIC)
    f = one(d, "ct-sct-missing")
    assert d.ids() == ["ct-sct-missing"] and f.severity is Severity.ERROR and f.cert_position == 0
    assert f.evidence["sct_count"] == 0 and f.evidence["clients"] == ["chrome", "firefox", "safari"]
    assert set(f.rejected_by) == {"chrome", "firefox", "safari"}
    assert check(LEAF.cert, CA.cert).ids() == []  # a private root: browsers do not enforce CT


@covers("ct-policy-not-met")
def test_ct_too_few_scts_names_the_failing_rules() -> None:
    one_sct = _ct_leaf("log-a")
    d = check(one_sct, CA.cert, stores=PUBLIC, ct_logs=_ct_log_list())
    f = one(d, "ct-policy-not-met")
    assert d.ids() == ["ct-policy-not-met"]
    assert [x["rule"] for x in f.evidence["failures"]] == [
        "chrome-embedded-sct-count",
        "chrome-log-operator-diversity",
        "firefox-embedded-sct-count",
        "firefox-log-operator-diversity",
        "apple-embedded-sct-count",
    ]
    assert "Chrome, Firefox and Safari refuse it" in f.detail
    assert f.evidence["counted"] == 1 and f.evidence["signatures_verified"] is True
    # two logs of two operators: compliant; without a log list the SCTs count unverified
    assert check(_ct_leaf("log-a", "log-b"), CA.cert, stores=PUBLIC, ct_logs=_ct_log_list()).ids() == []
    assert check(_ct_leaf("log-a", "log-b"), CA.cert, stores=PUBLIC).ids() == []
    # public_roots marks a private root as public for CT only
    marked = check(one_sct, CA.cert, public_roots=(ROOT.cert,))
    assert marked.ids() == ["ct-policy-not-met"]


@covers("ct-sct-invalid-signature")
def test_ct_sct_whose_signature_does_not_verify() -> None:
    bad = _ct_leaf("log-a", "bad:log-b")
    d = check(bad, CA.cert, ct_logs=_ct_log_list())  # a private root: only the signature is judged
    f = one(d, "ct-sct-invalid-signature")
    assert d.ids() == ["ct-sct-invalid-signature"] and f.severity is Severity.WARNING
    assert f.evidence["sct"]["verified"] is False and f.evidence["sct"]["log"] == "log-b"
    assert f.rejected_by == ()
    assert check(bad, CA.cert).ids() == []  # without a log list nothing is verified
    public = check(bad, CA.cert, stores=PUBLIC, ct_logs=_ct_log_list())
    assert set(public.ids()) == {"ct-sct-invalid-signature", "ct-policy-not-met"}


# --- the registry: coverage and running order ------------------------------------------------------------------


def test_every_registered_check_has_a_unit_test() -> None:
    load_all()
    # the policy-* checks (certdoctor.checks.policy) are tested in test_policy.py, each on lab scenarios, and
    # test_policy.test_every_policy_finding_is_a_registered_target_check holds them all to it
    missing = sorted(set(REGISTRY) - set(COVERS) - {i for i in REGISTRY if i.startswith("policy-")})
    unknown = sorted(set(COVERS) - set(REGISTRY))
    where = Path(__file__).name
    assert not missing, f"registered checks without a unit test in {where} (add one with @covers): {missing}"
    assert not unknown, f"{where} covers ids that are not registered checks: {unknown}"
    tests = {name for names in COVERS.values() for name in names}
    assert all(name.startswith("test_") and name in globals() for name in tests)


def test_load_all_is_reexported_and_imports_every_family() -> None:
    assert load_all is registry.load_all
    load_all()
    families = {c.func.__module__.rpartition(".")[2] for c in REGISTRY.values()}
    assert families == set(registry._FAMILIES)


def test_verification_failed_is_the_only_final_check_and_runs_last() -> None:
    load_all()
    assert {c.id for c in REGISTRY.values() if c.phase == "final"} == {"verification-failed"}
    chain_checks = [c.id for c in registry._sorted_checks() if c.scope == "chain"]
    assert chain_checks[-1] == "verification-failed"
    with pytest.raises(ValueError, match="unknown phase"):
        registry.check("x", title="x", severity=Severity.INFO, citation="x", phase="last")  # type: ignore[arg-type]


def test_verification_failed_runs_last_even_when_registered_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the verdict family had been imported before every other: it still runs after them, so it sees
    their findings."""
    load_all()
    first = REGISTRY["verification-failed"]
    reordered = [first, *(c for c in REGISTRY.values() if c is not first)]
    fake = {c.id: dataclasses.replace(c, order=i) for i, c in enumerate(reordered)}
    assert fake["verification-failed"].order == 0
    monkeypatch.setattr(registry, "REGISTRY", fake)
    monkeypatch.setattr(registry, "_SORTED", [])
    assert [c.id for c in registry._sorted_checks() if c.scope == "chain"][-1] == "verification-failed"
    # an expired leaf under the lax CA: the verifier rejects it, and "expired" explains why
    cert = leaf(NAME, LAX_CA, not_before=AT - timedelta(days=100), not_after=AT - timedelta(days=10)).cert
    ev = evidence(served(cert, LAX_CA.cert))
    chain = ev.chains[0]

    def context() -> ChainContext:
        return ChainContext(ev, chain, (chain.source,), analyse(chain, ev, StoreIndex(ev.stores)))

    assert [f.id for f in run_chain_checks(context())] == ["expired"]
    # had it run first (before any finding), the safety net would have fired
    assert len(list(first.func(context()))) == 1


def test_verification_failed_runs_last_when_its_module_is_imported_first() -> None:
    """The real thing, in a fresh interpreter: import the verdict family before load_all()."""
    code = (
        "import certdoctor.checks.verdict\n"
        "from certdoctor.checks import REGISTRY, registry\n"
        "assert REGISTRY['verification-failed'].order == 0, REGISTRY['verification-failed']\n"
        "print([c.id for c in registry._sorted_checks() if c.scope == 'chain'][-1])\n"
    )
    src = str(Path(certdoctor.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "verification-failed"


# --- certificate profile (RFC 5280, CA/B Forum BR) and --crl -----------------------------------------------------


def _custom(*certs: x509.Certificate, roots: tuple[x509.Certificate, ...], **kw: Any) -> Diagnosis:
    """Judge a chain against ``roots`` given as --ca-file (your own CA: its profile is judged too)."""
    return check(*certs, stores=(), extra_roots=roots, **kw)


def _with_aki(cert_name: str, issuer: Any, aki: x509.AuthorityKeyIdentifier, **kw: Any) -> x509.Certificate:
    """A leaf whose authorityKeyIdentifier is ``aki`` instead of the issuer's (the builder adds the right one:
    rebuild without it)."""
    from cryptography.hazmat.primitives import hashes

    base = leaf(cert_name, issuer, **kw).cert
    b = (
        x509.CertificateBuilder()
        .subject_name(base.subject)
        .issuer_name(base.issuer)
        .public_key(base.public_key())
        .serial_number(base.serial_number)
        .not_valid_before(base.not_valid_before_utc)
        .not_valid_after(base.not_valid_after_utc)
    )
    for ext in base.extensions:
        if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
            b = b.add_extension(ext.value, critical=ext.critical)
    return b.add_extension(aki, critical=False).sign(issuer.key, hashes.SHA256())


@covers("aki-ski-mismatch")
def test_aki_ski_mismatch() -> None:
    wrong = x509.AuthorityKeyIdentifier(b"\x01" * 20, None, None)
    d = check(_with_aki("aki.test", CA, wrong), CA.cert, name="aki.test")
    f = one(d, "aki-ski-mismatch")
    assert f.severity is Severity.ERROR and f.cert_position == 0 and not d.valid
    assert f.evidence["authority_key_identifier"] == "01:" * 19 + "01"
    assert "unable to get local issuer certificate" in f.detail and "curl, Python, Node" in f.detail


@covers("key-identifier-missing", "extension-criticality")
def test_key_identifier_missing_and_criticality() -> None:
    no_ski_root = root("No SKI Root", extensions=())
    # a root without SKI: rebuild the builder's root without the extension
    from cryptography.hazmat.primitives import hashes

    b = x509.CertificateBuilder().subject_name(no_ski_root.name).issuer_name(no_ski_root.name)
    b = b.public_key(no_ski_root.key.public_key()).serial_number(7)
    b = b.not_valid_before(no_ski_root.cert.not_valid_before_utc).not_valid_after(no_ski_root.cert.not_valid_after_utc)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    b = b.add_extension(
        x509.NameConstraints(permitted_subtrees=[x509.DNSName("leaf.test")], excluded_subtrees=None), critical=False
    )
    bare_root = b.sign(no_ski_root.key, hashes.SHA256())
    cert = leaf(NAME, no_ski_root).cert
    d = _custom(cert, roots=(bare_root,))
    f = one(d, "key-identifier-missing")
    assert f.severity is Severity.WARNING and f.evidence == {"missing": ["subjectKeyIdentifier"]}
    c = one(d, "extension-criticality")
    assert c.evidence["extensions"] == [
        {"extension": "nameConstraints", "must_be_critical": True, "rule": "RFC 5280 §4.2.1.10"}
    ]
    # (cryptography's verifier refuses such a root: verification-failed, not one of these warnings)
    # a public-store root is not judged: the same root in a store gives neither finding
    d2 = check(cert, stores=(store(bare_root),))
    assert "key-identifier-missing" not in d2.ids() and "extension-criticality" not in d2.ids()


@covers("aki-issuer-serial")
def test_aki_issuer_serial() -> None:
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(CA.key.public_key())
    full = x509.AuthorityKeyIdentifier(aki.key_identifier, [x509.DirectoryName(ROOT.name)], CA.cert.serial_number)
    d = check(_with_aki("full.test", CA, full), CA.cert, name="full.test")
    f = one(d, "aki-issuer-serial")
    assert f.severity is Severity.WARNING and f.evidence == {
        "fields": ["authorityCertIssuer", "authorityCertSerialNumber"]
    }
    assert "aki-ski-mismatch" not in d.ids() and d.valid


@covers("cn-not-in-san")
def test_cn_not_in_san() -> None:
    cert = leaf("Leaf.Test", CA, sans=["leaf.test"]).cert  # differs in case only: BR wants an exact copy
    d = check(cert, CA.cert, name="leaf.test")
    f = one(d, "cn-not-in-san")
    assert f.severity is Severity.WARNING and d.valid
    assert f.evidence["common_names"] == ["Leaf.Test"]
    ip = issue(
        "010.0.0.1",
        issuer=CA,
        sans=None,
        extensions=[
            (x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("10.0.0.1"))]), False)
        ],
    ).cert
    assert one(check(ip, CA.cert, name="10.0.0.1"), "cn-not-in-san").evidence["ip_addresses"] == ["10.0.0.1"]
    good = issue(
        "10.0.0.1",
        issuer=CA,
        sans=None,
        extensions=[
            (x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("10.0.0.1"))]), False)
        ],
    ).cert
    assert check(good, CA.cert, name="10.0.0.1").findings == ()


@covers("leaf-without-eku", "leaf-any-eku")
def test_leaf_eku_profile() -> None:
    d = check(leaf(NAME, CA, eku=None).cert, CA.cert)
    f = one(d, "leaf-without-eku")
    assert f.severity is Severity.WARNING and "Apple" in f.detail and d.valid
    any_eku = x509.ObjectIdentifier("2.5.29.37.0")
    d = check(leaf(NAME, CA, eku=[any_eku]).cert, CA.cert)
    assert one(d, "leaf-any-eku").evidence == {"extended_key_usage": ["anyExtendedKeyUsage"]}


@covers("root-has-eku")
def test_root_has_eku() -> None:
    r = root("EKU Root", eku=[SERVER_AUTH])
    d = _custom(leaf(NAME, r).cert, roots=(r.cert,))
    f = one(d, "root-has-eku")
    assert f.severity is Severity.WARNING and f.evidence == {"extended_key_usage": ["serverAuth"]} and d.valid


@covers("rsa-modulus-size")
def test_rsa_modulus_size() -> None:
    cert = leaf(NAME, CA, key=rsa_key("odd", 2052)).cert
    f = one(check(cert, CA.cert), "rsa-modulus-size")
    assert f.severity is Severity.WARNING and f.evidence == {"key_type": "RSA", "key_bits": 2052}


@covers("serial-number-invalid")
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_serial_number_invalid() -> None:
    """cryptography refuses to build a zero serial: build serial 1 and patch the DER (the signature breaks,
    which the check does not care about)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    base = LEAF.cert
    b = x509.CertificateBuilder().subject_name(base.subject).issuer_name(base.issuer).public_key(base.public_key())
    b = b.serial_number(1).not_valid_before(base.not_valid_before_utc).not_valid_after(base.not_valid_after_utc)
    for ext in base.extensions:
        b = b.add_extension(ext.value, critical=ext.critical)
    der = b.sign(CA.key, hashes.SHA256()).public_bytes(Encoding.DER)
    version_and_serial = bytes.fromhex("a003020102020101")
    assert der.count(version_and_serial) == 1
    zero = x509.load_der_x509_certificate(der.replace(version_and_serial, bytes.fromhex("a003020102020100")))
    f = one(check(zero, CA.cert), "serial-number-invalid")
    assert f.severity is Severity.WARNING and f.evidence == {"serial_number": 0, "octets": 1}


@covers("max-chain-depth-exceeded")
def test_max_chain_depth_exceeded() -> None:
    assert check(LEAF.cert, CA.cert, max_chain_depth=1).findings == ()
    d = check(LEAF.cert, CA.cert, max_chain_depth=0)
    f = one(d, "max-chain-depth-exceeded")
    assert f.severity is Severity.ERROR and f.evidence == {"max_chain_depth": 0, "intermediates": 1}
    assert "certificate chain too long" in f.detail and f.cert_position == 1


def _crl(issuer: Any, revoked: tuple[int, ...] = (), *, number: bool | None = False) -> bytes:
    """A CRL by ``issuer`` (DER), valid around AT; ``number`` None: no cRLNumber, True: a critical one."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    b = x509.CertificateRevocationListBuilder().issuer_name(issuer.name)
    b = b.last_update(AT - timedelta(days=1)).next_update(AT + timedelta(days=6))
    if number is not None:
        b = b.add_extension(x509.CRLNumber(3), critical=number)
    for serial in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(AT - timedelta(hours=2))
        b = b.add_revoked_certificate(entry.build())
    return b.sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)


@covers("crl-nonconforming")
def test_supplied_crl_revokes_and_is_linted() -> None:
    d = check(LEAF.cert, CA.cert, crls=(("ca.crl", _crl(CA, (LEAF.cert.serial_number,))),))
    f = one(d, "revoked")
    assert f.evidence["source"] == "crl" and f.evidence["url"] == "ca.crl" and "the CRL file ca.crl" in f.detail
    assert "crl-nonconforming" not in d.ids()
    # not revoked, but no cRLNumber / a critical one
    d = check(LEAF.cert, CA.cert, crls=(("ca.crl", _crl(CA, number=None)),))
    assert one(d, "crl-nonconforming").evidence["problems"][0].startswith("it has no cRLNumber")
    assert d.valid and "revoked" not in d.ids()
    d = check(LEAF.cert, CA.cert, crls=(("ca.crl", _crl(CA, number=True)),))
    assert "critical" in one(d, "crl-nonconforming").evidence["problems"][0]
    # a CRL from a CA whose keyUsage lacks cRLSign is not used: the status is unknown
    no_crlsign = x509.KeyUsage(False, False, False, False, False, True, False, False, False)
    ca = intermediate("No CRLSign CA", ROOT, key_usage=no_crlsign)
    cert = leaf(NAME, ca).cert
    d = check(cert, ca.cert, crls=(("ca.crl", _crl(ca, (cert.serial_number,))),))
    u = one(d, "revocation-unknown")
    assert "cRLSign" in u.detail and "revoked" not in d.ids()


# --- finding texts agree with the client profiles ------------------------------------------------------------
# checks sit below clients (they cannot read the profiles), so the client errors a finding quotes are checked
# here against the profiles' messages, which the conformance suite checks against the real clients.


def _code(message: str) -> str:
    """The part of a profile message a finding quotes: Node's code, or the text after the exception class."""
    return message.split(": ")[0] if message.isupper() or message.split(":")[0].isupper() else message


def test_finding_texts_quote_the_profiles() -> None:
    from certdoctor.clients.profiles import CHROME, CURL, FIREFOX, GO, JAVA, NODE, PROFILES, PYTHON

    eku_leaf = one(check(leaf(NAME, CA, eku=[CLIENT_AUTH]).cert, CA.cert), "missing-server-auth-eku").detail
    for profile in (CURL, NODE, GO, CHROME, FIREFOX):
        quoted = profile.messages["eku"].removeprefix("curl: (60) SSL certificate problem: ")
        assert _code(quoted) in eku_leaf, profile.id
    assert JAVA.messages["eku"].removeprefix("javax.net.ssl.SSLHandshakeException: ") in eku_leaf

    email_ca = intermediate("Email CA", ROOT, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    eku_ca = one(check(leaf(NAME, email_ca).cert, email_ca.cert), "missing-server-auth-eku").detail
    for profile in (CURL, NODE, GO, CHROME, FIREFOX):
        assert profile.ca_eku_chained and _code(profile.messages["ca-eku"].split("problem: ")[-1]) in eku_ca
    assert not JAVA.ca_eku_chained and "Java accepts" in eku_ca

    rsa_ca = intermediate("Unit RSA CA", ROOT, key=rsa_key("unit rsa ca"))
    sha1 = one(check(leaf(NAME, rsa_ca, sha1=True).cert, rsa_ca.cert), "weak-signature")
    assert CHROME.messages["weak-signature"] in sha1.detail and FIREFOX.messages["weak-signature"] in sha1.detail
    assert "CA signature digest algorithm too weak" in PYTHON.messages["weak-signature"]
    assert JAVA.sha1 == "private-only" and "Java rejects them only under a public root" in sha1.detail

    cn_only = one(check(leaf(NAME, CA, sans=None).cert, CA.cert), "hostname-mismatch").detail
    fallback = {p.id for p in PROFILES if p.cn_fallback}
    assert {"curl", "python", "node", "java"} <= fallback and not {"chrome", "firefox", "safari", "go"} & fallback
    assert "OpenSSL clients (curl, Python, Node) and Java still fall back" in cn_only
    assert CHROME.messages["hostname-cn-only"] in cn_only and GO.messages["hostname-cn-only"] in cn_only

    ca_leaf = issue(NAME, issuer=CA, ca=True, sans=[NAME], eku=[SERVER_AUTH])
    leaf_ca = one(check(ca_leaf.cert, CA.cert), "leaf-is-ca").detail
    assert [p.id for p in PROFILES if p.leaf_ca_rejected] == ["firefox"] and FIREFOX.messages["leaf-ca"] in leaf_ca

    ed = one(check(leaf(NAME, CA, key=ed25519.Ed25519PrivateKey.generate()).cert, CA.cert), "ed25519-key").detail
    assert CHROME.messages["ed25519"] in ed and not CHROME.ed25519 and all(p.ed25519 for p in (CURL, JAVA, GO))
