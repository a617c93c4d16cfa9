"""Servers with both an RSA and an ECDSA certificate: does each key type's chain work?

A server configured with two certificates (nginx with two ``ssl_certificate`` lines, Apache with two
``SSLCertificateFile``, HAProxy with ``.rsa``/``.ecdsa`` files) sends the one that matches what the client offers
(TLS 1.2 cipher suites, TLS 1.3 signature algorithms, RFC 8446 §4.4.2.2): clients that offer ECDSA get the ECDSA
certificate from most servers, clients that offer only RSA (older clients and devices) the RSA one. The collector
asks for both (:class:`certdoctor.model.DiagnoseOptions` ``all_key_types``); each chain is judged on its own, its
findings naming its source (``ADDRESS:PORT (RSA)`` for the one obtained offering only that key type).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import PresentedChain, Severity
from .registry import Hit, TargetContext, check


def _errors(ctx: TargetContext, chain: PresentedChain) -> list[str]:
    """The ids of the error findings of the distinct chain ``chain`` belongs to (before the clients weigh them)."""
    for c in ctx.chains:
        if chain.source in c.sources:
            return sorted({f.id for f in c.findings if f.severity is Severity.ERROR})
    return []


@check(
    "key-types-differ",
    title="The server's RSA and ECDSA certificates do not work alike",
    severity=Severity.WARNING,
    citation="RFC 8446 §4.4.2.2 (certificate selection); RFC 5246 §7.4.2",
    scope="target",
)
def key_types_differ(ctx: TargetContext) -> Iterator[Hit]:
    """A server with both an RSA and an ECDSA certificate whose two chains do not have the same problems: the
    classic "works in one client, not in another", since which certificate a client gets depends on the key types
    it offers."""
    chains = ctx.evidence.chains
    for other in chains:
        if not other.key_type_only:
            continue
        base = other.source.rsplit(" (", 1)[0]
        default = next((c for c in chains if c.source == base and c.ok), None)
        if default is None:
            continue
        mine, theirs = _errors(ctx, default), _errors(ctx, other)
        if mine == theirs:
            continue
        first, second = default.key_type or "?", other.key_type or "?"
        broken = first if mine else second
        who = (
            f"clients that offer {first} (every current browser and library: what certdoctor got offering both)"
            if broken == first
            else f"clients that offer only {second} (older clients, devices and some Java or embedded TLS stacks)"
        )
        worse = [f"the {first} certificate's chain: {', '.join(mine) or 'no error'}"]
        worse.append(f"the {second} certificate's chain: {', '.join(theirs) or 'no error'}")
        yield Hit(
            f"{base} serves an {first} certificate to clients that offer {first} and an {second} certificate to "
            f"clients that offer only {second}; {'; '.join(worse)}. The {broken} certificate fails for {who}, while "
            "clients that get the other one work: the same server works in one client and not in another.",
            f"Repair the {broken} certificate's chain (its findings above name the problem and source "
            f"{base if broken == first else other.source}) and reload the server; nginx and Apache take the chain "
            "of each certificate from its own file (ssl_certificate / SSLCertificateFile), so each needs its own "
            "full chain.",
            sources=(default.source, other.source),
            evidence={
                "address": base,
                "default_key_type": first,
                "other_key_type": second,
                "broken_key_type": broken,
                "errors": {first: mine, second: theirs},
            },
        )
