"""Validity periods: expired, not yet valid, expiring soon, too long, and the same for intermediates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from .. import certinfo
from ..model import Severity
from ..paths import CUSTOM, PUBLIC_STORES
from ._text import ago, label, when
from .registry import ChainContext, Hit, check

RENEW = (
    "Renew the certificate, install the new one on every server that serves this name and reload them "
    "(for ACME clients such as certbot: check that the renewal job runs and that it reloads the server)."
)


@check(
    "expired",
    title="The server certificate has expired",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.1.2.5, §6.1.3 (a)(2)",
)
def expired(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf certificate's notAfter is in the past."""
    end = certinfo.not_after(ctx.leaf)
    if certinfo.expired_at(ctx.leaf, ctx.at):
        yield Hit(
            f"The certificate for {certinfo.display_name(ctx.leaf)} expired on {when(end)}, "
            f"{ago(ctx.at, end)} before {when(ctx.at)}. Every client rejects it.",
            RENEW,
            cert=ctx.leaf,
            evidence={"not_after": end.isoformat(), "checked_at": ctx.at.isoformat()},
        )


@check(
    "not-yet-valid",
    title="The server certificate is not valid yet",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.1.2.5, §6.1.3 (a)(2)",
)
def not_yet_valid(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf certificate's notBefore is in the future."""
    start = certinfo.not_before(ctx.leaf)
    if certinfo.premature_at(ctx.leaf, ctx.at):
        yield Hit(
            f"The certificate only becomes valid on {when(start)}, {ago(start, ctx.at)} after "
            f"{when(ctx.at)}. Either it was installed too early or a clock is wrong.",
            "Check the clock of the machine that issued the certificate and of the client (NTP). If the "
            "certificate was issued with a future start date, serve the previous certificate until then.",
            cert=ctx.leaf,
            evidence={"not_before": start.isoformat(), "checked_at": ctx.at.isoformat()},
        )


@check(
    "expiring-soon",
    title="The server certificate expires soon",
    severity=Severity.WARNING,
    citation="operational practice (CA/B Forum BR §6.3.2 bounds validity)",
)
def expiring_soon(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf expires within the warning window (default 30 days, --warn-days)."""
    end = certinfo.not_after(ctx.leaf)
    left = (end - ctx.at).total_seconds() / 86400
    if 0 <= left < ctx.evidence.warn_days:
        yield Hit(
            f"The certificate expires on {when(end)}, in {ago(end, ctx.at)} "
            f"(warning threshold: {ctx.evidence.warn_days} days).",
            RENEW,
            cert=ctx.leaf,
            evidence={"not_after": end.isoformat(), "days_left": round(left, 1)},
        )


def _path_cas(ctx: ChainContext):
    """Non-leaf certificates of the best path, with where they came from (trust anchors excluded)."""
    for node in ctx.analysis.best.nodes[1:]:
        if node.origin == "store":
            continue
        if ctx.analysis.best.end == "anchor" and node is ctx.analysis.best.top and node.origin != "presented":
            continue
        yield node


@check(
    "intermediate-expired",
    title="An intermediate certificate has expired or is not valid yet",
    severity=Severity.ERROR,
    citation="RFC 5280 §6.1.3 (a)(2)",
)
def intermediate_expired(ctx: ChainContext) -> Iterator[Hit]:
    """An intermediate on the path to the root is outside its validity period."""
    for node in _path_cas(ctx):
        cert = node.cert
        start, end = certinfo.not_before(cert), certinfo.not_after(cert)
        where = (
            f"sent by the server at position {node.position}"
            if node.position is not None
            else (f"downloaded from {node.detail}")
        )
        if certinfo.expired_at(cert, ctx.at):
            state = f"expired on {when(end)} ({ago(ctx.at, end)} ago)"
        elif certinfo.premature_at(cert, ctx.at):
            state = f"is not valid until {when(start)}"
        else:
            continue
        leaf_in_date = certinfo.in_validity(ctx.leaf, ctx.at)
        premature = not certinfo.expired_at(cert, ctx.at)
        yield Hit(
            f"Intermediate {label(cert)}, {where}, {state}. "
            + (
                "The chain is broken even though the server certificate itself is in date."
                if leaf_in_date
                else "The chain is broken at this level too, not only at the server certificate."
            ),
            "Check the clock of the machine judging it (and --at): the intermediate was issued later than this moment."
            if premature
            else "Download the current intermediate from your CA (usually the CA re-issued it under the same "
            "name and key) and replace the old one in your chain file; then reload the server.",
            cert=cert,
            evidence={"not_before": start.isoformat(), "not_after": end.isoformat(), "origin": node.origin},
        )


MAX_PUBLIC_DAYS = 398


@check(
    "validity-too-long",
    title="The certificate is valid for more than 398 days",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §6.3.2; Apple/Chrome/Mozilla root programme policies (since 2020-09-01)",
)
def validity_too_long(ctx: ChainContext) -> Iterator[Hit]:
    """Leaf validity exceeds 398 days; browsers reject that for publicly trusted roots only."""
    days = certinfo.validity_days(ctx.leaf)
    start = certinfo.not_before(ctx.leaf)
    if days <= MAX_PUBLIC_DAYS + 1 or start < datetime(2020, 9, 1, tzinfo=UTC):
        return
    anchored = set(ctx.analysis.best.anchored_in) if ctx.analysis.best.end == "anchor" else set()
    public = anchored & PUBLIC_STORES
    severity = Severity.ERROR if public else Severity.WARNING
    scope = (
        f"It chains to a publicly trusted root ({', '.join(sorted(public))}), so Chrome and Safari reject it."
        if public
        else "Browsers enforce this only for publicly trusted roots; for a private root "
        f"({'trusted via --ca-file' if CUSTOM in anchored else 'not publicly trusted'}) they accept it, "
        "but Apple platforms and some appliances apply the limit to every certificate."
    )
    yield Hit(
        f"The certificate is valid for {int(days)} days ({when(start)} to "
        f"{when(certinfo.not_after(ctx.leaf))}); the maximum for publicly trusted TLS certificates is "
        f"{MAX_PUBLIC_DAYS} days. {scope}",
        "Issue certificates valid for at most 398 days (90 days with ACME is the norm) and automate renewal.",
        cert=ctx.leaf,
        severity=severity,
        evidence={"validity_days": int(days), "public_roots": sorted(public)},
    )
