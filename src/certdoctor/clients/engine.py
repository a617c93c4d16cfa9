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
from ..model import Finding, PresentedChain, TrustStore
from ..names import match_hostname, normalise_host
from ..paths import CUSTOM, WEAK_HASHES, CandidatePath, ChainAnalysis, Node, StoreIndex, build_paths
from ..revocation import CertRevocation
from . import openssl
from .profiles import FAMILIES, PROBLEMS, ClientProfile

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
    out.sort(key=lambda p: p.sort_key(at))
    return out


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


def _hostname_problems(facts: _Facts, profile: ClientProfile, leaf: x509.Certificate, host: str) -> None:
    match = match_hostname(leaf, host)
    if match.matched:
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
    if profile.public_only_rules and public_anchor and certinfo.validity_days(leaf) > MAX_VALIDITY_DAYS:
        facts.add("validity-too-long", days=f"{certinfo.validity_days(leaf):.0f}")
    if host:
        _hostname_problems(facts, profile, leaf, host)


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
    template = profile.messages.get(problem) or f"certificate rejected ({problem})"

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
        node_match = (
            profile.engine == "node" and host and any(node_wildcard_match(p, host) for p in certinfo.dns_names(leaf))
        )
        if host and not settings.host_in_verify and not node_match:
            _hostname_problems(facts, profile, leaf, host)
        return profile.order
    problem = openssl.problem_for(error)
    values = openssl.values_for(error, analysis.at)
    if problem in ("hostname", "hostname-ip") and host:
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
            public = chosen.end == "anchor" and any(s != CUSTOM for s in chosen.anchored_in)
            _path_problems(facts, profile, chosen, analysis.at, host, public)
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


def predict_failure(profile: ClientProfile, chain: PresentedChain, host: str | None, port: int | None) -> ClientVerdict:
    """A source where no certificate could be collected: the client fails the same way."""
    kind = chain.error_kind or "handshake"
    known = {"timeout", "connect", "resolve", "too-large", "not-tls"}
    problem = kind if kind in known else "handshake"
    values = {
        "host": normalise_host(host) if host else "",
        "port": str(port or ""),
        "reason": chain.error or "handshake failure",
        "size": "more than 1048576",
    }
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
