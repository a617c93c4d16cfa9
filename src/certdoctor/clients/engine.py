"""Predict, per client family, whether it accepts a presented chain and what it will print.

Pure functions of the evidence already judged by certdoctor (no I/O). For one presented chain and one
:class:`~certdoctor.clients.profiles.ClientProfile`:

1. choose the path this client would build: only from what it has — the certificates the server sent, its
   own trust store (plus --ca-file roots), and AIA downloads only if it fetches them;
2. list every problem that client would see on that path (untrusted end, dates, names, algorithms, usages);
3. report the one it prints: the first in the profile's ``order``, rendered with its message template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from .. import certinfo
from ..checks.constraints import name_constraint_problems, name_constraints_of
from ..model import Finding, PresentedChain, TrustStore
from ..names import match_hostname, normalise_host
from ..paths import PUBLIC_STORES, WEAK_HASHES, CandidatePath, ChainAnalysis, Node, StoreIndex, build_paths
from ..revocation import CertRevocation
from . import openssl
from .profiles import FAMILIES, PROBLEMS, ClientProfile, starttls_values

MAX_VALIDITY_DAYS = 398


@dataclass(frozen=True)
class ClientVerdict:
    """One client family's predicted reaction to one target."""

    client: str
    name: str
    accepts: bool
    error: str | None = None  # what the client prints, when it rejects
    problem: str | None = None  # engine problem key (see profiles.PROBLEMS)
    because: tuple[str, ...] = ()  # certdoctor finding ids behind the rejection
    sources: tuple[str, ...] = ()  # addresses / files this verdict is about
    note: str = ""  # how it gets there (e.g. "fetches the missing intermediate via AIA")
    store: str = ""  # the trust store this prediction used
    trust_howto: str = ""
    describes: str = ""
    per_source: tuple[ClientVerdict, ...] = ()  # when sources disagree: one verdict per distinct chain

    @property
    def family(self) -> str | None:
        return FAMILIES.get(self.problem) if self.problem else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client": self.client,
            "name": self.name,
            "accepts": self.accepts,
            "error": self.error,
            "problem": self.problem,
            "family": self.family,
            "because": list(self.because),
            "sources": list(self.sources),
            "note": self.note,
            "store": self.store,
            "trust_howto": self.trust_howto,
            "describes": self.describes,
        }
        if self.per_source:
            out["per_source"] = [v.to_dict() for v in self.per_source]
        return out


@dataclass
class _Facts:
    """Problems one client sees on one chain, with the values its message needs."""

    problems: dict[str, dict[str, str]] = field(default_factory=dict)
    note: str = ""
    unstapled_ok: bool = True  # every source that presented the chain stapled an OCSP response

    def add(self, problem: str, **values: str) -> None:
        self.problems.setdefault(problem, values)


# --- choosing the path a client builds --------------------------------------------------------------------


def client_paths(analysis: ChainAnalysis, cindex: StoreIndex) -> list[CandidatePath]:
    """Candidate paths over the presented and AIA certificates and the client's own anchors."""
    copy = ChainAnalysis(analysis.chain, cindex, analysis.aia_certs, analysis.at, analysis.name)
    return build_paths(copy)


def _cut_for(paths: Sequence[CandidatePath], profile: ClientProfile, at: datetime) -> list[CandidatePath]:
    """The paths as this client builds them: without AIA downloads unless it fetches them."""
    out: list[CandidatePath] = []
    seen: set[tuple[str, ...]] = set()
    for path in paths:
        nodes: list[Node] = []
        end, anchored = path.end, path.anchored_in
        for node in path.nodes:
            if node.origin == "aia" and not profile.aia:
                end, anchored = "unknown-issuer", ()
                break
            nodes.append(node)
        key = tuple(certinfo.fingerprint(n.cert) for n in nodes)
        if key not in seen:
            seen.add(key)
            out.append(CandidatePath(tuple(nodes), end, anchored))
    out.sort(key=lambda p: (_stand_in_anchor(p), *p.sort_key(at)))
    return out


def _stand_in_anchor(path: CandidatePath) -> bool:
    """The path ends at a presented certificate that only stands in for a trust anchor (same subject and key,
    e.g. a cross-certificate of the root signed by an older root) rather than at the anchor itself.

    Clients use their own copy of the anchor: OpenSSL looks in the trust store first (X509_V_FLAG_TRUSTED_FIRST,
    the default since 1.1.0), Go, Java, Chromium and mozilla::pkix stop at the first trusted certificate. So a
    path through the stand-in (whose dates and issuer are not the anchor's) is the client's last choice.
    """
    if path.end != "anchor" or len(path.nodes) < 2:
        return False
    top = path.nodes[-1]
    return top.origin != "store" and not certinfo.is_self_signed(top.cert)


# --- the problems on a path -------------------------------------------------------------------------------


def _rsa_bits(cert: x509.Certificate) -> int | None:
    kind, bits = certinfo.key_description(cert)
    return bits if kind == "RSA" else None


def _eku_allows_server(cert: x509.Certificate) -> bool:
    ekus = certinfo.extended_key_usages(cert)  # None: no extension, any usage
    return ekus is None or "serverAuth" in ekus or "anyExtendedKeyUsage" in ekus


def _fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _names_for(profile: ClientProfile, leaf: x509.Certificate) -> str:
    dns = certinfo.dns_names(leaf)
    ips = certinfo.ip_addresses(leaf)
    if profile.engine == "node":
        return ", ".join([f"DNS:{d}" for d in dns] + [f"IP Address:{i}" for i in ips])
    if profile.engine == "go":
        return ", ".join(dns)
    return ", ".join(dns + ips)


def _algorithm_names(cert: x509.Certificate) -> dict[str, str]:
    """The signature algorithm as Java ("SHA1withRSA") and Go ("SHA1-RSA") spell it."""
    digest = (certinfo.signature_hash(cert) or "").upper().replace("-", "")
    try:
        key = cert.signature_algorithm_oid._name.lower()
    except Exception:
        key = ""
    kind = "ECDSA" if "ecdsa" in key else ("DSA" if "dsa" in key else "RSA")
    go = f"{kind}-{digest}" if kind == "ECDSA" else f"{digest}-{kind}"
    return {"algorithm": f"{digest}with{kind}", "go_algorithm": go}


def _lacks_cert_sign(cert: x509.Certificate) -> bool:
    usages = certinfo.key_usages(cert)  # None: no extension, no restriction
    return usages is not None and "key_cert_sign" not in usages


def _key_id(cert: x509.Certificate, cls: type[x509.SubjectKeyIdentifier | x509.AuthorityKeyIdentifier]) -> bytes | None:
    """The subjectKeyIdentifier digest, or the authorityKeyIdentifier keyIdentifier (None when absent)."""
    value = certinfo.extension_value(cert, cls)
    if value is None:
        return None
    return value.digest if isinstance(value, x509.SubjectKeyIdentifier) else value.key_identifier


def _aki_mismatch(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert`` names its issuer's key with an authorityKeyIdentifier that is not ``issuer``'s SKI (OpenSSL's
    X509_check_akid: then ``issuer`` is not the issuer, X509_V_ERR_AKID_SKID_MISMATCH during the search)."""
    aki = _key_id(cert, x509.AuthorityKeyIdentifier)
    ski = _key_id(issuer, x509.SubjectKeyIdentifier)
    return aki is not None and ski is not None and aki != ski


def unknown_critical_oids(cert: x509.Certificate) -> list[str]:
    """The dotted OIDs of ``cert``'s extensions marked critical that no client knows: those cryptography does
    not parse (``x509.UnrecognizedExtension``). RFC 5280 §4.2: a certificate with a critical extension the
    system does not recognise MUST be rejected; OpenSSL (check_extensions, EXFLAG_CRITICAL), Go (isValid,
    UnhandledCriticalExtensions), Java (PKIXMasterCertPathValidator), Chromium (kUnconsumedCriticalExtension)
    and mozilla::pkix (BackCert::Init) all do. Their sets of known extensions differ a little (policy
    mappings, for instance); a private OID is unknown to every one. Empty when the extensions do not parse."""
    try:
        exts = list(cert.extensions)
    except Exception:
        return []
    return [e.oid.dotted_string for e in exts if e.critical and isinstance(e.value, x509.UnrecognizedExtension)]


def _path_length_exceeded(certs: Sequence[x509.Certificate]) -> bool:
    """A CA's pathLenConstraint is smaller than the number of non-self-issued intermediates below it
    (RFC 5280 §6.1.4 (l)-(m))."""
    for i, cert in enumerate(certs[1:], start=1):
        bc = certinfo.extension_value(cert, x509.BasicConstraints)
        if bc is None:
            continue
        if bc.ca and bc.path_length is not None:
            below = [c for c in certs[1:i] if not certinfo.is_self_issued(c)]
            if len(below) > bc.path_length:
                return True
    return False


def _name_constraint_values(certs: Sequence[x509.Certificate]) -> dict[str, str] | None:
    """The first name-constraint violation on the path, as the clients' messages need it: ``nc_kind``
    ("permitted"/"excluded", OpenSSL's X509_V_ERR_PERMITTED_VIOLATION/EXCLUDED_VIOLATION) and ``go_nc`` (Go's
    detail, crypto/x509 checkNameConstraints)."""
    for i, ca in enumerate(certs[1:], start=1):
        nc = name_constraints_of(ca)
        if nc is None:
            continue
        for below in certs[:i]:
            if below is not certs[0] and certinfo.is_self_issued(below):
                continue
            for how, kind, name, base in name_constraint_problems(nc, below):
                what = "DNS name" if kind == "DNS" else "IP address"
                go = (
                    f'{what} "{name}" is excluded by constraint "{base}"'
                    if how == "excluded"
                    else f'{what} "{name}" is not permitted by any constraint'
                )
                return {"nc_kind": how, "go_nc": go}
    return None


def _partial_wildcard_match(leaf: x509.Certificate, host: str) -> str | None:
    """A DNS name of ``leaf`` with a partial wildcard in its leftmost label ("partial*.example.com") that
    matches ``host`` as Node's tls.checkServerIdentity and Java's HostnameChecker match it: one '*' standing
    for one or more characters of the leftmost label, the other labels equal; None when there is none."""
    labels = host.split(".")
    for name in certinfo.dns_names(leaf):
        pattern = name.lower().rstrip(".").split(".")
        first = pattern[0]
        if first == "*" or first.count("*") != 1 or len(pattern) != len(labels) or len(pattern) < 3:
            continue
        if pattern[1:] != labels[1:] or first.startswith("xn--"):
            continue
        head, tail = first.split("*")
        label = labels[0]
        if len(label) > len(head) + len(tail) and label.startswith(head) and label.endswith(tail):
            return name
    return None


def _hostname_problems(facts: _Facts, profile: ClientProfile, leaf: x509.Certificate, host: str) -> None:
    match = match_hostname(leaf, host)
    if match.matched:
        if host.endswith(".") and not profile.trailing_dot:
            facts.add("hostname-trailing-dot", host=host.strip("[]"))
        return
    if profile.partial_wildcards and match.kind != "ip":
        pattern = _partial_wildcard_match(leaf, normalise_host(host))
        if pattern is not None:
            facts.note = f"accepts the partial wildcard {pattern}"
            return
    name = normalise_host(host)
    values = {
        "host": name,
        "names": _names_for(profile, leaf),
        "cn": ", ".join(match.common_names),
        "ips": ", ".join(match.ip_addresses),
    }
    if match.kind == "ip":
        if not match.ip_addresses:
            facts.add("hostname-ip-none", **values)
        facts.add("hostname-ip", **values)
        return
    has_dns_san = bool(match.dns_names)
    if not has_dns_san and match.common_names:
        cn_match = any(normalise_host(cn) == name for cn in match.common_names)
        if profile.cn_fallback and cn_match:
            facts.note = "accepts the name from the subject Common Name (no subjectAltName)"
            return
        if not match.has_san:
            facts.add("hostname-cn-only", **values)
            return
    facts.add("hostname", **values)


def _path_problems(
    facts: _Facts,
    profile: ClientProfile,
    path: CandidatePath,
    at: datetime,
    host: str | None,
    public_anchor: bool,
) -> None:
    certs = path.certs()
    leaf = certs[0]
    anchored = path.end == "anchor"
    if path.end == "untrusted-root":
        facts.add("self-signed" if len(certs) == 1 else "root-untrusted")
    elif path.end == "unknown-issuer":
        facts.add("issuer-unknown-leaf" if len(certs) == 1 else "issuer-unknown")
    for i, cert in enumerate(certs):
        is_anchor = anchored and i == len(certs) - 1 and (i > 0 or path.nodes[i].origin == "store")
        if i > 0 and not is_anchor:
            if not certinfo.is_ca(cert):
                facts.add("not-ca", issuer_cn=certinfo.display_name(cert))
            if _lacks_cert_sign(cert):
                facts.add("issuer-no-certsign", issuer_cn=certinfo.display_name(cert))
        when = {"not_after": _fmt_time(certinfo.not_after(cert)), "not_before": _fmt_time(certinfo.not_before(cert))}
        when["now"] = _fmt_time(at)
        if is_anchor and i > 0:
            if profile.expiry_checks_anchor and certinfo.expired_at(cert, at):
                facts.add("root-expired", **when)
        elif certinfo.expired_at(cert, at):
            facts.add("expired" if i == 0 else "intermediate-expired", **when)
        elif certinfo.premature_at(cert, at):
            facts.add("not-yet-valid" if i == 0 else "intermediate-not-yet-valid", **when)
        bits = _rsa_bits(cert)
        top_self_signed = i == len(certs) - 1 and certinfo.is_self_signed(cert)
        if bits is not None and not top_self_signed:
            if i == 0 and bits < profile.min_rsa_leaf:
                facts.add("weak-key-leaf", bits=str(bits))
            elif i > 0 and bits < profile.min_rsa_ca:
                facts.add("weak-key-ca", bits=str(bits))
        if not top_self_signed:
            digest = (certinfo.signature_hash(cert) or "").lower()
            if digest in WEAK_HASHES:
                weak = profile.sha1 == "reject" or (profile.sha1 == "private-only" and public_anchor)
                if weak:
                    signer = certinfo.display_name(certs[i + 1]) if i + 1 < len(certs) else certinfo.issuer(cert)
                    facts.add("weak-signature", issuer_cn=signer, **_algorithm_names(cert))
    if not _eku_allows_server(leaf):
        facts.add("eku")
    _constraint_problems(facts, profile, path)
    if profile.public_only_rules and public_anchor and certinfo.validity_days(leaf) > MAX_VALIDITY_DAYS:
        facts.add("validity-too-long", days=f"{certinfo.validity_days(leaf):.0f}")
    if host:
        _hostname_problems(facts, profile, leaf, host)


# The CT findings (certdoctor.checks.ct) and the evidence key naming the clients whose CT policy the leaf fails.
CT_FINDINGS = ("ct-sct-missing", "ct-policy-not-met")


def _ct_problems(
    facts: _Facts, profile: ClientProfile, path: CandidatePath, findings: Sequence[Finding], sources: tuple[str, ...]
) -> None:
    """Chrome, Firefox and Safari refuse a publicly trusted leaf without the SCTs their CT policy asks for
    (``enforces_ct`` clients; the ct checks decide whether the leaf is publicly trusted, counting
    ``--treat-as-public-root`` roots, and which client's policy it fails: the finding's ``clients``)."""
    if not profile.enforces_ct or path.end != "anchor":
        return
    for f in findings:
        if f.id in CT_FINDINGS and profile.id in f.evidence.get("clients", ()) and set(f.sources) & set(sources):
            facts.add("ct-required", count=str(f.evidence.get("counted", 0)))
            return


def _constraint_problems(facts: _Facts, profile: ClientProfile, path: CandidatePath) -> None:
    """Rules on the path beyond dates, trust and algorithms: CA constraints, EKU chaining, the leaf's
    basicConstraints, key identifiers and key types, each as the profile says the client applies it."""
    certs = path.certs()
    leaf = certs[0]
    anchored = path.end == "anchor"
    for i, cert in enumerate(certs):
        if anchored and i == len(certs) - 1 and path.nodes[i].origin == "store":
            continue  # a trust anchor from the client's store is a name and a key, not a certificate checked
        oids = unknown_critical_oids(cert)
        if oids:
            facts.add("critical-extension", oid=", ".join(oids), subject=certinfo.display_name(cert))
            break
    for i, cert in enumerate(certs[:-1]):
        if profile.aki_must_match and _aki_mismatch(cert, certs[i + 1]):
            facts.add("aki-mismatch-leaf" if i == 0 else "aki-mismatch")
    if _path_length_exceeded(certs):
        facts.add("path-length")
    nc = _name_constraint_values(certs)
    if nc is not None:
        facts.add("name-constraints", **nc)
    if profile.ca_eku_chained:
        for i, cert in enumerate(certs[1:], start=1):
            is_anchor = anchored and i == len(certs) - 1
            if not is_anchor and not _eku_allows_server(cert):
                facts.add("ca-eku", issuer_cn=certinfo.display_name(cert))
                break
    if profile.leaf_ca_rejected and certinfo.is_ca(leaf):
        facts.add("leaf-ca")
    if not profile.ed25519 and certinfo.key_description(leaf)[0] == "Ed25519":  # tolerant of unparsable keys
        facts.add("ed25519")


# mozilla::pkix error codes for a stapled response it cannot accept, by certdoctor's error kind.
_FIREFOX_OCSP = {
    "parse": "MALFORMED_RESPONSE",
    "signature": "BAD_SIGNATURE",
    "responder": "UNAUTHORIZED_RESPONSE",
    "certid": "UNKNOWN_CERT",
    "future": "FUTURE_RESPONSE",
}


def _revocation_problems(facts: _Facts, profile: ClientProfile, revocation: Sequence[CertRevocation]) -> None:
    """What the client does with the revocation evidence: most clients check nothing by default."""
    revoked = [r for r in revocation if r.status == "revoked"]
    leaf = revocation[0] if revocation and revocation[0].depth == 0 else None
    if profile.revocation_checks == "staple" and leaf is not None:
        staples = [a for a in leaf.answers if a.source == "staple"]
        if any(a.revoked for a in staples):
            facts.add("revoked")
        for a in staples:
            if a.error_kind in _FIREFOX_OCSP:
                facts.add("staple-invalid", ocsp_code=_FIREFOX_OCSP[a.error_kind])
    if profile.must_staple and leaf is not None and certinfo.must_staple(leaf.cert) and not facts.unstapled_ok:
        facts.add("must-staple")
    if revoked and "revoked" not in facts.problems:
        which = "the server certificate" if revoked[0].depth == 0 else "an intermediate"
        how = {
            "staple": "checks only stapled OCSP responses by default",
            "crlset": "checks only its CRLSet (public certificates Google pushes)",
        }.get(profile.revocation_checks, "checks no revocation by default")
        said = f"{how}, so it connects although {which} is revoked"
        facts.note = "; ".join(x for x in (said, facts.note) if x)


def _render(profile: ClientProfile, problem: str, values: dict[str, str]) -> str:
    protocol = values.get("protocol")
    template = (
        (profile.messages.get(f"{problem}@{protocol}") if protocol else None)
        or profile.messages.get(problem)
        or ("no TLS: {reason}" if problem in STARTTLS_PROBLEMS else f"certificate rejected ({problem})")
    )

    def sub(m: re.Match[str]) -> str:
        return values.get(m.group(1), m.group(0))

    return re.sub(r"\{(\w+)\}", sub, template)


def _because(problem: str, findings: Iterable[Finding]) -> tuple[str, ...]:
    wanted = PROBLEMS.get(problem, ())
    present = [f.id for f in findings if f.id in wanted]
    out = list(dict.fromkeys(present))
    return tuple(out) if out else wanted[:1]


def _store_label(profile: ClientProfile, stores: Sequence[TrustStore], extra: bool) -> str:
    names = ", ".join(s.description for s in stores) or "no public store"
    return names + (" + your --ca-file roots" if extra else "")


def _openssl_problems(
    facts: _Facts,
    profile: ClientProfile,
    chain: PresentedChain,
    analysis: ChainAnalysis,
    stores: Sequence[TrustStore],
    host: str | None,
) -> tuple[str, ...] | None:
    """The chain verdict of OpenSSL's own ``X509_verify_cert`` for curl, Python and Node (clients/openssl.py).

    Adds the one problem the client reports (its first error for curl/Python, its last for Node) to ``facts``
    and returns the order to report in; then, when OpenSSL accepts, the name check the client does itself
    (curl after the handshake, Node in ``tls.checkServerIdentity``). None: keep the declarative model.
    """
    settings = openssl.SETTINGS.get(profile.id)
    if settings is None or profile.engine not in ("openssl", "node") or not chain.certs:
        return None
    result = openssl.verify(
        chain.certs, [s.roots for s in stores], analysis.index.extra_roots, analysis.at, settings, host
    )
    if result is None:
        return None
    error = result.reported(settings)
    if error is None:
        leaf = chain.certs[0]
        node_match = next(
            (p for p in certinfo.dns_names(leaf) if profile.engine == "node" and host and node_wildcard_match(p, host)),
            None,
        )
        if node_match is not None and "*" in node_match.split(".")[0] and node_match.split(".")[0] != "*":
            facts.note = f"accepts the partial wildcard {node_match}"
        elif host and not settings.host_in_verify and node_match is None:
            _hostname_problems(facts, profile, leaf, host)
        return profile.order
    problem = openssl.problem_for(error)
    values = openssl.values_for(error, analysis.at)
    if problem == "hostname" and host and host.endswith(".") and match_hostname(chain.certs[0], host).matched:
        problem = "hostname-trailing-dot"  # OpenSSL compares "name." literally; without the dot it matches
        values.update(host=host.strip("[]"))
    elif problem in ("hostname", "hostname-ip") and host:
        leaf = chain.certs[0]
        values.update(host=host, names=_names_for(profile, leaf), ips=", ".join(certinfo.ip_addresses(leaf)))
    elif not _says(profile, problem, values, error):
        problem = "openssl-other"  # the profile's text for this key is not what OpenSSL says here
    facts.add(problem, **values)
    return (problem,)


def node_wildcard_match(pattern: str, host: str) -> bool:
    """Node's ``tls.checkServerIdentity`` on one DNS subjectAltName with a wildcard, as observed with Node 20:
    one ``*`` anywhere in the leftmost label (``api*``, ``*i``, ``a*i``; it may match nothing), the other
    labels equal (case-insensitive, the host's trailing dot ignored), at least three labels in the pattern,
    never in an ``xn--`` label. Stricter matchers (OpenSSL with Python's NO_PARTIAL_WILDCARDS, Go, browsers)
    accept only a whole ``*`` label; the engine's name check covers those."""
    host_labels = host.lower().rstrip(".").split(".")
    labels = pattern.lower().split(".")
    first = labels[0]
    if first.count("*") != 1 or len(labels) < 3 or len(labels) != len(host_labels) or first.startswith("xn--"):
        return False
    if labels[1:] != host_labels[1:] or "" in labels:
        return False
    prefix, suffix = first.split("*")
    label = host_labels[0]
    return len(prefix) + len(suffix) <= len(label) and label.startswith(prefix) and label.endswith(suffix)


def _says(profile: ClientProfile, problem: str, values: dict[str, str], error: openssl.VerifyError) -> bool:
    """The profile's message for ``problem`` carries OpenSSL's text (and, for Node, its error code)."""
    text = _render(profile, problem, values)
    return error.text in text and (profile.engine != "node" or text.startswith(error.node_code + ":"))


def predict_chain(
    profile: ClientProfile,
    chain: PresentedChain,
    analysis: ChainAnalysis,
    findings: Sequence[Finding],
    stores: Sequence[TrustStore],
    paths_for: tuple[StoreIndex, list[CandidatePath]],
    host: str | None,
    port: int | None,
    sources: tuple[str, ...],
    revocation: Sequence[CertRevocation] = (),
    stapled: bool = True,
) -> ClientVerdict:
    """The verdict of one client on one presented chain (``stapled``: every source sent an OCSP staple)."""
    index = analysis.index
    _, all_paths = paths_for
    facts = _Facts()
    common = {
        "client": profile.id,
        "name": profile.name,
        "sources": sources,
        "store": _store_label(profile, stores, bool(index.extra_roots)),
        "trust_howto": profile.trust_howto,
        "describes": profile.describes,
    }
    if profile.max_chain_certs and chain.total_received > profile.max_chain_certs:
        facts.add("too-many-certs", count=str(chain.total_received))
    if chain.handshake_bytes > profile.max_handshake_bytes:
        facts.add("too-large", size=str(chain.handshake_bytes))
    chosen = None  # the path the declarative model judges (OpenSSL's verifier builds its own)
    order = _openssl_problems(facts, profile, chain, analysis, stores, host)
    if order is None:  # not an OpenSSL client, or no OpenSSL library here: the declarative model
        order = profile.order
        paths = _cut_for(all_paths, profile, analysis.at)
        chosen = paths[0] if paths else None
        if chosen is None:
            facts.add("issuer-unknown-leaf")
        else:
            public = chosen.end == "anchor" and bool(PUBLIC_STORES & set(chosen.anchored_in))
            _path_problems(facts, profile, chosen, analysis.at, host, public)
            _ct_problems(facts, profile, chosen, findings, sources)
    facts.unstapled_ok = stapled
    _revocation_problems(facts, profile, revocation)
    values = {"host": normalise_host(host) if host else "", "port": str(port or "")}
    for problem in ("too-large", "too-many-certs", *order):  # the handshake fails before verification
        if problem in facts.problems:
            merged = {**values, **facts.problems[problem]}
            return ClientVerdict(
                accepts=False,
                error=_render(profile, problem, merged),
                problem=problem,
                because=_because(problem, findings),
                **common,  # type: ignore[arg-type]
            )
    note = facts.note
    if chosen is not None and any(n.origin == "aia" for n in chosen.nodes):
        note = "; ".join(x for x in ("fetches the missing intermediate via AIA", note) if x)
    return ClientVerdict(accepts=True, note=note, **common)  # type: ignore[arg-type]


def _failure_problem(chain: PresentedChain) -> str:
    """The engine problem for a source that gave no certificate. A timeout after the TCP connection was made
    (the server accepted and then said nothing) is "handshake-timeout": clients word it differently from a
    connect timeout (Python: "The handshake operation timed out", Go's net/http: "TLS handshake timeout")."""
    kind = chain.error_kind or "handshake"
    if kind == "timeout" and "TCP" not in (chain.error or ""):  # collect: "no TLS handshake completed within"
        return "handshake-timeout"
    if kind == "handshake" and "excessive message size" in (chain.error or ""):
        return "too-large"  # OpenSSL's max_cert_list stopped the collector: the certificate flight is too large
    if kind == "starttls-refused":  # the upgrade command answered with an error, or not offered at all
        stage = chain.starttls.stage if chain.starttls is not None else None
        return "starttls-denied" if stage == "starttls" else "starttls-not-offered"
    if kind == "proxy":  # the proxy did not open the tunnel: the client never reaches the server either
        return "connect"
    known = {"timeout", "connect", "resolve", "too-large", "not-tls", "starttls-protocol", "starttls-timeout"}
    return kind if kind in known else "handshake"


# The problems of a plaintext phase that ended without TLS. A client profile without its own wording for one
# says what the server said.
STARTTLS_PROBLEMS = ("starttls-denied", "starttls-not-offered", "starttls-protocol", "starttls-timeout")


def predict_failure(profile: ClientProfile, chain: PresentedChain, host: str | None, port: int | None) -> ClientVerdict:
    """A source where no certificate could be collected: the client fails the same way."""
    problem = _failure_problem(chain)
    values = {
        "host": normalise_host(host) if host else "",
        "port": str(port or ""),
        "reason": chain.error or "handshake failure",
        "size": "more than 1048576",
        "timeout_ms": "300000",  # libcurl's default connect timeout, which covers the TLS handshake
    }
    if chain.starttls is not None:  # what the server said before TLS, for the STARTTLS problems' messages
        info = chain.starttls
        values.update(protocol=info.protocol, code=info.code or "", reply=info.reply or "")
        values.update(starttls_values(info.protocol, info.code or "", info.reply or ""))
    return ClientVerdict(
        client=profile.id,
        name=profile.name,
        accepts=False,
        error=_render(profile, problem, values),
        problem=problem,
        because=PROBLEMS[problem][:1],
        sources=(chain.source,),
        note=chain.error or "",
        trust_howto=profile.trust_howto,
        describes=profile.describes,
    )
