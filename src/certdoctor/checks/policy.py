"""The certificate policy (``--policy``): each rule of the policy file that applies to the target, on each
distinct chain (see :mod:`certdoctor.policy`).

These are target checks: they run at every diagnosis, after the chain checks (whose judgements a session may
cache per chain), because the rules that apply depend on the target's labels, not only on the chain. Each
finding's evidence names the ``rule`` (its key), its ``location`` in the file (``policy.toml:12``), the value
``seen`` and the value ``required``; its severity is the file's (``[severity]``) or the rule's default.
Nothing is reported without a policy.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from .. import certinfo
from ..model import Severity
from ..names import INTERNAL_SUFFIXES, is_internal_name
from ..policy import RULES, Policy, Rule, cabf_max_validity_days
from ..policy.rules import EKU_NAMES
from ._text import label, when
from .registry import ChainContext, Hit, TargetContext, check

__all__ = ["INTERNAL_SUFFIXES", "is_internal_name"]  # re-exported: they moved to certdoctor.names


def _applicable(tctx: TargetContext, key: str) -> Iterator[tuple[ChainContext, Policy, Rule]]:
    """Each chain context with the policy and the ``key`` rule that applies to this target (none without a
    policy or when the policy does not set the rule for these labels)."""
    policy = tctx.evidence.policy
    if policy is None:
        return
    rule = policy.rules_for(dict(tctx.evidence.labels)).get(key)
    if rule is None:
        return
    for ctx in tctx.chains:
        if ctx.chain.certs:
            yield ctx, policy, rule


def _hit(
    policy: Policy,
    rule: Rule,
    ctx: ChainContext,
    detail: str,
    fix: str,
    *,
    seen: Any,
    required: Any,
    cert: x509.Certificate | None = None,
    sources: tuple[str, ...] | None = None,
    severity: Severity | None = None,
    **extra: Any,
) -> Hit:
    where = policy.location(rule)
    written = _toml(rule.value) if rule.value == "cabf-br" else _toml(required)
    return Hit(
        f"{detail} (policy {where}: {rule.key} = {written}).",
        fix,
        cert=cert if cert is not None else ctx.leaf,
        evidence={"rule": rule.key, "location": where, "seen": seen, "required": required, **extra},
        severity=rule.severity or severity or RULES[rule.key].severity,
        sources=sources if sources is not None else ctx.sources,
    )


def _toml(value: Any) -> str:
    """``value`` as the policy file writes it (true, 30, "cabf-br", ["rsa", "ecdsa"])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _issued(ctx: ChainContext) -> Iterator[x509.Certificate]:
    """The leaf and the intermediates of the best path a client builds (not the trust anchor, whose key and
    self-signature the root programs judge, nor a certificate only in a store)."""
    best = ctx.analysis.best
    yield ctx.leaf
    for node in best.nodes[1:]:
        if node.origin == "store" or (node is best.top and best.end == "anchor"):
            continue
        if certinfo.is_self_signed(node.cert):
            continue
        yield node.cert


def _policy_check(
    finding: str, *, citation: str | None = None
) -> Any:  # a registration of a target check for ``finding`` (title, severity and citation from RULES)
    spec = next(r for r in RULES.values() if r.finding == finding)
    return check(finding, title=spec.title, severity=spec.severity, citation=citation or spec.citation, scope="target")


# --- issuers -----------------------------------------------------------------------------------------------------


def spki_sha256(cert: x509.Certificate) -> str | None:
    """The SHA-256 of the certificate's SubjectPublicKeyInfo (hex), or None when the key cannot be parsed."""
    key = certinfo.public_key(cert)
    if key is None:
        return None
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _issuer_matches(cert: x509.Certificate, wanted: tuple[str, str]) -> bool:
    kind, value = wanted
    if kind == "sha256":
        return certinfo.fingerprint(cert) == value
    if kind == "spki":
        return spki_sha256(cert) == value
    folded = value.casefold()
    return certinfo.subject(cert).casefold() == folded or any(
        cn.casefold() == folded for cn in certinfo.common_names(cert)
    )


@_policy_check("policy-issuer-not-allowed")
def issuer_not_allowed(tctx: TargetContext) -> Iterator[Hit]:
    """No CA on the path a client builds (intermediates and the trust anchor) matches the policy's
    ``issuers`` (by subject or common name, SHA-256 fingerprint, or SPKI SHA-256)."""
    for ctx, policy, rule in _applicable(tctx, "issuers"):
        cas = [n.cert for n in ctx.analysis.best.nodes[1:]]
        if any(_issuer_matches(ca, wanted) for ca in cas for wanted in rule.value):
            continue
        seen = [certinfo.subject(ca) for ca in cas]
        yield _hit(
            policy,
            rule,
            ctx,
            f"The path to the root goes through {', '.join(label(ca) for ca in cas) or 'no CA at all'}, none of "
            "which the policy allows",
            "Get the certificate from a CA the policy allows, or add this CA to the policy's issuers "
            "(sha256:<fingerprint> pins one certificate, spki:<hash> its key across renewals).",
            seen=seen,
            required=[f"{k}:{v}" if k != "name" else v for k, v in rule.value],
            spki_sha256=[spki_sha256(ca) for ca in cas],
        )


# --- keys and signatures -------------------------------------------------------------------------------------------


def key_type(cert: x509.Certificate) -> str:
    """``rsa``, ``ecdsa``, ``ed25519``, ``ed448``, ``dsa`` or ``unknown``."""
    key = certinfo.public_key(cert)
    for cls, name in (
        (rsa.RSAPublicKey, "rsa"),
        (ec.EllipticCurvePublicKey, "ecdsa"),
        (ed25519.Ed25519PublicKey, "ed25519"),
        (ed448.Ed448PublicKey, "ed448"),
        (dsa.DSAPublicKey, "dsa"),
    ):
        if isinstance(key, cls):
            return name
    return "unknown"


def _which(ctx: ChainContext, cert: x509.Certificate) -> str:
    return "The server certificate" if cert is ctx.leaf else f"Intermediate {label(cert)}"


@_policy_check("policy-key-type-not-allowed")
def key_type_not_allowed(tctx: TargetContext) -> Iterator[Hit]:
    """A certificate of the path (leaf or intermediate) has a key type the policy's ``key_types`` does not
    list."""
    for ctx, policy, rule in _applicable(tctx, "key_types"):
        for cert in _issued(ctx):
            kind = key_type(cert)
            if kind not in rule.value:
                yield _hit(
                    policy,
                    rule,
                    ctx,
                    f"{_which(ctx, cert)} has a {certinfo.key_str(cert)} key",
                    "Issue the certificate for a key of an allowed type.",
                    seen=kind,
                    required=list(rule.value),
                    cert=cert,
                )


@_policy_check("policy-key-too-small")
def key_too_small(tctx: TargetContext) -> Iterator[Hit]:
    """An RSA key of the path is smaller than the policy's ``rsa_min_bits``."""
    for ctx, policy, rule in _applicable(tctx, "rsa_min_bits"):
        for cert in _issued(ctx):
            key = certinfo.public_key(cert)
            if isinstance(key, rsa.RSAPublicKey) and key.key_size < rule.value:
                yield _hit(
                    policy,
                    rule,
                    ctx,
                    f"{_which(ctx, cert)} has a {key.key_size}-bit RSA key",
                    f"Generate a new key of at least {rule.value} bits (or an ECDSA P-256 key) and get a new "
                    "certificate for it.",
                    seen=key.key_size,
                    required=rule.value,
                    cert=cert,
                )


@_policy_check("policy-ec-curve-not-allowed")
def ec_curve_not_allowed(tctx: TargetContext) -> Iterator[Hit]:
    """An EC key of the path is on a curve the policy's ``ec_curves`` does not list."""
    for ctx, policy, rule in _applicable(tctx, "ec_curves"):
        for cert in _issued(ctx):
            key = certinfo.public_key(cert)
            if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in rule.value:
                yield _hit(
                    policy,
                    rule,
                    ctx,
                    f"{_which(ctx, cert)} has an EC key on {key.curve.name}",
                    "Generate a key on an allowed curve and get a new certificate for it.",
                    seen=key.curve.name,
                    required=list(rule.value),
                    cert=cert,
                )


@_policy_check("policy-signature-algorithm-not-allowed")
def signature_not_allowed(tctx: TargetContext) -> Iterator[Hit]:
    """A certificate of the path (leaf or intermediate; not a self-signed root) is signed with an algorithm
    the policy's ``signature_algorithms`` does not list (by name, or dotted OID)."""
    for ctx, policy, rule in _applicable(tctx, "signature_algorithms"):
        for cert in _issued(ctx):
            name = certinfo.signature_algorithm(cert)
            try:
                oid = cert.signature_algorithm_oid.dotted_string
            except Exception:
                oid = "unknown"
            if name.lower() not in rule.value and oid not in rule.value:
                yield _hit(
                    policy,
                    rule,
                    ctx,
                    f"{_which(ctx, cert)} is signed with {name}",
                    "Have the CA reissue the certificate with an allowed signature algorithm (SHA-256 or better).",
                    seen=name,
                    required=list(rule.value),
                    cert=cert,
                )


# --- validity ----------------------------------------------------------------------------------------------------


@_policy_check("policy-validity-too-long")
def validity_too_long(tctx: TargetContext) -> Iterator[Hit]:
    """The leaf's validity period (notBefore through notAfter inclusive, BR §1.6.1) is longer than the policy's
    ``max_validity_days`` (or, for ``"cabf-br"``, than the BR limit for its notBefore)."""
    for ctx, policy, rule in _applicable(tctx, "max_validity_days"):
        start, end = certinfo.not_before(ctx.leaf), certinfo.not_after(ctx.leaf)
        seconds = (end - start).total_seconds() + 1
        limit = cabf_max_validity_days(start) if rule.value == "cabf-br" else rule.value
        if seconds > limit * 86400:
            whole, rest = divmod(int(seconds), 86400)
            span = f"{whole} days" + (f" and {rest} s" if rest else "")
            basis = (
                f" (the CA/B Forum limit for certificates issued on {when(start)[:10]})"
                if rule.value == "cabf-br"
                else ""
            )
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate is valid for {span} (notBefore through notAfter inclusive, BR §1.6.1), from "
                f"{when(start)} to {when(end)}; the policy allows {limit} days{basis}",
                "Request certificates with a shorter lifetime (ACME CAs issue 90 days or less) and automate renewal.",
                seen=round(seconds / 86400, 6),
                required=limit,
            )


@_policy_check(
    "policy-expiring-soon", citation="certificate policy (renewal margin: days_left_warning, days_left_error)"
)
def expiring_soon(tctx: TargetContext) -> Iterator[Hit]:
    """The leaf expires within the policy's renewal margin: an error within ``days_left_error`` days, a warning
    within ``days_left_warning`` (the label section's margins for labelled targets)."""
    policy = tctx.evidence.policy
    if policy is None:
        return
    rules = policy.rules_for(dict(tctx.evidence.labels))
    margins = [
        (rules[k], sev)
        for k, sev in (("days_left_error", Severity.ERROR), ("days_left_warning", Severity.WARNING))
        if k in rules
    ]
    for ctx in tctx.chains:
        if not ctx.chain.certs:
            continue
        end = certinfo.not_after(ctx.leaf)
        left = (end - tctx.evidence.at).total_seconds() / 86400
        for rule, severity in margins:
            if left < rule.value:
                yield _hit(
                    policy,
                    rule,
                    ctx,
                    f"The certificate expires on {when(end)}, {left:.1f} days after {when(tctx.evidence.at)}; the "
                    f"policy wants it renewed {rule.value} days before",
                    "Renew the certificate now and deploy it; check that automatic renewal runs early enough.",
                    seen=round(left, 1),
                    required=rule.value,
                    severity=severity,
                )
                break


# --- names -------------------------------------------------------------------------------------------------------


def _san_entries(cert: x509.Certificate) -> list[str]:
    return [*certinfo.dns_names(cert), *certinfo.ip_addresses(cert)]


@_policy_check("policy-san-missing")
def san_missing(tctx: TargetContext) -> Iterator[Hit]:
    """``san_required = true`` and the leaf has no subjectAltName extension (or an empty one)."""
    for ctx, policy, rule in _applicable(tctx, "san_required"):
        if rule.value and not _san_entries(ctx.leaf):
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate has no DNS name or IP address in a subjectAltName (subject: "
                f"{certinfo.subject(ctx.leaf)})",
                "Reissue the certificate with every name in the subjectAltName extension.",
                seen=None,
                required=True,
            )


@_policy_check("policy-san-wildcard")
def san_wildcard(tctx: TargetContext) -> Iterator[Hit]:
    """``wildcards_allowed = false`` and a DNS name of the leaf contains ``*``."""
    for ctx, policy, rule in _applicable(tctx, "wildcards_allowed"):
        wild = [n for n in certinfo.dns_names(ctx.leaf) if "*" in n]
        if not rule.value and wild:
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate names {', '.join(wild)}",
                "Issue a certificate naming each host explicitly (ACME issues multi-name certificates for free).",
                seen=wild,
                required=False,
            )


@_policy_check("policy-san-internal")
def san_internal(tctx: TargetContext) -> Iterator[Hit]:
    """``internal_names_allowed = false`` and the leaf names an internal host (no public suffix, a special-use
    domain) or a reserved IP address."""
    for ctx, policy, rule in _applicable(tctx, "internal_names_allowed"):
        internal = [n for n in _san_entries(ctx.leaf) if is_internal_name(n)]
        if not rule.value and internal:
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate names {', '.join(internal)}, not unique in the public DNS or a reserved address",
                "Serve internal hosts with certificates of an internal CA (and an internal policy); publicly "
                "trusted certificates name only public DNS names and global IP addresses.",
                seen=internal,
                required=False,
            )


@_policy_check("policy-san-outside-domains")
def san_outside_domains(tctx: TargetContext) -> Iterator[Hit]:
    """A DNS name or IP address of the leaf is not under one of the policy's ``san_domains``."""
    for ctx, policy, rule in _applicable(tctx, "san_domains"):
        outside = []
        for entry in _san_entries(ctx.leaf):
            name = entry.lower().rstrip(".").removeprefix("*.")
            if not any(name == d or name.endswith("." + d) for d in rule.value):
                outside.append(entry)
        if outside:
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate names {', '.join(outside)}, outside the allowed domains",
                "Reissue the certificate without the names outside the allowed domains.",
                seen=outside,
                required=list(rule.value),
            )


@_policy_check("policy-san-forbidden")
def san_forbidden(tctx: TargetContext) -> Iterator[Hit]:
    """A DNS name or IP address of the leaf matches one of the policy's ``san_forbidden`` patterns."""
    for ctx, policy, rule in _applicable(tctx, "san_forbidden"):
        bad = [
            (entry, pattern)
            for entry in _san_entries(ctx.leaf)
            for pattern in rule.value
            if fnmatch.fnmatchcase(entry.lower(), pattern)
        ]
        if bad:
            yield _hit(
                policy,
                rule,
                ctx,
                "The certificate names " + ", ".join(f"{e} (matches {p})" for e, p in bad),
                "Reissue the certificate without the forbidden names.",
                seen=[e for e, _ in bad],
                required=list(rule.value),
            )


@_policy_check("policy-san-required-missing")
def san_required_missing(tctx: TargetContext) -> Iterator[Hit]:
    """A pattern of the policy's ``san_must_include`` matches no DNS name or IP address of the leaf."""
    for ctx, policy, rule in _applicable(tctx, "san_must_include"):
        entries = _san_entries(ctx.leaf)
        missing = [p for p in rule.value if not any(fnmatch.fnmatchcase(e.lower(), p) for e in entries)]
        if missing:
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate names {', '.join(entries) or 'nothing'}; none matches {', '.join(missing)}",
                "Reissue the certificate with the required names.",
                seen=entries,
                required=list(rule.value),
            )


# --- usage and revocation ------------------------------------------------------------------------------------------


def _eku_oids(cert: x509.Certificate) -> list[str] | None:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except Exception:
        return []
    return [oid.dotted_string for oid in eku]


@_policy_check("policy-eku-missing")
def eku_missing(tctx: TargetContext) -> Iterator[Hit]:
    """The leaf's extendedKeyUsage lacks a usage of the policy's ``eku_required`` (an absent extension lacks
    them all; anyExtendedKeyUsage does not stand for them)."""
    for ctx, policy, rule in _applicable(tctx, "eku_required"):
        present = _eku_oids(ctx.leaf)
        missing = [oid for oid in rule.value if oid not in (present or [])]
        if missing:
            names = [EKU_NAMES.get(o, o) for o in missing]
            seen = None if present is None else [EKU_NAMES.get(o, o) for o in present]
            yield _hit(
                policy,
                rule,
                ctx,
                "The certificate "
                + (
                    "has no extendedKeyUsage extension"
                    if present is None
                    else f"allows only {_show(seen) or 'nothing'}"
                )
                + f", not {', '.join(names)}",
                "Reissue the certificate with the required extended key usages.",
                seen=seen,
                required=[EKU_NAMES.get(o, o) for o in rule.value],
            )


@_policy_check("policy-ocsp-staple-missing")
def ocsp_staple_missing(tctx: TargetContext) -> Iterator[Hit]:
    """``ocsp_stapling_required = true`` and an address of the server answered the handshake without an OCSP
    response (it was asked for one: status_request, RFC 6066 §8). Not judged for files."""
    if tctx.evidence.target.is_files:
        return
    for ctx, policy, rule in _applicable(tctx, "ocsp_stapling_required"):
        if not rule.value:
            continue
        bare = tuple(c.source for c in tctx.evidence.chains if c.ok and c.source in ctx.sources and not c.ocsp_staple)
        if bare:
            yield _hit(
                policy,
                rule,
                ctx,
                f"{', '.join(bare)} sent no stapled OCSP response",
                "Turn on OCSP stapling (nginx: ssl_stapling on; ssl_stapling_verify on; Apache: SSLUseStapling on) "
                "and check that the server can reach the CA's OCSP responder.",
                seen=False,
                required=True,
                sources=bare,
            )


@_policy_check("policy-must-staple-missing")
def must_staple_missing(tctx: TargetContext) -> Iterator[Hit]:
    """``must_staple_required = true`` and the leaf has no TLS Feature extension asking for status_request."""
    for ctx, policy, rule in _applicable(tctx, "must_staple_required"):
        if rule.value and not certinfo.must_staple(ctx.leaf):
            yield _hit(
                policy,
                rule,
                ctx,
                "The certificate has no OCSP Must-Staple extension",
                "Request the certificate with Must-Staple (certbot: --must-staple) once the server staples reliably.",
                seen=False,
                required=True,
            )


@_policy_check("policy-revocation-info-missing")
def revocation_info_missing(tctx: TargetContext) -> Iterator[Hit]:
    """``revocation_info_required = true`` and the leaf has neither an OCSP URL (AIA) nor a CRL distribution
    point."""
    for ctx, policy, rule in _applicable(tctx, "revocation_info_required"):
        if rule.value and not certinfo.ocsp_urls(ctx.leaf) and not certinfo.crl_urls(ctx.leaf):
            yield _hit(
                policy,
                rule,
                ctx,
                "The certificate has no OCSP URL and no CRL distribution point: no client can learn it was revoked",
                "Get certificates from a CA that publishes revocation information in them.",
                seen=False,
                required=True,
            )


@_policy_check("policy-sct-count")
def sct_count(tctx: TargetContext) -> Iterator[Hit]:
    """``min_sct_count = N`` and the leaf comes with SCTs from fewer than N distinct logs (embedded, TLS
    extension and stapled OCSP together; with ``--ct-log-list`` only SCTs whose signature verifies count). Applies
    to every leaf the policy covers, publicly trusted or not (the browsers' own CT rules are the ``ct-*``
    checks)."""
    from ..ct import report_for

    for ctx, policy, rule in _applicable(tctx, "min_sct_count"):
        report = report_for(tctx.evidence, ctx.chain, ctx.analysis)
        if report is None:
            continue
        logs = len({s.log_id for s in report.counting()})
        if logs < rule.value:
            how = "with a valid signature" if report.verified_against else "(signatures not verified)"
            yield _hit(
                policy,
                rule,
                ctx,
                f"The certificate comes with SCTs from {logs} distinct log(s) {how}, fewer than the policy's "
                f"{rule.value}",
                "Get the certificate from a CA that embeds SCTs from enough distinct logs (public CAs embed 2 or 3), "
                "or have the server deliver them by TLS extension or OCSP stapling.",
                seen=logs,
                required=rule.value,
                sct_count=len(report.scts),
            )
