"""The HTTP proxy the connection went through (``--proxy``, ``https_proxy``): did it open the tunnel?"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Severity
from .registry import Hit, TargetContext, check


@check(
    "proxy-failed",
    title="The HTTP proxy did not open a tunnel to the server",
    severity=Severity.ERROR,
    citation="RFC 9110 §9.3.6 (CONNECT), §15.5.8 (407)",
    scope="target",
)
def proxy_failed(ctx: TargetContext) -> Iterator[Hit]:
    """The proxy could not be reached, refused the CONNECT request (407 without or with wrong credentials, 403 for
    a port or host it does not allow, 502/503 when it cannot reach the server itself), or did not answer in HTTP
    in time. The server was never reached, so nothing is known of its certificate."""
    for chain in ctx.failures:
        if chain.error_kind != "proxy":
            continue
        yield Hit(
            f"{chain.source}: {chain.error}.",
            "Check the proxy URL (--proxy, https_proxy, all_proxy) and its credentials (http://user:password@host:"
            "port); a 403 usually means the proxy allows CONNECT only to some ports (tinyproxy ConnectPort, Squid "
            "SSL_ports); a 502 or 503 that the proxy itself cannot reach the server. A host that must be reached "
            "directly goes in --noproxy or NO_PROXY.",
            sources=(chain.source,),
            evidence={"error_kind": chain.error_kind, "error": chain.error, "proxy": chain.proxy},
        )
