"""The lab's revocation data, CRLs and OCSP responses, built with ``cryptography``.

Pure functions over certificates and keys, no I/O and no clock of their own: :class:`pki.LabPKI` records
what was issued and revoked and calls these with the current time; ``aia.py`` serves the results on
the AIA HTTP server. This module does not import ``pki``: the types both use are in ``pkitypes``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp

from .pkitypes import Issuer, Revocation

STATUS_BACKDATE = dt.timedelta(hours=1)  # OCSP thisUpdate / CRL lastUpdate: the time of the request minus this
STATUS_VALIDITY = dt.timedelta(days=7)  # OCSP / CRL nextUpdate: the time of the request plus this
GARBAGE_SIZE = 2048  # bytes of the garbage "OCSP response"


@dataclass(frozen=True)
class Responder:
    """How one CA's OCSP responder signs: with the CA's own key, or with a delegated signer's.

    Responses are signed with SHA-256. A delegated signer's certificate is included in the response.
    """

    ca: Issuer
    signer: Issuer  # ``ca`` itself, or a certificate issued by it with id-kp-OCSPSigning
    encoding: ocsp.OCSPResponderEncoding  # how the responderID names ``signer``: byName or byKeyHash

    @property
    def delegated(self) -> bool:
        return self.signer is not self.ca


@dataclass(frozen=True)
class CertID:
    """What one OCSP request asks about (RFC 6960 CertID), plus the request's nonce if it sent one."""

    algorithm: hashes.HashAlgorithm
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    nonce: bytes | None = None


# --- OCSP -----------------------------------------------------------------------------------------------


def _public_key_bits(key: CertificatePublicKeyTypes) -> bytes:
    """The subjectPublicKey BIT STRING contents of ``key``: what a CertID's issuerKeyHash hashes."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    raise TypeError(f"unsupported issuer key type {type(key).__name__}")


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def cert_id_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of the CertIDs of the certificates ``issuer`` issued."""
    return _digest(algorithm, issuer.subject.public_bytes()), _digest(algorithm, _public_key_bits(issuer.public_key()))


def parse_request(der: bytes) -> CertID:
    """The CertID and nonce of a DER OCSPRequest.

    ValueError if it does not parse, holds more than one CertID, or uses a hash cryptography does not know.
    """
    try:
        request = ocsp.load_der_ocsp_request(der)
        nonce: bytes | None = None
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                nonce = extension.value.nonce
        return CertID(
            request.hash_algorithm, request.issuer_name_hash, request.issuer_key_hash, request.serial_number, nonce
        )
    except UnsupportedAlgorithm as exc:
        raise ValueError(str(exc)) from exc


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    """A DER OCSPResponse without a body (malformedRequest, internalError, unauthorized, ...)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def sign_response(
    responder: Responder,
    cert_id: CertID,
    status: ocsp.OCSPCertStatus,
    revocation: Revocation | None,
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """A successful DER OCSPResponse with one SingleResponse for ``cert_id``, signed as ``responder`` signs.

    producedAt is the current time (cryptography sets it); the request's nonce, if any, is echoed.
    """
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=cert_id.issuer_name_hash,
        issuer_key_hash=cert_id.issuer_key_hash,
        serial_number=cert_id.serial,
        algorithm=cert_id.algorithm,
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=revocation.time if revocation is not None else None,
        revocation_reason=revocation.reason if revocation is not None else None,
    )
    builder = builder.responder_id(responder.encoding, responder.signer.cert)
    if responder.delegated:
        builder = builder.certificates([responder.signer.cert])
    if cert_id.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(cert_id.nonce), critical=False)
    return builder.sign(responder.signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def decode_get(encoded: str) -> bytes:
    """The DER request of an RFC 6960 (A.1) GET: the url-encoded base64 that follows the responder URL.

    Percent-encoding is optional; URL-safe base64, missing padding and stray whitespace are tolerated.
    b"" when it does not decode (which then does not parse as a request either).
    """
    text = "".join(urllib.parse.unquote(encoded).split())
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def garbage(size: int = GARBAGE_SIZE) -> bytes:
    """Random bytes that can never parse as DER (an OCSPResponse starts with a SEQUENCE, 0x30)."""
    data = bytearray(os.urandom(size))
    if data and data[0] == 0x30:
        data[0] ^= 0x80
    return bytes(data)


# --- CRL ------------------------------------------------------------------------------------------------


def build_crl(ca: Issuer, revoked: Mapping[int, Revocation], now: dt.datetime) -> x509.CertificateRevocationList:
    """``ca``'s CRL, signed with SHA-256: lastUpdate now - 1 h, nextUpdate now + 7 days, a CRLNumber (the
    Unix time), the AuthorityKeyIdentifier, and one entry (revocation date, CRLReason) per revoked serial."""
    try:
        ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - STATUS_BACKDATE)
        .next_update(now + STATUS_VALIDITY)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(aki, critical=False)
    )
    for serial, revocation in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revocation.time)
            .add_extension(x509.CRLReason(revocation.reason), critical=False)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())
