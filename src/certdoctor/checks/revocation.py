"""Revocation: revoked certificates, unknown status, stale or invalid OCSP responses, stapling."""

from __future__ import annotations

from collections.abc import Iterator

from cryptography import x509

from .. import certinfo
from ..model import PresentedChain, Severity
from ..revocation import Answer, CertRevocation, parse_crl
from ._text import ago, label, when
from .registry import ChainContext, Hit, check

STAPLING_HOWTO = (
    "nginx: `ssl_stapling on; ssl_stapling_verify on;` plus a `resolver` (nginx fetches the response itself, "
    "lazily: the first client after a reload gets none); Apache: `SSLUseStapling on` with `SSLStaplingCache`; "
    "HAProxy ≥ 2.8: `ocsp-update on` on the crt line."
)
WHO_CHECKS = (
    "Clients that check revocation reject it: Windows (Schannel, CryptoAPI), Java and .NET with revocation "
    "checking on, Chrome for the publicly trusted certificates its CRLSet lists, Firefox when the status is "
    "stapled (and CRLite for public CAs). curl, Python, Node, Go, Java, .NET and Safari check nothing by default "
    "and still connect, but the CA says this certificate must no longer be trusted."
)
INVALID_KINDS = ("parse", "signature", "responder", "certid", "future")


def _who(status: CertRevocation) -> str:
    if status.depth == 0:
        return f"The server certificate {label(status.cert)}"
    return f"Intermediate {label(status.cert)}"


def _network_members(ctx: ChainContext) -> list[PresentedChain]:
    return [c for c in ctx.evidence.chains if c.source in ctx.sources and c.address is not None]


def _problem(a: Answer) -> str:
    if a.error:
        return a.error
    if a.stale and a.next_update is not None:
        return f"its answer expired on {when(a.next_update)}"
    if a.status == "unknown":
        return "the responder does not know this certificate (status unknown)"
    return "no usable answer"


@check(
    "revoked",
    title="A certificate of the chain has been revoked",
    severity=Severity.ERROR,
    citation="RFC 5280 §6.3 (CRL); RFC 6960 §2.2 (OCSP); CA/B Forum BR §4.9",
)
def revoked(ctx: ChainContext) -> Iterator[Hit]:
    """An OCSP response (stapled or fetched) or a CRL, validated, says a certificate of the path is revoked."""
    for status in ctx.revocation:
        answer = status.revoked_by
        if answer is None:
            continue
        reason = answer.reason or "unspecified"
        at = f" on {when(answer.revoked_at)}" if answer.revoked_at else ""
        signer = f", signed by {answer.signer}" if answer.signer else ""
        others = [a for a in status.answers if a.good]
        disagree = (
            " " + "; ".join(f"{a.where} still says good" for a in others) + ", so clients that ask it accept it."
            if others
            else ""
        )
        if status.depth == 0:
            fix = (
                "Get a new certificate"
                + (" with a new private key" if reason in ("keyCompromise", "unspecified") else "")
                + ", install it on every server that presents this one and reload them. A revoked certificate "
                "never becomes valid again."
            )
        else:
            fix = (
                "The CA has revoked this intermediate. Download the CA's current intermediate certificate (if the "
                "CA says so, re-issue your certificate under it), put it in your chain file in place of the revoked "
                "one and reload the server."
            )
        yield Hit(
            f"{_who(status)} was revoked{at} (reason: {reason}), according to {answer.where}{signer}.{disagree} "
            f"{WHO_CHECKS}",
            fix,
            cert=status.cert,
            evidence={
                "depth": status.depth,
                "revoked_at": answer.revoked_at.isoformat() if answer.revoked_at else None,
                "reason": answer.reason,
                "source": answer.source,
                "url": answer.url,
                "signer": answer.signer,
                "answers": [a.to_dict() for a in status.answers],
            },
        )


@check(
    "revocation-unknown",
    title="The revocation status of a certificate could not be determined",
    severity=Severity.WARNING,
    citation="RFC 5280 §6.3; RFC 6960 §2.3; CA/B Forum BR §4.10.2 (status services available 24x7)",
)
def revocation_unknown(ctx: ChainContext) -> Iterator[Hit]:
    """A certificate names OCSP or CRL URLs (or a CRL given with --crl is from its issuer), but none of them
    gave a valid, current answer."""
    if not ctx.evidence.revocation_checked and not ctx.evidence.crls:
        return
    for status in ctx.revocation:
        if status.status != "unknown":
            continue
        tried = [f"{a.where}: {_problem(a)}" for a in status.answers]
        untried = [u for u in (*status.ocsp_urls, *status.crl_urls) if u not in {a.url for a in status.answers}]
        tried += [f"{u}: not tried" for u in untried]
        says_unknown = any(a.status == "unknown" for a in status.answers)
        yield Hit(
            f"certdoctor could not find out whether {_who(status)[0].lower() + _who(status)[1:]} is revoked. "
            f"Tried {'; '.join(tried)}. Browsers soft-fail and connect anyway, but clients that hard-fail reject "
            'the connection: Java with revocation checking on ("Could not determine revocation status"), .NET '
            "and Windows with online checking (RevocationStatusUnknown, CRYPT_E_REVOCATION_OFFLINE)"
            + (", and Firefox when a responder says unknown (SEC_ERROR_OCSP_UNKNOWN_CERT)." if says_unknown else "."),
            "Check that the OCSP and CRL URLs of the certificate answer from where your clients run (firewalls and "
            "proxies often block outbound HTTP to CA responders). For your own CA, keep its OCSP responder running "
            "and its CRL published and in date; for a public CA, report the outage to it. Staple OCSP responses so "
            f"that clients need not reach the responder: {STAPLING_HOWTO}",
            cert=status.cert,
            evidence={
                "depth": status.depth,
                "ocsp_urls": list(status.ocsp_urls),
                "crl_urls": list(status.crl_urls),
                "answers": [a.to_dict() for a in status.answers],
            },
        )


@check(
    "ocsp-stale",
    title="An OCSP response is past its nextUpdate",
    severity=Severity.WARNING,
    citation="RFC 6960 §4.2.2.1, §3.2 (7); RFC 6066 §8",
)
def ocsp_stale(ctx: ChainContext) -> Iterator[Hit]:
    """A validly signed OCSP response (stapled or from the responder) has expired."""
    for status in ctx.revocation:
        for a in status.answers:
            if a.source == "crl" or not a.stale or a.status is None or a.next_update is None:
                continue
            expired = f"expired on {when(a.next_update)} ({ago(ctx.at, a.next_update)} ago)"
            produced = f", produced {when(a.this_update)}" if a.this_update else ""
            must = status.depth == 0 and certinfo.must_staple(status.cert)
            if a.source == "staple":
                detail = (
                    f"The server staples an OCSP response for its certificate that {expired}{produced}: its "
                    "stapling cache is not being refreshed. Firefox ignores an expired staple and asks the "
                    "responder itself"
                    + (
                        "; since the certificate demands stapling (Must-Staple), it refuses the connection."
                        if must
                        else "; strict validators (openssl s_client -status, ssl_stapling_verify) report it."
                    )
                )
                fix = (
                    "Make the server refresh its staple before nextUpdate: it needs outbound access to the OCSP "
                    "URL and a working resolver. A staple read from a file (nginx ssl_stapling_file, HAProxy .ocsp "
                    "files) must be renewed by a scheduled job. " + STAPLING_HOWTO
                )
            else:
                detail = (
                    f"The OCSP responder {certinfo.short_url(a.url)} answers for {label(status.cert)} with a response "
                    f"that {expired}"
                    f"{produced}. Clients reject expired answers, so they cannot confirm the certificate's status."
                )
                fix = "The responder is serving outdated responses: report it to the CA that runs it."
            yield Hit(
                detail,
                fix,
                cert=status.cert,
                severity=Severity.ERROR if must and a.source == "staple" else None,
                sources=a.staple_sources or None,
                evidence=a.to_dict(),
            )


@check(
    "ocsp-invalid",
    title="An OCSP response is invalid",
    severity=Severity.WARNING,
    citation="RFC 6960 §3.2, §4.2.2.2",
)
def ocsp_invalid(ctx: ChainContext) -> Iterator[Hit]:
    """An OCSP response is unreadable, about another certificate, signed by an unauthorized responder, or
    its signature does not verify."""
    for status in ctx.revocation:
        for a in status.answers:
            if a.source == "crl" or a.error_kind not in INVALID_KINDS:
                continue
            if a.source == "staple":
                detail = (
                    f"The OCSP response the server staples for its certificate is invalid: {a.error}. Firefox "
                    "refuses a connection whose stapled response is invalid."
                )
                fix = (
                    "The server staples a response for another certificate or from the wrong responder, usually "
                    "after a certificate change without clearing the stapling cache or an outdated staple file: "
                    "reload the server (or regenerate the staple file) so it fetches a fresh response for the "
                    "current certificate."
                )
            else:
                detail = (
                    f"The OCSP responder {certinfo.short_url(a.url)} returned a response certdoctor cannot accept for "
                    f"{label(status.cert)}: {a.error}. Clients discard it as if the responder were down."
                )
                fix = (
                    "For your own CA: fix the responder (it must sign with the CA key or with a responder "
                    "certificate issued by the CA with the OCSP-signing EKU, and answer for the certID asked). "
                    "For a public CA: report it. Check that nothing between clients and the responder (a proxy or "
                    "captive portal) rewrites the answer."
                )
            yield Hit(
                detail,
                fix,
                cert=status.cert,
                severity=Severity.ERROR if a.source == "staple" else None,
                sources=a.staple_sources or None,
                evidence=a.to_dict(),
            )


def _unstapled(ctx: ChainContext) -> list[str]:
    return [c.source for c in _network_members(ctx) if not c.ocsp_staple]


@check(
    "must-staple-missing",
    title="The certificate requires OCSP stapling but the server does not staple",
    severity=Severity.ERROR,
    citation="RFC 7633 §4.2 (TLS Feature status_request); Firefox enforces it",
)
def must_staple_missing(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf has the TLS Feature extension with status_request (OCSP Must-Staple) and no staple came."""
    if not certinfo.must_staple(ctx.leaf):
        return
    missing = _unstapled(ctx)
    if missing:
        yield Hit(
            f"The certificate carries the TLS Feature extension with status_request (OCSP Must-Staple, RFC 7633), "
            f"but {', '.join(missing)} sent no OCSP response in the handshake. Firefox refuses the connection "
            "(MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING); Chrome, Safari, curl and most libraries ignore "
            "the extension.",
            f"Turn on OCSP stapling on every server presenting this certificate and let it reach the OCSP "
            f"responder: {STAPLING_HOWTO} Or re-issue the certificate without Must-Staple.",
            cert=ctx.leaf,
            sources=tuple(missing),
            evidence={"unstapled_sources": missing, "ocsp_urls": certinfo.ocsp_urls(ctx.leaf)},
        )


@check(
    "stapling-absent",
    title="The server does not staple an OCSP response",
    severity=Severity.INFO,
    citation="RFC 6066 §8 (status_request); RFC 6961",
)
def stapling_absent(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf has an OCSP URL but the server sends no stapled response."""
    urls = certinfo.ocsp_urls(ctx.leaf)
    if not urls or certinfo.must_staple(ctx.leaf):
        return
    missing = _unstapled(ctx)
    if missing:
        yield Hit(
            f"{', '.join(missing)} sent no stapled OCSP response. Clients that check revocation must ask the "
            f"CA's responder ({certinfo.short_url(urls[0])}) themselves: slower, it tells the CA who visits the "
            "site, and it fails when the responder is unreachable from the client.",
            f"Enable OCSP stapling: {STAPLING_HOWTO}",
            cert=ctx.leaf,
            sources=tuple(missing),
            evidence={"unstapled_sources": missing, "ocsp_urls": urls},
        )


def _crl_number_problem(crl: x509.CertificateRevocationList) -> str | None:
    try:
        ext = crl.extensions.get_extension_for_class(x509.CRLNumber)
    except x509.ExtensionNotFound:
        return "it has no cRLNumber extension (RFC 5280 §5.2.3: conforming CRL issuers MUST include it)"
    except Exception as exc:
        return f"its extensions cannot be read ({type(exc).__name__})"
    if ext.critical:
        return "its cRLNumber extension is marked critical (RFC 5280 §5.2.3: MUST be non-critical)"
    return None


@check(
    "crl-nonconforming",
    title="A CRL given with --crl does not conform to RFC 5280",
    severity=Severity.WARNING,
    citation="RFC 5280 §5.2.3 (cRLNumber: MUST be included, MUST be non-critical); §5.1.2.5 (nextUpdate)",
)
def crl_nonconforming(ctx: ChainContext) -> Iterator[Hit]:
    """A CRL supplied with ``--crl`` lacks its cRLNumber, marks it critical, or has no nextUpdate. OpenSSL
    accepts such a CRL (it understands cRLNumber whatever its criticality and does not require it), so this is
    about the CA's CRL profile; clients that track CRL numbers (delta CRLs, caches) cannot order such CRLs."""
    for source, data in ctx.evidence.crls:
        try:
            crl = parse_crl(data)
        except ValueError:
            continue
        problems = [p for p in (_crl_number_problem(crl),) if p]
        if crl.next_update_utc is None:
            problems.append("it has no nextUpdate (RFC 5280 §5.1.2.5: conforming CRL issuers MUST include it)")
        if not problems:
            continue
        yield Hit(
            f"The CRL {source} (issued by {certinfo.name_str(crl.issuer)}) does not conform: {'; '.join(problems)}. "
            "OpenSSL-based clients accept it; strict verifiers reject it, and CRL caches cannot tell which of two "
            "such CRLs is newer.",
            "Configure the CA to issue CRLs with a non-critical, increasing cRLNumber and a nextUpdate (OpenSSL "
            "`openssl ca -gencrl` with a crlnumber file and default_crl_days).",
            evidence={"crl": source, "issuer": certinfo.name_str(crl.issuer), "problems": problems},
        )
