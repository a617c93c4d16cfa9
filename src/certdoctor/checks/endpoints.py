"""Across addresses: do all servers behind the name agree, and do they serve what you deployed?"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .. import certinfo
from ..model import Severity
from ._text import label, when
from .registry import Hit, TargetContext, check


@check(
    "endpoints-differ",
    title="Addresses behind this name present different certificates",
    severity=Severity.WARNING,
    citation="operational practice (load-balanced and CDN deployments)",
    scope="target",
)
def endpoints_differ(ctx: TargetContext) -> Iterator[Hit]:
    """More than one distinct chain among the addresses of one name (a server's second certificate of another key
    type, collected offering only that type, is not another address: see key-types-differ)."""
    contexts = [c for c in ctx.chains if not c.chain.key_type_only]
    if len(contexts) < 2:
        return
    rows = []
    for c in contexts:
        leaf = c.leaf
        rows.append(
            {
                "sources": list(c.sources),
                "leaf_sha256": certinfo.fingerprint(leaf),
                "leaf_subject": certinfo.subject(leaf),
                "serial": format(leaf.serial_number, "x"),
                "not_after": certinfo.not_after(leaf).isoformat(),
                "chain_length": len(c.chain.certs),
            }
        )
    lines = "; ".join(
        f"{', '.join(c.sources)} → {label(c.leaf)} valid until {when(certinfo.not_after(c.leaf))}, "
        f"{len(c.chain.certs)} certificate(s)"
        for c in contexts
    )
    same_leaf = len({r["leaf_sha256"] for r in rows}) == 1
    what = "the same certificate with different chains" if same_leaf else "different certificates"
    yield Hit(
        f"The {sum(len(c.sources) for c in contexts)} addresses of this name serve {what}: {lines}. "
        "Clients get a different answer depending on which node they reach, which is why a problem seems "
        "to come and go.",
        "Deploy the same certificate and chain to every node behind the name (load balancer pool members, "
        "CDN origins, old servers still in DNS) and reload each of them. Check each node with "
        "--resolve NAME:PORT:ADDRESS.",
        sources=tuple(s for c in contexts for s in c.sources),
        evidence={"endpoints": rows},
    )


@check(
    "served-differs-from-expected",
    title="The server does not present the certificate you expected",
    severity=Severity.ERROR,
    citation="operational practice",
    scope="target",
)
def served_differs_from_expected(ctx: TargetContext) -> Iterator[Hit]:
    """With --expect: the served leaf (or chain) differs from the given file. When the same file is also given
    as --deployed, the deployment checks (:mod:`.deployed`: not-reloaded, served-not-deployed...) say it."""
    expected = ctx.evidence.expected
    if not expected:
        return
    if ctx.evidence.expected_source in {f.path for f in ctx.evidence.deployed}:
        return
    leaves = [c for c in expected if not certinfo.is_ca(c)] or list(expected)
    want = leaves[0]
    want_fp = certinfo.fingerprint(want)
    for c in ctx.chains:
        got = c.leaf
        if certinfo.fingerprint(got) == want_fp:
            sent = [certinfo.fingerprint(x) for x in c.chain.certs]
            file_chain = [certinfo.fingerprint(x) for x in expected]
            if len(expected) > 1 and sent != file_chain:
                yield Hit(
                    f"{', '.join(c.sources)} serves the expected certificate {label(want)}, but the chain it "
                    f"sends ({len(sent)} certificates) differs from the one in "
                    f"{ctx.evidence.expected_source} ({len(file_chain)} certificates).",
                    "Point the server at the full chain file you expect (leaf + intermediates) and reload it.",
                    sources=c.sources,
                    severity=Severity.WARNING,
                    evidence={"served": sent, "expected": file_chain},
                )
            continue
        same_key = False
        with contextlib.suppress(Exception):
            same_key = got.public_key() == want.public_key()
        newer = certinfo.not_before(want) > certinfo.not_before(got)
        reason = (
            "The served certificate is older than the expected one: the server was most likely not reloaded "
            "after the new certificate was installed, or another node still has the old one."
            if newer
            else "The served certificate is not the one in your file."
        )
        yield Hit(
            f"{', '.join(c.sources)} serves {label(got)} (serial {format(got.serial_number, 'x')}, valid until "
            f"{when(certinfo.not_after(got))}), not the expected {label(want)} from "
            f"{ctx.evidence.expected_source} (serial {format(want.serial_number, 'x')}, valid until "
            f"{when(certinfo.not_after(want))}). {reason} Usual causes: the server process was not reloaded; "
            "the certificate was installed for another virtual host (SNI) or another port; TLS is terminated "
            "in front of the server (load balancer, CDN, ingress, reverse proxy) which has its own copy."
            + (" The key is the same, so this is a re-issue of the same key." if same_key else ""),
            "Reload the server (e.g. `systemctl reload nginx`), confirm which virtual host answers for this "
            "name, and if a load balancer/CDN terminates TLS, upload the certificate there.",
            cert=got,
            sources=c.sources,
            evidence={
                "served_sha256": certinfo.fingerprint(got),
                "expected_sha256": want_fp,
                "served_not_after": certinfo.not_after(got).isoformat(),
                "expected_not_after": certinfo.not_after(want).isoformat(),
            },
        )


def _failures(ctx: TargetContext, kinds: set[str]) -> Iterator[Hit]:
    for chain in ctx.failures:
        if (chain.error_kind or "handshake") in kinds:
            yield Hit(
                f"{chain.source}: {chain.error}",
                "Check that the server is running and reachable on this port, that a firewall does not drop "
                "the connection, and that it speaks TLS on this port (not plain HTTP or STARTTLS).",
                sources=(chain.source,),
                evidence={"error_kind": chain.error_kind, "error": chain.error},
            )


@check(
    "connection-failed",
    title="Could not connect to an address",
    severity=Severity.ERROR,
    citation="—",
    scope="target",
)
def connection_failed(ctx: TargetContext) -> Iterator[Hit]:
    """A TCP connection failed, timed out, or the name did not resolve."""
    yield from _failures(ctx, {"resolve", "connect", "timeout"})


@check(
    "handshake-failed",
    title="The TLS handshake failed",
    severity=Severity.ERROR,
    citation="RFC 8446 §6 (alerts)",
    scope="target",
)
def handshake_failed(ctx: TargetContext) -> Iterator[Hit]:
    """The TCP connection worked but no TLS handshake completed."""
    yield from _failures(ctx, {"handshake", "too-large", "not-tls"})


@check(
    "unreadable-file",
    title="The certificate file cannot be read",
    severity=Severity.ERROR,
    citation="RFC 7468",
    scope="target",
)
def unreadable_file(ctx: TargetContext) -> Iterator[Hit]:
    """A chain file is missing, truncated, or holds no certificate."""
    for chain in ctx.failures:
        if chain.error_kind == "parse":
            yield Hit(
                f"{chain.source}: {chain.error}",
                "Download or copy the certificate file again, completely (from -----BEGIN to -----END lines), or "
                "convert it with `certdoctor fix`.",
                sources=(chain.source,),
                evidence={"error": chain.error},
            )


@check(
    "no-certificate",
    title="The server presented no certificate",
    severity=Severity.ERROR,
    citation="RFC 8446 §4.4.2",
    scope="target",
)
def no_certificate(ctx: TargetContext) -> Iterator[Hit]:
    """The handshake completed without a server certificate (anonymous cipher suite or PSK)."""
    yield from _failures(ctx, {"no-certificate"})
