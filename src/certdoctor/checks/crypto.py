"""Cryptographic soundness of the chain: certificates that cannot be decoded, signature hashes, key sizes."""

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
                "signatures can be forged; OpenSSL 3 (curl, Python: 'CA signature digest algorithm too weak'), "
                "Node (the same text), Go ('x509: cannot verify signature: insecure algorithm'), Chrome "
                "(net::ERR_CERT_INVALID) and Firefox (SEC_ERROR_CERT_SIGNATURE_ALGORITHM_DISABLED) reject them; "
                "Java rejects them only under a public root (jdk.certpath.disabledAlgorithms: SHA1 jdkCA).",
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


@check(
    "ed25519-key",
    title="A certificate has an Ed25519 key, which browsers cannot use",
    severity=Severity.ERROR,
    citation="CA/B Forum BR §6.1.5 and §7.1.3.1 (RSA and ECDSA only); RFC 8410; RFC 8446 §4.2.3 (ed25519)",
)
def ed25519_key(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf or a CA on the path has an Ed25519 key.

    Chromium offers no ed25519 signature scheme, so a server whose only certificate is Ed25519 cannot complete
    a handshake with it (the server answers handshake_failure: ERR_SSL_VERSION_OR_CIPHER_MISMATCH, observed);
    Firefox and Apple's TLS stack do not support Ed25519 certificates either. OpenSSL 1.1.1+ (curl, Python,
    Node), Java 15+ and Go 1.13+ accept them. The web PKI (and so cryptography's verifier, certdoctor's
    reference) allows only RSA and ECDSA keys.
    """
    for node in ctx.analysis.best.nodes:
        if certinfo.key_description(node.cert)[0] != "Ed25519":
            continue
        where = "the server certificate" if node is ctx.analysis.best.nodes[0] else "a CA on the path"
        yield Hit(
            f"{label(node.cert)} ({where}) has an Ed25519 key. Chrome (and Edge) cannot connect "
            "(net::ERR_SSL_VERSION_OR_CIPHER_MISMATCH: it offers no Ed25519 signature scheme), nor can Firefox "
            "or Safari; OpenSSL clients (curl, Python, Node), Java and Go accept it. Public CAs do not issue "
            "Ed25519 certificates (CA/B Forum Baseline Requirements allow RSA and ECDSA only).",
            "Serve an ECDSA P-256 (or RSA 2048+) certificate, alone or next to the Ed25519 one (nginx and Apache "
            "accept several ssl_certificate lines and pick by what the client supports).",
            cert=node.cert,
            evidence={"key_type": "Ed25519", "position": node.position},
        )
        return


@check(
    "negative-serial",
    title="A certificate has a negative serial number",
    severity=Severity.WARNING,
    citation="RFC 5280 §4.1.2.2 (the serial number MUST be a positive integer)",
)
def negative_serial(ctx: ChainContext) -> Iterator[Hit]:
    """A certificate on the path has a serial number that is not positive.

    Observed here: OpenSSL 3.0 (curl, Python, Node), Java 17, Go 1.19 and Chromium accept it. Go 1.23+ refuses
    to parse such certificates ("x509: negative serial number", GODEBUG x509negativeserial=1 restores), and
    cryptography deprecates loading them (its web-PKI verifier already rejects them).
    """
    for node in ctx.analysis.best.nodes:
        serial = node.cert.serial_number  # cryptography's warning about it is silenced in certinfo
        if serial >= 0:  # zero: serial-number-invalid
            continue
        yield Hit(
            f"{label(node.cert)} has the serial number {serial}, which is negative (RFC 5280 §4.1.2.2). The "
            "clients checked here (OpenSSL: curl, Python, Node; Java 17; Go 1.19; Chrome) accept it, but Go 1.23 "
            "and later refuse to parse the certificate ('x509: negative serial number'), and strict validators "
            "reject it.",
            "Have the certificate re-issued; a conforming CA uses a positive serial number of up to 20 bytes.",
            cert=node.cert,
            evidence={"serial": str(serial), "position": node.position},
        )


# What real clients do with each kind of undecodable field, as verified with OpenSSL 3.0 (openssl x509/verify and
# Python's ssl) and Go 1.19 crypto/x509 on hand-made certificates (tests/test_hostile_certs.py builds them).
_NAME_CLIENTS = {
    "invalid UTF-8": "OpenSSL 3 (curl, Python, Node) cannot even load the certificate and Go's crypto/x509 refuses "
    "to parse it ('invalid UTF-8 string')",
    "IA5String": "Go's crypto/x509 refuses to parse it ('invalid IA5String'); OpenSSL 3 accepts it",
    "empty RDN": "OpenSSL 3 and Go accept it",
}
_NAME_CLIENTS_DEFAULT = "OpenSSL 3 and Go accept it (Go shows the 8-bit bytes as replacement characters)"
_KEY_CLIENTS = (
    "OpenSSL 3 cannot decode the key ('unable to get certs public key') and Go refuses to parse the certificate, "
    "so no client can check a signature made with it"
)


def _clients_for(field: str, problem: str) -> str:
    if field == "subjectPublicKeyInfo":
        return _KEY_CLIENTS
    if field == "extensions":
        return "clients differ by extension (certdoctor did not verify which accept it)"
    for marker, clients in _NAME_CLIENTS.items():
        if marker in problem:
            return clients
    return _NAME_CLIENTS_DEFAULT


@check(
    "malformed-certificate",
    title="A certificate has a field that cannot be decoded",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.1.2.4 and §4.1.2.6 (names), §4.1.2.7 (subjectPublicKeyInfo); X.690 §8.23 (string types)",
)
def malformed_certificate(ctx: ChainContext) -> Iterator[Hit]:
    """A certificate (sent, downloaded or from a store) has a name, extension or public key that is not valid
    DER for its type: a TeletexString or IA5String with bytes >= 0x80, invalid UTF-8, an empty RDN, an
    unsupported or corrupted key. Strict parsers refuse such certificates; which ones do depends on the field."""
    seen: set[str] = set()
    certs = [*ctx.chain.certs, *(n.cert for n in ctx.analysis.best.nodes)]
    for cert in certs:
        fp = certinfo.fingerprint(cert)
        if fp in seen:
            continue
        seen.add(fp)
        problems = certinfo.malformed_fields(cert)
        if not problems:
            continue
        described = "; ".join(f"{field}: {problem}" for field, problem in problems)
        clients = "; ".join(dict.fromkeys(f"{field}: {_clients_for(field, problem)}" for field, problem in problems))
        yield Hit(
            f"{label(cert)} is malformed: {described}. Strict parsers (cryptography, which certdoctor uses) "
            f"refuse it; real clients differ: {clients}.",
            "Have the certificate re-issued by the CA with well-formed fields (UTF8String or PrintableString "
            "names, a supported key); a CA that issued this one is mis-encoding certificates.",
            cert=cert,
            evidence={"fields": [{"field": field, "problem": problem} for field, problem in problems]},
        )
