"""The lab's Certificate Transparency logs: key pairs that sign SCTs for the leaves the lab issues.

Not a log server (nothing is appended to a Merkle tree): each lab log is an EC P-256 key (kept in the lab's key
cache) that signs SCTs (RFC 6962 §3.2) over a leaf's precertificate, which the lab then embeds in the leaf
(the ``signedCertificateTimestampList`` extension, RFC 6962 §3.3). :func:`log_list` writes the logs as a log list
in the format the browsers publish (Chrome's ``log_list.json`` v3), for ``certdoctor check --ct-log-list``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .pki import LabPKI, _sign
from .pkitypes import HashName, Issuer, PrivateKey

LOG_LIST_NAME = "log_list.json"  # written next to the lab root (lab-root.pem)
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


@dataclass(frozen=True)
class LabLog:
    """One lab log: its ``name`` (also its key's cache name) and its operator."""

    name: str
    operator: str


# Two operators, so that a leaf can meet the browsers' operator-diversity rules; a third log shares an operator.
LOGS = (
    LabLog("lab-ct-log-1", "certdoctor Lab Log Operator A"),
    LabLog("lab-ct-log-2", "certdoctor Lab Log Operator B"),
    LabLog("lab-ct-log-3", "certdoctor Lab Log Operator A"),
)
LOG_NAMES = tuple(log.name for log in LOGS)


def _key(lab_pki: LabPKI, name: str) -> ec.EllipticCurvePrivateKey:
    key = lab_pki.keys.get(name, "ec256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def log_list(lab_pki: LabPKI) -> bytes:
    """The lab logs as a log list (Chrome's v3 JSON: operators[].logs[] with log_id, key, state...)."""
    operators: dict[str, list[dict[str, object]]] = {}
    for log in LOGS:
        spki = _spki(_key(lab_pki, log.name))
        operators.setdefault(log.operator, []).append(
            {
                "description": f"certdoctor lab log {log.name}",
                "log_id": base64.b64encode(hashlib.sha256(spki).digest()).decode(),
                "key": base64.b64encode(spki).decode(),
                "url": f"https://{log.name}.certdoctor.test/",
                "mmd": 86400,
                "state": {"usable": {"timestamp": "2024-01-01T00:00:00Z"}},
            }
        )
    doc = {
        "version": "1.0",
        "log_list_timestamp": lab_pki.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "operators": [
            {"name": name, "email": ["lab@certdoctor.test"], "logs": logs} for name, logs in operators.items()
        ],
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


def _vector(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _sct(
    key: ec.EllipticCurvePrivateKey, timestamp_ms: int, issuer_key_hash: bytes, tbs: bytes, corrupt: bool
) -> bytes:
    """One v1 SCT over a precert entry (RFC 6962 §3.2), TLS-encoded; ``corrupt``: its signature's last byte is
    flipped, so that it does not verify."""
    signed = (
        bytes([0, 0])
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 1)  # precert_entry
        + issuer_key_hash
        + _vector(tbs, 3)
        + _vector(b"", 2)
    )
    signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    if corrupt:
        signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
    log_id = hashlib.sha256(_spki(key)).digest()
    return (
        bytes([0]) + log_id + struct.pack(">Q", timestamp_ms) + _vector(b"", 2) + bytes([4, 3]) + _vector(signature, 2)
    )


def _der_octets(data: bytes) -> bytes:
    if len(data) < 0x80:
        return bytes([0x04, len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(size)]) + size + data


def embed_scts(
    lab_pki: LabPKI, cert: x509.Certificate, issuer: Issuer, logs: Sequence[str], hash_name: HashName = "sha256"
) -> x509.Certificate:
    """``cert`` re-issued by ``issuer`` with SCTs of the lab logs named in ``logs`` embedded (same serial, dates
    and extensions; the SCT list extension last). A name ``"bad:<log>"`` makes that log's SCT one whose signature
    does not verify. The SCTs sign the precertificate: the TBSCertificate without the SCT extension, which is
    exactly the re-issued one's ``tbs_precertificate_bytes``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())  # type: ignore[arg-type]
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    signer: PrivateKey = issuer.key
    tbs = _sign(builder, signer, hash_name).tbs_certificate_bytes
    key_hash = hashlib.sha256(
        issuer.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    stamp = int((lab_pki.now - dt.timedelta(minutes=5)).timestamp() * 1000)
    scts = b"".join(
        _vector(_sct(_key(lab_pki, name.removeprefix("bad:")), stamp, key_hash, tbs, name.startswith("bad:")), 2)
        for name in logs
    )
    ext = x509.UnrecognizedExtension(SCT_LIST_OID, _der_octets(_vector(scts, 2)))
    final = _sign(builder.add_extension(ext, critical=False), signer, hash_name)
    if final.tbs_precertificate_bytes != tbs:  # pragma: no cover - cryptography re-encoded an extension differently
        raise ValueError("the precertificate of the re-issued leaf differs from the one the SCTs sign")
    return final
