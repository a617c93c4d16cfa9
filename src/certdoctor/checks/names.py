"""Does the certificate cover the name the client connected to?"""

from __future__ import annotations

from collections.abc import Iterator

from .. import certinfo
from ..model import Severity
from ..names import match_hostname
from ._text import names_list
from .registry import ChainContext, Hit, check


@check(
    "hostname-mismatch",
    title="The certificate does not cover the name the client connected to",
    severity=Severity.ERROR,
    citation="RFC 9525 §6 (RFC 6125 §6.4); RFC 2818 §3.1; CA/B Forum BR §7.1.4.2.1",
)
def hostname_mismatch(ctx: ChainContext) -> Iterator[Hit]:
    """Neither a DNS nor an IP subjectAltName matches the requested name (wildcards one label deep only)."""
    if not ctx.name:
        return
    m = match_hostname(ctx.leaf, ctx.name)
    if m.matched:
        return
    has = names_list(ctx.leaf)
    if not m.has_san:
        why = (
            f"The certificate has no subjectAltName extension; its only name is the subject Common Name "
            f"{', '.join(m.common_names) or '(none)'}. Browsers (Chrome: net::ERR_CERT_COMMON_NAME_INVALID, "
            "Firefox: SSL_ERROR_BAD_CERT_DOMAIN, Safari) and Go ('x509: certificate relies on legacy Common Name "
            "field, use SANs instead') ignore the Common Name (RFC 6125 deprecated it), so they reject it for "
            "every name; OpenSSL clients (curl, Python, Node) and Java still fall back to it"
        )
        fix = (
            f"Re-issue the certificate with a subjectAltName that lists {m.name} (every public CA and "
            "certbot/ACME do this automatically; with openssl add -addext 'subjectAltName=DNS:"
            f"{m.name}')."
        )
    elif m.kind == "ip":
        why = (
            f"The client connected to the IP address {m.name}, which must appear as an IP subjectAltName "
            f"entry; the certificate lists: {has}"
        )
        fix = (
            f"Connect using one of the certificate's DNS names instead of the address, or re-issue it with "
            f"'IP:{m.name}' in subjectAltName."
        )
    else:
        why = f"The client connected to {m.name}, but the certificate is only for: {has}"
        fix = (
            f"Get a certificate that includes {m.name} (e.g. certbot -d {m.name}), or if the server "
            "hosts several names, check that this name's virtual host / SNI configuration points at the "
            "right certificate. Clients must connect with one of the certificate's names."
        )
    notes = "".join(f" Note: {n}." for n in m.notes)
    yield Hit(
        f"{why}.{notes}",
        fix,
        cert=ctx.leaf,
        evidence={
            "requested_name": m.name,
            "dns_names": list(m.dns_names),
            "ip_addresses": list(m.ip_addresses),
            "common_names": list(m.common_names),
            "has_subject_alt_name": m.has_san,
        },
    )


@check(
    "hostname-trailing-dot",
    title="The client asks for the name with a trailing dot, which Python's ssl does not match",
    severity=Severity.WARNING,
    citation="RFC 1034 §3.1 (absolute names); RFC 6066 §3 (SNI HostName: no trailing dot); RFC 9525 §6.3",
)
def hostname_trailing_dot(ctx: ChainContext) -> Iterator[Hit]:
    """The requested name ends with a dot ("example.com.") and the certificate matches it without the dot.

    Observed here: curl, Node (tls.checkServerIdentity), Go (VerifyHostname), Java (the JDK derives SNI and
    checks the name without the dot) and Chromium accept; Python's ssl passes the name to OpenSSL's
    X509_VERIFY_PARAM_set1_host, which compares "example.com." literally and fails.
    """
    if not ctx.name or not ctx.name.endswith(".") or certinfo.is_ip(ctx.name.rstrip(".")):
        return
    if not match_hostname(ctx.leaf, ctx.name).matched:
        return  # hostname-mismatch says what is wrong
    bare = ctx.name.rstrip(".")
    yield Hit(
        f"The client asks for {ctx.name} (an absolute name, with a trailing dot); the certificate covers {bare}. "
        "curl, Node, Go, Java and Chrome strip the dot and accept, but Python's ssl (urllib, requests, httpx) "
        f"rejects it: 'Hostname mismatch, certificate is not valid for '{ctx.name}''.",
        f"Configure clients with {bare} (without the dot). A certificate cannot list the dotted form.",
        cert=ctx.leaf,
        evidence={"requested_name": ctx.name, "matched_name": bare},
    )


@check(
    "no-subject-alt-name",
    title="The certificate has no subjectAltName",
    severity=Severity.ERROR,
    citation="CA/B Forum BR §7.1.2.7.12; RFC 9525 §6.3 (the Common Name is not used)",
)
def no_subject_alt_name(ctx: ChainContext) -> Iterator[Hit]:
    """No name was given to check, and the leaf has no subjectAltName, so no modern client can match it."""
    if ctx.name or certinfo.has_san_extension(ctx.leaf):
        return
    cns = certinfo.common_names(ctx.leaf)
    yield Hit(
        f"The certificate names itself only in the subject Common Name ({', '.join(cns) or 'none'}) and has no "
        "subjectAltName extension. Browsers, Go, Python and Node ignore the Common Name, so it matches no "
        "host name for them.",
        "Re-issue the certificate with a subjectAltName listing every host name (and IP address) it serves.",
        cert=ctx.leaf,
        evidence={"common_names": cns},
    )
