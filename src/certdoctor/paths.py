"""Path building and verification: the one place that asks "does this chain lead to a trusted root?".

Two complementary answers for every presented chain:

* the **verdict**, per trust store, from ``cryptography.x509.verification`` (the web-PKI verifier that passes
  x509-limbo) — ground truth for "valid or not";
* the **candidate paths**, built here from the presented certificates, AIA-fetched ones and the stores by
  name + signature, without policy — so that checks can explain *why* a verdict is negative (which link is
  missing, which certificate is out of order, where the chain ends).

Pure functions of the evidence: no I/O.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography import x509

from . import certinfo
from .model import Evidence, Origin, PathEnd, PresentedChain, TrustStore

MAX_DEPTH = 10
MAX_PATHS = 32
CUSTOM = "custom"
# The stores of publicly trusted roots (the browsers' rules for public certificates apply below these).
PUBLIC_STORES = frozenset({"mozilla", "chrome", "microsoft", "system", "java"})


@dataclass(frozen=True)
class Node:
    """One certificate of a candidate path and where it came from."""

    cert: x509.Certificate
    origin: Origin
    position: int | None = None  # first position in the presented chain
    detail: str = ""  # AIA URL, or the stores holding it

    @property
    def label(self) -> str:
        if self.origin == "presented":
            return f"#{self.position}"
        if self.origin == "aia":
            return "AIA"
        return "store"


@dataclass(frozen=True)
class CandidatePath:
    """One path a client could build: certificates leaf first (position 0 = the leaf), each signed by the next,
    and how it ends."""

    nodes: tuple[Node, ...]  # leaf first
    end: PathEnd  # "anchor" (top is a trust anchor), "untrusted-root" (top is self-signed), "unknown-issuer"
    anchored_in: tuple[str, ...] = ()  # stores trusting the top certificate

    @property
    def top(self) -> Node:
        return self.nodes[-1]

    def certs(self) -> tuple[x509.Certificate, ...]:
        return tuple(n.cert for n in self.nodes)

    def sort_key(self, at: datetime) -> tuple[int, int, int, int]:
        """Prefer paths that reach an anchor, then paths with fewer defects, fewer borrowed certs, shorter."""
        end_rank = {"anchor": 0, "untrusted-root": 1, "unknown-issuer": 2}[self.end]
        borrowed = sum(1 for n in self.nodes if n.origin == "aia")
        return (end_rank, path_defects(self, at), borrowed, len(self.nodes))


@dataclass(frozen=True)
class StoreVerdict:
    """What cryptography's verifier says for one trust store."""

    store: str
    description: str
    ok: bool
    chain: tuple[x509.Certificate, ...] = ()
    error: str | None = None
    ok_with_aia: bool = False  # would succeed if the AIA-fetched intermediates were sent
    error_with_aia: str | None = None


_ENTRIES: dict[int, tuple[tuple[x509.Certificate, ...], list[tuple[x509.Certificate, str, bytes]]]] = {}


def _entries(roots: tuple[x509.Certificate, ...]) -> list[tuple[x509.Certificate, str, bytes]]:
    """(root, fingerprint, subject DER) for a store's roots, computed once per process for each store (a
    check indexes the same store for its verdict and again for several client predictions)."""
    cached = _ENTRIES.get(id(roots))
    if cached is not None and cached[0] is roots:
        return cached[1]
    out = []
    with warnings.catch_warnings():  # real roots carry over-long attributes; not our user's problem
        warnings.simplefilter("ignore")
        for cert in roots:
            out.append((cert, certinfo.fingerprint(cert), certinfo.subject_der(cert)))
    if len(_ENTRIES) > 64:
        _ENTRIES.clear()
    _ENTRIES[id(roots)] = (roots, out)  # keeps ``roots`` alive, so the id cannot be reused meanwhile
    return out


_SHARED: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[Any, ...], tuple[Any, ...], StoreIndex]] = {}


class StoreIndex:
    """Trust anchors of the selected stores (plus --ca-file roots), indexed by subject."""

    def __init__(self, stores: Sequence[TrustStore], extra_roots: Sequence[x509.Certificate] = ()) -> None:
        self.stores = tuple(stores)
        self.extra_roots = tuple(extra_roots)
        self._by_subject: dict[bytes, list[tuple[x509.Certificate, set[str]]]] = {}
        self._by_fp: dict[str, set[str]] = {}
        for store in self.stores:
            for root, fp, key in _entries(store.roots):
                self._add(root, store.name, fp, key)
        for root, fp, key in _entries(self.extra_roots):
            self._add(root, CUSTOM, fp, key)
        self._verifier_stores: dict[str, object] = {}
        self._issuer_index: certinfo.IssuerIndex | None = None

    @classmethod
    def shared(cls, stores: Sequence[TrustStore], extra_roots: Sequence[x509.Certificate] = ()) -> StoreIndex:
        """An index of these very store objects and roots, built once and reused (a scan or watch pass predicts
        every client for every target: rebuilding the index, and its lazily built issuer index, per target was
        most of a prediction's cost). Keyed by object identity; the cache holds the objects, so no id is reused
        while its entry lives. The index is never changed after it is built, apart from its lazy caches."""
        key = (tuple(map(id, stores)), tuple(map(id, extra_roots)))
        cached = _SHARED.get(key)
        if cached is not None:
            return cached[2]
        index = cls(stores, extra_roots)
        if len(_SHARED) > 64:
            _SHARED.clear()
        _SHARED[key] = (tuple(stores), tuple(extra_roots), index)
        return index

    def _add(self, cert: x509.Certificate, store: str, fp: str, key: bytes) -> None:
        if fp in self._by_fp:
            self._by_fp[fp].add(store)
            return
        names = {store}
        self._by_fp[fp] = names
        self._by_subject.setdefault(key, []).append((cert, names))

    def anchors_named(self, name_der: bytes) -> list[tuple[x509.Certificate, set[str]]]:
        """Anchors whose subject is the DER name ``name_der`` (:func:`certinfo.issuer_der` of a certificate)."""
        return self._by_subject.get(name_der, [])

    def issuers_of(self, cert: x509.Certificate) -> list[tuple[x509.Certificate, set[str]]]:
        """Anchors that issued ``cert``, with the stores holding each; bounded work however many anchors share
        the name (see :class:`certdoctor.certinfo.IssuerIndex`)."""
        if not self.anchors_named(certinfo.issuer_der(cert)):
            return []
        if self._issuer_index is None:
            self._issuer_index = certinfo.IssuerIndex(a for entries in self._by_subject.values() for a, _ in entries)
        return [(a, self._by_fp[certinfo.fingerprint(a)]) for a in self._issuer_index.issuers_of(cert)]

    def stores_trusting(self, cert: x509.Certificate) -> set[str]:
        """Stores whose anchors include ``cert`` itself or a certificate with its subject and key."""
        direct = self._by_fp.get(certinfo.fingerprint(cert))
        if direct:
            return set(direct)
        out: set[str] = set()
        try:
            key = cert.public_key()
        except Exception:
            return out
        for anchor, names in self.anchors_named(certinfo.subject_der(cert)):
            try:
                if anchor.public_key() == key:
                    out |= names
            except Exception:
                continue
        return out

    def effective(self, store: TrustStore) -> list[x509.Certificate]:
        """The anchors a client configured with ``store`` plus the --ca-file roots would trust."""
        return [*store.roots, *self.extra_roots]

    def verification_targets(self) -> list[tuple[str, str, list[x509.Certificate]]]:
        """(name, description, anchors) for every store the verdict is given for."""
        targets = [(s.name, s.description, self.effective(s)) for s in self.stores]
        if not targets and self.extra_roots:
            targets.append((CUSTOM, "--ca-file", list(self.extra_roots)))
        return targets

    def verifier_store(self, name: str, anchors: list[x509.Certificate]) -> object:
        from cryptography.x509.verification import Store

        cached = self._verifier_stores.get(name)
        if cached is None:
            cached = Store(anchors) if anchors else None
            self._verifier_stores[name] = cached
        return cached


def dedupe(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    """The certificates without repeats (by SHA-256 fingerprint), first occurrence kept, order kept."""
    seen: set[str] = set()
    out = []
    for c in certs:
        fp = certinfo.fingerprint(c)
        if fp not in seen:
            seen.add(fp)
            out.append(c)
    return out


def _subject_for(name: str | None):
    from cryptography.x509.verification import DNSName, IPAddress

    if not name:
        return None
    try:
        if certinfo.is_ip(name):
            return IPAddress(ipaddress.ip_address(name.strip("[]")))
        return DNSName(name.removesuffix("."))  # "example.com." is the same (absolute) name, RFC 1034 §3.1
    except Exception:
        return None


def verify(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    store: object,
    at: datetime,
    name: str | None,
) -> tuple[bool, tuple[x509.Certificate, ...], str | None]:
    """Run cryptography's web-PKI server verifier. ``name`` None: check the path but not the name."""
    from cryptography.x509.verification import PolicyBuilder, VerificationError

    if store is None:
        return (False, (), "no trust anchors")
    subject = _subject_for(name)
    if subject is None:
        # No name to check: verify against a name the leaf does carry, so the verdict is about the path only.
        fallback = (certinfo.dns_names(leaf) + certinfo.ip_addresses(leaf) + [""])[0]
        subject = _subject_for(fallback)
    if subject is None:
        return (False, (), "the certificate has no subjectAltName, so no web-PKI client can use it")
    builder = PolicyBuilder().store(store).time(at).max_chain_depth(MAX_DEPTH)  # type: ignore[arg-type]
    try:
        verifier = builder.build_server_verifier(subject)
        chain = verifier.verify(leaf, list(intermediates))
    except VerificationError as exc:
        return (False, (), str(exc))
    except Exception as exc:  # malformed certificates can raise other errors
        return (False, (), f"{type(exc).__name__}: {exc}")
    return (True, tuple(chain), None)


@dataclass
class ChainAnalysis:
    """Everything the checks need to know about one presented chain's paths."""

    chain: PresentedChain
    index: StoreIndex
    aia_certs: dict[str, tuple[x509.Certificate, ...]]  # url -> certificates fetched
    at: datetime
    name: str | None
    verdicts: tuple[StoreVerdict, ...] = ()
    paths: tuple[CandidatePath, ...] = ()
    _positions: dict[str, int] = field(default_factory=dict)

    @property
    def presented(self) -> tuple[x509.Certificate, ...]:
        return self.chain.certs

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain.certs[0]

    @cached_property
    def unique(self) -> list[x509.Certificate]:
        return dedupe(self.presented)

    def position(self, cert: x509.Certificate) -> int | None:
        return self._positions.get(certinfo.fingerprint(cert))

    @property
    def best(self) -> CandidatePath:
        return self.paths[0]

    @property
    def trusted_by(self) -> list[str]:
        return [v.store for v in self.verdicts if v.ok]

    @property
    def trusted(self) -> bool:
        return any(v.ok for v in self.verdicts)

    @property
    def trusted_with_aia(self) -> bool:
        return any(v.ok or v.ok_with_aia for v in self.verdicts)

    def on_any_path(self) -> set[str]:
        return {certinfo.fingerprint(n.cert) for p in self.paths for n in p.nodes}


def _pool(analysis: ChainAnalysis) -> list[Node]:
    nodes: list[Node] = []
    seen: set[str] = set()
    for i, cert in enumerate(analysis.presented):
        fp = certinfo.fingerprint(cert)
        analysis._positions.setdefault(fp, i)
        if fp not in seen:
            seen.add(fp)
            nodes.append(Node(cert, "presented", i))
    for url, certs in analysis.aia_certs.items():
        for cert in certs:
            fp = certinfo.fingerprint(cert)
            if fp not in seen:
                seen.add(fp)
                nodes.append(Node(cert, "aia", None, url))
    return nodes


def _issuers(
    cert: x509.Certificate, pool: certinfo.IssuerIndex, nodes: dict[str, Node], index: StoreIndex
) -> list[Node]:
    """Every known certificate whose name and key issued ``cert`` (presented first, then AIA, then stores).
    ``pool`` indexes the ``nodes`` (by fingerprint) of the presented and AIA certificates."""
    out = [nodes[certinfo.fingerprint(c)] for c in pool.issuers_of(cert)]
    have = {certinfo.fingerprint(n.cert) for n in out}
    for anchor, stores in index.issuers_of(cert):
        if certinfo.fingerprint(anchor) not in have:
            out.append(Node(anchor, "store", None, ", ".join(sorted(stores))))
    return out


WEAK_HASHES = {"md2", "md4", "md5", "sha1"}


def path_defects(path: CandidatePath, at: datetime) -> int:
    """How many policy defects a path has (expired links, non-CA issuers, weak signatures or keys).

    Used to explain the path a client would most plausibly build: among several candidates, the cleanest.
    """
    defects = 0
    certs = path.certs()
    for i, cert in enumerate(certs):
        is_top_anchor = path.end == "anchor" and i == len(certs) - 1 and i > 0
        if not is_top_anchor and not certinfo.in_validity(cert, at):
            defects += 1
        if i > 0 and not certinfo.is_ca(cert):
            defects += 1
        if not (i == len(certs) - 1 and certinfo.is_self_signed(cert) and i > 0):
            h = certinfo.signature_hash(cert)
            if h and h.lower() in WEAK_HASHES:
                defects += 1
    return defects


def build_paths(analysis: ChainAnalysis) -> list[CandidatePath]:
    """Depth-first search from the leaf over presented, AIA and store certificates."""
    pool = _pool(analysis)
    by_fp = {certinfo.fingerprint(n.cert): n for n in pool}
    by_name = certinfo.IssuerIndex(n.cert for n in pool)
    index = analysis.index
    results: list[CandidatePath] = []
    leaf_node = pool[0]

    def walk(path: list[Node]) -> None:
        if len(results) >= MAX_PATHS:
            return
        top = path[-1].cert
        anchored = index.stores_trusting(top)
        if anchored:
            results.append(CandidatePath(tuple(path), "anchor", tuple(sorted(anchored))))
            return
        if certinfo.is_self_signed(top):
            results.append(CandidatePath(tuple(path), "untrusted-root"))
            return
        if len(path) >= MAX_DEPTH:
            results.append(CandidatePath(tuple(path), "unknown-issuer"))
            return
        in_path = {certinfo.fingerprint(n.cert) for n in path}
        issuers = [n for n in _issuers(top, by_name, by_fp, index) if certinfo.fingerprint(n.cert) not in in_path]
        if not issuers:
            results.append(CandidatePath(tuple(path), "unknown-issuer"))
            return
        for node in issuers:
            walk([*path, node])

    walk([leaf_node])
    results.sort(key=lambda p: p.sort_key(analysis.at))
    return results


def _prefer_verified(analysis: ChainAnalysis, verdicts: Sequence[StoreVerdict]) -> list[CandidatePath]:
    """Put first the path that the reference verifier actually built, when it built one.

    The verifier may build a path our search does not enumerate (e.g. through cross-signed loops); then the
    path is reconstructed from its chain, so checks always explain the path clients really use.
    """
    paths = list(analysis.paths)
    for v in verdicts:
        if not v.ok:
            continue
        want = [certinfo.fingerprint(c) for c in v.chain]
        for i, p in enumerate(paths):
            if [certinfo.fingerprint(c) for c in p.certs()] == want:
                return [paths[i], *paths[:i], *paths[i + 1 :]]
        aia = {certinfo.fingerprint(c): url for url, certs in analysis.aia_certs.items() for c in certs}
        nodes = []
        for i, cert in enumerate(v.chain):
            fp = certinfo.fingerprint(cert)
            position = analysis.position(cert)
            if position is not None:
                nodes.append(Node(cert, "presented", position))
            elif fp in aia:
                nodes.append(Node(cert, "aia", None, aia[fp]))
            else:
                stores = analysis.index.stores_trusting(cert) if i == len(v.chain) - 1 else set()
                nodes.append(Node(cert, "store", None, ", ".join(sorted(stores))))
        anchored = tuple(sorted(analysis.index.stores_trusting(v.chain[-1])))
        return [CandidatePath(tuple(nodes), "anchor", anchored), *paths]
    return paths


def analyse(chain: PresentedChain, evidence: Evidence, index: StoreIndex) -> ChainAnalysis:
    """Build candidate paths and per-store verdicts for one presented chain."""
    aia = {url: f.certs for url, f in evidence.aia.items() if f.certs}
    analysis = ChainAnalysis(chain, index, aia, evidence.at, evidence.target.name)
    analysis.paths = tuple(build_paths(analysis))
    intermediates = analysis.unique[1:]
    fetched = dedupe(c for certs in aia.values() for c in certs)
    verdicts = []
    for name, description, anchors in index.verification_targets():
        store = index.verifier_store(name, anchors)
        ok, built, error = verify(analysis.leaf, intermediates, store, evidence.at, evidence.target.name)
        ok_aia, err_aia = ok, error
        if not ok and fetched:
            ok_aia, _, err_aia = verify(
                analysis.leaf, [*intermediates, *fetched], store, evidence.at, evidence.target.name
            )
        verdicts.append(StoreVerdict(name, description, ok, built, error, ok_aia, err_aia))
    analysis.verdicts = tuple(verdicts)
    analysis.paths = tuple(_prefer_verified(analysis, verdicts))
    return analysis


def missing_issuer_urls(
    certs: Sequence[x509.Certificate], known: Sequence[x509.Certificate], index: StoreIndex
) -> list[str]:
    """AIA caIssuers URLs of certificates whose issuer is neither known nor a trust anchor.

    Used by collection to decide what to download.
    """
    urls: list[str] = []
    by_name = certinfo.IssuerIndex(known)
    for cert in certs:
        if certinfo.is_self_signed(cert) or index.stores_trusting(cert):
            continue
        has_issuer = bool(by_name.issuers_of(cert)) or bool(index.issuers_of(cert))
        if not has_issuer:
            urls.extend(u for u in certinfo.ca_issuer_urls(cert) if u not in urls)
    return urls
