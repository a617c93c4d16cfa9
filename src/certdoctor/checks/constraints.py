"""Constraints a CA places on the certificates below it: name constraints, path length, critical extensions."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from cryptography import x509

from .. import certinfo
from ..model import Severity
from ._text import label
from .registry import ChainContext, Hit, check


def _dns_in_subtree(name: str, base: str) -> bool:
    """RFC 5280 §4.2.1.10: a DNS constraint covers the name itself and every name below it."""
    base = base.lower().rstrip(".")
    name = name.lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]  # a wildcard stands for names under its base
    if not base:
        return True
    if base.startswith("."):
        return name.endswith(base)
    return name == base or name.endswith("." + base)


def _ip_in_subtree(ip: str, network: object) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and addr in network


def name_constraint_problems(nc: x509.NameConstraints, cert: x509.Certificate) -> list[tuple[str, str, str, str]]:
    """How ``cert``'s DNS and IP subjectAltNames break ``nc`` (RFC 5280 §4.2.1.10), one tuple per name:
    (``"excluded"`` or ``"permitted"``, ``"DNS"`` or ``"IP"``, the name, the subtree(s) it breaks)."""
    out: list[tuple[str, str, str, str]] = []
    permitted = list(nc.permitted_subtrees or [])
    excluded = list(nc.excluded_subtrees or [])
    checks = (
        (x509.DNSName, certinfo.dns_names(cert), _dns_in_subtree, "DNS"),
        (x509.IPAddress, certinfo.ip_addresses(cert), _ip_in_subtree, "IP"),
    )
    for kind, names, matches, label_ in checks:
        allowed = [g.value for g in permitted if isinstance(g, kind)]
        denied = [g.value for g in excluded if isinstance(g, kind)]
        for name in names:
            hit = next((str(d) for d in denied if matches(name, d)), None)
            if hit is not None:
                out.append(("excluded", label_, name, hit))
            elif allowed and not any(matches(name, a) for a in allowed):
                out.append(("permitted", label_, name, ", ".join(map(str, allowed))))
    return out


def _violations(nc: x509.NameConstraints, cert: x509.Certificate) -> list[str]:
    return [
        f"{kind}:{name} is inside the excluded subtree {base}"
        if how == "excluded"
        else f"{kind}:{name} is outside the permitted subtrees {base}"
        for how, kind, name, base in name_constraint_problems(nc, cert)
    ]


def name_constraints_of(cert: x509.Certificate) -> x509.NameConstraints | None:
    """The certificate's nameConstraints extension, or None (absent or undecodable)."""
    return _name_constraints(cert)


def _name_constraints(cert: x509.Certificate) -> x509.NameConstraints | None:
    return certinfo.extension_value(cert, x509.NameConstraints)


@check(
    "name-constraints-violated",
    title="A name in the certificate is outside what its CA may issue for",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.2.1.10, §6.1.3 (b)-(c)",
)
def name_constraints_violated(ctx: ChainContext) -> Iterator[Hit]:
    """A CA on the path has name constraints that the leaf's (or a lower CA's) names violate."""
    nodes = ctx.analysis.best.nodes
    for i, node in enumerate(nodes[1:], start=1):
        nc = _name_constraints(node.cert)
        if nc is None:
            continue
        for below in nodes[:i]:
            if below is not nodes[0] and certinfo.is_self_issued(below.cert):
                continue
            problems = _violations(nc, below.cert)
            if problems:
                yield Hit(
                    f"{label(node.cert)} is only allowed to issue certificates for certain names (name "
                    f"constraints), and {label(below.cert)} violates them: {'; '.join(problems[:5])}"
                    + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
                    + ". Clients reject the chain.",
                    "Request the certificate from a CA whose constraints include these names, or remove the "
                    "names that are outside them.",
                    cert=below.cert,
                    evidence={"constrained_by": certinfo.subject(node.cert), "violations": problems},
                )


@check(
    "path-length-exceeded",
    title="The chain is longer than a CA allows",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.2.1.9 (pathLenConstraint), §6.1.4 (l)-(m)",
)
def path_length_exceeded(ctx: ChainContext) -> Iterator[Hit]:
    """A CA's basicConstraints pathLenConstraint is smaller than the number of intermediates below it."""
    nodes = ctx.analysis.best.nodes
    for i, node in enumerate(nodes[1:], start=1):
        bc = certinfo.extension_value(node.cert, x509.BasicConstraints)
        if bc is None:
            continue
        if not bc.ca or bc.path_length is None:
            continue
        below = [n for n in nodes[1:i] if not certinfo.is_self_issued(n.cert)]
        if len(below) > bc.path_length:
            yield Hit(
                f"{label(node.cert)} allows at most {bc.path_length} intermediate CA(s) below it "
                f"(pathLenConstraint), but the chain has {len(below)}: "
                f"{', '.join(label(n.cert) for n in below)}.",
                "Have the certificate issued by a CA that sits directly below an authority whose path length "
                "allows it (ask your CA), or shorten the chain.",
                cert=node.cert,
                evidence={"path_len_constraint": bc.path_length, "intermediates_below": len(below)},
            )


@check(
    "max-chain-depth-exceeded",
    title="The chain has more intermediates than the client allows",
    severity=Severity.ERROR,
    citation="OpenSSL SSL_CTX_set_verify_depth(3) and openssl-verification-options(1) -verify_depth",
)
def max_chain_depth_exceeded(ctx: ChainContext) -> Iterator[Hit]:
    """Only with ``--max-chain-depth N`` (DiagnoseOptions.max_chain_depth): the best path has more than N
    intermediate certificates between the leaf and the trust anchor (neither counts, as in OpenSSL's verify
    depth; a self-signed root the server sends counts as the anchor)."""
    limit = ctx.evidence.max_chain_depth
    if limit is None:
        return
    best = ctx.analysis.best
    nodes = list(best.nodes)
    ends_at_root = best.end == "anchor" or (best.end == "untrusted-root" and len(nodes) > 1)
    intermediates = nodes[1:-1] if ends_at_root else nodes[1:]
    if len(intermediates) <= limit:
        return
    yield Hit(
        f"The path to the root has {len(intermediates)} intermediate certificate(s) "
        f"({', '.join(label(n.cert) for n in intermediates)}), more than the depth of {limit} you gave. A client "
        f"configured with that verify depth rejects it: OpenSSL 'certificate chain too long' "
        f"(X509_V_ERR_CERT_CHAIN_TOO_LONG; curl, Python, Node with a set depth; nginx ssl_verify_depth {limit}). "
        "Default depths are larger: OpenSSL 100, Java's jdk.tls.maxCertificateChainLength 10 certificates "
        "received; Go and browsers have no depth limit.",
        "Shorten the chain (use an intermediate issued directly by the root, or a shorter cross-sign), or raise "
        "the client's verify depth.",
        cert=intermediates[-1].cert,
        evidence={"max_chain_depth": limit, "intermediates": len(intermediates)},
    )


@check(
    "unknown-critical-extension",
    title="A certificate has a critical extension that clients do not understand",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.2 (a system MUST reject a certificate with an unrecognised critical extension)",
)
def unknown_critical_extension(ctx: ChainContext) -> Iterator[Hit]:
    """A certificate on the path carries a critical extension of a type no web client recognises."""
    for node in ctx.analysis.best.nodes:
        try:
            exts = list(node.cert.extensions)
        except Exception:
            continue
        unknown = [e.oid.dotted_string for e in exts if e.critical and isinstance(e.value, x509.UnrecognizedExtension)]
        if unknown:
            yield Hit(
                f"{label(node.cert)} marks extension(s) {', '.join(unknown)} as critical; clients that do not "
                "know them must reject the certificate.",
                "Re-issue the certificate without the critical marking (or without the private extension).",
                cert=node.cert,
                evidence={"critical_oids": unknown},
            )


@check(
    "root-expired",
    title="The trusted root of the chain has expired",
    severity=Severity.ERROR,
    citation="RFC 5280 §6.1.1 (d); CA/B Forum root programme policies",
)
def root_expired(ctx: ChainContext) -> Iterator[Hit]:
    """The path ends at a trust anchor that is outside its validity period."""
    best = ctx.analysis.best
    if best.end != "anchor" or len(best.nodes) < 2:
        return
    root = best.top.cert
    if not certinfo.expired_at(root, ctx.at):  # a root that is not yet valid: the moment is wrong, not the root
        return
    yield Hit(
        f"The chain ends at the root {label(root)}, valid {certinfo.not_before(root):%Y-%m-%d} to "
        f"{certinfo.not_after(root):%Y-%m-%d}. Many clients (OpenSSL, Java, Go) reject chains ending at an "
        "expired root, even if it is still in their store.",
        "Serve a chain that leads to the CA's current root (ask your CA for its cross-signed chain), and update "
        "clients' trust stores.",
        cert=root,
        evidence={
            "not_before": certinfo.not_before(root).isoformat(),
            "not_after": certinfo.not_after(root).isoformat(),
        },
    )
