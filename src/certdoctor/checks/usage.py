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
    citation="RFC 5280 §4.2.1.12; CA/B Forum BR §7.1.2.7.10",
)
def missing_server_auth_eku(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf has an extendedKeyUsage extension without serverAuth."""
    ekus = certinfo.extended_key_usages(ctx.leaf)
    if ekus is None or "serverAuth" in ekus or "anyExtendedKeyUsage" in ekus:
        return
    yield Hit(
        f"{label(ctx.leaf)} is restricted to {', '.join(ekus) or 'no usage'} by its extended key usage, "
        "which does not include serverAuth (TLS Web Server Authentication). Clients say 'unsupported "
        "certificate purpose' (OpenSSL), ERR_TLS_CERT_ALTNAME_INVALID/INVALID_PURPOSE (Node) or "
        "'Extended key usage does not permit use for TLS server authentication' (Java).",
        "Request a TLS server certificate (extendedKeyUsage serverAuth). A client-authentication or "
        "code-signing certificate cannot be used on a server.",
        cert=ctx.leaf,
        evidence={"extended_key_usage": ekus},
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
        "server certificate.",
        "Put the server certificate (the one whose subjectAltName lists your host names) first in the chain "
        "file, followed by its intermediates.",
        cert=ctx.leaf,
        evidence={"basic_constraints": certinfo.basic_constraints(ctx.leaf)},
    )
