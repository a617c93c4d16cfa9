"""Revocation judgement: is each certificate of the built path revoked, according to whom, and can we tell?

Pure functions of the evidence (no I/O), used by the checks and by collection (to decide whether a CRL is
needed after OCSP). For every certificate of the best path except the trust anchor:

* a **stapled** OCSP response (leaf only) and **OCSP** responses fetched from the AIA OCSP URLs are
  validated like RFC 6960 §3.2 says: the certID must name this certificate and issuer, the signer must be
  the issuer or a responder it delegated to (issued directly by it, with the id-kp-OCSPSigning EKU), the
  signature must verify, and thisUpdate/nextUpdate must bracket the check time;
* **CRLs** from the CRL distribution points are validated too: issued and signed by the certificate's
  issuer, in date, and covering this kind of certificate (issuingDistributionPoint); then the serial is
  looked up.

A certificate is ``revoked`` when any valid source says so, ``good`` when a valid, fresh source says so,
and ``unknown`` when it has revocation pointers but no usable answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from . import certinfo
from .certinfo import short_reason
from .model import Evidence, PresentedChain, RevocationFetch

CLOCK_SKEW = timedelta(minutes=5)  # tolerance for a responder's clock running ahead or behind
NO_NEXT_UPDATE_LIFETIME = timedelta(days=4)  # CA/B BR §4.9.10: responses refreshed at least every 4 days
MAX_LOOKUP_URLS = 2  # OCSP URLs, and CRL URLs, tried per certificate

_RESPONSE_STATUS = {
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest (it could not read the request)",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    ocsp.OCSPResponseStatus.TRY_LATER: "tryLater (it is overloaded or not ready)",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired (it wants signed requests)",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized (it does not answer for this CA or certificate)",
}


@dataclass(frozen=True)
class Answer:
    """What one source (a staple, an OCSP responder, a CRL) says about one certificate.

    ``status`` is "good", "revoked" or "unknown" (an OCSP responder that does not know the certificate) when
    the source gave a validated answer, None when it gave none; then ``error`` says why and ``error_kind``
    classifies it: "fetch" (no response), "status" (the responder refused), "parse", "signature",
    "responder" (signed by someone not allowed to), "certid" (about another certificate), "future"
    (thisUpdate ahead of the clock), "issuer"/"scope" (a CRL from another issuer, or not covering this
    certificate). ``stale`` marks a validated answer whose nextUpdate has passed.
    """

    source: str  # "staple", "ocsp" or "crl"
    url: str | None  # None for a staple
    status: str | None = None
    error: str | None = None
    error_kind: str | None = None
    stale: bool = False
    this_update: datetime | None = None
    next_update: datetime | None = None
    produced_at: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None  # CRLReason, e.g. "keyCompromise"
    signer: str | None = None  # "the issuer" or "delegated responder <subject>"
    staple_sources: tuple[str, ...] = ()  # addresses that stapled this response
    method: str | None = None
    cached: bool = False

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"

    @property
    def good(self) -> bool:
        return self.status == "good" and not self.stale

    @property
    def definitive(self) -> bool:
        return self.revoked or self.good

    @property
    def where(self) -> str:
        if self.source == "staple":
            return "the OCSP response stapled by the server"
        if self.source == "ocsp":
            return f"the OCSP responder {certinfo.short_url(self.url)}"
        if self.url and not self.url.lower().startswith(("http://", "https://")):
            return f"the CRL file {self.url}"
        return f"the CRL {certinfo.short_url(self.url)}"

    def to_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat()

        return {
            "source": self.source,
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "error_kind": self.error_kind,
            "stale": self.stale,
            "this_update": iso(self.this_update),
            "next_update": iso(self.next_update),
            "produced_at": iso(self.produced_at),
            "revoked_at": iso(self.revoked_at),
            "reason": self.reason,
            "signer": self.signer,
            "stapled_by": list(self.staple_sources),
            "method": self.method,
            "cached": self.cached,
        }


# --- OCSP ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _cert_id(cert: x509.Certificate, issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) for ``cert`` under ``algorithm``, computed by cryptography itself."""
    hash_alg = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
        algorithm
    ]
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hash_alg).build()
    return req.issuer_name_hash, req.issuer_key_hash


def key_sha1(cert: x509.Certificate) -> str:
    """SHA-1 of the certificate's subjectPublicKey bits (RFC 5280 key identifier method 1), hex."""
    key = certinfo.public_key(cert)
    if key is None:
        return ""  # an unparsable key matches no responder key hash
    return x509.SubjectKeyIdentifier.from_public_key(key).digest.hex()


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSPRequest for ``cert`` (SHA-1 certID, which every responder understands; no nonce, so
    responders may answer from their cache, as they do for browsers)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return req.public_bytes(Encoding.DER)


def ocsp_key(url: str, cert: x509.Certificate, issuer: x509.Certificate) -> str:
    """What an OCSP lookup asks: ``"<url> <issuer key SHA-1 hex> <serial hex>"`` (the RevocationFetch key)."""
    return f"{url} {key_sha1(issuer)} {cert.serial_number:x}"


def crl_key(url: str) -> str:
    """What a CRL download asks: its URL (the RevocationFetch key)."""
    return url


def _verify(key: Any, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm | None) -> bool:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    try:
        if isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
            try:
                key.verify(signature, data, padding.PKCS1v15(), hash_alg)
            except Exception:  # RSASSA-PSS responses exist, rarely
                key.verify(signature, data, padding.PSS(padding.MGF1(hash_alg), padding.PSS.AUTO), hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
            key.verify(signature, data, ec.ECDSA(hash_alg))
        elif isinstance(key, dsa.DSAPublicKey) and hash_alg is not None:
            key.verify(signature, data, hash_alg)
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return False
    except Exception:
        return False
    return True


def _crl_issuer(crl: x509.CertificateRevocationList) -> str:
    try:
        return certinfo.name_str(crl.issuer)
    except Exception:
        return "<undecodable name>"


def _responder_matches(resp: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if resp.responder_key_hash is not None:
        return resp.responder_key_hash.hex() == key_sha1(cert)
    try:
        return bool(resp.responder_name == cert.subject)
    except Exception:  # an undecodable name on either side
        return False


def _signer(
    resp: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime
) -> tuple[x509.Certificate | None, str, str | None]:
    """(signing certificate, description, error) for a response about a certificate issued by ``issuer``."""
    responder = (
        f"key hash {resp.responder_key_hash.hex()}"
        if resp.responder_key_hash is not None
        else certinfo.name_str(resp.responder_name)  # type: ignore[arg-type]
    )
    if _responder_matches(resp, issuer):
        return issuer, "the issuer", None
    for cand in resp.certificates:
        if not _responder_matches(resp, cand):
            continue
        label = f"delegated responder {certinfo.subject(cand)}"
        if not certinfo.signed_by(cand, issuer):
            return (
                None,
                label,
                (
                    f"the response is signed by {certinfo.subject(cand)}, which was not issued by the certificate's "
                    f"issuer {certinfo.subject(issuer)} (RFC 6960 §4.2.2.2 requires a responder issued directly by it)"
                ),
            )
        ekus = certinfo.extended_key_usages(cand) or []
        if "OCSPSigning" not in ekus and ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string not in ekus:
            return (
                None,
                label,
                (
                    f"the response is signed by {certinfo.subject(cand)}, issued by the CA but without the "
                    "id-kp-OCSPSigning extended key usage, so it may not sign OCSP responses"
                ),
            )
        if not certinfo.in_validity(cand, at):
            return (
                None,
                label,
                (
                    f"the delegated responder certificate {certinfo.subject(cand)} is outside its validity period "
                    f"({certinfo.not_before(cand):%Y-%m-%d} to {certinfo.not_after(cand):%Y-%m-%d})"
                ),
            )
        return cand, label, None
    return (
        None,
        responder,
        (
            f"the response is signed by a responder identified by {responder}, which is neither the issuer "
            f"{certinfo.subject(issuer)} nor a delegated responder certificate included in the response"
        ),
    )


def evaluate_ocsp(
    data: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    at: datetime,
    *,
    source: str = "ocsp",
    url: str | None = None,
    method: str | None = None,
    cached: bool = False,
    staple_sources: tuple[str, ...] = (),
) -> Answer:
    """Validate a DER OCSP response about ``cert`` (issued by ``issuer``) as of ``at``."""
    base: dict[str, Any] = {
        "source": source,
        "url": url,
        "method": method,
        "cached": cached,
        "staple_sources": staple_sources,
    }
    try:
        resp = ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        head = data[:16].hex(" ")
        return Answer(
            **base,
            error=f"not an OCSP response ({len(data)} bytes starting {head}: {short_reason(exc)})",
            error_kind="parse",
        )
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        what = _RESPONSE_STATUS.get(resp.response_status, resp.response_status.name)
        return Answer(**base, error=f"the responder answered {what}", error_kind="status")
    try:
        return _evaluate_successful(resp, cert, issuer, at, base)
    except (ValueError, TypeError, KeyError) as exc:  # odd algorithms or encodings in an untrusted response
        return Answer(**base, error=f"cannot read the OCSP response: {short_reason(exc)}", error_kind="parse")


def _evaluate_successful(
    resp: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate, at: datetime, base: dict[str, Any]
) -> Answer:
    single = None
    asked_about: list[str] = []
    for r in resp.responses:
        asked_about.append(f"{r.serial_number:x}")
        if r.serial_number != cert.serial_number:
            continue
        algorithm = r.hash_algorithm.name
        if algorithm not in ("sha1", "sha256", "sha384", "sha512"):
            continue
        if (r.issuer_name_hash, r.issuer_key_hash) == _cert_id(cert, issuer, algorithm):
            single = r
            break
    signer, signer_label, signer_error = _signer(resp, issuer, at)
    base = dict(base, signer=signer_label)
    if single is None:
        serials = ", ".join(asked_about[:4]) or "none"
        return Answer(
            **base,
            error=f"the response does not cover this certificate (serial {cert.serial_number:x} from "
            f"{certinfo.subject(issuer)}); it answers for serial {serials}",
            error_kind="certid",
        )
    times = {
        "this_update": single.this_update_utc,
        "next_update": single.next_update_utc,
        "produced_at": resp.produced_at_utc,
    }
    if signer_error is not None or signer is None:
        return Answer(**base, **times, error=signer_error, error_kind="responder")
    if not _verify(signer.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm):
        return Answer(
            **base,
            **times,
            error=f"the response signature does not verify with the key of {signer_label} ({certinfo.subject(signer)})",
            error_kind="signature",
        )
    if single.this_update_utc > at + CLOCK_SKEW:
        return Answer(
            **base,
            **times,
            error=f"the response claims to be from {single.this_update_utc:%Y-%m-%d %H:%M} UTC, in the future "
            "(the responder's clock or this machine's is wrong)",
            error_kind="future",
        )
    end = single.next_update_utc or single.this_update_utc + NO_NEXT_UPDATE_LIFETIME
    stale = end < at - CLOCK_SKEW
    status = {
        ocsp.OCSPCertStatus.GOOD: "good",
        ocsp.OCSPCertStatus.REVOKED: "revoked",
        ocsp.OCSPCertStatus.UNKNOWN: "unknown",
    }[single.certificate_status]
    revoked_at = single.revocation_time_utc if status == "revoked" else None
    reason = _reason_name(single.revocation_reason) if status == "revoked" else None
    return Answer(**base, **times, status=status, stale=stale, revoked_at=revoked_at, reason=reason)


def _reason_name(reason: x509.ReasonFlags | None) -> str | None:
    return None if reason is None else reason.value


def ocsp_next_update(data: bytes) -> datetime | None:
    """nextUpdate of the (first) single response, for caching; None when absent or unreadable."""
    try:
        resp = ocsp.load_der_ocsp_response(data)
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        return next(iter(resp.responses)).next_update_utc
    except (ValueError, StopIteration):
        return None


# --- CRLs ---------------------------------------------------------------------------------------------


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL in DER or PEM; raises ValueError."""
    if data.lstrip()[:11] == b"-----BEGIN ":
        return x509.load_pem_x509_crl(data.strip())
    return x509.load_der_x509_crl(data)


@lru_cache(maxsize=256)
def _crl_for(data: bytes) -> x509.CertificateRevocationList | Exception:
    try:
        return parse_crl(data)
    except ValueError as exc:
        return exc


@lru_cache(maxsize=1024)
def _crl_signature_ok(data: bytes, issuer: x509.Certificate) -> bool:
    crl = _crl_for(data)
    if isinstance(crl, Exception):
        return False
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except Exception:
        return False


def crl_next_update(data: bytes) -> datetime | None:
    """The CRL's nextUpdate (UTC), or None when it has none or cannot be read (RFC 5280 §5.1.2.5)."""
    crl = _crl_for(data)
    return None if isinstance(crl, Exception) else crl.next_update_utc


def evaluate_crl(
    data: bytes, cert: x509.Certificate, issuer: x509.Certificate, at: datetime, *, url: str, cached: bool = False
) -> Answer:
    """Validate a CRL (DER or PEM) published by ``issuer`` and look ``cert`` up in it, as of ``at``."""
    base: dict[str, Any] = {"source": "crl", "url": url, "cached": cached}
    crl = _crl_for(data)
    if isinstance(crl, Exception):
        return Answer(**base, error=f"not a CRL ({len(data)} bytes: {short_reason(crl)})", error_kind="parse")
    times = {"this_update": crl.last_update_utc, "next_update": crl.next_update_utc}
    try:
        same_issuer = bool(crl.issuer == cert.issuer)
    except Exception:  # an undecodable name on either side
        same_issuer = False
    if not same_issuer:
        return Answer(
            **base,
            **times,
            error=f"the CRL is issued by {_crl_issuer(crl)}, not by the certificate's issuer "
            f"{certinfo.issuer(cert)} (indirect CRLs are not supported)",
            error_kind="issuer",
        )
    if not _crl_signature_ok(data, issuer):
        return Answer(
            **base,
            **times,
            error=f"the CRL signature does not verify with the key of {certinfo.subject(issuer)}",
            error_kind="signature",
        )
    usage = certinfo.key_usages(issuer)
    if usage is not None and "crl_sign" not in usage:
        return Answer(
            **base,
            **times,
            error=f"the CRL issuer {certinfo.subject(issuer)} has a keyUsage without cRLSign "
            f"({', '.join(usage) or 'none'}), so it may not sign CRLs (RFC 5280 §4.2.1.3, §6.3.3 (f))",
            error_kind="issuer-usage",
        )
    scope = _crl_scope_error(crl, cert)
    if scope:
        return Answer(**base, **times, error=scope, error_kind="scope")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        reason = None
        with contextlib.suppress(x509.ExtensionNotFound, ValueError):
            reason = _reason_name(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason)
        stale = crl.next_update_utc is not None and crl.next_update_utc < at - CLOCK_SKEW
        return Answer(
            **base, **times, status="revoked", revoked_at=entry.revocation_date_utc, reason=reason, stale=stale
        )
    if crl.last_update_utc > at + CLOCK_SKEW:
        return Answer(
            **base,
            **times,
            error=f"the CRL claims to be from {crl.last_update_utc:%Y-%m-%d %H:%M} UTC, in the future",
            error_kind="future",
        )
    stale = crl.next_update_utc is not None and crl.next_update_utc < at - CLOCK_SKEW
    return Answer(**base, **times, status="good", stale=stale)


def _crl_scope_error(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> str | None:
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    if idp.only_contains_ca_certs and not certinfo.is_ca(cert):
        return "the CRL only covers CA certificates (issuingDistributionPoint onlyContainsCACerts)"
    if idp.only_contains_user_certs and certinfo.is_ca(cert):
        return "the CRL only covers end-entity certificates (issuingDistributionPoint onlyContainsUserCerts)"
    if idp.only_contains_attribute_certs:
        return "the CRL only covers attribute certificates"
    if idp.only_some_reasons is not None:
        return "the CRL only covers some revocation reasons (partitioned CRLs are not supported)"
    return None


# --- the path ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertRevocation:
    """The revocation status of one certificate of the built path, with every answer considered."""

    cert: x509.Certificate
    issuer: x509.Certificate | None
    depth: int  # 0 = leaf
    ocsp_urls: tuple[str, ...]
    crl_urls: tuple[str, ...]
    answers: tuple[Answer, ...]
    checked: bool  # network lookups were allowed

    @property
    def has_pointers(self) -> bool:
        return bool(self.ocsp_urls or self.crl_urls)

    @property
    def revoked_by(self) -> Answer | None:
        return next((a for a in self.answers if a.revoked), None)

    @property
    def good_by(self) -> Answer | None:
        return next((a for a in self.answers if a.good), None)

    @property
    def status(self) -> str:
        """ "revoked", "good", "unknown", "unchecked" (--no-revocation), "no-issuer", or "no-source"."""
        if self.revoked_by is not None:
            return "revoked"
        if self.good_by is not None:
            return "good"
        if not self.has_pointers and not self.answers:
            return "no-source"
        if self.issuer is None:
            return "no-issuer"
        if not self.checked and not self.answers:
            return "unchecked"
        return "unknown"

    @property
    def decided_by(self) -> Answer | None:
        return self.revoked_by or self.good_by

    def to_dict(self) -> dict[str, Any]:
        decided = self.decided_by
        return {
            "sha256": certinfo.fingerprint(self.cert),
            "subject": certinfo.subject(self.cert),
            "depth": self.depth,
            "status": self.status,
            "source": decided.source if decided else None,
            "url": decided.url if decided else None,
            "revoked_at": decided.revoked_at.isoformat() if decided and decided.revoked_at else None,
            "reason": decided.reason if decided else None,
            "ocsp_urls": list(self.ocsp_urls),
            "crl_urls": list(self.crl_urls),
            "answers": [a.to_dict() for a in self.answers],
        }


def path_pairs(nodes: Sequence[Any], end: str) -> list[tuple[x509.Certificate, x509.Certificate | None]]:
    """(certificate, issuer) for every certificate of a path (``paths.CandidatePath`` nodes) whose revocation
    matters: all but a trust anchor or a self-signed root at the top."""
    certs = [n.cert for n in nodes]
    out: list[tuple[x509.Certificate, x509.Certificate | None]] = []
    for i, cert in enumerate(certs):
        top = i == len(certs) - 1
        if top and (end == "anchor" or (end == "untrusted-root" and i > 0)):
            break
        if top and certinfo.is_self_signed(cert):
            break
        out.append((cert, certs[i + 1] if not top else None))
    return out


def staples(chains: Iterable[PresentedChain]) -> dict[bytes, tuple[str, ...]]:
    """Distinct stapled responses and the sources that sent each."""
    out: dict[bytes, list[str]] = {}
    for c in chains:
        if c.ocsp_staple:
            out.setdefault(c.ocsp_staple, []).append(c.source)
    return {k: tuple(v) for k, v in out.items()}


@certinfo.per_certificate
def urls(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(OCSP URLs, CRL URLs) of ``cert`` worth trying: http(s) only, at most MAX_LOOKUP_URLS of each (asked for
    every certificate of every path judged: remembered per certificate object)."""

    def usable(items: list[str]) -> tuple[str, ...]:
        return tuple(u for u in items if u.lower().startswith(("http://", "https://")))[:MAX_LOOKUP_URLS]

    return usable(certinfo.ocsp_urls(cert)), usable(certinfo.crl_urls(cert))


def assess(
    evidence: Evidence,
    pairs: Sequence[tuple[x509.Certificate, x509.Certificate | None]],
    chains: Sequence[PresentedChain],
) -> list[CertRevocation]:
    """Every answer about every certificate of ``pairs``, from the staples of ``chains`` (the sources that
    presented this chain) and the OCSP/CRL fetches in the evidence."""
    out: list[CertRevocation] = []
    for depth, (cert, issuer) in enumerate(pairs):
        ocsp_urls, crl_urls = urls(cert)
        answers: list[Answer] = []
        if issuer is not None:
            if depth == 0:
                for data, sources in staples(chains).items():
                    answers.append(
                        evaluate_ocsp(data, cert, issuer, evidence.at, source="staple", staple_sources=sources)
                    )
            for url in ocsp_urls:
                f = evidence.revocation.get(ocsp_key(url, cert, issuer))
                if f is not None:
                    answers.append(_from_fetch(f, cert, issuer, evidence.at))
            for url in crl_urls:
                f = evidence.revocation.get(crl_key(url))
                if f is not None:
                    answers.append(_from_fetch(f, cert, issuer, evidence.at))
            for source, data in supplied_crls(evidence, cert):
                answers.append(evaluate_crl(data, cert, issuer, evidence.at, url=source))
        out.append(
            CertRevocation(cert, issuer, depth, ocsp_urls, crl_urls, tuple(answers), evidence.revocation_checked)
        )
    return out


def supplied_crls(evidence: Evidence, cert: x509.Certificate) -> list[tuple[str, bytes]]:
    """The CRLs given with --crl (``evidence.crls``) that name ``cert``'s issuer as their issuer."""
    out = []
    for source, data in evidence.crls:
        crl = _crl_for(data)
        if isinstance(crl, Exception):
            continue
        try:
            if crl.issuer == cert.issuer:
                out.append((source, data))
        except Exception:  # an undecodable name
            continue
    return out


def _from_fetch(f: RevocationFetch, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> Answer:
    if f.data is None:
        return Answer(
            source=f.kind,
            url=f.url,
            error=f.error or "no response",
            error_kind="fetch",
            method=f.method,
            cached=f.cached,
        )
    if f.kind == "ocsp":
        return evaluate_ocsp(f.data, cert, issuer, at, url=f.url, method=f.method, cached=f.cached)
    return evaluate_crl(f.data, cert, issuer, at, url=f.url, cached=f.cached)
