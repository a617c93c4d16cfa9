"""Is the server certificate allowed to be used for TLS server authentication?"""

from __future__ import annotations

from collections.abc import Iterator

from .. import certinfo
from ..model import Severity
from ._text import label
from .registry import ChainContext, Hit, check


@check(
    "missing-server-auth-eku",
    title="The certificate is not allowed for TLS servers (extended key usage)",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.2.1.12; CA/B Forum BR §7.1.2.7.10 (leaf), §7.1.2.10.6 (CA EKU); CABF EKU chaining",
)
def missing_server_auth_eku(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf, or an intermediate CA on the path, has an extendedKeyUsage extension without serverAuth.

    For an intermediate this is "EKU chaining": OpenSSL's check_purpose runs the SSL-server purpose check on
    every CA of the chain (v3_purp.c check_purpose_ssl_server), Go's checkChainForKeyUsage walks the whole
    chain, Chromium and mozilla::pkix intersect EKUs down the path; Java's EndEntityChecker looks at the
    server certificate only.
    """
    ekus = certinfo.extended_key_usages(ctx.leaf)
    if not (ekus is None or "serverAuth" in ekus or "anyExtendedKeyUsage" in ekus):
        yield Hit(
            f"{label(ctx.leaf)} is restricted to {', '.join(ekus) or 'no usage'} by its extended key usage, "
            "which does not include serverAuth (TLS Web Server Authentication). Clients say 'unsuitable "
            "certificate purpose' (OpenSSL: curl, Python), INVALID_PURPOSE (Node), 'x509: certificate specifies an "
            "incompatible key usage' (Go), 'Extended key usage does not permit use for TLS server "
            "authentication' (Java), net::ERR_CERT_INVALID (Chrome), SEC_ERROR_INADEQUATE_CERT_TYPE (Firefox).",
            "Request a TLS server certificate (extendedKeyUsage serverAuth). A client-authentication or "
            "code-signing certificate cannot be used on a server.",
            cert=ctx.leaf,
            evidence={"extended_key_usage": ekus, "certificate": "leaf", "position": 0},
        )
    best = ctx.analysis.best
    for i, node in enumerate(best.nodes[1:], start=1):
        is_anchor = best.end == "anchor" and i == len(best.nodes) - 1 and certinfo.is_self_signed(node.cert)
        if is_anchor:
            continue  # clients do not apply a trust anchor's EKU by default
        ca_ekus = certinfo.extended_key_usages(node.cert)
        if ca_ekus is None or "serverAuth" in ca_ekus or "anyExtendedKeyUsage" in ca_ekus:
            continue
        yield Hit(
            f"The intermediate CA {label(node.cert)} is restricted to {', '.join(ca_ekus) or 'no usage'} by its "
            "extended key usage, so the server certificates below it are not valid for TLS servers either (EKU "
            "chaining). OpenSSL (curl, Python: 'unsuitable certificate purpose'; Node: INVALID_PURPOSE), Go "
            "('x509: certificate specifies an incompatible key usage'), Chrome (net::ERR_CERT_INVALID) and "
            "Firefox (SEC_ERROR_INADEQUATE_CERT_TYPE) reject the chain; Java accepts it (it checks only the "
            "server certificate's extended key usage).",
            "Have the server certificate issued by a CA whose extended key usage includes serverAuth (or has no "
            "extended key usage extension); an e-mail or client-authentication CA cannot issue TLS server "
            "certificates.",
            cert=node.cert,
            evidence={
                "extended_key_usage": ca_ekus,
                "certificate": "intermediate",
                "position": node.position,
                "subject": certinfo.subject(node.cert),
            },
        )


@check(
    "leaf-is-ca",
    title="The server certificate is a CA certificate",
    severity=Severity.ERROR,
    citation="CA/B Forum BR §7.1.2.7.8 (subscriber certificates: cA FALSE); RFC 5280 §4.2.1.9",
)
def leaf_is_ca(ctx: ChainContext) -> Iterator[Hit]:
    """The first certificate has basicConstraints CA:TRUE (a CA or root installed as the server certificate)."""
    if not certinfo.is_ca(ctx.leaf):
        return
    yield Hit(
        f"The first certificate the server sends, {label(ctx.leaf)}, is a CA certificate "
        f"(basicConstraints {certinfo.basic_constraints(ctx.leaf)}). Usually the chain file starts with the "
        "intermediate or root instead of the server certificate, or a CA certificate was configured as the "
        "server certificate. Firefox refuses it (MOZILLA_PKIX_ERROR_CA_CERT_USED_AS_END_ENTITY); Chrome, "
        "OpenSSL (curl, Python, Node), Java and Go accept it.",
        "Put the server certificate (the one whose subjectAltName lists your host names) first in the chain "
        "file, followed by its intermediates.",
        cert=ctx.leaf,
        evidence={"basic_constraints": certinfo.basic_constraints(ctx.leaf)},
    )
