"""Per-client predictions: will Chrome, curl, Java… accept this server, and what will each print?

    >>> from certdoctor import diagnose
    >>> from certdoctor.clients import predict
    >>> for v in predict(diagnose("example.com")):
    ...     print(v.client, v.accepts, v.error)

:func:`predict` is pure: it reads a :class:`~certdoctor.api.Diagnosis` (whose evidence carries the client
trust stores, see ``diagnose(clients=True)``) and does no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..model import Finding, TrustStore
from ..paths import CandidatePath, StoreIndex
from .engine import ClientVerdict, client_paths, predict_chain, predict_failure
from .profiles import FAMILIES, PROBLEMS, PROFILES, ClientProfile

if TYPE_CHECKING:
    from ..diagnosis import ChainReport, Diagnosis

__all__ = ["FAMILIES", "PROBLEMS", "PROFILES", "ClientProfile", "ClientVerdict", "predict", "profile"]

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
    return ClientVerdict(
        **{**worst.__dict__, "sources": sources, "note": note, "per_source": tuple(verdicts)},
    )


def predict(diagnosis: Diagnosis, clients: Sequence[str] | None = None) -> list[ClientVerdict]:
    """One verdict per client family (all of :data:`PROFILES`, or the ids in ``clients``)."""
    ev = diagnosis.evidence
    available = list(ev.client_stores) or list(ev.stores)
    host = ev.target.name
    port = None if ev.target.is_files else ev.target.port
    profiles = [p for p in PROFILES if clients is None or p.id in clients]
    paths_cache: dict[tuple[int, tuple[str, ...]], tuple[StoreIndex, list[CandidatePath]]] = {}
    out: list[ClientVerdict] = []
    for p in profiles:
        stores = _stores_for(p, available)
        verdicts: list[ClientVerdict] = []
        for n, report in enumerate(diagnosis.reports):
            key = (n, tuple(s.name for s in stores))
            if key not in paths_cache:
                cindex = StoreIndex.shared(stores, ev.extra_roots)
                paths_cache[key] = (cindex, client_paths(report.analysis, cindex))
            verdicts.append(
                predict_chain(
                    p,
                    report.chain,
                    report.analysis,
                    _findings_for(report, diagnosis.findings),
                    stores,
                    paths_cache[key],
                    host,
                    port,
                    report.sources,
                    report.revocation,
                    all(c.ocsp_staple for c in ev.chains if c.source in report.sources and c.address is not None),
                )
            )
        verdicts.extend(predict_failure(p, failure, host, port) for failure in diagnosis.failures)
        if verdicts:
            out.append(_merge(p, verdicts))
    return out
