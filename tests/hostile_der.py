"""Hostile certificates for tests: certificates that cryptography loads but cannot decode on first access.

cryptography refuses to *build* most of these, so they are built clean with :mod:`pki_builder` and then their
TBSCertificate is rewritten at the DER level (a name replaced by raw bytes, a key algorithm OID swapped) and
re-signed with the issuer's key, so that the signature still verifies and path building still links them.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pki_builder import Issued, PrivateKey

# ASN.1 universal tags of the string types that appear in names
UTF8 = 0x0C
PRINTABLE = 0x13
TELETEX = 0x14
IA5 = 0x16
BMP = 0x1E
CN_OID = bytes.fromhex("0603550403")  # 2.5.4.3 commonName
O_OID = bytes.fromhex("060355040a")  # 2.5.4.10 organizationName


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def _children(der: bytes) -> list[bytes]:
    """The complete TLVs inside one constructed element."""
    first = der[1]
    head = 2 + (first & 0x7F if first >= 0x80 else 0)
    out, i = [], head
    while i < len(der):
        first = der[i + 1]
        n = first & 0x7F if first >= 0x80 else 0
        length = int.from_bytes(der[i + 2 : i + 2 + n], "big") if n else first
        end = i + 2 + n + length
        out.append(der[i:end])
        i = end
    return out


def attr(value_tag: int, value: bytes, oid: bytes = CN_OID) -> bytes:
    """One RDN (a SET of one AttributeTypeAndValue) with a raw value."""
    return tlv(0x31, tlv(0x30, oid + tlv(value_tag, value)))


def name(*rdns: bytes) -> bytes:
    """A Name from raw RDNs (``attr(...)``, or ``tlv(0x31, b"")`` for an empty RDN)."""
    return tlv(0x30, b"".join(rdns))


def rewrite(
    issued: Issued,
    signer: PrivateKey,
    *,
    subject: bytes | None = None,
    issuer: bytes | None = None,
    replace: tuple[bytes, bytes] | None = None,
) -> x509.Certificate:
    """``issued`` with its subject and/or issuer Name replaced by raw DER and/or one byte string of its TBS
    replaced, re-signed by ``signer`` with the same algorithm (ECDSA or RSA PKCS#1 v1.5, SHA-256)."""
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    tbs, algid, _ = _children(der)
    fields = _children(tbs)
    start = 1 if fields[0][0] == 0xA0 else 0  # [0] version
    if issuer is not None:
        fields[start + 2] = issuer
    if subject is not None:
        fields[start + 4] = subject
    content = b"".join(fields)
    if replace is not None:
        old, new = replace
        assert content.count(old) == 1, "the bytes to replace must occur exactly once in the TBS"
        content = content.replace(old, new)
    tbs = tlv(0x30, content)
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
        signature = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_certificate(tlv(0x30, tbs + algid + tlv(0x03, b"\x00" + signature)))


P256_OID = bytes.fromhex("06082a8648ce3d030107")  # namedCurve prime256v1
UNKNOWN_CURVE_OID = bytes.fromhex("06082a8648ce3d030163")  # 1.2.840.10045.3.1.99: no such curve


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
