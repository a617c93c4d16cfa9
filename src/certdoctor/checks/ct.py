"""Certificate Transparency: the SCTs each chain's leaf comes with, judged by the browsers' CT policies.

Target checks (they read the OCSP staple and the session's log list, which a per-chain judgement cache does not
key on). For a leaf that chains to a publicly trusted root (or to a ``--treat-as-public-root``), Chrome's,
Mozilla's and Apple's policies (see :mod:`certdoctor.ct`) decide: no SCT at all is ``ct-sct-missing``, too few
(or too few log operators) ``ct-policy-not-met``, naming the failing rule. With ``--ct-log-list`` every SCT's
signature is verified: one that does not verify is ``ct-sct-invalid-signature`` (for any leaf, public or not),
and does not count. Leaves under private roots get no CT finding: browsers enforce CT for public roots only.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ct import CtReport, report_for
from ..model import Severity
from ._text import label
from .registry import ChainContext, Hit, TargetContext, check

CHROME_POLICY = "Chrome CT Policy (googlechrome.github.io/CertificateTransparency/ct_policy.html)"
APPLE_POLICY = "Apple's Certificate Transparency policy (support.apple.com/103214)"
REQUIRED = f"RFC 6962 §3.3; {CHROME_POLICY}; {APPLE_POLICY}"


def _reports(tctx: TargetContext) -> Iterator[tuple[ChainContext, CtReport]]:
    for ctx in tctx.chains:
        report = report_for(tctx.evidence, ctx.chain, ctx.analysis)
        if report is not None:
            yield ctx, report


def _seen(report: CtReport) -> str:
    scts = report.scts
    if not scts:
        return "no SCT"
    sources = ", ".join(sorted({s.source for s in scts}))
    logs = len({s.log_id for s in scts})
    verified = (
        f"{len(report.counting())} with a valid signature from a listed log"
        if report.verified_against
        else "signatures not verified (no --ct-log-list)"
    )
    return f"{len(scts)} SCT(s) ({sources}) from {logs} log(s), {verified}"


def _evidence(report: CtReport) -> dict[str, object]:
    return {
        "sct_count": len(report.scts),
        "counted": len(report.counting()),
        "lifetime_days": report.lifetime_days,
        "signatures_verified": report.verified_against is not None,
        "clients": sorted({f.client for f in report.failures}),
        "failures": [f.to_dict() for f in report.failures],
        "log_ids": sorted({s.log_id.hex() for s in report.scts}),
    }


_BROWSERS = {"chrome": "Chrome", "firefox": "Firefox", "safari": "Safari"}

_FIX = (
    "Get the certificate from a CA that embeds SCTs from enough distinct logs of distinct operators (every public "
    "CA does by default: re-issue it; a certificate issued without SCTs or from a precertificate that was never "
    "logged cannot be fixed), or have the server deliver SCTs by TLS extension or OCSP stapling."
)


@check(
    "ct-sct-missing",
    title="The certificate has no Certificate Transparency SCT",
    severity=Severity.ERROR,
    citation=REQUIRED,
    scope="target",
)
def sct_missing(tctx: TargetContext) -> Iterator[Hit]:
    """A leaf under a publicly trusted root has no SCT at all (embedded, TLS extension or stapled OCSP): Chrome
    (``NET::ERR_CERTIFICATE_TRANSPARENCY_REQUIRED``), Firefox (``MOZILLA_PKIX_ERROR_INSUFFICIENT_CERTIFICATE_
    TRANSPARENCY``) and Safari refuse it."""
    for ctx, report in _reports(tctx):
        if report.public and not report.scts:
            yield Hit(
                f"The server certificate {label(ctx.leaf)} chains to a publicly trusted root but comes with no "
                "Signed Certificate Timestamp (none embedded, none in the TLS extension or a stapled OCSP response); "
                "Chrome, Firefox and Safari require CT for publicly trusted certificates.",
                _FIX,
                cert=ctx.leaf,
                evidence=_evidence(report),
                sources=ctx.sources,
            )


@check(
    "ct-policy-not-met",
    title="The certificate's SCTs do not meet a browser's CT policy",
    severity=Severity.ERROR,
    citation=REQUIRED,
    scope="target",
)
def policy_not_met(tctx: TargetContext) -> Iterator[Hit]:
    """A leaf under a publicly trusted root has SCTs, but not enough (from distinct logs, of distinct log
    operators, counting only valid ones when a log list is given) for Chrome's, Mozilla's or Apple's CT policy."""
    for ctx, report in _reports(tctx):
        if report.public and report.scts and report.failures:
            rules = "; ".join(f"{f.text}: {f.seen} counted" for f in report.failures)
            names = sorted({_BROWSERS[f.client] for f in report.failures})
            who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            yield Hit(
                f"The server certificate {label(ctx.leaf)} (valid {report.lifetime_days} days) has {_seen(report)}; "
                f"{who} refuse{'s' if len(names) == 1 else ''} it. Failing rule(s): {rules}.",
                _FIX,
                cert=ctx.leaf,
                evidence=_evidence(report),
                sources=ctx.sources,
            )


@check(
    "ct-sct-invalid-signature",
    title="An SCT's signature does not verify with its log's key",
    severity=Severity.WARNING,
    citation="RFC 6962 §3.2, §5.2 (clients verify each SCT's signature)",
    scope="target",
)
def sct_invalid_signature(tctx: TargetContext) -> Iterator[Hit]:
    """With ``--ct-log-list``: an SCT from a listed log whose signature does not verify (over the precertificate
    for an embedded SCT, the certificate for one delivered by TLS or OCSP). Browsers ignore it (it counts for no
    policy)."""
    for ctx, report in _reports(tctx):
        for sct in report.invalid:
            log = sct.log.description if sct.log is not None else sct.log_id.hex()
            yield Hit(
                f"The {sct.source} SCT of log {log} (timestamp {sct.timestamp.isoformat()}) on {label(ctx.leaf)} "
                f"does not verify: {sct.problem}. Browsers ignore it, so it counts for no CT policy.",
                "Re-issue the certificate (the CA embedded a corrupt or mismatched SCT), or fix what the server "
                "delivers by TLS/OCSP; check that the log list is current (a log's key never changes).",
                cert=ctx.leaf,
                evidence={"sct": sct.to_dict()},
                sources=ctx.sources,
            )
