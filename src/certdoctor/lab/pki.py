"""The lab's certificate authority: small, readable key and certificate generation with ``cryptography``.

Keys are cached as PEM files under ``<state_dir>/keys`` because RSA key generation is the slow part. The
lab root certificate is cached too (``<state_dir>/lab-root.pem``), so the file users trust stays the same
across restarts; it is re-created when it expires within 30 days or when its key or file is missing. Every
other certificate is re-issued at each start: that is cheap, and the AIA URLs they embed contain the AIA
server's port, which can change.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

KeyKind = Literal["rsa2048", "rsa1024", "ec256"]
HashName = Literal["sha256", "sha1"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ROOT_NAME = "certdoctor Lab Root CA"
ROOT_SLUG = "lab-root"
ROOT_MIN_REMAINING = dt.timedelta(days=30)
ORGANIZATION = "certdoctor Lab"
ONE_DAY = dt.timedelta(days=1)


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
    return rsa.generate_private_key(public_exponent=65537, key_size=2048 if kind == "rsa2048" else 1024)


def _key_matches(key: object, kind: KeyKind) -> bool:
    if kind == "ec256":
        return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    return isinstance(key, rsa.RSAPrivateKey) and key.key_size == (2048 if kind == "rsa2048" else 1024)


class KeyCache:
    """Private keys by name, cached as ``<directory>/<name>.<kind>.pem`` (``directory`` None: memory only)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
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
            if path is not None:
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


@dataclass(frozen=True)
class Issuer:
    """A certificate that signs others, with its key and the slug of its ``.cer`` file on the AIA server."""

    slug: str
    cert: x509.Certificate
    key: PrivateKey

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


def build_certificate(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
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
) -> x509.Certificate:
    """Issue one certificate. ``issuer`` None means self-signed with ``self_key``.

    CA certificates get basicConstraints CA:TRUE and keyUsage keyCertSign+cRLSign (both critical); others
    basicConstraints CA:FALSE and keyUsage digitalSignature (+keyEncipherment for RSA keys). Every
    certificate gets a subjectKeyIdentifier, and an authorityKeyIdentifier when it is not self-signed.
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
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
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
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if issuer is not None:
        try:
            ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    elif not ca:  # a self-signed end-entity certificate, as `openssl req -x509` makes them
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if aia_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_url)
                    )
                ]
            ),
            critical=False,
        )
    if hash_name == "sha1":
        return _sign_sha1(builder, signing_key)
    return builder.sign(signing_key, _hash(hash_name))


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


def _sign_sha1(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
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


@dataclass(frozen=True)
class CASpec:
    """One CA (or CA-like) certificate of the lab, issued at every start except the root."""

    slug: str
    common_name: str
    key: KeyKind
    issuer: str | None  # slug of the issuer; None: self-signed
    ca: bool = True
    starts: float = -1.0  # days relative to now
    days: float = 5 * 365


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
)


class LabPKI:
    """The lab root, every intermediate and a leaf factory.

    ``state_dir`` None keeps everything in memory (nothing cached). ``aia_base_url`` is the AIA server's
    base URL (``http://127.0.0.1:PORT``); each CA's ``.cer`` is at ``<aia_base_url>/<slug>.cer``.
    """

    def __init__(self, state_dir: Path | None, aia_base_url: str, *, now: dt.datetime | None = None) -> None:
        self.state_dir = state_dir
        self.aia_base_url = aia_base_url.rstrip("/")
        self.now = now or utcnow()
        self.keys = KeyCache(state_dir / "keys" if state_dir is not None else None)
        self.root_reused = False
        self.root = self._load_or_create_root()
        self.issuers: dict[str, Issuer] = {ROOT_SLUG: self.root}
        for spec in CA_SPECS:
            self.issuers[spec.slug] = self._issue_ca(spec)

    @property
    def root_path(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / "lab-root.pem"

    def aia_url(self, slug: str) -> str:
        return f"{self.aia_base_url}/{slug}.cer"

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
        if path is not None:
            write_atomic(path, cert_pem(cert))
        return Issuer(ROOT_SLUG, cert, key)

    # intermediates

    def _issue_ca(self, spec: CASpec) -> Issuer:
        key = self.keys.get(spec.slug, spec.key)
        issuer = self.issuers[spec.issuer] if spec.issuer is not None else None
        not_before = self.now + dt.timedelta(days=spec.starts)
        cert = build_certificate(
            subject=make_name(spec.common_name, (NameOID.ORGANIZATION_NAME, ORGANIZATION)),
            public_key=key.public_key(),
            issuer=issuer,
            self_key=key,
            not_before=not_before,
            not_after=not_before + dt.timedelta(days=spec.days),
            ca=spec.ca,
            dns_names=None if spec.ca else ["not-a-ca.certdoctor.test"],
            ekus=None if spec.ca else [ExtendedKeyUsageOID.SERVER_AUTH],
            aia_url=self.aia_url(spec.issuer) if spec.issuer is not None else None,
        )
        return Issuer(spec.slug, cert, key)

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
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A server certificate. ``issuer`` is a CA slug, or None for a self-signed one.

        ``starts`` and ``days`` are in days: the certificate is valid from now + ``starts`` for ``days``.
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
        )
        return cert, key


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
