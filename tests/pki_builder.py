"""Certificate chains built in memory for unit tests: root, intermediates and leaves with the knobs the checks
judge (validity, SANs, key usage, EKU, basic constraints and path length, name constraints, unknown critical
extensions, weak keys and SHA-1 signatures), plus OCSP responses about them. No files, no network.

Keys are cached per label for the whole test session (EC P-256 unless a test asks for RSA), so building a
certificate costs a signature, not a key generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# the lab already knows how to build AIA extensions and SHA-1 signatures (which cryptography refuses to make)
from certdoctor.lab.pki import authority_information_access, sign_sha1

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# The moment every unit test judges at (fixed, so that validity arithmetic is exact).
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CA_FROM = datetime(2021, 1, 1, tzinfo=UTC)
CA_UNTIL = datetime(2036, 1, 1, tzinfo=UTC)
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
_DEFAULT = object()


@cache
def ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    """One P-256 key per label, for the whole session."""
    return ec.generate_private_key(ec.SECP256R1())


@cache
def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """One RSA key per (label, size): generate them sparingly (only for the weak-key and SHA-1 cases)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


def name(common_name: str | None) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])


def _ku(ca: bool, public_key: object) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca and isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    common_name: str | None,
    *,
    issuer: Issued | None = None,
    key: PrivateKey | None = None,
    ca: bool = False,
    path_length: int | None = None,
    basic_constraints: bool = True,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    sans: Sequence[str] | None = (),
    key_usage: x509.KeyUsage | object | None = _DEFAULT,
    eku: Sequence[x509.ObjectIdentifier] | object | None = _DEFAULT,
    name_constraints: x509.NameConstraints | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    aia_ca_issuers: str | None = None,
    ocsp_url: str | None = None,
    must_staple: bool = False,
    sha1: bool = False,
) -> Issued:
    """Issue one certificate; ``issuer`` None means self-signed.

    Defaults follow a clean web-PKI profile: a CA gets basicConstraints CA:TRUE (critical) and keyUsage
    keyCertSign+cRLSign and is valid 2021-2036; a leaf gets CA:FALSE, keyUsage digitalSignature, EKU serverAuth,
    a DNS subjectAltName ``sans`` (default: the common name; None: no SAN extension) and 90 days of validity
    around :data:`AT`. Every certificate has a subjectKeyIdentifier, and an authorityKeyIdentifier unless it is
    a self-signed CA. ``key_usage``/``eku`` None leave the extension out. ``extensions``: extra
    (value, critical) pairs. ``sha1``: sign with sha1WithRSAEncryption (the issuer key must be RSA).
    """
    key = key or ec_key(f"key:{common_name}")
    public_key = key.public_key()
    signer = issuer.key if issuer is not None else key
    if not_before is None:
        not_before = CA_FROM if ca else AT - timedelta(days=30)
    if not_after is None:
        not_after = CA_UNTIL if ca else not_before + timedelta(days=90)
    subject = name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if key_usage is _DEFAULT:
        key_usage = _ku(ca, public_key)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)  # type: ignore[arg-type]
    if eku is _DEFAULT:
        eku = None if ca else [SERVER_AUTH]
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)  # type: ignore[call-overload]
    if issuer is not None or not ca:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    if sans == ():
        sans = [common_name] if common_name and not ca else None
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    access = authority_information_access(ocsp_url, aia_ca_issuers)
    if access is not None:
        builder = builder.add_extension(access, critical=False)
    if must_staple:
        builder = builder.add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    if sha1:
        return Issued(sign_sha1(builder, signer), key)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def root(common_name: str = "Unit Root", **kw: object) -> Issued:
    return issue(common_name, ca=True, **kw)  # type: ignore[arg-type]


def intermediate(common_name: str, issuer: Issued, **kw: object) -> Issued:
    return issue(common_name, issuer=issuer, ca=True, **kw)  # type: ignore[arg-type]


def leaf(common_name: str, issuer: Issued | None, **kw: object) -> Issued:
    return issue(common_name, issuer=issuer, **kw)  # type: ignore[arg-type]


def ocsp_response(
    cert: x509.Certificate,
    issuer: Issued,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    revoked_at: datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    signer: Issued | None = None,
) -> bytes:
    """A DER OCSP response about ``cert``, signed by ``signer`` (default: the issuer itself)."""
    signer = signer or issuer
    this_update = this_update or AT - timedelta(hours=1)
    next_update = next_update or this_update + timedelta(days=4)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    )
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
