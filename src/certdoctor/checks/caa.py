"""CAA (RFC 8659): do the DNS names' CAA records authorise the CA that issued the leaf?

CAA is a rule for certification authorities at the moment they issue (RFC 8659 §1, BR §3.2.2.8): no TLS client
looks CAA up, and every client accepts a certificate whatever the names' CAA records say now. These findings are
therefore informational: a mismatch means the records changed since issuance, or the certificate came from a
CA the domain owner did not authorise (worth knowing), and that the next renewal from that CA will be refused.

The issuer is recognised by the organisation (O=) of the leaf's issuer name, in :data:`KNOWN_ISSUERS` plus the
entries of ``--caa-issuer ORG=DOMAIN[,DOMAIN]`` (which also match an issuer without O= by its CN=); an unknown
issuer is not compared (the text output says so).
Evidence of the lookups themselves (:mod:`certdoctor.collect.caa`) is in ``check --json``'s ``caa``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..collect.caa import KNOWN_TAGS, CaaLookup
from ..model import Severity
from .policy import _applicable, _hit, _policy_check
from .registry import Hit, TargetContext, check

# Well-known CAs: (a part of the issuer's organisation name, lower case; the issuer domain names the CA
# recognises in CAA issue/issuewild values; where the CA documents it).
KNOWN_ISSUERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("let's encrypt", ("letsencrypt.org",), "https://letsencrypt.org/docs/caa/"),
    (
        "digicert",
        ("digicert.com", "www.digicert.com", "digicert.ne.jp", "symantec.com", "geotrust.com", "thawte.com"),
        "https://docs.digicert.com/en/certcentral/manage-certificates/dns-caa-resource-record-check.html",
    ),
    (
        "sectigo",
        ("sectigo.com", "comodoca.com", "comodo.com", "usertrust.com", "trust-provider.com"),
        "https://www.sectigo.com/knowledge-base/detail/CAA-Record-Sectigo",
    ),
    (
        "globalsign",
        ("globalsign.com",),
        "https://support.globalsign.com/ssl/general-ssl/certificate-authority-authorization-caa-records",
    ),
    ("google trust services", ("pki.goog",), "https://pki.goog/faq/"),
    (
        "amazon",
        ("amazon.com", "amazontrust.com", "awstrust.com", "amazonaws.com"),
        "https://docs.aws.amazon.com/acm/latest/userguide/setup-caa.html",
    ),
)

_NOT_CLIENTS = (
    "CAA binds a CA when it issues, not clients: no client looks CAA up, and every client accepts this "
    "certificate whatever the records say now."
)


def issuer_organisation(cert: x509.Certificate) -> str | None:
    """The organisation (O=) of ``cert``'s issuer name, or None."""
    try:
        values = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    except ValueError:
        return None
    return str(values[0].value) if values else None


def issuer_domains(
    organisation: str | None, added: Sequence[tuple[str, tuple[str, ...]]] = ()
) -> tuple[str, tuple[str, ...]] | None:
    """(the table entry's name, its CAA domains) for an issuer ``organisation``: an ``added`` entry
    (``--caa-issuer``, matched case-insensitively on the whole name) first, then :data:`KNOWN_ISSUERS` (its key
    contained in the name); None for an unknown issuer."""
    if not organisation:
        return None
    low = organisation.strip().lower()
    for org, domains in added:
        if org.strip().lower() == low:
            return org, tuple(d.lower().rstrip(".") for d in domains)
    for key, domains, _source in KNOWN_ISSUERS:
        if key in low:
            return key, domains
    return None


def known_issuer(
    cert: x509.Certificate, added: Sequence[tuple[str, tuple[str, ...]]] = ()
) -> tuple[str, str, tuple[str, ...]] | None:
    """(the issuer's name as shown, the table entry, its CAA domains) for ``cert``'s issuer: its organisation
    (O=) through :func:`issuer_domains`, or, for an issuer without O=, its common name (CN=) in the ``added``
    entries only; None for an unknown issuer."""
    organisation = issuer_organisation(cert)
    if organisation:
        found = issuer_domains(organisation, added)
        return None if found is None else (organisation, *found)
    try:
        cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    cn = str(cns[0].value) if cns else ""
    for org, domains in added:
        if cn and org.strip().lower() == cn.strip().lower():
            return cn, org, tuple(d.lower().rstrip(".") for d in domains)
    return None


def _leaf(tctx: TargetContext) -> x509.Certificate | None:
    return next((ctx.leaf for ctx in tctx.chains if ctx.chain.certs), None)


def _sources(tctx: TargetContext) -> tuple[str, ...]:
    """The addresses (or files) of the chain whose leaf is judged: the first chain with certificates."""
    return next((ctx.sources for ctx in tctx.chains if ctx.chain.certs), ())


def _lookups(tctx: TargetContext) -> tuple[CaaLookup, ...]:
    caa = tctx.evidence.caa
    return caa.lookups if caa is not None else ()


def _set(lookup: CaaLookup) -> str:
    at = lookup.relevant or lookup.domain
    via = f" (through the alias {lookup.alias})" if lookup.alias else ""
    return f"{at}{via}: " + "; ".join(str(r) for r in lookup.records)


@check(
    "caa-issuer-not-authorized",
    title="The names' CAA records do not authorise the certificate's issuer (informational: clients ignore CAA)",
    severity=Severity.INFO,
    citation="RFC 8659 §3, §4.2-4.3; CA/B Forum BR §3.2.2.8 (checked by the CA at issuance only)",
    scope="target",
)
def issuer_not_authorized(tctx: TargetContext) -> Iterator[Hit]:
    """The relevant CAA record set of a name of the leaf restricts issuance (issue, or issuewild for a
    wildcard name) to CAs other than the leaf's issuer, when the issuer is a known CA."""
    leaf = _leaf(tctx)
    if leaf is None or tctx.evidence.caa is None:
        return
    known = known_issuer(leaf, tctx.evidence.caa.issuers)
    if known is None:
        return
    organisation, entry, domains = known
    for lookup in _lookups(tctx):
        props = lookup.properties()
        if not lookup.found or not props:
            continue
        allowed = [r.issuer_domain for r in props]
        if any(d in domains for d in allowed):
            continue
        tag = props[0].tag
        named = ", ".join(d for d in allowed if d) or "no CA at all (an empty value)"
        yield Hit(
            f"The CAA records of {lookup.name} ({_set(lookup)}) let {named} issue ({tag}), but the certificate was "
            f"issued by {organisation}, whose CAA domain is {' or '.join(domains)}. {_NOT_CLIENTS} It means the "
            "records changed after issuance or a CA you did not authorise issued it; a renewal from that CA will "
            "be refused.",
            f'If {organisation} should issue for {lookup.name}, add {lookup.relevant}. CAA 0 {tag} "{domains[0]}" '
            "before the next renewal; otherwise renew with a CA the records name (and ask who requested this "
            "certificate).",
            cert=leaf,
            sources=_sources(tctx),
            evidence={
                "name": lookup.name,
                "relevant": lookup.relevant,
                "tag": tag,
                "authorized": allowed,
                "issuer": organisation,
                "issuer_entry": entry,
                "issuer_domains": list(domains),
            },
        )


@check(
    "caa-lookup-failed",
    title="The CAA records of a name could not be looked up (informational: clients ignore CAA)",
    severity=Severity.INFO,
    citation="RFC 8659 §3 (a CA must not issue when the lookup fails)",
    scope="target",
)
def lookup_failed(tctx: TargetContext) -> Iterator[Hit]:
    """A CAA query for a name of the leaf (or an ancestor) got SERVFAIL, REFUSED or no answer in time."""
    caa = tctx.evidence.caa
    for lookup in _lookups(tctx):
        if lookup.error is None:
            continue
        yield Hit(
            f"The CAA lookup for {lookup.name} failed ({lookup.error}) at {caa.resolver}. A CA must not issue while "
            f"the lookup fails (RFC 8659 §3), so a renewal would be refused; {_NOT_CLIENTS}",
            "Make the name's authoritative servers answer CAA queries (an empty answer is fine); some old DNS "
            "servers and appliances fail on record types they do not know.",
            cert=_leaf(tctx),
            sources=_sources(tctx),
            evidence={"name": lookup.name, "queried": list(lookup.queried), "error": lookup.error,
                      "error_kind": lookup.error_kind, "resolver": caa.resolver},
        )  # fmt: skip


@check(
    "caa-critical-unknown",
    title="A CAA record is marked critical with a tag CAs do not know: no CA may issue (informational)",
    severity=Severity.INFO,
    citation="RFC 8659 §4.1 (Issuer Critical flag)",
    scope="target",
)
def critical_unknown(tctx: TargetContext) -> Iterator[Hit]:
    """The relevant record set of a name has a property with the Issuer Critical flag (128) and a tag outside
    those defined (issue, issuewild, iodef, contactemail, contactphone, issuemail, issuevmc)."""
    for lookup in _lookups(tctx):
        odd = [r for r in lookup.records if r.critical and r.tag not in KNOWN_TAGS]
        if not odd:
            continue
        yield Hit(
            f"The CAA records of {lookup.name} ({_set(lookup)}) have a critical property a CA does not understand "
            f"({', '.join(str(r) for r in odd)}): per RFC 8659 §4.1 a CA that does not know the tag must not issue "
            f"for this name. {_NOT_CLIENTS}",
            "Clear the critical flag (write 0 instead of 128) unless the property is meant to stop issuance.",
            cert=_leaf(tctx),
            sources=_sources(tctx),
            evidence={"name": lookup.name, "relevant": lookup.relevant, "records": [r.to_dict() for r in odd]},
        )


@_policy_check("policy-caa-missing")
def caa_missing(tctx: TargetContext) -> Iterator[Hit]:
    """``caa_required = true`` and a DNS name of the leaf has no relevant CAA record set (RFC 8659 §3: neither it
    nor an ancestor has CAA records, so any CA may issue for it). A failed lookup is ``caa-lookup-failed``
    instead; names not looked up (internal names without ``--dns-server``) are not judged."""
    for ctx, policy, rule in _applicable(tctx, "caa_required"):
        if not rule.value:
            continue
        missing = [lu.name for lu in _lookups(tctx) if not lu.records and lu.error is None and lu.skipped is None]
        if missing:
            yield _hit(
                policy,
                rule,
                ctx,
                f"No CAA record set applies to {', '.join(missing)} (nor to any parent domain): any CA may issue "
                "for them",
                'Publish CAA records naming your CA at the registered domain (example.com. CAA 0 issue "ca.example"); '
                "subdomains inherit them.",
                seen=False,
                required=True,
                names=missing,
            )
        break  # the names are the target's, not a chain's: one finding
