"""The lab's certificate authority: small, readable key and certificate generation with ``cryptography``.

Keys are cached as PEM files under ``<state_dir>/keys`` because RSA key generation is the slow part. The
lab root certificate is cached too (``<state_dir>/lab-root.pem``), so the file users trust stays the same
across restarts; it is re-created when it expires within 30 days or when its key or file is missing. Every
other certificate is re-issued at each start: that is cheap, and the AIA URLs they embed contain the AIA
server's port, which can change.

The PKI also records what it issued and what it revoked (:attr:`LabPKI.issued`, :attr:`LabPKI.revocations`)
and answers for it with CRLs and OCSP responses (:meth:`LabPKI.crl`, :meth:`LabPKI.answer_ocsp`,
:meth:`LabPKI.ocsp_response`; built by ``revocation.py``, served by ``aia.py``).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from . import revocation
from .pkitypes import HashName, Issuer, KeyKind, PrivateKey, Revocation, Revoke
from .revocation import Responder

ROOT_NAME = "certdoctor Lab Root CA"
ROOT_SLUG = "lab-root"
ROOT_MIN_REMAINING = dt.timedelta(days=30)
ORGANIZATION = "certdoctor Lab"
ONE_DAY = dt.timedelta(days=1)
# A private-enterprise OID (1.3.6.1.4.1 arc, RFC 5280 §4.2 extnID) no client knows; the lab marks it critical.
UNKNOWN_CRITICAL_OID = ObjectIdentifier("1.3.6.1.4.1.55738.666.1")
UNKNOWN_CRITICAL_VALUE = bytes.fromhex("0500")  # DER NULL


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# --- files --------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if private:
            os.chmod(tmp, 0o600)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certs_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(cert_pem(c) for c in certs)


# --- keys ---------------------------------------------------------------------------------------------


def generate_key(kind: KeyKind) -> PrivateKey:
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048 if kind == "rsa2048" else 1024)


def _key_matches(key: object, kind: KeyKind) -> bool:
    if kind == "ec256":
        return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    if kind == "ed25519":
        return isinstance(key, ed25519.Ed25519PrivateKey)
    return isinstance(key, rsa.RSAPrivateKey) and key.key_size == (2048 if kind == "rsa2048" else 1024)


class KeyCache:
    """Private keys by name, cached as ``<directory>/<name>.<kind>.pem`` (``directory`` None: memory only).

    ``write`` False: the files are read, never written (a key that is not there is generated in memory).
    """

    def __init__(self, directory: Path | None, *, write: bool = True) -> None:
        self.directory = directory
        self.write = write
        self._keys: dict[tuple[str, KeyKind], PrivateKey] = {}
        self.generated = 0  # how many keys this cache had to generate (the slow path)

    def path(self, name: str, kind: KeyKind) -> Path | None:
        return None if self.directory is None else self.directory / f"{name}.{kind}.pem"

    def get(self, name: str, kind: KeyKind) -> PrivateKey:
        cached = self._keys.get((name, kind))
        if cached is not None:
            return cached
        path = self.path(name, kind)
        key: PrivateKey | None = None
        if path is not None and path.is_file():
            try:
                # These are our own files; skipping the (slow, ~30 ms) RSA consistency check keeps a cached
                # start fast.
                loaded = serialization.load_pem_private_key(
                    path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
                )
            except (ValueError, TypeError):
                loaded = None
            if loaded is not None and _key_matches(loaded, kind):
                key = loaded  # type: ignore[assignment]
        if key is None:
            key = generate_key(kind)
            self.generated += 1
            if path is not None and self.write:
                write_atomic(path, key_pem(key), private=True)
        self._keys[(name, kind)] = key
        return key

    def has(self, name: str, kind: KeyKind) -> bool:
        path = self.path(name, kind)
        return (name, kind) in self._keys or (path is not None and path.is_file())


# --- certificates -------------------------------------------------------------------------------------


def make_name(common_name: str | None, *extra: tuple[ObjectIdentifier, str]) -> x509.Name:
    """A subject: the ``extra`` attributes (e.g. O, OU) in order, then CN if given."""
    attrs = [x509.NameAttribute(oid, value) for oid, value in extra]
    if common_name is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _hash(name: HashName) -> hashes.HashAlgorithm:
    return hashes.SHA256() if name == "sha256" else hashes.SHA1()


def _sign(builder: x509.CertificateBuilder, key: PrivateKey, hash_name: HashName) -> x509.Certificate:
    """``builder`` signed by ``key``: Ed25519 takes no separate hash (RFC 8410 §6), the others ``hash_name``."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    if hash_name == "sha1":
        return sign_sha1(builder, key)
    return builder.sign(key, _hash(hash_name))


def _sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    """``data`` signed as :func:`_sign` with SHA-256 signs a TBSCertificate."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def with_serial(cert: x509.Certificate, serial: int, key: PrivateKey) -> x509.Certificate:
    """``cert`` (signed by ``key`` with SHA-256, or Ed25519) re-issued with serial number ``serial``.

    ``CertificateBuilder`` refuses serials that are not positive (RFC 5280 §4.1.2.2 requires a positive
    integer), but real CAs have issued negative ones, so the lab needs them: the DER INTEGER in the TBS is
    replaced (two's complement, RFC 5280 / X.690 §8.3) and the TBS re-signed. ValueError if the certificate's
    serial does not occur exactly once in its TBS.
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    outer_header, _ = _der_header(der, 0)
    tbs = cert.tbs_certificate_bytes
    old = cert.serial_number
    old_der = _der(0x02, old.to_bytes((old.bit_length() + 8) // 8, "big", signed=True))
    size = max(1, (serial.bit_length() + 8) // 8)
    new_der = _der(0x02, serial.to_bytes(size, "big", signed=True))
    if tbs.count(old_der) != 1:
        raise ValueError("unexpected certificate encoding")
    tbs_content = tbs[_der_header(tbs, 0)[0] :].replace(old_der, new_der, 1)
    new_tbs = _der(0x30, tbs_content)
    algid_start = outer_header + len(tbs)
    algid_header, algid_len = _der_header(der, algid_start)
    algid = der[algid_start : algid_start + algid_header + algid_len]
    signature = _sign_bytes(key, new_tbs)
    return x509.load_der_x509_certificate(_der(0x30, new_tbs + algid + _der(0x03, b"\x00" + signature)))


def build_certificate(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    issuer: Issuer | None,
    self_key: PrivateKey | None = None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    dns_names: Sequence[str] | None = None,
    ekus: Sequence[ObjectIdentifier] | None = None,
    aia_url: str | None = None,
    hash_name: HashName = "sha256",
    key_usage: bool = True,
    ocsp_url: str | None = None,
    crl_url: str | None = None,
    must_staple: bool = False,
    ocsp_no_check: bool = False,
    path_length: int | None = None,
    name_constraints: x509.NameConstraints | None = None,
    basic_ca: bool | None = None,
    authority_key_id: bytes | None = None,
    unknown_critical: bool = False,
) -> x509.Certificate:
    """Issue one certificate. ``issuer`` None means self-signed with ``self_key``.

    CA certificates get basicConstraints CA:TRUE and keyUsage keyCertSign+cRLSign (both critical); others
    basicConstraints CA:FALSE and keyUsage digitalSignature (+keyEncipherment for RSA keys). Every
    certificate gets a subjectKeyIdentifier, and an authorityKeyIdentifier when it is not self-signed.

    Revocation pointers, all optional and off by default: ``ocsp_url`` (an OCSP access description in the
    authorityInfoAccess extension, before the caIssuers one when both are given), ``crl_url`` (a
    cRLDistributionPoints extension with that one URI), ``must_staple`` (the non-critical TLS Feature
    extension with status_request, RFC 7633) and ``ocsp_no_check`` (id-pkix-ocsp-nocheck, for a delegated
    OCSP signer).

    Deliberate defects and constraints, for the lab's scenarios: ``path_length`` (basicConstraints
    pathLenConstraint of a CA, RFC 5280 §4.2.1.9), ``name_constraints`` (critical, §4.2.1.10), ``basic_ca``
    (overrides only the basicConstraints cA flag: True makes an end-entity certificate that claims to be a CA,
    keeping its end-entity key usages plus keyCertSign), ``authority_key_id`` (an authorityKeyIdentifier
    keyIdentifier that need not match the issuer's subjectKeyIdentifier), ``unknown_critical`` (an extension
    :data:`UNKNOWN_CRITICAL_OID` with a DER NULL value, marked critical: RFC 5280 §4.2 says a system MUST reject
    a certificate with a critical extension it does not recognise). ``ekus`` is honoured for CAs too.
    """
    signing_key = issuer.key if issuer is not None else self_key
    if signing_key is None:
        raise ValueError("a self-signed certificate needs self_key")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=ca if basic_ca is None else basic_ca, path_length=path_length if ca else None),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=not ca and isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca or bool(basic_ca),
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if issuer is not None and authority_key_id is not None:
        aki = x509.AuthorityKeyIdentifier(authority_key_id, None, None)
        builder = builder.add_extension(aki, critical=False)
    elif issuer is not None:
        try:
            ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())  # type: ignore[arg-type]
        builder = builder.add_extension(aki, critical=False)
    elif not ca:  # a self-signed end-entity certificate, as `openssl req -x509` makes them
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    access = authority_information_access(ocsp_url, aia_url)
    if access is not None:
        builder = builder.add_extension(access, critical=False)
    if crl_url:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None, crl_issuer=None
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if must_staple:
        builder = builder.add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
    if ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    if unknown_critical:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(UNKNOWN_CRITICAL_OID, UNKNOWN_CRITICAL_VALUE), critical=True
        )
    return _sign(builder, signing_key, hash_name)


# cryptography (>= 4x) refuses to *create* SHA-1 signatures on certificates, but it still signs arbitrary
# bytes with SHA-1. So: build the certificate with sha256WithRSAEncryption, swap the algorithm OID (same
# length) in both AlgorithmIdentifiers, and re-sign the TBS bytes with SHA-1. Lengths do not change, so the
# DER headers can be kept as they are.
_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")  # OID 1.2.840.113549.1.1.11
_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")  # OID 1.2.840.113549.1.1.5


def _der_header(data: bytes, offset: int) -> tuple[int, int]:
    """(header length, content length) of the DER element at ``offset``."""
    first = data[offset + 1]
    if first < 0x80:
        return 2, first
    n = first & 0x7F
    return 2 + n, int.from_bytes(data[offset + 2 : offset + 2 + n], "big")


def authority_information_access(
    ocsp_url: str | None, ca_issuers_url: str | None
) -> x509.AuthorityInformationAccess | None:
    """The AIA extension naming an OCSP responder and/or the issuer's certificate URL (None when neither)."""
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in (
            (x509.AuthorityInformationAccessOID.OCSP, ocsp_url),
            (x509.AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers_url),
        )
        if url
    ]
    return x509.AuthorityInformationAccess(access) if access else None


def sign_sha1(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    """``builder`` signed with SHA-1 and RSA ``key`` (raises ValueError for another key type), for test chains."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 signing is only implemented for RSA issuers")
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    outer_header, _ = _der_header(der, 0)
    tbs_header, tbs_len = _der_header(der, outer_header)
    tbs_end = outer_header + tbs_header + tbs_len
    tbs = der[outer_header:tbs_end]
    rest = der[tbs_end:]
    if tbs.count(_SHA256_RSA) != 1 or not rest.startswith(b"\x30\x0d" + _SHA256_RSA):
        raise ValueError("unexpected certificate encoding")
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA)
    algid = rest[: 2 + len(_SHA256_RSA) + 2].replace(_SHA256_RSA, _SHA1_RSA)  # SEQUENCE { OID, NULL }
    bitstring = rest[len(algid) :]
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    bs_header, bs_len = _der_header(bitstring, 0)
    if bs_len != len(signature) + 1:
        raise ValueError("unexpected signature length")
    new = der[:outer_header] + tbs + algid + bitstring[:bs_header] + b"\x00" + signature
    return x509.load_der_x509_certificate(new)


# --- the lab PKI --------------------------------------------------------------------------------------

REVOCATION_CA = "lab-revocation-ca"
REVOKED_CA = "lab-revoked-ca"
OCSP_SIGNER_SLUG = "lab-revocation-ca-ocsp"  # key cache name of the delegated OCSP signer
OCSP_SIGNER_NAME = "certdoctor Lab Revocation CA OCSP Responder"
# The CAs whose revocation status the lab publishes (an OCSP responder and a CRL each, on the AIA server).
REVOCATION_SLUGS: tuple[str, ...] = (ROOT_SLUG, REVOCATION_CA, REVOKED_CA)


@dataclass(frozen=True)
class CASpec:
    """One CA (or CA-like) certificate of the lab, issued at every start except the root.

    ``ocsp_url`` and ``crl_url`` are templates: ``{aia}`` stands for the AIA server's base URL.
    """

    slug: str
    common_name: str
    key: KeyKind
    issuer: str | None  # slug of the issuer; None: self-signed
    ca: bool = True
    starts: float = -1.0  # days relative to now
    days: float = 5 * 365
    ocsp_url: str | None = None
    crl_url: str | None = None
    must_staple: bool = False
    revoked: Revoke | None = None  # revoked by its issuer
    path_length: int | None = None  # basicConstraints pathLenConstraint
    permitted_dns: tuple[str, ...] = ()  # name constraints (critical): permitted DNS subtrees
    excluded_dns: tuple[str, ...] = ()  # name constraints: excluded DNS subtrees
    ekus: tuple[ObjectIdentifier, ...] | None = None  # an extendedKeyUsage extension on a CA (None: none)
    # A cross-certificate: the subject name and key of the (earlier) CA ``cross_of``, issued by ``issuer``.
    # Its slug names this certificate only; what it signs is signed by ``cross_of``'s key anyway.
    cross_of: str | None = None


_ROOT_OCSP = "{aia}/ocsp/" + ROOT_SLUG
_ROOT_CRL = "{aia}/crl/" + ROOT_SLUG + ".crl"

# Order matters: issuers come before what they issue.
CA_SPECS: tuple[CASpec, ...] = (
    CASpec("lab-rsa-ca", "certdoctor Lab RSA CA", "rsa2048", ROOT_SLUG),
    CASpec("lab-ecdsa-ca", "certdoctor Lab ECDSA CA", "ec256", ROOT_SLUG),
    CASpec("lab-policy-ca", "certdoctor Lab Policy CA", "rsa2048", ROOT_SLUG),
    CASpec("lab-issuing-ca-2", "certdoctor Lab Issuing CA 2", "rsa2048", "lab-policy-ca"),
    # Validity ended 10 days ago.
    CASpec("lab-expired-ca", "certdoctor Lab Expired CA", "rsa2048", ROOT_SLUG, starts=-375, days=365),
    # An end-entity certificate (CA:FALSE) that nevertheless signs the issuer-not-ca leaf.
    CASpec("lab-not-a-ca", "certdoctor Lab Not-A-CA", "rsa2048", "lab-rsa-ca", ca=False, days=365),
    CASpec("untrusted-root", "certdoctor Untrusted Root", "rsa2048", None, days=10 * 365),
    CASpec("untrusted-ca", "certdoctor Untrusted CA", "rsa2048", "untrusted-root"),
    CASpec("unrelated-ca", "certdoctor Unrelated CA", "ec256", None),
    # Revocation: both are checked at the root's OCSP responder and CRL. The Revocation CA answers for its
    # leaves through a delegated OCSP signer (LabPKI.ocsp_signer); the Revoked CA signs its own responses.
    CASpec(REVOCATION_CA, "certdoctor Lab Revocation CA", "rsa2048", ROOT_SLUG, ocsp_url=_ROOT_OCSP, crl_url=_ROOT_CRL),
    CASpec(
        REVOKED_CA,
        "certdoctor Lab Revoked CA",
        "rsa2048",
        ROOT_SLUG,
        ocsp_url=_ROOT_OCSP,
        crl_url=_ROOT_CRL,
        revoked=Revoke(x509.ReasonFlags.ca_compromise, days=-2),
    ),
    # path-length: a CA allowed no CA below it (pathLenConstraint 0) that nevertheless issued one.
    CASpec("lab-pathlen0-ca", "certdoctor Lab PathLen0 CA", "rsa2048", ROOT_SLUG, path_length=0),
    CASpec("lab-below-pathlen0-ca", "certdoctor Lab Below-PathLen0 CA", "rsa2048", "lab-pathlen0-ca"),
    # name-constraints: may only issue for names under permitted.certdoctor.test.
    CASpec(
        "lab-constrained-ca",
        "certdoctor Lab Constrained CA",
        "rsa2048",
        ROOT_SLUG,
        permitted_dns=("permitted.certdoctor.test",),
    ),
    # intermediate-eku: an intermediate restricted to e-mail protection and client authentication.
    CASpec(
        "lab-email-eku-ca",
        "certdoctor Lab Email EKU CA",
        "rsa2048",
        ROOT_SLUG,
        ekus=(ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH),
    ),
    CASpec("lab-ed25519-ca", "certdoctor Lab Ed25519 CA", "ed25519", ROOT_SLUG),
    # An old root, expired 650 days ago (the AddTrust External CA Root / DST Root CA X3 of the lab), and two
    # cross-certificates of the lab root it issued: one expired 100 days ago (AddTrust, 2020), one still
    # valid (ISRG Root X1 cross-signed by DST Root CA X3, 2021).
    CASpec("lab-old-root", "certdoctor Lab Old Root", "rsa2048", None, starts=-3650, days=3000),
    CASpec(
        "lab-root-by-old-expired",
        "certdoctor Lab Root CA",
        "rsa2048",
        "lab-old-root",
        starts=-2000,
        days=1900,
        cross_of=ROOT_SLUG,
    ),
    CASpec(
        "lab-root-by-old",
        "certdoctor Lab Root CA",
        "rsa2048",
        "lab-old-root",
        starts=-1000,
        days=2000,
        cross_of=ROOT_SLUG,
    ),
    # The break forecast: an intermediate that expires 30 days from now, well before its leaves (89 days), and a
    # cross-certificate of the lab root by the old root that expires in 40 days (the path old clients build
    # through it ends then; clients that trust the lab root itself do not notice).
    CASpec("lab-expiring-ca", "certdoctor Lab Expiring CA", "rsa2048", ROOT_SLUG, starts=-335, days=365),
    CASpec(
        "lab-root-by-old-soon",
        "certdoctor Lab Root CA",
        "rsa2048",
        "lab-old-root",
        starts=-1000,
        days=1040,
        cross_of=ROOT_SLUG,
    ),
)


class LabPKI:
    """The lab root, every intermediate, the delegated OCSP signer and a leaf factory.

    ``state_dir`` None keeps everything in memory (nothing cached); ``write`` False reads what is cached there
    (keys, root) but never writes (what is missing or stale is made in memory only). ``aia_base_url`` is the
    AIA server's base URL (``http://127.0.0.1:PORT``); each CA's ``.cer`` is at ``<aia_base_url>/<slug>.cer``.
    ``url_values`` adds placeholders for :meth:`expand_url` (``{aia}`` is always ``aia_base_url``).

    Revocation: every certificate issued by a lab CA is recorded in :attr:`issued` (issuer slug -> serials),
    every revoked one in :attr:`revocations` (issuer slug -> serial -> :class:`Revocation`). The CAs of
    :data:`REVOCATION_SLUGS` have an OCSP responder (:attr:`responders`): the root and the Revoked CA sign
    their own responses; the Revocation CA's are signed by :attr:`ocsp_signer`, a delegated responder
    certificate (EC P-256, CA:FALSE, EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck) that it issued.
    """

    def __init__(
        self,
        state_dir: Path | None,
        aia_base_url: str,
        *,
        now: dt.datetime | None = None,
        url_values: Mapping[str, str] | None = None,
        write: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.write = write
        self.aia_base_url = aia_base_url.rstrip("/")
        self.url_values = {**(url_values or {}), "aia": self.aia_base_url}
        self.now = now or utcnow()
        self.keys = KeyCache(state_dir / "keys" if state_dir is not None else None, write=write)
        self.issued: dict[str, set[int]] = {}
        self.revocations: dict[str, dict[int, Revocation]] = {}
        self._lock = threading.Lock()  # leaves of big scenarios are issued in worker threads
        self.root_reused = False
        self.root = self._load_or_create_root()
        self.issuers: dict[str, Issuer] = {ROOT_SLUG: self.root}
        for spec in CA_SPECS:
            self.issuers[spec.slug] = self._issue_ca(spec)
        self.ocsp_signer = self._issue_ocsp_signer()
        revocation_ca, revoked_ca = self.issuers[REVOCATION_CA], self.issuers[REVOKED_CA]
        self.responders: dict[str, Responder] = {
            ROOT_SLUG: Responder(self.root, self.root, ocsp.OCSPResponderEncoding.NAME),
            REVOCATION_CA: Responder(revocation_ca, self.ocsp_signer, ocsp.OCSPResponderEncoding.HASH),
            REVOKED_CA: Responder(revoked_ca, revoked_ca, ocsp.OCSPResponderEncoding.HASH),
        }

    @property
    def root_path(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / "lab-root.pem"

    def aia_url(self, slug: str) -> str:
        return f"{self.aia_base_url}/{slug}.cer"

    def expand_url(self, template: str) -> str:
        """A URL template with its placeholders (``{aia}``, and those of ``url_values``) filled in."""
        return template.format_map(self.url_values)

    def ca_files(self) -> dict[str, bytes]:
        """``/<slug>.cer`` -> DER, for every CA certificate (trusted or not) the lab knows."""
        return {
            f"/{slug}.cer": issuer.cert.public_bytes(serialization.Encoding.DER)
            for slug, issuer in self.issuers.items()
        }

    # root

    def _load_or_create_root(self) -> Issuer:
        path = self.root_path
        key_exists = self.keys.has(ROOT_SLUG, "rsa2048")
        key = self.keys.get(ROOT_SLUG, "rsa2048")
        if path is not None and key_exists and path.is_file():
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except ValueError:
                cert = None
            if (
                cert is not None
                and cert.public_key() == key.public_key()
                and cert.subject == cert.issuer == make_name(ROOT_NAME, (NameOID.ORGANIZATION_NAME, ORGANIZATION))
                and cert.not_valid_after_utc - self.now >= ROOT_MIN_REMAINING
                and cert.not_valid_before_utc <= self.now
            ):
                self.root_reused = True
                return Issuer(ROOT_SLUG, cert, key)
        cert = build_certificate(
            subject=make_name(ROOT_NAME, (NameOID.ORGANIZATION_NAME, ORGANIZATION)),
            public_key=key.public_key(),
            issuer=None,
            self_key=key,
            not_before=self.now - ONE_DAY,
            not_after=self.now + dt.timedelta(days=10 * 365),
            ca=True,
        )
        if path is not None and self.write:
            write_atomic(path, cert_pem(cert))
        return Issuer(ROOT_SLUG, cert, key)

    # intermediates

    def _issue_ca(self, spec: CASpec) -> Issuer:
        crossed = self.issuers[spec.cross_of] if spec.cross_of is not None else None
        key = crossed.key if crossed is not None else self.keys.get(spec.slug, spec.key)
        issuer = self.issuers[spec.issuer] if spec.issuer is not None else None
        not_before = self.now + dt.timedelta(days=spec.starts)
        constraints = None
        if spec.permitted_dns or spec.excluded_dns:
            constraints = x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(n) for n in spec.permitted_dns] or None,
                excluded_subtrees=[x509.DNSName(n) for n in spec.excluded_dns] or None,
            )
        subject = crossed.cert.subject if crossed is not None else None
        cert = build_certificate(
            subject=subject or make_name(spec.common_name, (NameOID.ORGANIZATION_NAME, ORGANIZATION)),
            public_key=key.public_key(),
            issuer=issuer,
            self_key=key,
            not_before=not_before,
            not_after=not_before + dt.timedelta(days=spec.days),
            ca=spec.ca,
            dns_names=None if spec.ca else ["not-a-ca.certdoctor.test"],
            ekus=spec.ekus if spec.ca else [ExtendedKeyUsageOID.SERVER_AUTH],
            aia_url=self.aia_url(spec.issuer) if spec.issuer is not None else None,
            ocsp_url=self.expand_url(spec.ocsp_url) if spec.ocsp_url else None,
            crl_url=self.expand_url(spec.crl_url) if spec.crl_url else None,
            must_staple=spec.must_staple,
            path_length=spec.path_length,
            name_constraints=constraints,
        )
        if spec.issuer is not None:
            self.register(spec.issuer, cert, spec.revoked)
        return Issuer(spec.slug, cert, key)

    def _issue_ocsp_signer(self) -> Issuer:
        key = self.keys.get(OCSP_SIGNER_SLUG, "ec256")
        not_before = self.now - ONE_DAY
        cert = build_certificate(
            subject=make_name(OCSP_SIGNER_NAME, (NameOID.ORGANIZATION_NAME, ORGANIZATION)),
            public_key=key.public_key(),
            issuer=self.issuers[REVOCATION_CA],
            not_before=not_before,
            not_after=not_before + dt.timedelta(days=365),
            ca=False,
            ekus=[ExtendedKeyUsageOID.OCSP_SIGNING],
            aia_url=self.aia_url(REVOCATION_CA),
            ocsp_no_check=True,
        )
        self.register(REVOCATION_CA, cert)
        return Issuer(OCSP_SIGNER_SLUG, cert, key)

    # leaves

    def issue_leaf(
        self,
        *,
        key_name: str,
        key_kind: KeyKind = "rsa2048",
        issuer: str | None = "lab-rsa-ca",
        dns_names: Sequence[str] | None,
        common_name: str | None,
        subject_extra: Sequence[tuple[ObjectIdentifier, str]] = (),
        starts: float = -1.0,
        days: float = 90.0,
        ekus: Sequence[ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
        aia: bool = True,
        hash_name: HashName = "sha256",
        ocsp_url: str | None = None,
        crl_url: str | None = None,
        must_staple: bool = False,
        revoked: Revoke | None = None,
        claims_ca: bool = False,
        serial: int | None = None,
        authority_key_id: bytes | None = None,
        unknown_critical: bool = False,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A server certificate. ``issuer`` is a CA slug, or None for a self-signed one.

        Deliberate defects: ``claims_ca`` (basicConstraints cA TRUE), ``serial`` (this serial number, even a
        negative one; see :func:`with_serial`), ``authority_key_id`` and ``unknown_critical`` (see
        :func:`build_certificate`).

        ``starts`` and ``days`` are in days: the certificate is valid from now + ``starts`` for ``days``.
        ``ocsp_url``, ``crl_url`` and ``must_staple``: see :func:`build_certificate` (URLs, not templates).
        The certificate is recorded in :attr:`issued`, and in :attr:`revocations` when ``revoked`` is set.
        """
        key = self.keys.get(key_name, key_kind)
        parent = self.issuers[issuer] if issuer is not None else None
        not_before = self.now + dt.timedelta(days=starts)
        cert = build_certificate(
            subject=make_name(common_name, *subject_extra),
            public_key=key.public_key(),
            issuer=parent,
            self_key=key,
            not_before=not_before,
            not_after=not_before + dt.timedelta(days=days),
            ca=False,
            dns_names=dns_names,
            ekus=ekus,
            aia_url=self.aia_url(issuer) if issuer is not None and aia else None,
            hash_name=hash_name,
            ocsp_url=ocsp_url,
            crl_url=crl_url,
            must_staple=must_staple,
            basic_ca=True if claims_ca else None,
            authority_key_id=authority_key_id,
            unknown_critical=unknown_critical,
        )
        if serial is not None:
            cert = with_serial(cert, serial, parent.key if parent is not None else key)
        if issuer is not None:
            self.register(issuer, cert, revoked)
        return cert, key

    # revocation

    def register(self, issuer: str, cert: x509.Certificate, revoked: Revoke | None = None) -> None:
        """Record that CA ``issuer`` issued ``cert`` (its OCSP responder then says good), revoked if asked."""
        with self._lock:
            self.issued.setdefault(issuer, set()).add(cert.serial_number)
        if revoked is not None:
            self.revoke(issuer, cert.serial_number, revoked.reason, self.now + dt.timedelta(days=revoked.days))

    def revoke(self, issuer: str, serial: int, reason: x509.ReasonFlags, when: dt.datetime | None = None) -> Revocation:
        """Revoke serial ``serial`` of CA ``issuer`` at ``when`` (default: the lab's now)."""
        revocation = Revocation(when or self.now, reason)
        with self._lock:
            self.revocations.setdefault(issuer, {})[serial] = revocation
        return revocation

    def status(self, issuer: str, serial: int) -> tuple[ocsp.OCSPCertStatus, Revocation | None]:
        """REVOKED (with when and why) if revoked, GOOD if issued by ``issuer``, else UNKNOWN."""
        with self._lock:
            revocation = self.revocations.get(issuer, {}).get(serial)
            issued = serial in self.issued.get(issuer, ())
        if revocation is not None:
            return ocsp.OCSPCertStatus.REVOKED, revocation
        return (ocsp.OCSPCertStatus.GOOD if issued else ocsp.OCSPCertStatus.UNKNOWN), None

    def revoked(self) -> dict[int, Revocation]:
        """Every revoked serial, whatever its issuer -> (time, reason)."""
        with self._lock:
            return {serial: r for by_serial in self.revocations.values() for serial, r in by_serial.items()}

    def crl(self, issuer: str, *, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """CA ``issuer``'s CRL as of ``now`` (default: the current time); see :func:`revocation.build_crl`."""
        with self._lock:
            revoked = dict(self.revocations.get(issuer, {}))
        return revocation.build_crl(self.issuers[issuer], revoked, now or utcnow())

    def cert_id_hashes(self, issuer: str, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        """(issuerNameHash, issuerKeyHash) of an OCSP CertID for the certificates CA ``issuer`` issued."""
        return revocation.cert_id_hashes(self.issuers[issuer].cert, algorithm)

    def answer_ocsp(self, issuer: str, request_der: bytes, *, now: dt.datetime | None = None) -> bytes:
        """The DER OCSPResponse of CA ``issuer``'s responder (KeyError: it has none) to a DER OCSPRequest.

        malformedRequest if the request does not parse (or holds more than one CertID, or uses a hash
        cryptography does not know); unauthorized if its CertID names another issuer (name or key hash).
        Otherwise the serial's :meth:`status`, signed as :attr:`responders` says, with thisUpdate now - 1 h
        and nextUpdate now + 7 days, and the request's nonce echoed if it sent one.
        """
        responder = self.responders[issuer]
        try:
            cert_id = revocation.parse_request(request_der)
        except ValueError:
            return revocation.unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        expected = revocation.cert_id_hashes(responder.ca.cert, cert_id.algorithm)
        if (cert_id.issuer_name_hash, cert_id.issuer_key_hash) != expected:
            return revocation.unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = now or utcnow()
        status, revoked = self.status(issuer, cert_id.serial)
        return revocation.sign_response(
            responder,
            cert_id,
            status,
            revoked,
            this_update=now - revocation.STATUS_BACKDATE,
            next_update=now + revocation.STATUS_VALIDITY,
        )

    def ocsp_response(
        self,
        cert: x509.Certificate,
        issuer: str,
        *,
        this_update: dt.datetime | None = None,
        next_update: dt.datetime | None = None,
        algorithm: hashes.HashAlgorithm | None = None,
    ) -> bytes:
        """A DER OCSPResponse for ``cert``, signed as CA ``issuer``'s responder signs (for staples and tests).

        ``this_update`` / ``next_update`` default to now - 1 h / now + 7 days; the CertID hash defaults to
        SHA-1 (what clients put in their requests). The status is the one :meth:`status` gives.
        """
        responder = self.responders[issuer]
        if cert.issuer != responder.ca.cert.subject:
            raise ValueError(f"the certificate was not issued by {issuer}")
        algorithm = algorithm or hashes.SHA1()
        name_hash, key_hash = revocation.cert_id_hashes(responder.ca.cert, algorithm)
        cert_id = revocation.CertID(algorithm, name_hash, key_hash, cert.serial_number)
        status, revoked = self.status(issuer, cert.serial_number)
        now = utcnow()
        return revocation.sign_response(
            responder,
            cert_id,
            status,
            revoked,
            this_update=this_update or now - revocation.STATUS_BACKDATE,
            next_update=next_update or now + revocation.STATUS_VALIDITY,
        )


def _der(tag: int, content: bytes) -> bytes:
    """One DER element (definite length)."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def filler_certificates(count: int, *, label: str = "filler", now: dt.datetime | None = None) -> list[x509.Certificate]:
    """``count`` distinct, small, unrelated self-signed certificates sharing one fresh EC P-256 key.

    Nothing is cached. The CertificateBuilder costs ~50 µs per certificate, so only the first one is built
    with it; the others are that template's TBS with the serial and CN digits replaced (same lengths),
    signed directly with ECDSA (~25 µs). 10,000 take about 0.3 s.
    """
    if count <= 0:
        return []
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or utcnow()) - ONE_DAY
    width = max(5, len(str(count)))  # a marker long enough never to occur by chance
    serial_base = 1 << 62  # every serial is 8 bytes long: 0x40 followed by the index
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"certdoctor Lab {label} #{1:0{width}d}")])
    template = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial_base + 1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der = template.public_bytes(serialization.Encoding.DER)
    outer_header, _ = _der_header(der, 0)
    tbs = template.tbs_certificate_bytes
    algid_start = outer_header + len(tbs)
    algid_header, algid_len = _der_header(der, algid_start)
    algid = der[algid_start : algid_start + algid_header + algid_len]
    serial_marker = _der(0x02, (serial_base + 1).to_bytes(8, "big"))
    cn_marker = f"#{1:0{width}d}".encode()
    if tbs.count(serial_marker) != 1 or tbs.count(cn_marker) != 2:
        raise ValueError("unexpected template encoding")
    out = [template]
    ecdsa = ec.ECDSA(hashes.SHA256())
    for i in range(2, count + 1):
        tbs_i = tbs.replace(serial_marker, _der(0x02, (serial_base + i).to_bytes(8, "big"))).replace(
            cn_marker, f"#{i:0{width}d}".encode()
        )
        signature = key.sign(tbs_i, ecdsa)
        out.append(x509.load_der_x509_certificate(_der(0x30, tbs_i + algid + _der(0x03, b"\x00" + signature))))
    return out
