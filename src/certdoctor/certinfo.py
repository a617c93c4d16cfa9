"""Read-only facts about one certificate, tolerant of malformed extensions.

Certificates are attacker-controlled: every accessor here returns a safe default when an extension is
missing or cannot be parsed, instead of raising.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import math
import re
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# cryptography warns (a UserWarning subclass, printed by default) each time it parses a certificate whose serial
# number is not positive. Such certificates exist; the negative-serial check reports them once, as a finding.
warnings.filterwarnings(
    "ignore", message="Parsed a serial number which wasn't positive", category=CryptographyDeprecationWarning
)


_MAX_PER_CERTIFICATE = 4096  # certificates whose derived values each per_certificate function keeps
_T = TypeVar("_T")


def per_certificate(func: Callable[[x509.Certificate], _T]) -> Callable[[x509.Certificate], _T]:
    """Remember ``func``'s value per certificate *object* (at most :data:`_MAX_PER_CERTIFICATE`, then forget
    them all). For pure functions of a certificate that a scan asks about the same intermediates and roots
    thousands of times (the collector parses each distinct certificate once, so they are the same objects):
    ``functools.lru_cache`` would hash the certificate on every call, and cryptography hashes its whole parsed
    structure (several microseconds; more than most of these functions cost). Keyed by ``id()``; each entry
    holds its certificate, so no id is reused while the entry lives."""
    memo: dict[int, tuple[x509.Certificate, _T]] = {}

    @functools.wraps(func)
    def remembered(cert: x509.Certificate) -> _T:
        hit = memo.get(id(cert))
        if hit is not None and hit[0] is cert:
            return hit[1]
        value = func(cert)
        if len(memo) >= _MAX_PER_CERTIFICATE:
            memo.clear()
        memo[id(cert)] = (cert, value)
        return value

    return remembered


@per_certificate
def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as lowercase hex (no colons)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def short_fp(cert: x509.Certificate) -> str:
    return fingerprint(cert)[:16]


# The extensions looked up per certificate object: the checks and the client predictions ask the same few
# certificates (the intermediates and roots of a scan, which the collector parses once) for the same
# extensions thousands of times, and cryptography's lookup walks the list with an isinstance check each time.
# Keyed by id(); each entry holds its certificate, so no id is reused while the entry lives.
_EXTENSIONS: dict[int, tuple[x509.Certificate, dict[type, Any]]] = {}
_MAX_EXTENSIONS = 4096


def extension(cert: x509.Certificate, cls: type) -> x509.Extension[Any] | None:
    """The certificate's extension of class ``cls`` (``cert.extensions.get_extension_for_class``), None when it is
    absent or the extensions cannot be read (malformed, duplicated); remembered per certificate object."""
    entry = _EXTENSIONS.get(id(cert))
    if entry is None or entry[0] is not cert:
        if len(_EXTENSIONS) >= _MAX_EXTENSIONS:
            _EXTENSIONS.clear()
        entry = _EXTENSIONS[id(cert)] = (cert, _by_class(cert))
    found = entry[1]
    if cls in found:
        return found[cls]
    if found.get(_COMPLETE):  # every recognised extension is in the map: this one is absent
        return None
    try:
        ext: x509.Extension[Any] | None = cert.extensions.get_extension_for_class(cls)
    except Exception:  # not found, malformed or duplicate extensions
        ext = None
    found[cls] = ext
    return ext


_COMPLETE = object()  # key of a map from _by_class that holds every extension class the certificate has


def _by_class(cert: x509.Certificate) -> dict[Any, Any]:
    """The certificate's extensions by value class, read in one pass (what ``get_extension_for_class`` finds
    for each class, without walking the list with an isinstance check per lookup), marked complete; empty
    (every class then looked up one by one, with its own error handling) when the extensions cannot be read
    (malformed, duplicated). ``UnrecognizedExtension`` is left out: several may be present, and
    ``get_extension_for_class`` refuses that class."""
    try:
        extensions = cert.extensions
    except Exception:
        return {}
    found: dict[Any, Any] = {_COMPLETE: True}
    for ext in extensions:
        kind = type(ext.value)
        if kind is x509.UnrecognizedExtension:
            continue
        found.setdefault(kind, ext)
    return found


def extension_value(cert: x509.Certificate, cls: type) -> Any:
    """The value of :func:`extension` (None when absent or unreadable)."""
    ext = extension(cert, cls)
    return None if ext is None else ext.value


_ext = extension_value


def name_str(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except Exception:
        return "<unparsable name>"


def subject(cert: x509.Certificate) -> str:
    """The subject as an RFC 4514 string; a name cryptography cannot decode is rendered from its raw DER, with
    the undecodable values escaped (``CN=<undecodable TeletexString: 0x636166e9>``)."""
    try:
        name = cert.subject
    except Exception:
        return raw_name_str(_tbs_name(cert, "subject"))
    return name_str(name)


def issuer(cert: x509.Certificate) -> str:
    """The issuer name, like :func:`subject`."""
    try:
        name = cert.issuer
    except Exception:
        return raw_name_str(_tbs_name(cert, "issuer"))
    return name_str(name)


@per_certificate
def subject_der(cert: x509.Certificate) -> bytes:
    """The subject's DER (the key trust stores index by), even when cryptography cannot decode the name."""
    try:
        return cert.subject.public_bytes()
    except Exception:
        return _tbs_name(cert, "subject")


@per_certificate
def issuer_der(cert: x509.Certificate) -> bytes:
    try:
        return cert.issuer.public_bytes()
    except Exception:
        return _tbs_name(cert, "issuer")


def name_key(cert: x509.Certificate, which: str) -> object:
    """A dictionary key for the certificate's ``which`` ("subject" or "issuer") name: the decoded name (so that
    matching follows cryptography's name equality, as before), or its raw DER when it cannot be decoded."""
    try:
        name = cert.subject if which == "subject" else cert.issuer
        hash(name)
        return name
    except Exception:
        return subject_der(cert) if which == "subject" else issuer_der(cert)


def issuer_is_subject_of(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    """``cert``'s issuer name is ``candidate``'s subject name (cryptography's name equality; the raw DER when
    either name cannot be decoded)."""
    try:
        return bool(cert.issuer == candidate.subject)
    except Exception:
        return issuer_der(cert) == subject_der(candidate)


def common_names(cert: x509.Certificate) -> list[str]:
    try:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    except Exception:
        return []


def display_name(cert: x509.Certificate) -> str:
    """A short human label: the CN, else the organisation, else the whole subject."""
    cns = common_names(cert)
    if cns:
        return cns[0]
    try:
        orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if orgs:
            return str(orgs[0].value)
    except Exception:
        pass
    return subject(cert) or "<empty subject>"


def has_san_extension(cert: x509.Certificate) -> bool:
    return _ext(cert, x509.SubjectAlternativeName) is not None


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS subjectAltNames (a new list each call)."""
    return list(_dns_names(cert))


@per_certificate
def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return ()
    try:
        return tuple(str(n) for n in san.get_values_for_type(x509.DNSName))
    except Exception:
        return ()


def ip_addresses(cert: x509.Certificate) -> list[str]:
    """The IP address subjectAltNames, as text (a new list each call)."""
    return list(_ip_addresses(cert))


@per_certificate
def _ip_addresses(cert: x509.Certificate) -> tuple[str, ...]:
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return ()
    try:
        return tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except Exception:
        return ()


def not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc


def expired_at(cert: x509.Certificate, at: datetime) -> bool:
    """notAfter is inclusive and has one-second granularity (RFC 5280 §4.1.2.5): compare whole seconds."""
    return at.replace(microsecond=0) > not_after(cert)


def premature_at(cert: x509.Certificate, at: datetime) -> bool:
    return at.replace(microsecond=0) < not_before(cert)


def in_validity(cert: x509.Certificate, at: datetime) -> bool:
    return not expired_at(cert, at) and not premature_at(cert, at)


def is_ca(cert: x509.Certificate) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    return bool(bc is not None and bc.ca)


def basic_constraints(cert: x509.Certificate) -> str:
    bc = _ext(cert, x509.BasicConstraints)
    if bc is None:
        return "absent"
    if bc.ca:
        return "CA:TRUE" + (f", pathlen:{bc.path_length}" if bc.path_length is not None else "")
    return "CA:FALSE"


def extended_key_usages(cert: x509.Certificate) -> list[str] | None:
    """EKU names, or None when the extension is absent (which means: any usage)."""
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if eku is None:
        return None
    names = {
        ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
        ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
        ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
        ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
        ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
        ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    }
    return [names.get(oid, oid.dotted_string) for oid in eku]


def key_usages(cert: x509.Certificate) -> list[str] | None:
    ku = _ext(cert, x509.KeyUsage)
    if ku is None:
        return None
    out = []
    for attr in (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ):
        if getattr(ku, attr):
            out.append(attr)
    if ku.key_agreement:
        if ku.encipher_only:
            out.append("encipher_only")
        if ku.decipher_only:
            out.append("decipher_only")
    return out


def ca_issuer_urls(cert: x509.Certificate) -> list[str]:
    aia = _ext(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    out = []
    for desc in aia:
        if desc.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS and isinstance(
            desc.access_location, x509.UniformResourceIdentifier
        ):
            out.append(desc.access_location.value)
    return out


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    aia = _ext(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def crl_urls(cert: x509.Certificate) -> list[str]:
    cdp = _ext(cert, x509.CRLDistributionPoints)
    if cdp is None:
        return []
    out = []
    for dp in cdp:
        for n in dp.full_name or []:
            if isinstance(n, x509.UniformResourceIdentifier):
                out.append(n.value)
    return out


def must_staple(cert: x509.Certificate) -> bool:
    """The TLS Feature extension (RFC 7633) asks for status_request: OCSP Must-Staple."""
    features = _ext(cert, x509.TLSFeature)
    return features is not None and x509.TLSFeatureType.status_request in features


def key_description(cert: x509.Certificate) -> tuple[str, int]:
    """("RSA", 2048), ("EC secp256r1", 256), ("Ed25519", 256)…; ("unknown", 0) when unparsable."""
    try:
        key = cert.public_key()
    except Exception:
        return ("unknown", 0)
    if isinstance(key, rsa.RSAPublicKey):
        return ("RSA", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return (f"EC {key.curve.name}", key.curve.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("Ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return ("Ed448", 456)
    if isinstance(key, dsa.DSAPublicKey):
        return ("DSA", key.key_size)
    return (type(key).__name__, 0)


def public_key(cert: x509.Certificate) -> Any:
    """The certificate's public key, or None when its SubjectPublicKeyInfo cannot be parsed."""
    try:
        return cert.public_key()
    except Exception:
        return None


def same_public_key(cert: x509.Certificate, key: Any) -> bool:
    """``cert``'s public key is ``key`` (a public key object); False when the certificate's key is unparsable."""
    mine = public_key(cert)
    try:
        return mine is not None and bool(mine == key)
    except Exception:
        return False


def key_str(cert: x509.Certificate) -> str:
    kind, bits = key_description(cert)
    return f"{kind} {bits} bits" if bits else kind


def signature_algorithm(cert: x509.Certificate) -> str:
    try:
        oid = cert.signature_algorithm_oid
        name = oid._name  # cryptography's own readable name
        return name if name and name != "Unknown OID" else oid.dotted_string
    except Exception:
        return "unknown"


def signature_hash(cert: x509.Certificate) -> str | None:
    try:
        h = cert.signature_hash_algorithm
    except Exception:
        return "unknown"
    return h.name if h is not None else None


@per_certificate
def is_self_issued(cert: x509.Certificate) -> bool:
    return issuer_is_subject_of(cert, cert)


# Signature verifications are the expensive step of issuer matching, and certificates (many with one name) are
# attacker-controlled: each (certificate, key) pair is verified at most once, and :class:`IssuerIndex` tries a
# bounded number of keys per certificate, so matching n certificates costs O(n) verifications, not O(n²).
MAX_ISSUER_KEYS = 8  # distinct public keys carrying a certificate's issuer name tried as its issuer
MAX_ISSUERS = 32  # issuers reported for one certificate
_VERIFIED: dict[tuple[str, bytes], bool] = {}
_MAX_VERIFIED = 65_536
_checks = 0


def signature_checks() -> int:
    """How many signature verifications this process has made (a work count for tests and bench/)."""
    return _checks


@per_certificate
def _key_digest(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's SubjectPublicKeyInfo (empty when the key cannot be read)."""
    from cryptography.hazmat.primitives import serialization

    try:
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:
        return b""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return digest.finalize()


def _verify_once(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key verifies ``cert``'s signature, computed once per (certificate, key) pair."""
    global _checks
    key = (fingerprint(cert), _key_digest(issuer))
    cached = _VERIFIED.get(key)
    if cached is not None:
        return cached
    _checks += 1
    try:
        cert.verify_directly_issued_by(issuer)
        ok = True
    except ValueError:
        try:
            ok = _verify_signature(cert, issuer.public_key())
        except Exception:
            ok = False
    except Exception:
        ok = False
    if len(_VERIFIED) >= _MAX_VERIFIED:
        _VERIFIED.clear()
    _VERIFIED[key] = ok
    return ok


@per_certificate
def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature."""
    if not is_self_issued(cert):
        return False
    return _verify_once(cert, cert)


def _verify_signature(cert: x509.Certificate, key: Any) -> bool:
    """Check ``cert``'s signature with ``key`` for algorithms that ``verify_directly_issued_by`` refuses
    (SHA-1, MD5): those certificates exist in the wild and we must still link them to explain them."""
    hash_alg = cert.signature_hash_algorithm
    sig, tbs = cert.signature, cert.tbs_certificate_bytes
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, tbs, cert.signature_algorithm_parameters, hash_alg)  # type: ignore[arg-type]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, tbs, ec.ECDSA(hash_alg))  # type: ignore[arg-type]
    elif isinstance(key, dsa.DSAPublicKey):
        key.verify(sig, tbs, hash_alg)  # type: ignore[arg-type]
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(sig, tbs)
    else:
        return False
    return True


def signed_by(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    """True when ``candidate``'s name is ``cert``'s issuer and its key verifies ``cert``'s signature."""
    if not issuer_is_subject_of(cert, candidate):
        return False
    return _verify_once(cert, candidate)


@per_certificate
def _key_ids(cert: x509.Certificate) -> tuple[bytes | None, bytes | None]:
    """(authority key identifier, subject key identifier), None where absent or unreadable."""
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    ski = _ext(cert, x509.SubjectKeyIdentifier)
    return (getattr(aki, "key_identifier", None) if aki is not None else None), (
        getattr(ski, "digest", None) if ski is not None else None
    )


class IssuerIndex:
    """A set of certificates (repeats ignored) indexed by subject name and key, answering "which of these issued
    that?" in bounded work however many certificates share a name: candidates whose subject key identifier
    matches the certificate's authority key identifier are tried first, then the others in input order;
    certificates sharing a key share one verification; at most :data:`MAX_ISSUER_KEYS` distinct keys are tried
    and at most :data:`MAX_ISSUERS` issuers returned per certificate."""

    def __init__(self, certs: Iterable[x509.Certificate]) -> None:
        self._position: dict[str, int] = {}
        self._keys: dict[object, dict[bytes, list[x509.Certificate]]] = {}  # name -> key digest -> certs
        self._by_ski: dict[tuple[object, bytes], dict[bytes, None]] = {}  # (name, SKI) -> key digests
        for c in certs:
            fp = fingerprint(c)
            if fp in self._position:
                continue
            self._position[fp] = len(self._position)
            digest = _key_digest(c)
            if not digest:
                continue
            name = name_key(c, "subject")
            self._keys.setdefault(name, {}).setdefault(digest, []).append(c)
            ski = _key_ids(c)[1]
            if ski is not None:
                self._by_ski.setdefault((name, ski), {})[digest] = None
        # the last answers, by certificate object: path building asks about a leaf's issuers right after the
        # AIA step did (the index never changes once built, so an answer stays true)
        self._answers: dict[int, tuple[x509.Certificate, list[x509.Certificate]]] = {}

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """The certificates of the set, other than ``cert`` itself, that issued ``cert`` (in input order)."""
        hit = self._answers.get(id(cert))
        if hit is not None and hit[0] is cert:
            return list(hit[1])
        found = self._issuers_of(cert)
        if len(self._answers) >= 64:
            self._answers.clear()
        self._answers[id(cert)] = (cert, found)
        return list(found)

    def _issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        issuer = name_key(cert, "issuer")
        keys = self._keys.get(issuer)
        if not keys:
            return []
        aki = _key_ids(cert)[0]
        preferred = self._by_ski.get((issuer, aki), {}) if aki is not None else {}
        tried: dict[bytes, bool] = {}
        for digest in itertools.chain(preferred, keys):
            if digest in tried:
                continue
            if len(tried) >= MAX_ISSUER_KEYS:
                break
            tried[digest] = _verify_once(cert, keys[digest][0])
        fp = fingerprint(cert)
        found = [c for d, ok in tried.items() if ok for c in keys[d][: MAX_ISSUERS + 1] if fingerprint(c) != fp]
        found.sort(key=lambda c: self._position[fingerprint(c)])
        return found[:MAX_ISSUERS]


def validity_days(cert: x509.Certificate) -> float:
    return (not_after(cert) - not_before(cert)).total_seconds() / 86400


_NOT_IP = re.compile(r"[g-zG-Z_]")  # a letter past "f" (or "_"): no IPv4 or IPv6 literal has one


@lru_cache(maxsize=8192)
def is_ip(name: str) -> bool:
    """An IPv4 or IPv6 literal (brackets allowed). Cached, with a fast no for host names: a scan asks this for
    every target."""
    if _NOT_IP.search(name):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def summary(cert: x509.Certificate, at: datetime | None = None) -> dict[str, Any]:
    """A JSON-able description used by renderers."""
    kind, bits = key_description(cert)
    d: dict[str, Any] = {
        "subject": subject(cert),
        "issuer": issuer(cert),
        "serial": format(cert.serial_number, "x"),
        "not_before": not_before(cert).isoformat(),
        "not_after": not_after(cert).isoformat(),
        "dns_names": dns_names(cert),
        "ip_addresses": ip_addresses(cert),
        "key": {"type": kind, "bits": bits},
        "signature_algorithm": signature_algorithm(cert),
        "sha256": fingerprint(cert),
        "basic_constraints": basic_constraints(cert),
        "extended_key_usage": extended_key_usages(cert),
        "ca_issuers": ca_issuer_urls(cert),
        "self_signed": is_self_signed(cert),
    }
    if at is not None:
        d["days_left"] = days_until(not_after(cert), at)
    return d


def days_until(moment: datetime, at: datetime) -> float:
    """Days from ``at`` to ``moment`` (negative: past), rounded DOWN to a tenth of a day, so that every output
    that shows whole days (:func:`days_phrase`) agrees: 88.96 days is 88.9 here and "88 days left" there."""
    return math.floor((moment - at).total_seconds() / 8640) / 10


def days_phrase(days: float) -> str:
    """ "N days left" (whole days, rounded down) or "expired N days ago" for a :func:`days_until` value."""
    if days < 0:
        return f"expired {math.floor(-days)} days ago" if days <= -1 else "expired today"
    return f"{math.floor(days)} days left"


_ASN1_KIND = re.compile(r"kind: (\w+)")
_ASN1_LOCATION = re.compile(r"location: \[([^\]]*)\]")


MAX_SHOWN_URL = 300


def short_url(url: str) -> str:
    """``url`` as findings and notes show it: whole up to :data:`MAX_SHOWN_URL` characters, else its start
    and its length. A certificate may carry a URL of any length (1 MB and more); shown whole, it would push
    the reason that follows it out of every report line (and fill the JSON)."""
    if len(url) <= MAX_SHOWN_URL:
        return url
    return f"{url[: MAX_SHOWN_URL - 60]}… ({len(url):,} characters)"


def short_reason(exc: BaseException) -> str:
    """A one-line, human-sized version of a cryptography parse error."""
    text = str(exc) or type(exc).__name__
    if "ParseError" in text:
        kind = _ASN1_KIND.search(text)
        where = _ASN1_LOCATION.search(text)
        detail = kind.group(1) if kind else "malformed"
        if where and where.group(1):
            detail += " at " + where.group(1).replace('"', "").replace(", ", " > ")
        return f"malformed DER ({detail})"
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


# --- certificates that cryptography loads but cannot decode ------------------------------------------------------
#
# cryptography parses a certificate's outer structure on load and decodes names, extensions and the key lazily, on
# first access, raising ValueError there (a TeletexString or IA5String with bytes >= 0x80, invalid UTF-8 in a
# UTF8String, an empty RDN, an unsupported key). The helpers above stay on cryptography's fast path and fall back
# here only when it raised: a minimal DER reader of the raw TBSCertificate that renders and explains such names.

_STRING_TYPES = {
    0x0C: "UTF8String",
    0x12: "NumericString",
    0x13: "PrintableString",
    0x14: "TeletexString",
    0x16: "IA5String",
    0x1A: "VisibleString",
    0x1C: "UniversalString",
    0x1E: "BMPString",
}
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}
_MAX_HEX = 64  # bytes of an undecodable value shown in hex


def _elements(content: bytes) -> list[tuple[int, bytes]]:
    """(tag, content) of each DER element in ``content``; ValueError when a length runs past the end."""
    out, i = [], 0
    while i < len(content):
        if i + 2 > len(content):
            raise ValueError("truncated DER header")
        tag, first = content[i], content[i + 1]
        i += 2
        if first >= 0x80:
            n = first & 0x7F
            if n == 0 or n > 4 or i + n > len(content):
                raise ValueError("bad DER length")
            length = int.from_bytes(content[i : i + n], "big")
            i += n
        else:
            length = first
        if i + length > len(content):
            raise ValueError("DER length past the end")
        out.append((tag, content[i : i + length]))
        i += length
    return out


def _tbs_name(cert: x509.Certificate, which: str) -> bytes:
    """The raw DER of the issuer or subject Name (b"" when even the TBSCertificate cannot be read)."""
    try:
        ((_, tbs),) = _elements(cert.tbs_certificate_bytes)
        fields = _elements(tbs)
        if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
            fields = fields[1:]
        tag, content = fields[2 if which == "issuer" else 4]  # serial, signature, issuer, validity, subject
    except Exception:
        return b""
    head = bytes([tag]) + (
        bytes([len(content)])
        if len(content) < 0x80
        else bytes([0x80 | ((len(content).bit_length() + 7) // 8)])
        + len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    )
    return head + content


def _oid_str(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return "?"
    first = min(arcs[0] // 40, 2)
    dotted = ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])
    return _SHORT_NAMES.get(dotted, dotted)


def _decode_string(tag: int, value: bytes) -> tuple[str | None, str]:
    """(text, "") or (None, why it cannot be decoded) for one attribute value."""
    if tag == 0x0C:
        try:
            return value.decode("utf-8"), ""
        except UnicodeDecodeError:
            return None, "invalid UTF-8"
    if tag == 0x1E:
        return (value.decode("utf-16-be", "replace"), "") if len(value) % 2 == 0 else (None, "odd length")
    if tag == 0x1C:
        return (value.decode("utf-32-be", "replace"), "") if len(value) % 4 == 0 else (None, "length not 4n")
    if tag in _STRING_TYPES:
        return (value.decode("ascii"), "") if value.isascii() else (None, "bytes >= 0x80")
    return None, "not a string type"


def _undecodable(tag: int, value: bytes) -> str:
    kind = _STRING_TYPES.get(tag, f"tag 0x{tag:02x}")
    shown = value[:_MAX_HEX].hex() + ("..." if len(value) > _MAX_HEX else "")
    return f"<undecodable {kind}: 0x{shown}>"


def _raw_rdns(der: bytes) -> list[list[tuple[str, int, bytes]]]:
    """The RDNs of a raw Name: each a list of (attribute short name or OID, value tag, value bytes)."""
    ((_, body),) = _elements(der)
    rdns = []
    for _, rdn in _elements(body):
        atvs = []
        for _, atv in _elements(rdn):
            parts = _elements(atv)
            if len(parts) != 2 or parts[0][0] != 0x06:
                raise ValueError("bad AttributeTypeAndValue")
            atvs.append((_oid_str(parts[0][1]), parts[1][0], parts[1][1]))
        rdns.append(atvs)
    return rdns


def raw_name_str(der: bytes) -> str:
    """An RFC 4514-style rendering of a raw DER Name that cryptography could not decode: decodable values as
    text, the others as ``<undecodable TYPE: 0xHEX>``, an empty RDN as ``<empty RDN>``."""
    try:
        rdns = _raw_rdns(der)
    except Exception:
        shown = der[:_MAX_HEX].hex() + ("..." if len(der) > _MAX_HEX else "")
        return f"<unparsable name: 0x{shown}>"
    parts = []
    for atvs in rdns:
        if not atvs:
            parts.append("<empty RDN>")
            continue
        shown_atvs = []
        for attr, tag, value in atvs:
            text, _ = _decode_string(tag, value)
            shown_atvs.append(f"{attr}={_undecodable(tag, value) if text is None else text}")
        parts.append("+".join(shown_atvs))
    return ",".join(reversed(parts))  # RFC 4514 order: last RDN first


def _name_problems(der: bytes, fallback: str) -> list[str]:
    """What is wrong with a raw Name that cryptography refused, one sentence per problem."""
    try:
        rdns = _raw_rdns(der)
    except Exception:
        return [fallback]
    out = []
    for atvs in rdns:
        if not atvs:
            out.append("an empty RDN (a SET with no attribute; X.501 requires at least one)")
        for attr, tag, value in atvs:
            text, why = _decode_string(tag, value)
            if text is None:
                out.append(f"{attr} is {_undecodable(tag, value)} ({why})")
    return out or [fallback]


@per_certificate
def malformed_fields(cert: x509.Certificate) -> tuple[tuple[str, str], ...]:
    """(field, problem) for every part of ``cert`` that cryptography loaded but cannot decode: "subject",
    "issuer", "extensions", "subjectPublicKeyInfo". Empty for a well-formed certificate (cached: a scan asks
    once per distinct certificate)."""
    problems: list[tuple[str, str]] = []
    for field in ("subject", "issuer"):
        try:
            getattr(cert, field)
        except Exception as exc:
            problems.extend((field, p) for p in _name_problems(_tbs_name(cert, field), short_reason(exc)))
    try:
        cert.extensions  # noqa: B018 - decoding is the point
    except Exception as exc:
        problems.append(("extensions", short_reason(exc)))
    try:
        cert.public_key()
    except Exception as exc:
        try:
            algorithm = cert.public_key_algorithm_oid.dotted_string
        except Exception:
            algorithm = "unknown algorithm"
        problems.append(("subjectPublicKeyInfo", f"{algorithm}: {short_reason(exc)}"))
    return tuple(problems)
