"""Client certificates (mutual TLS): the server asked for one during the handshake.

The collector records every CertificateRequest (RFC 8446 §4.3.2; RFC 5246 §7.4.4) with the acceptable CA names it
carried, whether a certificate was sent (``--cert``), and whether the server then ended the connection
(:class:`certdoctor.model.ClientAuth`). The server's chain is collected either way (it is sent before the request),
so these findings come on top of the chain's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import PresentedChain, Severity
from .registry import Hit, TargetContext, check

_CITATION = "RFC 8446 §4.3.2 and §4.4.2.4 (certificate_required); RFC 5246 §7.4.4 and §7.4.6"
_SHOWN_NAMES = 5


def _asked(ctx: TargetContext) -> Iterator[PresentedChain]:
    """The sources whose server asked for a client certificate (a dual server's second certificate, obtained on
    another connection to the same address, is not asked about twice)."""
    return (c for c in ctx.evidence.chains if c.client_auth is not None and not c.key_type_only)


def _names(chain: PresentedChain) -> str:
    names = chain.client_auth.ca_names if chain.client_auth is not None else ()
    if not names:
        return "It named no CA: any certificate it can verify will do."
    shown = "; ".join(names[:_SHOWN_NAMES])
    more = f" and {len(names) - _SHOWN_NAMES} more" if len(names) > _SHOWN_NAMES else ""
    return f"It accepts certificates issued by: {shown}{more}."


def _evidence(chain: PresentedChain) -> dict[str, Any]:
    assert chain.client_auth is not None
    return {**chain.client_auth.to_dict(), "tls_version": chain.tls_version}


_HOW = (
    "Give the client a certificate issued by one of those CAs, with its key: curl --cert client.pem --key client.key, "
    "Python ssl.SSLContext.load_cert_chain, Java -Djavax.net.ssl.keyStore, Go tls.Config.Certificates; certdoctor "
    "check HOST --cert client.pem --client-key client.key checks the server with it."
)


@check(
    "client-certificate-required",
    title="The server requires a client certificate (mutual TLS)",
    severity=Severity.ERROR,
    citation=_CITATION,
    scope="target",
)
def client_certificate_required(ctx: TargetContext) -> Iterator[Hit]:
    """The server asked for a client certificate, none was sent, and it ended the connection: a failed TLS 1.2
    handshake (alert handshake_failure) or, in TLS 1.3, an alert after the client's Finished (certificate_required).
    Every client without a certificate fails here, whatever the chain."""
    for chain in _asked(ctx):
        auth = chain.client_auth
        if auth is None or auth.sent or auth.refused is None:
            continue
        yield Hit(
            f"{chain.source}: the server asks for a client certificate and ends the connection without one "
            f"({auth.refused}). {_names(chain)}",
            f"{_HOW} If clients should connect without one, make the request optional (nginx ssl_verify_client "
            "optional; Apache SSLVerifyClient optional; HAProxy verify optional).",
            sources=(chain.source,),
            evidence=_evidence(chain),
        )


@check(
    "client-certificate-requested",
    title="The server asks for a client certificate (and went on without one)",
    severity=Severity.WARNING,
    citation=_CITATION,
    scope="target",
)
def client_certificate_requested(ctx: TargetContext) -> Iterator[Hit]:
    """The server asked for a client certificate, none was sent, and it completed the handshake anyway: the
    request is optional at the TLS level, but the application may still refuse the request (nginx's
    ``ssl_verify_client on`` answers HTTP 400 "No required SSL certificate was sent")."""
    for chain in _asked(ctx):
        auth = chain.client_auth
        if auth is None or auth.sent or auth.refused is not None:
            continue
        yield Hit(
            f"{chain.source}: the server asks for a client certificate; it completed the handshake without one, "
            f"but the application behind it may still refuse clients that send none (nginx with ssl_verify_client "
            f'on answers 400 "No required SSL certificate was sent"). {_names(chain)}',
            f"{_HOW} If no client needs one, stop asking for it (nginx: remove ssl_verify_client; Apache: "
            "SSLVerifyClient none).",
            sources=(chain.source,),
            evidence=_evidence(chain),
        )


@check(
    "client-certificate-rejected",
    title="The server refused the client certificate sent",
    severity=Severity.ERROR,
    citation=_CITATION,
    scope="target",
)
def client_certificate_rejected(ctx: TargetContext) -> Iterator[Hit]:
    """A client certificate was sent (``--cert``) and the server ended the connection over it (alert unknown_ca,
    bad_certificate, certificate_expired...)."""
    for chain in _asked(ctx):
        auth = chain.client_auth
        if auth is None or not auth.sent or auth.refused is None:
            continue
        yield Hit(
            f"{chain.source}: the server refused the client certificate sent ({auth.refused}). {_names(chain)}",
            "Use a client certificate issued by a CA the server trusts (see the names above), valid now, with the "
            "clientAuth extended key usage, sent with its intermediates (put them after it in the --cert file); "
            "or add its CA to the server's client CA file (nginx ssl_client_certificate, Apache "
            "SSLCACertificateFile) and reload it.",
            sources=(chain.source,),
            evidence=_evidence(chain),
        )
