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
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography import x509

from . import certinfo
from .model import Evidence, Origin, PathEnd, PresentedChain, TrustStore

MAX_DEPTH = 10
MAX_PATHS = 32
TAIL_CACHE = 1024  # distinct sets of certificates above a leaf (see Tail) whose search results an index keeps
# Reuse what is known about the certificates above a leaf (Tail) and a store's verdict for a store whose anchors
# look the same to the verifier (StoreIndex.verifier_view). Off: everything is computed afresh for every chain
# (the reference the tests compare with).
SHORTCUTS = True
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
        self._tails: OrderedDict[tuple[str, ...], Tail] = OrderedDict()
        self.tail_hits = 0

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

    def tail(self, certs: Sequence[x509.Certificate]) -> Tail:
        """The :class:`Tail` of these certificates (the ones above a leaf: its presented and AIA-fetched
        issuers), made on first use and kept (at most :data:`TAIL_CACHE`, least recently used dropped). Keyed
        by the certificates' SHA-256 fingerprints in order: the same intermediates presented by thousands of
        servers share one."""
        key = tuple(certinfo.fingerprint(c) for c in certs)
        tail = self._tails.get(key)
        if tail is not None:
            self._tails.move_to_end(key)
            self.tail_hits += 1
            return tail
        tail = self._tails[key] = Tail(tuple(certs))
        if len(self._tails) > TAIL_CACHE:
            self._tails.popitem(last=False)
        return tail

    def verifier_view(self, store: str, certs: Sequence[x509.Certificate]) -> tuple[Any, ...] | None:
        """All that cryptography's verifier can learn from the anchors of ``store`` (plus the --ca-file roots)
        while building a path for ``certs`` (the leaf, the intermediates it is given): for each certificate,
        whether it is an anchor (``Store.contains``) and the anchors named as its issuer
        (``Store.get_by_subject``); the verifier asks the store nothing else (cryptography's
        ``src/rust/cryptography-x509-verification/src/lib.rs``, ``ChainBuilder``, and ``trust_store.rs``), and an
        anchor ends the path. Two stores with equal views give the same verdict for these certificates. None
        when some issuer name has several anchors: the store lists those in hash order, so the verifier may
        try them in another order with another store (no shortcut then)."""
        view: list[Any] = []
        for cert in certs:
            holders = self._by_fp.get(certinfo.fingerprint(cert))
            view.append(holders is not None and (store in holders or CUSTOM in holders))
            named = [
                certinfo.fingerprint(a)
                for a, holders in self.anchors_named(certinfo.issuer_der(cert))
                if store in holders or CUSTOM in holders
            ]
            if len(named) > 1:
                return None
            view.append(named[0] if named else None)
        return tuple(view)

    def verifier_store(self, name: str, anchors: list[x509.Certificate]) -> object:
        from cryptography.x509.verification import Store

        cached = self._verifier_stores.get(name)
        if cached is None:
            cached = Store(anchors) if anchors else None
            self._verifier_stores[name] = cached
        return cached


class Tail:
    """What path building learns about the certificates above a leaf, independent of the leaf and of the time.

    Most servers present a leaf of their own under an intermediate that many others present too. The search
    over the intermediates, the store anchors above them and the AIA URLs still missing depends only on those
    certificates and the trust anchors (the :class:`StoreIndex` holding this tail), so it is made once per
    distinct set and reused: a new leaf then costs its own link (its issuers among these certificates and the
    anchors, one signature verification each, cached by :func:`certinfo._verify_once`) plus the checks.

    Reuse is exact only for a leaf that cannot take part in the search above it (:meth:`apart`): a leaf that
    is self-issued, or whose subject is the issuer name of one of these certificates (so that it could be
    their issuer: a CA certificate presented as the leaf, or an attacker's certificate carrying an
    intermediate's name), is searched without the cache. The cached values never depend on the time: the
    paths are sorted, verified and checked at the diagnosis's time by the caller, every time.
    """

    def __init__(self, certs: tuple[x509.Certificate, ...]) -> None:
        self.certs = certs
        self.by_name = certinfo.IssuerIndex(certs)
        self.issuer_names = {certinfo.name_key(c, "issuer") for c in certs}
        # (origin, position, detail) of each certificate's node, start node -> the paths above it, each as
        # (nodes, end, anchored_in); nodes of presented/AIA certificates are replaced by the caller's own
        self._above: dict[tuple[Any, ...], list[tuple[tuple[Node, ...], PathEnd, tuple[str, ...]]]] = {}
        self.urls: list[str] | None = None  # missing_issuer_urls of these certificates among themselves

    def apart(self, leaf: x509.Certificate) -> bool:
        """Whether ``leaf`` can neither be one of these certificates' issuers nor its own (the cache applies)."""
        if certinfo.is_self_issued(leaf):
            return False
        try:
            return certinfo.name_key(leaf, "subject") not in self.issuer_names
        except Exception:  # an unhashable or undecodable name: no shortcut
            return False

    def above(
        self, start: Node, nodes: tuple[Node, ...], index: StoreIndex
    ) -> list[tuple[tuple[Node, ...], PathEnd, tuple[str, ...]]]:
        """Every path from ``start`` (an issuer of the leaf) up, in the depth-first order of
        :func:`build_paths`, at most :data:`MAX_PATHS`, for a leaf one level below (so at most
        ``MAX_DEPTH - 1`` nodes). ``nodes``: this tail's nodes (presented positions, AIA URLs), in order."""
        layout = tuple((n.origin, n.position, n.detail) for n in nodes)
        key = (layout, certinfo.fingerprint(start.cert), start.origin, start.position, start.detail)
        cached = self._above.get(key)
        if cached is not None:
            return cached
        by_fp = {certinfo.fingerprint(n.cert): n for n in nodes}
        out: list[tuple[tuple[Node, ...], PathEnd, tuple[str, ...]]] = []

        def walk(path: list[Node]) -> None:
            if len(out) >= MAX_PATHS:
                return
            top = path[-1].cert
            anchored = index.stores_trusting(top)
            if anchored:
                out.append((tuple(path), "anchor", tuple(sorted(anchored))))
                return
            if certinfo.is_self_signed(top):
                out.append((tuple(path), "untrusted-root", ()))
                return
            if len(path) + 1 >= MAX_DEPTH:  # the leaf below counts
                out.append((tuple(path), "unknown-issuer", ()))
                return
            in_path = {certinfo.fingerprint(n.cert) for n in path}
            issuers = [
                n for n in _issuers(top, self.by_name, by_fp, index) if certinfo.fingerprint(n.cert) not in in_path
            ]
            if not issuers:
                out.append((tuple(path), "unknown-issuer", ()))
                return
            for node in issuers:
                walk([*path, node])

        walk([start])
        if len(self._above) > 4 * MAX_PATHS:
            self._above.clear()
        self._above[key] = out
        return out


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
    """Depth-first search from the leaf over presented, AIA and store certificates.

    The search above the leaf's issuers comes from the index's :class:`Tail` of the other certificates when
    the leaf stands apart from them (:meth:`Tail.apart`); the result is the same as searching everything."""
    pool = _pool(analysis)
    index = analysis.index
    leaf_node = pool[0]
    tail = index.tail([n.cert for n in pool[1:]]) if SHORTCUTS else None
    if tail is not None and tail.apart(leaf_node.cert):
        paths = _paths_from_tail(leaf_node, tuple(pool[1:]), tail, index)
    else:
        paths = _search(pool, index)
    paths.sort(key=lambda p: p.sort_key(analysis.at))
    return paths


def _paths_from_tail(leaf_node: Node, nodes: tuple[Node, ...], tail: Tail, index: StoreIndex) -> list[CandidatePath]:
    """:func:`_search`'s paths for a leaf apart from ``tail`` (whose certificates ``nodes`` hold, in order)."""
    leaf = leaf_node.cert
    anchored = index.stores_trusting(leaf)
    if anchored:
        return [CandidatePath((leaf_node,), "anchor", tuple(sorted(anchored)))]
    if certinfo.is_self_signed(leaf):
        return [CandidatePath((leaf_node,), "untrusted-root")]
    if MAX_DEPTH <= 1:
        return [CandidatePath((leaf_node,), "unknown-issuer")]
    by_fp = {certinfo.fingerprint(n.cert): n for n in nodes}
    leaf_fp = certinfo.fingerprint(leaf)
    issuers = [n for n in _issuers(leaf, tail.by_name, by_fp, index) if certinfo.fingerprint(n.cert) != leaf_fp]
    if not issuers:
        return [CandidatePath((leaf_node,), "unknown-issuer")]
    results: list[CandidatePath] = []
    for start in issuers:
        for above, end, anchored_in in tail.above(start, nodes, index):
            if len(results) >= MAX_PATHS:
                return results
            # this analysis's own nodes for presented and AIA certificates (same values, its certificates)
            own = tuple(by_fp.get(certinfo.fingerprint(n.cert), n) if n.origin != "store" else n for n in above)
            results.append(CandidatePath((leaf_node, *own), end, anchored_in))
    return results


def _search(pool: list[Node], index: StoreIndex) -> list[CandidatePath]:
    """Every path from ``pool[0]`` (the leaf) over ``pool`` and the anchors, depth first, at most MAX_PATHS."""
    by_fp = {certinfo.fingerprint(n.cert): n for n in pool}
    by_name = certinfo.IssuerIndex(n.cert for n in pool)
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
    targets = index.verification_targets()
    # a store whose anchors look the same to the verifier as an earlier store's gets that store's verdict
    seen: dict[tuple[Any, ...], StoreVerdict] = {}
    looked = [analysis.leaf, *intermediates, *fetched] if len(targets) > 1 and SHORTCUTS else []
    for name, description, anchors in targets:
        view = index.verifier_view(name, looked) if looked else None
        same = seen.get(view) if view is not None else None
        if same is not None:
            verdicts.append(replace(same, store=name, description=description))
            continue
        store = index.verifier_store(name, anchors)
        ok, built, error = verify(analysis.leaf, intermediates, store, evidence.at, evidence.target.name)
        ok_aia, err_aia = ok, error
        if not ok and fetched:
            ok_aia, _, err_aia = verify(
                analysis.leaf, [*intermediates, *fetched], store, evidence.at, evidence.target.name
            )
        verdict = StoreVerdict(name, description, ok, built, error, ok_aia, err_aia)
        verdicts.append(verdict)
        if view is not None:
            seen[view] = verdict
    analysis.verdicts = tuple(verdicts)
    analysis.paths = tuple(_prefer_verified(analysis, verdicts))
    return analysis


def missing_issuer_urls(
    certs: Sequence[x509.Certificate], known: Sequence[x509.Certificate], index: StoreIndex
) -> list[str]:
    """AIA caIssuers URLs of certificates whose issuer is neither known nor a trust anchor.

    Used by collection to decide what to download.
    """
    if (
        SHORTCUTS
        and len(certs) > 1
        and len(certs) == len(known)
        and all(a is b for a, b in zip(certs, known, strict=True))
    ):
        # the first round (every known certificate asks): the part above the leaf is the same for every leaf
        # under the same certificates, and comes from their Tail when the leaf stands apart from them
        leaf, tail = certs[0], index.tail(certs[1:])
        if tail.apart(leaf):
            if tail.urls is None:
                tail.urls = _missing(certs[1:], tail.by_name, index)
            own = _missing([leaf], tail.by_name, index)
            return [*own, *(u for u in tail.urls if u not in own)]
    return _missing(certs, certinfo.IssuerIndex(known), index)


def _missing(certs: Sequence[x509.Certificate], by_name: certinfo.IssuerIndex, index: StoreIndex) -> list[str]:
    urls: list[str] = []
    for cert in certs:
        if certinfo.is_self_signed(cert) or index.stores_trusting(cert):
            continue
        has_issuer = bool(by_name.issuers_of(cert)) or bool(index.issuers_of(cert))
        if not has_issuer:
            urls.extend(u for u in certinfo.ca_issuer_urls(cert) if u not in urls)
    return urls
