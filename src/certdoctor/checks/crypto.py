"""Cryptographic strength of the path: signature hashes and key sizes."""

from __future__ import annotations

from collections.abc import Iterator

from .. import certinfo
from ..model import Severity
from ..paths import WEAK_HASHES
from ._text import label
from .registry import ChainContext, Hit, check

MIN_RSA = 2048
MIN_EC = 256


def _signed_path(ctx: ChainContext):
    """Path certificates whose own signature a client checks (everything but a self-signed top)."""
    for node in ctx.analysis.best.nodes:
        if certinfo.is_self_signed(node.cert) and node is ctx.analysis.best.top and len(ctx.analysis.best.nodes) > 1:
            continue
        yield node


@check(
    "weak-signature",
    title="A certificate is signed with a broken hash (MD5 or SHA-1)",
    severity=Severity.ERROR,
    citation="CA/B Forum BR §7.1.3.2; RFC 9155; Chrome/Mozilla SHA-1 deprecation (2017)",
)
def weak_signature(ctx: ChainContext) -> Iterator[Hit]:
    """A leaf or intermediate signature uses MD5 or SHA-1 (a root's self-signature does not matter)."""
    for node in _signed_path(ctx):
        h = certinfo.signature_hash(node.cert)
        if h and h.lower() in WEAK_HASHES:
            yield Hit(
                f"{label(node.cert)} is signed with {certinfo.signature_algorithm(node.cert)}. SHA-1 and MD5 "
                "signatures can be forged; browsers, OpenSSL 3 (curl, Python) and Node reject them "
                "('CA signature digest algorithm too weak', NET::ERR_CERT_WEAK_SIGNATURE_ALGORITHM).",
                "Re-issue the certificate with a SHA-256 (or stronger) signature; every current CA does by default.",
                cert=node.cert,
                evidence={"signature_algorithm": certinfo.signature_algorithm(node.cert), "hash": h},
            )


@check(
    "weak-key",
    title="A certificate has a key that is too small",
    severity=Severity.ERROR,
    citation="CA/B Forum BR §6.1.5 (RSA ≥ 2048 bits, ECDSA P-256/P-384/P-521); NIST SP 800-131A",
)
def weak_key(ctx: ChainContext) -> Iterator[Hit]:
    """RSA or DSA keys under 2048 bits, or elliptic curves under 256 bits, anywhere on the path."""
    for node in ctx.analysis.best.nodes:
        kind, bits = certinfo.key_description(node.cert)
        weak = (kind in ("RSA", "DSA") and bits < MIN_RSA) or (kind.startswith("EC ") and bits < MIN_EC)
        if kind == "DSA":
            weak = True
        if weak:
            yield Hit(
                f"{label(node.cert)} has a {kind} key of {bits} bits. OpenSSL 3 at its default security "
                "level (curl, Python) refuses it ('EE certificate key too weak' / 'CA certificate key too "
                "weak'), and the web PKI forbids it.",
                "Generate a new key (RSA 2048/3072 or ECDSA P-256) and a new certificate signing request, and "
                "have the certificate re-issued.",
                cert=node.cert,
                evidence={"key_type": kind, "key_bits": bits},
            )
