"""Certificate profile: what RFC 5280 and the CA/Browser Forum Baseline Requirements say certificates must contain.

Most of these are lints: mainstream clients accept such certificates, but a conforming CA would not issue them
and stricter verifiers (rustls/webpki, certificate linters, CT monitors) reject them. Where a client is known
to reject, the finding says which (and ``aki-ski-mismatch`` is an error).

Which certificates are judged: every certificate of the best path, except a trust anchor that comes only from a
public store (its profile is the root programme's business, and no server operator can change it). Roots given
with ``--ca-file``/``--ca-bundle`` (your own CA) and roots the server sends are judged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from .. import certinfo
from ..model import Severity
from ..paths import CUSTOM, Node
from ._text import label
from .registry import ChainContext, Hit, check

REISSUE = "Have the certificate re-issued by a CA whose profile conforms"


def _judged(ctx: ChainContext) -> list[Node]:
    """The best path's nodes, without a top anchor that only a public store supplies."""
    best = ctx.analysis.best
    nodes = list(best.nodes)
    top = best.top
    if len(nodes) > 1 and best.end == "anchor" and top.origin == "store" and CUSTOM not in best.anchored_in:
        nodes.pop()
    return nodes


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension[Any] | None:
    """The extension of this class (with its criticality), None when absent or unreadable."""
    return certinfo.extension(cert, cls)


def _hex(data: bytes | None) -> str | None:
    return data.hex(":") if data is not None else None


def _issuer_of(ctx: ChainContext, i: int, nodes: list[Node]) -> x509.Certificate | None:
    """The issuer of nodes[i] on the best path: the next node, or the node itself for a self-signed top."""
    best = ctx.analysis.best.nodes
    if i + 1 < len(best):
        return best[i + 1].cert
    cert = nodes[i].cert
    return cert if certinfo.is_self_signed(cert) else None


# --- key identifiers -------------------------------------------------------------------------------------------


@check(
    "aki-ski-mismatch",
    title="A certificate's authority key identifier does not match its issuer",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.2.1.1 (keyIdentifier = the issuer's subjectKeyIdentifier); CA/B Forum BR §7.1.2.1.3",
)
def aki_ski_mismatch(ctx: ChainContext) -> Iterator[Hit]:
    """The authorityKeyIdentifier keyIdentifier of a path certificate differs from its issuer's
    subjectKeyIdentifier, or its authorityCertSerialNumber differs from the issuer's serial (including a
    self-signed root whose AKI names another key). OpenSSL then refuses the issuer (X509_check_akid:
    X509_V_ERR_AKID_SKID_MISMATCH / AKID_ISSUER_SERIAL_MISMATCH) and reports "unable to get local issuer
    certificate" (error 20), or "unable to get issuer certificate" (error 2) for such a root; Go's crypto/x509
    builds the path anyway (both verified with OpenSSL 3.0 and Go 1.19 on hand-made chains)."""
    nodes = _judged(ctx)
    for i, node in enumerate(nodes):
        issuer = _issuer_of(ctx, i, nodes)
        aki_ext = _ext(node.cert, x509.AuthorityKeyIdentifier)
        if issuer is None or aki_ext is None:
            continue
        aki = aki_ext.value
        ski_ext = _ext(issuer, x509.SubjectKeyIdentifier)
        ski = ski_ext.value.digest if ski_ext is not None else None
        problems = []
        if aki.key_identifier is not None and ski is not None and aki.key_identifier != ski:
            problems.append(
                f"its authorityKeyIdentifier is {_hex(aki.key_identifier)} but the issuer's subjectKeyIdentifier "
                f"is {_hex(ski)}"
            )
        serial = aki.authority_cert_serial_number
        if serial is not None and serial != issuer.serial_number:
            problems.append(
                f"its authorityCertSerialNumber is {serial:#x} but the issuer's serial number is "
                f"{issuer.serial_number:#x}"
            )
        if not problems:
            continue
        self_signed = issuer is node.cert
        who = (
            "it is self-signed, so OpenSSL does not consider it self-signed and looks for another issuer: "
            "'unable to get issuer certificate'"
            if self_signed
            else f"it is signed by {label(issuer)}, but OpenSSL does not accept that certificate as its issuer: "
            "'unable to get local issuer certificate'"
        )
        yield Hit(
            f"{label(node.cert)}: {'; '.join(problems)}. The key identifiers must match (RFC 5280 §4.2.1.1); "
            f"{who} (X509_V_ERR_AKID_SKID_MISMATCH). curl, Python, Node, Ruby and PHP (OpenSSL) reject the "
            "chain; Go, Java, Chrome and Firefox build the path by name and signature anyway (checked on the "
            "lab's aki-mismatch scenario), so the same chain works in some clients only.",
            f"{REISSUE}: the authorityKeyIdentifier must be copied from the issuing certificate's "
            "subjectKeyIdentifier (OpenSSL: authorityKeyIdentifier=keyid in the signing section). If the issuer "
            "was re-keyed or re-issued, serve the issuer certificate that matches this certificate.",
            cert=node.cert,
            evidence={
                "authority_key_identifier": _hex(aki.key_identifier),
                "issuer_subject_key_identifier": _hex(ski),
                "authority_cert_serial_number": serial,
                "issuer_serial_number": issuer.serial_number,
                "issuer_subject": certinfo.subject(issuer),
                "self_signed": self_signed,
            },
        )


@check(
    "key-identifier-missing",
    title="A certificate lacks a key identifier the profile requires",
    severity=Severity.WARNING,
    citation="RFC 5280 §4.2.1.1 (AKI in all but self-signed certificates) and §4.2.1.2 (SKI in all CA "
    "certificates); CA/B Forum BR §7.1.2",
)
def key_identifier_missing(ctx: ChainContext) -> Iterator[Hit]:
    """A CA certificate of the path without subjectKeyIdentifier, or a certificate that is not self-signed
    without an authorityKeyIdentifier keyIdentifier. Clients accept it (OpenSSL, Go, Java and browsers build
    paths by name and signature); path building is slower and ambiguous when a CA has several keys."""
    for node in _judged(ctx):
        cert = node.cert
        missing = []
        if certinfo.is_ca(cert) and _ext(cert, x509.SubjectKeyIdentifier) is None:
            missing.append(("subjectKeyIdentifier", "RFC 5280 §4.2.1.2: MUST appear in all CA certificates"))
        if not certinfo.is_self_signed(cert):
            aki = _ext(cert, x509.AuthorityKeyIdentifier)
            if aki is None or aki.value.key_identifier is None:
                missing.append(
                    (
                        "authorityKeyIdentifier keyIdentifier",
                        "RFC 5280 §4.2.1.1: MUST be included in all certificates except self-signed ones",
                    )
                )
        if not missing:
            continue
        yield Hit(
            f"{label(cert)} has no {' and no '.join(m for m, _ in missing)} "
            f"({'; '.join(r for _, r in missing)}). Clients accept it (OpenSSL, Go, Java and browsers match "
            "issuers by name and signature), but strict verifiers and linters reject it and path building is "
            "ambiguous when a CA has more than one key.",
            f"{REISSUE} (OpenSSL: subjectKeyIdentifier=hash and authorityKeyIdentifier=keyid in the signing "
            "section; every public CA does this).",
            cert=cert,
            evidence={"missing": [m for m, _ in missing]},
        )


@check(
    "aki-issuer-serial",
    title="An authority key identifier names the issuer's issuer and serial",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §7.1.2.1.3 and §7.1.2.11.1 (authorityCertIssuer and authorityCertSerialNumber "
    "MUST NOT be present)",
)
def aki_issuer_serial(ctx: ChainContext) -> Iterator[Hit]:
    """An authorityKeyIdentifier with authorityCertIssuer or authorityCertSerialNumber. OpenSSL compares
    them with the issuer (a wrong value is ``aki-ski-mismatch``); with matching values clients accept it, but
    the certificate breaks as soon as the issuer is re-issued under another serial."""
    for node in _judged(ctx):
        aki = _ext(node.cert, x509.AuthorityKeyIdentifier)
        if aki is None:
            continue
        fields = [
            f
            for f, v in (
                ("authorityCertIssuer", aki.value.authority_cert_issuer),
                ("authorityCertSerialNumber", aki.value.authority_cert_serial_number),
            )
            if v is not None
        ]
        if not fields:
            continue
        yield Hit(
            f"The authorityKeyIdentifier of {label(node.cert)} contains {' and '.join(fields)}, which the Baseline "
            "Requirements forbid: it ties the certificate to one particular issuer certificate (OpenSSL rejects "
            "the chain when the issuer's serial differs), instead of to its key.",
            f"{REISSUE}: an authorityKeyIdentifier with the keyIdentifier only (OpenSSL: "
            "authorityKeyIdentifier=keyid, not keyid,issuer).",
            cert=node.cert,
            evidence={"fields": fields},
        )


# criticality rules: extension -> (required criticality, clause)
_CRITICALITY: dict[x509.ObjectIdentifier, tuple[str, bool, str]] = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: ("authorityKeyIdentifier", False, "RFC 5280 §4.2.1.1"),
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: ("subjectKeyIdentifier", False, "RFC 5280 §4.2.1.2"),
    ExtensionOID.NAME_CONSTRAINTS: ("nameConstraints", True, "RFC 5280 §4.2.1.10"),
    ExtensionOID.POLICY_CONSTRAINTS: ("policyConstraints", True, "RFC 5280 §4.2.1.11"),
    ExtensionOID.INHIBIT_ANY_POLICY: ("inhibitAnyPolicy", True, "RFC 5280 §4.2.1.14"),
}


@check(
    "extension-criticality",
    title="An extension is marked critical (or not) against the profile",
    severity=Severity.WARNING,
    citation="RFC 5280 §4.2.1.1, §4.2.1.2 (MUST be non-critical); §4.2.1.10, §4.2.1.11, §4.2.1.14 (MUST be critical)",
)
def extension_criticality(ctx: ChainContext) -> Iterator[Hit]:
    """authorityKeyIdentifier or subjectKeyIdentifier marked critical; nameConstraints, policyConstraints or
    inhibitAnyPolicy not marked critical. OpenSSL, Go, Java and browsers process these extensions whatever
    their criticality, so they accept it; a non-critical nameConstraints is ignored by clients that do not
    implement name constraints, which is why RFC 5280 requires it critical."""
    for node in _judged(ctx):
        wrong = []
        try:
            extensions = list(node.cert.extensions)
        except Exception:
            continue
        for ext in extensions:
            rule = _CRITICALITY.get(ext.oid)
            if rule is not None and ext.critical != rule[1]:
                wrong.append((rule[0], rule[1], rule[2]))
        if not wrong:
            continue
        said = "; ".join(
            f"{n} is {'not ' if must else ''}critical but MUST {'' if must else 'NOT '}be ({clause})"
            for n, must, clause in wrong
        )
        yield Hit(
            f"{label(node.cert)}: {said}. OpenSSL, Go, Java and browsers accept it; strict verifiers "
            "(rustls/webpki) and certificate linters reject it, and a non-critical constraint is silently "
            "ignored by a client that does not implement it.",
            f"{REISSUE} (OpenSSL config: `critical,` before the value of the extensions that must be critical, "
            "and not before the key identifiers).",
            cert=node.cert,
            evidence={"extensions": [{"extension": n, "must_be_critical": must, "rule": c} for n, must, c in wrong]},
        )


# --- names ---------------------------------------------------------------------------------------------------


def _cn_matches(cn: str, dns: list[str], ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    """BR §7.1.4.3: the CN is a character-for-character copy of a dNSName, or an IP address in its canonical
    text form (RFC 3986 §3.2.2 dotted decimal, RFC 5952 §4 for IPv6) equal to an iPAddress entry."""
    if cn in dns:
        return True
    try:
        ip = ipaddress.ip_address(cn)
    except ValueError:
        return False
    return ip in ips and str(ip) == cn


@check(
    "cn-not-in-san",
    title="The subject Common Name is not one of the subjectAltName entries",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §7.1.4.3 (commonName MUST be one of the subjectAltName values, in the same text form)",
)
def cn_not_in_san(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf has a subjectAltName and a subject CN that is not exactly one of its DNS entries (same case,
    same A-label/U-label form) or the canonical text of one of its IP entries (no leading zeros or hex for
    IPv4, RFC 5952 form for IPv6); not reported along with hostname-mismatch, which already lists both.
    Clients that see a subjectAltName ignore the CN, so they accept it; but the
    name users see in certificate viewers is not one the certificate is valid for."""
    leaf = ctx.leaf
    if certinfo.is_ca(leaf) or not certinfo.has_san_extension(leaf):
        return  # a CA in the leaf position is leaf-is-ca; no SAN is hostname-mismatch / no-subject-alt-name
    if any(f.id == "hostname-mismatch" for f in ctx.findings):
        return  # that finding already lists the CN and the subjectAltName entries
    san = _ext(leaf, x509.SubjectAlternativeName)
    if san is None:
        return
    dns = san.value.get_values_for_type(x509.DNSName)
    ips = san.value.get_values_for_type(x509.IPAddress)
    cns = certinfo.common_names(leaf)
    bad = [cn for cn in cns if not _cn_matches(cn, dns, ips)]
    if not bad:
        return
    listed = ", ".join([*dns, *(str(i) for i in ips)]) or "no names"
    yield Hit(
        f"The subject Common Name of {label(leaf)} is {', '.join(repr(c) for c in bad)}, which is not a "
        f"character-for-character copy of any subjectAltName entry ({listed}). Clients match host names "
        "against the subjectAltName only and accept the certificate, but a CA may not issue it (IP addresses "
        "must be written canonically, DNS names in the same case and A-label form) and certificate viewers "
        "show a name the certificate is not valid for.",
        f"{REISSUE}: a Common Name copied from one of the subjectAltName entries, or no Common Name at all.",
        cert=leaf,
        evidence={"common_names": bad, "dns_names": dns, "ip_addresses": [str(i) for i in ips]},
    )


# --- extended key usage -----------------------------------------------------------------------------------------


@check(
    "leaf-without-eku",
    title="The server certificate has no extended key usage",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §7.1.2.7.6 and §7.1.2.7.10 (extKeyUsage MUST be present, with id-kp-serverAuth); "
    "Apple's requirements for trusted certificates in iOS 13 and macOS 10.15",
)
def leaf_without_eku(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf (not a CA) has no extendedKeyUsage extension. RFC 5280 reads absence as "any purpose" and
    OpenSSL, Go, Java, Windows and Chrome accept it; Apple platforms (Safari, URLSession) require the EKU with
    serverAuth for TLS server certificates (Apple support article HT210176)."""
    leaf = ctx.leaf
    if certinfo.is_ca(leaf) or certinfo.extended_key_usages(leaf) is not None:
        return
    yield Hit(
        f"{label(leaf)} has no extendedKeyUsage extension. OpenSSL (curl, Python, Node), Go, Java, Windows and "
        "Chrome read that as 'any purpose' and accept it, but the Baseline Requirements require "
        "extKeyUsage serverAuth and Apple platforms (Safari, iOS/macOS apps) reject TLS server certificates "
        "without it.",
        f"{REISSUE}: with extendedKeyUsage serverAuth (OpenSSL: -addext 'extendedKeyUsage=serverAuth').",
        cert=leaf,
        evidence={"extended_key_usage": None},
    )


@check(
    "leaf-any-eku",
    title="The server certificate allows any extended key usage",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §7.1.2.7.10 (anyExtendedKeyUsage MUST NOT be present in subscriber certificates)",
)
def leaf_any_eku(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf's extendedKeyUsage contains anyExtendedKeyUsage. OpenSSL, Go and Java accept it for TLS."""
    leaf = ctx.leaf
    ekus = certinfo.extended_key_usages(leaf)
    if certinfo.is_ca(leaf) or not ekus or "anyExtendedKeyUsage" not in ekus:
        return
    yield Hit(
        f"The extendedKeyUsage of {label(leaf)} contains anyExtendedKeyUsage ({', '.join(ekus)}). OpenSSL "
        "(curl, Python, Node), Go and Java accept it for a TLS server, but publicly trusted CAs may not issue "
        "it and strict verifiers reject it.",
        f"{REISSUE}: with extendedKeyUsage serverAuth only.",
        cert=leaf,
        evidence={"extended_key_usage": ekus},
    )


@check(
    "root-has-eku",
    title="The root certificate has an extended key usage extension",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §7.1.2.1.2 (root CA certificates: extKeyUsage MUST NOT be present)",
)
def root_has_eku(ctx: ChainContext) -> Iterator[Hit]:
    """The self-signed root of the path (your own, or one the server sends) has an extendedKeyUsage
    extension."""
    nodes = _judged(ctx)
    if len(nodes) < 2:
        return
    top = nodes[-1].cert
    if top is not ctx.analysis.best.top.cert or not certinfo.is_self_signed(top):
        return
    ekus = certinfo.extended_key_usages(top)
    if ekus is None:
        return
    allows = "serverAuth" in ekus or "anyExtendedKeyUsage" in ekus
    yield Hit(
        f"The root {label(top)} has an extendedKeyUsage extension ({', '.join(ekus) or 'empty'}), which root "
        "certificates must not have. "
        + (
            "It includes serverAuth, so TLS server chains under it work, but it restricts every certificate "
            "the root issues."
            if allows
            else "It does not include serverAuth: verifiers that treat a root's EKU as a constraint on the chain "
            "(OpenSSL's purpose check covers every certificate of the chain) can reject TLS server chains under it."
        ),
        "Re-create the root without extendedKeyUsage (restrict usage in the intermediates instead) and "
        "distribute the new root to the clients.",
        cert=top,
        evidence={"extended_key_usage": ekus},
    )


# --- keys and serial numbers ----------------------------------------------------------------------------------


@check(
    "rsa-modulus-size",
    title="An RSA key's size is not a multiple of 8 bits",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §6.1.5 (RSA modulus size in bits evenly divisible by 8)",
)
def rsa_modulus_size(ctx: ChainContext) -> Iterator[Hit]:
    """An RSA key of the path (at least 2048 bits: smaller is ``weak-key``) whose modulus size is not a
    multiple of 8. OpenSSL, Go, Java and browsers accept it."""
    for node in _judged(ctx):
        kind, bits = certinfo.key_description(node.cert)
        if kind != "RSA" or bits % 8 == 0 or bits < 2048:
            continue
        yield Hit(
            f"{label(node.cert)} has an RSA key of {bits} bits, not a multiple of 8. Clients accept it, but "
            "publicly trusted CAs may not certify it and it usually means the key was generated by unusual "
            "software.",
            "Generate a new key of a standard size (RSA 2048, 3072 or 4096, or ECDSA P-256) and have the "
            "certificate re-issued.",
            cert=node.cert,
            evidence={"key_type": kind, "key_bits": bits},
        )


@check(
    "serial-number-invalid",
    title="A certificate's serial number is zero or longer than 20 octets",
    severity=Severity.WARNING,
    citation="RFC 5280 §4.1.2.2 (serialNumber MUST be a positive integer, at most 20 octets); CA/B Forum BR "
    "§7.1 (greater than zero, at least 64 bits from a CSPRNG)",
)
def serial_number_invalid(ctx: ChainContext) -> Iterator[Hit]:
    """A path certificate's serial number is zero or longer than 20 octets (OpenSSL and Java accept it). A
    negative one is ``negative-serial``'s."""
    for node in _judged(ctx):
        serial = node.cert.serial_number
        octets = (serial.bit_length() + 8) // 8  # DER INTEGER length, sign bit included
        if (serial > 0 and octets <= 20) or serial < 0:
            continue
        why = "zero" if serial == 0 else "negative" if serial < 0 else f"{octets} octets long"
        yield Hit(
            f"The serial number of {label(node.cert)} is {why} ({serial}). OpenSSL (curl, Python, Node) and Java "
            "accept it"
            + (
                ", but Go 1.23 and later refuse to parse the certificate ('x509: negative serial number')"
                if serial < 0
                else ""
            )
            + "; a conforming CA uses a positive random serial of at most 20 octets.",
            f"{REISSUE}: with a positive random serial number (e.g. `openssl x509 -req -set_serial 0x$(openssl "
            "rand -hex 16)`, or let your CA software choose it).",
            cert=node.cert,
            evidence={"serial_number": serial, "octets": octets},
        )
