"""The chain as sent: does it lead to a trusted root, in order, without gaps or extras?"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

from cryptography.x509.oid import NameOID

from .. import certinfo
from ..model import Severity
from ..paths import CUSTOM
from ._text import label
from .registry import ChainContext, Hit, check

CHAIN_FILE_FIX = (
    "Serve the server certificate first, followed by each intermediate in order up to (not including) the "
    "root — e.g. nginx `ssl_certificate fullchain.pem;`, Apache 2.4.8+ `SSLCertificateFile fullchain.pem`, "
    "HAProxy `crt` with the chain appended — and reload the server."
)


def _stores_consulted(ctx: ChainContext) -> str:
    names = [s.name for s in ctx.evidence.stores]
    if ctx.evidence.extra_roots:
        names.append("--ca-file")
    return ", ".join(names) or "none"


@check(
    "self-signed",
    title="The server certificate is self-signed",
    severity=Severity.ERROR,
    citation="RFC 5280 §6.1 (a trust anchor must be configured by the client)",
)
def self_signed(ctx: ChainContext) -> Iterator[Hit]:
    """The leaf signs itself and no selected store trusts it."""
    leaf = ctx.leaf
    if not certinfo.is_self_signed(leaf) or ctx.analysis.index.stores_trusting(leaf):
        return
    yield Hit(
        f"The server presents {label(leaf)}, which is signed by its own key: no certificate authority "
        f"vouches for it, and none of the trust stores consulted ({_stores_consulted(ctx)}) contains it. "
        "Clients say 'self-signed certificate' (curl, Python), DEPTH_ZERO_SELF_SIGNED_CERT (Node) or "
        "NET::ERR_CERT_AUTHORITY_INVALID (Chrome).",
        "For a public site, get a certificate from a public CA (e.g. Let's Encrypt with certbot). For an "
        "internal service, issue it from a private CA and install that CA's root on the clients; to trust "
        "this exact certificate on purpose, add it to the client's trust store (check it here with "
        "--ca-file).",
        cert=leaf,
        evidence={"subject": certinfo.subject(leaf), "sha256": certinfo.fingerprint(leaf)},
    )


def _partial_trust(ctx: ChainContext) -> tuple[list[str], list[str]]:
    ok = [v.store for v in ctx.analysis.verdicts if v.ok or v.ok_with_aia]
    bad = [v.store for v in ctx.analysis.verdicts if not (v.ok or v.ok_with_aia)]
    return ok, bad


@check(
    "untrusted-root",
    title="The chain ends in a root that the trust stores do not contain",
    severity=Severity.ERROR,
    citation="RFC 5280 §6.1.1 (d) trust anchor information",
)
def untrusted_root(ctx: ChainContext) -> Iterator[Hit]:
    """The best path ends at a self-signed root (sent or fetched) or an unknown issuer of a CA certificate."""
    best = ctx.analysis.best
    top = best.top
    stores = _stores_consulted(ctx)
    if best.end == "untrusted-root" and len(best.nodes) > 1:
        how = (
            f"sent by the server at position {top.position}"
            if top.origin == "presented"
            else f"downloaded from {top.detail}"
        )
        yield Hit(
            f"The chain leads to the root {label(top.cert)} ({how}), which none of the trust stores "
            f"consulted ({stores}) contains. This is typical of a private/corporate CA or a TLS-inspecting "
            "proxy.",
            "If this is your organisation's CA, install its root in each client's trust store (and check "
            "here with --ca-file ROOT.pem). For a public site, use a certificate from a publicly trusted CA.",
            cert=top.cert,
            evidence={
                "root_subject": certinfo.subject(top.cert),
                "root_sha256": certinfo.fingerprint(top.cert),
                "stores": stores,
            },
        )
        return
    if best.end == "unknown-issuer" and len(best.nodes) > 1 and top.origin == "presented" and certinfo.is_ca(top.cert):
        yield Hit(
            f"The last certificate the server sent, {label(top.cert)}, was issued by "
            f'"{certinfo.issuer(top.cert)}", which is neither sent by the server, nor downloadable via '
            f"AIA, nor in the trust stores consulted ({stores}). It is most likely a private root.",
            "If this is your organisation's CA, install its root in each client's trust store (and check "
            "here with --ca-file ROOT.pem). If it is an intermediate, add it to the served chain.",
            cert=top.cert,
            evidence={"issuer": certinfo.issuer(top.cert), "stores": stores},
        )
        return
    if best.end == "anchor":
        ok, bad = _partial_trust(ctx)
        if ok and bad and CUSTOM not in best.anchored_in:
            yield Hit(
                f"The chain is trusted by {', '.join(ok)} but not by {', '.join(bad)}: its root "
                f"{label(top.cert)} is missing from those stores (it may be too new, or removed).",
                "Clients using the stores that lack it will fail. Ask the CA for a chain that cross-signs to "
                "an older, widely distributed root, or update the clients' trust stores.",
                cert=top.cert,
                severity=Severity.WARNING,
                evidence={"trusted_by": ok, "not_trusted_by": bad},
            )


def _append_command(url: str) -> str:
    """A shell command appending the certificate(s) at an AIA URL to fullchain.pem (DER, PEM or PKCS#7)."""
    url = certinfo.short_url(url)
    if url.lower().endswith((".p7c", ".p7b")):
        return f"`curl -s {url} | openssl pkcs7 -inform DER -print_certs >> fullchain.pem`"
    return f"`curl -s {url} | openssl x509 -inform DER >> fullchain.pem`"


def _aia_notes(ctx: ChainContext, urls: list[str]) -> list[str]:
    """What each AIA caIssuers URL gave: not fetched, the error, or certificates none of which was the issuer."""
    notes = []
    for url in urls:
        f = ctx.evidence.aia.get(url)
        shown = certinfo.short_url(url)
        if f is None:
            notes.append(f"{shown} was not fetched")
        elif f.error:
            notes.append(f"{shown} failed: {f.error}")
        else:
            notes.append(f"{shown} returned {len(f.certs)} certificate(s), none of which issued it")
    return notes


@check(
    "missing-intermediate",
    title="The server does not send the intermediate certificate(s)",
    severity=Severity.ERROR,
    citation="RFC 8446 §4.4.2; RFC 5246 §7.4.2 (the server sends the chain); RFC 5280 §4.2.2.1 (AIA)",
)
def missing_intermediate(ctx: ChainContext) -> Iterator[Hit]:
    """The path to a root needs a CA certificate the server did not send."""
    best = ctx.analysis.best
    # A root fetched via AIA is not "missing": servers need not send roots (untrusted-root covers it).
    borrowed = [n for n in best.nodes if n.origin == "aia" and not (n is best.top and certinfo.is_self_signed(n.cert))]
    if borrowed:
        names = ", ".join(label(n.cert) for n in borrowed)
        urls = ", ".join(dict.fromkeys(certinfo.short_url(n.detail) for n in borrowed))
        outcome = (
            "and with it the chain is complete — so browsers that fetch AIA (Chrome, Edge, Safari) work, while "
            "curl, OpenSSL, Python, Node/Postman, Java and Go fail with 'unable to get local issuer certificate' "
            "or 'PKIX path building failed'."
        )
        if best.end == "unknown-issuer":  # AIA gave part of the path only
            top = best.top
            fetch_notes = _aia_notes(ctx, certinfo.ca_issuer_urls(top.cert))
            outcome = (
                f'but the chain is still incomplete: {label(top.cert)} was issued by "{certinfo.issuer(top.cert)}"'
                + (
                    f", and its AIA caIssuers URL could not supply it: {'; '.join(fetch_notes)}."
                    if fetch_notes
                    else "."
                )
            )
        yield Hit(
            f"The server does not send {names}. certdoctor downloaded it from the AIA caIssuers URL {urls} " + outcome,
            CHAIN_FILE_FIX
            + " To build the chain file from what the server sends now plus the downloaded intermediate(s): "
            + " ".join(_append_command(n.detail) for n in borrowed),
            cert=borrowed[0].cert,
            evidence={
                "missing": [certinfo.subject(n.cert) for n in borrowed],
                "aia_urls": urls.split(", "),
                "fetched_sha256": [certinfo.fingerprint(n.cert) for n in borrowed],
            },
        )
        return
    if best.end != "unknown-issuer":
        return
    top = best.top
    if top.origin == "presented" and certinfo.is_ca(top.cert) and len(best.nodes) > 1:
        return  # reported as untrusted-root: the issuer of a sent CA certificate is most likely a root
    urls = certinfo.ca_issuer_urls(top.cert)
    fetch_notes = _aia_notes(ctx, urls)
    if urls:
        aia = "Its AIA caIssuers URL could not supply the issuer: " + "; ".join(fetch_notes) + "."
    else:
        aia = (
            "It has no AIA caIssuers URL, so not even browsers can fetch the missing certificate "
            "(Chrome shows NET::ERR_CERT_AUTHORITY_INVALID)."
        )
    yield Hit(
        f'{label(top.cert)} was issued by "{certinfo.issuer(top.cert)}", but the server does not send that '
        f"certificate and it is not a root in the trust stores consulted ({_stores_consulted(ctx)}). {aia} "
        "If the issuer is a private root rather than an intermediate, trust it with --ca-file.",
        CHAIN_FILE_FIX + " Your CA's download page or the certificate e-mail has the intermediate bundle.",
        cert=top.cert,
        evidence={"issuer": certinfo.issuer(top.cert), "aia_urls": urls, "aia_results": fetch_notes},
    )


@check(
    "wrong-order",
    title="The chain is sent in the wrong order",
    severity=Severity.WARNING,
    citation="RFC 5246 §7.4.2 (each certificate must certify the one preceding it); RFC 8446 §4.4.2",
)
def wrong_order(ctx: ChainContext) -> Iterator[Hit]:
    """The presented certificates on the path are not in leaf-to-root order."""
    path_positions = [n.position for n in ctx.analysis.best.nodes if n.origin == "presented"]
    leaf_first = ctx.analysis.best.nodes[0].position == 0
    if leaf_first and path_positions == sorted(path_positions):
        return
    order = " → ".join(f"#{p}" for p in path_positions)
    version = ctx.chain.tls_version  # None for files
    if not leaf_first:
        rule = (
            "Every TLS version requires the server certificate first (RFC 8446 §4.4.2 and RFC 5246 §7.4.2) and "
            "each following certificate to certify the one before it."
        )
    elif version == "TLSv1.3":
        rule = (
            "On this TLS 1.3 connection the server certificate comes first, as required; RFC 8446 §4.4.2 only asks "
            "that the others certify the one before (SHOULD) and lets clients accept any order, so TLS 1.3 clients "
            "cope. The same chain file served over TLS 1.2 breaks the clients that follow RFC 5246 §7.4.2 to the "
            "letter."
        )
    else:
        rule = (
            "TLS 1.2 (RFC 5246 §7.4.2) requires the server certificate first and each following certificate to "
            "certify the one before it."
        )
    yield Hit(
        f"Path order is {order} (positions in the order the "
        f"{'server sent them' if version else 'file lists them'}). {rule} Most current clients reorder and cope, "
        "but older OpenSSL, Java 7, embedded and IoT clients fail.",
        CHAIN_FILE_FIX,
        evidence={
            "sent_order": [certinfo.subject(c) for c in ctx.chain.certs],
            "path_positions": path_positions,
            "tls_version": version,
        },
    )


@check(
    "duplicate-cert",
    title="The same certificate is sent more than once",
    severity=Severity.WARNING,
    citation="RFC 8446 §4.4.2; RFC 5246 §7.4.2",
)
def duplicate_cert(ctx: ChainContext) -> Iterator[Hit]:
    """A certificate appears twice or more in the presented chain."""
    counts = Counter(certinfo.fingerprint(c) for c in ctx.chain.certs)
    for cert in ctx.analysis.unique:
        n = counts[certinfo.fingerprint(cert)]
        if n > 1:
            positions = [i for i, c in enumerate(ctx.chain.certs) if c == cert]
            yield Hit(
                f"{label(cert)} is sent {n} times (positions {', '.join(map(str, positions))}). Usually the "
                "intermediate was pasted into the chain file twice, or both the certificate file and a "
                "separate chain file contain it. Strict clients may refuse the chain.",
                CHAIN_FILE_FIX,
                cert=cert,
                evidence={"count": n, "positions": positions},
            )


@check(
    "extra-cert",
    title="The server sends certificates unrelated to its chain",
    severity=Severity.WARNING,
    citation="RFC 8446 §4.4.2; RFC 5246 §7.4.2",
)
def extra_cert(ctx: ChainContext) -> Iterator[Hit]:
    """Certificates that lie on no path from the leaf to any root."""
    related = ctx.analysis.on_any_path()
    extras = [c for c in ctx.analysis.unique[1:] if certinfo.fingerprint(c) not in related]
    if not extras:
        return
    shown = extras[:5]
    more = f" and {len(extras) - len(shown)} more" if len(extras) > len(shown) else ""
    yield Hit(
        f"The server sends {len(extras)} certificate(s) that do not belong to its chain: "
        f"{', '.join(label(c) for c in shown)}{more}. They add bytes to every handshake and some clients "
        "(older Java, Windows) pick a wrong path or fail because of them.",
        CHAIN_FILE_FIX + " Remove the unrelated certificates from the chain file.",
        cert=extras[0],
        evidence={"unrelated": [certinfo.subject(c) for c in extras]},
    )


@check(
    "cross-signed-root",
    title="The server sends a cross-certificate of a trusted root",
    severity=Severity.INFO,
    citation="RFC 4158 §2.3 (cross-certification); RFC 5280 §6.1 (the path ends at the trust anchor)",
)
def cross_signed_root(ctx: ChainContext) -> Iterator[Hit]:
    """A presented certificate has the subject and key of a trust anchor but is issued by another CA (the
    2020 AddTrust and 2021 Let's Encrypt/DST Root CA X3 chains).

    Clients that trust the root itself stop at their own copy of it (OpenSSL >= 1.1.0 looks in the store first,
    X509_V_FLAG_TRUSTED_FIRST; Go, Java, Chromium and mozilla::pkix take the shortest trusted path), so the
    cross-certificate only matters to clients that trust the old issuing root alone.
    """
    for cert in ctx.analysis.unique[1:]:
        if certinfo.is_self_signed(cert):
            continue
        stores = ctx.analysis.index.stores_trusting(cert)
        if not stores:
            continue
        cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        old = f'"{cns[0].value}"' if cns else certinfo.issuer(cert)
        expired = certinfo.expired_at(cert, ctx.at)
        until = f"{certinfo.not_after(cert):%Y-%m-%d}"
        if expired:
            legacy = (
                f"It expired on {until}: clients that trust only {old} cannot use it any more, and old clients "
                "that follow the sent chain instead of stopping at their own root (OpenSSL 1.0.x, GnuTLS before "
                "3.6.14: the AddTrust expiry of May 2020) fail although they trust the root."
            )
        else:
            legacy = (
                f"Legacy clients that trust only {old} (not the root itself) depend on it, and fail when {old} "
                "has expired in their store (as with DST Root CA X3 in 2021; old Android ignores the root's "
                f"expiry). It is valid until {until}."
            )
        yield Hit(
            f"The server sends {label(cert)}, a cross-certificate of a trusted root (same name and key as the "
            f"root in: {', '.join(sorted(stores))}) issued by the older root {old}. Clients that trust the root "
            "stop at their own copy and ignore it (curl, Python, Node, Java, Go, Chrome, Firefox accept the "
            f"chain). {legacy}",
            "Keep it only for clients that trust the old root alone; otherwise serve the chain without it "
            + ("(an expired cross-certificate helps nobody)." if expired else "(ask your CA for its short chain)."),
            cert=cert,
            evidence={
                "trusted_as": sorted(stores),
                "issued_by": old,
                "not_after": certinfo.not_after(cert).isoformat(),
                "expired": expired,
            },
        )


@check(
    "contains-root",
    title="The server sends a root certificate",
    severity=Severity.INFO,
    citation="RFC 8446 §4.4.2 (the self-signed root MAY be omitted); CA/B Forum guidance",
)
def contains_root(ctx: ChainContext) -> Iterator[Hit]:
    """A self-signed CA certificate that belongs to the chain is presented (unrelated ones are extra-cert)."""
    related = ctx.analysis.on_any_path()
    for cert in ctx.analysis.unique[1:]:
        if certinfo.is_self_signed(cert) and certinfo.fingerprint(cert) in related:
            trusted = ctx.analysis.index.stores_trusting(cert)
            note = (
                "Clients ignore it and use their own copy, so it only adds bytes to every handshake."
                if trusted
                else "Clients never trust a root because the server sent it; it must be in the client's own store."
            )
            yield Hit(
                f"The server sends the root {label(cert)}. {note}",
                "Remove the root from the chain file; serve the server certificate and intermediates only.",
                cert=cert,
                evidence={"trusted_by": sorted(trusted)},
            )


@check(
    "issuer-not-ca",
    title="A certificate in the chain is signed by a certificate that is not a CA",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.2.1.9 (basicConstraints cA), §4.2.1.3 (keyCertSign), §6.1.4 (k)",
)
def issuer_not_ca(ctx: ChainContext) -> Iterator[Hit]:
    """An issuer on the path lacks basicConstraints CA:TRUE or the keyCertSign key usage."""
    nodes = ctx.analysis.best.nodes
    for child, parent in itertools.pairwise(nodes):
        cert = parent.cert
        ku = certinfo.key_usages(cert)
        problems = []
        if not certinfo.is_ca(cert):
            problems.append(f"basicConstraints is {certinfo.basic_constraints(cert)}")
        if ku is not None and "key_cert_sign" not in ku:
            problems.append(f"keyUsage lacks keyCertSign ({', '.join(ku) or 'empty'})")
        if problems:
            yield Hit(
                f"{label(child.cert)} was signed by {label(cert)}, but that certificate is not allowed to "
                f"issue certificates: {'; '.join(problems)}. Clients say 'invalid CA certificate' (OpenSSL) "
                "or 'basic constraints check failed' (Java).",
                "The certificate was signed with a server (end-entity) certificate's key instead of a CA's. "
                "Re-issue it from a real CA certificate (basicConstraints CA:TRUE, keyUsage keyCertSign).",
                cert=cert,
                evidence={"basic_constraints": certinfo.basic_constraints(cert), "key_usage": ku},
            )


@check(
    "chain-truncated",
    title="The server sends an excessive number of certificates",
    severity=Severity.WARNING,
    citation="RFC 8446 §4.4.2",
)
def chain_truncated(ctx: ChainContext) -> Iterator[Hit]:
    """More certificates were received than certdoctor analyses (the rest are ignored)."""
    got, kept = ctx.chain.total_received, len(ctx.chain.certs)
    if got > kept:
        yield Hit(
            f"The server sent {got} certificates; certdoctor analysed the first {kept}. Real chains have 2–4. "
            "Java refuses more than 10 certificates (jdk.tls.maxCertificateChainLength), and a Certificate "
            "message this large exceeds some clients' handshake limits.",
            CHAIN_FILE_FIX,
            evidence={"received": got, "analysed": kept},
        )
