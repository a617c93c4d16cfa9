"""Per-client predictions: will Chrome, curl, Java… accept this server, and what will each print?

    >>> from certdoctor import diagnose
    >>> from certdoctor.clients import predict
    >>> for v in predict(diagnose("example.com")):
    ...     print(v.client, v.accepts, v.error)

:func:`predict` is pure: it reads a :class:`~certdoctor.api.Diagnosis` (whose evidence carries the client
trust stores, see ``diagnose(clients=True)``) and does no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..model import Finding, TrustStore
from ..paths import CandidatePath, StoreIndex
from .engine import ClientVerdict, client_paths, predict_chain, predict_failure
from .profiles import FAMILIES, PROBLEMS, PROFILES, ClientProfile

if TYPE_CHECKING:
    from ..diagnosis import ChainReport, Diagnosis

__all__ = [
    "FAMILIES",
    "PROBLEMS",
    "PROFILES",
    "ClientProfile",
    "ClientVerdict",
    "PredictionMemo",
    "predict",
    "profile",
]

CLIENT_STORES = ("chrome", "mozilla", "system", "java", "microsoft")


def profile(client_id: str) -> ClientProfile:
    """The profile of one client family by id (``"curl"``, ``"java"``, …); raises KeyError for an unknown id."""
    for p in PROFILES:
        if p.id == client_id:
            return p
    raise KeyError(client_id)


def _stores_for(p: ClientProfile, available: Sequence[TrustStore]) -> tuple[TrustStore, ...]:
    by_name = {s.name: s for s in available}
    for name in p.stores:
        if name in by_name:
            return (by_name[name],)
    return tuple(available[:1])


def _findings_for(report: ChainReport, findings: Sequence[Finding]) -> list[Finding]:
    sources = set(report.sources)
    return [f for f in findings if not f.sources or sources & set(f.sources)]


def _merge(p: ClientProfile, verdicts: list[ClientVerdict]) -> ClientVerdict:
    if len(verdicts) == 1:
        return verdicts[0]
    first = verdicts[0]
    same = all(v.accepts == first.accepts and v.problem == first.problem for v in verdicts)
    sources = tuple(s for v in verdicts for s in v.sources)
    if same:
        return ClientVerdict(**{**first.__dict__, "sources": sources})
    failing = [v for v in verdicts if not v.accepts]
    worst = failing[0]
    where = ", ".join(s for v in failing for s in v.sources)
    note = f"fails on {where} only: the addresses serve different certificates" if failing else ""
    if failing and any(src.endswith((" (RSA)", " (ECDSA)")) for src in sources):  # see checks.keytypes
        note = (
            f"fails with the certificate {where} sent only: the server has an RSA and an ECDSA certificate, and "
            "which one a client gets depends on the key types it offers"
        )
    return ClientVerdict(
        **{**worst.__dict__, "sources": sources, "note": note, "per_source": tuple(verdicts)},
    )


MEMO_SIZE = 16384  # (client, chain) verdicts a memo keeps (see :class:`PredictionMemo`)


class PredictionMemo:
    """Verdicts of earlier predictions, for a session that judges many targets: one client on one chain
    presented the same way (the same certificate objects, path analysis, revocation evidence and finding ids,
    host name, port, sources and stapling) is the same verdict. Keys name the collector's and the judgement
    cache's objects by ``id()``; each entry keeps those objects alive, so no id is reused while it exists.
    Bounded: the least recently used entries go first beyond ``size``."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[Any, ...], tuple[ClientVerdict, tuple[Any, ...]]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> ClientVerdict | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: tuple[Any, ...], verdict: ClientVerdict, keep: tuple[Any, ...]) -> None:
        self._entries[key] = (verdict, keep)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def predict(
    diagnosis: Diagnosis, clients: Sequence[str] | None = None, *, memo: PredictionMemo | None = None
) -> list[ClientVerdict]:
    """One verdict per client family (all of :data:`PROFILES`, or the ids in ``clients``).

    ``memo``: verdicts of earlier diagnoses of the same session to reuse (see :class:`PredictionMemo`).
    """
    ev = diagnosis.evidence
    available = list(ev.client_stores) or list(ev.stores)
    host = ev.target.name
    port = None if ev.target.is_files else ev.target.port
    profiles = [p for p in PROFILES if clients is None or p.id in clients]
    paths_cache: dict[tuple[int, tuple[str, ...]], tuple[StoreIndex, list[CandidatePath]]] = {}
    # per presented chain, what every client's verdict depends on besides the client (and its memo key's part)
    reports = []
    for report in diagnosis.reports:
        findings = _findings_for(report, diagnosis.findings)
        stapled = all(c.ocsp_staple for c in ev.chains if c.source in report.sources and c.address is not None)
        chain = report.chain
        shared = (
            tuple(map(id, ev.extra_roots)),
            id(report.analysis),
            tuple(map(id, chain.certs)),
            chain.total_received,
            chain.handshake_bytes,
            host,
            port,
            report.sources,
            tuple(f.id for f in findings),
            tuple(map(id, report.revocation)),
            stapled,
        )
        reports.append((report, findings, stapled, shared))
    out: list[ClientVerdict] = []
    for p in profiles:
        stores = _stores_for(p, available)
        verdicts: list[ClientVerdict] = []
        store_names = tuple(s.name for s in stores)
        for n, (report, findings, stapled, shared) in enumerate(reports):
            memo_key = (p.id, store_names, shared)
            if memo is not None:
                known = memo.get(memo_key)
                if known is not None:
                    verdicts.append(known)
                    continue
            key = (n, store_names)
            if key not in paths_cache:
                cindex = StoreIndex.shared(stores, ev.extra_roots)
                paths_cache[key] = (cindex, client_paths(report.analysis, cindex))
            verdict = predict_chain(
                p,
                report.chain,
                report.analysis,
                findings,
                stores,
                paths_cache[key],
                host,
                port,
                report.sources,
                report.revocation,
                stapled,
            )
            if memo is not None:
                memo.put(memo_key, verdict, (ev.extra_roots, report.analysis, report.chain.certs, report.revocation))
            verdicts.append(verdict)
        verdicts.extend(predict_failure(p, failure, host, port) for failure in diagnosis.failures)
        if verdicts:
            out.append(_merge(p, verdicts))
    return out
