"""The small types the lab's PKI (``pki.py``) and revocation data (``revocation.py``) share.

They live here so that both modules import them from one place and neither imports the other's types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

KeyKind = Literal["rsa2048", "rsa1024", "ec256", "ed25519"]
HashName = Literal["sha256", "sha1"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Issuer:
    """A certificate that signs others, with its key and the slug of its ``.cer`` file on the AIA server."""

    slug: str
    cert: x509.Certificate
    key: PrivateKey

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


class Revocation(NamedTuple):
    """When and why a certificate was revoked."""

    time: dt.datetime
    reason: x509.ReasonFlags


@dataclass(frozen=True)
class Revoke:
    """A revocation recorded when the certificate is issued: ``reason``, at the lab's now + ``days``."""

    reason: x509.ReasonFlags
    days: float = -1.0
